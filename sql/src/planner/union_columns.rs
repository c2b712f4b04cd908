//! [`UnionColumnsRule`]: a column read through a `UNION` belongs to no
//! table. PostgreSQL's RowDescription gives it table OID 0; Arbor's device
//! tables mark their columns with their table (field metadata), and a
//! union of two tables would otherwise carry one table's mark for both and
//! make every execution re-stamp the other inputs' batches with it (a
//! projection of casts per input). The device tables under a union are
//! read without the marks instead.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::Result;
use datafusion::logical_expr::{LogicalPlan, Union};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::provider::{without_identity, DeviceTableProvider, TABLE_OID_KEY};

#[derive(Debug, Default)]
pub(crate) struct UnionColumnsRule;

impl OptimizerRule for UnionColumnsRule {
    fn name(&self) -> &str {
        "union_columns"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        plan.transform_up(|node| {
            let LogicalPlan::Union(union) = node else { return Ok(Transformed::no(node)) };
            if !union.inputs.iter().any(|input| names_tables(input.schema())) {
                return Ok(Transformed::no(LogicalPlan::Union(union)));
            }
            let inputs = union.inputs.into_iter().map(|input| anonymous(Arc::unwrap_or_clone(input)).map(Arc::new)).collect::<Result<_>>()?;
            Ok(Transformed::yes(LogicalPlan::Union(Union { inputs, schema: schema_without_identity(&union.schema)? })))
        })
    }
}

fn names_tables(schema: &DFSchema) -> bool {
    schema.fields().iter().any(|f| f.metadata().contains_key(TABLE_OID_KEY))
}

/// `plan` over device tables whose columns name no table, every schema
/// above them recomputed.
fn anonymous(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| match node {
        LogicalPlan::TableScan(mut scan) => {
            let Some(table) = source_as_provider(&scan.source).ok().and_then(|p| p.downcast_ref::<DeviceTableProvider>().cloned()) else {
                return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
            };
            scan.source = provider_as_source(Arc::new(table.without_column_identity()));
            scan.projected_schema = schema_without_identity(&scan.projected_schema)?;
            Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
        }
        // Nested unions were rewritten first (bottom-up).
        LogicalPlan::Union(mut union) => {
            union.schema = schema_without_identity(&union.schema)?;
            Ok(Transformed::yes(LogicalPlan::Union(union)))
        }
        other => other.recompute_schema().map(Transformed::yes),
    })
    .map(|t| t.data)
}

fn schema_without_identity(schema: &DFSchema) -> Result<DFSchemaRef> {
    let fields = schema.iter().map(|(qualifier, field)| (qualifier.cloned(), Arc::new(without_identity(field)))).collect();
    let stripped = DFSchema::new_with_metadata(fields, schema.metadata().clone())?.with_functional_dependencies(schema.functional_dependencies().clone())?;
    Ok(Arc::new(stripped))
}

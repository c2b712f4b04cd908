//! `GROUP BY TAGS(k1, k2, …)`: the series of each select item grouped by
//! their values of the tags (a series lacking a tag is in its NULL group);
//! one row per group (per window with `GROUP BY` time): `[Time,] k1, k2, …`,
//! then each item over the group's series merged (as `GROUP BY LEVEL`
//! merges them), headed as written (`avg(temperature)`).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType as ArrowType;
use datafusion::common::{Column, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{lit, Expr as DfExpr, Extension, LogicalPlan, LogicalPlanBuilder};

use super::select::{matches, plan_select};
use crate::error::{Error, Result};
use crate::exec::AlignByDevice;
use crate::instance::Instance;
use crate::tsql::ast::{Expr, Select};

pub(crate) fn plan_tags(instance: &Arc<Instance>, select: &Select, registry: &dyn FunctionRegistry) -> Result<LogicalPlan> {
    let keys = select.group_by_tags.clone().unwrap_or_default();
    if select.group_by_level.is_some() || select.group_by_segment.is_some() || select.fill.is_some() {
        return Err(Error::Unsupported("GROUP BY TAGS with LEVEL, segments or FILL is not supported yet".into()));
    }
    // The groups: every combination of tag values the items' series have.
    let mut groups: BTreeSet<Vec<Option<String>>> = BTreeSet::new();
    let mut members: Vec<(Vec<Option<String>>, String)> = Vec::new();
    for item in &select.items {
        let Expr::Function { args, .. } = &item.expr else {
            return Err(Error::Unsupported("GROUP BY TAGS takes aggregates of one path each, such as avg(s1)".into()));
        };
        let [Expr::Path(p)] = args.as_slice() else {
            return Err(Error::Unsupported("GROUP BY TAGS takes aggregates of one path each, such as avg(s1)".into()));
        };
        for s in matches(instance, p, &select.from)? {
            let key: Vec<Option<String>> = keys.iter().map(|k| s.info.tags.get(k).cloned()).collect();
            groups.insert(key.clone());
            members.push((key, s.path()));
        }
    }
    let timed = select.group_by_time.is_some();
    let mut inputs = Vec::new();
    for group in &groups {
        let paths: Vec<String> = members.iter().filter(|(k, _)| k == group).map(|(_, p)| p.clone()).collect();
        let sub = Select { group_by_tags: None, restrict: Some(paths), limit: None, offset: 0, ..select.clone() };
        let plan = plan_select(instance, &sub, registry)?;
        let width = plan.schema().fields().len();
        let column_at = |i: usize| {
            let (q, f) = plan.schema().qualified_field(i);
            DfExpr::Column(Column::new(q.cloned(), f.name()))
        };
        let mut projection: Vec<DfExpr> = Vec::with_capacity(width + keys.len());
        if timed {
            projection.push(column_at(0));
        }
        for (k, v) in keys.iter().zip(group) {
            projection.push(lit(ScalarValue::Utf8(v.clone())).alias(k));
        }
        projection.extend((usize::from(timed)..width).map(column_at));
        inputs.push(LogicalPlanBuilder::from(plan).project(projection)?.build()?);
    }
    if inputs.is_empty() {
        return plan_select(instance, &Select { items: Vec::new(), group_by_tags: None, ..select.clone() }, registry);
    }
    // Items whose type differs between groups (an empty group's NULL) share one.
    let first = inputs[0].schema().clone();
    let inputs = inputs
        .into_iter()
        .map(|plan| {
            let same = plan.schema().fields().iter().zip(first.fields()).all(|(a, b)| a.data_type() == b.data_type());
            if same {
                return Ok(plan);
            }
            let projection: Vec<DfExpr> = (0..plan.schema().fields().len())
                .map(|i| {
                    let (q, f) = plan.schema().qualified_field(i);
                    let target: ArrowType = first.field(i).data_type().clone();
                    datafusion::logical_expr::cast(DfExpr::Column(Column::new(q.cloned(), f.name())), target).alias(f.name())
                })
                .collect();
            Ok(LogicalPlanBuilder::from(plan).project(projection)?.build()?)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut plan = LogicalPlan::Extension(Extension { node: Arc::new(AlignByDevice::try_new(inputs)?) });
    if select.limit.is_some() || select.offset > 0 {
        plan = LogicalPlanBuilder::from(plan).limit(select.offset, select.limit)?.build()?;
    }
    Ok(plan)
}

//! Additions to datafusion-pg-catalog's `pg_catalog` for what psql asks
//! of it: columns its relations lack (`pg_class.reloptions`, read by
//! `\d+`), always NULL as on a PostgreSQL table without storage options.
//! The catalog itself stays datafusion-pg-catalog's: its tables are
//! wrapped, not replaced.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::scalar::ScalarValue;

/// Columns added to a `pg_catalog` relation, by relation.
fn extra_columns(table: &str) -> Vec<Field> {
    let text_array = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    match table {
        "pg_class" => vec![Field::new("reloptions", text_array, true)],
        _ => Vec::new(),
    }
}

/// `pg_catalog` with the columns of [`extra_columns`].
#[derive(Debug)]
pub struct PgCatalogExtensions {
    inner: Arc<dyn SchemaProvider>,
}

impl PgCatalogExtensions {
    pub fn new(inner: Arc<dyn SchemaProvider>) -> Self {
        PgCatalogExtensions { inner }
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogExtensions {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.inner.table(name).await? else { return Ok(None) };
        let extra = extra_columns(name);
        if extra.is_empty() {
            return Ok(Some(table));
        }
        let mut fields: Vec<Field> = table.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(extra);
        Ok(Some(Arc::new(WithNullColumns { schema: Arc::new(Schema::new(fields)), inner: table })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// A table with NULL columns appended to another's.
#[derive(Debug)]
struct WithNullColumns {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for WithNullColumns {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()])
    }

    async fn scan(&self, state: &dyn Session, projection: Option<&Vec<usize>>, _filters: &[Expr], limit: Option<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        let inner_width = self.inner.schema().fields().len();
        let wanted: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let inner_columns: Vec<usize> = wanted.iter().copied().filter(|i| *i < inner_width).collect();
        let input = self.inner.scan(state, Some(&inner_columns), &[], limit).await?;
        let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::with_capacity(wanted.len());
        for i in wanted {
            let field = self.schema.field(i);
            let expr: Arc<dyn PhysicalExpr> = match inner_columns.iter().position(|c| *c == i) {
                Some(at) => Arc::new(Column::new(field.name(), at)),
                None => Arc::new(Literal::new(ScalarValue::try_from(field.data_type())?)),
            };
            exprs.push((expr, field.name().clone()));
        }
        Ok(Arc::new(ProjectionExec::try_new(exprs, input)?))
    }
}

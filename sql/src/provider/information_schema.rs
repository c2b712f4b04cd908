//! `information_schema` as PostgreSQL clients read it: DataFusion's views,
//! except `columns`, which lists each table's columns with 1-based
//! ordinal positions in the table's column order and PostgreSQL's type
//! names (`timestamp with time zone`, `double precision`; `udt_name`
//! `timestamptz`, `float8`), which Grafana's query builder and ORMs show.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int32Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::information_schema::{InformationSchemaProvider, INFORMATION_SCHEMA};
use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::pg::typing::type_name;

/// The `information_schema` schema of a session's catalog.
#[derive(Debug)]
pub struct PgInformationSchema {
    catalogs: Arc<dyn CatalogProviderList>,
    inner: InformationSchemaProvider,
}

impl PgInformationSchema {
    pub fn new(catalogs: Arc<dyn CatalogProviderList>) -> Self {
        PgInformationSchema { inner: InformationSchemaProvider::new(catalogs.clone()), catalogs }
    }
}

#[async_trait]
impl SchemaProvider for PgInformationSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if name.eq_ignore_ascii_case("columns") {
            return Ok(Some(Arc::new(Columns { catalogs: self.catalogs.clone(), schema: columns_schema() })));
        }
        self.inner.table(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

fn columns_schema() -> SchemaRef {
    let text = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let int = |n: &str| Field::new(n, DataType::Int32, true);
    Arc::new(Schema::new(vec![
        text("table_catalog", false),
        text("table_schema", false),
        text("table_name", false),
        text("column_name", false),
        Field::new("ordinal_position", DataType::Int32, false),
        text("column_default", true),
        text("is_nullable", false),
        text("data_type", false),
        int("character_maximum_length"),
        int("character_octet_length"),
        int("numeric_precision"),
        int("numeric_precision_radix"),
        int("numeric_scale"),
        int("datetime_precision"),
        text("interval_type", true),
        text("udt_catalog", false),
        text("udt_schema", false),
        text("udt_name", false),
        text("is_identity", false),
        text("is_generated", false),
        text("is_updatable", false),
    ]))
}

/// `pg_type.typname` of the type Arbor sends for `t`.
fn udt_name(t: &DataType) -> String {
    match type_name(t).as_str() {
        "boolean" => "bool".into(),
        "smallint" => "int2".into(),
        "integer" => "int4".into(),
        "bigint" => "int8".into(),
        "real" => "float4".into(),
        "double precision" => "float8".into(),
        "timestamp with time zone" => "timestamptz".into(),
        "timestamp without time zone" => "timestamp".into(),
        "time without time zone" => "time".into(),
        other => match other.strip_suffix("[]") {
            Some(elem) => format!("_{elem}"),
            None => other.to_string(),
        },
    }
}

/// `(numeric_precision, radix, scale)` as PostgreSQL reports them.
fn numeric(t: &DataType) -> (Option<i32>, Option<i32>, Option<i32>) {
    match t {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => (Some(16), Some(2), Some(0)),
        DataType::Int32 | DataType::UInt16 => (Some(32), Some(2), Some(0)),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => (Some(64), Some(2), Some(0)),
        DataType::Float16 | DataType::Float32 => (Some(24), Some(2), None),
        DataType::Float64 => (Some(53), Some(2), None),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => (Some(i32::from(*p)), Some(10), Some(i32::from(*s))),
        _ => (None, None, None),
    }
}

fn datetime_precision(t: &DataType) -> Option<i32> {
    match t {
        DataType::Timestamp(unit, _) | DataType::Time64(unit) | DataType::Time32(unit) => Some(match unit {
            TimeUnit::Second => 0,
            TimeUnit::Millisecond => 3,
            TimeUnit::Microsecond | TimeUnit::Nanosecond => 6,
        }),
        DataType::Date32 | DataType::Date64 => Some(0),
        _ => None,
    }
}

/// `information_schema.columns`, built when read.
#[derive(Debug)]
struct Columns {
    catalogs: Arc<dyn CatalogProviderList>,
    schema: SchemaRef,
}

impl Columns {
    async fn batch(&self) -> Result<RecordBatch> {
        let mut text: Vec<StringBuilder> = (0..21).map(|_| StringBuilder::new()).collect();
        let mut ints: Vec<Int32Builder> = (0..21).map(|_| Int32Builder::new()).collect();
        for catalog_name in self.catalogs.catalog_names() {
            let Some(catalog) = self.catalogs.catalog(&catalog_name) else { continue };
            for schema_name in catalog.schema_names() {
                if schema_name == INFORMATION_SCHEMA {
                    continue;
                }
                let Some(schema) = catalog.schema(&schema_name) else { continue };
                for table_name in schema.table_names() {
                    let Some(table) = schema.table(&table_name).await? else { continue };
                    for (i, field) in table.schema().fields().iter().enumerate() {
                        let t = field.data_type();
                        let (precision, radix, scale) = numeric(t);
                        text[0].append_value(&catalog_name);
                        text[1].append_value(&schema_name);
                        text[2].append_value(&table_name);
                        text[3].append_value(field.name());
                        ints[4].append_value(i32::try_from(i + 1).unwrap_or(i32::MAX));
                        text[5].append_null();
                        text[6].append_value(if field.is_nullable() { "YES" } else { "NO" });
                        let name = type_name(t);
                        text[7].append_value(if name.ends_with("[]") { "ARRAY" } else { name.as_str() });
                        ints[8].append_null();
                        ints[9].append_option(matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View).then_some(1_073_741_824));
                        ints[10].append_option(precision);
                        ints[11].append_option(radix);
                        ints[12].append_option(scale);
                        ints[13].append_option(datetime_precision(t));
                        text[14].append_null();
                        text[15].append_value(&catalog_name);
                        text[16].append_value("pg_catalog");
                        text[17].append_value(udt_name(t));
                        text[18].append_value("NO");
                        text[19].append_value("NEVER");
                        text[20].append_value("YES");
                    }
                }
            }
        }
        let columns: Vec<ArrayRef> = self
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| if f.data_type() == &DataType::Int32 { Arc::new(ints[i].finish()) as ArrayRef } else { Arc::new(text[i].finish()) as ArrayRef })
            .collect();
        RecordBatch::try_new(self.schema.clone(), columns).map_err(DataFusionError::from)
    }
}

#[async_trait]
impl TableProvider for Columns {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(&self, state: &dyn Session, projection: Option<&Vec<usize>>, filters: &[Expr], limit: Option<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        // One row per column of every table: small, built per query.
        let table = MemTable::try_new(self.schema.clone(), vec![vec![self.batch().await?]])?;
        table.scan(state, projection, filters, limit).await
    }
}

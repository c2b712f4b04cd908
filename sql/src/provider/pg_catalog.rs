//! Additions to datafusion-pg-catalog's `pg_catalog` for what clients ask
//! of it. The catalog itself stays datafusion-pg-catalog's: its tables are
//! wrapped, not replaced.
//!
//! - Columns its relations lack (`pg_class.reloptions`, read by psql's
//!   `\d+`), always NULL as on a PostgreSQL table without storage options.
//! - Device tables get stable OIDs of Arbor's ([`device_table_oid`]): the
//!   same number in `pg_class.oid`, `pg_attribute.attrelid`, `pg_index`,
//!   `pg_constraint` and in the RowDescription of a query reading the table
//!   (pgJDBC's `getBaseTableName`, psqlODBC look a column up by them).
//!   datafusion-pg-catalog numbers tables per session in the order it
//!   meets them; its numbers are replaced by the device's.
//! - `time` is every device table's primary key: an index `"<device>_pkey"`
//!   (a `pg_class` row of kind `i`, a `pg_index` row) and a `pg_constraint`
//!   row of type `p`, as PostgreSQL shows `PRIMARY KEY (time)`.
//! - The roles clients see (`pg_authid`, and the views over it `pg_roles`
//!   and `pg_user`, psql's `\du`): datafusion-pg-catalog's built-in roles
//!   and `postgres`, and the users the server knows, each a superuser — its
//!   configured user and the session's user ([`RoleRelation`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use catalog::{DeviceId, Page, PathPattern};
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int16Array, Int32Array, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DataFusionError;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, Signature, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::scalar::ScalarValue;

use crate::instance::Instance;
use crate::pg::settings::Settings;

/// Columns added to a `pg_catalog` relation, by relation: NULL on every
/// row (`relacl`: default privileges, which psql's `\dp` reads).
fn extra_columns(table: &str) -> Vec<Field> {
    let text_array = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    match table {
        "pg_class" => vec![Field::new("reloptions", text_array, true), Field::new("relacl", crate::pg::catalog::acl_type(), true)],
        _ => Vec::new(),
    }
}

/// `pg_catalog` with the columns of [`extra_columns`], the device
/// tables' OIDs and primary keys, and the server's roles.
#[derive(Debug)]
pub struct PgCatalogExtensions {
    inner: Arc<dyn SchemaProvider>,
    instance: Arc<Instance>,
    /// The session's parameters: its user is `session_authorization`.
    settings: Settings,
}

impl PgCatalogExtensions {
    pub(crate) fn new(inner: Arc<dyn SchemaProvider>, instance: Arc<Instance>, settings: Settings) -> Self {
        PgCatalogExtensions { inner, instance, settings }
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogExtensions {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.push("pg_user".into());
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let view = match name {
            "pg_authid" => Some(RoleView::Authid),
            "pg_roles" => Some(RoleView::Roles),
            "pg_user" => Some(RoleView::User),
            _ => None,
        };
        if let Some(view) = view {
            let authid = self.inner.table("pg_authid").await?.ok_or_else(|| DataFusionError::Internal("pg_catalog has no pg_authid".into()))?;
            let schema = match view {
                RoleView::Authid => authid.schema(),
                RoleView::Roles => self.inner.table("pg_roles").await?.ok_or_else(|| DataFusionError::Internal("pg_catalog has no pg_roles".into()))?.schema(),
                RoleView::User => pg_user_schema(),
            };
            let users = self.instance.config().users.clone();
            return Ok(Some(Arc::new(RoleRelation { view, schema, authid, users, settings: self.settings.clone() })));
        }
        let Some(mut table) = self.inner.table(name).await? else { return Ok(None) };
        let kind = match name {
            "pg_class" => Some(Relation::Class),
            "pg_attribute" => Some(Relation::Attribute),
            "pg_index" => Some(Relation::Index),
            "pg_constraint" => Some(Relation::Constraint),
            _ => None,
        };
        if let Some(kind) = kind {
            let pg_class = match kind {
                Relation::Class => table.clone(),
                _ => self.inner.table("pg_class").await?.ok_or_else(|| DataFusionError::Internal("pg_catalog has no pg_class".into()))?,
            };
            table = Arc::new(DeviceRelations { kind, inner: table, pg_class, instance: self.instance.clone() });
        }
        let extra = extra_columns(name);
        if extra.is_empty() {
            return Ok(Some(table));
        }
        let mut fields: Vec<Field> = table.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(extra);
        Ok(Some(Arc::new(WithNullColumns { schema: Arc::new(Schema::new(fields)), inner: table })))
    }

    fn table_exist(&self, name: &str) -> bool {
        name == "pg_user" || self.inner.table_exist(name)
    }
}

/// Which of the role relations a [`RoleRelation`] is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RoleView {
    Authid,
    Roles,
    User,
}

/// The OID the first role Arbor adds takes; the others count down from it,
/// below the first OID datafusion-pg-catalog hands out (16384) and above
/// PostgreSQL's built-in roles.
const ROLE_OID_FIRST: i32 = 16383;

/// `pg_authid` with the server's users added as superusers, or one of the
/// views over it: `pg_roles` (passwords hidden) or `pg_user` (the roles
/// that may log in). PostgreSQL's `postgres` (OID 10, the owner of every
/// object) stays as datafusion-pg-catalog lists it.
#[derive(Debug)]
struct RoleRelation {
    view: RoleView,
    schema: SchemaRef,
    /// datafusion-pg-catalog's `pg_authid`.
    authid: Arc<dyn TableProvider>,
    /// The server's configured users.
    users: Vec<String>,
    settings: Settings,
}

/// PostgreSQL's `pg_user` view.
fn pg_user_schema() -> SchemaRef {
    use datafusion::arrow::datatypes::TimeUnit;
    Arc::new(Schema::new(vec![
        Field::new("usename", DataType::Utf8, true),
        Field::new("usesysid", DataType::Int32, true),
        Field::new("usecreatedb", DataType::Boolean, true),
        Field::new("usesuper", DataType::Boolean, true),
        Field::new("userepl", DataType::Boolean, true),
        Field::new("usebypassrls", DataType::Boolean, true),
        Field::new("passwd", DataType::Utf8, true),
        Field::new("valuntil", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("useconfig", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
    ]))
}

/// `pg_user`'s columns by the `pg_authid` columns they show.
const PG_USER_COLUMNS: &[(&str, &str)] = &[
    ("usename", "rolname"),
    ("usesysid", "oid"),
    ("usecreatedb", "rolcreatedb"),
    ("usesuper", "rolsuper"),
    ("userepl", "rolreplication"),
    ("usebypassrls", "rolbypassrls"),
    ("passwd", "rolpassword"),
    ("valuntil", "rolvaliduntil"),
];

impl RoleRelation {
    /// `pg_authid`'s rows with the server's users added.
    fn authid(&self, mut batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
        let schema = self.authid.schema();
        let mut known: Vec<String> = Vec::new();
        for b in &batches {
            let names = column::<StringArray>(b, "rolname")?;
            known.extend(names.iter().flatten().map(str::to_string));
        }
        let session_user = self.settings.get("session_authorization", true).ok().flatten();
        let mut added: Vec<String> = Vec::new();
        for user in self.users.iter().chain(session_user.as_ref()) {
            if !user.is_empty() && !known.contains(user) && !added.contains(user) {
                added.push(user.clone());
            }
        }
        if added.is_empty() {
            return Ok(batches);
        }
        let n = added.len();
        let oids: Vec<i32> = (0..n).map(|i| ROLE_OID_FIRST - i as i32).collect();
        let yes: ArrayRef = Arc::new(BooleanArray::from(vec![true; n]));
        let mut given: HashMap<&str, ArrayRef> = HashMap::from([
            ("oid", Arc::new(Int32Array::from(oids)) as ArrayRef),
            ("rolname", Arc::new(StringArray::from(added)) as ArrayRef),
            ("rolconnlimit", Arc::new(Int32Array::from(vec![-1; n])) as ArrayRef),
        ]);
        for flag in ["rolsuper", "rolinherit", "rolcreaterole", "rolcreatedb", "rolcanlogin", "rolreplication", "rolbypassrls"] {
            given.insert(flag, yes.clone());
        }
        let oid_type = schema.field_with_name("oid")?.data_type().clone();
        if let Some(oid) = given.get_mut("oid") {
            *oid = datafusion::arrow::compute::cast(oid, &oid_type)?;
        }
        batches.push(new_rows(&schema, n, given)?);
        Ok(batches)
    }

    /// A batch of the view's schema from one of `pg_authid`'s.
    fn view_batch(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let rows = match self.view {
            RoleView::User => {
                let login = column::<BooleanArray>(batch, "rolcanlogin")?;
                let keep = BooleanArray::from(login.iter().map(|v| Some(v == Some(true))).collect::<Vec<_>>());
                datafusion::arrow::compute::filter_record_batch(batch, &keep)?
            }
            _ => batch.clone(),
        };
        let hidden: ArrayRef = Arc::new(StringArray::from(vec![Some("********"); rows.num_rows()]));
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for field in self.schema.fields() {
            let source = match self.view {
                RoleView::User => PG_USER_COLUMNS.iter().find(|(v, _)| v == field.name()).map(|(_, a)| *a),
                _ => Some(field.name().as_str()),
            };
            let column = match source {
                // PostgreSQL shows a password in neither view.
                Some("rolpassword") if self.view != RoleView::Authid => hidden.clone(),
                Some(name) if rows.schema().index_of(name).is_ok() => datafusion::arrow::compute::cast(rows.column(rows.schema().index_of(name)?), field.data_type())?,
                _ => ScalarValue::try_from(field.data_type())?.to_array_of_size(rows.num_rows())?,
            };
            columns.push(column);
        }
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.num_rows()));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)?)
    }
}

#[async_trait]
impl TableProvider for RoleRelation {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        match self.view {
            RoleView::Authid => TableType::Base,
            _ => TableType::View,
        }
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()])
    }

    async fn scan(&self, state: &dyn Session, projection: Option<&Vec<usize>>, _filters: &[Expr], _limit: Option<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        let authid = self.authid(collect_all(&self.authid, state).await?)?;
        let batches = match self.view {
            RoleView::Authid => authid,
            _ => authid.iter().map(|b| self.view_batch(b)).collect::<Result<Vec<_>>>()?,
        };
        Ok(MemorySourceConfig::try_new_exec(&[batches], self.schema.clone(), projection.cloned())?)
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

/// Field metadata of a device table's columns: the table's OID and the
/// column's number, as `pg_class.oid` and `pg_attribute.attnum` give them.
/// Kept by DataFusion through plain column references (and aliases), so
/// the server can put them in the RowDescription.
pub const TABLE_OID_KEY: &str = "arbor.pg_table_oid";
pub const ATTNUM_KEY: &str = "arbor.pg_attnum";

/// Device OIDs start here, far above the numbers datafusion-pg-catalog
/// hands out from 16384, and stay below 2³¹ (pgJDBC reads OIDs as int).
const DEVICE_OID_BASE: u64 = 1 << 30;
/// A device's table, its primary key index and its primary key constraint.
const OIDS_PER_DEVICE: u64 = 3;
/// `pg_am.oid` of btree.
const BTREE_AM_OID: i32 = 403;

fn device_oid(id: DeviceId, which: u64) -> Option<i32> {
    let oid = id.0.checked_mul(OIDS_PER_DEVICE)?.checked_add(DEVICE_OID_BASE + which)?;
    i32::try_from(oid).ok()
}

/// The OID of a device's table (`None` past the OID range: such a table
/// keeps datafusion-pg-catalog's number and RowDescriptions carry none).
pub fn device_table_oid(id: DeviceId) -> Option<i32> {
    device_oid(id, 0)
}

/// The metadata [`TABLE_OID_KEY`]/[`ATTNUM_KEY`] of column `index` (0 is `time`).
pub(crate) fn column_metadata(id: DeviceId, index: usize) -> HashMap<String, String> {
    match device_table_oid(id) {
        Some(oid) => HashMap::from([(TABLE_OID_KEY.to_string(), oid.to_string()), (ATTNUM_KEY.to_string(), (index + 1).to_string())]),
        None => HashMap::new(),
    }
}

/// The field metadata naming a list column's PostgreSQL vector type
/// (`int2vector`, `oidvector`): the wire describes and prints it as one
/// (OID 22 or 30, text `1 2`) where a plain list is an array (`{1,2}`).
pub const VECTOR_TYPE_KEY: &str = "arbor.pg_vector_type";

/// `pg_index`'s vector columns with their element and PostgreSQL types:
/// lists, as clients use them (`unnest(indkey)`, `_pg_expandarray(indkey)`,
/// `indkey[0]`), where datafusion-pg-catalog keeps their text; marked with
/// [`VECTOR_TYPE_KEY`].
const VECTOR_COLUMNS: &[(&str, DataType, &str)] = &[
    ("indkey", DataType::Int16, "int2vector"),
    ("indcollation", DataType::Int32, "oidvector"),
    ("indclass", DataType::Int32, "oidvector"),
    ("indoption", DataType::Int16, "int2vector"),
];

fn list_type(element: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", element.clone(), true)))
}

fn vector_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match VECTOR_COLUMNS.iter().find(|(name, _, _)| name == f.name()) {
            Some((_, element, vector)) => Field::new(f.name(), list_type(element), f.is_nullable())
                .with_metadata(HashMap::from([(VECTOR_TYPE_KEY.to_string(), (*vector).to_string())])),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `rows` one-element lists of `value`.
fn int_lists(element: &DataType, rows: usize, value: i64) -> Result<ArrayRef> {
    let item = ScalarValue::Int64(Some(value)).cast_to(element)?;
    let list = ScalarValue::List(ScalarValue::new_list_nullable(&[item], element));
    list.to_array_of_size(rows)
}

/// A `pg_index` batch with its vector columns (`1 2`) read as lists.
fn vectors_as_lists(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut columns = batch.columns().to_vec();
    for (name, element, _) in VECTOR_COLUMNS {
        let i = batch.schema().index_of(name)?;
        let text = datafusion::arrow::compute::cast(&columns[i], &DataType::Utf8)?;
        let text = text.as_any().downcast_ref::<StringArray>().ok_or_else(|| DataFusionError::Internal(format!("pg_index.{name} is not text")))?;
        let lists: Vec<ScalarValue> = (0..text.len())
            .map(|r| {
                if text.is_null(r) {
                    return ScalarValue::try_from(&list_type(element));
                }
                let items = text
                    .value(r)
                    .split_whitespace()
                    .map(|v| v.parse::<i64>().map_err(|_| DataFusionError::Internal(format!("pg_index.{name} holds {v}"))).and_then(|v| ScalarValue::Int64(Some(v)).cast_to(element)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(ScalarValue::List(ScalarValue::new_list_nullable(&items, element)))
            })
            .collect::<Result<_>>()?;
        columns[i] = if lists.is_empty() { datafusion::arrow::array::new_empty_array(&list_type(element)) } else { ScalarValue::iter_to_array(lists)? };
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Relation {
    Class,
    Attribute,
    Index,
    Constraint,
}

/// A `pg_catalog` relation with the device tables' OIDs and primary keys.
#[derive(Debug)]
struct DeviceRelations {
    kind: Relation,
    inner: Arc<dyn TableProvider>,
    /// datafusion-pg-catalog's `pg_class`: its rows give the numbers it
    /// gave the device tables in this session.
    pg_class: Arc<dyn TableProvider>,
    instance: Arc<Instance>,
}

/// A device table as datafusion-pg-catalog's `pg_class` lists it.
struct DeviceRelation {
    name: String,
    /// The OID datafusion-pg-catalog gave it.
    inner_oid: i32,
    namespace: i32,
    table_oid: i32,
    index_oid: i32,
    constraint_oid: i32,
}

async fn collect_all(table: &Arc<dyn TableProvider>, state: &dyn Session) -> Result<Vec<RecordBatch>> {
    let plan = table.scan(state, None, &[], None).await?;
    datafusion::physical_plan::collect(plan, state.task_ctx()).await
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog relation without the expected column {name}")))
}

/// A copy of `batch` with the named columns replaced.
fn replace(batch: &RecordBatch, columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut arrays = batch.columns().to_vec();
    for (name, array) in columns {
        let i = schema.index_of(name)?;
        arrays[i] = array;
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// `rows` new rows of `schema`: the given columns, the others NULL where
/// the column allows it and zero, false or empty otherwise.
fn new_rows(schema: &SchemaRef, rows: usize, mut given: HashMap<&str, ArrayRef>) -> Result<RecordBatch> {
    let mut arrays = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let array = match given.remove(field.name().as_str()) {
            Some(a) => a,
            None if field.is_nullable() => ScalarValue::try_from(field.data_type())?.to_array_of_size(rows)?,
            None => match field.data_type() {
                DataType::Utf8 => ScalarValue::Utf8(Some(String::new())).to_array_of_size(rows)?,
                DataType::Boolean => ScalarValue::Boolean(Some(false)).to_array_of_size(rows)?,
                t => ScalarValue::new_zero(t)?.to_array_of_size(rows)?,
            },
        };
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

impl DeviceRelations {
    /// The device tables among `pg_class`'s rows.
    fn devices(&self, pg_class: &[RecordBatch]) -> Result<Vec<DeviceRelation>> {
        let ids: HashMap<String, DeviceId> = self
            .instance
            .catalog()
            .list_devices(&PathPattern::all(), Page::all())
            .into_iter()
            .map(|d| (d.path.to_string(), d.id))
            .collect();
        let mut found = Vec::new();
        for batch in pg_class {
            let names: &StringArray = column(batch, "relname")?;
            let oids: &Int32Array = column(batch, "oid")?;
            let namespaces: &Int32Array = column(batch, "relnamespace")?;
            let kinds: &StringArray = column(batch, "relkind")?;
            for r in 0..batch.num_rows() {
                let Some(&id) = ids.get(names.value(r)) else { continue };
                if kinds.value(r) != "r" {
                    continue;
                }
                let (Some(table_oid), Some(index_oid), Some(constraint_oid)) = (device_oid(id, 0), device_oid(id, 1), device_oid(id, 2)) else {
                    continue;
                };
                found.push(DeviceRelation {
                    name: names.value(r).to_string(),
                    inner_oid: oids.value(r),
                    namespace: namespaces.value(r),
                    table_oid,
                    index_oid,
                    constraint_oid,
                });
            }
        }
        Ok(found)
    }

    /// `pg_class`: device tables renumbered and marked as indexed, and a
    /// `<device>_pkey` index row after each table's row.
    fn class(batches: Vec<RecordBatch>, devices: &[DeviceRelation]) -> Result<Vec<RecordBatch>> {
        let by_inner: HashMap<i32, &DeviceRelation> = devices.iter().map(|d| (d.inner_oid, d)).collect();
        let mut out = Vec::with_capacity(batches.len() * 2);
        for batch in batches {
            let oids: &Int32Array = column(&batch, "oid")?;
            let kinds: &StringArray = column(&batch, "relkind")?;
            let found: Vec<Option<&DeviceRelation>> =
                (0..batch.num_rows()).map(|r| by_inner.get(&oids.value(r)).copied().filter(|_| kinds.value(r) == "r")).collect();
            let renumbered: Int32Array = found.iter().zip(oids.values()).map(|(d, oid)| Some(d.map_or(*oid, |d| d.table_oid))).collect();
            let has_index: &BooleanArray = column(&batch, "relhasindex")?;
            let has_index: BooleanArray = found.iter().zip(has_index.iter()).map(|(d, h)| if d.is_some() { Some(true) } else { h }).collect();
            let table_rows: Vec<u32> = found.iter().enumerate().filter(|(_, d)| d.is_some()).map(|(r, _)| r as u32).collect();
            let indexes: Vec<&DeviceRelation> = found.iter().flatten().copied().collect();
            let batch = replace(&batch, vec![("oid", Arc::new(renumbered)), ("relhasindex", Arc::new(has_index))])?;
            if !indexes.is_empty() {
                // An index row is its table's row with the index's own fields.
                let copied = batch.columns().iter().map(|c| take(c.as_ref(), &UInt32Array::from(table_rows.clone()), None)).collect::<std::result::Result<Vec<_>, _>>()?;
                let copied = RecordBatch::try_new(batch.schema(), copied)?;
                let n = indexes.len();
                let index_oids: Int32Array = indexes.iter().map(|d| Some(d.index_oid)).collect();
                let pkey = replace(
                    &copied,
                    vec![
                        ("oid", Arc::new(index_oids.clone())),
                        ("relname", Arc::new(indexes.iter().map(|d| Some(format!("{}_pkey", d.name))).collect::<StringArray>())),
                        ("relkind", Arc::new(StringArray::from(vec!["i"; n]))),
                        ("relam", Arc::new(Int32Array::from(vec![BTREE_AM_OID; n]))),
                        ("relfilenode", Arc::new(index_oids)),
                        ("relnatts", Arc::new(Int16Array::from(vec![1i16; n]))),
                        ("relhasindex", Arc::new(BooleanArray::from(vec![false; n]))),
                    ],
                )?;
                out.push(batch);
                out.push(pkey);
            } else {
                out.push(batch);
            }
        }
        Ok(out)
    }

    /// `pg_attribute`: the columns of device tables under their tables' OIDs,
    /// and the key index's one column (`time`, as psqlODBC's
    /// `SQLPrimaryKeys` reads it through the index).
    fn attribute(batches: Vec<RecordBatch>, devices: &[DeviceRelation]) -> Result<Vec<RecordBatch>> {
        let by_inner: HashMap<i32, &DeviceRelation> = devices.iter().map(|d| (d.inner_oid, d)).collect();
        let mut out = Vec::with_capacity(batches.len() * 2);
        for batch in batches {
            let relids: &Int32Array = column(&batch, "attrelid")?;
            let numbers: &Int16Array = column(&batch, "attnum")?;
            let renumbered: Int32Array = relids.values().iter().map(|oid| Some(by_inner.get(oid).map_or(*oid, |d| d.table_oid))).collect();
            let keys: Vec<(u32, i32)> = (0..batch.num_rows())
                .filter(|&r| numbers.value(r) == 1)
                .filter_map(|r| by_inner.get(&relids.value(r)).map(|d| (r as u32, d.index_oid)))
                .collect();
            let batch = replace(&batch, vec![("attrelid", Arc::new(renumbered))])?;
            if !keys.is_empty() {
                let rows = UInt32Array::from(keys.iter().map(|(r, _)| *r).collect::<Vec<_>>());
                let copied = batch.columns().iter().map(|c| take(c.as_ref(), &rows, None)).collect::<std::result::Result<Vec<_>, _>>()?;
                let copied = RecordBatch::try_new(batch.schema(), copied)?;
                let index_rows = replace(&copied, vec![("attrelid", Arc::new(keys.iter().map(|(_, oid)| Some(*oid)).collect::<Int32Array>()))])?;
                out.push(batch);
                out.push(index_rows);
            } else {
                out.push(batch);
            }
        }
        Ok(out)
    }

    /// `pg_index`: PostgreSQL's own rows, then each device's primary key on `time` (column 1).
    fn index(schema: &SchemaRef, mut batches: Vec<RecordBatch>, devices: &[DeviceRelation]) -> Result<Vec<RecordBatch>> {
        let n = devices.len();
        let yes = || Arc::new(BooleanArray::from(vec![true; n])) as ArrayRef;
        let given: HashMap<&str, ArrayRef> = HashMap::from([
            ("indexrelid", Arc::new(devices.iter().map(|d| Some(d.index_oid)).collect::<Int32Array>()) as ArrayRef),
            ("indrelid", Arc::new(devices.iter().map(|d| Some(d.table_oid)).collect::<Int32Array>())),
            ("indnatts", Arc::new(Int16Array::from(vec![1i16; n]))),
            ("indnkeyatts", Arc::new(Int16Array::from(vec![1i16; n]))),
            ("indisunique", yes()),
            ("indisprimary", yes()),
            ("indimmediate", yes()),
            ("indisvalid", yes()),
            ("indisready", yes()),
            ("indislive", yes()),
            ("indkey", int_lists(&DataType::Int16, n, 1)?),
            ("indcollation", int_lists(&DataType::Int32, n, 0)?),
            ("indclass", int_lists(&DataType::Int32, n, 0)?),
            ("indoption", int_lists(&DataType::Int16, n, 0)?),
        ]);
        if n > 0 {
            batches.push(new_rows(schema, n, given)?);
        }
        Ok(batches)
    }

    /// `pg_constraint`: PostgreSQL's own rows, then each device's `PRIMARY KEY (time)`.
    fn constraint(schema: &SchemaRef, mut batches: Vec<RecordBatch>, devices: &[DeviceRelation]) -> Result<Vec<RecordBatch>> {
        let n = devices.len();
        let given: HashMap<&str, ArrayRef> = HashMap::from([
            ("oid", Arc::new(devices.iter().map(|d| Some(d.constraint_oid)).collect::<Int32Array>()) as ArrayRef),
            ("conname", Arc::new(devices.iter().map(|d| Some(format!("{}_pkey", d.name))).collect::<StringArray>())),
            ("connamespace", Arc::new(devices.iter().map(|d| Some(d.namespace)).collect::<Int32Array>())),
            ("contype", Arc::new(StringArray::from(vec!["p"; n]))),
            ("convalidated", Arc::new(BooleanArray::from(vec![true; n]))),
            ("conrelid", Arc::new(devices.iter().map(|d| Some(d.table_oid)).collect::<Int32Array>())),
            ("conindid", Arc::new(devices.iter().map(|d| Some(d.index_oid)).collect::<Int32Array>())),
            ("confupdtype", Arc::new(StringArray::from(vec![" "; n]))),
            ("confdeltype", Arc::new(StringArray::from(vec![" "; n]))),
            ("confmatchtype", Arc::new(StringArray::from(vec![" "; n]))),
            ("conislocal", Arc::new(BooleanArray::from(vec![true; n]))),
            ("connoinherit", Arc::new(BooleanArray::from(vec![true; n]))),
            ("conkey", Arc::new(StringArray::from(vec!["{1}"; n]))),
        ]);
        if n > 0 {
            batches.push(new_rows(schema, n, given)?);
        }
        Ok(batches)
    }
}

#[async_trait]
impl TableProvider for DeviceRelations {
    fn schema(&self) -> SchemaRef {
        match self.kind {
            Relation::Index => vector_schema(&self.inner.schema()),
            _ => self.inner.schema(),
        }
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()])
    }

    async fn scan(&self, state: &dyn Session, projection: Option<&Vec<usize>>, _filters: &[Expr], _limit: Option<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.schema();
        let pg_class = collect_all(&self.pg_class, state).await?;
        let devices = self.devices(&pg_class)?;
        let batches = match self.kind {
            Relation::Class => Self::class(pg_class, &devices)?,
            Relation::Attribute => Self::attribute(collect_all(&self.inner, state).await?, &devices)?,
            Relation::Index => {
                let rows = collect_all(&self.inner, state).await?.iter().map(|b| vectors_as_lists(b, &schema)).collect::<Result<Vec<_>>>()?;
                Self::index(&schema, rows, &devices)?
            }
            Relation::Constraint => Self::constraint(&schema, collect_all(&self.inner, state).await?, &devices)?,
        };
        Ok(MemorySourceConfig::try_new_exec(&[batches], schema, projection.cloned())?)
    }
}

/// The device and the kind of relation (0 table, 1 index, 2 constraint) of
/// a device OID.
fn device_relation(instance: &Instance, oid: i64) -> Option<(String, u64)> {
    let relative = u64::try_from(oid).ok()?.checked_sub(DEVICE_OID_BASE)?;
    let device = instance.catalog().device_by_id(DeviceId(relative / OIDS_PER_DEVICE))?;
    Some((device.path.to_string(), relative % OIDS_PER_DEVICE))
}

/// `pg_get_indexdef(index [, column, pretty])` and
/// `pg_get_constraintdef(constraint [, pretty])` for the device tables'
/// primary keys (psql's `\d`, pgJDBC's `getIndexInfo`); NULL for other
/// indexes, and datafusion-pg-catalog's empty text for other constraints.
#[derive(Debug)]
struct KeyDefinition {
    constraint: bool,
    signature: Signature,
    instance: Arc<Instance>,
}

impl PartialEq for KeyDefinition {
    fn eq(&self, other: &Self) -> bool {
        self.constraint == other.constraint && Arc::ptr_eq(&self.instance, &other.instance)
    }
}

impl Eq for KeyDefinition {}

impl std::hash::Hash for KeyDefinition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.constraint.hash(state);
    }
}

impl KeyDefinition {
    fn definition(&self, oid: i64, column: i64) -> Option<String> {
        let (device, kind) = device_relation(&self.instance, oid)?;
        let time = crate::pg::functions::quote_ident("time");
        match (self.constraint, kind, column) {
            (true, 2, _) => Some(format!("PRIMARY KEY ({time})")),
            (false, 1, 0) => Some(format!(
                "CREATE UNIQUE INDEX {} ON {}.{} USING btree ({time})",
                crate::pg::functions::quote_ident(&format!("{device}_pkey")),
                super::SCHEMA,
                crate::pg::functions::quote_ident(&device)
            )),
            (false, 1, 1) => Some(time),
            _ => None,
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for KeyDefinition {
    fn name(&self) -> &str {
        if self.constraint {
            "pg_get_constraintdef"
        } else {
            "pg_get_indexdef"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: datafusion::logical_expr::ScalarFunctionArgs) -> Result<datafusion::logical_expr::ColumnarValue> {
        let rows = args.number_rows;
        let arrays = datafusion::logical_expr::ColumnarValue::values_to_arrays(&args.args)?;
        let as_ints = |a: &ArrayRef| datafusion::arrow::compute::cast(a, &DataType::Int64);
        let oids = as_ints(&arrays[0])?;
        let oids = oids.as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().ok_or_else(|| DataFusionError::Internal("oid not an integer".into()))?;
        let columns = match (self.constraint, arrays.get(1)) {
            (false, Some(c)) => Some(as_ints(c)?),
            _ => None,
        };
        let columns = columns.as_ref().and_then(|c| c.as_any().downcast_ref::<datafusion::arrow::array::Int64Array>());
        let out: StringArray = (0..oids.len())
            .map(|r| {
                if oids.is_null(r) {
                    return None;
                }
                let column = columns.map_or(0, |c| if c.is_null(r) { 0 } else { c.value(r) });
                self.definition(oids.value(r), column).or_else(|| self.constraint.then(String::new))
            })
            .collect();
        // All-constant arguments come back as one row.
        if out.len() == 1 && rows != 1 {
            return Ok(datafusion::logical_expr::ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(datafusion::logical_expr::ColumnarValue::Array(Arc::new(out)))
    }
}

/// Arbor's `pg_get_indexdef` and `pg_get_constraintdef` (registered after
/// datafusion-pg-catalog's, which they replace).
pub fn key_definition_udfs(instance: &Arc<Instance>) -> Vec<datafusion::logical_expr::ScalarUDF> {
    use datafusion::logical_expr::{TypeSignature, Volatility};
    [false, true]
        .into_iter()
        .map(|constraint| {
            let arities = if constraint { vec![1, 2] } else { vec![1, 3] };
            let signature = Signature::one_of(arities.into_iter().map(TypeSignature::Any).collect(), Volatility::Stable);
            datafusion::logical_expr::ScalarUDF::new_from_impl(KeyDefinition { constraint, signature, instance: instance.clone() })
        })
        .collect()
}

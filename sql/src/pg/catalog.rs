//! PostgreSQL's catalog functions over relations, functions, databases and
//! tablespaces that psql's `\df`, `\dt+`, `\l+` and `\db` call, and the
//! privilege lists of `pg_catalog` typed as PostgreSQL's `aclitem[]`
//! ([`CatalogColumns`]).
//!
//! - `pg_get_function_result(oid)`, `pg_get_function_arguments(oid)`,
//!   `pg_get_function_identity_arguments(oid)`: a function's signature as
//!   PostgreSQL writes it, from datafusion-pg-catalog's `pg_proc` (the
//!   functions PostgreSQL has); `pg_get_function_sqlbody(oid)` is NULL, as
//!   for every function not written in SQL-standard form.
//! - `pg_size_pretty(bytes)`: PostgreSQL 15's rounding and units.
//! - `pg_table_size(oid)`: NULL. A device's points share TsFiles with its
//!   database's other devices and the catalog relations are virtual, so no
//!   relation has a size of its own to report.
//! - `pg_database_size(name)`: the bytes of the data directory for the
//!   session's database (Arbor keeps one), NULL for any other.
//! - `pg_tablespace_location(oid)`: `''`, as for PostgreSQL's built-in
//!   tablespaces, the only ones there are.
//! - `pg_encoding_to_char(id)`: PostgreSQL's name of an encoding (`UTF8`
//!   for 6, which psql's `\l` shows; datafusion-pg-catalog's says `UTF-8`),
//!   `''` for an id PostgreSQL does not have.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::{new_null_array, Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::exec_err;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TableProviderFilterPushDown, Volatility};
use datafusion::physical_plan::{collect, ExecutionPlan};

use super::functions::{quote_ident, regtype_text as format_type_text};

/// The catalog functions of this module and the one `x::regclass::text`
/// becomes ([`super::parse`]); `data_dir` is the directory the session's
/// database `database` lives in.
pub(crate) fn udfs(database: &str, data_dir: &Path) -> Vec<ScalarUDF> {
    let one = |name: &'static str, returns: DataType, kind: Kind| {
        ScalarUDF::new_from_impl(CatalogFunction { name, signature: Signature::any(1, Volatility::Stable), returns, kind })
    };
    vec![
        one("pg_get_function_result", DataType::Utf8, Kind::FunctionResult),
        one("pg_get_function_arguments", DataType::Utf8, Kind::FunctionArguments { identity: false }),
        one("pg_get_function_identity_arguments", DataType::Utf8, Kind::FunctionArguments { identity: true }),
        one("pg_get_function_sqlbody", DataType::Utf8, Kind::Null),
        one("pg_size_pretty", DataType::Utf8, Kind::SizePretty),
        one("pg_table_size", DataType::Int64, Kind::Null),
        one("pg_indexes_size", DataType::Int64, Kind::Null),
        one("pg_tablespace_size", DataType::Int64, Kind::Null),
        one("pg_database_size", DataType::Int64, Kind::DatabaseSize { database: database.to_string(), data_dir: data_dir.to_path_buf() }),
        one("pg_tablespace_location", DataType::Utf8, Kind::TablespaceLocation),
        one("pg_encoding_to_char", DataType::Utf8, Kind::EncodingName),
        super::functions::RegclassText::udf(),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Kind {
    FunctionResult,
    FunctionArguments {
        identity: bool,
    },
    SizePretty,
    DatabaseSize {
        database: String,
        data_dir: PathBuf,
    },
    TablespaceLocation,
    EncodingName,
    /// NULL for every argument: see the module's documentation.
    Null,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CatalogFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    kind: Kind,
}

impl ScalarUDFImpl for CatalogFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else { return exec_err!("{} takes one argument", self.name) };
        let arg = arg.to_array(args.number_rows)?;
        let out: ArrayRef = match &self.kind {
            Kind::Null => new_null_array(&self.returns, arg.len()),
            Kind::FunctionResult => texts(&arg, |oid| proc_info(oid).map(|p| p.result()))?,
            Kind::FunctionArguments { identity } => texts(&arg, |oid| proc_info(oid).map(|p| p.arguments(*identity)))?,
            Kind::TablespaceLocation => texts(&arg, |_| Some(String::new()))?,
            Kind::EncodingName => texts(&arg, |id| Some(encoding_name(id).to_string()))?,
            Kind::SizePretty => texts(&arg, |bytes| Some(size_pretty(bytes)))?,
            Kind::DatabaseSize { database, data_dir } => {
                let names = datafusion::arrow::compute::cast(&arg, &DataType::Utf8)?;
                let sizes: Int64Array = names.as_string::<i32>().iter().map(|n| (n? == database).then(|| directory_bytes(data_dir))).collect();
                Arc::new(sizes)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// PostgreSQL's encodings in the order of their ids (`pg_enc` in its
/// `pg_wchar.h`).
const ENCODINGS: &[&str] = &[
    "SQL_ASCII", "EUC_JP", "EUC_CN", "EUC_KR", "EUC_TW", "EUC_JIS_2004", "UTF8", "MULE_INTERNAL", "LATIN1", "LATIN2", "LATIN3", "LATIN4", "LATIN5",
    "LATIN6", "LATIN7", "LATIN8", "LATIN9", "LATIN10", "WIN1256", "WIN1258", "WIN866", "WIN874", "KOI8R", "WIN1251", "WIN1252", "ISO_8859_5",
    "ISO_8859_6", "ISO_8859_7", "ISO_8859_8", "WIN1250", "WIN1253", "WIN1254", "WIN1255", "WIN1257", "KOI8U", "SJIS", "BIG5", "GBK", "UHC", "GB18030",
    "JOHAB", "SHIFT_JIS_2004",
];

/// `pg_encoding_to_char`: the encoding's name, `''` for an unknown id.
fn encoding_name(id: i64) -> &'static str {
    usize::try_from(id).ok().and_then(|i| ENCODINGS.get(i)).copied().unwrap_or("")
}

/// `f` of each value of `arg` read as an integer (an OID or a byte count),
/// NULL for NULL.
fn texts(arg: &ArrayRef, f: impl Fn(i64) -> Option<String>) -> Result<ArrayRef> {
    let numbers = datafusion::arrow::compute::cast(arg, &DataType::Int64)?;
    let out: StringArray = numbers.as_primitive::<Int64Type>().iter().map(|n| n.and_then(&f)).collect();
    Ok(Arc::new(out))
}

/// PostgreSQL 15's `pg_size_pretty(bigint)`: bytes below 10 kB, then the
/// largest unit that keeps the number below 20480, rounded half away from zero.
pub(crate) fn size_pretty(bytes: i64) -> String {
    // (name, limit, rounded, bits of the unit)
    const UNITS: [(&str, i64, bool, u32); 6] = [
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    let mut size = bytes;
    for (i, &(name, limit, round, bits)) in UNITS.iter().enumerate() {
        let next = UNITS.get(i + 1);
        if next.is_none() || size.unsigned_abs() < limit as u64 {
            if round {
                size = (size + if size < 0 { -1 } else { 1 }) / 2;
            }
            return format!("{size} {name}");
        }
        if let Some(&(_, _, next_round, next_bits)) = next {
            // One bit more kept where the next unit rounds, one given back
            // where this one did.
            let shift = next_bits - bits - u32::from(next_round) + u32::from(round);
            size /= 1i64 << shift;
        }
    }
    unreachable!("the last unit always answers")
}

/// The bytes of the files under `dir` (0 where it cannot be read).
fn directory_bytes(dir: &Path) -> i64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => directory_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX)),
            _ => 0,
        })
        .fold(0i64, i64::saturating_add)
}

/// What `pg_get_function_*` need of a `pg_proc` row.
struct ProcInfo {
    returns_set: bool,
    result_type: i64,
    /// `proargtypes`: the input arguments.
    input_types: Vec<i64>,
    /// `proallargtypes`, `proargmodes`, `proargnames` (empty where NULL).
    all_types: Vec<i64>,
    modes: Vec<String>,
    names: Vec<String>,
}

impl ProcInfo {
    /// The arguments, each with its mode, name and type, as `proallargtypes`
    /// lists them (every one an input where it is NULL).
    fn arguments_all(&self) -> Vec<(&str, Option<&str>, i64)> {
        let types = if self.all_types.is_empty() { &self.input_types } else { &self.all_types };
        types
            .iter()
            .enumerate()
            .map(|(i, &t)| (self.modes.get(i).map_or("i", String::as_str), self.names.get(i).map(String::as_str).filter(|n| !n.is_empty()), t))
            .collect()
    }

    /// `pg_get_function_result`: `SETOF t`, `TABLE(name t, …)` for a
    /// function returning table columns, or the type.
    fn result(&self) -> String {
        let columns: Vec<String> = self.arguments_all().into_iter().filter(|(mode, _, _)| *mode == "t").map(|(_, name, t)| argument(None, name, t)).collect();
        if self.returns_set && !columns.is_empty() {
            return format!("TABLE({})", columns.join(", "));
        }
        let t = format_type_text(self.result_type);
        if self.returns_set {
            format!("SETOF {t}")
        } else {
            t
        }
    }

    /// `pg_get_function_arguments` (OUT arguments included; defaults not
    /// written, as their expressions are not kept in a form Arbor reads),
    /// or `pg_get_function_identity_arguments` (the arguments that identify
    /// the function: no OUT ones).
    fn arguments(&self, identity: bool) -> String {
        let mut out = Vec::new();
        for (mode, name, t) in self.arguments_all() {
            let prefix = match mode {
                "t" => continue,
                "o" if identity => continue,
                "o" => Some("OUT"),
                "b" => Some("INOUT"),
                "v" => Some("VARIADIC"),
                _ => None,
            };
            out.push(argument(prefix, name, t));
        }
        out.join(", ")
    }
}

fn argument(mode: Option<&str>, name: Option<&str>, t: i64) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(mode.map(str::to_string));
    parts.extend(name.map(quote_ident));
    parts.push(format_type_text(t));
    parts.join(" ")
}

/// A list as datafusion-pg-catalog's `pg_proc` holds one in text:
/// `[25, 18]`, `['o', 'o']`, or an `oidvector`'s `23 23`.
fn text_list(text: &str) -> Vec<String> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    let separator = if text.trim_start().starts_with('[') { ',' } else { ' ' };
    inner.split(separator).map(|s| s.trim().trim_matches('\'').to_string()).filter(|s| !s.is_empty()).collect()
}

/// datafusion-pg-catalog's `pg_proc` (PostgreSQL's own functions), by OID.
fn proc_info(oid: i64) -> Option<&'static ProcInfo> {
    static PROCS: OnceLock<HashMap<i64, ProcInfo>> = OnceLock::new();
    PROCS
        .get_or_init(|| {
            use datafusion::arrow::datatypes::Int32Type;
            let mut procs = HashMap::new();
            let Ok(tables) = datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables::try_new() else { return procs };
            for batch in tables.pg_proc.data() {
                let int32 = |name: &str| batch.column_by_name(name).and_then(|c| c.as_primitive_opt::<Int32Type>());
                let text = |name: &str| batch.column_by_name(name).and_then(|c| c.as_string_opt::<i32>());
                let retset = batch.column_by_name("proretset").and_then(|c| c.as_boolean_opt());
                let (Some(oids), Some(rettype), Some(retset), Some(argtypes), Some(alltypes), Some(modes), Some(names)) =
                    (int32("oid"), int32("prorettype"), retset, text("proargtypes"), text("proallargtypes"), text("proargmodes"), text("proargnames"))
                else {
                    continue;
                };
                let list = |a: &StringArray, r: usize| if a.is_null(r) { Vec::new() } else { text_list(a.value(r)) };
                let numbers = |v: Vec<String>| v.iter().filter_map(|s| s.parse::<i64>().ok()).collect::<Vec<_>>();
                for r in 0..batch.num_rows() {
                    procs.insert(
                        i64::from(oids.value(r)),
                        ProcInfo {
                            returns_set: retset.value(r),
                            result_type: i64::from(rettype.value(r)),
                            input_types: numbers(list(argtypes, r)),
                            all_types: numbers(list(alltypes, r)),
                            modes: list(modes, r),
                            names: list(names, r),
                        },
                    );
                }
            }
            procs
        })
        .get(&oid)
}

/// `aclitem[]` as Arbor types it: an array of text (as the `relacl`
/// column `provider::pg_catalog` adds to `pg_class`).
pub(crate) fn acl_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// The array type of a column datafusion-pg-catalog holds as text
/// (`{postgres=X/postgres}`) or as an array of another type: access
/// privilege lists (`proacl`, `nspacl`, `datacl`, …).
fn array_type(field: &Field) -> Option<DataType> {
    let wanted = acl_type();
    (field.name().ends_with("acl") && *field.data_type() != wanted && matches!(field.data_type(), DataType::Utf8 | DataType::List(_))).then_some(wanted)
}

/// `pg_catalog` with access privilege lists typed as arrays of text, as PostgreSQL's `aclitem[]`
/// (`array_to_string(p.proacl, E'\n')` in psql's `\df+` and `\dp`).
#[derive(Debug)]
pub(crate) struct CatalogColumns {
    inner: Arc<dyn SchemaProvider>,
}

impl CatalogColumns {
    pub(crate) fn new(inner: Arc<dyn SchemaProvider>) -> Self {
        CatalogColumns { inner }
    }
}

#[async_trait]
impl SchemaProvider for CatalogColumns {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.inner.table(name).await? else { return Ok(None) };
        let schema = table.schema();
        if !schema.fields().iter().any(|f| array_type(f).is_some()) {
            return Ok(Some(table));
        }
        let fields: Vec<Field> =
            schema.fields().iter().map(|f| array_type(f).map_or_else(|| f.as_ref().clone(), |t| Field::new(f.name(), t, true))).collect();
        Ok(Some(Arc::new(RetypedRelation { schema: Arc::new(Schema::new(fields)), inner: table })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// A relation with its privilege lists as arrays of text.
#[derive(Debug)]
struct RetypedRelation {
    schema: SchemaRef,
    inner: Arc<dyn TableProvider>,
}

/// A column as an array of `to`'s elements: PostgreSQL's array text
/// (`{postgres=X/postgres,"\"a b\"=r/postgres"}`) split into its items,
/// or an array of another type, cast.
fn as_array(column: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if let DataType::List(_) = column.data_type() {
        return Ok(datafusion::arrow::compute::cast(column, to)?);
    }
    let texts = text_arrays(column)?;
    Ok(datafusion::arrow::compute::cast(&texts, to)?)
}

/// PostgreSQL's array text as arrays of text.
fn text_arrays(column: &ArrayRef) -> Result<ArrayRef> {
    let text = datafusion::arrow::compute::cast(column, &DataType::Utf8)?;
    let mut lists = datafusion::arrow::array::ListBuilder::new(datafusion::arrow::array::StringBuilder::new());
    for value in text.as_string::<i32>().iter() {
        match value {
            None => lists.append_null(),
            Some(v) => {
                for item in array_items(v) {
                    lists.values().append_value(item);
                }
                lists.append(true);
            }
        }
    }
    Ok(Arc::new(lists.finish()))
}

/// The items of a one-dimensional array in PostgreSQL's text form: split
/// at commas outside double quotes, a quoted item unquoted (`\` escapes
/// the next character).
fn array_items(text: &str) -> Vec<String> {
    let inner = text.trim().strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(text);
    let mut items = Vec::new();
    let (mut item, mut quoted, mut escaped) = (String::new(), false, false);
    for c in inner.chars() {
        match c {
            _ if escaped => {
                item.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut item)),
            _ => item.push(c),
        }
    }
    if !inner.is_empty() {
        items.push(item);
    }
    items
}

#[async_trait]
impl TableProvider for RetypedRelation {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()])
    }

    async fn scan(&self, state: &dyn Session, projection: Option<&Vec<usize>>, _filters: &[Expr], _limit: Option<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        // Catalog relations are small: read the inner one whole.
        let plan = self.inner.scan(state, None, &[], None).await?;
        let batches = collect(plan, state.task_ctx()).await?;
        let batches = batches
            .into_iter()
            .map(|batch| {
                let mut columns = Vec::with_capacity(self.schema.fields().len());
                for (column, field) in batch.columns().iter().zip(self.schema.fields()) {
                    columns.push(if column.data_type() == field.data_type() { column.clone() } else { as_array(column, field.data_type())? });
                }
                Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(MemorySourceConfig::try_new_exec(&[batches], self.schema.clone(), projection.cloned())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_pretty_as_postgresql_prints_them() {
        // PostgreSQL 15: SELECT pg_size_pretty(n)
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10239), "10239 bytes");
        assert_eq!(size_pretty(10240), "10 kB");
        assert_eq!(size_pretty(10485247), "10239 kB");
        assert_eq!(size_pretty(20971519), "20 MB");
        assert_eq!(size_pretty(-10240), "-10 kB");
        assert_eq!(size_pretty(1_000_000_000_000), "931 GB");
        assert_eq!(size_pretty(i64::MAX), "8192 PB");
    }

    #[test]
    fn privilege_lists_are_arrays_of_text() {
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some(r#"{postgres=X/postgres,"\"a b\"=r/postgres"}"#), None, Some("{}")]));
        let lists = as_array(&text, &acl_type()).unwrap();
        let lists = lists.as_list::<i32>();
        assert_eq!(lists.value(0).as_string::<i32>().iter().flatten().collect::<Vec<_>>(), ["postgres=X/postgres", "\"a b\"=r/postgres"]);
        assert!(lists.is_null(1));
        assert_eq!(lists.value(2).len(), 0);
    }

    #[test]
    fn function_signatures_are_written_as_postgresql_writes_them() {
        // generate_series(int4, int4): OID 1067
        let series = proc_info(1067).expect("pg_proc has generate_series(int4, int4)");
        assert_eq!(series.result(), "SETOF integer");
        assert_eq!(series.arguments(false), "integer, integer");
        // pg_get_keywords(): OID 1686
        let keywords = proc_info(1686).expect("pg_proc has pg_get_keywords");
        assert_eq!(keywords.result(), "SETOF record");
        assert_eq!(keywords.arguments(false), "OUT word text, OUT catcode \"char\", OUT barelabel boolean, OUT catdesc text, OUT baredesc text");
        assert_eq!(keywords.arguments(true), "");
    }
}

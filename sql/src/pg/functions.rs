//! PostgreSQL's session functions, bound to one session's state:
//! `current_setting`, `set_config`, `session_user`, the `pg_advisory_*`
//! lock family, `pg_notify`, and `pg_typeof`.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, DataFusionError, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility};

use super::advisory::{Key, Locks};
use super::settings::Settings;
use super::typing::type_name;

type Body = dyn Fn(&[ArrayRef], usize) -> datafusion::error::Result<ArrayRef> + Send + Sync;

/// A function over the session's state, evaluated row by row over arrays.
struct SessionFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    body: Arc<Body>,
}

impl fmt::Debug for SessionFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionFunction").field("name", &self.name).finish_non_exhaustive()
    }
}

impl PartialEq for SessionFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.body, &other.body)
    }
}

impl Eq for SessionFunction {}

impl Hash for SessionFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for SessionFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = (self.body)(&arrays, if scalar && !arrays.is_empty() { 1 } else { rows })?;
        if scalar && out.len() == 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

fn udf(name: &'static str, signatures: Vec<TypeSignature>, returns: DataType, body: Arc<Body>) -> ScalarUDF {
    let signature = Signature::one_of(signatures, Volatility::Volatile);
    ScalarUDF::new_from_impl(SessionFunction { name, signature, returns, body })
}

fn ours(e: crate::error::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

fn text(a: &ArrayRef, row: usize) -> Option<&str> {
    let a = a.as_string::<i32>();
    (!a.is_null(row)).then(|| a.value(row))
}

/// The lock key in row `row` of the arguments.
fn key(args: &[ArrayRef], row: usize) -> datafusion::error::Result<Option<Key>> {
    let ints: Vec<_> = args.iter().map(|a| a.as_primitive::<Int64Type>()).collect();
    if ints.iter().any(|a| a.is_null(row)) {
        return Ok(None);
    }
    Ok(Some(match ints.as_slice() {
        [one] => Key::One(one.value(row)),
        [a, b] => {
            let int4 = |v: i64| {
                i32::try_from(v).map_err(|_| ours(crate::error::Error::NumericOverflow("integer out of range".into())))
            };
            Key::Two(int4(a.value(row))?, int4(b.value(row))?)
        }
        _ => return exec_err!("advisory lock functions take one bigint or two integers"),
    }))
}

fn key_signatures() -> Vec<TypeSignature> {
    vec![TypeSignature::Exact(vec![DataType::Int64]), TypeSignature::Exact(vec![DataType::Int64, DataType::Int64])]
}

/// PostgreSQL prints `void` as the empty string.
fn voids(rows: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![Some(""); rows]))
}

/// The session functions of a session with these settings and locks.
pub(crate) fn session_functions(settings: &Settings, locks: &Arc<Locks>) -> Vec<ScalarUDF> {
    let mut out = Vec::new();

    let s = settings.clone();
    out.push(udf(
        "current_setting",
        vec![TypeSignature::Exact(vec![DataType::Utf8]), TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean])],
        DataType::Utf8,
        Arc::new(move |args: &[ArrayRef], rows| {
            let missing_ok = args.get(1).map(|a| a.as_boolean().clone());
            let values = (0..rows)
                .map(|r| {
                    let Some(name) = text(&args[0], r) else { return Ok(None) };
                    let ok = missing_ok.as_ref().is_some_and(|m| !m.is_null(r) && m.value(r));
                    s.get(name, ok).map_err(ours)
                })
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            Ok(Arc::new(StringArray::from(values)) as ArrayRef)
        }),
    ));

    let s = settings.clone();
    out.push(udf(
        "set_config",
        vec![TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8, DataType::Boolean])],
        DataType::Utf8,
        Arc::new(move |args: &[ArrayRef], rows| {
            let values = (0..rows)
                .map(|r| {
                    let Some(name) = text(&args[0], r) else {
                        return Err(ours(crate::error::Error::InvalidParameter("NULL value not allowed for set_config's name".into())));
                    };
                    // is_local (the third argument) would end with the transaction; Arbor has none to end it.
                    s.set(name, text(&args[1], r)).map(Some).map_err(ours)
                })
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            Ok(Arc::new(StringArray::from(values)) as ArrayRef)
        }),
    ));

    for (name, shared, xact) in [
        ("pg_advisory_lock", false, false),
        ("pg_advisory_lock_shared", true, false),
        ("pg_advisory_xact_lock", false, true),
        ("pg_advisory_xact_lock_shared", true, true),
    ] {
        let l = locks.clone();
        out.push(udf(
            name,
            key_signatures(),
            DataType::Utf8,
            Arc::new(move |args: &[ArrayRef], rows| {
                for r in 0..rows {
                    if let Some(k) = key(args, r)? {
                        l.lock(k, shared, xact).map_err(ours)?;
                    }
                }
                Ok(voids(rows))
            }),
        ));
    }
    for (name, shared, xact) in [
        ("pg_try_advisory_lock", false, false),
        ("pg_try_advisory_lock_shared", true, false),
        ("pg_try_advisory_xact_lock", false, true),
        ("pg_try_advisory_xact_lock_shared", true, true),
    ] {
        let l = locks.clone();
        out.push(udf(
            name,
            key_signatures(),
            DataType::Boolean,
            Arc::new(move |args: &[ArrayRef], rows| {
                let taken = (0..rows)
                    .map(|r| key(args, r)?.map(|k| l.try_lock(k, shared, xact).map_err(ours)).transpose())
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                Ok(Arc::new(BooleanArray::from(taken)) as ArrayRef)
            }),
        ));
    }
    for (name, shared) in [("pg_advisory_unlock", false), ("pg_advisory_unlock_shared", true)] {
        let l = locks.clone();
        out.push(udf(
            name,
            key_signatures(),
            DataType::Boolean,
            Arc::new(move |args: &[ArrayRef], rows| {
                let released = (0..rows)
                    .map(|r| key(args, r)?.map(|k| l.unlock(k, shared).map_err(ours)).transpose())
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                Ok(Arc::new(BooleanArray::from(released)) as ArrayRef)
            }),
        ));
    }
    let l = locks.clone();
    out.push(udf(
        "pg_advisory_unlock_all",
        vec![TypeSignature::Exact(vec![])],
        DataType::Utf8,
        Arc::new(move |_args: &[ArrayRef], rows| {
            l.unlock_all().map_err(ours)?;
            Ok(voids(rows.max(1)))
        }),
    ));
    // `session_user` (datafusion-pg-catalog plans `current_user` as it, and
    // Arbor `user`): the user the client authenticated as, or the one `SET
    // SESSION AUTHORIZATION` named.
    let s = settings.clone();
    out.push(udf(
        "session_user",
        vec![TypeSignature::Exact(vec![])],
        DataType::Utf8,
        Arc::new(move |_args: &[ArrayRef], rows| {
            let user = s.get("session_authorization", false).map_err(ours)?;
            Ok(Arc::new(StringArray::from(vec![user; rows.max(1)])) as ArrayRef)
        }),
    ));
    // Arbor delivers no notifications (LISTEN is accepted, nothing is sent):
    // pg_notify checks its arguments and returns void, as NOTIFY does.
    out.push(udf(
        "pg_notify",
        vec![TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8])],
        DataType::Utf8,
        Arc::new(|args: &[ArrayRef], rows| {
            for r in 0..rows {
                if text(&args[0], r).is_none_or(str::is_empty) {
                    return Err(ours(crate::error::Error::InvalidParameter("channel name cannot be empty".into())));
                }
            }
            Ok(voids(rows))
        }),
    ));
    out
}

/// `pg_typeof(any)`: the PostgreSQL name of its argument's type.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct PgTypeof {
    signature: Signature,
}

impl PgTypeof {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(PgTypeof { signature: Signature::any(1, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let t = args.arg_fields.first().map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(type_name(&t)))))
    }
}

/// PostgreSQL's built-in types by the names `to_regtype` accepts (its
/// `typname` and the SQL spellings), with their OIDs as `pg_type` has them.
const TYPE_OIDS: &[(&[&str], i32)] = &[
    (&["bool", "boolean"], 16),
    (&["bytea"], 17),
    (&["char", "\"char\""], 18),
    (&["name"], 19),
    (&["int8", "bigint"], 20),
    (&["int2", "smallint"], 21),
    (&["int4", "integer", "int"], 23),
    (&["regproc"], 24),
    (&["text"], 25),
    (&["oid"], 26),
    (&["json"], 114),
    (&["xml"], 142),
    (&["float4", "real"], 700),
    (&["float8", "double precision"], 701),
    (&["unknown"], 705),
    (&["inet"], 869),
    (&["bpchar", "character", "char"], 1042),
    (&["varchar", "character varying"], 1043),
    (&["date"], 1082),
    (&["time", "time without time zone"], 1083),
    (&["timestamp", "timestamp without time zone"], 1114),
    (&["timestamptz", "timestamp with time zone"], 1184),
    (&["interval"], 1186),
    (&["timetz", "time with time zone"], 1266),
    (&["numeric", "decimal"], 1700),
    (&["regclass"], 2205),
    (&["regtype"], 2206),
    (&["void"], 2278),
    (&["uuid"], 2950),
    (&["jsonb"], 3802),
];

/// `to_regtype(name)`: the OID of a built-in type, NULL for any other name
/// (drivers probe for extension types such as `hstore` this way).
pub(crate) fn to_regtype_udf() -> ScalarUDF {
    datafusion::logical_expr::create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let names = arrays[0].as_string::<i32>();
            let oids: datafusion::arrow::array::Int32Array = names
                .iter()
                .map(|n| {
                    let n = n?.trim().trim_start_matches("pg_catalog.").to_ascii_lowercase();
                    let (base, array) = match n.strip_suffix("[]") {
                        Some(b) => (b.to_string(), true),
                        None => (n, false),
                    };
                    let oid = TYPE_OIDS.iter().find(|(names, _)| names.contains(&base.as_str()))?.1;
                    // Array types are listed by pg_type's typarray; only the element is looked up here.
                    (!array).then_some(oid)
                })
                .collect();
            let out: ArrayRef = Arc::new(oids);
            Ok(if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
            } else {
                ColumnarValue::Array(out)
            })
        }),
    )
}

/// Functions about objects Arbor does not have, answering as PostgreSQL
/// does for an object without one: `col_description`, `obj_description`,
/// `shobj_description` (Arbor has no `COMMENT ON`, so no comment) and
/// `pg_get_serial_sequence` (no column is backed by a sequence): NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Description {
    name: &'static str,
    signature: Signature,
}

impl Description {
    pub(crate) fn udfs() -> Vec<ScalarUDF> {
        [("col_description", vec![2]), ("obj_description", vec![1, 2]), ("shobj_description", vec![2]), ("pg_get_serial_sequence", vec![2])]
            .into_iter()
            .map(|(name, arities)| {
                let signature = Signature::one_of(arities.into_iter().map(TypeSignature::Any).collect(), Volatility::Stable);
                ScalarUDF::new_from_impl(Description { name, signature })
            })
            .collect()
    }
}

impl ScalarUDFImpl for Description {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))
    }
}

/// `json_build_object(key, value, …)`: a JSON object as text (SQLAlchemy's
/// column reflection builds identity and collation facts with it).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct JsonBuildObject {
    signature: Signature,
}

impl JsonBuildObject {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(JsonBuildObject { signature: Signature::variadic_any(Volatility::Immutable) })
    }
}

/// `v` as a JSON string literal.
fn json_string(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The JSON form of row `row` of `a`.
fn json_value(a: &ArrayRef, row: usize) -> datafusion::error::Result<String> {
    // A NULL literal is a NullArray, which has no validity buffer to ask.
    if a.data_type() == &DataType::Null || a.is_null(row) {
        return Ok("null".into());
    }
    let v = ScalarValue::try_from_array(a, row)?;
    Ok(match v {
        ScalarValue::Boolean(Some(b)) => b.to_string(),
        ScalarValue::Float32(Some(f)) if f.is_finite() => f.to_string(),
        ScalarValue::Float64(Some(f)) if f.is_finite() => f.to_string(),
        v if v.data_type().is_integer() => v.to_string(),
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => json_string(&s),
        other => json_string(&other.to_string()),
    })
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        if !args.len().is_multiple_of(2) {
            return Err(ours(crate::error::Error::InvalidParameter("argument list must have even number of elements".into())));
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let rows = if arrays.is_empty() { 1 } else { args.number_rows };
        let mut out = Vec::with_capacity(rows);
        for r in 0..rows {
            let mut fields = Vec::with_capacity(arrays.len() / 2);
            for pair in arrays.chunks(2) {
                if pair[0].data_type() == &DataType::Null || pair[0].is_null(r) {
                    return Err(ours(crate::error::Error::InvalidParameter("null value not allowed for object key".into())));
                }
                let key = ScalarValue::try_from_array(&pair[0], r)?;
                let key = match key {
                    ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s,
                    other => other.to_string(),
                };
                fields.push(format!("{} : {}", json_string(&key), json_value(&pair[1], r)?));
            }
            out.push(format!("{{{}}}", fields.join(", ")));
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}

/// `pg_collation_is_visible`, `pg_type_is_visible`, `pg_function_is_visible`,
/// `pg_operator_is_visible`, `pg_opclass_is_visible`, `pg_opfamily_is_visible`:
/// every collation, type, function, operator and operator class or family
/// Arbor has lives in `pg_catalog`, which is always searched first, so each
/// is visible (NULL for NULL).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct IsVisible {
    name: &'static str,
    signature: Signature,
}

impl IsVisible {
    pub(crate) fn udfs() -> Vec<ScalarUDF> {
        ["pg_collation_is_visible", "pg_type_is_visible", "pg_function_is_visible", "pg_operator_is_visible", "pg_opclass_is_visible", "pg_opfamily_is_visible"]
            .into_iter()
            .map(|name| ScalarUDF::new_from_impl(IsVisible { name, signature: Signature::any(1, Volatility::Stable) }))
            .collect()
    }
}

impl ScalarUDFImpl for IsVisible {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let visible: BooleanArray = (0..arrays[0].len()).map(|r| (!arrays[0].is_null(r)).then_some(true)).collect();
        Ok(ColumnarValue::Array(Arc::new(visible)))
    }
}

/// `arbor_when(condition, value)`: `value` where `condition` holds, else
/// NULL. What `CASE WHEN c THEN (correlated subquery) END` becomes
/// ([`super::rewrite`]): DataFusion decorrelates a subquery that is a
/// function's argument, not one inside CASE.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct When {
    signature: Signature,
}

/// The name of [`When`].
pub(crate) const WHEN: &str = "arbor_when";

impl When {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(When { signature: Signature::any(2, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for When {
    fn name(&self) -> &str {
        WHEN
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(args.get(1).cloned().unwrap_or(DataType::Null))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let rows = args.number_rows;
        let [condition, value] = args.args.as_slice() else { return exec_err!("arbor_when takes a condition and a value") };
        let condition = condition.to_array(rows)?;
        let condition = datafusion::arrow::compute::cast(&condition, &DataType::Boolean)?;
        let value = value.to_array(rows)?;
        let null = datafusion::arrow::array::new_null_array(value.data_type(), rows);
        let chosen = datafusion::arrow::compute::kernels::zip::zip(condition.as_boolean(), &value, &null)?;
        Ok(ColumnarValue::Array(chosen))
    }
}

/// `arbor_array_or_empty(a)`: `a`, with NULL as the empty array of its
/// type. What the array constructor `ARRAY(SELECT …)` is over the
/// aggregate or array function [`super::rewrite`] makes of it: no row is
/// `{}` in PostgreSQL, where `array_agg` of no rows is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ArrayOrEmpty {
    signature: Signature,
}

/// The name of [`ArrayOrEmpty`].
pub(crate) const ARRAY_OR_EMPTY: &str = "arbor_array_or_empty";

impl ArrayOrEmpty {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(ArrayOrEmpty { signature: Signature::any(1, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for ArrayOrEmpty {
    fn name(&self) -> &str {
        ARRAY_OR_EMPTY
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::Null))
    }

    /// The argument's field: its elements keep their marks (`oid[]`).
    fn return_field_from_args(&self, args: datafusion::logical_expr::ReturnFieldArgs) -> datafusion::error::Result<datafusion::arrow::datatypes::FieldRef> {
        let Some(field) = args.arg_fields.first() else { return exec_err!("{ARRAY_OR_EMPTY} takes one argument") };
        Ok(Arc::new(field.as_ref().clone().with_name(self.name()).with_nullable(true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        use datafusion::arrow::array::{GenericListArray, OffsetSizeTrait};
        use datafusion::arrow::buffer::OffsetBuffer;
        use datafusion::arrow::compute::{is_not_null, kernels::zip::zip};
        fn or_empty<O: OffsetSizeTrait>(list: &GenericListArray<O>) -> datafusion::error::Result<ArrayRef> {
            let (DataType::List(field) | DataType::LargeList(field)) = list.data_type() else { return exec_err!("{ARRAY_OR_EMPTY} takes an array") };
            let empty = GenericListArray::<O>::try_new(
                field.clone(),
                OffsetBuffer::new_zeroed(list.len()),
                datafusion::arrow::array::new_empty_array(field.data_type()),
                None,
            )?;
            Ok(zip(&is_not_null(list)?, &list, &empty)?)
        }
        let [value] = args.args.as_slice() else { return exec_err!("{ARRAY_OR_EMPTY} takes one argument") };
        let array = value.to_array(args.number_rows)?;
        let out = match array.data_type() {
            _ if array.null_count() == 0 => array,
            DataType::List(_) => or_empty(array.as_list::<i32>())?,
            DataType::LargeList(_) => or_empty(array.as_list::<i64>())?,
            // Untyped (`array_agg(NULL)`): nothing to make an array of.
            _ => array,
        };
        // The declared type, element marks included (`oid[]`), which a
        // list's value may lack: `array_agg` and a scalar subquery's value
        // drop them. Always an array: a list scalar made an array loses them.
        let declared = args.return_field.data_type();
        let out = if out.data_type() == declared { out } else { datafusion::arrow::compute::cast(&out, declared)? };
        Ok(ColumnarValue::Array(out))
    }
}

/// `arbor_regtype_text(oid)`: a `regtype` as text, as PostgreSQL's
/// `regtypeout` writes it: the type's name as `format_type` gives it (SQL's
/// names for built-in types, `integer[]` for an array), `-` for 0, the
/// number of an OID no type has. What `x::regtype::text` becomes
/// ([`super::parse`]): datafusion-pg-catalog plans `x::regtype` as the
/// number.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct RegtypeText {
    signature: Signature,
}

/// The name of [`RegtypeText`].
pub(crate) const REGTYPE_TEXT: &str = "arbor_regtype_text";

impl RegtypeText {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(RegtypeText { signature: Signature::any(1, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for RegtypeText {
    fn name(&self) -> &str {
        REGTYPE_TEXT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let [value] = args.args.as_slice() else { return exec_err!("{REGTYPE_TEXT} takes one argument") };
        let oids = datafusion::arrow::compute::cast(&value.to_array(args.number_rows)?, &DataType::Int64)?;
        let oids = oids.as_primitive::<Int64Type>();
        let names: StringArray = oids.iter().map(|oid| oid.map(regtype_text)).collect();
        Ok(ColumnarValue::Array(Arc::new(names)))
    }
}

/// `arbor_regclass_text(name [, 'column name'])`: `name`, the text of
/// `x::regclass` that [`super::parse`] looks up in `pg_class`. The second
/// argument, where `x` has a name of its own, only names the column as
/// PostgreSQL names `x::regclass::text` ([`super::names`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct RegclassText {
    signature: Signature,
}

/// The name of [`RegclassText`].
pub(crate) const REGCLASS_TEXT: &str = "arbor_regclass_text";

impl RegclassText {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(RegclassText { signature: Signature::one_of(vec![TypeSignature::Any(1), TypeSignature::Any(2)], Volatility::Stable) })
    }
}

impl ScalarUDFImpl for RegclassText {
    fn name(&self) -> &str {
        REGCLASS_TEXT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let Some(name) = args.args.first() else { return exec_err!("{REGCLASS_TEXT} takes a name") };
        match name {
            ColumnarValue::Scalar(s) => Ok(ColumnarValue::Scalar(s.cast_to(&DataType::Utf8)?)),
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(datafusion::arrow::compute::cast(a, &DataType::Utf8)?)),
        }
    }
}

/// A type of PostgreSQL's catalog as `format_type` names it.
struct CatalogType {
    name: String,
    /// The element type of an array type (`_int4`'s `int4`).
    array_of: Option<i32>,
}

/// datafusion-pg-catalog's `pg_type` (PostgreSQL's own types), by OID.
fn catalog_types() -> &'static HashMap<i32, CatalogType> {
    static TYPES: std::sync::OnceLock<HashMap<i32, CatalogType>> = std::sync::OnceLock::new();
    TYPES.get_or_init(|| {
        use datafusion::arrow::datatypes::{Int16Type, Int32Type};
        let mut types = HashMap::new();
        let Ok(tables) = datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables::try_new() else { return types };
        for batch in tables.pg_type.data() {
            let int32 = |name: &str| batch.column_by_name(name).and_then(|c| c.as_primitive_opt::<Int32Type>());
            let text = |name: &str| batch.column_by_name(name).and_then(|c| c.as_string_opt::<i32>());
            let typlen = batch.column_by_name("typlen").and_then(|c| c.as_primitive_opt::<Int16Type>());
            let (Some(oid), Some(typname), Some(typelem), Some(typlen), Some(typstorage)) =
                (int32("oid"), text("typname"), int32("typelem"), typlen, text("typstorage"))
            else {
                continue;
            };
            for r in 0..batch.num_rows() {
                // `format_type`'s arrays: an element, variable length, not
                // stored plain (`int2vector` has an element but is no array).
                let array = typelem.value(r) != 0 && typlen.value(r) == -1 && typstorage.value(r) != "p";
                types.insert(oid.value(r), CatalogType { name: typname.value(r).to_string(), array_of: array.then(|| typelem.value(r)) });
            }
        }
        types
    })
}

/// The name PostgreSQL's `format_type(oid, typmod)` gives type `oid`
/// (`typmod` `None` for NULL), `None` for no such type: SQL's names for
/// built-in types, a modifier where one is given (`character varying(20)`,
/// `numeric(10,2)`), `[]` after an array's element, other names quoted
/// where they need it.
fn format_type_name(oid: i32, typmod: Option<i32>) -> Option<String> {
    let t = catalog_types().get(&oid)?;
    if let Some(element) = t.array_of {
        return format_type_name(element, typmod).map(|e| format!("{e}[]"));
    }
    // A modifier given as -1 is none, except that `bpchar` and `bit` are
    // then not `character` and `bit` (which mean length 1).
    let given = typmod.is_some();
    let modifier = typmod.filter(|m| *m >= 0);
    let length = |name: &str, m: i32| format!("{name}({})", m - 4);
    let precision = |name: &str, zone: &str| match modifier {
        Some(p) => format!("{name}({p}) {zone}"),
        None => format!("{name} {zone}"),
    };
    let sql = match t.name.as_str() {
        "bool" => "boolean".to_string(),
        "int2" => "smallint".to_string(),
        "int4" => "integer".to_string(),
        "int8" => "bigint".to_string(),
        "float4" => "real".to_string(),
        "float8" => "double precision".to_string(),
        "bpchar" => match modifier {
            Some(m) => length("character", m),
            None if given => "bpchar".to_string(),
            None => "character".to_string(),
        },
        "varchar" => modifier.map_or_else(|| "character varying".to_string(), |m| length("character varying", m)),
        "numeric" => match modifier {
            Some(m) => format!("numeric({},{})", ((m - 4) >> 16) & 0xffff, (m - 4) & 0xffff),
            None => "numeric".to_string(),
        },
        "bit" => match modifier {
            Some(m) => format!("bit({m})"),
            None if given => "\"bit\"".to_string(),
            None => "bit".to_string(),
        },
        "varbit" => modifier.map_or_else(|| "bit varying".to_string(), |m| format!("bit varying({m})")),
        "time" => precision("time", "without time zone"),
        "timetz" => precision("time", "with time zone"),
        "timestamp" => precision("timestamp", "without time zone"),
        "timestamptz" => precision("timestamp", "with time zone"),
        // A keyword, quoted as PostgreSQL quotes it.
        "char" => "\"char\"".to_string(),
        plain if plain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') => plain.to_string(),
        other => format!("\"{}\"", other.replace('"', "\"\"")),
    };
    Some(sql)
}

/// An OID as `oid` reads it: int4 holds the ones past 2^31 negative.
fn as_oid(oid: i64) -> Option<i32> {
    i32::try_from(oid).ok().or_else(|| u32::try_from(oid).ok().map(|u| i32::from_ne_bytes(u.to_ne_bytes())))
}

/// `format_type(type_oid, typmod)`, as PostgreSQL names types (psql's `\d`
/// and `\gdesc`, ORMs' reflection): see [`format_type_name`]; `-` for 0,
/// `???` for an OID no type has, NULL for a NULL type.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct FormatType {
    signature: Signature,
}

impl FormatType {
    /// Replaces datafusion-pg-catalog's, which names only some types
    /// (`oid(1028)` for `oid[]`).
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(FormatType { signature: Signature::any(2, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for FormatType {
    fn name(&self) -> &str {
        "format_type"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let [oid, typmod] = args.args.as_slice() else { return exec_err!("format_type takes a type OID and a modifier") };
        let int64 = |v: &ColumnarValue| -> datafusion::error::Result<ArrayRef> { Ok(datafusion::arrow::compute::cast(&v.to_array(args.number_rows)?, &DataType::Int64)?) };
        let (oids, typmods) = (int64(oid)?, int64(typmod)?);
        let (oids, typmods) = (oids.as_primitive::<Int64Type>(), typmods.as_primitive::<Int64Type>());
        let names: StringArray = oids
            .iter()
            .zip(typmods.iter())
            .map(|(oid, typmod)| {
                let oid = oid?;
                if oid == 0 {
                    return Some("-".to_string());
                }
                let typmod = typmod.and_then(|m| i32::try_from(m).ok());
                Some(as_oid(oid).and_then(|o| format_type_name(o, typmod)).unwrap_or_else(|| "???".to_string()))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(names)))
    }
}

/// PostgreSQL's `regtypeout` of `oid`.
pub(crate) fn regtype_text(oid: i64) -> String {
    if oid == 0 {
        return "-".into();
    }
    as_oid(oid).and_then(|o| format_type_name(o, None)).unwrap_or_else(|| oid.to_string())
}

/// `arbor_like_escape(pattern, escape)`: a LIKE pattern written with
/// `escape` as its escape character (`ESCAPE '/'`), in the backslash escapes
/// DataFusion's LIKE reads: `c%` is a literal `%` (`\%`), a backslash is a
/// literal one (`\\`); an empty `escape` is none. What `x LIKE p ESCAPE
/// 'c'` becomes ([`super::rewrite`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct LikeEscape {
    signature: Signature,
}

/// The name of [`LikeEscape`].
pub(crate) const LIKE_ESCAPE: &str = "arbor_like_escape";

impl LikeEscape {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(LikeEscape { signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable) })
    }
}

/// `pattern` with escape character `escape` in backslash escapes.
fn backslash_pattern(pattern: &str, escape: &str) -> datafusion::error::Result<String> {
    let mut escape_chars = escape.chars();
    let escape = match (escape_chars.next(), escape_chars.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => return Err(ours(crate::error::Error::InvalidEscapeSequence("invalid escape string: must be empty or one character".into()))),
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let literal = if Some(c) == escape {
            match chars.next() {
                Some(next) => next,
                None => return Err(ours(crate::error::Error::InvalidEscapeSequence("LIKE pattern must not end with escape character".into()))),
            }
        } else if c == '\\' {
            c
        } else {
            out.push(c);
            continue;
        };
        if matches!(literal, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(literal);
    }
    Ok(out)
}

impl ScalarUDFImpl for LikeEscape {
    fn name(&self) -> &str {
        LIKE_ESCAPE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [patterns, escapes] = arrays.as_slice() else { return exec_err!("{LIKE_ESCAPE} takes a pattern and an escape character") };
        let rows = patterns.len().max(escapes.len());
        let out = (0..rows)
            .map(|r| match (text(patterns, r.min(patterns.len() - 1)), text(escapes, r.min(escapes.len() - 1))) {
                (Some(p), Some(e)) => backslash_pattern(p, e).map(Some),
                _ => Ok(None),
            })
            .collect::<datafusion::error::Result<StringArray>>()?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `timezone(zone, ts)`, what `ts AT TIME ZONE zone` means in PostgreSQL:
/// a `timestamptz` becomes the wall-clock time in `zone` (a `timestamp`
/// without time zone), and a `timestamp` is read as wall-clock time in
/// `zone` (a `timestamptz`). DataFusion plans `AT TIME ZONE` as the second
/// for both, so `rewrite.rs` calls this instead.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct AtTimeZone {
    signature: Signature,
}

/// The name of [`AtTimeZone`], PostgreSQL's.
pub(crate) const AT_TIME_ZONE: &str = "timezone";

impl AtTimeZone {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(AtTimeZone { signature: Signature::any(2, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for AtTimeZone {
    fn name(&self) -> &str {
        AT_TIME_ZONE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> datafusion::error::Result<DataType> {
        use datafusion::arrow::datatypes::TimeUnit;
        Ok(match args.get(1) {
            Some(DataType::Timestamp(unit, Some(_))) => DataType::Timestamp(*unit, None),
            Some(DataType::Timestamp(unit, None)) => DataType::Timestamp(*unit, Some("+00:00".into())),
            // A text literal is read as a timestamp with time zone, as PostgreSQL reads it.
            _ => DataType::Timestamp(TimeUnit::Microsecond, None),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        use datafusion::arrow::array::timezone::Tz;
        use datafusion::arrow::array::TimestampMicrosecondArray;
        use datafusion::arrow::datatypes::TimeUnit;
        use chrono::{Offset, TimeZone};
        let rows = args.number_rows;
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let [zone, value] = args.args.as_slice() else { return exec_err!("timezone takes a zone and a timestamp") };
        let zones = zone.to_array(rows)?;
        let zones = datafusion::arrow::compute::cast(&zones, &DataType::Utf8)?;
        let zones = zones.as_string::<i32>();
        let value = value.to_array(rows)?;
        let (aware, out_type) = match value.data_type() {
            DataType::Timestamp(unit, Some(_)) => (true, DataType::Timestamp(*unit, None)),
            DataType::Timestamp(unit, None) => (false, DataType::Timestamp(*unit, Some("+00:00".into()))),
            _ => (true, DataType::Timestamp(TimeUnit::Microsecond, None)),
        };
        // Work in microseconds since the epoch (UTC for an aware value, wall clock otherwise).
        let micros_type = DataType::Timestamp(TimeUnit::Microsecond, if aware { Some("+00:00".into()) } else { None });
        let micros = datafusion::arrow::compute::cast(&value, &micros_type)?;
        let micros = micros.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
        let mut out = Vec::with_capacity(rows);
        for r in 0..micros.len() {
            if micros.is_null(r) || zones.is_null(if zones.len() == 1 { 0 } else { r }) {
                out.push(None);
                continue;
            }
            let name = zones.value(if zones.len() == 1 { 0 } else { r });
            let tz: Tz = name.parse().map_err(|_| ours(crate::error::Error::InvalidParameter(format!("time zone \"{name}\" not recognized"))))?;
            let us = micros.value(r);
            let Some(at) = chrono::DateTime::from_timestamp_micros(us) else { return exec_err!("timestamp out of range") };
            let shifted = if aware {
                // The instant's wall clock in the zone.
                us + i64::from(tz.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc()) * 1_000_000
            } else {
                // The wall clock's instant in the zone (the earlier of an ambiguous pair).
                match tz.offset_from_local_datetime(&at.naive_utc()).earliest() {
                    Some(offset) => us - i64::from(offset.fix().local_minus_utc()) * 1_000_000,
                    None => return exec_err!("time zone displacement out of range"),
                }
            };
            out.push(Some(shifted));
        }
        let micros: ArrayRef = Arc::new(TimestampMicrosecondArray::from(out).with_timezone_opt(if aware { None } else { Some("+00:00") }));
        let result = datafusion::arrow::compute::cast(&micros, &out_type)?;
        if scalar && result.len() == 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?));
        }
        Ok(ColumnarValue::Array(result))
    }
}

/// PostgreSQL's keywords that `quote_ident` must quote: reserved, column-name
/// and type/function-name keywords (PostgreSQL 15's kwlist.h; unreserved
/// keywords stay bare).
const QUOTED_KEYWORDS: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization", "between", "bigint", "binary",
    "bit", "boolean", "both", "case", "cast", "char", "character", "check", "coalesce", "collate", "collation", "column",
    "concurrently", "constraint", "create", "cross", "current_catalog", "current_date", "current_role", "current_schema",
    "current_time", "current_timestamp", "current_user", "dec", "decimal", "default", "deferrable", "desc", "distinct", "do",
    "else", "end", "except", "exists", "extract", "false", "fetch", "float", "for", "foreign", "freeze", "from", "full", "grant",
    "greatest", "group", "grouping", "having", "ilike", "in", "initially", "inner", "inout", "int", "integer", "intersect",
    "interval", "into", "is", "isnull", "join", "lateral", "leading", "least", "left", "like", "limit", "localtime",
    "localtimestamp", "national", "natural", "nchar", "none", "normalize", "not", "notnull", "null", "nullif", "numeric",
    "offset", "on", "only", "or", "order", "out", "outer", "overlaps", "overlay", "placing", "position", "precision", "primary",
    "real", "references", "returning", "right", "row", "select", "session_user", "setof", "similar", "smallint", "some",
    "substring", "symmetric", "table", "tablesample", "then", "time", "timestamp", "to", "trailing", "treat", "trim", "true",
    "union", "unique", "user", "using", "values", "varchar", "variadic", "verbose", "when", "where", "window", "with",
    "xmlattributes", "xmlconcat", "xmlelement", "xmlexists", "xmlforest", "xmlnamespaces", "xmlparse", "xmlpi", "xmlroot",
    "xmlserialize", "xmltable",
];

/// `quote_ident(text)` as PostgreSQL quotes: bare only for a lower-case
/// identifier (`[a-z_][a-z0-9_$]*`) that is not a keyword needing quotes;
/// otherwise in double quotes with inner quotes doubled.
pub(crate) fn quote_ident(ident: &str) -> String {
    let plain = ident.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && ident.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain && !QUOTED_KEYWORDS.contains(&ident) {
        ident.to_string()
    } else {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }
}

pub(crate) fn quote_ident_udf() -> ScalarUDF {
    datafusion::logical_expr::create_udf(
        "quote_ident",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let scalar = matches!(args.first(), Some(ColumnarValue::Scalar(_)));
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let quoted: StringArray = arrays[0].as_string::<i32>().iter().map(|v| v.map(quote_ident)).collect();
            let out: ArrayRef = Arc::new(quoted);
            Ok(if scalar { ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?) } else { ColumnarValue::Array(out) })
        }),
    )
}

/// `pg_get_expr(expr, relation [, pretty])`: the expression's text, NULL for
/// NULL as PostgreSQL's (strict) function gives. Arbor's catalog keeps no
/// expression trees (no column defaults, partial or expression indexes), so
/// a stored text is its own rendering. datafusion-pg-catalog's answers `''`
/// even for NULL, which pgJDBC reports as an empty `COLUMN_DEF`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct GetExpr {
    signature: Signature,
}

impl GetExpr {
    pub(crate) fn udf() -> ScalarUDF {
        let mut signatures = Vec::new();
        for relation in [DataType::Int32, DataType::UInt32, DataType::Int64, DataType::UInt64] {
            signatures.push(TypeSignature::Exact(vec![DataType::Utf8, relation.clone()]));
            signatures.push(TypeSignature::Exact(vec![DataType::Utf8, relation, DataType::Boolean]));
        }
        ScalarUDF::new_from_impl(GetExpr { signature: Signature::one_of(signatures, Volatility::Stable) })
    }
}

impl ScalarUDFImpl for GetExpr {
    fn name(&self) -> &str {
        "pg_get_expr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
        Ok(match args.args.first() {
            Some(ColumnarValue::Scalar(v)) => ColumnarValue::Scalar(ScalarValue::Utf8(match v {
                ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.clone(),
                _ => None,
            })),
            Some(ColumnarValue::Array(a)) => {
                let text = datafusion::arrow::compute::cast(a, &DataType::Utf8)?;
                ColumnarValue::Array(text)
            }
            None => return exec_err!("pg_get_expr takes an expression"),
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn like_patterns_with_their_own_escape_are_read_with_backslashes() {
        use super::backslash_pattern;
        assert_eq!(backslash_pattern("pg/_%", "/").unwrap(), "pg\\_%");
        assert_eq!(backslash_pattern("a\\b//c", "/").unwrap(), "a\\\\b/c");
        assert_eq!(backslash_pattern("a#%#b", "#").unwrap(), "a\\%b");
        assert_eq!(backslash_pattern("a%_\\", "").unwrap(), "a%_\\\\");
        assert!(backslash_pattern("a/", "/").is_err());
        assert!(backslash_pattern("a", "//").is_err());
    }
    use super::quote_ident;

    #[test]
    fn identifiers_are_quoted_as_postgresql_quotes_them() {
        assert_eq!(quote_ident("time"), "\"time\"");
        assert_eq!(quote_ident("root.ln.d1"), "\"root.ln.d1\"");
        assert_eq!(quote_ident("temperature"), "temperature");
        assert_eq!(quote_ident("public"), "public");
        assert_eq!(quote_ident("Temp"), "\"Temp\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("s1$"), "s1$");
        assert_eq!(quote_ident("1a"), "\"1a\"");
        assert_eq!(quote_ident(""), "\"\"");
    }
}

//! PostgreSQL's session functions, bound to one session's state:
//! `current_setting`, `set_config`, the `pg_advisory_*` lock family,
//! `pg_notify`, and `pg_typeof`.

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

/// `col_description`, `obj_description`, `shobj_description`: the comment
/// on an object. Arbor has no `COMMENT ON`, so no object has one: NULL,
/// as PostgreSQL answers for an object without a comment.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Description {
    name: &'static str,
    signature: Signature,
}

impl Description {
    pub(crate) fn udfs() -> Vec<ScalarUDF> {
        [("col_description", vec![2]), ("obj_description", vec![1, 2]), ("shobj_description", vec![2])]
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

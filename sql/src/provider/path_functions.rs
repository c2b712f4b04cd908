//! Functions over the series tree's paths, for the system tables and for
//! TSQL's `SHOW` planned over them:
//! - `path_matches(path, pattern)`: IoTDB's path pattern (`*`, `**`) match;
//!   a system table answers it on its own key column from the catalog's
//!   pattern walk (filter pushdown), so `SHOW TIMESERIES root.ln.**` does
//!   not list the whole tree;
//! - `path_level(path, n)`: the ancestor at level `n` (root is level 0),
//!   NULL when the path is shorter (`GROUP BY LEVEL` of the listings);
//! - `tag_value(tags, key)`: one tag of a `tags`/`attributes` column.

use std::collections::BTreeMap;
use std::sync::Arc;

use catalog::{Path, PathPattern};
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility};

/// A column argument as a `Utf8` array of `rows` rows (scalars repeated).
fn text_column(value: &ColumnarValue, rows: usize) -> Result<ArrayRef> {
    let array = value.to_array(rows)?;
    Ok(cast(&array, &DataType::Utf8)?)
}

/// A constant text argument (the pattern, the key), or an error naming it.
fn constant_text(value: &ColumnarValue, function: &str, what: &str) -> Result<Option<String>> {
    match value {
        ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Utf8)? {
            ScalarValue::Utf8(text) => Ok(text),
            other => Err(DataFusionError::Plan(format!("{function}: {what} must be text, not {other}"))),
        },
        ColumnarValue::Array(_) => Err(DataFusionError::Plan(format!("{function}: {what} must be a constant"))),
    }
}

fn strings(array: &ArrayRef) -> Result<&StringArray> {
    array.as_any().downcast_ref::<StringArray>().ok_or_else(|| DataFusionError::Internal("expected a Utf8 array".into()))
}

/// `path_matches(path, pattern)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PathMatches {
    signature: Signature,
}

impl PathMatches {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(PathMatches { signature: Signature::string(2, Volatility::Immutable) })
    }

    /// The call `path_matches(path, 'pattern')`.
    pub fn call(path: Expr, pattern: &str) -> Expr {
        Arc::new(Self::udf()).call(vec![path, datafusion::prelude::lit(pattern)])
    }

    /// The column name and pattern of `path_matches(column, 'pattern')`,
    /// the form a system table answers from the catalog.
    pub(crate) fn column_and_pattern(expr: &Expr) -> Option<(&str, &str)> {
        let Expr::ScalarFunction(f) = expr else {
            return None;
        };
        if !f.func.inner().is::<PathMatches>() {
            return None;
        }
        match f.args.as_slice() {
            [Expr::Column(c), Expr::Literal(pattern, _)] => Some((c.name.as_str(), pattern.try_as_str().flatten()?)),
            _ => None,
        }
    }
}

impl ScalarUDFImpl for PathMatches {
    fn name(&self) -> &str {
        "path_matches"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [path, pattern] = args.args.as_slice() else {
            return Err(DataFusionError::Plan("path_matches takes a path and a pattern".into()));
        };
        let Some(pattern) = constant_text(pattern, "path_matches", "the pattern")? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(None)));
        };
        let pattern = PathPattern::parse(&pattern).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let paths = text_column(path, args.number_rows)?;
        // Text that is not a path matches no pattern.
        let matched: BooleanArray = strings(&paths)?.iter().map(|p| p.map(|p| Path::parse(p).is_ok_and(|p| pattern.matches(&p)))).collect();
        Ok(ColumnarValue::Array(Arc::new(matched)))
    }
}

/// `path_level(path, n)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PathLevel {
    signature: Signature,
}

impl PathLevel {
    pub fn udf() -> ScalarUDF {
        let signature = Signature::one_of(
            vec![TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64]), TypeSignature::Exact(vec![DataType::Utf8View, DataType::Int64])],
            Volatility::Immutable,
        );
        ScalarUDF::new_from_impl(PathLevel { signature })
    }

    /// The call `path_level(path, level)`.
    pub fn call(path: Expr, level: usize) -> Expr {
        Arc::new(Self::udf()).call(vec![path, datafusion::prelude::lit(level as i64)])
    }
}

impl ScalarUDFImpl for PathLevel {
    fn name(&self) -> &str {
        "path_level"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [path, level] = args.args.as_slice() else {
            return Err(DataFusionError::Plan("path_level takes a path and a level".into()));
        };
        let level = match level {
            ColumnarValue::Scalar(ScalarValue::Int64(Some(n))) if *n >= 0 => *n as usize,
            ColumnarValue::Scalar(ScalarValue::Int64(None)) => return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            _ => return Err(DataFusionError::Plan("path_level: the level must be a constant of 0 or more".into())),
        };
        let paths = text_column(path, args.number_rows)?;
        let ancestors: StringArray =
            strings(&paths)?.iter().map(|p| p.and_then(|p| Path::parse(p).ok()).filter(|p| p.len() > level).map(|p| p.prefix(level + 1).to_string())).collect();
        Ok(ColumnarValue::Array(Arc::new(ancestors)))
    }
}

/// `tag_value(tags, key)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TagValue {
    signature: Signature,
}

impl TagValue {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(TagValue { signature: Signature::string(2, Volatility::Immutable) })
    }

    /// The call `tag_value(tags, 'key')`.
    pub fn call(tags: Expr, key: &str) -> Expr {
        Arc::new(Self::udf()).call(vec![tags, datafusion::prelude::lit(key)])
    }
}

impl ScalarUDFImpl for TagValue {
    fn name(&self) -> &str {
        "tag_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [tags, key] = args.args.as_slice() else {
            return Err(DataFusionError::Plan("tag_value takes tags and a key".into()));
        };
        let Some(key) = constant_text(key, "tag_value", "the key")? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let tags = text_column(tags, args.number_rows)?;
        let values: StringArray =
            strings(&tags)?.iter().map(|t| t.and_then(|t| serde_json::from_str::<BTreeMap<String, String>>(t).ok()).and_then(|mut m| m.remove(&key))).collect();
        Ok(ColumnarValue::Array(Arc::new(values)))
    }
}

/// The functions to register in a session.
pub fn udfs() -> Vec<ScalarUDF> {
    vec![PathMatches::udf(), PathLevel::udf(), TagValue::udf()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    fn invoke(udf: &ScalarUDF, args: Vec<ColumnarValue>, rows: usize) -> Result<ArrayRef> {
        let types: Vec<DataType> = args.iter().map(|a| a.data_type()).collect();
        let arg_fields = types.iter().map(|t| Arc::new(Field::new("a", t.clone(), true))).collect();
        let out = udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: rows,
            return_field: Arc::new(Field::new("r", udf.return_type(&types)?, true)),
            config_options: Arc::new(Default::default()),
        })?;
        out.to_array(rows)
    }

    fn texts(values: &[Option<&str>]) -> ColumnarValue {
        ColumnarValue::Array(Arc::new(values.iter().copied().collect::<StringArray>()))
    }

    fn scalar(text: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.into())))
    }

    #[test]
    fn path_matches_follows_iotdbs_wildcards_and_quoting() {
        let paths = texts(&[Some("root.ln.d1.s1"), Some("root.ln.`a.b`.s1"), Some("root.x.s1"), Some("not a path"), None]);
        let out = invoke(&PathMatches::udf(), vec![paths, scalar("root.ln.**")], 5).unwrap();
        let out = out.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert_eq!(out.iter().collect::<Vec<_>>(), [Some(true), Some(true), Some(false), Some(false), None]);
        let bad = invoke(&PathMatches::udf(), vec![texts(&[Some("root.a")]), scalar("root..x")], 1);
        assert!(bad.is_err());
    }

    #[test]
    fn path_level_is_the_ancestor_or_null() {
        let paths = texts(&[Some("root.ln.d1.s1"), Some("root.ln.`a.b`.s1"), Some("root.x")]);
        let level = ColumnarValue::Scalar(ScalarValue::Int64(Some(2)));
        let out = invoke(&PathLevel::udf(), vec![paths, level], 3).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.iter().collect::<Vec<_>>(), [Some("root.ln.d1"), Some("root.ln.`a.b`"), None]);
    }

    #[test]
    fn tag_value_reads_one_key() {
        let tags = texts(&[Some(r#"{"owner":"a","unit":"c"}"#), Some(r#"{"unit":"\"k\""}"#), None]);
        let out = invoke(&TagValue::udf(), vec![tags, scalar("unit")], 3).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.iter().collect::<Vec<_>>(), [Some("c"), Some("\"k\""), None]);
    }
}

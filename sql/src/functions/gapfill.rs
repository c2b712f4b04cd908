//! The functions of gap-filled queries on the SQL surface:
//! `date_bin_gapfill(stride, time[, origin])` buckets like `date_bin` (the
//! planner's gap-fill rule then emits the missing buckets), and `locf(x)` /
//! `interpolate(x)` mark how an aggregate of missing buckets is filled
//! (outside such a query they return their argument).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// The name of the bucketing function gap filling looks for.
pub(crate) const DATE_BIN_GAPFILL: &str = "date_bin_gapfill";
pub(crate) const LOCF: &str = "locf";
pub(crate) const INTERPOLATE: &str = "interpolate";

/// `date_bin_gapfill`: `date_bin` under another name.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateBinGapfill {
    inner: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for DateBinGapfill {
    fn name(&self) -> &str {
        DATE_BIN_GAPFILL
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }
}

/// `locf(x)` and `interpolate(x)`: their argument, marked.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Marker {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for Marker {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Null))
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(args.args.remove(0))
    }
}

/// The gap-filling functions, to register in a session.
pub(crate) fn udfs() -> Vec<ScalarUDF> {
    let marker = |name| ScalarUDF::from(Marker { name, signature: Signature::any(1, Volatility::Immutable) });
    vec![
        ScalarUDF::from(DateBinGapfill { inner: datafusion::functions::datetime::date_bin() }),
        marker(LOCF),
        marker(INTERPOLATE),
    ]
}

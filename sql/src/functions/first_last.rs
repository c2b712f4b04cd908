//! `first(value, time)` and `last(value, time)` on the SQL surface (as
//! InfluxDB and TimescaleDB users write them): the value at the earliest
//! or latest time among rows where both are not NULL (for `last`, a later
//! row wins a tie).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

#[derive(Debug, PartialEq, Eq, Hash)]
struct ByTime {
    /// `last` (latest time) rather than `first`.
    last: bool,
    signature: Signature,
}

impl AggregateUDFImpl for ByTime {
    fn name(&self) -> &str {
        if self.last { "last" } else { "first" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Null))
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ByTimeAccumulator { last: self.last, data_type: acc_args.return_field.data_type().clone(), best: None }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "value"), args.return_type().clone(), true)),
            Arc::new(Field::new(format_state_name(args.name, "time"), DataType::Int64, true)),
        ])
    }
}

#[derive(Debug)]
struct ByTimeAccumulator {
    last: bool,
    data_type: DataType,
    best: Option<(i64, ScalarValue)>,
}

impl ByTimeAccumulator {
    fn offer(&mut self, values: &ArrayRef, times: &ArrayRef) -> Result<()> {
        let times = cast(times, &DataType::Int64)?;
        let times = times.as_primitive::<Int64Type>();
        for row in 0..values.len() {
            if values.is_null(row) || times.is_null(row) {
                continue;
            }
            let t = times.value(row);
            let better = match &self.best {
                None => true,
                Some((b, _)) => if self.last { t >= *b } else { t < *b },
            };
            if better {
                self.best = Some((t, ScalarValue::try_from_array(values, row)?));
            }
        }
        Ok(())
    }
}

impl Accumulator for ByTimeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.offer(&values[0], &values[1])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.offer(&states[0], &states[1])
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(match &self.best {
            Some((t, v)) => vec![v.clone(), ScalarValue::Int64(Some(*t))],
            None => vec![ScalarValue::try_from(&self.data_type)?, ScalarValue::Int64(None)],
        })
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match &self.best {
            Some((_, v)) => Ok(v.clone()),
            None => ScalarValue::try_from(&self.data_type),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.best.as_ref().map_or(0, |(_, v)| v.size())
    }
}

/// `first` and `last`, to register in a session.
pub(crate) fn udafs() -> Vec<AggregateUDF> {
    [false, true].into_iter().map(|last| AggregateUDF::from(ByTime { last, signature: Signature::any(2, Volatility::Immutable) })).collect()
}

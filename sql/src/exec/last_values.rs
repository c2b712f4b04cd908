//! `SELECT LAST`: the latest point of each series as rows
//! `Time, Timeseries, Value, DataType` (the value as text), one per series
//! that has a point in the time range. Without a range the engine's
//! last-value cache answers; with one, the range's statistics do.
//!
//! [`LastValues`] is the logical node (a leaf); [`LastValuesExec`] runs it.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream};
use storage::{SeriesKey, SeriesStore, TimeRange, Value};
use tsfile::DataType;

use crate::convert::{time_type, UTC};

/// One series `SELECT LAST` reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LastItem {
    pub database: String,
    pub device: String,
    pub measurement: String,
    pub data_type: DataType,
}

/// Logical node: the latest point of each series in `range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastValues {
    pub items: Vec<LastItem>,
    pub range: TimeRange,
    schema: DFSchemaRef,
}

/// The columns of `SELECT LAST`.
pub fn last_schema() -> Schema {
    Schema::new(vec![
        Field::new("Time", time_type(), false),
        Field::new("Timeseries", ArrowType::Utf8, false),
        Field::new("Value", ArrowType::Utf8, false),
        Field::new("DataType", ArrowType::Utf8, false),
    ])
}

impl LastValues {
    pub fn try_new(items: Vec<LastItem>, range: TimeRange) -> Result<Self> {
        Ok(LastValues { items, range, schema: Arc::new(DFSchema::try_from(last_schema())?) })
    }
}

impl Hash for LastValues {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.items.hash(state);
        (self.range.start, self.range.end).hash(state);
    }
}

super::partial_ord_by_eq!(LastValues);

impl UserDefinedLogicalNodeCore for LastValues {
    fn name(&self) -> &str {
        "LastValues"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        Vec::new()
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LastValues: series={}, time={}..={}", self.items.len(), self.range.start, self.range.end)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, _inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(self.clone())
    }
}

/// Computes [`LastValues`] through the storage trait.
pub struct LastValuesExec {
    items: Vec<(LastItem, Arc<dyn SeriesStore>)>,
    range: TimeRange,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for LastValuesExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LastValuesExec").field("series", &self.items.len()).finish_non_exhaustive()
    }
}

impl LastValuesExec {
    pub fn new(items: Vec<(LastItem, Arc<dyn SeriesStore>)>, range: TimeRange) -> Self {
        let schema: SchemaRef = Arc::new(last_schema());
        let properties = super::one_partition(schema.clone(), EmissionType::Final);
        LastValuesExec { items, range, schema, properties }
    }
}

impl DisplayAs for LastValuesExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LastValuesExec: series={}, time={}..={}", self.items.len(), self.range.start, self.range.end)
    }
}

/// A FLOAT or DOUBLE as Java's `String.valueOf` prints it (IoTDB's text
/// of values): the shortest digits that read back as the same number of
/// its own width (a FLOAT 0.1 is `0.1`, not the double nearest to it).
fn java_double<T: fmt::Display + fmt::LowerExp + Copy + Into<f64>>(x: T) -> String {
    let wide: f64 = x.into();
    if !wide.is_finite() {
        return if wide.is_nan() { "NaN".into() } else if wide > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let a = wide.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{x}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    // Scientific: mantissa with at least one decimal, `E`, exponent.
    let s = format!("{x:e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
    format!("{mantissa}E{exponent}")
}

/// A stored value as IoTDB prints it in `SELECT LAST`.
pub fn value_text(v: &Value, data_type: DataType) -> String {
    match v {
        Value::Boolean(b) => b.to_string(),
        Value::Int32(x) if data_type == DataType::Date => format!("{:04}-{:02}-{:02}", x / 10_000, x / 100 % 100, x % 100),
        Value::Int32(x) => x.to_string(),
        Value::Int64(x) => x.to_string(),
        Value::Float(x) => java_double(*x),
        Value::Double(x) => java_double(*x),
        Value::Binary(b) if data_type == DataType::Blob => format!("0x{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        Value::Binary(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

impl ExecutionPlan for LastValuesExec {
    fn name(&self) -> &str {
        "LastValuesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        super::first_partition("LastValuesExec", partition)?;
        let (items, range, schema) = (self.items.clone(), self.range, self.schema.clone());
        let out = schema.clone();
        // Run inline when polled: last values come from the engine's cache
        // or from cached file statistics, cheaper than a hop to a blocking
        // thread; a range other than all time reads statistics too.
        let work = async move {
            (move || -> Result<RecordBatch> {
                let (mut times, mut paths, mut values, mut types) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for (item, store) in &items {
                    let key = SeriesKey::new(item.device.clone(), item.measurement.clone());
                    let last = if range == TimeRange::ALL { store.last(&key) } else { store.aggregate(&key, range).map(|a| a.last) };
                    let Some((t, v)) = last.map_err(super::storage_error)? else { continue };
                    times.push(t);
                    paths.push(format!("{}.{}", item.device, item.measurement));
                    values.push(value_text(&v, item.data_type));
                    types.push(item.data_type.to_string());
                }
                Ok(RecordBatch::try_new(
                    schema,
                    vec![
                        Arc::new(TimestampMillisecondArray::from(times).with_timezone(UTC)),
                        Arc::new(StringArray::from(paths)),
                        Arc::new(StringArray::from(values)),
                        Arc::new(StringArray::from(types)),
                    ],
                )?)
            })()
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(out, futures::stream::once(work))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_java_does() {
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(1.5), "1.5");
        assert_eq!(java_double(-0.25), "-0.25");
        assert_eq!(java_double(1e10), "1.0E10");
        assert_eq!(java_double(1.5e-5), "1.5E-5");
        assert_eq!(java_double(0.1f32), "0.1");
        assert_eq!(java_double(3.4e38f32), "3.4E38");
        assert_eq!(java_double(-2.5f32), "-2.5");
    }
}

//! Aggregates answered by storage: `count`, `sum`, `avg`, `min`/`max`,
//! `first`/`last` value and time of whole series over time ranges, from
//! file, chunk and page statistics wherever those are exact (the engine
//! decodes only what overlaps, is deleted from, or straddles a range edge).
//!
//! [`SeriesAggregate`] is the logical node (a leaf: one row); the optimizer
//! rule `planner::statistics::StatisticsAggregateRule` puts it in place of
//! an aggregate over a device scan on both surfaces;
//! [`SeriesAggregateExec`] computes it when the plan runs.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType as ArrowType, SchemaRef, TimeUnit};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::DFSchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use storage::{Aggregates, SeriesKey, SeriesStore, TimeRange, Value};

use crate::convert::{date_to_days, UTC};
use crate::time::Windows;

/// What one output column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatKind {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    MinTime,
    MaxTime,
}

/// One output column: an aggregate of one series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesAggItem {
    pub kind: StatKind,
    pub database: String,
    pub device: String,
    pub measurement: String,
    pub data_type: tsfile::DataType,
}

/// Logical node: one row of aggregates of series over time ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesAggregate {
    pub items: Vec<SeriesAggItem>,
    pub ranges: Vec<TimeRange>,
    /// `GROUP BY` time windows: one row per window, the window's start
    /// first (as the [`WINDOW`](super::WINDOW) group column).
    pub windows: Option<Windows>,
    /// With `windows`: series whose points make rows (a device table's);
    /// only windows where one of them has a point are output, as SQL's
    /// `GROUP BY` gives them. Empty: every window is output.
    pub presence: Vec<SeriesAggItem>,
    /// The schema of the aggregate this node replaces.
    pub schema: DFSchemaRef,
}

impl Hash for SeriesAggregate {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.items.hash(state);
        self.windows.hash(state);
        self.presence.hash(state);
        for r in &self.ranges {
            (r.start, r.end).hash(state);
        }
    }
}

impl PartialOrd for SeriesAggregate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self == other).then_some(Ordering::Equal)
    }
}

impl UserDefinedLogicalNodeCore for SeriesAggregate {
    fn name(&self) -> &str {
        "SeriesAggregate"
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
        write!(f, "SeriesAggregate: {}", describe(&self.items, &self.ranges, self.windows.as_ref()))
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, _inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(self.clone())
    }
}

fn describe(items: &[SeriesAggItem], ranges: &[TimeRange], windows: Option<&Windows>) -> String {
    let cols: Vec<String> = items.iter().map(|i| format!("{:?}({}.{})", i.kind, i.device, i.measurement)).collect();
    let ranges: Vec<String> = ranges.iter().map(|r| format!("{}..={}", r.start, r.end)).collect();
    let windows = windows.map(|w| format!(", windows={}..{} every {:?}", w.start, w.end, w.step)).unwrap_or_default();
    format!("[{}], time=[{}]{windows}", cols.join(", "), ranges.join(", "))
}

/// Computes a [`SeriesAggregate`] through the storage trait.
pub struct SeriesAggregateExec {
    items: Vec<(SeriesAggItem, Arc<dyn SeriesStore>)>,
    ranges: Vec<TimeRange>,
    windows: Option<Windows>,
    presence: Vec<(SeriesAggItem, Arc<dyn SeriesStore>)>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for SeriesAggregateExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesAggregateExec").field("ranges", &self.ranges).finish_non_exhaustive()
    }
}

impl SeriesAggregateExec {
    pub fn new(items: Vec<(SeriesAggItem, Arc<dyn SeriesStore>)>, ranges: Vec<TimeRange>, windows: Option<Windows>, schema: SchemaRef) -> Self {
        Self::with_presence(items, ranges, windows, Vec::new(), schema)
    }

    /// Windowed, outputting only windows where a `presence` series has a point.
    pub fn with_presence(
        items: Vec<(SeriesAggItem, Arc<dyn SeriesStore>)>,
        ranges: Vec<TimeRange>,
        windows: Option<Windows>,
        presence: Vec<(SeriesAggItem, Arc<dyn SeriesStore>)>,
        schema: SchemaRef,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        SeriesAggregateExec { items, ranges, windows, presence, schema, properties: Arc::new(properties) }
    }
}

impl DisplayAs for SeriesAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<SeriesAggItem> = self.items.iter().map(|(i, _)| i.clone()).collect();
        write!(f, "SeriesAggregateExec: {}", describe(&items, &self.ranges, self.windows.as_ref()))
    }
}

/// A stored value as a scalar of the output type.
fn scalar(v: Option<Value>, t: &ArrowType) -> Result<ScalarValue> {
    let Some(v) = v else { return ScalarValue::try_from(t) };
    let s = match (v, t) {
        (Value::Int32(x), ArrowType::Date32) => ScalarValue::Date32(Some(date_to_days(x))),
        (Value::Int32(x), _) => ScalarValue::Int32(Some(x)),
        (Value::Int64(x), ArrowType::Timestamp(TimeUnit::Millisecond, tz)) => ScalarValue::TimestampMillisecond(Some(x), tz.clone()),
        (Value::Int64(x), _) => ScalarValue::Int64(Some(x)),
        (Value::Float(x), _) => ScalarValue::Float32(Some(x)),
        (Value::Double(x), _) => ScalarValue::Float64(Some(x)),
        (Value::Boolean(x), _) => ScalarValue::Boolean(Some(x)),
        (Value::Binary(x), ArrowType::Utf8) => ScalarValue::Utf8(Some(String::from_utf8_lossy(&x).into_owned())),
        (Value::Binary(x), _) => ScalarValue::Binary(Some(x)),
    };
    // The aggregate's declared type decides (e.g. a Float64 sum).
    Ok(if s.data_type() == *t { s } else { s.cast_to(t)? })
}

fn column(kind: StatKind, a: &Aggregates, t: &ArrowType) -> Result<ScalarValue> {
    let time = |ms: Option<i64>| ScalarValue::TimestampMillisecond(ms, Some(UTC.into())).cast_to(t);
    match kind {
        StatKind::Count => ScalarValue::Int64(Some(a.count as i64)).cast_to(t),
        StatKind::Sum => ScalarValue::Float64((a.count > 0).then_some(a.sum.unwrap_or(0.0))).cast_to(t),
        StatKind::Avg => ScalarValue::Float64((a.count > 0).then(|| a.sum.unwrap_or(0.0) / a.count as f64)).cast_to(t),
        StatKind::Min => scalar(a.min.clone(), t),
        StatKind::Max => scalar(a.max.clone(), t),
        StatKind::First => scalar(a.first.clone().map(|(_, v)| v), t),
        StatKind::Last => scalar(a.last.clone().map(|(_, v)| v), t),
        StatKind::MinTime => time(a.min_time),
        StatKind::MaxTime => time(a.max_time),
    }
}

impl SeriesAggregateExec {
    /// Whether it runs inline when polled (whole-series statistics; the
    /// windowed form reads on a storage thread).
    pub fn reads_inline(&self) -> bool {
        self.windows.is_none()
    }
}

impl ExecutionPlan for SeriesAggregateExec {
    fn name(&self) -> &str {
        "SeriesAggregateExec"
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
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("SeriesAggregateExec has one partition, not {}", partition + 1)));
        }
        let items = self.items.clone();
        let ranges = self.ranges.clone();
        let schema = self.schema.clone();
        let out = schema.clone();
        if let Some(windows) = self.windows {
            return windowed(items, self.presence.clone(), ranges, windows, schema);
        }
        // Run inline when polled: statistics come from cached file metadata,
        // and a hop to a blocking thread costs more than the work.
        let work = async move {
            (move || -> Result<RecordBatch> {
                let mut arrays: Vec<ArrayRef> = Vec::with_capacity(items.len());
                // avg/min/max of one series read its statistics once.
                let mut done: Vec<(&str, &str, Aggregates)> = Vec::new();
                for (i, (item, store)) in items.iter().enumerate() {
                    let known = done.iter().find(|(d, m, _)| *d == item.device && *m == item.measurement).map(|(_, _, a)| a.clone());
                    let total = match known {
                        Some(a) => a,
                        None => {
                            let key = SeriesKey::new(item.device.clone(), item.measurement.clone());
                            let mut total = Aggregates::default();
                            for r in &ranges {
                                total = total.merge(store.aggregate(&key, *r).map_err(super::storage_error)?);
                            }
                            done.push((&item.device, &item.measurement, total.clone()));
                            total
                        }
                    };
                    arrays.push(column(item.kind, &total, schema.field(i).data_type())?.to_array()?);
                }
                Ok(RecordBatch::try_new(schema, arrays)?)
            })()
        };
        let stream = futures::stream::once(work);
        Ok(Box::pin(RecordBatchStreamAdapter::new(out, stream)))
    }
}

/// Windows per output batch of a windowed aggregate.
const WINDOWS_PER_BATCH: i64 = 4096;

/// One batch per [`WINDOWS_PER_BATCH`] windows: the window start, then each
/// item's aggregate over the window (cut to the pushed-down ranges).
fn windowed(
    items: Vec<(SeriesAggItem, Arc<dyn SeriesStore>)>,
    presence: Vec<(SeriesAggItem, Arc<dyn SeriesStore>)>,
    ranges: Vec<TimeRange>,
    windows: Windows,
    schema: SchemaRef,
) -> Result<SendableRecordBatchStream> {
    let count = windows.count();
    if count > super::MAX_WINDOWS {
        return Err(DataFusionError::Plan(format!("GROUP BY makes {count} windows, more than the limit of {}", super::MAX_WINDOWS)));
    }
    let out = schema.clone();
    let chunks = (0..count).step_by(WINDOWS_PER_BATCH as usize).map(move |first| (first, (first + WINDOWS_PER_BATCH).min(count)));
    // Inline, batch by batch as the consumer polls (see `execute`).
    let stream = futures::stream::iter(chunks).map(move |(first, last)| window_batch(&items, &presence, &ranges, &windows, first..last, &schema));
    Ok(Box::pin(RecordBatchStreamAdapter::new(out, stream)))
}

fn window_batch(
    items: &[(SeriesAggItem, Arc<dyn SeriesStore>)],
    presence: &[(SeriesAggItem, Arc<dyn SeriesStore>)],
    ranges: &[TimeRange],
    windows: &Windows,
    ks: std::ops::Range<i64>,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    // Each window cut by the pushed-down ranges: pieces sorted as storage
    // wants them, each remembering its window.
    let mut pieces: Vec<(TimeRange, usize)> = Vec::new();
    for (i, k) in ks.clone().enumerate() {
        let Some(w) = windows.range(k) else { continue };
        for r in ranges {
            let piece = TimeRange::new(w.start.max(r.start), w.end.min(r.end));
            if piece.start <= piece.end {
                pieces.push((piece, i));
            }
        }
    }
    pieces.sort_by_key(|(r, _)| (r.start, r.end));
    let n = (ks.end - ks.start) as usize;
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(items.len() + 1);
    let starts: Vec<i64> = ks.clone().map(|k| windows.window(k).map(|w| w.0).unwrap_or_default()).collect();
    let starts: ArrayRef = Arc::new(datafusion::arrow::array::TimestampMillisecondArray::from(starts).with_timezone(UTC));
    // The group column's own timestamp type (SQL's date_bin may be in ns).
    let label_type = schema.field(0).data_type();
    arrays.push(if starts.data_type() == label_type { starts } else { datafusion::arrow::compute::cast(&starts, label_type)? });
    let mut done: Vec<(&str, &str, Vec<Aggregates>)> = Vec::new();
    for (c, (item, store)) in items.iter().enumerate() {
        if !done.iter().any(|(d, m, _)| *d == item.device && *m == item.measurement) {
            let key = SeriesKey::new(item.device.clone(), item.measurement.clone());
            let just: Vec<TimeRange> = pieces.iter().map(|(r, _)| *r).collect();
            let got = store.aggregate_windows(&key, &just).map_err(super::storage_error)?;
            let mut per_window = vec![Aggregates::default(); n];
            for ((_, w), a) in pieces.iter().zip(got) {
                per_window[*w] = std::mem::take(&mut per_window[*w]).merge(a);
            }
            done.push((&item.device, &item.measurement, per_window));
        }
        let Some((_, _, per_window)) = done.iter().find(|(d, m, _)| *d == item.device && *m == item.measurement) else { continue };
        let t = schema.field(c + 1).data_type();
        let values = per_window.iter().map(|a| column(item.kind, a, t)).collect::<Result<Vec<_>>>()?;
        arrays.push(ScalarValue::iter_to_array(values)?);
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    if presence.is_empty() {
        return Ok(batch);
    }
    // Windows where an aggregated series has a point have rows; the others
    // only if another presence series has one there.
    let mut rows = vec![false; n];
    for (_, _, per_window) in &done {
        for (w, a) in per_window.iter().enumerate() {
            rows[w] |= a.count > 0;
        }
    }
    for (item, store) in presence {
        if rows.iter().all(|r| *r) {
            break;
        }
        if done.iter().any(|(d, m, _)| *d == item.device && *m == item.measurement) {
            continue;
        }
        let open: Vec<&(TimeRange, usize)> = pieces.iter().filter(|(_, w)| !rows[*w]).collect();
        let just: Vec<TimeRange> = open.iter().map(|(r, _)| *r).collect();
        let got = store.aggregate_windows(&SeriesKey::new(item.device.clone(), item.measurement.clone()), &just).map_err(super::storage_error)?;
        for ((_, w), a) in open.iter().zip(got) {
            rows[*w] |= a.count > 0;
        }
    }
    Ok(datafusion::arrow::compute::filter_record_batch(&batch, &rows.into())?)
}

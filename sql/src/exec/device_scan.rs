//! [`DeviceScanExec`]: the leaf of every plan over stored data. It streams
//! one device's rows from storage (a [`SeriesStore`] scan) with the
//! projection, time ranges, order and limit pushed into the read, and
//! declares its time ordering so DataFusion drops redundant sorts.
//! Nothing is read until the plan executes; its statistics come from file
//! metadata, exact only where storage says so, so DataFusion's statistics
//! rules answer `count(*)`, `count`, `min` and `max` without a scan.

use std::fmt;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ColumnStatistics, Statistics};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{AcrossPartitions, ConstExpr, EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::expressions::Column as ColumnExpr;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::SortOrderPushdownResult;
use datafusion::physical_expr::expressions::Literal;
use datafusion::scalar::ScalarValue;
use storage::{AlignedBatch, Bound, DeviceStatistics, ScanOrder, ScanRequest, SeriesKey, SeriesStore, TimeRange};
use tsfile::{ColumnBatch, DataType, Value, Values};

use crate::convert::{column_array, time_array, UTC};

/// Batches in flight between the storage thread and the consumer.
const SCAN_CHANNEL_BATCHES: usize = 2;

/// One output column of a scan.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanColumn {
    Time,
    /// A measurement of the device with its series type.
    Value { measurement: String, data_type: DataType },
    /// The same value in every row (a literal of the select list).
    Constant(ScalarValue),
}

/// What a [`DeviceScanExec`] reads: everything pushed down into storage.
#[derive(Debug, Clone)]
pub struct DeviceScanSpec {
    pub device: String,
    /// Output columns in order (`schema` has one field per entry).
    pub columns: Vec<ScanColumn>,
    /// Measurements that are not output but whose points also make rows
    /// (PostgreSQL's device-table rows: a row wherever any measurement has
    /// a point). Empty for TSQL, where only the selected series make rows.
    pub row_only: Vec<String>,
    /// Disjoint inclusive ranges in ascending order.
    pub ranges: Vec<TimeRange>,
    pub order: ScanOrder,
    pub limit: Option<usize>,
}

/// Streams one device's rows from storage.
pub struct DeviceScanExec {
    store: Arc<dyn SeriesStore>,
    spec: DeviceScanSpec,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// Asked of storage once, when a planner rule first wants them.
    statistics: OnceLock<Arc<Statistics>>,
}

impl fmt::Debug for DeviceScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceScanExec").field("spec", &self.spec).finish_non_exhaustive()
    }
}

impl DeviceScanExec {
    pub fn new(store: Arc<dyn SeriesStore>, spec: DeviceScanSpec, schema: SchemaRef) -> Self {
        let time = spec.columns.iter().position(|c| *c == ScanColumn::Time);
        let mut eq = EquivalenceProperties::new(schema.clone());
        if let Some(i) = time {
            let expr = Arc::new(ColumnExpr::new(schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>;
            let descending = spec.order == ScanOrder::Descending;
            let sort = PhysicalSortExpr::new(expr, datafusion::arrow::compute::SortOptions { descending, nulls_first: false });
            if let Some(ordering) = LexOrdering::new(vec![sort]) {
                eq = EquivalenceProperties::new_with_orderings(schema.clone(), [ordering]);
            }
        }
        // A constant column satisfies any order on it (`ORDER BY` a literal
        // label of a union's inputs needs no sort).
        let constants = spec.columns.iter().enumerate().filter_map(|(i, c)| match c {
            ScanColumn::Constant(value) => {
                let expr = Arc::new(ColumnExpr::new(schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>;
                Some(ConstExpr::new(expr, AcrossPartitions::Uniform(Some(value.clone()))))
            }
            _ => None,
        });
        // Adding constants to fresh properties only fails on a broken schema.
        if let Err(e) = eq.add_constants(constants) {
            tracing::warn!("constant columns of a device scan: {e}");
        }
        let properties = PlanProperties::new(eq, Partitioning::UnknownPartitioning(1), EmissionType::Incremental, Boundedness::Bounded);
        DeviceScanExec { store, spec, schema, properties: Arc::new(properties), statistics: OnceLock::new() }
    }

    pub fn spec(&self) -> &DeviceScanSpec {
        &self.spec
    }

    /// Whether it reads inline when polled (a batch of `batch_rows` at
    /// most): a hop to a storage thread would cost more than the read.
    pub fn reads_inline(&self, batch_rows: usize) -> bool {
        self.spec.limit.is_some_and(|l| l <= batch_rows)
    }

    fn request(&self, batch_rows: usize) -> ScanRequest {
        let measurements: Vec<String> = self
            .spec
            .columns
            .iter()
            .filter_map(|c| match c {
                ScanColumn::Value { measurement, .. } => Some(measurement.clone()),
                ScanColumn::Time | ScanColumn::Constant(_) => None,
            })
            .collect();
        ScanRequest {
            device: self.spec.device.clone(),
            measurements,
            row_only: self.spec.row_only.clone(),
            ranges: self.spec.ranges.clone(),
            order: self.spec.order,
            limit: self.spec.limit,
            batch_rows,
        }
    }
}

impl DeviceScanExec {
    /// The scan's statistics from storage's metadata (see
    /// [`SeriesStore::statistics`]): unknown when storage fails to answer.
    fn compute_statistics(&self) -> Statistics {
        let request = self.request(1);
        let mut measurements = request.measurements.clone();
        for m in &request.row_only {
            if !measurements.contains(m) {
                measurements.push(m.clone());
            }
        }
        let stats = match self.store.statistics(&self.spec.device, &measurements, &self.spec.ranges) {
            Ok(stats) => stats,
            Err(e) => {
                tracing::warn!("statistics of {}: {e}", self.spec.device);
                return Statistics::new_unknown(&self.schema);
            }
        };
        scan_statistics(&self.spec, &measurements, &stats, &self.schema)
    }

    /// The device's latest row (`ORDER BY time DESC LIMIT 1`) from the
    /// last-value cache: the largest last time among the read series, with
    /// each series' last value where its last point is at that time and
    /// NULL elsewhere. `None` when that time lies outside the scan's ranges
    /// (the row must then be found by reading).
    fn latest_row(&self) -> Result<Option<RecordBatch>> {
        let request = self.request(1);
        // The row-only measurements' last points make rows too.
        let row_only = request.row_only.iter().filter(|m| !request.measurements.contains(m));
        let mut lasts = Vec::with_capacity(request.measurements.len() + request.row_only.len());
        for measurement in request.measurements.iter().chain(row_only) {
            lasts.push(self.store.last(&SeriesKey::new(self.spec.device.clone(), measurement.clone())).map_err(super::storage_error)?);
        }
        let Some(time) = lasts.iter().flatten().map(|(t, _)| *t).max() else {
            return Ok(Some(RecordBatch::new_empty(self.schema.clone())));
        };
        if !self.spec.ranges.iter().any(|r| r.start <= time && time <= r.end) {
            return Ok(None);
        }
        let mut columns = Vec::new();
        let value_columns = self.spec.columns.iter().filter_map(|c| match c {
            ScanColumn::Value { data_type, .. } => Some(*data_type),
            ScanColumn::Time | ScanColumn::Constant(_) => None,
        });
        for (data_type, last) in value_columns.zip(&lasts) {
            let mut values = Values::empty(data_type);
            let present = match last {
                Some((t, value)) if *t == time => {
                    values.push(value.clone()).map_err(|e| DataFusionError::Internal(format!("last value of type {data_type:?}: {e}")))?;
                    true
                }
                _ => false,
            };
            columns.push(ColumnBatch { values, validity: vec![present] });
        }
        to_record_batch(&self.schema, &self.spec.columns, AlignedBatch { times: vec![time], columns }).map(Some)
    }
}

fn precision(n: u64, exact: bool) -> Precision<usize> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if exact {
        Precision::Exact(n)
    } else {
        Precision::Inexact(n)
    }
}

/// A statistic's value as a scalar of the column's Arrow type; `None` for
/// types whose statistics are kept in another form (DATE, TIMESTAMP).
fn scalar(value: &Value, data_type: DataType) -> Option<ScalarValue> {
    Some(match (value, data_type) {
        (Value::Int32(v), DataType::Int32) => ScalarValue::Int32(Some(*v)),
        (Value::Int64(v), DataType::Int64) => ScalarValue::Int64(Some(*v)),
        (Value::Float(v), DataType::Float) => ScalarValue::Float32(Some(*v)),
        (Value::Double(v), DataType::Double) => ScalarValue::Float64(Some(*v)),
        (Value::Binary(v), DataType::String | DataType::Text) => ScalarValue::Utf8(Some(String::from_utf8(v.clone()).ok()?)),
        _ => return None,
    })
}

/// DataFusion's statistics of a scan from storage's answer for
/// `measurements` (the read ones, then the row-only ones). Under a limit
/// that may cut rows, only bounds remain.
fn scan_statistics(spec: &DeviceScanSpec, measurements: &[String], stats: &DeviceStatistics, schema: &SchemaRef) -> Statistics {
    let cut = match (spec.limit, stats.rows) {
        (Some(l), rows) => (l as u64) < rows.value() || !rows.is_exact(),
        (None, _) => false,
    };
    let rows = spec.limit.map_or(stats.rows.value(), |l| stats.rows.value().min(l as u64));
    let rows_exact = stats.rows.is_exact() && !cut;
    let exact = |p: Precision<ScalarValue>| if cut { p.to_inexact() } else { p };
    let column_of = |m: &str| measurements.iter().position(|x| x == m).and_then(|i| stats.columns.get(i));
    let all_exact = !cut && stats.columns.iter().all(|c| c.count.is_exact());
    let time = |pick: fn(&storage::ColumnStatistics) -> Option<i64>, min: bool| -> Precision<ScalarValue> {
        let times = stats.columns.iter().filter_map(pick);
        let t = if min { times.min() } else { times.max() };
        match t {
            Some(t) if all_exact => Precision::Exact(ScalarValue::TimestampMillisecond(Some(t), Some(UTC.into()))),
            _ => Precision::Absent,
        }
    };
    let column_statistics = spec
        .columns
        .iter()
        .map(|c| match c {
            ScanColumn::Time => ColumnStatistics {
                null_count: Precision::Exact(0),
                min_value: time(|c| c.min_time, true),
                max_value: time(|c| c.max_time, false),
                ..ColumnStatistics::new_unknown()
            },
            ScanColumn::Value { measurement, data_type } => {
                let Some(column) = column_of(measurement) else { return ColumnStatistics::new_unknown() };
                let null_count = match column.count {
                    Bound::Exact(n) if rows_exact => precision(rows.saturating_sub(n), true),
                    _ => Precision::Absent,
                };
                let value = |v: &Option<Value>| match v.as_ref().and_then(|v| scalar(v, *data_type)) {
                    Some(s) if column.count.is_exact() => exact(Precision::Exact(s)),
                    _ => Precision::Absent,
                };
                ColumnStatistics { null_count, min_value: value(&column.min), max_value: value(&column.max), ..ColumnStatistics::new_unknown() }
            }
            ScanColumn::Constant(value) => ColumnStatistics {
                null_count: if value.is_null() { precision(rows, rows_exact) } else { Precision::Exact(0) },
                min_value: Precision::Exact(value.clone()),
                max_value: Precision::Exact(value.clone()),
                ..ColumnStatistics::new_unknown()
            },
        })
        .collect();
    debug_assert_eq!(schema.fields().len(), spec.columns.len());
    Statistics { num_rows: precision(rows, rows_exact), total_byte_size: Precision::Absent, column_statistics }
}

/// A storage batch as a record batch of the scan's columns.
fn to_record_batch(schema: &SchemaRef, columns: &[ScanColumn], batch: AlignedBatch) -> Result<RecordBatch> {
    let rows = batch.times.len();
    let mut values = batch.columns.into_iter();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    let mut time: Option<ArrayRef> = None;
    for c in columns {
        match c {
            ScanColumn::Time => arrays.push(time.get_or_insert_with(|| time_array(&batch.times)).clone()),
            ScanColumn::Value { data_type, .. } => {
                let column = values.next().ok_or_else(|| DataFusionError::Internal("scan returned too few columns".into()))?;
                arrays.push(column_array(*data_type, column));
            }
            ScanColumn::Constant(value) => arrays.push(value.to_array_of_size(rows)?),
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(schema.clone(), arrays, &options)?)
}

fn ranges_text(ranges: &[TimeRange]) -> String {
    let one = |r: &TimeRange| match (r.start, r.end) {
        (i64::MIN, i64::MAX) => "all".to_string(),
        (i64::MIN, e) => format!("..={e}"),
        (s, i64::MAX) => format!("{s}.."),
        (s, e) => format!("{s}..={e}"),
    };
    if ranges.is_empty() {
        return "none".into();
    }
    ranges.iter().map(one).collect::<Vec<_>>().join(", ")
}

impl DisplayAs for DeviceScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns: Vec<String> = self
            .spec
            .columns
            .iter()
            .map(|c| match c {
                ScanColumn::Time => "time".to_string(),
                ScanColumn::Value { measurement, .. } => measurement.clone(),
                ScanColumn::Constant(value) => format!("{value:?}"),
            })
            .collect();
        write!(f, "DeviceScanExec: device={}, columns=[{}], time=[{}]", self.spec.device, columns.join(", "), ranges_text(&self.spec.ranges))?;
        if !self.spec.row_only.is_empty() {
            write!(f, ", rows_from=[{}]", self.spec.row_only.join(", "))?;
        }
        if self.spec.order == ScanOrder::Descending {
            write!(f, ", order=desc")?;
        }
        if let Some(l) = self.spec.limit {
            write!(f, ", limit={l}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for DeviceScanExec {
    fn name(&self) -> &str {
        "DeviceScanExec"
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
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal("DeviceScanExec has no children".into()))
        }
    }

    fn statistics_from_inputs(&self, _input_stats: &[Arc<Statistics>], _args: &StatisticsArgs) -> Result<Arc<Statistics>> {
        Ok(self.statistics.get_or_init(|| Arc::new(self.compute_statistics())).clone())
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        let mut spec = self.spec.clone();
        spec.limit = match (spec.limit, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Some(Arc::new(DeviceScanExec::new(self.store.clone(), spec, self.schema.clone())))
    }

    fn fetch(&self) -> Option<usize> {
        self.spec.limit
    }

    /// `ORDER BY time [ASC|DESC]` becomes the scan's read order (and a
    /// `LIMIT` above it the scan's limit), so no sort runs.
    fn try_pushdown_sort(&self, order: &[PhysicalSortExpr]) -> Result<SortOrderPushdownResult<Arc<dyn ExecutionPlan>>> {
        let time = self.spec.columns.iter().position(|c| *c == ScanColumn::Time);
        let [sort] = order else { return Ok(SortOrderPushdownResult::Unsupported) };
        let on_time = sort.expr.downcast_ref::<ColumnExpr>().is_some_and(|c| Some(c.index()) == time);
        if !on_time {
            return Ok(SortOrderPushdownResult::Unsupported);
        }
        let wanted = if sort.options.descending { ScanOrder::Descending } else { ScanOrder::Ascending };
        // A limit already taken in the other order keeps other rows.
        if self.spec.limit.is_some() && wanted != self.spec.order {
            return Ok(SortOrderPushdownResult::Unsupported);
        }
        let mut spec = self.spec.clone();
        spec.order = wanted;
        let inner: Arc<dyn ExecutionPlan> = Arc::new(DeviceScanExec::new(self.store.clone(), spec, self.schema.clone()));
        Ok(SortOrderPushdownResult::Exact { inner })
    }

    /// A projection of columns and literals above the scan becomes the
    /// scan's own output columns: no `ProjectionExec` to run (and to set
    /// up, metrics and all, on every execution). A measurement the
    /// projection drops still makes rows; one it repeats keeps the
    /// projection.
    fn try_swapping_with_projection(&self, projection: &ProjectionExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let mut columns = Vec::with_capacity(projection.expr().len());
        let mut output = vec![false; self.spec.columns.len()];
        for item in projection.expr() {
            if let Some(literal) = item.expr.downcast_ref::<Literal>() {
                columns.push(ScanColumn::Constant(literal.value().clone()));
                continue;
            }
            let Some(column) = item.expr.downcast_ref::<ColumnExpr>() else { return Ok(None) };
            let Some(scanned) = self.spec.columns.get(column.index()) else { return Ok(None) };
            if matches!(scanned, ScanColumn::Value { .. }) && std::mem::replace(&mut output[column.index()], true) {
                return Ok(None);
            }
            columns.push(scanned.clone());
        }
        let mut spec = self.spec.clone();
        for (scanned, output) in self.spec.columns.iter().zip(output) {
            if let ScanColumn::Value { measurement, .. } = scanned {
                if !output && !spec.row_only.contains(measurement) {
                    spec.row_only.push(measurement.clone());
                }
            }
        }
        spec.columns = columns;
        Ok(Some(Arc::new(DeviceScanExec::new(self.store.clone(), spec, projection.schema()))))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("DeviceScanExec has one partition, not {}", partition + 1)));
        }
        if self.spec.order == ScanOrder::Descending && self.spec.limit == Some(1) {
            if let Some(batch) = self.latest_row()? {
                let schema = self.schema.clone();
                let rows = futures::stream::iter((batch.num_rows() > 0).then_some(Ok(batch)));
                return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)));
            }
        }
        let batch_rows = context.session_config().batch_size();
        let request = self.request(batch_rows);
        let store = self.store.clone();
        let schema = self.schema.clone();
        let columns = self.spec.columns.clone();
        if self.reads_inline(batch_rows) {
            // A batch at most: read inline when polled; a hop to a storage
            // thread would cost more than the read.
            let mut scan: Option<storage::BatchStream> = None;
            let mut failed = false;
            let batches = std::iter::from_fn(move || {
                if failed {
                    return None;
                }
                let reading = match &mut scan {
                    Some(reading) => reading,
                    None => match store.scan(request.clone()) {
                        Ok(reading) => scan.insert(reading),
                        Err(e) => {
                            failed = true;
                            return Some(Err(super::storage_error(e)));
                        }
                    },
                };
                let next = reading.next()?;
                Some(next.map_err(super::storage_error).and_then(|b| to_record_batch(&schema, &columns, b)))
            });
            return Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::iter(batches))));
        }
        let mut builder = RecordBatchReceiverStreamBuilder::new(schema.clone(), SCAN_CHANNEL_BATCHES);
        let tx = builder.tx();
        builder.spawn_blocking(move || {
            for batch in store.scan(request).map_err(super::storage_error)? {
                let batch = to_record_batch(&schema, &columns, batch.map_err(super::storage_error)?)?;
                // The consumer went away (finished, cancelled): stop reading.
                if tx.blocking_send(Ok(batch)).is_err() {
                    break;
                }
            }
            Ok(())
        });
        Ok(builder.build())
    }
}

//! Devices as DataFusion tables: the schema provider lists the catalog's
//! devices; each table reads its series through the engine with the time
//! range of the query's `time` predicates and only the projected columns,
//! and writes `INSERT`s back through the engine.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use catalog::{Page, Path, PathPattern, SeriesInfo};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::memory::MemorySourceConfig;
use datafusion::catalog::{SchemaProvider, Session as DfSession, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use storage::TimeRange;

use super::values::{times_of, values_of, write_rows, DeviceRows};
use crate::error::Error;
use crate::instance::Instance;
use crate::tree::{align, arrow_type, array_of, time_array, time_type, SeriesRef};

/// Rows per batch handed to DataFusion.
const BATCH_ROWS: usize = 8192;

/// The `public` schema: one table per device of the series tree.
#[derive(Debug)]
pub struct DeviceSchema {
    instance: Arc<Instance>,
    gate: WriteGate,
}

impl DeviceSchema {
    pub fn new(instance: Arc<Instance>, gate: WriteGate) -> Self {
        DeviceSchema { instance, gate }
    }
}

/// Held by a session's storage writes until they finish, even when the
/// statement that started one was cancelled; the session's next statement
/// waits for it, so a cancelled write never lands after later statements.
pub type WriteGate = Arc<tokio::sync::Mutex<()>>;

#[async_trait]
impl SchemaProvider for DeviceSchema {
    fn table_names(&self) -> Vec<String> {
        self.instance
            .catalog()
            .list_devices(&PathPattern::all(), Page::all())
            .into_iter()
            .filter(|d| d.series_count > 0)
            .map(|d| d.path.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        Ok(DeviceTable::open(self.instance.clone(), name).map(|mut t| {
            t.gate = Some(self.gate.clone());
            Arc::new(t) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        DeviceTable::open(self.instance.clone(), name).is_some()
    }
}

/// One device as a table: `time`, then its measurements in catalog order.
#[derive(Debug, Clone)]
pub struct DeviceTable {
    instance: Arc<Instance>,
    device: String,
    series: Vec<SeriesRef>,
    schema: SchemaRef,
    gate: Option<WriteGate>,
}

impl DeviceTable {
    /// The table of device `name`, if it is a device with at least one series.
    pub fn open(instance: Arc<Instance>, name: &str) -> Option<DeviceTable> {
        let path = Path::parse(name).ok()?;
        let info = instance.catalog().device(&path)?;
        let series: Vec<SeriesRef> = instance
            .catalog()
            .device_series(&info.path)
            .into_iter()
            .filter(|s| s.measurement() != "time")
            .map(|info: SeriesInfo| SeriesRef { database: info.database.to_string(), info })
            .collect();
        if series.is_empty() {
            return None;
        }
        let mut fields = vec![Field::new("time", time_type(), false)];
        fields.extend(series.iter().map(|s| Field::new(s.info.measurement(), arrow_type(s.data_type()), true)));
        Some(DeviceTable { instance, device: info.path.to_string(), series, schema: Arc::new(Schema::new(fields)), gate: None })
    }

    /// The device path.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The series behind the value columns, in column order.
    pub fn series(&self) -> &[SeriesRef] {
        &self.series
    }

    /// The series of value column `name`.
    pub fn series_index(&self, name: &str) -> Option<usize> {
        self.series.iter().position(|s| s.info.measurement() == name)
    }

    /// The rows of the projected columns in `range`, in time order.
    fn read(&self, projection: Option<&Vec<usize>>, range: TimeRange, limit: Option<usize>) -> crate::Result<Vec<RecordBatch>> {
        let columns: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let schema = Arc::new(self.schema.project(&columns).map_err(|e| Error::DataFusion(e.into()))?);
        let wanted: Vec<&SeriesRef> = columns.iter().filter(|&&c| c > 0).map(|&c| &self.series[c - 1]).collect();
        // A row exists where any series has a point: with no value column
        // projected (count(*), time only), every series decides the rows.
        let read: Vec<SeriesRef> = if wanted.is_empty() { self.series.clone() } else { wanted.iter().map(|s| (*s).clone()).collect() };
        let mut rows = align(&self.instance, &read, range)?;
        if let Some(limit) = limit {
            rows.times.truncate(limit);
            for c in &mut rows.columns {
                c.truncate(limit);
            }
        }
        let mut arrays = Vec::with_capacity(columns.len());
        let mut next = 0;
        for &c in &columns {
            if c == 0 {
                arrays.push(time_array(&rows.times));
            } else {
                let s = &self.series[c - 1];
                arrays.push(array_of(s.data_type(), &rows.columns[next]));
                next += 1;
            }
        }
        // count(*) projects no column at all: the batch carries only its row count.
        let options = RecordBatchOptions::new().with_row_count(Some(rows.times.len()));
        let batch = RecordBatch::try_new_with_options(schema, arrays, &options).map_err(|e| Error::DataFusion(e.into()))?;
        let mut out = Vec::with_capacity(batch.num_rows() / BATCH_ROWS + 1);
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = BATCH_ROWS.min(batch.num_rows() - offset);
            out.push(batch.slice(offset, len));
            offset += len;
        }
        if out.is_empty() {
            out.push(batch);
        }
        Ok(out)
    }
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for DeviceTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if time_bounds(f).is_some() {
                    // The range narrows the read; DataFusion still applies the predicate.
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let mut range = TimeRange::ALL;
        for f in filters {
            if let Some((lo, hi)) = time_bounds(f) {
                range = TimeRange::new(range.start.max(lo), range.end.min(hi));
            }
        }
        // Filters that are not pushed down leave `limit` unset.
        let limit = if filters.is_empty() { limit } else { None };
        let columns: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let schema = Arc::new(self.schema.project(&columns)?);
        let batches = if range.start > range.end {
            Vec::new()
        } else {
            let table = self.clone();
            let projection = projection.cloned();
            tokio::task::spawn_blocking(move || table.read(projection.as_ref(), range, limit))
                .await
                .map_err(|e| DataFusionError::Execution(format!("scan task failed: {e}")))?
                .map_err(external)?
        };
        Ok(MemorySourceConfig::try_new_exec(&[batches], schema, None)?)
    }

    async fn insert_into(
        &self,
        _state: &dyn DfSession,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(external(Error::Unsupported(format!("{insert_op} into a device table"))));
        }
        let sink = DeviceSink {
            instance: self.instance.clone(),
            device: self.device.clone(),
            series: self.series.clone(),
            schema: self.schema.clone(),
            gate: self.gate.clone(),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// Writes INSERTed rows of one device through the engine.
struct DeviceSink {
    instance: Arc<Instance>,
    device: String,
    series: Vec<SeriesRef>,
    schema: SchemaRef,
    gate: Option<WriteGate>,
}

impl fmt::Debug for DeviceSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSink").field("device", &self.device).finish_non_exhaustive()
    }
}

impl DisplayAs for DeviceSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceSink: device={}", self.device)
    }
}

impl DeviceSink {
    fn rows_of(&self, batch: &RecordBatch) -> crate::Result<DeviceRows> {
        let times = times_of(batch.column(0))?;
        let mut columns = Vec::with_capacity(self.series.len());
        for (i, s) in self.series.iter().enumerate() {
            let name = s.info.measurement().to_string();
            let values = values_of(s.data_type(), batch.column(i + 1), &name)?;
            columns.push((name, s.data_type(), values));
        }
        Ok(DeviceRows { device: self.device.clone(), times, columns })
    }
}

#[async_trait]
impl DataSink for DeviceSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(&self, mut data: SendableRecordBatchStream, _context: &Arc<TaskContext>) -> datafusion::error::Result<u64> {
        // Check every row before writing any.
        let mut all = Vec::new();
        while let Some(batch) = data.next().await {
            all.push(self.rows_of(&batch?).map_err(external)?);
        }
        let instance = self.instance.clone();
        let gate = match &self.gate {
            Some(g) => Some(g.clone().lock_owned().await),
            None => None,
        };
        let written = tokio::task::spawn_blocking(move || -> crate::Result<usize> {
            let _gate = gate;
            // One write for the whole statement: it lands entirely or not at all.
            match DeviceRows::concat(all) {
                Some(rows) => write_rows(&instance, rows),
                None => Ok(0),
            }
        })
        .await
        .map_err(|e| DataFusionError::Execution(format!("insert task failed: {e}")))?
        .map_err(external)?;
        Ok(written as u64)
    }
}

/// The inclusive millisecond range a predicate on `time` allows, if it is
/// one (comparisons with a constant, `BETWEEN`, and `AND` of those). The
/// bounds may be wider than the predicate, never narrower.
pub(crate) fn time_bounds(expr: &Expr) -> Option<(i64, i64)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            let (a, b) = (time_bounds(left), time_bounds(right));
            match (a, b) {
                (Some((l1, h1)), Some((l2, h2))) => Some((l1.max(l2), h1.min(h2))),
                (Some(x), None) | (None, Some(x)) => Some(x),
                (None, None) => None,
            }
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, ms) = if is_time_column(left) {
                (*op, literal_ms(right)?)
            } else if is_time_column(right) {
                (op.swap()?, literal_ms(left)?)
            } else {
                return None;
            };
            let (floor, exact) = ms;
            match op {
                Operator::Eq => Some((floor, floor)),
                Operator::Gt if exact => Some((floor.saturating_add(1), i64::MAX)),
                Operator::Gt | Operator::GtEq => Some((floor, i64::MAX)),
                Operator::Lt if exact => Some((i64::MIN, floor.saturating_sub(1))),
                Operator::Lt | Operator::LtEq => Some((i64::MIN, floor)),
                _ => None,
            }
        }
        Expr::Between(b) if !b.negated && is_time_column(&b.expr) => {
            let (lo, _) = literal_ms(&b.low)?;
            let (hi, _) = literal_ms(&b.high)?;
            Some((lo, hi))
        }
        _ => None,
    }
}

/// `time`, or `time` cast to a timestamp at least as fine as milliseconds
/// (a coarser cast truncates, so its bounds would be too narrow).
fn is_time_column(e: &Expr) -> bool {
    use datafusion::arrow::datatypes::{DataType as ArrowType, TimeUnit};
    let lossless = |t: &ArrowType| matches!(t, ArrowType::Timestamp(TimeUnit::Millisecond | TimeUnit::Microsecond | TimeUnit::Nanosecond, _));
    match e {
        Expr::Column(c) => c.name == "time",
        Expr::Cast(c) => lossless(c.field.data_type()) && is_time_column(&c.expr),
        Expr::TryCast(c) => lossless(c.field.data_type()) && is_time_column(&c.expr),
        _ => false,
    }
}

/// A timestamp constant as (floor in ms, whether that is exact).
fn literal_ms(e: &Expr) -> Option<(i64, bool)> {
    let Expr::Literal(v, _) = e else { return None };
    let split = |v: i64, per_ms: i64| (v.div_euclid(per_ms), v.rem_euclid(per_ms) == 0);
    match v {
        ScalarValue::TimestampSecond(Some(s), _) => Some((s.checked_mul(1000)?, true)),
        ScalarValue::TimestampMillisecond(Some(ms), _) => Some((*ms, true)),
        ScalarValue::TimestampMicrosecond(Some(us), _) => Some(split(*us, 1000)),
        ScalarValue::TimestampNanosecond(Some(ns), _) => Some(split(*ns, 1_000_000)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn ts_ms(ms: i64) -> Expr {
        lit(ScalarValue::TimestampMillisecond(Some(ms), None))
    }

    #[test]
    fn time_predicates_become_ranges() {
        assert_eq!(time_bounds(&col("time").gt(ts_ms(10))), Some((11, i64::MAX)));
        assert_eq!(time_bounds(&col("time").gt_eq(ts_ms(10))), Some((10, i64::MAX)));
        assert_eq!(time_bounds(&ts_ms(10).gt(col("time"))), Some((i64::MIN, 9)));
        assert_eq!(time_bounds(&col("time").gt_eq(ts_ms(10)).and(col("time").lt_eq(ts_ms(20)))), Some((10, 20)));
        assert_eq!(time_bounds(&col("time").between(ts_ms(3), ts_ms(5))), Some((3, 5)));
        assert_eq!(time_bounds(&col("time").eq(ts_ms(7))), Some((7, 7)));
        // 1.5 ms in microseconds: `>` keeps 1 ms as a bound (wider, never narrower).
        assert_eq!(time_bounds(&col("time").gt(lit(ScalarValue::TimestampMicrosecond(Some(1500), None)))), Some((1, i64::MAX)));
        assert_eq!(time_bounds(&col("s1").gt(lit(3))), None);
        assert_eq!(time_bounds(&col("time").gt(ts_ms(1)).or(col("time").lt(ts_ms(0)))), None);
        // AND with a non-time side keeps the time side.
        assert_eq!(time_bounds(&col("time").lt(ts_ms(5)).and(col("s1").gt(lit(1)))), Some((i64::MIN, 4)));
    }
}

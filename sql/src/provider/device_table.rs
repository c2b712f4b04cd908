//! Devices as DataFusion tables: [`DeviceSchemaProvider`] lists the
//! catalog's devices; each [`DeviceTableProviderProvider`] plans a lazy
//! [`DeviceScanExec`] with the time ranges of the query's `time` predicates,
//! the projected columns and the limit pushed into storage, and writes
//! `INSERT`s back through the engine.
//!
//! A device table has PostgreSQL row semantics: a row for every time at
//! which any of its measurements has a point.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use catalog::{Page, Path, PathPattern, SeriesInfo};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{SchemaProvider, Session as DfSession, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use storage::{ScanOrder, TimeRange};

use super::pg_catalog::{column_metadata, ATTNUM_KEY, TABLE_OID_KEY};
use super::values::{times_of, values_of, write_rows, write_rows_deferred, DeviceRows};
use crate::convert::{arrow_type, time_type};
use crate::error::Error;
use crate::exec::{DeviceScanExec, DeviceScanSpec, ScanColumn};
use crate::instance::{Instance, PendingCommits};
use crate::series::SeriesRef;

/// The `public` schema: one table per device of the series tree.
#[derive(Debug)]
pub struct DeviceSchemaProvider {
    instance: Arc<Instance>,
    gate: WriteGate,
}

impl DeviceSchemaProvider {
    pub fn new(instance: Arc<Instance>, gate: WriteGate) -> Self {
        DeviceSchemaProvider { instance, gate }
    }
}

/// Held by a session's storage writes until they finish, even when the
/// statement that started one was cancelled; the session's next statement
/// waits for it, so a cancelled write never lands after later statements.
/// It holds the writes not yet synced: the session waits for them before
/// answering the message, so its statements share WAL syncs.
pub type WriteGate = Arc<tokio::sync::Mutex<PendingCommits>>;

#[async_trait]
impl SchemaProvider for DeviceSchemaProvider {
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
        Ok(DeviceTableProvider::open(self.instance.clone(), name).map(|mut t| {
            t.gate = Some(self.gate.clone());
            Arc::new(t) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        DeviceTableProvider::open(self.instance.clone(), name).is_some()
    }
}

/// One device as a table: `time`, then its measurements in creation order.
#[derive(Debug, Clone)]
pub struct DeviceTableProvider {
    instance: Arc<Instance>,
    device: String,
    series: Vec<SeriesRef>,
    schema: SchemaRef,
    gate: Option<WriteGate>,
    /// Times the table is restricted to (a TSQL query's `WHERE` ranges).
    ranges: Vec<TimeRange>,
    /// The order rows are read in.
    order: ScanOrder,
}

impl DeviceTableProvider {
    /// The table of device `name`, if it is a device with at least one series.
    pub fn open(instance: Arc<Instance>, name: &str) -> Option<DeviceTableProvider> {
        let path = Path::parse(name).ok()?;
        let info = instance.catalog().device(&path)?;
        let mut series: Vec<SeriesRef> = instance
            .catalog()
            .device_series(&info.path)
            .into_iter()
            .filter(|s| s.measurement() != "time")
            .map(|info: SeriesInfo| SeriesRef { database: info.database.to_string(), info })
            .collect();
        // Columns in the order the measurements were created (series ids
        // grow), as PostgreSQL keeps a table's columns in definition order:
        // `SELECT *`, COPY, pg_attribute and information_schema agree.
        series.sort_by_key(|s| s.info.handle.id);
        if series.is_empty() {
            return None;
        }
        // Each column knows its table's OID and its number, for RowDescriptions.
        let mut fields = vec![Field::new("time", time_type(), false).with_metadata(column_metadata(info.id, 0))];
        fields.extend(
            series
                .iter()
                .enumerate()
                .map(|(i, s)| Field::new(s.info.measurement(), arrow_type(s.data_type()), true).with_metadata(column_metadata(info.id, i + 1))),
        );
        Some(DeviceTableProvider {
            instance,
            device: info.path.to_string(),
            series,
            schema: Arc::new(Schema::new(fields)),
            gate: None,
            ranges: vec![TimeRange::ALL],
            order: ScanOrder::Ascending,
        })
    }

    /// A read-only view of some series of one device for a TSQL query:
    /// columns `time`, then one per series named by its full path; a row
    /// wherever one of these series has a point, within `ranges`, read in
    /// `order`.
    pub fn for_series(
        instance: Arc<Instance>,
        device: &str,
        series: Vec<SeriesRef>,
        ranges: Vec<TimeRange>,
        order: ScanOrder,
    ) -> crate::Result<DeviceTableProvider> {
        if series.is_empty() {
            return Err(Error::Unsupported(format!("no series of {device} to read")));
        }
        let mut fields = vec![Field::new("time", time_type(), false)];
        fields.extend(series.iter().map(|s| Field::new(s.path(), arrow_type(s.data_type()), true)));
        Ok(DeviceTableProvider { instance, device: device.to_string(), series, schema: Arc::new(Schema::new(fields)), gate: None, ranges, order })
    }

    /// The same table with columns that name no table: what a column
    /// read through a `UNION` is (PostgreSQL's RowDescription gives it
    /// table OID 0).
    pub(crate) fn without_column_identity(&self) -> DeviceTableProvider {
        let fields: Vec<Field> = self.schema.fields().iter().map(|f| without_identity(f)).collect();
        DeviceTableProvider { schema: Arc::new(Schema::new_with_metadata(fields, self.schema.metadata().clone())), ..self.clone() }
    }

    /// The device path.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The series behind the value columns, in column order.
    pub fn series(&self) -> &[SeriesRef] {
        &self.series
    }

    /// The times the table is restricted to.
    pub(crate) fn ranges(&self) -> &[TimeRange] {
        &self.ranges
    }

    /// The series behind the column named `name` (not `time`).
    pub(crate) fn column_series(&self, name: &str) -> Option<&SeriesRef> {
        let i = self.schema.index_of(name).ok()?;
        i.checked_sub(1).and_then(|i| self.series.get(i))
    }

    /// The series of value column `name`.
    pub fn series_index(&self, name: &str) -> Option<usize> {
        self.series.iter().position(|s| s.info.measurement() == name)
    }
}

/// `field` without the table OID and column number of [`column_metadata`].
pub(crate) fn without_identity(field: &Field) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.remove(TABLE_OID_KEY);
    metadata.remove(ATTNUM_KEY);
    field.clone().with_metadata(metadata)
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for DeviceTableProvider {
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
                if time_ranges(f).is_some() && exact_time_ranges(f) {
                    // The scan returns exactly the rows in these ranges.
                    TableProviderFilterPushDown::Exact
                } else if time_ranges(f).is_some() {
                    // The ranges narrow the read; DataFusion still applies the predicate.
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
        let mut ranges = self.ranges.clone();
        for f in filters {
            if let Some(r) = time_ranges(f) {
                ranges = intersect(&ranges, &r);
            }
        }
        // A limit holds only when the scan applies every filter itself.
        let limit = if filters.iter().all(exact_time_ranges) { limit } else { None };
        let indices: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let schema = Arc::new(self.schema.project(&indices)?);
        let columns: Vec<ScanColumn> = indices
            .iter()
            .map(|&i| match i {
                0 => ScanColumn::Time,
                i => {
                    let s = &self.series[i - 1];
                    ScanColumn::Value { measurement: s.info.measurement().to_string(), data_type: s.data_type() }
                }
            })
            .collect();
        // Every measurement decides the rows, projected or not.
        let row_only = self
            .series
            .iter()
            .enumerate()
            .filter(|(i, _)| !indices.contains(&(i + 1)))
            .map(|(_, s)| s.info.measurement().to_string())
            .collect();
        let database = &self.series[0].database;
        let store = self.instance.store(database).map_err(external)?;
        let spec = DeviceScanSpec { device: self.device.clone(), columns, row_only, ranges, order: self.order, limit };
        Ok(Arc::new(DeviceScanExec::new(store, spec, schema)))
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
            let mut gate = gate;
            // One write for the whole statement: it lands entirely or not at all.
            match (DeviceRows::concat(all), gate.as_mut()) {
                (Some(rows), Some(pending)) => write_rows_deferred(&instance, rows, pending),
                (Some(rows), None) => write_rows(&instance, rows),
                (None, _) => Ok(0),
            }
        })
        .await
        .map_err(|e| DataFusionError::Execution(format!("insert task failed: {e}")))?
        .map_err(external)?;
        Ok(written as u64)
    }
}

/// The inclusive millisecond ranges a predicate on `time` allows (sorted,
/// disjoint), if it is one: comparisons with a constant, `BETWEEN`, `IN`,
/// and `AND`/`OR`/`NOT` of those. The ranges may allow more than the
/// predicate, never less; `None` when the predicate does not bound time.
pub(crate) fn time_ranges(expr: &Expr) -> Option<Vec<TimeRange>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => match (time_ranges(left), time_ranges(right)) {
            (Some(a), Some(b)) => Some(intersect(&a, &b)),
            (Some(x), None) | (None, Some(x)) => Some(x),
            (None, None) => None,
        },
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
            let (a, b) = (time_ranges(left)?, time_ranges(right)?);
            Some(union(a.into_iter().chain(b).collect()))
        }
        Expr::Not(inner) => {
            let r = time_ranges(inner)?;
            // Only an exact set may be complemented: a wider one would narrow.
            exact_time_ranges(inner).then(|| complement(&r))
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
            let one = |lo: i64, hi: i64| Some(vec![TimeRange::new(lo, hi)]);
            match op {
                Operator::Eq if exact => one(floor, floor),
                Operator::Eq => Some(Vec::new()),
                Operator::NotEq if exact => Some(complement(&[TimeRange::new(floor, floor)])),
                Operator::Gt if exact => one(floor.saturating_add(1), i64::MAX),
                Operator::Gt | Operator::GtEq => one(floor, i64::MAX),
                Operator::Lt if exact => one(i64::MIN, floor.saturating_sub(1)),
                Operator::Lt | Operator::LtEq => one(i64::MIN, floor),
                _ => None,
            }
        }
        Expr::Between(b) if is_time_column(&b.expr) => {
            let (lo, lo_exact) = literal_ms(&b.low)?;
            let (hi, _) = literal_ms(&b.high)?;
            // A fractional low bound starts in the next millisecond.
            let lo = if lo_exact { lo } else { lo.saturating_add(1) };
            let inside = if lo <= hi { vec![TimeRange::new(lo, hi)] } else { Vec::new() };
            if b.negated {
                exact_time_ranges(expr).then(|| complement(&inside))
            } else {
                Some(inside)
            }
        }
        Expr::InList(list) if is_time_column(&list.expr) && !list.negated => {
            let mut points = Vec::with_capacity(list.list.len());
            for e in &list.list {
                let (ms, exact) = literal_ms(e)?;
                if exact {
                    points.push(TimeRange::new(ms, ms));
                }
            }
            Some(union(points))
        }
        _ => None,
    }
}

/// Whether [`time_ranges`] of `expr` is exactly the set of times it allows
/// (every literal a whole millisecond), so that its complement is safe.
pub(crate) fn exact_time_ranges(expr: &Expr) -> bool {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And | Operator::Or, right }) => {
            time_ranges(left).is_some() && time_ranges(right).is_some() && exact_time_ranges(left) && exact_time_ranges(right)
        }
        Expr::Not(inner) => exact_time_ranges(inner),
        Expr::BinaryExpr(BinaryExpr { left, right, .. }) => {
            let lit = if is_time_column(left) { right } else { left };
            literal_ms(lit).is_some_and(|(_, exact)| exact)
        }
        Expr::Between(b) => [&b.low, &b.high].iter().all(|e| literal_ms(e).is_some_and(|(_, exact)| exact)),
        _ => false,
    }
}

/// Sorted, merged ranges.
pub(crate) fn union(mut ranges: Vec<TimeRange>) -> Vec<TimeRange> {
    ranges.retain(|r| r.start <= r.end);
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<TimeRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(1) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// The times in both sets.
pub(crate) fn intersect(a: &[TimeRange], b: &[TimeRange]) -> Vec<TimeRange> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let (lo, hi) = (x.start.max(y.start), x.end.min(y.end));
            if lo <= hi {
                out.push(TimeRange::new(lo, hi));
            }
        }
    }
    union(out)
}

/// The times not in a sorted, disjoint set.
fn complement(ranges: &[TimeRange]) -> Vec<TimeRange> {
    let mut out = Vec::new();
    let mut next = Some(i64::MIN);
    for r in ranges {
        if let Some(start) = next {
            if r.start > start {
                out.push(TimeRange::new(start, r.start - 1));
            }
        }
        next = r.end.checked_add(1);
    }
    if let Some(start) = next {
        out.push(TimeRange::new(start, i64::MAX));
    }
    out
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

    fn one(lo: i64, hi: i64) -> Option<Vec<TimeRange>> {
        Some(vec![TimeRange::new(lo, hi)])
    }

    #[test]
    fn time_predicates_become_ranges() {
        assert_eq!(time_ranges(&col("time").gt(ts_ms(10))), one(11, i64::MAX));
        assert_eq!(time_ranges(&col("time").gt_eq(ts_ms(10))), one(10, i64::MAX));
        assert_eq!(time_ranges(&ts_ms(10).gt(col("time"))), one(i64::MIN, 9));
        assert_eq!(time_ranges(&col("time").gt_eq(ts_ms(10)).and(col("time").lt_eq(ts_ms(20)))), one(10, 20));
        assert_eq!(time_ranges(&col("time").between(ts_ms(3), ts_ms(5))), one(3, 5));
        assert_eq!(time_ranges(&col("time").eq(ts_ms(7))), one(7, 7));
        // 1.5 ms in microseconds: `>` keeps 1 ms as a bound (wider, never narrower).
        assert_eq!(time_ranges(&col("time").gt(lit(ScalarValue::TimestampMicrosecond(Some(1500), None)))), one(1, i64::MAX));
        assert_eq!(time_ranges(&col("s1").gt(lit(3))), None);
        // AND with a non-time side keeps the time side.
        assert_eq!(time_ranges(&col("time").lt(ts_ms(5)).and(col("s1").gt(lit(1)))), one(i64::MIN, 4));
        // OR of ranges: both, sorted; OR with a non-time side bounds nothing.
        assert_eq!(
            time_ranges(&col("time").gt(ts_ms(100)).or(col("time").lt(ts_ms(0)))),
            Some(vec![TimeRange::new(i64::MIN, -1), TimeRange::new(101, i64::MAX)])
        );
        assert_eq!(time_ranges(&col("time").gt(ts_ms(1)).or(col("s1").gt(lit(1)))), None);
        assert_eq!(
            time_ranges(&col("time").not_between(ts_ms(3), ts_ms(5))),
            Some(vec![TimeRange::new(i64::MIN, 2), TimeRange::new(6, i64::MAX)])
        );
        assert_eq!(time_ranges(&col("time").in_list(vec![ts_ms(9), ts_ms(2), ts_ms(3)], false)), Some(vec![TimeRange::new(2, 3), TimeRange::new(9, 9)]));
        assert_eq!(time_ranges(&Expr::Not(Box::new(col("time").gt(ts_ms(10))))), one(i64::MIN, 10));
    }
}

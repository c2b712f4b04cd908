//! IoTDB's `GROUP BY` time windows as two DataFusion nodes around an
//! ordinary aggregate:
//!
//! - [`TimeWindows`] tags every input row with the start of each window it
//!   falls in (a row lands in several windows when they overlap, in none
//!   when it lies in a gap), as the column [`WINDOW`];
//! - DataFusion aggregates grouped by [`WINDOW`] (every aggregate works);
//! - [`WindowFill`] emits every window in order, empty ones too: `count`s
//!   0, other aggregates NULL, the window shown by its start (or its end
//!   for `(start, end]`).
//!
//! Without value filters the statistics rule replaces the aggregate and
//! [`TimeWindows`] by a windowed `SeriesAggregate`, answered from TsFile
//! statistics; [`WindowFill`] stays on top either way.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::compute::{take, take_record_batch};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef, TimestampMillisecondType};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream};
use futures::StreamExt;

use crate::convert::{time_type, UTC};
use crate::time::Windows;

/// The column [`TimeWindows`] adds: the start of the row's window.
pub const WINDOW: &str = "__window";

/// The most windows one query may produce.
pub const MAX_WINDOWS: i64 = 10_000_000;

fn describe(w: &Windows) -> String {
    let (open, close) = if w.left_open { ("(", "]") } else { ("[", ")") };
    format!("windows={open}{}, {}{close}, interval={:?}, step={:?}", w.start, w.end, w.interval, w.step)
}

/// Logical node: the input's rows, each once per window containing it,
/// with the window's start as [`WINDOW`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeWindows {
    pub input: LogicalPlan,
    pub windows: Windows,
    schema: DFSchemaRef,
}

impl TimeWindows {
    pub fn try_new(input: LogicalPlan, windows: Windows) -> Result<Self> {
        let extra = DFSchema::try_from(Schema::new(vec![Field::new(WINDOW, time_type(), false)]))?;
        let schema = Arc::new(input.schema().as_ref().clone().join(&extra)?);
        Ok(TimeWindows { input, windows, schema })
    }
}

impl Hash for TimeWindows {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.windows.hash(state);
    }
}

super::partial_ord_by_eq!(TimeWindows, WindowFill);

impl UserDefinedLogicalNodeCore for TimeWindows {
    fn name(&self) -> &str {
        "TimeWindows"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "TimeWindows: {}", describe(&self.windows))
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs.pop().ok_or_else(|| DataFusionError::Plan("TimeWindows needs an input".into()))?;
        TimeWindows::try_new(input, self.windows)
    }

    fn necessary_children_exprs(&self, _output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        None
    }
}

/// Streams [`TimeWindows`].
#[derive(Debug)]
pub struct TimeWindowsExec {
    input: Arc<dyn ExecutionPlan>,
    windows: Windows,
    time_column: usize,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl TimeWindowsExec {
    pub fn try_new(input: Arc<dyn ExecutionPlan>, windows: Windows, schema: SchemaRef) -> Result<Self> {
        let time_column = input
            .schema()
            .fields()
            .iter()
            .position(|f| f.name() == "time")
            .ok_or_else(|| DataFusionError::Plan("TimeWindows needs a time column".into()))?;
        let properties = super::one_partition(schema.clone(), EmissionType::Incremental);
        Ok(TimeWindowsExec { input, windows, time_column, schema, properties })
    }
}

impl DisplayAs for TimeWindowsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeWindowsExec: {}", describe(&self.windows))
    }
}

/// `batch`'s rows once per window containing them, with the window start.
fn tag(batch: &RecordBatch, windows: &Windows, time_column: usize, schema: &SchemaRef) -> Result<RecordBatch> {
    let times = batch
        .column(time_column)
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| DataFusionError::Internal("the time column is not a millisecond timestamp".into()))?;
    let mut rows: Vec<u32> = Vec::with_capacity(times.len());
    let mut starts: Vec<i64> = Vec::with_capacity(times.len());
    // Consecutive rows mostly share a window: remember the last answer.
    let mut cached: Option<(i64, i64, Vec<i64>)> = None;
    for (row, t) in times.values().iter().enumerate() {
        if times.is_null(row) {
            continue;
        }
        let hit = cached.as_ref().is_some_and(|(lo, hi, _)| *lo <= *t && *t <= *hi);
        if !hit {
            let ks: Vec<i64> = windows.containing(*t).collect();
            // Later rows share this set of windows until one of them ends
            // or the next window starts.
            let next_start = windows.next_start_after(*t);
            let until = ks.iter().filter_map(|k| windows.range(*k)).map(|r| r.end).chain(next_start.map(|s| s - 1)).min().unwrap_or(i64::MAX);
            let span = (*t, until);
            let labels = ks.iter().filter_map(|k| windows.window(*k).map(|w| w.0)).collect();
            cached = Some((span.0, span.1, labels));
        }
        if let Some((_, _, labels)) = &cached {
            for start in labels {
                rows.push(row as u32);
                starts.push(*start);
            }
        }
    }
    let picked = take_record_batch(batch, &UInt32Array::from(rows))?;
    let mut columns = picked.columns().to_vec();
    columns.push(Arc::new(TimestampMillisecondArray::from(starts).with_timezone(UTC)));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

impl ExecutionPlan for TimeWindowsExec {
    fn name(&self) -> &str {
        "TimeWindowsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let input = super::only_child(children, "TimeWindowsExec")?;
        Ok(Arc::new(TimeWindowsExec::try_new(input, self.windows, self.schema.clone())?))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let (windows, time_column, schema) = (self.windows, self.time_column, self.schema.clone());
        let stream = input.map(move |batch| tag(&batch?, &windows, time_column, &schema));
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }
}

/// Logical node: one row per window, in time order, from the aggregated
/// rows of the non-empty ones. Columns `zero` (counts) are 0 in an empty
/// window; the others NULL. [`WINDOW`] shows the window's start, or its end
/// when left-open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowFill {
    pub input: LogicalPlan,
    pub windows: Windows,
    pub descending: bool,
    pub zero: Vec<usize>,
}

impl Hash for WindowFill {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.windows.hash(state);
        self.descending.hash(state);
        self.zero.hash(state);
    }
}

impl UserDefinedLogicalNodeCore for WindowFill {
    fn name(&self) -> &str {
        "WindowFill"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "WindowFill: {}{}", describe(&self.windows), if self.descending { ", order=desc" } else { "" })
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs.pop().ok_or_else(|| DataFusionError::Plan("WindowFill needs an input".into()))?;
        Ok(WindowFill { input, ..self.clone() })
    }

    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let _ = output_columns;
        None
    }
}

/// Computes [`WindowFill`]: collects the aggregated rows (one per non-empty
/// window, so at most one per window), then streams every window.
#[derive(Debug)]
pub struct WindowFillExec {
    input: Arc<dyn ExecutionPlan>,
    windows: Windows,
    descending: bool,
    zero: Vec<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl WindowFillExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, windows: Windows, descending: bool, zero: Vec<usize>) -> Self {
        let schema = input.schema();
        let properties = super::one_partition(schema.clone(), EmissionType::Final);
        WindowFillExec { input, windows, descending, zero, schema, properties }
    }
}

impl DisplayAs for WindowFillExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WindowFillExec: {}{}", describe(&self.windows), if self.descending { ", order=desc" } else { "" })
    }
}

/// Rows of the output per batch.
const FILL_BATCH_ROWS: usize = 8192;

impl ExecutionPlan for WindowFillExec {
    fn name(&self) -> &str {
        "WindowFillExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn required_input_distribution(&self) -> Vec<datafusion::physical_plan::Distribution> {
        vec![datafusion::physical_plan::Distribution::SinglePartition]
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let input = super::only_child(children, "WindowFillExec")?;
        Ok(Arc::new(WindowFillExec::new(input, self.windows, self.descending, self.zero.clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        super::first_partition("WindowFillExec", partition)?;
        let input = self.input.execute(0, context)?;
        let (windows, descending, zero, schema) = (self.windows, self.descending, self.zero.clone(), self.schema.clone());
        let window_column = schema.index_of(WINDOW)?;
        let count = windows.count();
        if count > MAX_WINDOWS {
            return Err(DataFusionError::Plan(format!("GROUP BY makes {count} windows, more than the limit of {MAX_WINDOWS}")));
        }
        let out_schema = schema.clone();
        let batches = async move {
            let collected: Vec<RecordBatch> = datafusion::physical_plan::common::collect(input).await?;
            let all = datafusion::arrow::compute::concat_batches(&schema, &collected)?;
            let starts = all.column(window_column).as_primitive::<TimestampMillisecondType>();
            let by_start: HashMap<i64, u32> = starts.values().iter().enumerate().map(|(i, s)| (*s, i as u32)).collect();
            let mut out = Vec::new();
            for first in (0..count).step_by(FILL_BATCH_ROWS) {
                let last = (first + FILL_BATCH_ROWS as i64).min(count);
                // Window indices of this batch, in output order.
                let chunk: Vec<i64> = if descending { (count - last..count - first).rev().collect() } else { (first..last).collect() };
                let picks: Vec<Option<u32>> = chunk.iter().map(|k| windows.window(*k).and_then(|(a, _)| by_start.get(&a).copied())).collect();
                let indices = UInt32Array::from(picks);
                let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
                for (c, column) in all.columns().iter().enumerate() {
                    if c == window_column {
                        let labels: Vec<i64> = chunk.iter().map(|k| windows.label(*k).unwrap_or_default()).collect();
                        columns.push(Arc::new(TimestampMillisecondArray::from(labels).with_timezone(UTC)));
                    } else if zero.contains(&c) {
                        let taken = take(column.as_ref(), &indices, None)?;
                        let zeros = datafusion::arrow::compute::cast(&Int64Array::from(vec![0i64; chunk.len()]), taken.data_type())?;
                        columns.push(datafusion::arrow::compute::kernels::zip::zip(
                            &datafusion::arrow::compute::is_not_null(taken.as_ref())?,
                            &taken,
                            &zeros,
                        )?);
                    } else {
                        columns.push(take(column.as_ref(), &indices, None)?);
                    }
                }
                out.push(Ok(RecordBatch::try_new(schema.clone(), columns)?));
            }
            Ok::<_, DataFusionError>(futures::stream::iter(out))
        };
        let stream = futures::stream::once(batches).map(|r| match r {
            Ok(s) => s.left_stream(),
            Err(e) => futures::stream::iter(vec![Err(e)]).right_stream(),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(out_schema, stream.flatten())))
    }
}

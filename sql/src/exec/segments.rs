//! IoTDB's segment windows: `GROUP BY VARIATION`, `CONDITION`, `SESSION`
//! and `COUNT`. [`Segments`] tags each row (in time order) with the start
//! time of its segment as [`WINDOW`](super::WINDOW), dropping rows that
//! belong to none; DataFusion then aggregates by it, as for time windows.
//!
//! - `VARIATION(expr, delta)`: a segment lasts while the control value stays
//!   within `delta` of the segment's first value (equal values for delta 0
//!   and for non-numbers);
//! - `CONDITION(predicate)`: runs of rows where the predicate is true;
//! - `SESSION(gap)`: a new segment when the time since the row before is
//!   more than `gap` (a gap equal to it stays in the session);
//! - `COUNT(expr, n)`: every `n` rows; an incomplete trailing segment is
//!   dropped (so up to `n` rows are held back).
//!
//! With `ignore_null` rows whose control value is NULL are dropped (they
//! neither join nor end a segment); otherwise NULL is a value of its own
//! (VARIATION, COUNT) or false (CONDITION).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::compute::{cast, take_record_batch};
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Float64Type, Schema, SchemaRef, TimestampMillisecondType};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream};
use futures::StreamExt;

use super::WINDOW;
use crate::convert::{time_type, UTC};

/// The column holding the control value (planned as a projection below).
pub const CONTROL: &str = "__control";

/// How rows form segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SegmentKind {
    Variation { delta: f64, ignore_null: bool },
    Condition { ignore_null: bool },
    Session { gap: i64 },
    Count { n: u64, ignore_null: bool },
}

impl Eq for SegmentKind {}

impl Hash for SegmentKind {
    fn hash<H: Hasher>(&self, state: &mut H) {
        format!("{self:?}").hash(state);
    }
}

impl SegmentKind {
    fn uses_control(&self) -> bool {
        !matches!(self, SegmentKind::Session { .. })
    }
}

/// Logical node: the input's rows that belong to a segment, with the
/// segment's start as [`WINDOW`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments {
    pub input: LogicalPlan,
    pub kind: SegmentKind,
    schema: DFSchemaRef,
}

impl Segments {
    pub fn try_new(input: LogicalPlan, kind: SegmentKind) -> Result<Self> {
        let extra = DFSchema::try_from(Schema::new(vec![Field::new(WINDOW, time_type(), false)]))?;
        let schema = Arc::new(input.schema().as_ref().clone().join(&extra)?);
        Ok(Segments { input, kind, schema })
    }
}

impl Hash for Segments {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.kind.hash(state);
    }
}

super::partial_ord_by_eq!(Segments);

impl UserDefinedLogicalNodeCore for Segments {
    fn name(&self) -> &str {
        "Segments"
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
        write!(f, "Segments: {:?}", self.kind)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs.pop().ok_or_else(|| DataFusionError::Plan("Segments needs an input".into()))?;
        Segments::try_new(input, self.kind)
    }

    fn necessary_children_exprs(&self, _output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        None
    }
}

/// Streams [`Segments`].
#[derive(Debug)]
pub struct SegmentsExec {
    input: Arc<dyn ExecutionPlan>,
    kind: SegmentKind,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl SegmentsExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, kind: SegmentKind, schema: SchemaRef) -> Self {
        let properties = super::one_partition(schema.clone(), EmissionType::Incremental);
        SegmentsExec { input, kind, schema, properties }
    }
}

impl DisplayAs for SegmentsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SegmentsExec: {:?}", self.kind)
    }
}

/// A control value as segments compare it.
#[derive(Debug, Clone, PartialEq)]
enum Control {
    Null,
    Number(f64),
    Other(ScalarValue),
}

/// Where the segmentation stands between batches.
struct State {
    kind: SegmentKind,
    /// The current segment: its start time and first control value.
    current: Option<(i64, Control)>,
    /// The time of the last row taken (SESSION).
    previous: Option<i64>,
    /// COUNT: rows of the current segment so far, held back until it is full.
    held: Vec<RecordBatch>,
    held_rows: u64,
}

fn control_values(batch: &RecordBatch, column: Option<usize>) -> Result<Vec<Control>> {
    let Some(c) = column else { return Ok(vec![Control::Null; batch.num_rows()]) };
    let array = batch.column(c);
    if array.data_type().is_numeric() {
        let numbers = cast(array, &ArrowType::Float64)?;
        let numbers = numbers.as_primitive::<Float64Type>();
        return Ok((0..numbers.len()).map(|i| if numbers.is_null(i) { Control::Null } else { Control::Number(numbers.value(i)) }).collect());
    }
    (0..array.len())
        .map(|i| Ok(if array.is_null(i) { Control::Null } else { Control::Other(ScalarValue::try_from_array(array, i)?) }))
        .collect()
}

impl State {
    /// The segment start of each row (`None`: the row is in no segment).
    fn assign(&mut self, times: &[i64], controls: &[Control]) -> Vec<Option<i64>> {
        let mut out = Vec::with_capacity(times.len());
        for (t, c) in times.iter().zip(controls) {
            let start = match self.kind {
                SegmentKind::Variation { delta, ignore_null } => {
                    if *c == Control::Null && ignore_null {
                        None
                    } else {
                        let same = match (&self.current, c) {
                            (Some((_, Control::Number(first))), Control::Number(v)) => (v - first).abs() <= delta,
                            (Some((_, first)), v) => first == v,
                            (None, _) => false,
                        };
                        if !same {
                            self.current = Some((*t, c.clone()));
                        }
                        self.current.as_ref().map(|(s, _)| *s)
                    }
                }
                SegmentKind::Condition { ignore_null } => match c {
                    Control::Null if ignore_null => None,
                    Control::Other(ScalarValue::Boolean(Some(true))) => {
                        if self.current.is_none() {
                            self.current = Some((*t, Control::Null));
                        }
                        self.current.as_ref().map(|(s, _)| *s)
                    }
                    _ => {
                        self.current = None;
                        None
                    }
                },
                SegmentKind::Session { gap } => {
                    if self.previous.is_none_or(|p| t - p > gap) || self.current.is_none() {
                        self.current = Some((*t, Control::Null));
                    }
                    self.previous = Some(*t);
                    self.current.as_ref().map(|(s, _)| *s)
                }
                SegmentKind::Count { ignore_null, .. } => {
                    if *c == Control::Null && ignore_null {
                        None
                    } else {
                        if self.current.is_none() {
                            self.current = Some((*t, Control::Null));
                        }
                        self.current.as_ref().map(|(s, _)| *s)
                    }
                }
            };
            out.push(start);
        }
        out
    }
}

fn tagged(batch: &RecordBatch, rows: Vec<u32>, starts: Vec<i64>, schema: &SchemaRef) -> Result<RecordBatch> {
    let picked = take_record_batch(batch, &UInt32Array::from(rows))?;
    let mut columns: Vec<ArrayRef> = picked.columns().to_vec();
    columns.push(Arc::new(TimestampMillisecondArray::from(starts).with_timezone(UTC)));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// One input batch through the state: the rows ready to go out.
fn segment(state: &mut State, batch: &RecordBatch, time: usize, control: Option<usize>, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let times = batch
        .column(time)
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| DataFusionError::Internal("the time column is not a millisecond timestamp".into()))?;
    let controls = control_values(batch, control)?;
    let SegmentKind::Count { n, .. } = state.kind else {
        let starts = state.assign(times.values(), &controls);
        let (rows, starts): (Vec<u32>, Vec<i64>) = starts.iter().enumerate().filter_map(|(i, s)| s.map(|s| (i as u32, s))).unzip();
        return Ok(vec![tagged(batch, rows, starts, schema)?]);
    };
    // COUNT: walk row by row, closing a segment after n rows.
    let mut out = Vec::new();
    let mut rows: Vec<u32> = Vec::new();
    for i in 0..batch.num_rows() {
        let Some(start) = state.assign(&times.values()[i..=i], &controls[i..=i])[0] else { continue };
        rows.push(i as u32);
        state.held_rows += 1;
        if state.held_rows == n {
            let starts = vec![start; rows.len()];
            state.held.push(tagged(batch, std::mem::take(&mut rows), starts, schema)?);
            out.append(&mut state.held);
            state.held_rows = 0;
            state.current = None;
        }
    }
    if !rows.is_empty() {
        let start = state.current.as_ref().map(|(s, _)| *s).unwrap_or_default();
        let starts = vec![start; rows.len()];
        state.held.push(tagged(batch, rows, starts, schema)?);
    }
    Ok(out)
}

impl ExecutionPlan for SegmentsExec {
    fn name(&self) -> &str {
        "SegmentsExec"
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
        let input = super::only_child(children, "SegmentsExec")?;
        Ok(Arc::new(SegmentsExec::new(input, self.kind, self.schema.clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        super::first_partition("SegmentsExec", partition)?;
        let input_schema = self.input.schema();
        let time = input_schema.fields().iter().position(|f| f.name() == "time").ok_or_else(|| DataFusionError::Plan("segments need a time column".into()))?;
        let control = if self.kind.uses_control() { Some(input_schema.index_of(CONTROL)?) } else { None };
        let input = self.input.execute(0, context)?;
        let schema = self.schema.clone();
        let mut state = State { kind: self.kind, current: None, previous: None, held: Vec::new(), held_rows: 0 };
        let stream = input
            .map(move |b| -> Result<Vec<Result<RecordBatch>>> { Ok(segment(&mut state, &b?, time, control, &schema)?.into_iter().map(Ok).collect()) })
            .map(|r| futures::stream::iter(r.unwrap_or_else(|e| vec![Err(e)])))
            .flatten();
        let out = self.schema.clone();
        Ok(Box::pin(RecordBatchStreamAdapter::new(out, stream)))
    }
}

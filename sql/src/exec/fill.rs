//! `FILL`: NULLs of the final result filled in output order (IoTDB fills
//! after sorting: with `ORDER BY TIME DESC` "previous" is the next later
//! row). The first column is the time; the others are filled:
//!
//! - `PREVIOUS[, bound]`: the last non-NULL value above, if it is at most
//!   `bound` ms away; streams, carrying one row per column across batches;
//! - `LINEAR`: numbers interpolated on time between the non-NULL values
//!   above and below (both needed); collects the result first;
//! - a constant: NULLs of columns of a compatible type (numbers for a
//!   number, text for text, booleans for a boolean).
//!
//! Leading NULLs stay; nothing before the result (the `WHERE` range) is
//! looked at.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, AsArray, Float64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{cast, concat, concat_batches, is_not_null, take};
use datafusion::arrow::datatypes::{DataType as ArrowType, Float64Type, SchemaRef, TimestampMillisecondType};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchemaRef, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream};
use futures::StreamExt;

/// How `FILL` fills.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FillMethod {
    Previous { bound: Option<i64> },
    Linear,
    /// A constant of a kind: numbers (`integer` says whether it has no
    /// fraction, so it may fill integer columns), text or a boolean.
    Constant(ScalarValue),
}

impl FillMethod {
    fn describe(&self) -> String {
        match self {
            FillMethod::Previous { bound: Some(b) } => format!("previous, {b}ms"),
            FillMethod::Previous { bound: None } => "previous".into(),
            FillMethod::Linear => "linear".into(),
            FillMethod::Constant(v) => format!("{v}"),
        }
    }
}

/// Logical node: the input with NULLs filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill {
    pub input: LogicalPlan,
    pub method: FillMethod,
    /// Columns never filled (the time, `Device`).
    pub keep: Vec<usize>,
}

impl Hash for Fill {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.method.hash(state);
        self.keep.hash(state);
    }
}

super::partial_ord_by_eq!(Fill);

impl UserDefinedLogicalNodeCore for Fill {
    fn name(&self) -> &str {
        "Fill"
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
        write!(f, "Fill: {}", self.method.describe())
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs.pop().ok_or_else(|| DataFusionError::Plan("Fill needs an input".into()))?;
        Ok(Fill { input, ..self.clone() })
    }

    fn necessary_children_exprs(&self, _output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        None
    }
}

/// Computes [`Fill`].
#[derive(Debug)]
pub struct FillExec {
    input: Arc<dyn ExecutionPlan>,
    method: FillMethod,
    keep: Vec<usize>,
    properties: Arc<PlanProperties>,
}

impl FillExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, method: FillMethod, keep: Vec<usize>) -> Self {
        let schema = input.schema();
        let emission = if method == FillMethod::Linear { EmissionType::Final } else { EmissionType::Incremental };
        let properties = super::one_partition(schema, emission);
        FillExec { input, method, keep, properties }
    }
}

impl DisplayAs for FillExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FillExec: {}", self.method.describe())
    }
}

/// Whether a constant of `value`'s kind may fill a column of type `t`.
fn compatible(value: &ScalarValue, t: &ArrowType) -> bool {
    match value {
        ScalarValue::Int64(_) => t.is_numeric(),
        ScalarValue::Float64(_) => matches!(t, ArrowType::Float32 | ArrowType::Float64),
        ScalarValue::Utf8(_) => matches!(t, ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View),
        ScalarValue::Boolean(_) => *t == ArrowType::Boolean,
        _ => false,
    }
}

fn times(batch: &RecordBatch, time: usize) -> Option<&datafusion::arrow::array::PrimitiveArray<TimestampMillisecondType>> {
    batch.column(time).as_primitive_opt::<TimestampMillisecondType>()
}

/// The state `PREVIOUS` carries from one batch to the next: per column,
/// the last non-NULL value (one row) and its time.
pub(crate) struct Carry {
    values: Vec<Option<(ArrayRef, Option<i64>)>>,
}

impl Carry {
    pub(crate) fn new(columns: usize) -> Carry {
        Carry { values: vec![None; columns] }
    }
}

/// `PREVIOUS` over one batch; the time is column `time_column`.
pub(crate) fn fill_previous(batch: &RecordBatch, bound: Option<i64>, keep: &[usize], carry: &mut Carry, time_column: usize) -> Result<RecordBatch> {
    let time = times(batch, time_column);
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (c, column) in batch.columns().iter().enumerate() {
        if keep.contains(&c) || column.null_count() == 0 {
            if !keep.contains(&c) && !column.is_empty() {
                let last = column.len() - 1;
                carry.values[c] = Some((column.slice(last, 1), time.map(|t| t.value(last))));
            }
            columns.push(column.clone());
            continue;
        }
        // Index 0 is the carried value (or NULL), then the batch's rows.
        let carried = carry.values[c].clone();
        let head: ArrayRef = carried.as_ref().map_or_else(|| new_null_array(column.data_type(), 1), |(v, _)| v.clone());
        let source = concat(&[head.as_ref(), column.as_ref()])?;
        let mut last: Option<(u32, Option<i64>)> = carried.as_ref().map(|(_, t)| (0, *t));
        let mut indices: Vec<Option<u32>> = Vec::with_capacity(column.len());
        for row in 0..column.len() {
            let t = time.map(|t| t.value(row));
            if column.is_valid(row) {
                last = Some((row as u32 + 1, t));
                indices.push(Some(row as u32 + 1));
            } else {
                let within = |lt: Option<i64>| match (bound, lt, t) {
                    (Some(b), Some(lt), Some(t)) => (t - lt).abs() <= b,
                    _ => true,
                };
                indices.push(last.filter(|(_, lt)| within(*lt)).map(|(i, _)| i));
            }
        }
        if let Some((i, t)) = last {
            carry.values[c] = Some((source.slice(i as usize, 1), t));
        }
        columns.push(take(source.as_ref(), &UInt32Array::from(indices), None)?);
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

fn fill_constant(batch: &RecordBatch, value: &ScalarValue, keep: &[usize]) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (c, column) in batch.columns().iter().enumerate() {
        if keep.contains(&c) || column.null_count() == 0 || !compatible(value, column.data_type()) {
            columns.push(column.clone());
            continue;
        }
        let filler = cast(&value.to_array_of_size(column.len())?, column.data_type())?;
        columns.push(zip(&is_not_null(column.as_ref())?, column, &filler)?);
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// `LINEAR` over a whole result; the time is column `time_column`.
pub(crate) fn fill_linear(batch: &RecordBatch, keep: &[usize], time_column: usize) -> Result<RecordBatch> {
    let ArrowType::Timestamp(_, tz) = batch.column(time_column).data_type() else {
        return Err(DataFusionError::Plan("FILL(LINEAR) needs the time column".into()));
    };
    let millis = cast(batch.column(time_column), &ArrowType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, tz.clone()))?;
    let time = millis.as_primitive::<TimestampMillisecondType>();
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (c, column) in batch.columns().iter().enumerate() {
        if keep.contains(&c) || column.null_count() == 0 || !column.data_type().is_numeric() {
            columns.push(column.clone());
            continue;
        }
        let numbers = cast(column, &ArrowType::Float64)?;
        let numbers = numbers.as_primitive::<Float64Type>();
        let n = numbers.len();
        let mut out: Vec<Option<f64>> = (0..n).map(|i| numbers.is_valid(i).then(|| numbers.value(i))).collect();
        let mut previous: Option<usize> = None;
        let mut row = 0;
        while row < n {
            if numbers.is_valid(row) {
                previous = Some(row);
                row += 1;
                continue;
            }
            let next = (row..n).find(|&j| numbers.is_valid(j));
            if let (Some(p), Some(q)) = (previous, next) {
                let (t0, t1) = (time.value(p) as f64, time.value(q) as f64);
                let (v0, v1) = (numbers.value(p), numbers.value(q));
                for (k, slot) in out.iter_mut().enumerate().take(q).skip(row) {
                    let t = time.value(k) as f64;
                    *slot = Some(if t1 == t0 { v0 } else { v0 + (v1 - v0) * (t - t0) / (t1 - t0) });
                }
            }
            row = next.unwrap_or(n);
        }
        columns.push(cast(&Float64Array::from(out), column.data_type())?);
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

impl ExecutionPlan for FillExec {
    fn name(&self) -> &str {
        "FillExec"
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

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let input = super::only_child(children, "FillExec")?;
        Ok(Arc::new(FillExec::new(input, self.method.clone(), self.keep.clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        super::first_partition("FillExec", partition)?;
        let input = self.input.execute(0, context)?;
        let schema: SchemaRef = self.input.schema();
        let keep = self.keep.clone();
        match self.method.clone() {
            FillMethod::Previous { bound } => {
                let mut carry = Carry::new(schema.fields().len());
                let stream = input.map(move |b| fill_previous(&b?, bound, &keep, &mut carry, 0));
                Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
            }
            FillMethod::Constant(value) => {
                let stream = input.map(move |b| fill_constant(&b?, &value, &keep));
                Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
            }
            FillMethod::Linear => {
                let out = schema.clone();
                let work = async move {
                    let batches = datafusion::physical_plan::common::collect(input).await?;
                    fill_linear(&concat_batches(&schema, &batches)?, &keep, 0)
                };
                Ok(Box::pin(RecordBatchStreamAdapter::new(out, futures::stream::once(work))))
            }
        }
    }
}

//! `AlignByTime`: several devices' rows merged on time (IoTDB's default
//! alignment). The inputs are device scans sorted on their first column
//! (`time`); the output has one `time` column, then every input's value
//! columns, NULL where an input has no row at that time. A time appears
//! when at least one input has a row at it.
//!
//! [`AlignByTime`] is the logical node; [`AlignByTimeExec`] is a streaming
//! k-way merge that holds at most one output batch of input rows.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef, TimestampMillisecondType};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::expressions::Column as ColumnExpr;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream};
use futures::StreamExt;

/// Logical node: the inputs' rows merged on time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlignByTime {
    pub inputs: Vec<LogicalPlan>,
    pub descending: bool,
    schema: DFSchemaRef,
}

impl AlignByTime {
    /// Inputs whose first column is the time; their other columns follow
    /// in order in the output, named as they are (unqualified).
    pub fn try_new(inputs: Vec<LogicalPlan>, descending: bool) -> Result<Self> {
        let first = inputs.first().ok_or_else(|| DataFusionError::Plan("AlignByTime needs an input".into()))?;
        let mut fields: Vec<Field> = vec![first.schema().field(0).as_ref().clone()];
        for input in &inputs {
            fields.extend(input.schema().fields().iter().skip(1).map(|f| f.as_ref().clone().with_nullable(true)));
        }
        let schema = Arc::new(DFSchema::try_from(Schema::new(fields))?);
        Ok(AlignByTime { inputs, descending, schema })
    }
}

impl AlignByTime {
    pub fn schema_ref(&self) -> &DFSchemaRef {
        &self.schema
    }
}

impl Hash for AlignByTime {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inputs.hash(state);
        self.descending.hash(state);
    }
}

impl PartialOrd for AlignByTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        // Nodes are compared for plan deduplication only; equal inputs suffice.
        (self == other).then_some(Ordering::Equal)
    }
}

impl UserDefinedLogicalNodeCore for AlignByTime {
    fn name(&self) -> &str {
        "AlignByTime"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        self.inputs.iter().collect()
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "AlignByTime: inputs={}{}", self.inputs.len(), if self.descending { ", order=desc" } else { "" })
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        AlignByTime::try_new(inputs, self.descending)
    }
}

/// Streams the k-way merge of its inputs on time.
#[derive(Debug)]
pub struct AlignByTimeExec {
    inputs: Vec<Arc<dyn ExecutionPlan>>,
    descending: bool,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl AlignByTimeExec {
    pub fn new(inputs: Vec<Arc<dyn ExecutionPlan>>, descending: bool, schema: SchemaRef) -> Self {
        let expr = Arc::new(ColumnExpr::new(schema.field(0).name(), 0)) as Arc<dyn PhysicalExpr>;
        let sort = PhysicalSortExpr::new(expr, datafusion::arrow::compute::SortOptions { descending, nulls_first: false });
        let eq = match LexOrdering::new(vec![sort]) {
            Some(o) => EquivalenceProperties::new_with_orderings(schema.clone(), [o]),
            None => EquivalenceProperties::new(schema.clone()),
        };
        let properties = PlanProperties::new(eq, Partitioning::UnknownPartitioning(1), EmissionType::Incremental, Boundedness::Bounded);
        AlignByTimeExec { inputs, descending, schema, properties: Arc::new(properties) }
    }
}

impl DisplayAs for AlignByTimeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignByTimeExec: inputs={}{}", self.inputs.len(), if self.descending { ", order=desc" } else { "" })
    }
}

/// One input's position in the merge: the batches whose rows the current
/// output chunk refers to, and the next row.
struct Cursor {
    stream: SendableRecordBatchStream,
    held: Vec<RecordBatch>,
    row: usize,
    done: bool,
}

impl Cursor {
    /// The current batch, fetching the next non-empty one when needed.
    async fn fill(&mut self) -> Result<()> {
        while !self.done && self.held.last().is_none_or(|b| self.row >= b.num_rows()) {
            match self.stream.next().await {
                Some(batch) => {
                    let batch = batch?;
                    if batch.num_rows() > 0 {
                        self.held.push(batch);
                        self.row = 0;
                    }
                }
                None => self.done = true,
            }
        }
        Ok(())
    }

    fn time(&self) -> Option<i64> {
        let b = self.held.last()?;
        if self.row >= b.num_rows() {
            return None;
        }
        let times = b.column(0).as_primitive_opt::<TimestampMillisecondType>()?;
        Some(times.value(self.row))
    }
}

/// Merge `cursors` into batches of at most `batch_rows` rows sent to `tx`.
async fn merge(
    mut cursors: Vec<Cursor>,
    descending: bool,
    schema: SchemaRef,
    batch_rows: usize,
    tx: tokio::sync::mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let widths: Vec<usize> = cursors.iter().map(|c| c.stream.schema().fields().len() - 1).collect();
    loop {
        let mut times: Vec<i64> = Vec::with_capacity(batch_rows);
        // Per input, per output row: (held batch, row) or NULL.
        let mut picks: Vec<Vec<Option<(usize, usize)>>> = vec![Vec::with_capacity(batch_rows); cursors.len()];
        while times.len() < batch_rows {
            for c in cursors.iter_mut() {
                c.fill().await?;
            }
            let heads: Vec<Option<i64>> = cursors.iter().map(Cursor::time).collect();
            let next = if descending { heads.iter().flatten().max() } else { heads.iter().flatten().min() };
            let Some(&t) = next else { break };
            times.push(t);
            for (i, c) in cursors.iter_mut().enumerate() {
                if heads[i] == Some(t) {
                    picks[i].push(Some((c.held.len() - 1, c.row)));
                    c.row += 1;
                } else {
                    picks[i].push(None);
                }
            }
        }
        if times.is_empty() {
            return Ok(());
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        columns.push(Arc::new(
            datafusion::arrow::array::TimestampMillisecondArray::from(times.clone())
                .with_timezone_opt(match schema.field(0).data_type() {
                    datafusion::arrow::datatypes::DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                }),
        ));
        let mut out_col = 1;
        for (i, c) in cursors.iter_mut().enumerate() {
            for col in 1..=widths[i] {
                let null = new_null_array(schema.field(out_col).data_type(), 1);
                let mut sources: Vec<&dyn Array> = c.held.iter().map(|b| b.column(col).as_ref()).collect();
                sources.push(null.as_ref());
                let nulls_at = c.held.len();
                let indices: Vec<(usize, usize)> = picks[i].iter().map(|p| p.unwrap_or((nulls_at, 0))).collect();
                columns.push(interleave(&sources, &indices)?);
                out_col += 1;
            }
            // Keep only the batch the cursor is in.
            if let Some(last) = c.held.pop() {
                c.held.clear();
                c.held.push(last);
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(times.len()));
        let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)?;
        if tx.send(Ok(batch)).await.is_err() {
            return Ok(());
        }
    }
}

impl ExecutionPlan for AlignByTimeExec {
    fn name(&self) -> &str {
        "AlignByTimeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inputs.iter().collect()
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(AlignByTimeExec::new(children, self.descending, self.schema.clone())))
    }

    fn required_input_distribution(&self) -> Vec<datafusion::physical_plan::Distribution> {
        vec![datafusion::physical_plan::Distribution::SinglePartition; self.inputs.len()]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false; self.inputs.len()]
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("AlignByTimeExec has one partition, not {}", partition + 1)));
        }
        let cursors = self
            .inputs
            .iter()
            .map(|input| {
                Ok(Cursor { stream: input.execute(0, context.clone())?, held: Vec::new(), row: 0, done: false })
            })
            .collect::<Result<Vec<_>>>()?;
        let batch_rows = context.session_config().batch_size();
        let mut builder = RecordBatchReceiverStreamBuilder::new(self.schema.clone(), 2);
        let tx = builder.tx();
        builder.spawn(merge(cursors, self.descending, self.schema.clone(), batch_rows, tx));
        Ok(builder.build())
    }
}

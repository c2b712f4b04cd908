//! `ALIGN BY DEVICE`: the per-device results one after the other, in the
//! order the planner put the devices in (so "device, then time" needs no
//! sort). Every input has the same schema: `Time`, `Device`, measurements.
//!
//! [`AlignByDevice`] is the logical node; [`AlignByDeviceExec`] streams each
//! input to its end before starting the next.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::DFSchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream};
use futures::StreamExt;

/// Logical node: the inputs' rows, input after input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlignByDevice {
    pub inputs: Vec<LogicalPlan>,
    schema: DFSchemaRef,
}

impl AlignByDevice {
    pub fn try_new(inputs: Vec<LogicalPlan>) -> Result<Self> {
        let first = inputs.first().ok_or_else(|| DataFusionError::Plan("AlignByDevice needs an input".into()))?;
        let schema = first.schema().clone();
        for input in &inputs[1..] {
            let same = input.schema().fields().iter().zip(schema.fields()).all(|(a, b)| a.data_type() == b.data_type());
            if input.schema().fields().len() != schema.fields().len() || !same {
                return Err(DataFusionError::Plan("AlignByDevice inputs differ in their columns".into()));
            }
        }
        Ok(AlignByDevice { inputs, schema })
    }
}

impl Hash for AlignByDevice {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inputs.hash(state);
    }
}

super::partial_ord_by_eq!(AlignByDevice);

impl UserDefinedLogicalNodeCore for AlignByDevice {
    fn name(&self) -> &str {
        "AlignByDevice"
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
        write!(f, "AlignByDevice: devices={}", self.inputs.len())
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        AlignByDevice::try_new(inputs)
    }

    fn necessary_children_exprs(&self, _output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        None
    }
}

/// Streams [`AlignByDevice`].
#[derive(Debug)]
pub struct AlignByDeviceExec {
    inputs: Vec<Arc<dyn ExecutionPlan>>,
    properties: Arc<PlanProperties>,
}

impl AlignByDeviceExec {
    pub fn new(inputs: Vec<Arc<dyn ExecutionPlan>>, schema: datafusion::arrow::datatypes::SchemaRef) -> Self {
        let properties = super::one_partition(schema, EmissionType::Incremental);
        AlignByDeviceExec { inputs, properties }
    }
}

impl DisplayAs for AlignByDeviceExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignByDeviceExec: devices={}", self.inputs.len())
    }
}

impl ExecutionPlan for AlignByDeviceExec {
    fn name(&self) -> &str {
        "AlignByDeviceExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inputs.iter().collect()
    }

    fn required_input_distribution(&self) -> Vec<datafusion::physical_plan::Distribution> {
        vec![datafusion::physical_plan::Distribution::SinglePartition; self.inputs.len()]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        // One input after another is not a merge: a sort above must stay
        // above (pushing it into the inputs would sort each device alone).
        vec![false; self.inputs.len()]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false; self.inputs.len()]
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.properties.eq_properties.schema().clone();
        Ok(Arc::new(AlignByDeviceExec::new(children, schema)))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        super::first_partition("AlignByDeviceExec", partition)?;
        // Each input starts only when the one before it is done.
        let inputs = self.inputs.clone();
        let streams = futures::stream::iter(inputs).map(move |input| match input.execute(0, context.clone()) {
            Ok(s) => s.left_stream(),
            Err(e) => futures::stream::iter(vec![Err(e)]).right_stream(),
        });
        let schema = self.properties.eq_properties.schema().clone();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, streams.flatten())))
    }
}

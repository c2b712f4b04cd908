//! Physical operators (`*Exec`): how plans over stored data execute.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, Partitioning, PlanProperties};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use futures::TryStreamExt;

/// Logical nodes are compared for plan deduplication only: equal or unordered.
macro_rules! partial_ord_by_eq {
    ($($node:ty),* $(,)?) => {
        $(impl PartialOrd for $node {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                (self == other).then_some(std::cmp::Ordering::Equal)
            }
        })*
    };
}
pub(crate) use partial_ord_by_eq;

/// The properties of an operator with one output partition and bounded input.
fn one_partition(schema: SchemaRef, emission: EmissionType) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(EquivalenceProperties::new(schema), Partitioning::UnknownPartitioning(1), emission, Boundedness::Bounded))
}

/// The only child of a one-input operator.
fn only_child(mut children: Vec<Arc<dyn ExecutionPlan>>, name: &str) -> Result<Arc<dyn ExecutionPlan>> {
    children.pop().ok_or_else(|| DataFusionError::Internal(format!("{name} needs a child")))
}

/// Fails unless `partition` is the one partition an operator has.
fn first_partition(name: &str, partition: usize) -> Result<()> {
    if partition == 0 {
        Ok(())
    } else {
        Err(DataFusionError::Internal(format!("{name} has one partition, not {}", partition + 1)))
    }
}

mod align_by_device;
mod align_by_time;
mod device_scan;
mod fill;
mod gap_fill;
mod last_values;
mod planner;
mod segments;
mod series_aggregate;
mod windows;

pub use align_by_time::{AlignByTime, AlignByTimeExec};
pub use device_scan::{DeviceScanExec, DeviceScanSpec, ScanColumn};
pub use planner::ArborQueryPlanner;
pub use series_aggregate::{SeriesAggItem, SeriesAggregate, SeriesAggregateExec, StatKind};
pub use windows::{TimeWindows, TimeWindowsExec, WindowFill, WindowFillExec, MAX_WINDOWS, WINDOW};
pub use fill::{Fill, FillExec, FillMethod};
pub use last_values::{last_schema, value_text, LastItem, LastValues, LastValuesExec};
pub use align_by_device::{AlignByDevice, AlignByDeviceExec};
pub use segments::{SegmentKind, Segments, SegmentsExec, CONTROL};
pub use gap_fill::{GapFill, GapFillExec, GapFillKind, GapFillSpec, Stride};

/// A storage error as DataFusion carries it out of an operator.
pub(crate) fn storage_error(e: storage::Error) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(crate::error::Error::Storage(e)))
}

/// Whether every operator of `plan` does its work inline when polled, with
/// no task of its own: its leaves read a batch at most, or statistics, or
/// cached last values ([`DeviceScanExec::reads_inline`]), and nothing in
/// between repartitions.
fn runs_inline(plan: &Arc<dyn ExecutionPlan>, batch_rows: usize) -> bool {
    let leaf_inline = if let Some(scan) = plan.downcast_ref::<DeviceScanExec>() {
        scan.reads_inline(batch_rows)
    } else if let Some(aggregate) = plan.downcast_ref::<SeriesAggregateExec>() {
        aggregate.reads_inline()
    } else {
        plan.is::<LastValuesExec>() || plan.name() == "PlaceholderRowExec" || plan.name() == "EmptyExec"
    };
    if plan.children().is_empty() {
        return leaf_inline;
    }
    const PASSING: &[&str] = &["ProjectionExec", "FilterExec", "CoalesceBatchesExec", "GlobalLimitExec", "LocalLimitExec", "UnionExec", "CooperativeExec"];
    PASSING.contains(&plan.name()) && plan.children().into_iter().all(|c| runs_inline(c, batch_rows))
}

/// Execute `plan` as one stream. DataFusion merges several partitions
/// with a task per partition; when every partition runs inline (the
/// latest rows of ten devices, say) they are read one after another
/// instead, sparing the tasks and their wake-ups.
pub fn execute_stream(plan: Arc<dyn ExecutionPlan>, task: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
    let partitions = plan.properties().partitioning.partition_count();
    if partitions <= 1 || !runs_inline(&plan, task.session_config().batch_size()) {
        return datafusion::physical_plan::execute_stream(plan, task);
    }
    let schema = plan.schema();
    let streams = (0..partitions).map(move |p| plan.execute(p, task.clone()));
    let batches = futures::stream::iter(streams).try_flatten();
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
}

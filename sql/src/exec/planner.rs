//! Physical planning of Arbor's logical extension nodes: one
//! [`ExtensionPlanner`] per node kind, wired into DataFusion's default
//! physical planner by [`ArborQueryPlanner`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use datafusion::catalog::Session;

use super::{GapFill, GapFillExec, Segments, SegmentsExec, AlignByDevice, AlignByDeviceExec, AlignByTime, AlignByTimeExec, Fill, FillExec, LastValues, LastValuesExec, SeriesAggregate, SeriesAggregateExec, TimeWindows, TimeWindowsExec, WindowFill, WindowFillExec};
use crate::instance::Instance;
use datafusion::error::DataFusionError;

/// DataFusion's planner with Arbor's extension nodes.
#[derive(Debug)]
pub struct ArborQueryPlanner {
    instance: Arc<Instance>,
}

impl ArborQueryPlanner {
    pub fn new(instance: Arc<Instance>) -> Self {
        ArborQueryPlanner { instance }
    }
}

#[async_trait]
impl QueryPlanner for ArborQueryPlanner {
    async fn create_physical_plan(&self, logical_plan: &LogicalPlan, session: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        let planner = DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(AlignByTimePlanner),
            Arc::new(SeriesAggregatePlanner { instance: self.instance.clone() }),
            Arc::new(WindowsPlanner),
        ]);
        planner.create_physical_plan(logical_plan, session).await
    }
}

struct SeriesAggregatePlanner {
    instance: Arc<Instance>,
}

#[async_trait]
impl ExtensionPlanner for SeriesAggregatePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        _physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let store = |database: &str| self.instance.store(database).map_err(|e| DataFusionError::External(Box::new(e)));
        if let Some(last) = node.as_any().downcast_ref::<LastValues>() {
            let items = last.items.iter().map(|i| Ok((i.clone(), store(&i.database)?))).collect::<Result<Vec<_>>>()?;
            return Ok(Some(Arc::new(LastValuesExec::new(items, last.range))));
        }
        let Some(agg) = node.as_any().downcast_ref::<SeriesAggregate>() else { return Ok(None) };
        let items = agg
            .items
            .iter()
            .map(|i| {
                let store = self.instance.store(&i.database).map_err(|e| DataFusionError::External(Box::new(e)))?;
                Ok((i.clone(), store))
            })
            .collect::<Result<Vec<_>>>()?;
        let presence = agg.presence.iter().map(|i| Ok((i.clone(), store(&i.database)?))).collect::<Result<Vec<_>>>()?;
        let schema = Arc::new(agg.schema.as_arrow().clone());
        Ok(Some(Arc::new(SeriesAggregateExec::with_presence(items, agg.ranges.clone(), agg.windows, presence, schema))))
    }
}

struct AlignByTimePlanner;

#[async_trait]
impl ExtensionPlanner for AlignByTimePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(align) = node.as_any().downcast_ref::<AlignByTime>() else { return Ok(None) };
        let schema = Arc::new(align.schema_ref().as_arrow().clone());
        Ok(Some(Arc::new(AlignByTimeExec::new(physical_inputs.to_vec(), align.descending, schema))))
    }
}

struct WindowsPlanner;

#[async_trait]
impl ExtensionPlanner for WindowsPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let input = || physical_inputs.first().cloned().ok_or_else(|| DataFusionError::Internal(format!("{} needs an input", node.name())));
        if let Some(w) = node.as_any().downcast_ref::<TimeWindows>() {
            let schema = Arc::new(node.schema().as_arrow().clone());
            return Ok(Some(Arc::new(TimeWindowsExec::try_new(input()?, w.windows, schema)?)));
        }
        if node.as_any().downcast_ref::<AlignByDevice>().is_some() {
            let schema = Arc::new(node.schema().as_arrow().clone());
            return Ok(Some(Arc::new(AlignByDeviceExec::new(physical_inputs.to_vec(), schema))));
        }
        if let Some(g) = node.as_any().downcast_ref::<GapFill>() {
            return Ok(Some(Arc::new(GapFillExec::new(input()?, g.spec.clone()))));
        }
        if let Some(seg) = node.as_any().downcast_ref::<Segments>() {
            let schema = Arc::new(node.schema().as_arrow().clone());
            return Ok(Some(Arc::new(SegmentsExec::new(input()?, seg.kind, schema))));
        }
        if let Some(f) = node.as_any().downcast_ref::<Fill>() {
            return Ok(Some(Arc::new(FillExec::new(input()?, f.method.clone(), f.keep.clone()))));
        }
        if let Some(w) = node.as_any().downcast_ref::<WindowFill>() {
            return Ok(Some(Arc::new(WindowFillExec::new(input()?, w.windows, w.descending, w.zero.clone()))));
        }
        Ok(None)
    }
}

//! The session's plan cache: the physical plan of a query text that was
//! planned before, so that a dashboard or driver repeating a query skips
//! parsing, planning and optimisation (most of the time of a query that
//! reads little).
//!
//! A plan is kept only when running it again gives what planning it again
//! would:
//! - it was built from the catalog at the version it is looked up at
//!   (every schema change moves [`catalog::Catalog::version`]);
//! - it calls no function whose result depends on when or where it runs
//!   (`now()`, `random()`, `current_setting`): DataFusion folds those while
//!   planning ([`deterministic`]), and TSQL reads `now()` while parsing;
//! - every operator in it reads storage only when executed, and is one
//!   whose state [`reset_plan_states`] renews ([`reusable`]). In-memory
//!   sources (catalog tables, `VALUES`) and joins, which may hold what they
//!   read while planning or from a previous run, are never kept; nor are
//!   `PlaceholderRowExec` and `EmptyExec`, which stand where DataFusion
//!   answered a scan from its exact statistics while planning (an aggregate
//!   folded into a literal row, a scan of no rows), an answer that the next
//!   write makes stale.
//!
//! The session empties the cache whenever a statement may change what a
//! plan means to it (`SET` of DataFusion options, `PREPARE`, DDL).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::reset_plan_states;

use crate::error::Result;

/// Plans kept per session and surface; the oldest goes first.
pub(crate) const PLAN_CACHE_ENTRIES_MAX: usize = 64;
/// Longer query texts are planned every time (a key is the whole text).
pub(crate) const PLAN_CACHE_TEXT_BYTES_MAX: usize = 16 * 1024;

/// Operators that read storage only when executed and start afresh on
/// each execution once [`reset_plan_states`] has renewed them: Arbor's
/// own, and DataFusion's stateless or self-resetting ones.
const REUSABLE: &[&str] = &[
    "DeviceScanExec",
    "SeriesAggregateExec",
    "LastValuesExec",
    "AlignByTimeExec",
    "AlignByDeviceExec",
    "TimeWindowsExec",
    "WindowFillExec",
    "FillExec",
    "GapFillExec",
    "SegmentsExec",
    "ProjectionExec",
    "FilterExec",
    "CoalesceBatchesExec",
    "CoalescePartitionsExec",
    "GlobalLimitExec",
    "LocalLimitExec",
    "UnionExec",
    "SortExec",
    "SortPreservingMergeExec",
    "AggregateExec",
    "RepartitionExec",
    "CooperativeExec",
];

/// A planned query and the column headers it is sent with.
#[derive(Clone)]
pub(super) struct CachedPlan {
    physical: Arc<dyn ExecutionPlan>,
    pub(super) names: Option<Vec<Option<String>>>,
    catalog_version: u64,
}

impl CachedPlan {
    pub(super) fn new(physical: Arc<dyn ExecutionPlan>, names: Option<Vec<Option<String>>>, catalog_version: u64) -> Self {
        CachedPlan { physical, names, catalog_version }
    }

    /// A copy of the plan to execute, with every operator's run state new.
    pub(super) fn fresh(&self) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(reset_plan_states(self.physical.clone())?)
    }
}

/// Which query language a text is in: the same text may mean different
/// things on the two surfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Surface {
    Tsql,
    Sql,
}

/// Bounded map from query text to plan, per surface.
#[derive(Default)]
pub(super) struct PlanCache {
    tsql: HashMap<String, CachedPlan>,
    sql: HashMap<String, CachedPlan>,
    /// Insertion order, for eviction.
    order: VecDeque<(Surface, String)>,
}

impl PlanCache {
    fn map(&mut self, surface: Surface) -> &mut HashMap<String, CachedPlan> {
        match surface {
            Surface::Tsql => &mut self.tsql,
            Surface::Sql => &mut self.sql,
        }
    }

    /// The plan of `text` if it was built at `catalog_version`.
    /// (A plan built against another version stays until replaced.)
    pub(super) fn get(&mut self, surface: Surface, text: &str, catalog_version: u64) -> Option<CachedPlan> {
        self.map(surface).get(text).filter(|hit| hit.catalog_version == catalog_version).cloned()
    }

    /// Keep `plan` for `text` (if the text is not too long to be a key).
    pub(super) fn insert(&mut self, surface: Surface, text: &str, plan: CachedPlan) {
        if text.len() > PLAN_CACHE_TEXT_BYTES_MAX {
            return;
        }
        if self.map(surface).insert(text.to_string(), plan).is_none() {
            self.order.push_back((surface, text.to_string()));
        }
        while self.order.len() > PLAN_CACHE_ENTRIES_MAX {
            if let Some((surface, oldest)) = self.order.pop_front() {
                self.map(surface).remove(&oldest);
            }
        }
    }

    pub(super) fn clear(&mut self) {
        *self = PlanCache::default();
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.tsql.len() + self.sql.len()
    }
}

/// Whether `plan` (as the SQL planner built it, before optimisation) calls
/// only immutable functions, in subqueries too.
pub(super) fn deterministic(plan: &LogicalPlan) -> bool {
    let mut stable = true;
    let _ = plan.apply_with_subqueries(|node| {
        for e in node.expressions() {
            let _ = e.apply(|x| {
                Ok(match x {
                    Expr::ScalarFunction(f) if f.func.signature().volatility != Volatility::Immutable => {
                        stable = false;
                        TreeNodeRecursion::Stop
                    }
                    _ => TreeNodeRecursion::Continue,
                })
            });
        }
        Ok(if stable { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
    });
    stable
}

/// Whether every operator of `plan` is one that may run again ([`REUSABLE`]).
pub(super) fn reusable(plan: &Arc<dyn ExecutionPlan>) -> bool {
    REUSABLE.contains(&plan.name()) && plan.children().into_iter().all(reusable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::arrow::datatypes::Schema;

    fn plan() -> CachedPlan {
        CachedPlan::new(Arc::new(EmptyExec::new(Arc::new(Schema::empty()))), None, 7)
    }

    #[test]
    fn a_plan_is_found_only_at_the_catalog_version_it_was_built_at() {
        let mut cache = PlanCache::default();
        cache.insert(Surface::Tsql, "select s1 from root.a", plan());
        assert!(cache.get(Surface::Tsql, "select s1 from root.a", 7).is_some());
        assert!(cache.get(Surface::Sql, "select s1 from root.a", 7).is_none(), "surfaces are apart");
        assert!(cache.get(Surface::Tsql, "select s1 from root.a", 8).is_none());
        cache.insert(Surface::Tsql, "select s1 from root.a", CachedPlan { catalog_version: 8, ..plan() });
        assert!(cache.get(Surface::Tsql, "select s1 from root.a", 8).is_some(), "planned again, replaced");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_keeps_at_most_its_limit_dropping_the_oldest() {
        let mut cache = PlanCache::default();
        for i in 0..PLAN_CACHE_ENTRIES_MAX + 10 {
            cache.insert(Surface::Sql, &format!("select {i}"), plan());
        }
        assert_eq!(cache.len(), PLAN_CACHE_ENTRIES_MAX);
        assert!(cache.get(Surface::Sql, "select 0", 7).is_none());
        assert!(cache.get(Surface::Sql, &format!("select {}", PLAN_CACHE_ENTRIES_MAX + 9), 7).is_some());
        assert_eq!(cache.order.len(), PLAN_CACHE_ENTRIES_MAX);
        let long = "x".repeat(PLAN_CACHE_TEXT_BYTES_MAX + 1);
        cache.insert(Surface::Sql, &long, plan());
        assert!(cache.get(Surface::Sql, &long, 7).is_none());
    }
}

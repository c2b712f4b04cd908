//! `SELECT LAST` → a [`LastValues`] leaf, sorted by series path (or by
//! time with `ORDER BY TIME`), then offset and limit. Only time conditions
//! may restrict it.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::logical_expr::{Expr as DfExpr, Extension, LogicalPlan, LogicalPlanBuilder, SortExpr};
use storage::TimeRange;

use super::select::matches;
use crate::error::{Error, Result};
use crate::exec::{LastItem, LastValues};
use crate::instance::Instance;
use crate::tsql::ast::{Expr, Select};
use crate::tsql::{exact_time_range, TIMESERIES_KEY};

pub(crate) fn plan_last(instance: &Instance, select: &Select) -> Result<LogicalPlan> {
    if select.group_by_time.is_some() || select.having.is_some() || select.fill.is_some() {
        return Err(Error::Syntax("SELECT LAST takes no GROUP BY, HAVING or FILL".into()));
    }
    let range = match &select.filter {
        None => TimeRange::ALL,
        Some(f) => exact_time_range(f).ok_or_else(|| Error::Syntax("SELECT LAST takes only a time condition in WHERE (such as time > 100)".into()))?,
    };
    let mut items: Vec<(String, LastItem)> = Vec::new();
    for item in &select.items {
        let Expr::Path(p) = &item.expr else {
            return Err(Error::Syntax("SELECT LAST takes series paths, not expressions".into()));
        };
        if item.alias.is_some() {
            return Err(Error::Syntax("SELECT LAST takes no aliases".into()));
        }
        for s in matches(instance, p, &select.from)? {
            let path = s.path();
            if !items.iter().any(|(q, _)| *q == path) {
                let key = s.key();
                items.push((path, LastItem { database: s.database.clone(), device: key.device, measurement: key.measurement, data_type: s.data_type() }));
            }
        }
    }
    let node = LastValues::try_new(items.into_iter().map(|(_, i)| i).collect(), range)?;
    let column = |name: &str| DfExpr::Column(Column::from_name(name));
    let mut sorts: Vec<SortExpr> = Vec::new();
    for o in &select.order_by {
        match &o.expr {
            Expr::Time => sorts.push(SortExpr::new(column("Time"), !o.descending, false)),
            Expr::Path(p) if p == TIMESERIES_KEY => sorts.push(SortExpr::new(column("Timeseries"), !o.descending, false)),
            _ => return Err(Error::Syntax("SELECT LAST orders by TIMESERIES or TIME only".into())),
        }
    }
    if !sorts.iter().any(|s| s.expr == column("Timeseries")) {
        sorts.push(SortExpr::new(column("Timeseries"), true, false));
    }
    let mut builder = LogicalPlanBuilder::from(LogicalPlan::Extension(Extension { node: Arc::new(node) })).sort(sorts)?;
    if select.limit.is_some() || select.offset > 0 {
        builder = builder.limit(select.offset, select.limit)?;
    }
    Ok(builder.build()?)
}

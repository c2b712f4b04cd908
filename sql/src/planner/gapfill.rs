//! [`GapFillRule`]: a SQL aggregate grouped by `date_bin_gapfill(…)` gets a
//! [`GapFill`] node above it that emits the buckets without rows in the
//! query's time range (taken from `WHERE`, which must bound it on both
//! sides); `locf(agg)` and `interpolate(agg)` in the select list say how
//! those buckets' aggregates are filled.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::source_as_provider;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, Projection};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use storage::TimeRange;

use crate::exec::{GapFill, GapFillKind, GapFillSpec, Stride};
use crate::functions::gapfill::{DATE_BIN_GAPFILL, INTERPOLATE, LOCF};
use crate::provider::{intersect, time_ranges, DeviceTableProvider};

#[derive(Debug, Default)]
pub(crate) struct GapFillRule;

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

fn is_gapfill(e: &Expr) -> bool {
    matches!(unalias(e), Expr::ScalarFunction(f) if f.func.name() == DATE_BIN_GAPFILL)
}

fn plan_error(message: &str) -> DataFusionError {
    DataFusionError::Plan(message.to_string())
}

/// The stride of a bucket: months, or a fixed number of milliseconds.
pub(super) fn stride(v: &ScalarValue) -> Result<Stride> {
    let (months, days, nanos): (i64, i64, i64) = match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) => (i64::from(i.months), i64::from(i.days), i.nanoseconds),
        ScalarValue::IntervalDayTime(Some(i)) => (0, i64::from(i.days), i64::from(i.milliseconds) * 1_000_000),
        ScalarValue::IntervalYearMonth(Some(m)) => (i64::from(*m), 0, 0),
        _ => return Err(plan_error("date_bin_gapfill needs a constant interval stride")),
    };
    match (months, days, nanos) {
        (m, 0, 0) if m > 0 => Ok(Stride::Months(m)),
        (0, d, n) if d * 86_400_000_000_000 + n >= 1_000_000 => Ok(Stride::Millis(d * 86_400_000 + n / 1_000_000)),
        _ => Err(plan_error("date_bin_gapfill needs a positive stride of months, or of at least a millisecond")),
    }
}

pub(super) fn millis(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampMillisecond(Some(t), _) => Some(*t),
        ScalarValue::TimestampMicrosecond(Some(t), _) => Some(t / 1000),
        ScalarValue::TimestampNanosecond(Some(t), _) => Some(t / 1_000_000),
        ScalarValue::TimestampSecond(Some(t), _) => Some(t * 1000),
        _ => None,
    }
}

/// The time ranges every row under the aggregate passed.
fn ranges(plan: &LogicalPlan, out: &mut Vec<TimeRange>) {
    match plan {
        LogicalPlan::Filter(f) => {
            if let Some(r) = time_ranges(&f.predicate) {
                *out = intersect(out, &r);
            }
            ranges(&f.input, out);
        }
        LogicalPlan::TableScan(scan) => {
            for f in &scan.filters {
                if let Some(r) = time_ranges(f) {
                    *out = intersect(out, &r);
                }
            }
            if let Some(table) = source_as_provider(&scan.source).ok().and_then(|p| p.downcast_ref::<DeviceTableProvider>().cloned()) {
                *out = intersect(out, table.ranges());
            }
        }
        LogicalPlan::Projection(p) => ranges(&p.input, out),
        LogicalPlan::SubqueryAlias(s) => ranges(&s.input, out),
        _ => {}
    }
}

impl OptimizerRule for GapFillRule {
    fn name(&self) -> &str {
        "gap_fill"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Projection(projection) = &plan else { return Ok(Transformed::no(plan)) };
        let LogicalPlan::Aggregate(agg) = projection.input.as_ref() else { return Ok(Transformed::no(plan)) };
        let Some(time) = agg.group_expr.iter().position(is_gapfill) else { return Ok(Transformed::no(plan)) };
        let Expr::ScalarFunction(f) = unalias(&agg.group_expr[time]) else { return Ok(Transformed::no(plan)) };
        let stride = match f.args.first() {
            Some(Expr::Literal(v, _)) => stride(v)?,
            _ => return Err(plan_error("date_bin_gapfill needs a constant interval stride")),
        };
        let origin = match f.args.get(2) {
            None => 0,
            Some(Expr::Literal(v, _)) => millis(v).ok_or_else(|| plan_error("the origin of date_bin_gapfill must be a constant timestamp"))?,
            Some(_) => return Err(plan_error("the origin of date_bin_gapfill must be a constant timestamp")),
        };
        let mut within = vec![TimeRange::ALL];
        ranges(&agg.input, &mut within);
        let (Some(first), Some(last)) = (within.first(), within.last()) else {
            return Err(plan_error("date_bin_gapfill: the WHERE clause's time range is empty"));
        };
        if first.start == i64::MIN || last.end == i64::MAX {
            return Err(plan_error("date_bin_gapfill needs a time range in WHERE with a lower and an upper bound"));
        }
        let groups: Vec<usize> = (0..agg.group_expr.len()).filter(|i| *i != time).collect();
        // locf(x) / interpolate(x) over aggregate columns: the marks go, the
        // columns keep their names.
        let schema = agg.schema.clone();
        let mut fills: Vec<(usize, GapFillKind)> = Vec::new();
        let mut exprs = Vec::with_capacity(projection.expr.len());
        for e in &projection.expr {
            let name = e.schema_name().to_string();
            let mut marked = false;
            let rewritten = e
                .clone()
                .transform_up(|x| {
                    let Expr::ScalarFunction(call) = &x else { return Ok(Transformed::no(x)) };
                    let kind = match call.func.name() {
                        LOCF => GapFillKind::Locf,
                        INTERPOLATE => GapFillKind::Interpolate,
                        _ => return Ok(Transformed::no(x)),
                    };
                    let Some(Expr::Column(c)) = call.args.first() else {
                        return Err(plan_error("locf() and interpolate() take an aggregate of the gap-filled query"));
                    };
                    let index = schema.index_of_column(c)?;
                    fills.push((index, kind));
                    marked = true;
                    Ok(Transformed::yes(Expr::Column(c.clone())))
                })?
                .data;
            exprs.push(if marked && !matches!(rewritten, Expr::Alias(_)) { rewritten.alias(name) } else { rewritten });
        }
        let spec = GapFillSpec { time, groups, stride, origin, range: (first.start, last.end), fills };
        let filled = LogicalPlan::Extension(Extension { node: Arc::new(GapFill { input: projection.input.as_ref().clone(), spec }) });
        Ok(Transformed::yes(LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(filled))?)))
    }
}

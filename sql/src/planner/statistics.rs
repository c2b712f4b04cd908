//! [`StatisticsAggregateRule`]: an aggregate without `GROUP BY` over device
//! scans, filtered by time only, whose every aggregate is a whole-series
//! statistic (`count(s)`, `sum`/`avg` as doubles, `min`/`max`, first/last
//! value in time order ignoring NULLs, min/max time where `s` is not NULL)
//! becomes a [`SeriesAggregate`], answered from TsFile statistics. The same
//! rule serves TSQL (`count(root.sg.d1.s1)`) and SQL (`count(s1)` on a
//! device table).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType as ArrowType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::Column;
use datafusion::datasource::source_as_provider;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{AggregateFunction, NullTreatment};
use datafusion::arrow::datatypes::Field;
use datafusion::common::{DFSchema, ScalarValue, TableReference};
use datafusion::functions::core::expr_fn::{greatest, least};
use datafusion::logical_expr::{lit, Expr, Extension, LogicalPlan, Projection};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use storage::TimeRange;

use crate::exec::{AlignByTime, SeriesAggItem, SeriesAggregate, StatKind, Stride, TimeWindows, WINDOW};
use crate::time::{CalendarDuration, Windows, Zone};
use crate::provider::{exact_time_ranges, intersect, time_ranges, DeviceTableProvider};

#[derive(Debug, Default)]
pub(crate) struct StatisticsAggregateRule;

/// The device tables under an aggregate, with the time ranges every row
/// passed; `None` when anything else (a value filter, a join, a limit)
/// stands between.
fn sources(plan: &LogicalPlan, ranges: &mut Vec<TimeRange>, out: &mut Vec<(Option<String>, Arc<DeviceTableProvider>)>) -> Option<()> {
    match plan {
        LogicalPlan::Filter(f) => {
            let r = time_ranges(&f.predicate)?;
            if !exact_time_ranges(&f.predicate) {
                return None;
            }
            *ranges = intersect(ranges, &r);
            sources(&f.input, ranges, out)
        }
        LogicalPlan::Projection(p) => {
            // Only plain column pass-throughs keep the names meaning the same.
            let plain = p.expr.iter().all(|e| matches!(e, Expr::Column(_)));
            if plain {
                sources(&p.input, ranges, out)
            } else {
                None
            }
        }
        LogicalPlan::TableScan(scan) => {
            if scan.fetch.is_some() {
                return None;
            }
            for f in &scan.filters {
                let r = time_ranges(f)?;
                if !exact_time_ranges(f) {
                    return None;
                }
                *ranges = intersect(ranges, &r);
            }
            let provider = source_as_provider(&scan.source).ok()?;
            let table = provider.downcast_ref::<DeviceTableProvider>()?;
            *ranges = intersect(ranges, table.ranges());
            out.push((Some(scan.table_name.to_string()), Arc::new(table.clone())));
            Some(())
        }
        LogicalPlan::Extension(e) => {
            let align = e.node.as_any().downcast_ref::<AlignByTime>()?;
            for input in &align.inputs {
                sources(input, ranges, out)?;
            }
            Some(())
        }
        _ => None,
    }
}

/// The series item of aggregate `e`, if it is a whole-series statistic.
fn item(e: &Expr, tables: &[(Option<String>, Arc<DeviceTableProvider>)]) -> Option<SeriesAggItem> {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = e else { return None };
    if params.distinct {
        return None;
    }
    let name = func.name().to_ascii_lowercase();
    let arg = params.args.first()?;
    let is_time = |c: &Column| c.name == "time";
    let series_of = |c: &Column| tables.iter().find_map(|(_, t)| t.column_series(&c.name).cloned());
    let value_column = |e: &Expr| -> Option<(Column, bool)> {
        match e {
            Expr::Column(c) => Some((c.clone(), false)),
            Expr::Cast(cast) if *cast.field.data_type() == ArrowType::Float64 => match cast.expr.as_ref() {
                Expr::Column(c) => Some((c.clone(), true)),
                _ => None,
            },
            _ => None,
        }
    };
    let (column, kind) = match (name.as_str(), &params.filter) {
        ("count", None) if params.order_by.is_empty() => {
            let (c, _) = value_column(arg)?;
            (c, StatKind::Count)
        }
        ("sum" | "avg", None) => {
            let (c, cast) = value_column(arg)?;
            let s = series_of(&c)?;
            // Only double sums: an integer sum's exact type would differ.
            let double = cast || matches!(s.data_type(), tsfile::DataType::Double | tsfile::DataType::Float);
            if !double && name == "sum" {
                return None;
            }
            (c, if name == "sum" { StatKind::Sum } else { StatKind::Avg })
        }
        ("min" | "max", None) => {
            let Expr::Column(c) = arg else { return None };
            if is_time(c) {
                return None;
            }
            (c.clone(), if name == "min" { StatKind::Min } else { StatKind::Max })
        }
        ("min" | "max", Some(filter)) => {
            // min/max(time) FILTER (WHERE s IS NOT NULL): s's first/last time.
            let Expr::Column(t) = arg else { return None };
            let Expr::IsNotNull(inner) = filter.as_ref() else { return None };
            let Expr::Column(c) = inner.as_ref() else { return None };
            if !is_time(t) {
                return None;
            }
            (c.clone(), if name == "min" { StatKind::MinTime } else { StatKind::MaxTime })
        }
        ("first_value" | "last_value", None) => {
            let Expr::Column(c) = arg else { return None };
            let by_time = matches!(params.order_by.as_slice(), [s] if s.asc && matches!(&s.expr, Expr::Column(t) if is_time(t)));
            if !by_time || params.null_treatment != Some(NullTreatment::IgnoreNulls) {
                return None;
            }
            (c.clone(), if name == "first_value" { StatKind::First } else { StatKind::Last })
        }
        _ => return None,
    };
    let s = series_of(&column)?;
    // Statistics carry min/max for numbers and strings only.
    if matches!(kind, StatKind::Min | StatKind::Max) && !matches!(s.data_type(), tsfile::DataType::Int32 | tsfile::DataType::Int64 | tsfile::DataType::Float | tsfile::DataType::Double | tsfile::DataType::Date | tsfile::DataType::Timestamp) {
        return None;
    }
    if matches!(kind, StatKind::Sum | StatKind::Avg) && !matches!(s.data_type(), tsfile::DataType::Int32 | tsfile::DataType::Int64 | tsfile::DataType::Float | tsfile::DataType::Double) {
        return None;
    }
    Some(SeriesAggItem {
        kind,
        database: s.database.clone(),
        device: s.info.device_path().to_string(),
        measurement: s.info.measurement().to_string(),
        data_type: s.data_type(),
    })
}

impl OptimizerRule for StatisticsAggregateRule {
    fn name(&self) -> &str {
        "statistics_aggregate"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = &plan else { return Ok(Transformed::no(plan)) };
        if agg.aggr_expr.is_empty() {
            return Ok(Transformed::no(plan));
        }
        // No grouping, or grouping by the time window only.
        let (input, windows) = match agg.group_expr.as_slice() {
            [] => (agg.input.as_ref(), None),
            [Expr::Column(c)] if c.name == WINDOW => {
                // Column pruning may put a plain projection in between.
                let mut below = agg.input.as_ref();
                while let LogicalPlan::Projection(p) = below {
                    if !p.expr.iter().all(|e| matches!(e, Expr::Column(_))) {
                        return Ok(Transformed::no(plan));
                    }
                    below = p.input.as_ref();
                }
                match below {
                    LogicalPlan::Extension(e) => match e.node.as_any().downcast_ref::<TimeWindows>() {
                        Some(w) => (&w.input, Some(w.windows)),
                        None => return Ok(Transformed::no(plan)),
                    },
                    _ => return Ok(Transformed::no(plan)),
                }
            }
            [e] if date_bin_of(e).is_some() => return date_bin_windows(&plan),
            _ => return Ok(Transformed::no(plan)),
        };
        let mut ranges = vec![TimeRange::ALL];
        let mut tables = Vec::new();
        if sources(input, &mut ranges, &mut tables).is_none() {
            return Ok(Transformed::no(plan));
        }
        // Each output: one item, or the least/greatest of several.
        let mut items = Vec::new();
        let mut outputs = Vec::with_capacity(agg.aggr_expr.len());
        for e in &agg.aggr_expr {
            if let Some(one) = item(e, &tables) {
                outputs.push(Output::One(items.len()));
                items.push(one);
            } else if let Some((kind, several)) = row_time_items(e, &tables) {
                outputs.push(Output::Several(kind, items.len()..items.len() + several.len()));
                items.extend(several);
            } else {
                return Ok(Transformed::no(plan));
            }
        }
        if outputs.iter().all(|o| matches!(o, Output::One(_))) {
            let node = SeriesAggregate { items, ranges, windows, presence: Vec::new(), schema: agg.schema.clone() };
            return Ok(Transformed::yes(LogicalPlan::Extension(Extension { node: Arc::new(node) })));
        }
        combined(agg.schema.as_ref(), items, &outputs, ranges, windows).map(Transformed::yes)
    }
}

/// Where an aggregate's value comes from.
enum Output {
    One(usize),
    /// `MinTime` items combined with `least`, `MaxTime` ones with `greatest`.
    Several(StatKind, std::ops::Range<usize>),
}

/// `min(time)` / `max(time)` of one device table: the first / last time
/// at which any of its series has a point (a row), i.e. the least /
/// greatest of its series' own first / last times.
fn row_time_items(e: &Expr, tables: &[(Option<String>, Arc<DeviceTableProvider>)]) -> Option<(StatKind, Vec<SeriesAggItem>)> {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = e else { return None };
    if params.distinct || params.filter.is_some() || !params.order_by.is_empty() {
        return None;
    }
    let kind = match func.name().to_ascii_lowercase().as_str() {
        "min" => StatKind::MinTime,
        "max" => StatKind::MaxTime,
        _ => return None,
    };
    let ([arg], [(_, table)]) = (params.args.as_slice(), tables) else { return None };
    if !matches!(arg, Expr::Column(c) if c.name == "time") {
        return None;
    }
    let items = table
        .series()
        .iter()
        .map(|s| SeriesAggItem {
            kind,
            database: s.database.clone(),
            device: s.info.device_path().to_string(),
            measurement: s.info.measurement().to_string(),
            data_type: s.data_type(),
        })
        .collect();
    Some((kind, items))
}

/// A [`SeriesAggregate`] of `items` under a projection that combines them
/// into the aggregate's columns (`schema`).
fn combined(schema: &DFSchema, items: Vec<SeriesAggItem>, outputs: &[Output], ranges: Vec<TimeRange>, windows: Option<Windows>) -> Result<LogicalPlan> {
    let offset = usize::from(windows.is_some());
    let mut fields: Vec<(Option<TableReference>, Arc<Field>)> = Vec::with_capacity(offset + items.len());
    let mut exprs = Vec::with_capacity(schema.fields().len());
    if windows.is_some() {
        let (qualifier, field) = schema.qualified_field(0);
        fields.push((qualifier.cloned(), field.clone()));
        exprs.push(Expr::Column(Column::new(qualifier.cloned(), field.name())));
    }
    let name = |i: usize| format!("__statistic_{i}");
    for (o, output) in outputs.iter().enumerate() {
        let (qualifier, field) = schema.qualified_field(offset + o);
        let range = match output {
            Output::One(i) => *i..*i + 1,
            Output::Several(_, range) => range.clone(),
        };
        for i in range.clone() {
            fields.push((None, Arc::new(Field::new(name(i), field.data_type().clone(), true))));
        }
        let columns: Vec<Expr> = range.map(|i| Expr::Column(Column::from_name(name(i)))).collect();
        let expr = match output {
            Output::One(_) => columns.into_iter().next().unwrap_or_else(|| lit(ScalarValue::Null)),
            Output::Several(StatKind::MinTime, _) => least(columns),
            Output::Several(..) => greatest(columns),
        };
        exprs.push(expr.alias_qualified(qualifier.cloned(), field.name()));
    }
    let node_schema = Arc::new(DFSchema::new_with_metadata(fields, schema.metadata().clone())?);
    let node = SeriesAggregate { items, ranges, windows, presence: Vec::new(), schema: node_schema };
    let input = LogicalPlan::Extension(Extension { node: Arc::new(node) });
    Ok(LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input))?))
}

/// `(stride in ms, origin)` of `date_bin(interval, time[, origin])` with a
/// constant fixed stride and origin.
fn date_bin_of(e: &Expr) -> Option<(i64, i64)> {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    };
    let Expr::ScalarFunction(f) = e else { return None };
    if f.func.name() != "date_bin" {
        return None;
    }
    let stride = match f.args.first()? {
        Expr::Literal(v, _) => match super::gapfill::stride(v).ok()? {
            Stride::Millis(ms) => ms,
            Stride::Months(_) => return None,
        },
        _ => return None,
    };
    // The time column, maybe cast to another timestamp unit.
    let time = match f.args.get(1)? {
        Expr::Cast(cast) if matches!(cast.field.data_type(), ArrowType::Timestamp(..)) => cast.expr.as_ref(),
        other => other,
    };
    if !matches!(time, Expr::Column(c) if c.name == "time") {
        return None;
    }
    let origin = match f.args.get(2) {
        None => 0,
        Some(Expr::Literal(v, _)) => super::gapfill::millis(v)?,
        Some(_) => return None,
    };
    Some((stride, origin))
}

/// A SQL aggregate over one device table grouped by a `date_bin` bucket
/// of `time`, bounded on both sides by `WHERE`, with whole-series
/// aggregates: answered per bucket from statistics (a windowed
/// [`SeriesAggregate`]), keeping only the buckets in which the table has
/// rows (any of its series has a point), as `GROUP BY` does.
fn date_bin_windows(plan: &LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let unchanged = || Ok(Transformed::no(plan.clone()));
    let LogicalPlan::Aggregate(agg) = plan else { return unchanged() };
    let Some((stride, origin)) = agg.group_expr.first().and_then(date_bin_of) else { return unchanged() };
    let mut ranges = vec![TimeRange::ALL];
    let mut tables = Vec::new();
    if sources(&agg.input, &mut ranges, &mut tables).is_none() {
        return unchanged();
    }
    let [(_, table)] = tables.as_slice() else { return unchanged() };
    let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else { return unchanged() };
    if first.start == i64::MIN || last.end == i64::MAX || !matches!(agg.schema.field(0).data_type(), ArrowType::Timestamp(..)) {
        return unchanged();
    }
    let start = origin + (first.start - origin).div_euclid(stride) * stride;
    let interval = CalendarDuration { months: 0, ms: stride };
    let windows = Windows { start, end: last.end.saturating_add(1), interval, step: interval, left_open: false, zone: Zone::UTC };
    if windows.count() > crate::exec::MAX_WINDOWS {
        return unchanged();
    }
    let Some(items) = agg.aggr_expr.iter().map(|e| item(e, &tables)).collect::<Option<Vec<_>>>() else { return unchanged() };
    // The table has rows in a bucket where any of its series has a point.
    let presence = table
        .series()
        .iter()
        .map(|s| SeriesAggItem {
            kind: StatKind::Count,
            database: s.database.clone(),
            device: s.info.device_path().to_string(),
            measurement: s.info.measurement().to_string(),
            data_type: s.data_type(),
        })
        .collect();
    let node = SeriesAggregate { items, ranges, windows: Some(windows), presence, schema: agg.schema.clone() };
    Ok(Transformed::yes(LogicalPlan::Extension(Extension { node: Arc::new(node) })))
}

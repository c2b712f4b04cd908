//! `ALIGN BY DEVICE`: one result per device, one after the other. Columns
//! `Time, Device`, then the select items with bare measurement names as
//! headers (`s1`, `count(s1)`, `s0 + s1`) over the union of what the
//! devices have, NULL where a device lacks a measurement. Each device's
//! rows are planned like an ordinary select over that device alone (value
//! filters, aggregates, `GROUP BY` windows per device); [`AlignByDevice`]
//! concatenates them in device order, or a sort puts time first for
//! `ORDER BY TIME`. `SLIMIT` slices the measurement columns; `LIMIT`,
//! `OFFSET` and `FILL` apply to the whole result.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType as ArrowType;
use datafusion::common::Column;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{cast, lit, Expr as DfExpr, Extension, LogicalPlan, LogicalPlanBuilder, SortExpr};

use super::select::{bind, combinations, header, matches, plan_select};
use crate::error::Result;
use crate::exec::{AlignByDevice, Fill};
use crate::instance::Instance;
use crate::series::SeriesRef;
use crate::tsql::ast::{Expr, Literal, OrderItem, Select, SelectItem};
use crate::tsql::DEVICE_KEY;

/// One select item's expansion for one device.
struct DeviceColumn {
    device: String,
    /// The item with full paths.
    expr: Expr,
    /// The header: the item with bare measurement names (or its alias).
    header: String,
}

/// `e` with every path of the device replaced by its measurement name.
fn bare(e: &Expr, device: &str) -> Expr {
    let prefix = format!("{device}.");
    let paths: Vec<&str> = e.paths();
    let binding: HashMap<&str, String> = paths.iter().map(|p| (*p, p.strip_prefix(&prefix).unwrap_or(p).to_string())).collect();
    bind(e, &binding)
}

/// `e` (paths relative to the device, or full) bound to the device's series;
/// a measurement the device lacks becomes NULL.
fn for_device(instance: &Instance, e: &Expr, device: &str) -> Result<Expr> {
    let mut binding: HashMap<&str, String> = HashMap::new();
    for p in e.paths() {
        let found: Vec<SeriesRef> = matches(instance, p, &[device.to_string()])?;
        binding.insert(p, found.first().map(SeriesRef::path).unwrap_or_default());
    }
    Ok(bind(e, &binding))
}

pub(crate) fn plan_align_by_device(instance: &Arc<Instance>, select: &Select, registry: &dyn FunctionRegistry) -> Result<LogicalPlan> {
    // 1. Expand the items, keeping combinations inside one device.
    let mut found: Vec<DeviceColumn> = Vec::new();
    for item in &select.items {
        let mut paths: Vec<&str> = Vec::new();
        for p in item.expr.paths() {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        let expansions = paths.iter().map(|p| matches(instance, p, &select.from)).collect::<Result<Vec<_>>>()?;
        let devices_of: HashMap<String, String> =
            expansions.iter().flatten().map(|s| (s.path(), s.info.device_path().to_string())).collect();
        for binding in combinations(&paths, &expansions) {
            let mut devices: Vec<&String> = binding.values().filter_map(|p| devices_of.get(p)).collect();
            devices.dedup();
            let [device] = devices.as_slice() else { continue };
            let expr = bind(&item.expr, &binding);
            let header = item.alias.clone().unwrap_or_else(|| header(&bare(&expr, device)));
            found.push(DeviceColumn { device: (*device).clone(), expr, header });
        }
    }
    let mut devices: Vec<String> = found.iter().map(|c| c.device.clone()).collect();
    devices.sort();
    devices.dedup();
    // 2. The columns: headers in order of first appearance over the sorted devices.
    let mut headers: Vec<String> = Vec::new();
    for d in &devices {
        for c in found.iter().filter(|c| c.device == *d) {
            if !headers.contains(&c.header) {
                headers.push(c.header.clone());
            }
        }
    }
    let headers: Vec<String> = headers.into_iter().skip(select.soffset).take(select.slimit.unwrap_or(usize::MAX)).collect();
    let aggregate = select.items.iter().any(|i| i.expr.has_aggregate());
    let timed = select.group_by_time.is_some() || !aggregate;
    if headers.is_empty() || devices.is_empty() {
        let plan = plan_select(instance, &Select { items: Vec::new(), ..plain(select) }, registry)?;
        return Ok(plan);
    }
    // 3. Device order: ORDER BY DEVICE [DESC]; ORDER BY TIME first sorts the whole result.
    let device_desc = select.order_by.iter().find(|o| matches!(&o.expr, Expr::Path(p) if p == DEVICE_KEY)).is_some_and(|o| o.descending);
    if device_desc {
        devices.reverse();
    }
    let time_first = select.order_by.first().is_some_and(|o| o.expr == Expr::Time);
    let time_desc = select.order_by.iter().find(|o| o.expr == Expr::Time).is_some_and(|o| o.descending);

    // 4. One plan per device over the same columns.
    let mut plans: Vec<(String, LogicalPlan)> = Vec::new();
    for d in &devices {
        let items: Vec<SelectItem> = headers
            .iter()
            .map(|h| {
                let expr = found.iter().find(|c| c.device == *d && c.header == *h).map_or(Expr::Literal(Literal::Null), |c| c.expr.clone());
                SelectItem { expr, alias: Some(h.clone()) }
            })
            .collect();
        if items.iter().all(|i| i.expr == Expr::Literal(Literal::Null)) {
            continue;
        }
        let filter = select.filter.as_ref().map(|f| for_device(instance, f, d)).transpose()?;
        let having = select.having.as_ref().map(|h| for_device(instance, h, d)).transpose()?;
        let order_by = select
            .order_by
            .iter()
            .filter(|o| !matches!(&o.expr, Expr::Path(p) if p == DEVICE_KEY))
            .map(|o| Ok(OrderItem { expr: if o.expr == Expr::Time { Expr::Time } else { for_device(instance, &o.expr, d)? }, ..o.clone() }))
            .collect::<Result<Vec<_>>>()?;
        let device_select = Select { items, from: vec![d.clone()], filter, having, order_by, ..plain(select) };
        plans.push((d.clone(), plan_select(instance, &device_select, registry)?));
    }
    // 5. Common column types, then `Time, Device, …` for every device.
    let offset = usize::from(timed);
    let types: Vec<ArrowType> = (0..headers.len())
        .map(|i| {
            plans.iter().map(|(_, p)| p.schema().field(i + offset).data_type().clone()).find(|t| *t != ArrowType::Null).unwrap_or(ArrowType::Utf8)
        })
        .collect();
    let mut inputs = Vec::with_capacity(plans.len());
    for (device, plan) in plans {
        let mut projection: Vec<DfExpr> = Vec::with_capacity(headers.len() + 2);
        let column_at = |i: usize| {
            let (q, f) = plan.schema().qualified_field(i);
            DfExpr::Column(Column::new(q.cloned(), f.name()))
        };
        if timed {
            projection.push(column_at(0).alias("Time"));
        }
        projection.push(lit(device.clone()).alias("Device"));
        for (i, h) in headers.iter().enumerate() {
            projection.push(cast(column_at(i + offset), types[i].clone()).alias(h.clone()));
        }
        inputs.push(LogicalPlanBuilder::from(plan).project(projection)?.build()?);
    }
    let mut plan = LogicalPlan::Extension(Extension { node: Arc::new(AlignByDevice::try_new(inputs)?) });
    let column = |name: &str| DfExpr::Column(Column::from_name(name));
    if time_first && timed {
        let sorts = vec![SortExpr::new(column("Time"), !time_desc, false), SortExpr::new(column("Device"), !device_desc, false)];
        plan = LogicalPlanBuilder::from(plan).sort(sorts)?.build()?;
    }
    if let Some(fill) = &select.fill {
        let keep = if timed { vec![0, 1] } else { vec![0] };
        plan = LogicalPlan::Extension(Extension { node: Arc::new(Fill { input: plan, method: super::select::fill_method(fill)?, keep }) });
    }
    if select.limit.is_some() || select.offset > 0 {
        plan = LogicalPlanBuilder::from(plan).limit(select.offset, select.limit)?.build()?;
    }
    Ok(plan)
}

/// `select` without the clauses applied to the whole result.
fn plain(select: &Select) -> Select {
    Select {
        limit: None,
        offset: 0,
        slimit: None,
        soffset: 0,
        fill: None,
        align_by_device: false,
        ..select.clone()
    }
}


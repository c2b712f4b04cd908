//! [`LatestPerLabelRule`]: "the latest row of every device" as SQL writes
//! it over device tables,
//! `SELECT DISTINCT ON (device) … FROM (SELECT 'd1' AS device, * FROM "root.ln.d1" UNION ALL …) t ORDER BY device, time DESC`.
//! Every input of the union labels its rows with a literal of its own, so
//! DISTINCT ON keeps one row of each input: its first by the sort keys after
//! the label. Each input is cut to that row (`ORDER BY time DESC LIMIT 1`),
//! which a device scan answers from the last-value cache, and DISTINCT ON
//! runs over one row per device instead of every row.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Column;
use datafusion::error::Result;
use datafusion::logical_expr::{Distinct, DistinctOn, Expr, LogicalPlan, LogicalPlanBuilder, SortExpr, SubqueryAlias, Union};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;

#[derive(Debug, Default)]
pub(crate) struct LatestPerLabelRule;

impl AnalyzerRule for LatestPerLabelRule {
    fn name(&self) -> &str {
        "latest_per_label"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up(|node| {
            let LogicalPlan::Distinct(Distinct::On(on)) = node else { return Ok(Transformed::no(node)) };
            match cut_inputs(&on)? {
                Some(input) => Ok(Transformed::yes(LogicalPlan::Distinct(Distinct::On(DistinctOn { input: Arc::new(input), ..on })))),
                None => Ok(Transformed::no(LogicalPlan::Distinct(Distinct::On(on)))),
            }
        })
        .map(|t| t.data)
    }
}

/// The inputs of a union and of the unions under it (`a UNION ALL b UNION ALL c`).
fn flatten<'a>(union: &'a Union, out: &mut Vec<&'a Arc<LogicalPlan>>) {
    for input in &union.inputs {
        match input.as_ref() {
            LogicalPlan::Union(inner) => flatten(inner, out),
            _ => out.push(input),
        }
    }
}

/// The literal an input of the union labels its rows with at `index`.
fn label_of(input: &LogicalPlan, index: usize) -> Option<&ScalarValue> {
    let LogicalPlan::Projection(p) = input else { return None };
    let mut e = p.expr.get(index)?;
    while let Expr::Alias(a) = e {
        e = a.expr.as_ref();
    }
    match e {
        Expr::Literal(v, _) if !v.is_null() => Some(v),
        _ => None,
    }
}

/// DISTINCT ON's input with every union input cut to its first row, or
/// `None` when the query is not of that shape.
fn cut_inputs(on: &DistinctOn) -> Result<Option<LogicalPlan>> {
    let [Expr::Column(label)] = on.on_expr.as_slice() else { return Ok(None) };
    let Some([first, rest @ ..]) = on.sort_expr.as_deref() else { return Ok(None) };
    if !matches!(&first.expr, Expr::Column(c) if c == label) || rest.is_empty() {
        return Ok(None);
    }
    let (alias, union) = match on.input.as_ref() {
        LogicalPlan::SubqueryAlias(a) => match a.input.as_ref() {
            LogicalPlan::Union(u) => (Some(a), u),
            _ => return Ok(None),
        },
        LogicalPlan::Union(u) => (None, u),
        _ => return Ok(None),
    };
    let schema = on.input.schema();
    let Ok(label_index) = schema.index_of_column(label) else { return Ok(None) };
    // The sort keys after the label, as column positions of the union.
    let mut keys: Vec<(usize, &SortExpr)> = Vec::with_capacity(rest.len());
    for s in rest {
        let Expr::Column(c) = &s.expr else { return Ok(None) };
        let Ok(i) = schema.index_of_column(c) else { return Ok(None) };
        keys.push((i, s));
    }
    let mut leaves = Vec::with_capacity(union.inputs.len());
    flatten(union, &mut leaves);
    let mut labels: Vec<&ScalarValue> = Vec::with_capacity(leaves.len());
    for input in &leaves {
        match label_of(input, label_index) {
            Some(v) if !labels.contains(&v) => labels.push(v),
            _ => return Ok(None),
        }
    }
    let inputs = leaves
        .iter()
        .map(|input| {
            let fields = input.schema();
            let order: Vec<SortExpr> =
                keys.iter().map(|(i, s)| SortExpr::new(Expr::Column(Column::from(fields.qualified_field(*i))), s.asc, s.nulls_first)).collect();
            LogicalPlanBuilder::from(input.as_ref().clone()).sort(order)?.limit(0, Some(1))?.build().map(Arc::new)
        })
        .collect::<Result<Vec<_>>>()?;
    let cut = LogicalPlan::Union(Union { inputs, schema: union.schema.clone() });
    Ok(Some(match alias {
        Some(a) => LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(cut), a.alias.clone())?),
        None => cut,
    }))
}

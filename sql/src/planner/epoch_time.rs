//! [`EpochTimeRule`]: IoTDB users write times as epoch integers. On a
//! device table `WHERE time >= 1704110400000` compares `time` with an
//! integer; PostgreSQL has no such comparison and DataFusion's coercion
//! rejects it. This analyzer rule, run before type coercion, reads an
//! integer compared with a timestamp column as epoch milliseconds.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ExprSchema, Result};
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;

use crate::convert::UTC;

#[derive(Debug, Default)]
pub(crate) struct EpochTimeRule;

/// Whether `e` is a column of timestamp type in one of `inputs`.
fn is_timestamp_column(e: &Expr, inputs: &[&DFSchema]) -> bool {
    let Expr::Column(c) = e else { return false };
    inputs.iter().any(|s| timestamp_in(s, c))
}

fn timestamp_in(schema: &DFSchema, c: &Column) -> bool {
    schema.field_from_column(c).is_ok_and(|f| matches!(f.data_type(), datafusion::arrow::datatypes::DataType::Timestamp(..)))
}

/// An integer literal as epoch milliseconds.
fn epoch(e: &Expr) -> Option<Expr> {
    let Expr::Literal(v, _) = e else { return None };
    let ms = match v {
        ScalarValue::Int8(Some(x)) => i64::from(*x),
        ScalarValue::Int16(Some(x)) => i64::from(*x),
        ScalarValue::Int32(Some(x)) => i64::from(*x),
        ScalarValue::Int64(Some(x)) => *x,
        ScalarValue::UInt8(Some(x)) => i64::from(*x),
        ScalarValue::UInt16(Some(x)) => i64::from(*x),
        ScalarValue::UInt32(Some(x)) => i64::from(*x),
        ScalarValue::UInt64(Some(x)) => i64::try_from(*x).ok()?,
        _ => return None,
    };
    Some(Expr::Literal(ScalarValue::TimestampMillisecond(Some(ms), Some(UTC.into())), None))
}

fn rewrite(e: Expr, inputs: &[&DFSchema]) -> Result<Transformed<Expr>> {
    let comparison = |op: &Operator| matches!(op, Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq);
    Ok(match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if comparison(&op) => {
            if is_timestamp_column(&left, inputs) {
                if let Some(r) = epoch(&right) {
                    return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right: Box::new(r) })));
                }
            } else if is_timestamp_column(&right, inputs) {
                if let Some(l) = epoch(&left) {
                    return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr { left: Box::new(l), op, right })));
                }
            }
            Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right }))
        }
        Expr::Between(b) if is_timestamp_column(&b.expr, inputs) && (epoch(&b.low).is_some() || epoch(&b.high).is_some()) => {
            let low = epoch(&b.low).map(Box::new).unwrap_or(b.low);
            let high = epoch(&b.high).map(Box::new).unwrap_or(b.high);
            Transformed::yes(Expr::Between(Between { expr: b.expr, negated: b.negated, low, high }))
        }
        Expr::InList(l) if is_timestamp_column(&l.expr, inputs) && l.list.iter().any(|e| epoch(e).is_some()) => {
            let list = l.list.into_iter().map(|e| epoch(&e).unwrap_or(e)).collect();
            Transformed::yes(Expr::InList(InList { expr: l.expr, list, negated: l.negated }))
        }
        other => Transformed::no(other),
    })
}

impl AnalyzerRule for EpochTimeRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let schemas: Vec<DFSchema> = plan.inputs().iter().map(|i| i.schema().as_ref().clone()).collect();
            let inputs: Vec<&DFSchema> = schemas.iter().collect();
            plan.map_expressions(|e| e.transform_up(|e| rewrite(e, &inputs)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "epoch_time"
    }
}

//! PostgreSQL typing where clients look at it: the PostgreSQL name of an
//! Arrow type (`pg_typeof`, catalog listings), and integer literals typed
//! `integer` (int4) when they fit, as PostgreSQL types them (DataFusion
//! types every integer literal `bigint`, which node-postgres, for one,
//! hands to the application as a string). A quoted literal compared with
//! a boolean is a boolean (`indisprimary = 't'`, psqlODBC), as PostgreSQL
//! types an unknown literal by what it meets.

use datafusion::arrow::datatypes::DataType;
use std::collections::HashMap;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::Result;
use datafusion::logical_expr::expr::{Alias, Case, Cast, TryCast};
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Projection};
use datafusion::scalar::ScalarValue;

/// The name PostgreSQL gives the type Arbor sends for `t`.
pub(crate) fn type_name(t: &DataType) -> String {
    match t {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..) => "numeric".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "bytea".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Timestamp(_, None) => "timestamp without time zone".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) | DataType::LargeListView(f) => {
            format!("{}[]", type_name(f.data_type()))
        }
        DataType::Dictionary(_, v) => type_name(v),
        DataType::Struct(_) => "record".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// Fill in the type of each parameter DataFusion leaves untyped that is
/// cast, `$1::INTEGER`: PostgreSQL infers a parameter's type from its cast,
/// and asyncpg (so SQLAlchemy on asyncpg, which casts every parameter)
/// encodes a value by the type the server describes.
pub(crate) fn cast_parameter_types(plan: &LogicalPlan, types: &mut HashMap<String, Option<DataType>>) -> Result<()> {
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) = e {
                    // Not arrays: Arbor describes `oid[]` as `integer[]`,
                    // which asyncpg cannot encode without asking the
                    // catalog (with a query cast the same way).
                    if let (Expr::Placeholder(p), false) = (expr.as_ref(), field.data_type().is_nested()) {
                        if let Some(slot @ None) = types.get_mut(&p.id) {
                            *slot = Some(field.data_type().clone());
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(())
}

/// An integer literal that fits `integer`, as one; the expression kinds
/// whose result type follows their operands are searched, function
/// arguments and casts are left alone (their own signatures decide).
fn int4(e: Expr) -> Expr {
    match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), meta) if i32::try_from(v).is_ok() => {
            Expr::Literal(ScalarValue::Int32(Some(v as i32)), meta)
        }
        Expr::Alias(Alias { expr, relation, name, metadata }) => Expr::Alias(Alias { expr: Box::new(int4(*expr)), relation, name, metadata }),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            Expr::BinaryExpr(BinaryExpr { left: Box::new(int4(*left)), op, right: Box::new(int4(*right)) })
        }
        Expr::Negative(inner) => Expr::Negative(Box::new(int4(*inner))),
        // `pg_typeof(1)` asks exactly for the literal's type.
        Expr::ScalarFunction(mut f) if f.func.name() == "pg_typeof" => {
            f.args = f.args.into_iter().map(int4).collect();
            Expr::ScalarFunction(f)
        }
        Expr::Case(Case { expr, when_then_expr, else_expr }) => Expr::Case(Case {
            expr,
            when_then_expr: when_then_expr.into_iter().map(|(w, t)| (w, Box::new(int4(*t)))).collect(),
            else_expr: else_expr.map(|e| Box::new(int4(*e))),
        }),
        other => other,
    }
}

/// `plan` with the integer literals of its select lists typed `integer`
/// where they fit (`SELECT 1`, `SELECT 1 + 1 AS two`). Writes are left
/// alone: their values are cast to the target columns anyway.
pub(crate) fn int4_literals(plan: LogicalPlan) -> Result<LogicalPlan> {
    if matches!(plan, LogicalPlan::Dml(_) | LogicalPlan::Ddl(_) | LogicalPlan::Copy(_)) {
        return Ok(plan);
    }
    plan.transform_up_with_subqueries(|node| {
        let node = node.recompute_schema()?;
        let LogicalPlan::Projection(p) = node else { return Ok(Transformed::no(node)) };
        let mut changed = false;
        let exprs: Vec<Expr> = p
            .expr
            .into_iter()
            .map(|e| {
                let name = e.schema_name().to_string();
                let typed = int4(e.clone());
                if typed == e {
                    e
                } else {
                    changed = true;
                    // The column keeps its name: nodes above refer to it by name.
                    typed.alias_if_changed(name).unwrap_or(e)
                }
            })
            .collect();
        let projection = Projection::try_new(exprs, p.input)?;
        Ok(if changed { Transformed::yes(LogicalPlan::Projection(projection)) } else { Transformed::no(LogicalPlan::Projection(projection)) })
    })
    .map(|t| t.data)
}

/// PostgreSQL's spellings of a boolean.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// `plan` with the text literals compared (`=`, `<>`) with a boolean in its
/// filters and join conditions typed boolean.
pub(crate) fn boolean_literals(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::logical_expr::{ExprSchemable, Operator};
    plan.transform_up_with_subqueries(|node| {
        if !matches!(node, LogicalPlan::Filter(_) | LogicalPlan::Join(_)) {
            return Ok(Transformed::no(node));
        }
        let schema = node.schema().clone();
        node.map_expressions(|e| {
            e.transform_up(|e| {
                let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else { return Ok(Transformed::no(e)) };
                if !matches!(op, Operator::Eq | Operator::NotEq) {
                    return Ok(Transformed::no(e));
                }
                let text = |x: &Expr| match x {
                    Expr::Literal(ScalarValue::Utf8(Some(t)) | ScalarValue::Utf8View(Some(t)) | ScalarValue::LargeUtf8(Some(t)), _) => parse_bool(t),
                    _ => None,
                };
                let boolean = |x: &Expr| matches!(x.get_type(&schema), Ok(DataType::Boolean));
                let literal = |v: bool| Box::new(Expr::Literal(ScalarValue::Boolean(Some(v)), None));
                Ok(match (text(left), text(right)) {
                    (None, Some(v)) if boolean(left) => Transformed::yes(Expr::BinaryExpr(BinaryExpr { left: left.clone(), op: *op, right: literal(v) })),
                    (Some(v), None) if boolean(right) => Transformed::yes(Expr::BinaryExpr(BinaryExpr { left: literal(v), op: *op, right: right.clone() })),
                    _ => Transformed::no(e),
                })
            })
        })
    })
    .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, TimeUnit};
    use std::sync::Arc;

    #[test]
    fn types_are_named_as_postgresql_names_them() {
        assert_eq!(type_name(&DataType::Int32), "integer");
        assert_eq!(type_name(&DataType::Int64), "bigint");
        assert_eq!(type_name(&DataType::Float64), "double precision");
        assert_eq!(type_name(&DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()))), "timestamp with time zone");
        assert_eq!(type_name(&DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))), "text[]");
    }
}

//! PostgreSQL typing where clients look at it: the PostgreSQL name of an
//! Arrow type (`pg_typeof`, catalog listings), and integer literals typed
//! `integer` (int4) when they fit, as PostgreSQL types them (DataFusion
//! types every integer literal `bigint`, which node-postgres, for one,
//! hands to the application as a string). A quoted literal compared with
//! a boolean is a boolean (`indisprimary = 't'`, psqlODBC), as PostgreSQL
//! types an unknown literal by what it meets. An aggregate of oids is
//! `oid[]` ([`oid_arrays`]).

use datafusion::arrow::datatypes::DataType;
use std::collections::HashMap;
use std::sync::Arc;

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
                    // Not arrays: an `oid[]` cast plans as `integer[]`,
                    // which asyncpg cannot encode without asking the
                    // catalog; `oid_array_parameters` types those from
                    // the text.
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
    int4_projections(plan).map(|t| t.data)
}

/// [`int4_literals`] below and at `plan`, bottom up. A recursive query is
/// left as planned: its recursive term was typed against its static term
/// (`0 AS depth` … `depth + 1`), which must keep its types.
fn int4_projections(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    if matches!(plan, LogicalPlan::RecursiveQuery(_)) {
        return Ok(Transformed::no(plan));
    }
    plan.map_subqueries(int4_projections)?.transform_sibling(|n| n.map_children(int4_projections))?.transform_parent(|node| {
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
}

/// The function a `'name'::regproc` cast names: datafusion-pg-catalog
/// plans the cast as `(SELECT oid FROM pg_proc WHERE proname = 'name')`.
/// A schema-qualified name (`'pg_catalog.array_in'`) is the function's own.
fn regproc_lookup(plan: &LogicalPlan) -> Option<String> {
    use datafusion::logical_expr::Operator;
    match plan {
        LogicalPlan::Limit(l) => regproc_lookup(&l.input),
        LogicalPlan::SubqueryAlias(a) => regproc_lookup(&a.input),
        LogicalPlan::Projection(p) => {
            let [Expr::Column(oid)] = p.expr.as_slice() else { return None };
            let LogicalPlan::Filter(f) = p.input.as_ref() else { return None };
            let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) = &f.predicate else { return None };
            let (Expr::Column(proname), Expr::Literal(ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name)), _)) = (left.as_ref(), right.as_ref()) else {
                return None;
            };
            let mut scan = f.input.as_ref();
            while let LogicalPlan::SubqueryAlias(a) = scan {
                scan = &a.input;
            }
            let LogicalPlan::TableScan(scan) = scan else { return None };
            if oid.name != "oid" || proname.name != "proname" || scan.table_name.table() != "pg_proc" {
                return None;
            }
            Some(name.strip_prefix("pg_catalog.").unwrap_or(name).to_string())
        }
        _ => None,
    }
}

/// `plan` with each `x = 'name'::regproc` (or `<>`) whose `x` is text
/// comparing names: datafusion-pg-catalog keeps `regproc` columns as the
/// function's name (`pg_type.typinput` is `array_in`), where the cast
/// looks the function's oid up, so the comparison would cast the name to
/// an integer and fail (pgJDBC's type cache: `typinput =
/// 'pg_catalog.array_in'::regproc`).
pub(crate) fn regproc_names(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::logical_expr::{ExprSchemable, Operator};
    plan.transform_up_with_subqueries(|node| {
        let schema = match node.inputs().as_slice() {
            [input] if matches!(node, LogicalPlan::Projection(_)) => input.schema().clone(),
            _ => node.schema().clone(),
        };
        let text = |e: &Expr| matches!(e.get_type(&schema), Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8));
        let by_name = |e: &Expr| match e {
            Expr::ScalarSubquery(s) => regproc_lookup(&s.subquery).map(|name| Box::new(Expr::Literal(ScalarValue::Utf8(Some(name)), None))),
            _ => None,
        };
        let projection = matches!(node, LogicalPlan::Projection(_));
        node.map_expressions(|top| {
            let name = top.schema_name().to_string();
            let rewritten = top.clone().transform_up(|e| {
                let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else { return Ok(Transformed::no(e)) };
                if !matches!(op, Operator::Eq | Operator::NotEq) {
                    return Ok(Transformed::no(e));
                }
                Ok(match (by_name(left), by_name(right)) {
                    (None, Some(name)) if text(left) => Transformed::yes(Expr::BinaryExpr(BinaryExpr { left: left.clone(), op: *op, right: name })),
                    (Some(name), None) if text(right) => Transformed::yes(Expr::BinaryExpr(BinaryExpr { left: name, op: *op, right: right.clone() })),
                    _ => Transformed::no(e),
                })
            })?;
            // A select list's column keeps its name.
            Ok(match (rewritten.transformed, projection) {
                (true, true) => Transformed::yes(rewritten.data.alias_if_changed(name)?),
                _ => rewritten,
            })
        })
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

/// A planned SQL statement typed as PostgreSQL types it, by the passes of
/// this module in order: text compared with booleans, regproc names,
/// `integer` literals, `oid[]` results.
pub(crate) fn postgres_typing(plan: LogicalPlan) -> Result<LogicalPlan> {
    oid_arrays(int4_literals(regproc_names(boolean_literals(plan)?)?)?)
}

/// The field metadata datafusion-pg-catalog marks oid columns with
/// (`pg.oid_alias`: `oid`, `regtype`, …), which arrow-pg and the wire read.
pub(crate) const OID_ALIAS_KEY: &str = "pg.oid_alias";

/// The marks datafusion-pg-catalog gives catalog columns PostgreSQL
/// declares `oid`.
const CATALOG_OID_KINDS: &[&str] = &["regclass", "regtype", "regnamespace"];

/// How deep [`oid_array_kind`] follows a column down a plan.
const LINEAGE_DEPTH_MAX: usize = 64;

/// Whether an oid mark is looked for on a list's elements or on the value.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Shape {
    List,
    Scalar,
}

/// Aggregates whose result is one of their input values (and so of its type).
const SAME_VALUE_AGGREGATES: &[&str] = &["min", "max", "first_value", "last_value", super::single_row::SINGLE_VALUE];

/// `plan` with its list-of-oid result columns typed as lists whose
/// elements carry the oid mark, so the wire describes them as PostgreSQL
/// does (`array_agg(atttypid)` is `oid[]`, not `integer[]`). asyncpg
/// decodes only `oid[]` and `text[]` without asking the catalog, and asks
/// with a query whose own `oid[]` columns must decode so. Likewise an
/// aggregate that returns one of its values (`max(oid)`) is an oid.
///
/// DataFusion's aggregates drop their argument's metadata, so the mark is
/// found by following each column down to its `array_agg(…)` (or
/// `ARRAY[…]`, or `max(…)`) over a marked column, and applied by a cast of
/// the result (Int32 to Int32: only the list's element field changes), or
/// by an alias carrying it.
pub(crate) fn oid_arrays(plan: LogicalPlan) -> Result<LogicalPlan> {
    let shape = |t: &DataType, f: &datafusion::arrow::datatypes::Field| match t {
        DataType::List(e) if *e.data_type() == DataType::Int32 && !e.metadata().contains_key(OID_ALIAS_KEY) => Some(Shape::List),
        DataType::Int32 if !f.metadata().contains_key(OID_ALIAS_KEY) => Some(Shape::Scalar),
        _ => None,
    };
    if !plan.schema().fields().iter().any(|f| shape(f.data_type(), f).is_some()) {
        return Ok(plan);
    }
    let kinds: Vec<Option<String>> = (0..plan.schema().fields().len())
        .map(|i| {
            let field = plan.schema().field(i);
            shape(field.data_type(), field).and_then(|s| oid_array_kind(&plan, i, 0, s))
        })
        .collect();
    if kinds.iter().all(Option::is_none) {
        return Ok(plan);
    }
    let exprs: Vec<Expr> = plan
        .schema()
        .iter()
        .zip(kinds)
        .map(|((qualifier, field), kind)| {
            let column = Expr::Column(datafusion::common::Column::from((qualifier, field)));
            match (kind, field.data_type()) {
                (Some(kind), DataType::List(element)) => {
                    let marked = element.as_ref().clone().with_metadata(HashMap::from([(OID_ALIAS_KEY.to_string(), kind)]));
                    let cast = Expr::Cast(Cast::new(Box::new(column), DataType::List(Arc::new(marked))));
                    cast.alias_qualified(qualifier.cloned(), field.name())
                }
                (Some(kind), DataType::Int32) => {
                    let metadata = datafusion::common::metadata::FieldMetadata::from(HashMap::from([(OID_ALIAS_KEY.to_string(), kind)]));
                    column.alias_qualified_with_metadata(qualifier.cloned(), field.name(), Some(metadata))
                }
                _ => column,
            }
        })
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(plan))?))
}

/// The oid kind of the elements of list column `i` of `plan`, if they are
/// oids: where it is an `array_agg` or `ARRAY[…]` of a marked column.
fn oid_array_kind(plan: &LogicalPlan, i: usize, depth: usize, shape: Shape) -> Option<String> {
    if depth > LINEAGE_DEPTH_MAX {
        return None;
    }
    let field = plan.schema().fields().get(i)?;
    let mark = match (shape, field.data_type()) {
        (Shape::List, DataType::List(element)) => element.metadata().get(OID_ALIAS_KEY),
        (Shape::Scalar, _) => field.metadata().get(OID_ALIAS_KEY),
        _ => None,
    };
    if let Some(kind) = mark {
        return Some(kind.clone());
    }
    let down = depth + 1;
    match plan {
        LogicalPlan::Projection(p) => expr_oid_array_kind(p.expr.get(i)?, &p.input, down, shape),
        LogicalPlan::Aggregate(a) => match i.checked_sub(a.group_expr.len()) {
            None => expr_oid_array_kind(&a.group_expr[i], &a.input, down, shape),
            Some(j) => expr_oid_array_kind(a.aggr_expr.get(j)?, &a.input, down, shape),
        },
        LogicalPlan::Window(w) => match i.checked_sub(w.input.schema().fields().len()) {
            None => oid_array_kind(&w.input, i, down, shape),
            Some(j) => expr_oid_array_kind(w.window_expr.get(j)?, &w.input, down, shape),
        },
        LogicalPlan::Join(j) => {
            use datafusion::common::JoinType;
            let left = j.left.schema().fields().len();
            match j.join_type {
                JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => oid_array_kind(&j.left, i, down, shape),
                JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => oid_array_kind(&j.right, i, down, shape),
                _ if i < left => oid_array_kind(&j.left, i, down, shape),
                _ => oid_array_kind(&j.right, i - left, down, shape),
            }
        }
        LogicalPlan::Union(u) => u.inputs.iter().find_map(|input| oid_array_kind(input, i, down, shape)),
        LogicalPlan::RecursiveQuery(r) => oid_array_kind(&r.static_term, i, down, shape),
        LogicalPlan::Distinct(datafusion::logical_expr::Distinct::All(input)) => oid_array_kind(input, i, down, shape),
        LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::Subquery(_) => plan.inputs().first().and_then(|input| oid_array_kind(input, i, down, shape)),
        _ => None,
    }
}

/// [`oid_array_kind`] of the list `e` computes over `input`'s rows.
fn expr_oid_array_kind(e: &Expr, input: &LogicalPlan, depth: usize, shape: Shape) -> Option<String> {
    if depth > LINEAGE_DEPTH_MAX {
        return None;
    }
    let down = depth + 1;
    let marked = |e: &Expr| -> Option<String> {
        let (_, field) = datafusion::logical_expr::ExprSchemable::to_field(e, input.schema()).ok()?;
        let kind = field.metadata().get(OID_ALIAS_KEY)?;
        // A catalog column is `oid` in PostgreSQL (`pg_attribute.atttypid`,
        // `pg_class.relnamespace`): datafusion-pg-catalog marks some
        // `regtype`/`regclass`/`regnamespace` only so that a name compared
        // with them resolves. An explicit cast keeps its type.
        let column = matches!(e.clone().unalias_nested().data, Expr::Column(_));
        Some(if column && CATALOG_OID_KINDS.contains(&kind.as_str()) { "oid".to_string() } else { kind.clone() })
    };
    match e {
        Expr::Alias(Alias { expr, .. }) => expr_oid_array_kind(expr, input, down, shape),
        Expr::Column(c) => input.schema().index_of_column(c).ok().and_then(|i| oid_array_kind(input, i, down, shape)),
        Expr::AggregateFunction(f) if shape == Shape::List && f.func.name() == "array_agg" => f.params.args.first().and_then(marked),
        // `max(oid)` is an oid.
        Expr::AggregateFunction(f) if shape == Shape::Scalar && SAME_VALUE_AGGREGATES.contains(&f.func.name()) => {
            f.params.args.first().and_then(|a| marked(a).or_else(|| expr_oid_array_kind(a, input, down, shape)))
        }
        Expr::WindowFunction(_) => None,
        Expr::ScalarFunction(f) if shape == Shape::List && f.name() == "make_array" => {
            let kinds: Vec<Option<String>> = f.args.iter().map(marked).collect();
            match kinds.first() {
                Some(Some(first)) if kinds.iter().all(|k| k.as_ref() == Some(first)) => Some(first.clone()),
                _ => None,
            }
        }
        Expr::ScalarFunction(f) if f.name() == "coalesce" => f.args.iter().find_map(|a| expr_oid_array_kind(a, input, down, shape)),
        // `CASE WHEN c THEN (subquery) END`, as rewrite.rs plans it.
        Expr::ScalarFunction(f) if f.name() == super::functions::WHEN => f.args.get(1).and_then(|a| expr_oid_array_kind(a, input, down, shape)),
        // `ARRAY(SELECT …)`, as rewrite.rs plans it.
        Expr::ScalarFunction(f) if f.name() == super::functions::ARRAY_OR_EMPTY => f.args.first().and_then(|a| expr_oid_array_kind(a, input, down, shape)),
        Expr::Case(Case { when_then_expr, else_expr, .. }) => {
            when_then_expr.iter().map(|(_, then)| then.as_ref()).chain(else_expr.as_deref()).find_map(|t| expr_oid_array_kind(t, input, down, shape))
        }
        Expr::ScalarSubquery(s) => oid_array_kind(&s.subquery, 0, down, shape),
        _ => None,
    }
}

/// The oid kinds of the parameters cast to an array of oids in
/// `statement` (`$1::oid[]`, asyncpg's type lookup), by parameter (`$1`):
/// the cast's own type carries no mark, so the text says it.
pub(crate) fn oid_array_parameters(statement: &datafusion::sql::sqlparser::ast::Statement) -> HashMap<String, String> {
    use datafusion::sql::sqlparser::ast::{visit_expressions, ArrayElemTypeDef, DataType as SqlType, Expr as SqlExpr, Value};
    let mut found = HashMap::new();
    let _ = visit_expressions(statement, |e| {
        if let SqlExpr::Cast { expr, data_type: SqlType::Array(ArrayElemTypeDef::SquareBracket(element, _)), .. } = e {
            if let (SqlExpr::Value(v), SqlType::Custom(name, _)) = (expr.as_ref(), element.as_ref()) {
                let kind = name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase());
                if let (Value::Placeholder(id), Some(kind)) = (&v.value, kind) {
                    if arrow_pg_alias_kinds().contains(&kind.as_str()) {
                        found.insert(id.clone(), kind);
                    }
                }
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}

/// The oid kinds a `pg.oid_alias` mark may name.
fn arrow_pg_alias_kinds() -> &'static [&'static str] {
    datafusion_pg_catalog::pg_catalog::oid_field::OID_ALIAS_TYPE_NAMES
}

/// A list of `kind` oids, as a parameter's type.
pub(crate) fn oid_list(kind: &str) -> DataType {
    let element = datafusion::arrow::datatypes::Field::new_list_field(DataType::Int32, true)
        .with_metadata(HashMap::from([(OID_ALIAS_KEY.to_string(), kind.to_string())]));
    DataType::List(Arc::new(element))
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

//! Rewrites of PostgreSQL syntax DataFusion does not plan into forms it
//! does, on the parsed statement: the array constructor over a subquery,
//! `ARRAY(SELECT …)`, which psql's `\d+` and ORMs' reflection use.
//!
//! - `ARRAY(SELECT e FROM unnest(a) x [WHERE p])` (a correlated map over an
//!   array) becomes `array_transform(array_filter(a, x -> p), x -> e)`;
//! - any other `ARRAY(SELECT e FROM …)` becomes
//!   `(SELECT array_agg(e) FROM (…))`, ordered as the subquery's `ORDER BY`
//!   when that orders by the output column;
//!
//! either under `arbor_array_or_empty`, as no row is `{}` in PostgreSQL.
//!
//! Set-returning functions in a select list become `unnest`s, which
//! DataFusion runs side by side as PostgreSQL runs SRFs:
//!
//! - `information_schema._pg_expandarray(a)`, PostgreSQL's records `(x, n)`
//!   of each element and its 1-based position (pgJDBC's `getPrimaryKeys`,
//!   `getIndexInfo`): `(…).x` is `unnest(a)`, `(…).n` is
//!   `unnest(range(1, array_length(a, 1) + 1))`, the record itself is
//!   `named_struct('x', …, 'n', …)`;
//! - `generate_subscripts(a, d)` is `unnest(range(1, array_length(a, d) + 1))`
//!   (SQLAlchemy's key reflection);
//!
//! functions in a FROM clause run as PostgreSQL runs them (a scalar one as
//! a one-row table, `generate_series` over non-literals as the unnested
//! array function); a field of a record, `(r).f`, is `get_field(r, 'f')`; and the rewrite makes a correlated scalar subquery
//! over plain rows, `(SELECT e FROM t WHERE t.k = outer.k)`, an aggregate,
//! `(SELECT arbor_single_value(e) FROM …)`, which DataFusion decorrelates
//! into a join (SQLAlchemy's `get_columns`). No row still gives NULL, a
//! second row PostgreSQL's error 21000.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, BinaryOperator, VisitMut, VisitorMut, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    LambdaFunction, LambdaFunctionParameter, LambdaSyntax, ObjectName, OneOrManyWithParens, OrderByExpr, OrderByKind, Query,
    Select, SelectItem, SetExpr, Statement, TableAlias, TableFactor, TableWithJoins, Value,
};

/// Rewrite every `ARRAY(subquery)` in `statement`.
pub(crate) fn array_subqueries(statement: &mut Statement) {
    from_functions(statement);
    sorted_by_subqueries(statement);
    projected_in_subqueries(statement);
    // Correlated scalar lookups become joins first; what is left of
    // correlated subqueries meets the rewrites below.
    super::decorrelate::scalar_subqueries(statement);
    // Fields first: `(_pg_expandarray(a)).x` is rewritten whole, before
    // the call inside it becomes a record (expressions are visited inner first).
    let _ = visit_expressions_mut(statement, |e| {
        if let Some(new) = field_access(e).or_else(|| vector_subscript(e)).or_else(|| user(e)).or_else(|| at_time_zone(e)).or_else(|| like_escape(e)) {
            *e = new;
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_expressions_mut(statement, |e| {
        if let Some(new) =
            rewrite(e).or_else(|| expandarray(e)).or_else(|| subscripts(e)).or_else(|| correlated_scalar(e)).or_else(|| guarded_subquery(e))
        {
            *e = new;
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Table functions DataFusion plans in a FROM clause (its own and
/// datafusion-pg-catalog's); any other function there is a scalar one.
const TABLE_FUNCTIONS: &[&str] = &["generate_series", "range", "unnest", "pg_get_keywords"];

/// Functions in FROM clauses as PostgreSQL runs them (Grafana's search_path
/// expansion, `FROM generate_series(array_lower(a, 1), array_upper(a, 1)) AS
/// i, string_to_array(current_setting('search_path'), ',') s`):
///
/// - a scalar function is a one-row table whose column is named by the
///   alias: `f(…) s` → `(SELECT f(…) AS s) s`;
/// - `generate_series` over values not known when planning (DataFusion's
///   table function takes literals only) is the unnested array function:
///   `generate_series(a, b) i` → `(SELECT unnest(generate_series(a, b)) AS i) i`.
fn from_functions(statement: &mut Statement) {
    struct FromFunctions;
    impl VisitorMut for FromFunctions {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            if let Some(derived) = from_function(t) {
                *t = derived;
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut FromFunctions);
}

/// `user`, PostgreSQL's `current_user` (Grafana's search_path expansion
/// reads it), as the `session_user` datafusion-pg-catalog provides.
fn user(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    let named_user = f.name.0.len() == 1 && f.name.to_string().eq_ignore_ascii_case("user");
    if !named_user || !matches!(f.args, FunctionArguments::None) {
        return None;
    }
    let mut f = f.clone();
    f.name = ObjectName::from(vec![Ident::new("session_user")]);
    Some(Expr::Function(f))
}

/// `ts AT TIME ZONE zone` → `timezone(zone, ts)`, which converts each way
/// as PostgreSQL does (DataFusion reads every `ts` as wall-clock time).
fn at_time_zone(e: &Expr) -> Option<Expr> {
    let Expr::AtTimeZone { timestamp, time_zone } = e else { return None };
    Some(call(super::functions::AT_TIME_ZONE, vec![time_zone.as_ref().clone(), timestamp.as_ref().clone()]))
}

/// Whether `e` holds a subquery of any kind.
fn has_subquery(e: &Expr) -> bool {
    let mut found = false;
    let _ = visit_expressions(e, |e| {
        found = matches!(e, Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. });
        if found {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    found
}

/// `ORDER BY` an expression holding a subquery (Grafana's table list orders
/// by `CASE WHEN quote_ident(table_schema) IN (SELECT …) THEN 0 ELSE 1
/// END`), which DataFusion plans nowhere but in projections and filters:
/// the query's select list, with each sort key computed beside it, becomes
/// a derived table the sort reads.
///
/// `SELECT a AS x FROM t ORDER BY f(SELECT …), 1` →
/// `SELECT x FROM (SELECT a AS x, f(SELECT …) AS arbor_order_1 FROM t) AS arbor_sorted ORDER BY arbor_order_1, x`.
fn sorted_by_subqueries(statement: &mut Statement) {
    struct Sorted;
    impl VisitorMut for Sorted {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            sort_outside(query);
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Sorted);
}

fn sort_outside(query: &mut Query) -> Option<()> {
    let OrderByKind::Expressions(order) = &query.order_by.as_ref()?.kind else { return None };
    if !order.iter().any(|o| has_subquery(&o.expr)) {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    let grouped = !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(g, _) if g.is_empty());
    if select.distinct.is_some() || grouped || select.having.is_some() {
        return None;
    }
    // The output names the outer select list repeats.
    let mut names = Vec::new();
    for item in &select.projection {
        names.push(match item {
            SelectItem::ExprWithAlias { alias, .. } => alias.clone(),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => i.clone(),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last()?.clone(),
            _ => return None,
        });
    }
    let mut inner = select.as_ref().clone();
    let mut keys = Vec::new();
    for o in order {
        let key = match &o.expr {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => names.get(n.parse::<usize>().ok()?.checked_sub(1)?)?.clone(),
                _ => return None,
            },
            Expr::Identifier(i) if names.iter().any(|n| n.value == i.value) => i.clone(),
            e => {
                let key = Ident::new(format!("arbor_order_{}", keys.len() + 1));
                inner.projection.push(SelectItem::ExprWithAlias { expr: e.clone(), alias: key.clone() });
                key
            }
        };
        keys.push(OrderByExpr { expr: Expr::Identifier(key), options: o.options, with_fill: None });
    }
    let columns: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let text = format!("SELECT {} FROM (SELECT 1) AS arbor_sorted", columns.join(", "));
    let mut outer = datafusion::sql::sqlparser::parser::Parser::new(&datafusion::sql::sqlparser::dialect::PostgreSqlDialect {})
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_query())
        .ok()?;
    let mut derived = query.clone();
    derived.with = None;
    derived.order_by = None;
    derived.limit_clause = None;
    derived.fetch = None;
    *derived.body = SetExpr::Select(Box::new(inner));
    let SetExpr::Select(outer_select) = outer.body.as_mut() else { return None };
    let TableFactor::Derived { subquery, .. } = &mut outer_select.from.first_mut()?.relation else { return None };
    **subquery = derived;
    query.body = outer.body;
    if let Some(ob) = &mut query.order_by {
        ob.kind = OrderByKind::Expressions(keys);
    }
    Some(())
}

/// An uncorrelated `x [NOT] IN (SELECT e …)` in a select list (Grafana's
/// table list: `CASE WHEN quote_ident(table_schema) IN (SELECT …) THEN …`),
/// which DataFusion decorrelates in filters only, as a lookup in the
/// subquery's values: `coalesce(array_has((SELECT array_agg(e) FROM (…)), x),
/// false)`. (A NULL `x` gives false here where PostgreSQL gives NULL.)
fn projected_in_subqueries(statement: &mut Statement) {
    struct Selects;
    impl VisitorMut for Selects {
        type Break = ();
        fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
            let mut lookups = InLookups { depth: 0 };
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                    let _ = e.visit(&mut lookups);
                }
            }
            ControlFlow::Continue(())
        }
    }
    /// Rewrites the select list's own IN subqueries, not those of queries nested in it.
    struct InLookups {
        depth: usize,
    }
    impl VisitorMut for InLookups {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if self.depth > 0 {
                return ControlFlow::Continue(());
            }
            if let Expr::Exists { subquery, negated } = e {
                if let Some(found) = exists_as_count(subquery) {
                    *e = if *negated { Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Not, expr: Box::new(found) } } else { found };
                }
                return ControlFlow::Continue(());
            }
            let Expr::InSubquery { expr, subquery, negated } = e else { return ControlFlow::Continue(()) };
            let SetExpr::Select(select) = subquery.body.as_ref() else { return ControlFlow::Continue(()) };
            if super::parse::correlated(subquery) || select.projection.len() != 1 {
                return ControlFlow::Continue(());
            }
            let values = aggregated(subquery, select);
            let found = call("coalesce", vec![call("array_has", vec![values, expr.as_ref().clone()]), Expr::Value(Value::Boolean(false).into())]);
            *e = if *negated { Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Not, expr: Box::new(found) } } else { found };
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Selects);
}

/// `EXISTS (subquery)` in a select list, which DataFusion plans in filters
/// only, as a count: `(SELECT count(*) > 0 FROM … WHERE …)` over the
/// subquery's own rows (DataFusion decorrelates a correlated count, 0 for
/// no rows), or `(SELECT count(*) > 0 FROM (subquery) AS arbor_exists)`
/// for an uncorrelated subquery of another shape.
fn exists_as_count(subquery: &Query) -> Option<Expr> {
    let SetExpr::Select(select) = subquery.body.as_ref() else { return None };
    let plain = subquery.with.is_none() && subquery.order_by.is_none() && subquery.limit_clause.is_none() && subquery.fetch.is_none();
    let grouped = !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty());
    let any_rows = Expr::BinaryOp { left: Box::new(call("count", vec![number("1")])), op: BinaryOperator::Gt, right: Box::new(number("0")) };
    let projection_aggregates = select.projection.iter().any(|i| matches!(i, SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } if aggregates(e)));
    if plain && !grouped && select.having.is_none() && select.distinct.is_none() && !projection_aggregates {
        let mut counted = select.as_ref().clone();
        counted.projection = vec![SelectItem::UnnamedExpr(any_rows)];
        let mut query = subquery.clone();
        *query.body = SetExpr::Select(Box::new(counted));
        return Some(Expr::Subquery(Box::new(query)));
    }
    if super::parse::correlated(subquery) {
        return None;
    }
    let text = format!("SELECT count(1) > 0 FROM ({subquery}) AS arbor_exists");
    let query = datafusion::sql::sqlparser::parser::Parser::new(&datafusion::sql::sqlparser::dialect::PostgreSqlDialect {})
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_query())
        .ok()?;
    Some(Expr::Subquery(query))
}

fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => is_literal(expr),
        _ => false,
    }
}

fn from_function(t: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table { name, args: Some(args), alias, .. } = t else { return None };
    let function = name.0.last()?.to_string().trim_matches('"').to_ascii_lowercase();
    let series = function == "generate_series";
    if series {
        let literal = args.args.iter().all(|a| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) if is_literal(e)));
        if literal {
            return None;
        }
    } else if TABLE_FUNCTIONS.contains(&function.as_str()) {
        return None;
    }
    let column = match alias {
        Some(a) => a.columns.first().map_or_else(|| a.name.clone(), |c| c.name.clone()),
        None => Ident::new(&function),
    };
    let value = Expr::Function(Function {
        name: name.clone(),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList { duplicate_treatment: None, args: args.args.clone(), clauses: Vec::new() }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    });
    let value = if series { call("unnest", vec![value]) } else { value };
    let text = format!("SELECT {value} AS {column}");
    let query = datafusion::sql::sqlparser::parser::Parser::new(&datafusion::sql::sqlparser::dialect::PostgreSqlDialect {})
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_query())
        .ok()?;
    let alias = alias.clone().unwrap_or(TableAlias { explicit: true, name: Ident::new(&function), columns: Vec::new(), at: None });
    Some(TableFactor::Derived { lateral: false, subquery: query, alias: Some(alias), sample: None })
}

pub(super) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

fn lambda(param: &Ident, body: Expr) -> Expr {
    Expr::Lambda(LambdaFunction {
        params: OneOrManyWithParens::One(LambdaFunctionParameter { name: param.clone(), data_type: None }),
        body: Box::new(body),
        syntax: LambdaSyntax::Arrow,
    })
}

fn rewrite(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    if f.name.0.len() != 1 || !f.name.to_string().eq_ignore_ascii_case("array") {
        return None;
    }
    let FunctionArguments::Subquery(query) = &f.args else { return None };
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    let [item] = select.projection.as_slice() else { return None };
    let element = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
        _ => return None,
    };
    let array = over_unnest(query, select, &element).or_else(|| correlated_aggregated(query, select)).unwrap_or_else(|| aggregated(query, select));
    // No row is `{}`, where `array_agg` gives NULL.
    Some(call(super::functions::ARRAY_OR_EMPTY, vec![array]))
}

/// The array of `[information_schema.]_pg_expandarray(a)`.
fn expandarray_arg(e: &Expr) -> Option<&Expr> {
    let Expr::Function(f) = e else { return None };
    let parts: Vec<String> = f.name.0.iter().map(|p| p.to_string().to_ascii_lowercase()).collect();
    let named = match parts.as_slice() {
        [n] => n == "_pg_expandarray",
        [schema, n] => schema == "information_schema" && n == "_pg_expandarray",
        _ => false,
    };
    if !named {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else { return None };
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))] = list.args.as_slice() else { return None };
    Some(a)
}

pub(super) fn number(n: &str) -> Expr {
    Expr::Value(Value::Number(n.into(), false).into())
}

fn string(s: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(s.into()).into())
}

/// `unnest(range(1, array_length(a, d) + 1))`: the positions of `a`'s elements, one per row.
fn positions(a: &Expr, d: &Expr) -> Expr {
    let length = Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
        expr: Box::new(call("array_length", vec![a.clone(), d.clone()])),
        data_type: datafusion::sql::sqlparser::ast::DataType::BigInt(None),
        array: false,
        format: None,
    };
    let upper = Expr::BinaryOp { left: Box::new(length), op: BinaryOperator::Plus, right: Box::new(number("1")) };
    call("unnest", vec![call("range", vec![number("1"), upper])])
}

/// `_pg_expandarray(a)` as a record: `named_struct('x', unnest(a), 'n', <positions>)`.
fn expandarray(e: &Expr) -> Option<Expr> {
    let a = expandarray_arg(e)?;
    Some(call("named_struct", vec![string("x"), call("unnest", vec![a.clone()]), string("n"), positions(a, &number("1"))]))
}

/// `(r).f` → `get_field(r, 'f')`; of `_pg_expandarray(a)`, the field's unnest itself.
fn field_access(e: &Expr) -> Option<Expr> {
    let Expr::CompoundFieldAccess { root, access_chain } = e else { return None };
    let [datafusion::sql::sqlparser::ast::AccessExpr::Dot(Expr::Identifier(field))] = access_chain.as_slice() else { return None };
    let mut root = root.as_ref();
    while let Expr::Nested(inner) = root {
        root = inner;
    }
    if let Some(a) = expandarray_arg(root) {
        return match field.value.to_ascii_lowercase().as_str() {
            "x" => Some(call("unnest", vec![a.clone()])),
            "n" => Some(positions(a, &number("1"))),
            _ => None,
        };
    }
    Some(call("get_field", vec![root.clone(), string(&field.value)]))
}

/// `pg_index`'s vector columns, `int2vector`s and `oidvector`s, which
/// PostgreSQL subscripts from 0 (psqlODBC's `i.indkey[ia.attnum - 1]`).
const ZERO_BASED: &[&str] = &["indkey", "indclass", "indoption", "indcollation"];

/// `i.indkey[k]` → `i.indkey[(k) + 1]`: DataFusion's lists count from 1.
fn vector_subscript(e: &Expr) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{AccessExpr, Subscript};
    let Expr::CompoundFieldAccess { root, access_chain } = e else { return None };
    let (Some(AccessExpr::Subscript(Subscript::Index { index })), before) = (access_chain.last(), &access_chain[..access_chain.len() - 1]) else {
        return None;
    };
    // `i.indkey[k]` parses as `i` then `.indkey` then `[k]`, or as `i.indkey` then `[k]`.
    let name = match (before.last(), root.as_ref()) {
        (Some(AccessExpr::Dot(Expr::Identifier(i))), _) => &i.value,
        (None, Expr::Identifier(i)) => &i.value,
        (None, Expr::CompoundIdentifier(parts)) => &parts.last()?.value,
        _ => return None,
    };
    if !ZERO_BASED.contains(&name.to_ascii_lowercase().as_str()) {
        return None;
    }
    let shifted = Expr::BinaryOp { left: Box::new(Expr::Nested(Box::new(index.clone()))), op: BinaryOperator::Plus, right: Box::new(number("1")) };
    let mut chain = before.to_vec();
    chain.push(AccessExpr::Subscript(Subscript::Index { index: shifted }));
    Some(Expr::CompoundFieldAccess { root: root.clone(), access_chain: chain })
}

/// `x [NOT] [I]LIKE p ESCAPE 'c'` with `c` other than a backslash
/// (SQLAlchemy's `nspname NOT LIKE 'pg/_%' ESCAPE '/'`), which DataFusion
/// refuses: `x [NOT] [I]LIKE arbor_like_escape(p, 'c')`, the pattern in
/// backslash escapes (a parameter too).
fn like_escape(e: &Expr) -> Option<Expr> {
    let (Expr::Like { negated, any: false, expr, pattern, escape_char: Some(c) } | Expr::ILike { negated, any: false, expr, pattern, escape_char: Some(c) }) = e
    else {
        return None;
    };
    if matches!(&c.value, Value::SingleQuotedString(s) if s == "\\") {
        return None;
    }
    let pattern = Box::new(call(super::functions::LIKE_ESCAPE, vec![pattern.as_ref().clone(), Expr::Value(c.clone())]));
    Some(match e {
        Expr::Like { .. } => Expr::Like { negated: *negated, any: false, expr: expr.clone(), pattern, escape_char: None },
        _ => Expr::ILike { negated: *negated, any: false, expr: expr.clone(), pattern, escape_char: None },
    })
}

/// `generate_subscripts(a, d)` → `unnest(range(1, array_length(a, d) + 1))`.
fn subscripts(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    if !f.name.0.last().is_some_and(|p| p.to_string().eq_ignore_ascii_case("generate_subscripts")) {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else { return None };
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(a)), FunctionArg::Unnamed(FunctionArgExpr::Expr(d))] = list.args.as_slice() else {
        return None;
    };
    Some(positions(a, d))
}

const AGGREGATES: &[&str] = &[
    "count", "sum", "min", "max", "avg", "array_agg", "string_agg", "bool_and", "bool_or", "every", "first_value", "last_value", "json_agg", "jsonb_agg",
    super::single_row::SINGLE_VALUE,
];

/// Whether `e` calls an aggregate function.
pub(super) fn aggregates(e: &Expr) -> bool {
    let mut found = false;
    let _ = visit_expressions(e, |e| {
        if let Expr::Function(f) = e {
            if f.over.is_none() && f.name.0.last().is_some_and(|p| AGGREGATES.iter().any(|a| p.to_string().eq_ignore_ascii_case(a))) {
                found = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    found
}

/// The names a query's FROM clause binds (tables by their last name part, and aliases).
pub(super) fn bound_names(select: &Select) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |t: &TableFactor| match t {
        TableFactor::Table { name, alias, .. } => {
            if let Some(last) = name.0.last() {
                names.push(last.to_string().trim_matches('"').to_ascii_lowercase());
            }
            if let Some(a) = alias {
                names.push(a.name.value.to_ascii_lowercase());
            }
        }
        other => {
            if let TableFactor::Derived { alias: Some(a), .. } | TableFactor::Function { alias: Some(a), .. } | TableFactor::UNNEST { alias: Some(a), .. } = other {
                names.push(a.name.value.to_ascii_lowercase());
            }
        }
    };
    for t in &select.from {
        add(&t.relation);
        for j in &t.joins {
            add(&j.relation);
        }
    }
    names
}

/// Whether `e` names a column of a table other than `bound` (`outer.col`).
fn references_outside(e: &Expr, bound: &[String]) -> bool {
    let mut found = false;
    let _ = visit_expressions(e, |e| {
        if let Expr::CompoundIdentifier(parts) = e {
            if parts.len() >= 2 && !bound.contains(&parts[parts.len() - 2].value.to_ascii_lowercase()) {
                found = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    found
}

/// `(SELECT e FROM … WHERE <correlated>)` → `(SELECT arbor_single_value(e) FROM … WHERE …)`.
fn correlated_scalar(e: &Expr) -> Option<Expr> {
    let Expr::Subquery(query) = e else { return None };
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    if query.limit_clause.is_some() || query.fetch.is_some() || select.having.is_some() || select.distinct.is_some() {
        return None;
    }
    if !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty()) {
        return None;
    }
    let [item] = select.projection.as_slice() else { return None };
    let (element, alias) = match item {
        SelectItem::UnnamedExpr(e) => (e, None),
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
        _ => return None,
    };
    let predicate = select.selection.as_ref()?;
    if aggregates(element) || !references_outside(predicate, &bound_names(select)) {
        return None;
    }
    let aggregated = call(super::single_row::SINGLE_VALUE, vec![element.clone()]);
    let mut select = select.clone();
    select.projection = vec![match alias {
        Some(alias) => SelectItem::ExprWithAlias { expr: aggregated, alias },
        None => SelectItem::UnnamedExpr(aggregated),
    }];
    let mut query = query.clone();
    query.order_by = None;
    *query.body = SetExpr::Select(select);
    Some(Expr::Subquery(query))
}

/// Whether every column `e` names is an outer one (qualified by a table
/// not in `bound`).
fn only_outside(e: &Expr, bound: &[String]) -> bool {
    let mut inner = false;
    let _ = visit_expressions(e, |e| {
        match e {
            Expr::Identifier(_) => inner = true,
            Expr::CompoundIdentifier(parts) if parts.len() < 2 || bound.contains(&parts[parts.len() - 2].value.to_ascii_lowercase()) => inner = true,
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => inner = true,
            _ => {}
        }
        if inner {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    !inner
}

pub(super) fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => conjuncts(*inner, out),
        other => out.push(other),
    }
}

fn and_all(mut exprs: Vec<Expr>) -> Option<Expr> {
    let first = exprs.pop()?;
    Some(exprs.into_iter().rev().fold(first, |acc, e| Expr::BinaryOp { left: Box::new(Expr::Nested(Box::new(e))), op: BinaryOperator::And, right: Box::new(Expr::Nested(Box::new(acc))) }))
}

/// `CASE WHEN c THEN (SELECT e FROM … WHERE p AND q) [ELSE NULL] END`, where
/// `c` and `q` name outer columns only →
/// `arbor_when(c AND q, (SELECT e FROM … WHERE p))`: the same value (NULL
/// where `c` or `q` does not hold, as no row would), in the form DataFusion
/// decorrelates (a correlated subquery inside CASE, or one filtering on
/// outer columns alone, it does not plan).
fn guarded_subquery(e: &Expr) -> Option<Expr> {
    let Expr::Case { operand: None, conditions, else_result, .. } = e else { return None };
    let [when] = conditions.as_slice() else { return None };
    if let Some(other) = else_result {
        if !matches!(other.as_ref(), Expr::Value(v) if matches!(v.value, Value::Null)) {
            return None;
        }
    }
    let mut result = &when.result;
    while let Expr::Nested(inner) = result {
        result = inner;
    }
    let Expr::Subquery(query) = result else { return None };
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    let bound = bound_names(select);
    let mut guard = vec![when.condition.clone()];
    let mut kept = Vec::new();
    let mut all = Vec::new();
    if let Some(p) = select.selection.clone() {
        conjuncts(p, &mut all);
    }
    for c in all {
        if only_outside(&c, &bound) {
            guard.push(c);
        } else {
            kept.push(c);
        }
    }
    let mut select = select.clone();
    select.selection = and_all(kept);
    let mut query = query.clone();
    *query.body = SetExpr::Select(select);
    Some(call(super::functions::WHEN, vec![and_all(guard)?, Expr::Subquery(query)]))
}

/// The array and the element's name of `FROM unnest(a) [AS] x[(x)]`.
fn unnest_source(select: &Select) -> Option<(Expr, Ident)> {
    let [TableWithJoins { relation, joins }] = select.from.as_slice() else { return None };
    if !joins.is_empty() {
        return None;
    }
    let (array, alias): (Expr, &Option<TableAlias>) = match relation {
        TableFactor::UNNEST { array_exprs, alias, with_offset: false, with_ordinality: false, .. } => {
            let [a] = array_exprs.as_slice() else { return None };
            (a.clone(), alias)
        }
        TableFactor::Table { name, args: Some(args), alias, .. }
            if name.0.last().is_some_and(|p| p.to_string().eq_ignore_ascii_case("unnest")) =>
        {
            let [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))] = args.args.as_slice() else { return None };
            (a.clone(), alias)
        }
        _ => return None,
    };
    let alias = alias.as_ref()?;
    let name = match alias.columns.as_slice() {
        [] => alias.name.clone(),
        [c] => c.name.clone(),
        _ => return None,
    };
    Some((array, name))
}

fn over_unnest(query: &Query, select: &Select, element: &Expr) -> Option<Expr> {
    if query.order_by.is_some() || query.limit_clause.is_some() || select.having.is_some() || select.distinct.is_some() {
        return None;
    }
    if !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty()) {
        return None;
    }
    let (array, x) = unnest_source(select)?;
    let filtered = match &select.selection {
        Some(p) => call("array_filter", vec![array, lambda(&x, p.clone())]),
        None => array,
    };
    Some(match element {
        Expr::Identifier(i) if i.value == x.value => filtered,
        e => call("array_transform", vec![filtered, lambda(&x, e.clone())]),
    })
}

/// A correlated `ARRAY(SELECT e FROM … WHERE …)` over plain rows (psql's
/// `\du`: `ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b
/// ON … WHERE m.member = r.oid)`): `(SELECT array_agg(e) FROM … WHERE …)`,
/// which DataFusion decorrelates (an outer column inside a derived table
/// it does not resolve).
fn correlated_aggregated(query: &Query, select: &Select) -> Option<Expr> {
    let plain = query.with.is_none() && query.order_by.is_none() && query.limit_clause.is_none() && query.fetch.is_none();
    let grouped = !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty());
    if !plain || grouped || select.having.is_some() || select.distinct.is_some() || !super::parse::correlated(query) {
        return None;
    }
    let [SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }] = select.projection.as_slice() else { return None };
    if aggregates(e) {
        return None;
    }
    let mut select = select.clone();
    select.projection = vec![SelectItem::UnnamedExpr(call("array_agg", vec![e.clone()]))];
    let mut query = query.clone();
    *query.body = SetExpr::Select(Box::new(select));
    Some(Expr::Subquery(Box::new(query)))
}

/// `(SELECT array_agg(elem [ORDER BY elem]) FROM (subquery) AS array_source)`.
fn aggregated(query: &Query, select: &Select) -> Expr {
    let elem = Ident::new("array_element");
    let mut inner = query.clone();
    let mut inner_select = select.clone();
    if let Some(item) = inner_select.projection.first_mut() {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
            _ => return Expr::Value(Value::Null.into()),
        };
        *item = SelectItem::ExprWithAlias { expr, alias: elem.clone() };
    }
    *inner.body = SetExpr::Select(Box::new(inner_select));
    // `ORDER BY 1` (or by the element) orders the aggregate itself: a sort
    // inside a derived table does not order what reads it.
    let mut order = Vec::new();
    if let Some(ob) = &inner.order_by {
        if let OrderByKind::Expressions(exprs) = &ob.kind {
            let by_element = exprs.iter().all(|o| match &o.expr {
                Expr::Value(v) => matches!(&v.value, Value::Number(n, _) if n == "1"),
                Expr::Identifier(_) => true,
                _ => false,
            });
            if by_element && inner.limit_clause.is_none() {
                order = exprs.iter().map(|o| OrderByExpr { expr: Expr::Identifier(elem.clone()), options: o.options, with_fill: None }).collect();
                inner.order_by = None;
            }
        }
    }
    let mut agg = call("array_agg", vec![Expr::Identifier(elem)]);
    if let Expr::Function(Function { args: FunctionArguments::List(list), .. }) = &mut agg {
        if !order.is_empty() {
            list.clauses.push(datafusion::sql::sqlparser::ast::FunctionArgumentClause::OrderBy(order));
        }
    }
    let outer = format!("SELECT x FROM ({inner}) AS array_source");
    // Build the outer query from text: its shape is fixed, only the
    // projection and the derived table are put in.
    let parsed = datafusion::sql::sqlparser::parser::Parser::new(&datafusion::sql::sqlparser::dialect::PostgreSqlDialect {})
        .try_with_sql(&outer)
        .and_then(|mut p| p.parse_query());
    match parsed {
        Ok(mut q) => {
            if let SetExpr::Select(s) = q.body.as_mut() {
                s.projection = vec![SelectItem::UnnamedExpr(agg)];
            }
            Expr::Subquery(q)
        }
        Err(_) => Expr::Value(Value::Null.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0);
        array_subqueries(&mut s);
        s.to_string()
    }

    #[test]
    fn array_subqueries_become_array_functions() {
        assert_eq!(
            rewritten("SELECT array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x) FROM t tc"),
            "SELECT arbor_array_or_empty(array_transform(tc.reloptions, x -> 'toast.' || x)) FROM t tc"
        );
        assert_eq!(rewritten("SELECT ARRAY(SELECT x FROM unnest(a) AS x WHERE x > 1) FROM t"), "SELECT arbor_array_or_empty(array_filter(a, x -> x > 1)) FROM t");
        assert_eq!(
            rewritten("SELECT array(select rolname from pg_roles order by 1)"),
            "SELECT arbor_array_or_empty((SELECT array_agg(array_element ORDER BY array_element) FROM (SELECT rolname AS array_element FROM pg_roles) AS array_source))"
        );
        assert_eq!(rewritten("SELECT array_length(a, 1) FROM t"), "SELECT array_length(a, 1) FROM t");
        assert_eq!(
            rewritten("SELECT ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid) AS memberof FROM pg_roles r"),
            "SELECT arbor_array_or_empty((SELECT array_agg(b.rolname) FROM pg_auth_members m JOIN pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid)) AS memberof FROM pg_roles r"
        );
        assert_eq!(
            rewritten("SELECT CASE WHEN a.atthasdef THEN (SELECT pg_get_expr(d.adbin, d.adrelid) AS e FROM pg_attrdef d WHERE d.adrelid = a.attrelid) END FROM pg_attribute a"),
            // A lookup by equality is a join (decorrelate.rs).
            "SELECT CASE WHEN a.atthasdef THEN arbor_subquery_1.arbor_value END FROM pg_attribute a LEFT OUTER JOIN \
             (SELECT d.adrelid AS arbor_key_1, arbor_single_value(pg_get_expr(d.adbin, d.adrelid)) AS arbor_value FROM pg_attrdef d GROUP BY d.adrelid) \
             AS arbor_subquery_1 ON arbor_subquery_1.arbor_key_1 = a.attrelid"
        );
        assert_eq!(
            rewritten("SELECT CASE WHEN a.atthasdef THEN (SELECT max(d.x) FROM d WHERE a.atthasdef AND d.r = a.r) ELSE NULL END FROM a"),
            "SELECT arbor_when((a.atthasdef) AND (a.atthasdef), (SELECT max(d.x) FROM d WHERE d.r = a.r)) FROM a"
        );
        // Uncorrelated, or already aggregated: left alone.
        assert_eq!(rewritten("SELECT (SELECT x FROM t WHERE t.k = 1)"), "SELECT (SELECT x FROM t WHERE t.k = 1)");
        assert_eq!(rewritten("SELECT (SELECT max(x) FROM t WHERE t.k = o.k) FROM o"), "SELECT (SELECT max(x) FROM t WHERE t.k = o.k) FROM o");
        assert_eq!(
            rewritten("SELECT generate_subscripts(i.indkey, 1) FROM pg_index i"),
            "SELECT unnest(range(1, CAST(array_length(i.indkey, 1) AS BIGINT) + 1)) FROM pg_index i"
        );
        assert_eq!(
            rewritten("SELECT (information_schema._pg_expandarray(i.indkey)).n, information_schema._pg_expandarray(i.indkey) AS k FROM pg_index i"),
            "SELECT unnest(range(1, CAST(array_length(i.indkey, 1) AS BIGINT) + 1)), named_struct('x', unnest(i.indkey), 'n', unnest(range(1, CAST(array_length(i.indkey, 1) AS BIGINT) + 1))) AS k FROM pg_index i"
        );
        assert_eq!(rewritten("SELECT (r.k).x FROM r"), "SELECT get_field(r.k, 'x') FROM r");
        assert_eq!(rewritten("SELECT i.indkey[ia.attnum - 1] FROM i, ia"), "SELECT i.indkey[(ia.attnum - 1) + 1] FROM i, ia");
        assert_eq!(rewritten("SELECT a[1] FROM t"), "SELECT a[1] FROM t");
    }

    #[test]
    fn functions_in_from_run_as_postgresql_runs_them() {
        assert_eq!(
            rewritten("SELECT trim(s[i]) FROM generate_series(array_lower(string_to_array(current_setting('search_path'), ','), 1), 2) AS i, string_to_array('a,b', ',') s"),
            "SELECT TRIM(s[i]) FROM (SELECT unnest(generate_series(array_lower(string_to_array(current_setting('search_path'), ','), 1), 2)) AS i) AS i, \
             (SELECT string_to_array('a,b', ',') AS s) s"
        );
        // Table functions DataFusion plans stay.
        assert_eq!(rewritten("SELECT * FROM generate_series(1, 3) AS g(x)"), "SELECT * FROM generate_series(1, 3) AS g (x)");
        assert_eq!(rewritten("SELECT * FROM unnest(ARRAY[1, 2]) AS u"), "SELECT * FROM UNNEST(ARRAY[1, 2]) AS u");
        assert_eq!(rewritten("SELECT user"), "SELECT session_user");
    }

    #[test]
    fn sort_keys_holding_subqueries_are_computed_in_a_derived_table() {
        assert_eq!(
            rewritten("SELECT CASE WHEN s IN (SELECT 'public') THEN n ELSE s || '.' || n END AS \"table\" FROM t ORDER BY CASE WHEN s IN (SELECT 'public') THEN 0 ELSE 1 END, 1 LIMIT 5"),
            // (The IN subqueries, now in a select list, become lookups.)
            "SELECT \"table\" FROM (SELECT CASE WHEN coalesce(array_has((SELECT array_agg(array_element) FROM (SELECT 'public' AS array_element) AS array_source), s), false) \
             THEN n ELSE s || '.' || n END AS \"table\", CASE WHEN coalesce(array_has((SELECT array_agg(array_element) FROM (SELECT 'public' AS array_element) AS array_source), s), false) \
             THEN 0 ELSE 1 END AS arbor_order_1 FROM t) AS arbor_sorted ORDER BY arbor_order_1, \"table\" LIMIT 5"
        );
        assert_eq!(rewritten("SELECT a FROM t ORDER BY b"), "SELECT a FROM t ORDER BY b");
    }

    #[test]
    fn exists_in_select_lists_is_a_count() {
        assert_eq!(
            rewritten("SELECT EXISTS (SELECT 1 FROM t WHERE t.k = o.k), NOT EXISTS (SELECT x FROM t ORDER BY x LIMIT 1) FROM o WHERE EXISTS (SELECT 1 FROM t)"),
            "SELECT (SELECT count(1) > 0 FROM t WHERE t.k = o.k), NOT (SELECT count(1) > 0 FROM (SELECT x FROM t ORDER BY x LIMIT 1) AS arbor_exists) \
             FROM o WHERE EXISTS (SELECT 1 FROM t)"
        );
    }

    #[test]
    fn in_subqueries_in_select_lists_are_lookups() {
        assert_eq!(
            rewritten("SELECT CASE WHEN s NOT IN (SELECT n FROM ns) THEN 1 END FROM t WHERE s IN (SELECT n FROM ns)"),
            "SELECT CASE WHEN NOT coalesce(array_has((SELECT array_agg(array_element) FROM (SELECT n AS array_element FROM ns) AS array_source), s), false) THEN 1 END \
             FROM t WHERE s IN (SELECT n FROM ns)"
        );
    }
}

//! Correlated scalar subqueries as LEFT JOINs, on the parsed statement.
//!
//! Catalog queries of ORMs and drivers look a value up per row with a
//! scalar subquery that names the outer row: SQLAlchemy's `get_columns`
//! reads a column's default, identity and collation as
//! `CASE WHEN a.atthasdef THEN (SELECT pg_get_expr(d.adbin, d.adrelid) FROM
//! pg_attrdef d WHERE a.atthasdef AND d.adrelid = a.attrelid AND d.adnum =
//! a.attnum) END`. DataFusion decorrelates a scalar subquery only when it
//! aggregates, sits outside `CASE` and names no outer column in its select
//! list. This pass rewrites such lookups into joins DataFusion plans like
//! any other:
//!
//! ```sql
//! SELECT … (SELECT e FROM t WHERE t.k = o.x AND o.flag AND t.p) … FROM o
//! -- becomes
//! SELECT … arbor_subquery_1.arbor_value … FROM o
//!   LEFT JOIN (SELECT t.k AS arbor_key_1, arbor_single_value(e) AS arbor_value
//!              FROM t WHERE t.p GROUP BY t.k) AS arbor_subquery_1
//!     ON arbor_subquery_1.arbor_key_1 = o.x AND o.flag
//! ```
//!
//! Conjuncts of the subquery's `WHERE` that name only its own tables stay
//! inside; those that name only the outer row (`o.flag`) join the `ON`
//! condition; those that name both (`t.k = o.x`, psql's `a.attcollation <>
//! t.typcollation`) join the `ON` condition over the lookup's columns, which
//! the lookup groups by. The value is computed inside when it names only
//! inner columns; when it also names outer ones (SQLAlchemy's identity
//! options, `json_build_object('always', a.attidentity = 'a', 'start',
//! s.seqstart, …)`), the inner columns it needs come out of the join and the
//! value is computed in the outer query, NULL where no row matched
//! (`CASE WHEN arbor_subquery_1.arbor_rows > 0 THEN … END`). A key's second
//! row is PostgreSQL's error 21000 (`arbor_single_value`, in
//! [`super::single_row`]); `LIMIT 1` is any one row, `ORDER BY … LIMIT 1`
//! the first (`first_value(e ORDER BY …)`).
//!
//! Grouping by the keys keeps the outer rows one to one; past a correlation
//! other than equality, where several keys may match an outer row, the
//! outer row is repeated where PostgreSQL fails. A subquery of another shape (aggregating,
//! offset, ordered by the outer row, under a `GROUP BY` outer query, or with
//! a nested subquery in its `WHERE`) is left to DataFusion, which plans it
//! or fails with its error.
//!
//! A recursive lookup whose static term alone names the outer row
//! (asyncpg's domain base type, `WITH RECURSIVE typebases(…) AS (… WHERE
//! t2.oid = t.oid UNION ALL …) SELECT oid FROM typebases ORDER BY depth DESC
//! LIMIT 1`) is joined the same way, its recursion run for every key at
//! once with the key carried along ([`lift_recursive`]).

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, BinaryOperator, CaseWhen, Expr, Function, FunctionArgumentClause, FunctionArguments, GroupByExpr, Ident,
    Join, JoinConstraint, JoinOperator, LimitClause, OrderByKind, Query, Select, SelectItem, SetExpr, Statement, TableAlias, TableFactor, Value,
    VisitMut, VisitorMut,
};

use super::rewrite::{aggregates, bound_names, call, conjuncts, number};

/// Rewrite the equality-correlated scalar subqueries of every `SELECT` in
/// `statement`, innermost first, into LEFT JOINs.
pub(crate) fn scalar_subqueries(statement: &mut Statement) {
    let mut selects = Selects { next: 0 };
    let _ = statement.visit(&mut selects);
}

struct Selects {
    /// How many derived tables this statement has been given (their names).
    next: usize,
}

impl VisitorMut for Selects {
    type Break = ();

    fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        decorrelate(select, &mut self.next);
        ControlFlow::Continue(())
    }
}

fn decorrelate(select: &mut Select, next: &mut usize) {
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty());
    let wildcard = select.projection.iter().any(|i| matches!(i, SelectItem::Wildcard(_)));
    if select.from.is_empty() || grouped || select.having.is_some() || wildcard {
        return;
    }
    let outer: HashSet<String> = bound_names(select).into_iter().collect();
    let mut lifter = Lifter { outer: &outer, depth: 0, joins: Vec::new(), next };
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            let _ = e.visit(&mut lifter);
        }
    }
    if let Some(e) = &mut select.selection {
        let _ = e.visit(&mut lifter);
    }
    let joins = lifter.joins;
    if joins.is_empty() {
        return;
    }
    // A comma list becomes one chain of CROSS JOINs (the same rows), so
    // the lookups' ON conditions see every table of the FROM clause.
    let mut from = std::mem::take(&mut select.from).into_iter();
    let Some(mut chain) = from.next() else { return };
    for rest in from {
        chain.joins.push(Join { relation: rest.relation, global: false, join_operator: JoinOperator::CrossJoin(JoinConstraint::None) });
        chain.joins.extend(rest.joins);
    }
    chain.joins.extend(joins);
    select.from = vec![chain];
}

/// Replaces the correlated scalar subqueries of one `SELECT`'s expressions
/// (not those of subqueries nested in them, which `Selects` has already
/// visited as `SELECT`s of their own) with columns of joined lookups.
struct Lifter<'a> {
    outer: &'a HashSet<String>,
    /// How deep in nested queries the visit is (0: the `SELECT`'s own expressions).
    depth: usize,
    joins: Vec<Join>,
    next: &'a mut usize,
}

impl VisitorMut for Lifter<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    /// Replacing the subquery here, before its children are visited, keeps
    /// the visit out of the lifted query.
    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if self.depth == 0 {
            if let Expr::Subquery(query) = e {
                let name = format!("arbor_subquery_{}", *self.next + 1);
                if let Some((join, value)) = lift(query, self.outer, &name) {
                    *self.next += 1;
                    self.joins.push(join);
                    *e = value;
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Where the columns an expression names come from.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Side {
    /// No columns (a constant).
    Neither,
    /// Only the subquery's own tables.
    Inner,
    /// Only the outer query's tables.
    Outer,
    /// Both.
    Both,
}

impl Side {
    fn and(self, other: Side) -> Side {
        match (self, other) {
            (Side::Neither, s) | (s, Side::Neither) => s,
            (a, b) if a == b => a,
            _ => Side::Both,
        }
    }
}

/// The table an identifier is qualified by, lower-cased (`t` of `s.t.c`).
fn qualifier(parts: &[Ident]) -> Option<String> {
    (parts.len() >= 2).then(|| parts[parts.len() - 2].value.to_ascii_lowercase())
}

/// Which side the columns of `e` come from; `None` where that cannot be told
/// (a nested subquery, or a qualifier bound on neither side, such as a
/// query further out).
fn side(e: &Expr, inner: &HashSet<String>, outer: &HashSet<String>) -> Option<Side> {
    let mut side = Side::Neither;
    let mut known = true;
    let _ = visit_expressions(e, |e| {
        match e {
            // An unqualified name resolves to the subquery's own tables first.
            Expr::Identifier(_) => side = side.and(Side::Inner),
            Expr::CompoundIdentifier(parts) => match qualifier(parts) {
                Some(q) if inner.contains(&q) => side = side.and(Side::Inner),
                Some(q) if outer.contains(&q) => side = side.and(Side::Outer),
                _ => known = false,
            },
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => known = false,
            _ => {}
        }
        if known {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    });
    known.then_some(side)
}

fn ident_column(table: &str, column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![Ident::new(table), Ident::new(column)])
}

fn and_all(exprs: Vec<Expr>) -> Option<Expr> {
    exprs.into_iter().reduce(|acc, e| Expr::BinaryOp { left: Box::new(acc), op: BinaryOperator::And, right: Box::new(e) })
}

fn aliased(expr: Expr, alias: &str) -> SelectItem {
    SelectItem::ExprWithAlias { expr, alias: Ident::new(alias) }
}

/// `LIMIT 1` (psql's collation lookup): any one row, as a scalar lookup
/// takes anyway.
fn limit_one(query: &Query) -> bool {
    match &query.limit_clause {
        None => true,
        Some(LimitClause::LimitOffset { limit: Some(Expr::Value(v)), offset: None, limit_by }) => {
            limit_by.is_empty() && matches!(&v.value, Value::Number(n, _) if n == "1")
        }
        Some(_) => false,
    }
}

/// A lookup's WHERE clause split by the rows it reads: conjuncts on the
/// subquery's own tables (kept in it), conjuncts for the ON condition, and
/// the subquery's columns those name (pulled out as `arbor_key` columns).
fn split_where(selection: Option<Expr>, inner: &HashSet<String>, outer: &HashSet<String>, name: &str) -> Option<(Vec<Expr>, Vec<Expr>, Vec<Expr>)> {
    let (mut kept, mut on, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    let mut all = Vec::new();
    if let Some(p) = selection {
        conjuncts(p, &mut all);
    }
    for c in all {
        match side(&c, inner, outer)? {
            Side::Neither | Side::Inner => kept.push(c),
            Side::Outer => on.push(c),
            Side::Both => {
                let mut c = c;
                pull_inner(&mut c, inner, name, "arbor_key", &mut keys);
                on.push(c);
            }
        }
    }
    Some((kept, on, keys))
}

/// Replace the inner columns `e` names with columns of the lookup `name`
/// (`<name>.<prefix>_<n>`), adding each new one to `columns`.
fn pull_inner(e: &mut Expr, inner: &HashSet<String>, name: &str, prefix: &str, columns: &mut Vec<Expr>) {
    let _ = visit_expressions_mut(e, |e| {
        let is_inner = match e {
            Expr::Identifier(_) => true,
            Expr::CompoundIdentifier(parts) => qualifier(parts).is_some_and(|q| inner.contains(&q)),
            _ => false,
        };
        if is_inner {
            let n = columns.iter().position(|c| c == e).unwrap_or_else(|| {
                columns.push(e.clone());
                columns.len() - 1
            });
            *e = ident_column(name, &format!("{prefix}_{}", n + 1));
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The join that looks `query` up and the expression that replaces it, or
/// `None` when `query` is not a scalar lookup this can lift.
fn lift(query: &Query, outer: &HashSet<String>, name: &str) -> Option<(Join, Expr)> {
    if query.with.is_some() {
        return lift_recursive(query, outer, name);
    }
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    if !limit_one(query) || query.fetch.is_some() || select.distinct.is_some() || select.having.is_some() {
        return None;
    }
    if select.from.is_empty() || !matches!(&select.group_by, GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty()) {
        return None;
    }
    let [item] = select.projection.as_slice() else { return None };
    let (SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }) = item else { return None };
    if aggregates(value) {
        // DataFusion decorrelates aggregates itself, with `count`'s 0 for no rows.
        return None;
    }
    let inner: HashSet<String> = bound_names(select).into_iter().collect();
    // The subquery's own FROM clause must not name the outer row.
    for t in &select.from {
        if !plain_relation(&t.relation) {
            return None;
        }
        for j in &t.joins {
            if !plain_relation(&j.relation) {
                return None;
            }
            match join_constraint(&j.join_operator)? {
                JoinConstraint::On(e) if !matches!(side(e, &inner, outer)?, Side::Neither | Side::Inner) => return None,
                _ => {}
            }
        }
    }
    // With `LIMIT 1`, the first row in the subquery's order.
    let mut order = Vec::new();
    if query.limit_clause.is_some() {
        if let Some(ob) = &query.order_by {
            let OrderByKind::Expressions(exprs) = &ob.kind else { return None };
            for o in exprs {
                if !matches!(side(&o.expr, &inner, outer)?, Side::Neither | Side::Inner) {
                    return None;
                }
            }
            order = exprs.clone();
        }
    }
    // Without `LIMIT 1`, a key's only row: a second is PostgreSQL's error.
    let aggregate = if query.limit_clause.is_some() { "first_value" } else { super::single_row::SINGLE_VALUE };
    let first = |e: Expr| {
        let mut f = call(aggregate, vec![e]);
        if let (Expr::Function(Function { args: FunctionArguments::List(list), .. }), false) = (&mut f, order.is_empty()) {
            list.clauses.push(FunctionArgumentClause::OrderBy(order.clone()));
        }
        f
    };

    // Split the WHERE clause: conjuncts on the subquery's own tables stay in
    // it, those on the outer row alone join the ON condition, and those on
    // both are evaluated in the ON condition over the lookup's grouping keys.
    let (inner_where, on, keys) = split_where(select.selection.clone(), &inner, outer, name)?;
    let value_side = side(value, &inner, outer)?;
    if keys.is_empty() && on.is_empty() && !matches!(value_side, Side::Outer | Side::Both) {
        // Not correlated: DataFusion plans it as it is.
        return None;
    }

    let mut projection: Vec<SelectItem> = keys.iter().enumerate().map(|(i, k)| aliased(k.clone(), &format!("arbor_key_{}", i + 1))).collect();
    let replacement = match value_side {
        Side::Neither | Side::Inner => {
            projection.push(aliased(first(value.clone()), "arbor_value"));
            ident_column(name, "arbor_value")
        }
        Side::Outer | Side::Both => {
            // The inner columns the value names come out of the join; the
            // value is computed where the outer row is, NULL where no row matched.
            let mut value = value.clone();
            let mut columns = Vec::new();
            pull_inner(&mut value, &inner, name, "arbor_column", &mut columns);
            for (n, c) in columns.into_iter().enumerate() {
                projection.push(aliased(first(c), &format!("arbor_column_{}", n + 1)));
            }
            projection.push(aliased(call("count", vec![number("1")]), "arbor_rows"));
            let matched = Expr::BinaryOp { left: Box::new(ident_column(name, "arbor_rows")), op: BinaryOperator::Gt, right: Box::new(number("0")) };
            Expr::Case {
                case_token: AttachedToken::empty(),
                end_token: AttachedToken::empty(),
                operand: None,
                conditions: vec![CaseWhen { condition: matched, result: value }],
                else_result: None,
            }
        }
    };

    let mut lookup = select.as_ref().clone();
    lookup.projection = projection;
    lookup.selection = and_all(inner_where);
    lookup.group_by = GroupByExpr::Expressions(keys, Vec::new());
    let mut derived = query.clone();
    derived.order_by = None;
    derived.limit_clause = None;
    *derived.body = SetExpr::Select(Box::new(lookup));
    let join = left_join_lookup(derived, name, on);
    Some((join, replacement))
}

/// `LEFT JOIN (derived) AS name ON on…` (`ON true` without conditions).
fn left_join_lookup(derived: Query, name: &str, on: Vec<Expr>) -> Join {
    let relation = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(derived),
        alias: Some(TableAlias { explicit: true, name: Ident::new(name), columns: Vec::new(), at: None }),
        sample: None,
    };
    let condition = and_all(on).unwrap_or(Expr::Value(Value::Boolean(true).into()));
    Join { relation, global: false, join_operator: JoinOperator::LeftOuter(JoinConstraint::On(condition)) }
}

/// Whether none of the expressions of `select` (its list, `WHERE`, join
/// conditions) names a table outside it.
fn self_contained(select: &Select, outer: &HashSet<String>) -> bool {
    let inner: HashSet<String> = bound_names(select).into_iter().collect();
    let own = |e: &Expr| matches!(side(e, &inner, outer), Some(Side::Neither | Side::Inner));
    let items = select.projection.iter().all(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => own(e),
        _ => false,
    });
    let joins = select.from.iter().all(|t| {
        plain_relation(&t.relation)
            && t.joins.iter().all(|j| {
                plain_relation(&j.relation)
                    && match join_constraint(&j.join_operator) {
                        Some(JoinConstraint::On(e)) => own(e),
                        Some(_) => true,
                        None => false,
                    }
            })
    });
    items && joins && select.selection.as_ref().is_none_or(own)
}

/// The name `select` reads CTE `cte` by (its alias, or the CTE's name).
fn cte_reference(select: &Select, cte: &str) -> Option<Ident> {
    select.from.iter().flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation))).find_map(|t| match t {
        TableFactor::Table { name, alias, args: None, .. } if name.0.len() == 1 && name.to_string().trim_matches('"').eq_ignore_ascii_case(cte) => {
            Some(alias.as_ref().map_or_else(|| Ident::new(cte), |a| a.name.clone()))
        }
        _ => None,
    })
}

/// A correlated recursive lookup (asyncpg's domain base type):
///
/// ```sql
/// (WITH RECURSIVE r(x, depth) AS (SELECT t2.b, 0 FROM t t2 WHERE t2.oid = o.oid
///                                 UNION ALL SELECT t2.b, r.depth + 1 FROM t t2, r WHERE r.x = t2.oid)
///  SELECT x FROM r ORDER BY depth DESC LIMIT 1)
/// -- becomes a join on the recursion run for every key at once
/// LEFT JOIN (WITH RECURSIVE r(x, depth, arbor_key_1) AS (SELECT t2.b, 0, t2.oid AS arbor_key_1 FROM t t2
///                                 UNION ALL SELECT t2.b, r.depth + 1, r.arbor_key_1 FROM t t2, r WHERE r.x = t2.oid)
///            SELECT arbor_key_1, first_value(x ORDER BY depth DESC) AS arbor_value FROM r GROUP BY arbor_key_1) AS arbor_subquery_1
///   ON arbor_subquery_1.arbor_key_1 = o.oid
/// ```
///
/// Only the static term may name the outer row, in its `WHERE` clause; its
/// inner side of each such condition is carried through the recursion as a
/// key, so each outer row's rows stay apart. The final select reads the
/// CTE alone.
fn lift_recursive(query: &Query, outer: &HashSet<String>, name: &str) -> Option<(Join, Expr)> {
    let with = query.with.as_ref()?;
    let [cte] = with.cte_tables.as_slice() else { return None };
    let cte_name = cte.alias.name.value.to_ascii_lowercase();
    let SetExpr::Select(body) = query.body.as_ref() else { return None };
    if !limit_one(query) || query.fetch.is_some() || body.distinct.is_some() || body.having.is_some() {
        return None;
    }
    if !matches!(&body.group_by, GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty()) || !self_contained(body, outer) {
        return None;
    }
    let [from] = body.from.as_slice() else { return None };
    if !from.joins.is_empty() || cte_reference(body, &cte_name).is_none() {
        return None;
    }
    let [item] = body.projection.as_slice() else { return None };
    let (SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }) = item else { return None };
    if aggregates(value) {
        return None;
    }
    let definition = cte.query.as_ref();
    if definition.with.is_some() || definition.order_by.is_some() || definition.limit_clause.is_some() || definition.fetch.is_some() {
        return None;
    }
    let SetExpr::SetOperation { left, op, set_quantifier, right } = definition.body.as_ref() else { return None };
    let (SetExpr::Select(anchor), SetExpr::Select(step)) = (left.as_ref(), right.as_ref()) else { return None };
    let step_reads = cte_reference(step, &cte_name)?;
    if !self_contained(step, outer) || anchor.having.is_some() || !matches!(&anchor.group_by, GroupByExpr::Expressions(g, _) if g.is_empty()) {
        return None;
    }
    // The static term: its own FROM clause and select list must not name
    // the outer row; its WHERE clause is split as a plain lookup's.
    let mut anchor_alone = anchor.as_ref().clone();
    anchor_alone.selection = None;
    if !self_contained(&anchor_alone, outer) {
        return None;
    }
    let inner: HashSet<String> = bound_names(anchor).into_iter().collect();
    let (kept, on, keys) = split_where(anchor.selection.clone(), &inner, outer, name)?;
    if keys.is_empty() {
        // Not correlated by a key to carry: DataFusion plans it as it is.
        return None;
    }
    let key_names: Vec<String> = (1..=keys.len()).map(|i| format!("arbor_key_{i}")).collect();
    let mut anchor = anchor.as_ref().clone();
    anchor.selection = and_all(kept);
    anchor.projection.extend(keys.iter().zip(&key_names).map(|(k, n)| aliased(k.clone(), n)));
    let mut step = step.as_ref().clone();
    step.projection.extend(key_names.iter().map(|n| aliased(ident_column(&step_reads.value, n), n)));
    let mut cte = cte.clone();
    if !cte.alias.columns.is_empty() {
        cte.alias.columns.extend(key_names.iter().map(|n| datafusion::sql::sqlparser::ast::TableAliasColumnDef::from_name(n.as_str())));
    }
    let mut recursion = definition.clone();
    *recursion.body = SetExpr::SetOperation {
        left: Box::new(SetExpr::Select(Box::new(anchor))),
        op: *op,
        set_quantifier: *set_quantifier,
        right: Box::new(SetExpr::Select(Box::new(step))),
    };
    cte.query = Box::new(recursion);

    // The final select, per key: the first row in its order under `LIMIT 1`,
    // else the only one.
    let aggregate = if query.limit_clause.is_some() { "first_value" } else { super::single_row::SINGLE_VALUE };
    let mut first = call(aggregate, vec![value.clone()]);
    if let (Some(ob), Expr::Function(Function { args: FunctionArguments::List(list), .. })) = (&query.order_by, &mut first) {
        let OrderByKind::Expressions(exprs) = &ob.kind else { return None };
        list.clauses.push(FunctionArgumentClause::OrderBy(exprs.clone()));
    }
    let key_columns: Vec<Expr> = key_names.iter().map(|n| Expr::Identifier(Ident::new(n))).collect();
    let mut lookup = body.as_ref().clone();
    lookup.projection = key_columns.iter().zip(&key_names).map(|(k, n)| aliased(k.clone(), n)).collect();
    lookup.projection.push(aliased(first, "arbor_value"));
    lookup.group_by = GroupByExpr::Expressions(key_columns, Vec::new());
    let mut derived = query.clone();
    derived.order_by = None;
    derived.limit_clause = None;
    if let Some(w) = &mut derived.with {
        w.cte_tables = vec![cte];
    }
    *derived.body = SetExpr::Select(Box::new(lookup));
    let join = left_join_lookup(derived, name, on);
    Some((join, ident_column(name, "arbor_value")))
}

/// A table, or a derived table that is not LATERAL: what cannot name an
/// outer row.
fn plain_relation(t: &TableFactor) -> bool {
    matches!(t, TableFactor::Table { args: None, .. } | TableFactor::Derived { lateral: false, .. })
}

fn join_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0);
        scalar_subqueries(&mut s);
        s.to_string()
    }

    #[test]
    fn an_equality_lookup_becomes_a_left_join() {
        assert_eq!(
            rewritten("SELECT a.attname, CASE WHEN a.atthasdef THEN (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE a.atthasdef AND d.adrelid = a.attrelid AND d.adnum = a.attnum) END AS dflt FROM pg_attribute a"),
            "SELECT a.attname, CASE WHEN a.atthasdef THEN arbor_subquery_1.arbor_value END AS dflt FROM pg_attribute a \
             LEFT OUTER JOIN (SELECT d.adrelid AS arbor_key_1, d.adnum AS arbor_key_2, arbor_single_value(pg_get_expr(d.adbin, d.adrelid)) AS arbor_value \
             FROM pg_attrdef d GROUP BY d.adrelid, d.adnum) AS arbor_subquery_1 \
             ON a.atthasdef AND arbor_subquery_1.arbor_key_1 = a.attrelid AND arbor_subquery_1.arbor_key_2 = a.attnum"
        );
    }

    #[test]
    fn a_value_naming_the_outer_row_is_computed_outside() {
        assert_eq!(
            rewritten("SELECT (SELECT json_build_object('always', a.attidentity = 'a', 'start', s.seqstart) FROM pg_sequence s WHERE s.seqrelid = a.attrelid) FROM pg_attribute a"),
            "SELECT CASE WHEN arbor_subquery_1.arbor_rows > 0 THEN json_build_object('always', a.attidentity = 'a', 'start', arbor_subquery_1.arbor_column_1) END \
             FROM pg_attribute a LEFT OUTER JOIN (SELECT s.seqrelid AS arbor_key_1, arbor_single_value(s.seqstart) AS arbor_column_1, count(1) AS arbor_rows \
             FROM pg_sequence s GROUP BY s.seqrelid) AS arbor_subquery_1 ON arbor_subquery_1.arbor_key_1 = a.attrelid"
        );
    }

    #[test]
    fn comma_joins_become_one_chain_and_where_lookups_are_lifted() {
        assert_eq!(
            rewritten("SELECT c.relname FROM pg_class c, pg_namespace n WHERE n.oid = c.relnamespace AND (SELECT t.typname FROM pg_type t WHERE t.oid = c.reltype) = 'x'"),
            "SELECT c.relname FROM pg_class c CROSS JOIN pg_namespace n \
             LEFT OUTER JOIN (SELECT t.oid AS arbor_key_1, arbor_single_value(t.typname) AS arbor_value FROM pg_type t GROUP BY t.oid) AS arbor_subquery_1 \
             ON arbor_subquery_1.arbor_key_1 = c.reltype \
             WHERE n.oid = c.relnamespace AND arbor_subquery_1.arbor_value = 'x'"
        );
    }

    #[test]
    fn other_subqueries_are_left_to_datafusion() {
        for sql in [
            // Uncorrelated.
            "SELECT (SELECT x FROM t WHERE t.k = 1) FROM o",
            // Aggregating (count of no rows is 0, not NULL).
            "SELECT (SELECT count(*) FROM t WHERE t.k = o.k) FROM o",
            // Limited to more than one row, or offset.
            "SELECT (SELECT x FROM t WHERE t.k = o.k LIMIT 2) FROM o",
            "SELECT (SELECT x FROM t WHERE t.k = o.k LIMIT 1 OFFSET 1) FROM o",
            // Ordered by the outer row.
            "SELECT (SELECT x FROM t WHERE t.k = o.k ORDER BY o.y LIMIT 1) FROM o",
            // Under GROUP BY, or with SELECT *.
            "SELECT o.g, (SELECT x FROM t WHERE t.k = o.g) FROM o GROUP BY o.g",
            "SELECT *, (SELECT x FROM t WHERE t.k = o.k) FROM o",
            // Naming a table of neither query.
            "SELECT (SELECT x FROM t WHERE t.k = z.k) FROM o",
        ] {
            assert_eq!(rewritten(sql), Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap()[0].to_string(), "{sql}");
        }
    }

    #[test]
    fn other_correlations_are_evaluated_over_the_grouping_keys() {
        // psql's `\d` collation lookup.
        assert_eq!(
            rewritten("SELECT (SELECT c.collname FROM pg_collation c, pg_type t WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation ORDER BY c.collname LIMIT 1) AS attcollation FROM pg_attribute a"),
            "SELECT arbor_subquery_1.arbor_value AS attcollation FROM pg_attribute a LEFT OUTER JOIN \
             (SELECT c.oid AS arbor_key_1, t.oid AS arbor_key_2, t.typcollation AS arbor_key_3, first_value(c.collname ORDER BY c.collname) AS arbor_value \
             FROM pg_collation c, pg_type t GROUP BY c.oid, t.oid, t.typcollation) AS arbor_subquery_1 \
             ON arbor_subquery_1.arbor_key_1 = a.attcollation AND arbor_subquery_1.arbor_key_2 = a.atttypid AND a.attcollation <> arbor_subquery_1.arbor_key_3"
        );
    }

    #[test]
    fn a_recursive_lookup_carries_its_key_through_the_recursion() {
        // asyncpg's type lookup: the base type of a domain.
        assert_eq!(
            rewritten(
                "SELECT t.oid, CASE WHEN t.typtype = 'd' THEN (WITH RECURSIVE typebases(oid, depth) AS (\
                 SELECT t2.typbasetype AS oid, 0 AS depth FROM pg_type t2 WHERE t2.oid = t.oid \
                 UNION ALL SELECT t2.typbasetype AS oid, tb.depth + 1 AS depth FROM pg_type t2, typebases tb WHERE tb.oid = t2.oid AND t2.typbasetype != 0) \
                 SELECT oid FROM typebases ORDER BY depth DESC LIMIT 1) ELSE NULL END AS basetype FROM pg_type AS t"
            ),
            "SELECT t.oid, CASE WHEN t.typtype = 'd' THEN arbor_subquery_1.arbor_value ELSE NULL END AS basetype FROM pg_type AS t \
             LEFT OUTER JOIN (WITH RECURSIVE typebases (oid, depth, arbor_key_1) AS (\
             SELECT t2.typbasetype AS oid, 0 AS depth, t2.oid AS arbor_key_1 FROM pg_type t2 \
             UNION ALL SELECT t2.typbasetype AS oid, tb.depth + 1 AS depth, tb.arbor_key_1 AS arbor_key_1 FROM pg_type t2, typebases tb WHERE tb.oid = t2.oid AND t2.typbasetype <> 0) \
             SELECT arbor_key_1 AS arbor_key_1, first_value(oid ORDER BY depth DESC) AS arbor_value FROM typebases GROUP BY arbor_key_1) AS arbor_subquery_1 \
             ON arbor_subquery_1.arbor_key_1 = t.oid"
        );
        // The recursive term naming the outer row: left to DataFusion.
        let sql = "SELECT (WITH RECURSIVE r(x) AS (SELECT t2.b AS x FROM t t2 WHERE t2.k = o.k UNION ALL SELECT t2.b FROM t t2, r WHERE r.x = t2.k AND t2.c = o.c) SELECT x FROM r LIMIT 1) FROM o";
        assert_eq!(rewritten(sql), Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap()[0].to_string());
    }

    #[test]
    fn nested_lookups_are_lifted_innermost_first() {
        let sql = rewritten("SELECT (SELECT (SELECT n.nspname FROM pg_namespace n WHERE n.oid = c.relnamespace) FROM pg_class c WHERE c.oid = a.attrelid) FROM pg_attribute a");
        assert_eq!(
            sql,
            "SELECT arbor_subquery_2.arbor_value FROM pg_attribute a LEFT OUTER JOIN \
             (SELECT c.oid AS arbor_key_1, arbor_single_value(arbor_subquery_1.arbor_value) AS arbor_value FROM pg_class c \
             LEFT OUTER JOIN (SELECT n.oid AS arbor_key_1, arbor_single_value(n.nspname) AS arbor_value FROM pg_namespace n GROUP BY n.oid) AS arbor_subquery_1 \
             ON arbor_subquery_1.arbor_key_1 = c.relnamespace GROUP BY c.oid) AS arbor_subquery_2 ON arbor_subquery_2.arbor_key_1 = a.attrelid"
        );
    }
}

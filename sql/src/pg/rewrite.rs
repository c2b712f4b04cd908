//! Rewrites of PostgreSQL syntax DataFusion does not plan into forms it
//! does, on the parsed statement: the array constructor over a subquery,
//! `ARRAY(SELECT …)`, which psql's `\d+` and ORMs' reflection use.
//!
//! - `ARRAY(SELECT e FROM unnest(a) x [WHERE p])` (a correlated map over an
//!   array) becomes `array_transform(array_filter(a, x -> p), x -> e)`;
//! - any other `ARRAY(SELECT e FROM …)` becomes
//!   `(SELECT array_agg(e) FROM (…))`, ordered as the subquery's `ORDER BY`
//!   when that orders by the output column. (An empty subquery gives NULL
//!   here where PostgreSQL gives `{}`.)

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    LambdaFunction, LambdaFunctionParameter, LambdaSyntax, ObjectName, OneOrManyWithParens, OrderByExpr, OrderByKind, Query,
    Select, SelectItem, SetExpr, Statement, TableAlias, TableFactor, TableWithJoins, Value,
};

/// Rewrite every `ARRAY(subquery)` in `statement`.
pub(crate) fn array_subqueries(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |e| {
        if let Some(new) = rewrite(e) {
            *e = new;
        }
        ControlFlow::<()>::Continue(())
    });
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
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
    over_unnest(query, select, &element).or_else(|| Some(aggregated(query, select)))
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
            "SELECT array_transform(tc.reloptions, x -> 'toast.' || x) FROM t tc"
        );
        assert_eq!(rewritten("SELECT ARRAY(SELECT x FROM unnest(a) AS x WHERE x > 1) FROM t"), "SELECT array_filter(a, x -> x > 1) FROM t");
        assert_eq!(
            rewritten("SELECT array(select rolname from pg_roles order by 1)"),
            "SELECT (SELECT array_agg(array_element ORDER BY array_element) FROM (SELECT rolname AS array_element FROM pg_roles) AS array_source)"
        );
        assert_eq!(rewritten("SELECT array_length(a, 1) FROM t"), "SELECT array_length(a, 1) FROM t");
    }
}

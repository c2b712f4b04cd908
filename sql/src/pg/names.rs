//! The names PostgreSQL gives the unaliased columns of a SELECT (its
//! parser's `FigureColname`): a column keeps its name, a function call is
//! named after the function, a scalar subquery after its own column,
//! `EXISTS (…)` is `exists`, `ARRAY[…]` and `ARRAY(…)` are `array`, `CASE`
//! is `case`, a cast of an unnamed expression is named after the type
//! (`1::int` is `int4`), and anything else is `?column?`. Clients read
//! them: psql's headers, drivers' dict and named-tuple rows.

use datafusion::sql::sqlparser::ast::{
    AccessExpr, DataType, Expr, ExactNumberInfo, Ident, Query, SelectItem, SetExpr, Statement, TimezoneInfo, TrimWhereField,
};

/// A name and how sure PostgreSQL is of it: 2 for a column, function or
/// subquery, 1 for `case` and a cast's type (an outer cast's type wins
/// over them).
type Figured = Option<(String, u8)>;

/// PostgreSQL's names for the columns of `statement` when it is a query;
/// `None` entries keep DataFusion's name (a bare column, an alias, which
/// DataFusion names alike). `None` overall when the select list has
/// wildcards (their columns are DataFusion's to name).
pub(crate) fn column_names(statement: &Statement) -> Option<Vec<Option<String>>> {
    let Statement::Query(query) = statement else { return None };
    let select = first_select(&query.body)?;
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => Some(None),
            SelectItem::UnnamedExpr(e) => Some(Some(name_or_unnamed(e))),
            SelectItem::ExprWithAlias { .. } => Some(None),
            _ => None,
        })
        .collect()
}

/// PostgreSQL lets a select list repeat an expression (`SELECT a, a`,
/// `SELECT session_user, current_user`); DataFusion wants unique names,
/// and names every subquery alike (`EXISTS (<subquery>)`). Each repeat,
/// and each item holding a subquery, gets an alias of its own here, and
/// `names` the name PostgreSQL gives it, which the result carries.
pub(crate) fn alias_repeats(statement: &mut Statement, names: &mut Option<Vec<Option<String>>>) {
    let (Statement::Query(query), Some(names)) = (statement, names.as_mut()) else { return };
    let SetExpr::Select(select) = query.body.as_mut() else { return };
    if names.len() != select.projection.len() {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for (i, item) in select.projection.iter_mut().enumerate() {
        let SelectItem::UnnamedExpr(e) = item else { continue };
        if seen.insert(e.to_string()) && !has_subquery(e) {
            continue;
        }
        names[i] = Some(name_or_unnamed(e));
        *item = SelectItem::ExprWithAlias { expr: e.clone(), alias: Ident::new(format!("__arbor_repeat_{i}")) };
    }
}

fn has_subquery(e: &Expr) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |e| {
        // `ARRAY(SELECT …)` too: a function over a subquery.
        found |= matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. })
            || matches!(e, Expr::Function(f) if matches!(f.args, datafusion::sql::sqlparser::ast::FunctionArguments::Subquery(_)));
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}

/// The SELECT that names a query's columns: the first leg of a set
/// operation, as in PostgreSQL.
fn first_select(body: &SetExpr) -> Option<&datafusion::sql::sqlparser::ast::Select> {
    match body {
        SetExpr::Select(select) => Some(select),
        SetExpr::Query(query) => first_select(&query.body),
        SetExpr::SetOperation { left, .. } => first_select(left),
        _ => None,
    }
}

fn name_or_unnamed(e: &Expr) -> String {
    figure(e).map_or_else(|| "?column?".to_string(), |(name, _)| name)
}

/// An identifier as the planner resolves it: unquoted ones fold to lower case.
fn ident(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The name of the first column of `query` (a scalar subquery's).
fn first_column(query: &Query) -> String {
    let item = match query.body.as_ref() {
        SetExpr::Values(_) => return "column1".into(),
        body => first_select(body).and_then(|s| s.projection.first()),
    };
    match item {
        Some(SelectItem::UnnamedExpr(e)) => name_or_unnamed(e),
        Some(SelectItem::ExprWithAlias { alias, .. }) => ident(alias),
        // `(SELECT * FROM t)`: the column's name is the table's to know.
        _ => "?column?".into(),
    }
}

pub(super) fn figure(e: &Expr) -> Figured {
    let strong = |name: &str| Some((name.to_string(), 2));
    match e {
        Expr::Identifier(i) => Some((ident(i), 2)),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| (ident(i), 2)),
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => figure(inner),
        // `(record).field` is named after the field, `a[1]` after `a`.
        Expr::CompoundFieldAccess { root, access_chain } => match access_chain.last() {
            Some(AccessExpr::Dot(Expr::Identifier(i))) => Some((ident(i), 2)),
            Some(AccessExpr::Subscript(_)) => figure(root),
            _ => None,
        },
        Expr::Cast { expr, data_type, .. } => match figure(expr) {
            Some((name, 2)) => Some((name, 2)),
            inner => type_name(data_type).map(|t| (t, 1)).or(inner),
        },
        Expr::TypedString(typed) => type_name(&typed.data_type).map(|t| (t, 1)),
        Expr::Interval(_) => Some(("interval".into(), 1)),
        // `x::regtype::text` as parse.rs rewrites it: named as written.
        Expr::Function(f) if f.name.to_string() == super::functions::REGTYPE_TEXT => match &f.args {
            datafusion::sql::sqlparser::ast::FunctionArguments::List(list) => match list.args.as_slice() {
                [datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(arg))] => figure(arg),
                _ => None,
            },
            _ => None,
        },
        // `x::regclass::text` as parse.rs rewrites it: named after `x`,
        // whose name it carries (none where `x` has none of its own).
        Expr::Function(f) if f.name.to_string() == super::functions::REGCLASS_TEXT => match &f.args {
            datafusion::sql::sqlparser::ast::FunctionArguments::List(list) => match list.args.as_slice() {
                [_, datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(Expr::Value(v)))] => match &v.value {
                    datafusion::sql::sqlparser::ast::Value::SingleQuotedString(name) => strong(name),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        },
        Expr::Function(f) => {
            let last = f.name.0.last().and_then(|p| p.as_ident()).map(ident).unwrap_or_else(|| f.name.to_string());
            // `user` is PostgreSQL's `current_user`.
            Some((if last == "user" { "current_user".into() } else { last }, 2))
        }
        Expr::Case { .. } => Some(("case".into(), 1)),
        Expr::Subquery(query) => Some((first_column(query), 2)),
        Expr::Exists { negated: false, .. } => strong("exists"),
        Expr::Array(_) => strong("array"),
        Expr::Tuple(_) => strong("row"),
        Expr::Extract { .. } => strong("extract"),
        Expr::Substring { .. } => strong("substring"),
        Expr::Position { .. } => strong("position"),
        Expr::Overlay { .. } => strong("overlay"),
        Expr::Ceil { .. } => strong("ceil"),
        Expr::Floor { .. } => strong("floor"),
        Expr::AtTimeZone { .. } => strong("timezone"),
        Expr::Trim { trim_where, .. } => strong(match trim_where {
            Some(TrimWhereField::Leading) => "ltrim",
            Some(TrimWhereField::Trailing) => "rtrim",
            _ => "btrim",
        }),
        _ => None,
    }
}

/// The name PostgreSQL's grammar gives a type as written (`int` is `int4`,
/// `double precision` is `float8`); an array is named after its element.
fn type_name(t: &DataType) -> Option<String> {
    let name = match t {
        DataType::SmallInt(_) | DataType::Int2(_) => "int2",
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => "int4",
        DataType::BigInt(_) | DataType::Int8(_) => "int8",
        DataType::Real | DataType::Float4 => "float4",
        DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 => "float8",
        DataType::Float(ExactNumberInfo::Precision(p) | ExactNumberInfo::PrecisionAndScale(p, _)) if *p <= 24 => "float4",
        DataType::Float(_) => "float8",
        DataType::Numeric(_) | DataType::Decimal(_) | DataType::Dec(_) => "numeric",
        DataType::Bool | DataType::Boolean => "bool",
        DataType::Text => "text",
        DataType::Varchar(_) | DataType::CharacterVarying(_) | DataType::CharVarying(_) => "varchar",
        DataType::Char(_) | DataType::Character(_) => "bpchar",
        DataType::Bytea => "bytea",
        DataType::Date => "date",
        DataType::Time(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timetz",
        DataType::Time(..) => "time",
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timestamptz",
        DataType::Timestamp(..) => "timestamp",
        DataType::Interval { .. } => "interval",
        DataType::JSON => "json",
        DataType::JSONB => "jsonb",
        DataType::Uuid => "uuid",
        DataType::Regclass => "regclass",
        DataType::Array(element) => {
            use datafusion::sql::sqlparser::ast::ArrayElemTypeDef;
            return match element {
                ArrayElemTypeDef::AngleBracket(t) | ArrayElemTypeDef::SquareBracket(t, _) | ArrayElemTypeDef::Parenthesis(t) => type_name(t),
                ArrayElemTypeDef::None => None,
            };
        }
        // `regtype`, `oid`, `name`, `timestamptz`: the name as written.
        DataType::Custom(name, _) => return name.0.last().and_then(|p| p.as_ident()).map(ident),
        _ => return None,
    };
    Some(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::column_names;

    fn names(sql: &str) -> Option<Vec<Option<String>>> {
        column_names(&crate::pg::parse::parse(sql).unwrap()[0])
    }

    fn all(sql: &str) -> Vec<String> {
        names(sql).unwrap().into_iter().map(|n| n.unwrap_or_else(|| "(DataFusion's)".into())).collect()
    }

    #[test]
    fn columns_are_named_as_postgresql_names_them() {
        assert_eq!(
            names("SELECT count(*), max(t.a), a, b + 1, 1 AS one, CAST(a AS INT), pg_catalog.lower(a) FROM t"),
            Some(vec![Some("count".into()), Some("max".into()), None, Some("?column?".into()), None, Some("a".into()), Some("lower".into())])
        );
        assert_eq!(names("SELECT * FROM t"), None);
        assert_eq!(names("INSERT INTO t VALUES (1)"), None);
    }

    #[test]
    fn scalar_subqueries_are_named_after_their_column() {
        assert_eq!(
            all("SELECT (SELECT 1), (SELECT max(x) FROM t), (SELECT x FROM t), (SELECT x AS y FROM t), (SELECT \"X\" FROM t), (SELECT t.Z FROM t)"),
            ["?column?", "max", "x", "y", "X", "z"]
        );
        assert_eq!(all("SELECT ((SELECT count(*) FROM t)), (SELECT (SELECT 2)), (SELECT 1 UNION SELECT 2), (SELECT * FROM (VALUES (1)) v)"), ["count", "?column?", "?column?", "?column?"]);
        assert_eq!(all("SELECT EXISTS (SELECT 1), NOT EXISTS (SELECT 1), ARRAY(SELECT 1), ARRAY[1, 2], 1 IN (SELECT 1)"), ["exists", "?column?", "array", "array", "?column?"]);
    }

    #[test]
    fn repeated_expressions_get_aliases_and_keep_their_names() {
        let mut statement = crate::pg::parse::parse("SELECT a, a, count(*), count(*), 1, b, EXISTS (SELECT 1) FROM t GROUP BY a, b").unwrap().remove(0);
        let mut names = column_names(&statement);
        super::alias_repeats(&mut statement, &mut names);
        assert_eq!(
            statement.to_string(),
            "SELECT a, a AS __arbor_repeat_1, count(*), count(*) AS __arbor_repeat_3, 1, b, EXISTS (SELECT 1) AS __arbor_repeat_6 FROM t GROUP BY a, b"
        );
        assert_eq!(
            names,
            Some(vec![None, Some("a".into()), Some("count".into()), Some("count".into()), Some("?column?".into()), None, Some("exists".into())])
        );
    }

    #[test]
    fn casts_of_unnamed_expressions_are_named_after_the_type() {
        assert_eq!(
            all("SELECT 1::int, 'a'::text, NULL::double precision, x::bigint, CAST(1 AS numeric(5, 2)), '2024-01-01'::timestamptz, 1::regclass, DATE '2024-01-01', (SELECT 1)::int, CASE WHEN true THEN 1 END::int2, x::int[]"),
            ["int4", "text", "float8", "x", "numeric", "timestamptz", "regclass", "date", "?column?", "int2", "x"]
        );
    }

    #[test]
    fn sql_functions_are_named_as_postgresql_names_them() {
        assert_eq!(
            all("SELECT user, extract(year FROM now()), trim(both 'x' FROM 'xax'), trim(leading 'x' FROM 'xa'), substring('abc' FROM 2), coalesce(1, 2), now() AT TIME ZONE 'UTC', CASE WHEN true THEN 1 END"),
            ["current_user", "extract", "btrim", "ltrim", "substring", "coalesce", "timezone", "case"]
        );
    }
}

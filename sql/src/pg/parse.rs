//! Parsing PostgreSQL text: datafusion-pg-catalog's compatibility parser
//! (its table of whole client queries replaced by empty answers, then its
//! rewrite rules), except for one rule. Its `RemoveSubqueryFromProjection`
//! replaces a scalar subquery in a select list that it takes for correlated
//! (one naming any table it does not see aliased in the subquery, or a
//! parameter) with NULL: a silent wrong answer. Here such a subquery is kept:
//! [`super::decorrelate`] turns equality lookups into joins, DataFusion plans
//! the rest or fails with its error. The rule's other half, `LIMIT 1` on an
//! uncorrelated subquery in a select list, is dropped too: a second row is
//! PostgreSQL's error 21000 ([`super::single_row`]), not the first row.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use datafusion::sql::sqlparser::ast::{
    visit_expressions, Expr, Query, SelectItem, SetExpr, Statement, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall, FixArrayLiteral, FixVersionColumnName,
    PrependUnqualifiedPgTableName, ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation, RewritePgCatalogOperator, RewriteRegCastToSubquery,
    SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

use super::rewrite::bound_names;

struct Parsers {
    compat: PostgresCompatibilityParser,
    /// The compatibility parser's rules in its order, without
    /// `RemoveSubqueryFromProjection`, with [`NameCurrentUser`],
    /// [`RegtypeAsText`] and [`RegclassByName`].
    rules: Vec<Arc<dyn SqlStatementRewriteRule>>,
}

fn parsers() -> &'static Parsers {
    static PARSERS: OnceLock<Parsers> = OnceLock::new();
    PARSERS.get_or_init(|| Parsers {
        compat: PostgresCompatibilityParser::new(),
        rules: vec![
            Arc::new(AliasDuplicatedProjectionRewrite),
            Arc::new(ResolveUnqualifiedIdentifier),
            Arc::new(RewriteArrayAnyAllOperation),
            Arc::new(PrependUnqualifiedPgTableName),
            Arc::new(StripCallableQualifier),
            Arc::new(FixArrayLiteral),
            Arc::new(NameCurrentUser),
            Arc::new(CurrentUserVariableToSessionUserFunctionCall),
            Arc::new(StripCollate),
            Arc::new(RewritePgCatalogOperator),
            Arc::new(RegtypeAsText),
            Arc::new(RegclassByName),
            Arc::new(RewriteRegCastToSubquery::new()),
            Arc::new(FixVersionColumnName),
        ],
    })
}

/// Whether `sql` may hold a subquery: `(` then `SELECT`, spaces between.
fn may_have_subquery(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        if b != b'(' {
            return false;
        }
        let rest = sql[i + 1..].trim_start();
        rest.get(..6).is_some_and(|w| w.eq_ignore_ascii_case("select"))
    })
}

/// Parse `sql` into statements, with the compatibility parser's rewrites
/// and Arbor's relations of `pg_catalog` found unqualified.
pub(crate) fn parse(sql: &str) -> Result<Vec<Statement>, ParserError> {
    Ok(parse_compatible(sql)?.into_iter().map(qualify_arbor_relations).map(table_oids).collect())
}

/// The `pg_catalog` relations Arbor adds to datafusion-pg-catalog's
/// (`provider/pg_catalog.rs`), which its `PrependUnqualifiedPgTableName`
/// does not know.
const ARBOR_PG_RELATIONS: &[&str] = &["pg_user"];

/// `FROM pg_user` → `FROM pg_catalog.pg_user`, as PostgreSQL's search path finds it.
fn qualify_arbor_relations(mut statement: Statement) -> Statement {
    use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart, TableFactor};
    struct Qualify;
    impl VisitorMut for Qualify {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, args: None, .. } = t {
                if let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() {
                    if ARBOR_PG_RELATIONS.iter().any(|r| r.eq_ignore_ascii_case(&ident.value)) {
                        *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new("pg_catalog")), ObjectNamePart::Identifier(ident.clone())]);
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Qualify);
    statement
}

fn parse_compatible(sql: &str) -> Result<Vec<Statement>, ParserError> {
    let parsers = parsers();
    let compat = match parsers.compat.parse(sql) {
        Ok(statements) => statements,
        // Its stand-in for a whole statement can be no statement at all
        // (Grafana's search_path expansion sent alone becomes `''`).
        Err(e) => {
            let plain = Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|_| e)?;
            return Ok(plain.into_iter().map(|s| parsers.rules.iter().fold(s, |s, rule| rule.rewrite(s))).collect());
        }
    };
    if !may_have_subquery(sql) && !mentions_current_user(sql) && !mentions_regtype(sql) && !mentions_regclass(sql) {
        return Ok(compat);
    }
    // The compatibility parser swaps some whole client queries for an empty
    // answer before parsing (psql's row policies, pgcli's type list); where
    // it did, its statement stands. Where its rules alone made the
    // statement, or it swapped only a subquery for `''` (Grafana's
    // search_path expansion, which Arbor answers), the text is parsed and
    // rewritten again with ours.
    let Ok(plain) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else { return Ok(compat) };
    if plain.len() != compat.len() {
        return Ok(compat);
    }
    Ok(compat
        .into_iter()
        .zip(plain)
        .map(|(compat_statement, plain)| {
            if parsers.compat.rewrite(plain.clone()) != compat_statement && stand_in(&compat_statement) {
                return compat_statement;
            }
            parsers.rules.iter().fold(plain, |s, rule| rule.rewrite(s))
        })
        .collect())
}

/// Whether `sql` may name `current_user`, which the compatibility parser's
/// rules turn into `session_user` before [`NameCurrentUser`] can keep its name.
fn mentions_current_user(sql: &str) -> bool {
    sql.as_bytes().windows(12).any(|w| w.eq_ignore_ascii_case(b"current_user"))
}

/// Whether `sql` may cast to `regtype`, which the compatibility parser's
/// rules resolve (`'int4'::regtype` to its OID) before [`RegtypeAsText`]
/// can see the cast.
fn mentions_regtype(sql: &str) -> bool {
    sql.as_bytes().windows(7).any(|w| w.eq_ignore_ascii_case(b"regtype"))
}

/// Whether `sql` may cast to `regclass` (see [`mentions_regtype`]).
fn mentions_regclass(sql: &str) -> bool {
    sql.as_bytes().windows(8).any(|w| w.eq_ignore_ascii_case(b"regclass"))
}

/// A type's name as a cast names it: lower case, without `pg_catalog.`.
fn cast_type_name(t: &datafusion::sql::sqlparser::ast::DataType) -> String {
    t.to_string().to_ascii_lowercase().trim_start_matches("pg_catalog.").to_string()
}

/// A parsed expression of `sql`, which Arbor writes.
fn expression(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {}).try_with_sql(sql).and_then(|mut p| p.parse_expr()).ok()
}

/// `x::regtype::text` (or `::varchar`, `::name`) is the type's name, as
/// PostgreSQL prints a `regtype`: `arbor_regtype_text(x::regtype)`, the
/// outer cast kept for the column's name. datafusion-pg-catalog plans
/// `x::regtype` as the number itself.
///
/// `x::regclass::text` is the relation's name as `regclassout` prints it
/// (quoted where it needs quotes, with its schema where the search path
/// does not find it), the OID's digits where no relation has it: a lookup
/// in `pg_class`, which [`super::decorrelate`] joins where `x` names the
/// outer row.
#[derive(Debug)]
struct RegtypeAsText;

impl SqlStatementRewriteRule for RegtypeAsText {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut statement, |e| {
            if let Expr::Cast { expr, data_type, .. } = e {
                let textual = matches!(cast_type_name(data_type).as_str(), "text" | "varchar" | "character varying" | "name");
                let mut inner = expr.as_mut();
                while let Expr::Nested(nested) = inner {
                    inner = nested.as_mut();
                }
                if let (true, Expr::Cast { data_type: inner_type, .. }) = (textual, &*inner) {
                    if cast_type_name(inner_type) == "regtype" {
                        **expr = super::rewrite::call(super::functions::REGTYPE_TEXT, vec![inner.clone()]);
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        // `x::regclass::text` as an item of the statement's own select
        // lists only. Under ORDER BY the lookup would need `x` beside the
        // select list's own `x::regclass`, two columns DataFusion names
        // alike (psql's `\d` sorts partitions by it); inside an expression
        // or a subquery it could put one subquery in another, which
        // DataFusion cannot always plan (SQLAlchemy's column reflection
        // casts in a correlated subquery). There the number stays.
        struct SelectLists {
            depth: usize,
        }
        impl VisitorMut for SelectLists {
            type Break = ();
            fn pre_visit_query(&mut self, _query: &mut datafusion::sql::sqlparser::ast::Query) -> ControlFlow<()> {
                self.depth += 1;
                ControlFlow::Continue(())
            }
            fn post_visit_query(&mut self, _query: &mut datafusion::sql::sqlparser::ast::Query) -> ControlFlow<()> {
                self.depth -= 1;
                ControlFlow::Continue(())
            }
            fn pre_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
                if self.depth > 1 {
                    return ControlFlow::Continue(());
                }
                for item in &mut select.projection {
                    let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item else { continue };
                    let mut e = e;
                    while let Expr::Nested(nested) = e {
                        e = nested.as_mut();
                    }
                    let Expr::Cast { expr, data_type, .. } = e else { continue };
                    let textual = matches!(cast_type_name(data_type).as_str(), "text" | "varchar" | "character varying" | "name");
                    let mut inner = expr.as_mut();
                    while let Expr::Nested(nested) = inner {
                        inner = nested.as_mut();
                    }
                    if let (true, Expr::Cast { expr: operand, data_type: inner_type, .. }) = (textual, &*inner) {
                        if cast_type_name(inner_type) == "regclass" {
                            if let Some(name) = regclass_text(operand, inner) {
                                **expr = name;
                            }
                        }
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let _ = statement.visit(&mut SelectLists { depth: 0 });
        statement
    }
}

/// The name `regclassout` gives `operand::regclass` (`cast`): a lookup of
/// the OID in `pg_class`, its digits where no relation has it.
fn regclass_text(operand: &Expr, cast: &Expr) -> Option<Expr> {
    // A name resolves to its OID first ([`RegclassByName`]); a column or
    // number is the OID.
    let oid = if is_name_operand(operand) { cast.to_string() } else { format!("({operand})") };
    // The column's name, where `x` gives one (a column, not a literal),
    // is carried as text: `x` itself beside its cast would be two
    // expressions DataFusion names alike.
    let column = match super::names::figure(operand) {
        Some((name, 2)) => format!(", '{}'", name.replace('\'', "''")),
        _ => String::new(),
    };
    expression(&format!(
        "{REGCLASS_TEXT}(COALESCE((SELECT CASE WHEN arbor_regclass_n.nspname IN ('pg_catalog', current_schema()) THEN quote_ident(arbor_regclass_c.relname) \
         ELSE quote_ident(arbor_regclass_n.nspname) || '.' || quote_ident(arbor_regclass_c.relname) END \
         FROM pg_catalog.pg_class arbor_regclass_c JOIN pg_catalog.pg_namespace arbor_regclass_n ON arbor_regclass_n.oid = arbor_regclass_c.relnamespace \
         WHERE arbor_regclass_c.oid = {oid}), CAST(CAST({oid} AS BIGINT) AS TEXT)){column})",
        REGCLASS_TEXT = super::functions::REGCLASS_TEXT
    ))
}

/// Whether `e` is what a `::regclass` cast reads as a relation's name: a
/// string (not of digits, which is the OID) or a parameter.
fn is_name_operand(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()),
            Value::Placeholder(_) => true,
            _ => false,
        },
        _ => false,
    }
}

/// `'name'::regclass` is the OID of the relation the search path finds by
/// that name: `pg_catalog` first, as PostgreSQL searches it before the
/// schemas of `search_path` unless told otherwise, then the current schema;
/// `'schema.name'` in that schema. (datafusion-pg-catalog's rule, which
/// this one runs before, searches the current schema only, so
/// `'pg_class'::regclass` was NULL.)
#[derive(Debug)]
struct RegclassByName;

impl SqlStatementRewriteRule for RegclassByName {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut statement, |e| {
            if let Expr::Cast { expr: operand, data_type, .. } = e {
                if cast_type_name(data_type) == "regclass" && is_name_operand(operand) {
                    let lookup = format!(
                        "(SELECT arbor_regclass_c.oid FROM pg_catalog.pg_class arbor_regclass_c \
                         JOIN pg_catalog.pg_namespace arbor_regclass_n ON arbor_regclass_c.relnamespace = arbor_regclass_n.oid \
                         CROSS JOIN (SELECT parse_ident(CAST({operand} AS TEXT)) AS parts) arbor_regclass_name \
                         WHERE (array_length(parts, 1) = 1 AND arbor_regclass_n.nspname IN ('pg_catalog', current_schema()) AND arbor_regclass_c.relname = parts[1]) \
                         OR (array_length(parts, 1) = 2 AND arbor_regclass_n.nspname = parts[1] AND arbor_regclass_c.relname = parts[2]) \
                         ORDER BY arbor_regclass_n.nspname <> 'pg_catalog' LIMIT 1)"
                    );
                    if let Some(lookup) = expression(&lookup) {
                        *e = lookup;
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// PostgreSQL's OIDs of its catalog relations: the `tableoid` of their rows,
/// as `pg_description.classoid` and `pg_depend.classid` name them.
const CATALOG_RELATION_OIDS: &[(&str, i64)] = &[
    ("pg_aggregate", 2600),
    ("pg_am", 2601),
    ("pg_amop", 2602),
    ("pg_amproc", 2603),
    ("pg_attrdef", 2604),
    ("pg_attribute", 1249),
    ("pg_authid", 1260),
    ("pg_cast", 2605),
    ("pg_class", 1259),
    ("pg_collation", 3456),
    ("pg_constraint", 2606),
    ("pg_conversion", 2607),
    ("pg_database", 1262),
    ("pg_default_acl", 826),
    ("pg_depend", 2608),
    ("pg_description", 2609),
    ("pg_enum", 3501),
    ("pg_event_trigger", 3466),
    ("pg_extension", 3079),
    ("pg_foreign_data_wrapper", 2328),
    ("pg_foreign_server", 1417),
    ("pg_index", 2610),
    ("pg_inherits", 2611),
    ("pg_language", 2612),
    ("pg_namespace", 2615),
    ("pg_opclass", 2616),
    ("pg_operator", 2617),
    ("pg_opfamily", 2753),
    ("pg_policy", 3256),
    ("pg_proc", 1255),
    ("pg_publication", 6104),
    ("pg_rewrite", 2618),
    ("pg_sequence", 2224),
    ("pg_statistic_ext", 3381),
    ("pg_subscription", 6100),
    ("pg_tablespace", 1213),
    ("pg_transform", 3576),
    ("pg_trigger", 2620),
    ("pg_ts_config", 3602),
    ("pg_ts_dict", 3600),
    ("pg_ts_parser", 3601),
    ("pg_ts_template", 3764),
    ("pg_type", 1247),
];

/// `x.tableoid`, PostgreSQL's system column naming the relation a row
/// comes from, where `x` is a `pg_catalog` relation of
/// [`CATALOG_RELATION_OIDS`]: that relation's OID (psql's `\dd` joins
/// `pg_description` on it). The column is not in the relations' schemas,
/// so `SELECT *` does not show it, as in PostgreSQL.
fn table_oids(mut statement: Statement) -> Statement {
    use datafusion::sql::sqlparser::ast::{Select, TableFactor};
    fn relation_oid(t: &TableFactor) -> Option<(String, i64)> {
        let TableFactor::Table { name, alias, args: None, .. } = t else { return None };
        let parts: Vec<String> = name.0.iter().map(|p| p.to_string().to_ascii_lowercase()).collect();
        let relation = match parts.as_slice() {
            [r] => r,
            [schema, r] if schema == "pg_catalog" => r,
            _ => return None,
        };
        let oid = CATALOG_RELATION_OIDS.iter().find(|(n, _)| n == relation)?.1;
        Some((alias.as_ref().map_or(relation.clone(), |a| a.name.value.to_ascii_lowercase()), oid))
    }
    struct TableOids;
    impl VisitorMut for TableOids {
        type Break = ();
        // Inner selects first: their own relations are replaced before an
        // outer one of the same name could be taken for them.
        fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
            let relations: Vec<(String, i64)> =
                select.from.iter().flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation))).filter_map(relation_oid).collect();
            if relations.is_empty() {
                return ControlFlow::Continue(());
            }
            let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(select, |e| {
                let oid = match e {
                    Expr::CompoundIdentifier(parts) if parts.len() == 2 && parts[1].value.eq_ignore_ascii_case("tableoid") => {
                        let qualifier = parts[0].value.to_ascii_lowercase();
                        relations.iter().find(|(name, _)| *name == qualifier).map(|(_, oid)| *oid)
                    }
                    Expr::Identifier(ident) if ident.value.eq_ignore_ascii_case("tableoid") && relations.len() == 1 => Some(relations[0].1),
                    _ => None,
                };
                if let Some(oid) = oid {
                    *e = super::rewrite::number(&oid.to_string());
                }
                ControlFlow::<()>::Continue(())
            });
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut TableOids);
    statement
}

/// `SELECT current_user` names its column `current_user`, as PostgreSQL
/// does, though datafusion-pg-catalog plans it as `session_user`: an
/// unaliased `current_user` in a select list gets its own name as alias.
#[derive(Debug)]
struct NameCurrentUser;

impl SqlStatementRewriteRule for NameCurrentUser {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        struct Named;
        impl VisitorMut for Named {
            type Break = ();
            fn pre_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
                for item in &mut select.projection {
                    let SelectItem::UnnamedExpr(Expr::Function(f)) = item else { continue };
                    let bare = matches!(f.args, datafusion::sql::sqlparser::ast::FunctionArguments::None);
                    if bare && f.name.0.len() == 1 && f.name.to_string().eq_ignore_ascii_case("current_user") {
                        let expr = Expr::Function(f.clone());
                        *item = SelectItem::ExprWithAlias { expr, alias: datafusion::sql::sqlparser::ast::Ident::new("current_user") };
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let _ = statement.visit(&mut Named);
        statement
    }
}

/// Whether `statement` is one of the compatibility parser's empty stand-ins
/// for a whole query: `SELECT NULL::TEXT AS …, … WHERE false`, no FROM clause.
fn stand_in(statement: &Statement) -> bool {
    let Statement::Query(query) = statement else { return false };
    let SetExpr::Select(select) = query.body.as_ref() else { return false };
    select.from.is_empty() && matches!(&select.selection, Some(Expr::Value(v)) if v.value == Value::Boolean(false))
}

/// Whether `query` names a column of a table its own FROM clause does not
/// bind (nested subqueries count: their tables are not this query's).
pub(super) fn correlated(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else { return true };
    let bound: HashSet<String> = bound_names(select).into_iter().collect();
    let mut found = false;
    let _ = visit_expressions(query, |e| {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> String {
        let mut s = parse(sql).unwrap();
        assert_eq!(s.len(), 1);
        s.remove(0).to_string()
    }

    #[test]
    fn a_correlated_subquery_in_a_select_list_is_kept() {
        assert_eq!(
            one("SELECT (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = a.attrelid) AS t FROM pg_catalog.pg_attribute a"),
            "SELECT (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = a.attrelid) AS t FROM pg_catalog.pg_attribute a"
        );
        // A parameter is not a correlation.
        assert_eq!(one("SELECT (SELECT c.relname FROM pg_class c WHERE c.oid = $1)"), "SELECT (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = $1)");
    }

    #[test]
    fn a_regtype_as_text_is_its_name() {
        assert_eq!(one("SELECT t.typelem::regtype::text FROM pg_type t"), "SELECT arbor_regtype_text(t.typelem::regtype)::TEXT FROM pg_catalog.pg_type t");
        // The literal is still resolved to its OID inside.
        assert!(one("SELECT 'int4'::regtype::text").starts_with("SELECT arbor_regtype_text((SELECT "), "{}", one("SELECT 'int4'::regtype::text"));
        // Other casts of a regtype, and casts to text of other things, stay.
        assert_eq!(one("SELECT t.typelem::regtype::int8, t.typname::text FROM pg_type t"), "SELECT t.typelem::regtype::INT8, t.typname::TEXT FROM pg_catalog.pg_type t");
    }

    #[test]
    fn a_regclass_as_text_is_a_lookup_of_its_name() {
        let column = one("SELECT c.oid::regclass::text FROM pg_class c");
        assert!(column.starts_with("SELECT arbor_regclass_text(COALESCE((SELECT CASE WHEN arbor_regclass_n.nspname IN ('pg_catalog', current_schema())"), "{column}");
        assert!(column.contains("WHERE arbor_regclass_c.oid = (c.oid)), CAST(CAST((c.oid) AS BIGINT) AS TEXT)), 'oid')::TEXT FROM pg_catalog.pg_class c"), "{column}");
        // A name is found in pg_catalog first.
        let name = one("SELECT 'pg_class'::regclass");
        assert!(name.contains("arbor_regclass_n.nspname IN ('pg_catalog', current_schema())"), "{name}");
        assert!(name.contains("ORDER BY arbor_regclass_n.nspname <> 'pg_catalog' LIMIT 1"), "{name}");
    }

    #[test]
    fn tableoid_of_a_catalog_relation_is_its_oid() {
        assert_eq!(
            one("SELECT c.oid, c.tableoid, tableoid FROM pg_catalog.pg_constraint c"),
            "SELECT c.oid, 2606, 2606 FROM pg_catalog.pg_constraint c"
        );
        // Each select's own relations; an unknown qualifier stays.
        assert_eq!(
            one("SELECT o.tableoid, (SELECT o.tableoid FROM pg_rewrite o), x.tableoid FROM pg_opclass o, t x"),
            "SELECT 2616, (SELECT 2618 FROM pg_catalog.pg_rewrite o), x.tableoid FROM pg_catalog.pg_opclass o, t x"
        );
    }

    #[test]
    fn arbor_relations_are_found_in_pg_catalog() {
        assert_eq!(one("SELECT usename FROM pg_user"), "SELECT usename FROM pg_catalog.pg_user");
    }

    #[test]
    fn current_user_keeps_its_name() {
        assert_eq!(one("SELECT current_user"), "SELECT session_user AS current_user");
        assert_eq!(one("SELECT current_user AS u, upper(current_user)"), "SELECT session_user AS u, upper(session_user)");
    }

    #[test]
    fn an_uncorrelated_subquery_is_kept_as_written() {
        assert_eq!(one("SELECT (SELECT nspname FROM pg_namespace)"), "SELECT (SELECT nspname FROM pg_catalog.pg_namespace)");
    }

    #[test]
    fn statements_without_subqueries_are_the_compatibility_parsers() {
        for sql in ["SELECT 1", "SELECT relname FROM pg_class WHERE oid = 1", "SHOW search_path"] {
            assert_eq!(parse(sql).unwrap(), parsers().compat.parse(sql).unwrap());
        }
    }

    #[test]
    fn whole_client_queries_it_answers_empty_stay_so() {
        let pgcli = "SELECT n.nspname schema_name, t.typname type_name FROM pg_catalog.pg_type t INNER JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
            WHERE ( t.typrelid = 0 OR ( SELECT c.relkind = 'c' FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid ) ) \
            AND NOT EXISTS( SELECT 1 FROM pg_catalog.pg_type el WHERE el.oid = t.typelem AND el.typarray = t.oid ) \
            AND n.nspname <> 'pg_catalog' AND n.nspname <> 'information_schema' ORDER BY 1, 2;";
        assert_eq!(one(pgcli), "SELECT NULL::TEXT AS schema_name, NULL::TEXT AS type_name WHERE false");
    }

    #[test]
    fn a_subquery_it_swaps_for_an_empty_string_is_kept() {
        let grafana = "SELECT quote_ident(column_name) FROM information_schema.columns WHERE quote_ident(table_schema) IN (SELECT \
            CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1), \
            array_upper(string_to_array(current_setting('search_path'),','),1)) as i, string_to_array(current_setting('search_path'),',') s)";
        assert_ne!(parsers().compat.parse(grafana).unwrap()[0].to_string(), one(grafana));
        assert!(one(grafana).contains("generate_series(array_lower("), "{}", one(grafana));
    }
}

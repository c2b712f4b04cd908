//! TSQL, IoTDB's tree dialect: `lexer` → `parser` → typed `ast`, and the
//! `$n` parameters of the extended protocol (`params`). Nothing here runs
//! anything.

pub mod ast;
mod insert;
mod lexer;
mod params;
mod parser;

pub use params::{bind, parameter_count};
pub use parser::{parse, parse_reading_clock};
pub(crate) use insert::{scan as scan_insert, RawInsert};
pub use insert::{ParamTexts, PreparedInsert};
pub(crate) use parser::{exact_time_range, DEVICE_KEY, TIMESERIES_KEY};

use lexer::{tokenize, Tok};

/// Split `sql` into statements at `;` outside quotes (slices of `sql`).
pub fn split_statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote: Option<u8> = None;
    // Quotes and `;` are ASCII: bytes are enough, and slices stay on char boundaries.
    for (i, c) in sql.bytes().enumerate() {
        match (quote, c) {
            (None, b'\'' | b'"' | b'`') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, b';') => {
                out.push(&sql[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&sql[start..]);
    out.into_iter().filter(|s| !crate::query_text::is_empty_query(s)).collect()
}

/// Whether `sql` starts `INSERT INTO root` (any case, white space between),
/// read without tokenising the rest: an ingest message is mostly values.
fn is_tree_insert(sql: &str) -> bool {
    let mut words = sql.split_ascii_whitespace();
    let (Some(insert), Some(into), Some(target)) = (words.next(), words.next(), words.next()) else { return false };
    let root = target.get(..4).is_some_and(|r| r.eq_ignore_ascii_case("root")) && target[4..].starts_with(['.', '(']);
    insert.eq_ignore_ascii_case("insert") && into.eq_ignore_ascii_case("into") && root
}

/// `sql` without a leading `EXPLAIN`, if it has one.
pub fn strip_explain(sql: &str) -> Option<&str> {
    let t = sql.trim_start();
    let head = t.get(..7)?;
    (head.eq_ignore_ascii_case("explain") && t[7..].starts_with(char::is_whitespace)).then(|| &t[7..])
}

/// Whether the TSQL surface owns this statement (vs PostgreSQL SQL).
pub fn is_tsql(sql: &str) -> bool {
    if is_tree_insert(sql) {
        return true;
    }
    let neutral;
    let sql = if sql.contains('$') {
        neutral = params::neutral(sql);
        neutral.as_str()
    } else {
        sql
    };
    let Ok(toks) = tokenize(sql) else {
        // Unbalanced quotes etc.: let the SQL surface report it.
        return false;
    };
    let toks: Vec<Tok> = toks.into_iter().map(|(t, _)| t).collect();
    let w = |i: usize| match toks.get(i) {
        Some(Tok::Word(w)) => w.to_ascii_lowercase(),
        _ => String::new(),
    };
    // The first `kw` outside parentheses (not `SUBSTRING(s FROM 1)`'s) is followed by `root`.
    let root_after = |kw: &str| {
        let mut depth = 0i32;
        toks.iter()
            .position(|t| {
                match t {
                    Tok::Sym("(") => depth += 1,
                    Tok::Sym(")") => depth -= 1,
                    _ => {}
                }
                depth == 0 && matches!(t, Tok::Word(x) if x.eq_ignore_ascii_case(kw))
            })
            .is_some_and(|i| matches!(toks.get(i + 1), Some(Tok::Word(r)) if r.eq_ignore_ascii_case("root")))
    };
    // The queries: a SELECT over paths, or a listing of the series tree.
    let query_at = |i: usize| match w(i).as_str() {
        "select" => root_after("from"),
        "show" => matches!(w(i + 1).as_str(), "databases" | "devices" | "timeseries" | "child" | "storage" | "ttl") || (w(i + 1) == "all" && w(i + 2) == "ttl"),
        "count" => matches!(w(i + 1).as_str(), "timeseries" | "devices" | "databases" | "nodes"),
        _ => false,
    };
    match w(0).as_str() {
        "explain" => query_at(1),
        "create" => matches!(w(1).as_str(), "database" | "timeseries" | "aligned" | "storage"),
        "drop" => ((w(1) == "database" || w(1) == "timeseries") && root_after(&w(1))) || w(1) == "storage",
        "delete" => w(1) == "timeseries" || w(1) == "database" || w(1) == "storage" || (w(1) == "from" && root_after("from")),
        "show" | "count" | "select" => query_at(0),
        "insert" => root_after("into"),
        "flush" => true,
        "set" | "unset" => w(1) == "ttl",
        "load" => matches!(toks.get(1), Some(Tok::Str(_))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        for q in [
            "CREATE DATABASE root.ln",
            "create timeseries root.a.b.c with datatype=INT32",
            "INSERT INTO root.a.b(timestamp, s) VALUES (1, 2)",
            "select s1 from root.sg.d1",
            "SHOW TIMESERIES",
            "COUNT DEVICES root.**",
            "EXPLAIN SHOW CHILD PATHS root.ln",
            "SET TTL TO root.ln 3600000",
            "unset ttl from root.ln",
            "SHOW ALL TTL",
            "EXPLAIN select s1 from root.sg.d1",
            "DELETE FROM root.a.b.c WHERE time < 5",
            "FLUSH",
            "LOAD '/tmp/x.tsfile'",
        ] {
            assert!(is_tsql(q), "{q}");
        }
        for q in ["SELECT 1", "SELECT * FROM \"root.a.b\"", "INSERT INTO \"root.a.b\"(time, s) VALUES (now(), 1)", "SHOW search_path", "EXPLAIN SHOW search_path", "BEGIN", "SET x = 1"] {
            assert!(!is_tsql(q), "{q}");
        }
        for q in ["SHOW ALL", "SET timezone = 'UTC'"] {
            assert!(!is_tsql(q), "{q}");
        }
    }

    #[test]
    fn statements_split_outside_quotes() {
        assert_eq!(split_statements("select 1; insert into root.a.b(time, s) values (1, ';');"), vec!["select 1", " insert into root.a.b(time, s) values (1, ';')"]);
    }
}

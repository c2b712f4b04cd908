//! A compact TSQL front end: tokenizer, parser and dispatch for the core
//! statements (schema, INSERT, raw and aggregate SELECT, SHOW/COUNT,
//! DELETE, FLUSH) onto the operations in [`super`].
//!
//! Hand-written because TSQL's tokens (dotted paths with `*`/`**`,
//! back-quoted nodes, unquoted ISO-8601 times, durations) do not fit a SQL
//! tokenizer. Errors name the offending token (SQLSTATE 42601).

use std::collections::BTreeMap;

use catalog::{PathPattern, SeriesSpec};
use storage::TimeRange;
use tsfile::{Compression, DataType, Encoding, Value};

use super::{AggFn, Literal, SeriesRef};
pub(crate) use crate::time::{parse_duration, parse_iso};
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::output::QueryOutput;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Number(String),
    Time(String),
    Str(String),
    Sym(&'static str),
}

fn tokenize(sql: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(Error::Syntax(format!("unterminated string starting with {c}{s}"))),
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        s.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c == '`' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(Error::Syntax("unterminated back-quoted name".into())),
                    Some('`') if chars.get(i + 1) == Some(&'`') => {
                        s.push('`');
                        i += 2;
                    }
                    Some('`') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Quoted(s));
        } else if c.is_ascii_digit() {
            // An ISO-8601 time starts with 4 digits and '-': take it whole.
            let is_time = i + 4 < chars.len() && chars[i..i + 4].iter().all(|d| d.is_ascii_digit()) && chars[i + 4] == '-';
            let start = i;
            if is_time {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || ":.-+".contains(chars[i])) {
                    i += 1;
                }
                // IoTDB also takes a space between date and time: `2024-03-01 05:00:00`.
                let clock_follows = i - start == 10
                    && chars.get(i) == Some(&' ')
                    && chars.get(i + 1..i + 4).is_some_and(|t| t[0].is_ascii_digit() && t[1].is_ascii_digit() && t[2] == ':');
                if clock_follows {
                    i += 1;
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || ":.-+".contains(chars[i])) {
                        i += 1;
                    }
                }
                out.push(Tok::Time(chars[start..i].iter().collect()));
            } else {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                    // 1e-3 style exponents
                    if (chars[i] == 'e' || chars[i] == 'E') && matches!(chars.get(i + 1), Some('-') | Some('+')) {
                        i += 1;
                    }
                    i += 1;
                }
                out.push(Tok::Number(chars[start..i].iter().collect()));
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match two.as_str() {
                ">=" => Some(">="),
                "<=" => Some("<="),
                "!=" => Some("!="),
                "<>" => Some("!="),
                "==" => Some("="),
                "**" => Some("**"),
                _ => None,
            };
            if let Some(s) = sym {
                out.push(Tok::Sym(s));
                i += 2;
                continue;
            }
            let s = match c {
                '(' => "(",
                ')' => ")",
                ',' => ",",
                '.' => ".",
                '*' => "*",
                '=' => "=",
                '>' => ">",
                '<' => "<",
                '-' => "-",
                '+' => "+",
                ';' => ";",
                '[' => "[",
                ']' => "]",
                _ => return Err(Error::Syntax(format!("unexpected character {c:?}"))),
            };
            out.push(Tok::Sym(s));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    now_ms: i64,
}

fn show(t: Option<&Tok>) -> String {
    match t {
        None => "end of statement".into(),
        Some(Tok::Word(w)) | Some(Tok::Number(w)) | Some(Tok::Time(w)) => format!("\"{w}\""),
        Some(Tok::Quoted(w)) => format!("`{w}`"),
        Some(Tok::Str(s)) => format!("'{s}'"),
        Some(Tok::Sym(s)) => format!("\"{s}\""),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn err<T>(&self, expected: &str) -> Result<T> {
        Err(Error::Syntax(format!("expected {expected} at {}", show(self.peek()))))
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn kw(&mut self, kw: &str) -> Result<()> {
        if self.eat_kw(kw) { Ok(()) } else { self.err(kw) }
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        let yes = matches!(self.peek(), Some(Tok::Sym(x)) if *x == s);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn sym(&mut self, s: &str) -> Result<()> {
        if self.eat_sym(s) { Ok(()) } else { self.err(&format!("\"{s}\"")) }
    }

    fn word(&mut self) -> Result<String> {
        match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Ok(w),
            _ => {
                self.pos -= 1;
                self.err("a name")
            }
        }
    }

    fn usize(&mut self) -> Result<usize> {
        match self.next() {
            Some(Tok::Number(n)) => n.parse().map_err(|_| Error::Syntax(format!("expected a count at \"{n}\""))),
            _ => {
                self.pos -= 1;
                self.err("a number")
            }
        }
    }

    /// A path or pattern: node ('.' node)*; nodes may be `*`, `**`, `d*`, numbers, back-quoted.
    fn path(&mut self) -> Result<String> {
        let mut text = String::new();
        loop {
            let node = match self.next() {
                Some(Tok::Word(w)) => {
                    let mut w = w;
                    if self.eat_sym("*") {
                        w.push('*');
                    }
                    w
                }
                Some(Tok::Number(n)) => n,
                Some(Tok::Quoted(q)) => format!("`{}`", q.replace('`', "``")),
                Some(Tok::Sym("*")) => "*".into(),
                Some(Tok::Sym("**")) => "**".into(),
                _ => {
                    self.pos -= 1;
                    return self.err("a path");
                }
            };
            text.push_str(&node);
            if !self.eat_sym(".") {
                return Ok(text);
            }
            text.push('.');
        }
    }

    fn paths(&mut self) -> Result<Vec<String>> {
        let mut out = vec![self.path()?];
        while self.eat_sym(",") {
            out.push(self.path()?);
        }
        Ok(out)
    }

    /// Zero or more comma-separated paths.
    fn optional_paths(&mut self) -> Result<Vec<String>> {
        match self.optional_path()? {
            None => Ok(Vec::new()),
            Some(first) => {
                let mut out = vec![first];
                while self.eat_sym(",") {
                    out.push(self.path()?);
                }
                Ok(out)
            }
        }
    }

    fn optional_path(&mut self) -> Result<Option<String>> {
        match self.peek() {
            Some(Tok::Word(w)) if !["limit", "offset", "group"].contains(&w.to_ascii_lowercase().as_str()) => Ok(Some(self.path()?)),
            Some(Tok::Quoted(_)) => Ok(Some(self.path()?)),
            _ => Ok(None),
        }
    }

    fn limit_offset(&mut self) -> Result<(Option<usize>, usize)> {
        let mut limit = None;
        let mut offset = 0;
        loop {
            if self.eat_kw("limit") {
                limit = Some(self.usize()?);
            } else if self.eat_kw("offset") {
                offset = self.usize()?;
            } else {
                return Ok((limit, offset));
            }
        }
    }

    fn done(&mut self) -> Result<()> {
        while self.eat_sym(";") {}
        match self.peek() {
            None => Ok(()),
            Some(_) => self.err("end of statement"),
        }
    }

    /// A time: integer, ISO-8601, now() [± duration].
    fn time(&mut self) -> Result<i64> {
        let base = match self.next() {
            Some(Tok::Number(n)) => n.parse::<i64>().map_err(|_| Error::InvalidTime(format!("{n} is not a time")))?,
            Some(Tok::Sym("-")) => match self.next() {
                Some(Tok::Number(n)) => -n.parse::<i64>().map_err(|_| Error::InvalidTime(format!("-{n} is not a time")))?,
                _ => return self.err("a time"),
            },
            Some(Tok::Time(t)) | Some(Tok::Str(t)) => parse_iso(&t)?,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("now") => {
                self.sym("(")?;
                self.sym(")")?;
                self.now_ms
            }
            _ => {
                self.pos -= 1;
                return self.err("a time");
            }
        };
        if self.eat_sym("-") {
            return Ok(base - self.duration()?);
        }
        if self.eat_sym("+") {
            return Ok(base + self.duration()?);
        }
        Ok(base)
    }

    fn duration(&mut self) -> Result<i64> {
        match self.next() {
            Some(Tok::Number(n)) => parse_duration(&n),
            _ => {
                self.pos -= 1;
                self.err("a duration such as 1d")
            }
        }
    }

    fn literal(&mut self) -> Result<Literal> {
        Ok(match self.next() {
            Some(Tok::Number(n)) => number_literal(n, false)?,
            Some(Tok::Sym("-")) => match self.next() {
                Some(Tok::Number(n)) => number_literal(n, true)?,
                _ => return self.err("a number"),
            },
            Some(Tok::Sym("+")) => match self.next() {
                Some(Tok::Number(n)) => number_literal(n, false)?,
                _ => return self.err("a number"),
            },
            Some(Tok::Str(s)) => Literal::Text(s),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Boolean(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Boolean(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("x") => match self.next() {
                Some(Tok::Str(hex)) => Literal::Blob(parse_hex(&hex)?),
                _ => return self.err("a quoted hex blob"),
            },
            Some(Tok::Time(t)) => Literal::Text(t),
            _ => {
                self.pos -= 1;
                return self.err("a value");
            }
        })
    }
}

fn number_literal(n: String, negative: bool) -> Result<Literal> {
    let text = if negative { format!("-{n}") } else { n };
    if text.parse::<i128>().is_ok() {
        Ok(Literal::Integer(text))
    } else if text.parse::<f64>().is_ok() {
        Ok(Literal::Float(text))
    } else {
        Err(Error::InvalidValue(format!("{text} is not a number")))
    }
}

fn parse_hex(s: &str) -> Result<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return Err(Error::InvalidValue(format!("X'{s}' has an odd number of hex digits")));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| Error::InvalidValue(format!("X'{s}' is not hex"))))
        .collect()
}

/// A WHERE expression.
#[derive(Debug, Clone)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// time OP t
    Time(&'static str, i64),
    /// path OP literal
    Value(String, &'static str, Literal),
    IsNull(String, bool),
}

impl Parser {
    fn expr(&mut self) -> Result<Expr> {
        let mut left = self.and_expr()?;
        while self.eat_kw("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr> {
        let mut left = self.unary()?;
        while self.eat_kw("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat_sym("(") {
            let e = self.expr()?;
            self.sym(")")?;
            return Ok(e);
        }
        if self.is_kw("time") || self.is_kw("timestamp") {
            self.pos += 1;
            if self.eat_kw("between") {
                let lo = self.time()?;
                self.kw("and")?;
                let hi = self.time()?;
                return Ok(Expr::And(Box::new(Expr::Time(">=", lo)), Box::new(Expr::Time("<=", hi))));
            }
            let op = self.comparison()?;
            return Ok(Expr::Time(op, self.time()?));
        }
        let path = self.path()?;
        if self.eat_kw("is") {
            let not = self.eat_kw("not");
            self.kw("null")?;
            return Ok(Expr::IsNull(path, !not));
        }
        if self.eat_kw("between") {
            let lo = self.literal()?;
            self.kw("and")?;
            let hi = self.literal()?;
            return Ok(Expr::And(Box::new(Expr::Value(path.clone(), ">=", lo)), Box::new(Expr::Value(path, "<=", hi))));
        }
        let op = self.comparison()?;
        Ok(Expr::Value(path, op, self.literal()?))
    }

    fn comparison(&mut self) -> Result<&'static str> {
        for op in [">=", "<=", "!=", "=", ">", "<"] {
            if self.eat_sym(op) {
                return Ok(op);
            }
        }
        self.err("a comparison")
    }
}

/// The time range a WHERE clause implies (only through ANDed time comparisons).
fn time_bounds(e: &Expr) -> TimeRange {
    match e {
        Expr::And(a, b) => {
            let (x, y) = (time_bounds(a), time_bounds(b));
            TimeRange::new(x.start.max(y.start), x.end.min(y.end))
        }
        Expr::Time(op, t) => match *op {
            ">" => TimeRange::new(t.saturating_add(1), i64::MAX),
            ">=" => TimeRange::new(*t, i64::MAX),
            "<" => TimeRange::new(i64::MIN, t.saturating_sub(1)),
            "<=" => TimeRange::new(i64::MIN, *t),
            "=" => TimeRange::new(*t, *t),
            _ => TimeRange::ALL,
        },
        _ => TimeRange::ALL,
    }
}

/// The time range `e` selects when it is exactly one (ANDed `<`, `<=`,
/// `>`, `>=`, `=` on time); `None` when rows must be filtered one by one
/// (`!=`, OR, NOT, value predicates).
fn exact_range(e: &Expr) -> Option<TimeRange> {
    match e {
        Expr::And(a, b) => {
            let (x, y) = (exact_range(a)?, exact_range(b)?);
            Some(TimeRange::new(x.start.max(y.start), x.end.min(y.end)))
        }
        Expr::Time(op, _) if *op != "!=" => Some(time_bounds(e)),
        _ => None,
    }
}

/// Whether `e` needs evaluating row by row.
fn needs_row_filter(e: &Expr) -> bool {
    exact_range(e).is_none()
}

fn compare(op: &str, ord: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        "=" => ord == Equal,
        "!=" => ord != Equal,
        ">" => ord == Greater,
        ">=" => ord != Less,
        "<" => ord == Less,
        "<=" => ord != Greater,
        _ => false,
    }
}

/// Evaluate `e` for one row; `column` maps a WHERE path to a row index.
fn eval(e: &Expr, time: i64, row: &[Option<Value>], column: &dyn Fn(&str) -> Option<usize>) -> Result<bool> {
    Ok(match e {
        Expr::And(a, b) => eval(a, time, row, column)? && eval(b, time, row, column)?,
        Expr::Or(a, b) => eval(a, time, row, column)? || eval(b, time, row, column)?,
        Expr::Not(a) => !eval(a, time, row, column)?,
        Expr::Time(op, t) => compare(op, time.cmp(t)),
        Expr::IsNull(p, want_null) => {
            let v = column(p).and_then(|i| row[i].as_ref());
            v.is_none() == *want_null
        }
        Expr::Value(p, op, lit) => {
            let Some(v) = column(p).and_then(|i| row[i].as_ref()) else { return Ok(false) };
            match (v, lit) {
                (Value::Binary(_), Literal::Integer(_) | Literal::Float(_)) => {
                    return Err(Error::TypeMismatch(format!("cannot compare text series {p} with the number {lit:?}")))
                }
                (Value::Binary(b), Literal::Text(s)) => compare(op, b.as_slice().cmp(s.as_bytes())),
                (Value::Boolean(b), Literal::Boolean(l)) => compare(op, b.cmp(l)),
                (v, Literal::Integer(s) | Literal::Float(s)) => match (super::as_f64(v), s.parse::<f64>()) {
                    (Some(x), Ok(y)) => x.partial_cmp(&y).is_some_and(|o| compare(op, o)),
                    _ => false,
                },
                _ => return Err(Error::TypeMismatch(format!("cannot compare {p} with {lit:?}"))),
            }
        }
    })
}

/// Split `sql` into statements at `;` outside quotes.
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match (quote, c) {
            (None, '\'' | '"' | '`') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, ';') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().filter(|s| !crate::session::is_empty_query(s)).collect()
}

/// Whether the TSQL surface owns this statement (vs PostgreSQL SQL).
pub fn is_tsql(sql: &str) -> bool {
    let neutral;
    let sql = if sql.contains('$') {
        neutral = super::params::neutral(sql);
        neutral.as_str()
    } else {
        sql
    };
    let Ok(toks) = tokenize(sql) else {
        // Unbalanced quotes etc.: let the SQL surface report it.
        return false;
    };
    let w = |i: usize| match toks.get(i) {
        Some(Tok::Word(w)) => w.to_ascii_lowercase(),
        _ => String::new(),
    };
    let root_after = |kw: &str| {
        toks.iter()
            .position(|t| matches!(t, Tok::Word(x) if x.eq_ignore_ascii_case(kw)))
            .is_some_and(|i| matches!(toks.get(i + 1), Some(Tok::Word(r)) if r.eq_ignore_ascii_case("root")))
    };
    match w(0).as_str() {
        "create" => matches!(w(1).as_str(), "database" | "timeseries" | "aligned" | "storage"),
        "drop" => ((w(1) == "database" || w(1) == "timeseries") && root_after(&w(1))) || w(1) == "storage",
        "delete" => w(1) == "timeseries" || w(1) == "database" || w(1) == "storage" || (w(1) == "from" && root_after("from")),
        "show" => matches!(w(1).as_str(), "databases" | "devices" | "timeseries" | "child" | "storage"),
        "count" => matches!(w(1).as_str(), "timeseries" | "devices" | "databases"),
        "insert" => root_after("into"),
        "select" => root_after("from"),
        "flush" => true,
        _ => false,
    }
}

/// Execute TSQL text (one or more statements).
pub fn execute(instance: &Instance, sql: &str, now_ms: i64) -> Result<Vec<QueryOutput>> {
    split_statements(sql).iter().map(|s| execute_one(instance, s, now_ms)).collect()
}

fn execute_one(instance: &Instance, sql: &str, now_ms: i64) -> Result<QueryOutput> {
    let mut p = Parser { toks: tokenize(sql)?, pos: 0, now_ms };
    let first = p.word()?.to_ascii_lowercase();
    match first.as_str() {
        "create" => {
            if p.eat_kw("database") || (p.eat_kw("storage") && p.eat_kw("group")) {
                let path = p.path()?;
                p.done()?;
                super::create_database(instance, &path)
            } else if p.eat_kw("aligned") {
                p.kw("timeseries")?;
                let device = p.path()?;
                p.sym("(")?;
                let mut series = Vec::new();
                loop {
                    let name = p.word()?;
                    let t: DataType = p.word()?.parse().map_err(|e: tsfile::Error| Error::Syntax(e.to_string()))?;
                    let spec = series_options(&mut p, SeriesSpec::new(t))?;
                    series.push((name, spec));
                    if !p.eat_sym(",") {
                        break;
                    }
                }
                p.sym(")")?;
                p.done()?;
                super::create_aligned_timeseries(instance, &device, series)
            } else {
                p.kw("timeseries")?;
                let path = p.path()?;
                let alias = if p.eat_sym("(") {
                    let a = p.word()?;
                    p.sym(")")?;
                    Some(a)
                } else {
                    None
                };
                p.eat_kw("with");
                let t = if p.is_kw("datatype") {
                    p.pos += 1;
                    p.sym("=")?;
                    let t = p.word()?;
                    p.eat_sym(",");
                    t
                } else {
                    p.word()?
                };
                let t: DataType = t.parse().map_err(|e: tsfile::Error| Error::Syntax(e.to_string()))?;
                let mut spec = series_options(&mut p, SeriesSpec::new(t))?;
                spec.alias = alias;
                p.done()?;
                super::create_timeseries(instance, &path, spec)
            }
        }
        "drop" | "delete" if p.is_kw("database") || p.is_kw("storage") => {
            p.pos += 1;
            p.eat_kw("group");
            let paths = p.paths()?;
            p.done()?;
            super::drop_databases(instance, &paths)
        }
        "drop" | "delete" if p.eat_kw("timeseries") => {
            let paths = p.paths()?;
            p.done()?;
            super::delete_timeseries(instance, &paths)
        }
        "delete" => {
            p.kw("from")?;
            let paths = p.paths()?;
            let range = if p.eat_kw("where") {
                let e = p.expr()?;
                // Only ANDed time comparisons (no !=, OR, NOT, values): anything
                // else would delete more than it names.
                exact_range(&e).ok_or_else(|| Error::Unsupported("DELETE ... WHERE supports time ranges only (<, <=, >, >=, =, BETWEEN joined by AND)".into()))?
            } else {
                TimeRange::ALL
            };
            p.done()?;
            super::delete_data(instance, &paths, range)
        }
        "show" => {
            if p.eat_kw("databases") || (p.eat_kw("storage") && p.eat_kw("group")) {
                let pat = p.optional_path()?;
                p.done()?;
                super::show_databases(instance, pat.as_deref())
            } else if p.eat_kw("devices") {
                let pat = p.optional_path()?;
                let (limit, offset) = p.limit_offset()?;
                p.done()?;
                super::show_devices(instance, pat.as_deref(), limit, offset)
            } else if p.eat_kw("timeseries") {
                let pat = p.optional_path()?;
                let (limit, offset) = p.limit_offset()?;
                p.done()?;
                super::show_timeseries(instance, pat.as_deref(), limit, offset)
            } else if p.eat_kw("child") {
                let paths = p.eat_kw("paths");
                if !paths {
                    p.kw("nodes")?;
                }
                let pat = p.optional_path()?;
                p.done()?;
                if paths {
                    super::show_child_paths(instance, pat.as_deref())
                } else {
                    super::show_child_nodes(instance, pat.as_deref())
                }
            } else {
                p.err("DATABASES, DEVICES, TIMESERIES or CHILD")
            }
        }
        "count" => {
            if p.eat_kw("timeseries") {
                let pat = p.optional_path()?;
                let level = if p.eat_kw("group") {
                    p.kw("by")?;
                    p.kw("level")?;
                    p.sym("=")?;
                    Some(p.usize()?)
                } else {
                    None
                };
                p.done()?;
                super::count_timeseries(instance, pat.as_deref(), level)
            } else if p.eat_kw("devices") {
                let pat = p.optional_path()?;
                p.done()?;
                super::count_devices(instance, pat.as_deref())
            } else if p.eat_kw("databases") {
                let pat = p.optional_path()?;
                p.done()?;
                super::count_databases(instance, pat.as_deref())
            } else {
                p.err("TIMESERIES, DEVICES or DATABASES")
            }
        }
        "insert" => insert(instance, &mut p),
        "select" => select(instance, &mut p),
        "flush" => {
            let databases = p.optional_paths()?;
            p.done()?;
            super::flush(instance, &databases)
        }
        other => Err(Error::Syntax(format!("unknown TSQL statement \"{other}\""))),
    }
}

/// `ENCODING=…, COMPRESSOR=…, TAGS(…), ATTRIBUTES(…)` in any order.
fn series_options(p: &mut Parser, mut spec: SeriesSpec) -> Result<SeriesSpec> {
    loop {
        // A comma continues the options only when an option follows (in
        // CREATE ALIGNED TIMESERIES it may start the next series instead).
        let save = p.pos;
        if p.eat_sym(",") && !["encoding", "compressor", "compression", "tags", "attributes"].iter().any(|k| p.is_kw(k)) {
            p.pos = save;
            return Ok(spec);
        }
        if p.eat_kw("encoding") {
            p.sym("=")?;
            let e: Encoding = p.word()?.parse().map_err(|e: tsfile::Error| Error::Syntax(e.to_string()))?;
            spec.encoding = Some(e);
        } else if p.eat_kw("compressor") || p.eat_kw("compression") {
            p.sym("=")?;
            let c: Compression = p.word()?.parse().map_err(|e: tsfile::Error| Error::Syntax(e.to_string()))?;
            spec.compression = Some(c);
        } else if p.is_kw("tags") || p.is_kw("attributes") {
            let tags = p.is_kw("tags");
            p.pos += 1;
            let map = key_values(p)?;
            if tags {
                spec.tags = map;
            } else {
                spec.attributes = map;
            }
        } else {
            return Ok(spec);
        }
    }
}

fn key_values(p: &mut Parser) -> Result<BTreeMap<String, String>> {
    p.sym("(")?;
    let mut map = BTreeMap::new();
    loop {
        let k = p.word()?;
        p.sym("=")?;
        let v = match p.next() {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) | Some(Tok::Number(w)) | Some(Tok::Quoted(w)) => w,
            _ => return p.err("a value"),
        };
        map.insert(k, v);
        if !p.eat_sym(",") {
            break;
        }
    }
    p.sym(")")?;
    Ok(map)
}

fn insert(instance: &Instance, p: &mut Parser) -> Result<QueryOutput> {
    p.kw("into")?;
    let device = p.path()?;
    p.sym("(")?;
    if !(p.eat_kw("timestamp") || p.eat_kw("time")) {
        return p.err("timestamp as the first column");
    }
    let mut measurements = Vec::new();
    while p.eat_sym(",") {
        measurements.push(p.word()?);
    }
    p.sym(")")?;
    let aligned = p.eat_kw("aligned");
    p.kw("values")?;
    let mut rows = Vec::new();
    loop {
        let row_no = rows.len() + 1;
        p.sym("(")?;
        let t = p.time().map_err(|e| match e {
            Error::InvalidTime(m) => Error::InvalidTime(format!("row {row_no}: {m}")),
            other => other,
        })?;
        let mut values = Vec::new();
        while p.eat_sym(",") {
            values.push(p.literal()?);
        }
        p.sym(")")?;
        rows.push((t, values));
        if !p.eat_sym(",") {
            break;
        }
    }
    p.done()?;
    super::insert(instance, &device, aligned, &measurements, &rows)
}

enum Item {
    Star,
    Path(String),
    Agg(AggFn, Option<String>),
}

fn select(instance: &Instance, p: &mut Parser) -> Result<QueryOutput> {
    let mut items = Vec::new();
    loop {
        if p.eat_sym("*") {
            items.push(Item::Star);
        } else if p.eat_sym("**") {
            items.push(Item::Path("**".into()));
        } else if let (Some(Tok::Word(w)), Some(Tok::Sym("("))) = (p.toks.get(p.pos).cloned(), p.toks.get(p.pos + 1)) {
            let f = AggFn::parse(&w).ok_or_else(|| Error::Syntax(format!("unknown function \"{w}\"")))?;
            p.pos += 2;
            let arg = if p.eat_sym("*") { None } else { Some(p.path()?) };
            p.sym(")")?;
            items.push(Item::Agg(f, arg));
        } else {
            items.push(Item::Path(p.path()?));
        }
        if !p.eat_sym(",") {
            break;
        }
    }
    p.kw("from")?;
    let prefixes = p.paths()?;
    let filter = if p.eat_kw("where") { Some(p.expr()?) } else { None };
    let mut desc = false;
    if p.eat_kw("order") {
        p.kw("by")?;
        if !(p.eat_kw("time") || p.eat_kw("timestamp")) {
            return p.err("TIME after ORDER BY");
        }
        desc = p.eat_kw("desc");
        if !desc {
            p.eat_kw("asc");
        }
    }
    let (limit, offset) = p.limit_offset()?;
    p.done()?;

    // Resolve select items against the FROM prefixes: suffix paths are appended.
    let full = |suffix: &str| -> Vec<String> {
        if suffix.starts_with("root") { vec![suffix.to_string()] } else { prefixes.iter().map(|pre| format!("{pre}.{suffix}")).collect() }
    };
    let pattern_of = |t: &str| PathPattern::parse(t).map_err(Error::from);
    let range = filter.as_ref().map(time_bounds).unwrap_or(TimeRange::ALL);
    let aggregates: Vec<&Item> = items.iter().filter(|i| matches!(i, Item::Agg(..))).collect();
    if !aggregates.is_empty() {
        if aggregates.len() != items.len() {
            return Err(Error::Syntax("cannot mix aggregates and raw paths without GROUP BY".into()));
        }
        let mut pairs: Vec<(AggFn, SeriesRef)> = Vec::new();
        for item in &items {
            if let Item::Agg(f, arg) = item {
                let patterns: Vec<PathPattern> = full(arg.as_deref().unwrap_or("*")).iter().map(|t| pattern_of(t)).collect::<Result<_>>()?;
                for s in super::resolve(instance, &patterns) {
                    pairs.push((*f, s));
                }
            }
        }
        let where_series = filter_series(instance, filter.as_ref(), &prefixes)?;
        return match filter.as_ref().filter(|e| needs_row_filter(e)) {
            None => super::aggregate(instance, &pairs, range, None),
            Some(e) => {
                // The rows the filter sees: aggregated series then WHERE-only ones, once each.
                let mut series: Vec<SeriesRef> = Vec::new();
                for s in pairs.iter().map(|(_, s)| s).chain(where_series.iter()) {
                    if !series.iter().any(|x| x.path() == s.path()) {
                        series.push(s.clone());
                    }
                }
                let column = column_lookup(&series, &prefixes);
                let keep = |t: i64, row: &[Option<Value>]| eval(e, t, row, &column);
                super::aggregate(instance, &pairs, range, Some((&series, &keep)))
            }
        };
    }
    // Columns come in select-list order; a wildcard expands in path order.
    let mut series: Vec<SeriesRef> = Vec::new();
    for item in &items {
        let texts = match item {
            Item::Star => full("*"),
            Item::Path(p) => full(p),
            Item::Agg(..) => Vec::new(),
        };
        let patterns: Vec<PathPattern> = texts.iter().map(|t| pattern_of(t)).collect::<Result<_>>()?;
        for s in super::resolve(instance, &patterns) {
            if !series.iter().any(|x| x.path() == s.path()) {
                series.push(s);
            }
        }
    }
    match filter.as_ref().filter(|e| needs_row_filter(e)) {
        None => super::select_raw(instance, &series, range, &|t, _| Ok(range.contains(t)), desc, limit, offset, 0),
        Some(e) => {
            // Filter columns not selected are read too, then dropped.
            let extra: Vec<SeriesRef> = filter_series(instance, Some(e), &prefixes)?
                .into_iter()
                .filter(|s| !series.iter().any(|x| x.path() == s.path()))
                .collect();
            let mut all = series.clone();
            all.extend(extra.iter().cloned());
            let column = column_lookup(&all, &prefixes);
            let keep = |t: i64, row: &[Option<Value>]| eval(e, t, row, &column);
            super::select_raw(instance, &all, range, &keep, desc, limit, offset, extra.len())
        }
    }
}

/// Series a WHERE clause mentions.
fn filter_series(instance: &Instance, e: Option<&Expr>, prefixes: &[String]) -> Result<Vec<SeriesRef>> {
    fn paths(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::And(a, b) | Expr::Or(a, b) => {
                paths(a, out);
                paths(b, out);
            }
            Expr::Not(a) => paths(a, out),
            Expr::Value(p, ..) | Expr::IsNull(p, _) => out.push(p.clone()),
            Expr::Time(..) => {}
        }
    }
    let mut names = Vec::new();
    if let Some(e) = e {
        paths(e, &mut names);
    }
    let mut patterns = Vec::new();
    for n in names {
        if n.starts_with("root") {
            patterns.push(PathPattern::parse(&n)?);
        } else {
            for pre in prefixes {
                patterns.push(PathPattern::parse(&format!("{pre}.{n}"))?);
            }
        }
    }
    Ok(super::resolve(instance, &patterns))
}

/// Map a WHERE path (full or suffix) to the first matching column.
fn column_lookup<'a>(series: &'a [SeriesRef], prefixes: &'a [String]) -> impl Fn(&str) -> Option<usize> + 'a {
    move |name: &str| {
        let candidates: Vec<String> =
            if name.starts_with("root") { vec![name.to_string()] } else { prefixes.iter().map(|p| format!("{p}.{name}")).collect() };
        candidates.iter().find_map(|c| {
            let pat = PathPattern::parse(c).ok()?;
            series.iter().position(|s| pat.matches(&s.info.path))
        })
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
            "DELETE FROM root.a.b.c WHERE time < 5",
            "FLUSH",
        ] {
            assert!(is_tsql(q), "{q}");
        }
        for q in ["SELECT 1", "SELECT * FROM \"root.a.b\"", "INSERT INTO \"root.a.b\"(time, s) VALUES (now(), 1)", "SHOW search_path", "BEGIN", "SET x = 1"] {
            assert!(!is_tsql(q), "{q}");
        }
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_iso("2017-11-01T00:00:00").unwrap(), 1_509_494_400_000);
        assert_eq!(parse_iso("2017-11-01T08:00:00+08:00").unwrap(), 1_509_494_400_000);
        assert_eq!(parse_iso("1970-01-01T00:00:00.004").unwrap(), 4);
        assert!(matches!(parse_iso("2017-13-45T00:00:00"), Err(Error::InvalidTime(_))));
        assert_eq!(parse_duration("1d2h").unwrap(), 93_600_000);
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn tokens_of_paths_and_times() {
        let t = tokenize("SELECT ** FROM root.sg.`a.b` WHERE time >= 2017-11-01T00:00:00 AND s1 <> 'x'").unwrap();
        assert!(t.contains(&Tok::Time("2017-11-01T00:00:00".into())));
        assert!(t.contains(&Tok::Quoted("a.b".into())));
        assert!(t.contains(&Tok::Sym("!=")));
    }
}

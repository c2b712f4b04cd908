//! The TSQL parser: tokens to a typed [`Statement`], completely, before
//! anything runs. A syntax error names the token it stopped at and its
//! position (SQLSTATE 42601).

use std::collections::BTreeMap;

use catalog::SeriesSpec;
use storage::TimeRange;
use tsfile::{Compression, DataType, Encoding};

use super::ast::{BinaryOp, CalendarDuration, Expr, Fill, GroupByTime, Insert, Literal, OrderItem, Segment, Select, SelectItem, SeriesFilter, Show, Statement};
use super::lexer::{tokenize, Tok};
use crate::error::{Error, Result};
use crate::time::{parse_duration, parse_iso_in, Zone};

/// `ORDER BY TIMESERIES` of `SELECT LAST`, as the path of its order key.
pub(crate) const TIMESERIES_KEY: &str = "\u{1}timeseries";
/// `ORDER BY DEVICE` of `ALIGN BY DEVICE`, as the path of its order key.
pub(crate) const DEVICE_KEY: &str = "\u{1}device";

/// Parse one TSQL statement. `now_ms` is what `now()` means; times are UTC.
pub fn parse(sql: &str, now_ms: i64) -> Result<Statement> {
    parse_reading_clock(sql, now_ms, Zone::UTC).map(|(statement, _)| statement)
}

/// [`parse`] in a session's time `zone` (where a time literal without an
/// offset is local time), also telling whether the statement used
/// `now_ms` (`now()`, or an INSERT without times): whether it means
/// something else at another time.
pub fn parse_reading_clock(sql: &str, now_ms: i64, zone: Zone) -> Result<(Statement, bool)> {
    let mut p = Parser { toks: tokenize(sql)?, pos: 0, now_ms, zone, read_clock: false };
    let statement = p.statement()?;
    p.done()?;
    Ok((statement, p.read_clock))
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    now_ms: i64,
    zone: Zone,
    read_clock: bool,
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

/// Words that end an expression or a path list.
const CLAUSE_WORDS: &[&str] = &["from", "where", "order", "limit", "offset", "slimit", "soffset", "group", "fill", "align", "as", "having"];

impl Parser {
    /// What `now()` means, noting that the statement read it.
    fn now(&mut self) -> i64 {
        self.read_clock = true;
        self.now_ms
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.pos + ahead).map(|(t, _)| t)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.peek().cloned();
        self.pos += 1;
        t
    }

    fn err<T>(&self, expected: &str) -> Result<T> {
        let at = match self.toks.get(self.pos) {
            Some((t, p)) => format!("{} (position {})", show(Some(t)), p + 1),
            None => "end of statement".into(),
        };
        Err(Error::Syntax(format!("expected {expected} at {at}")))
    }

    /// Step back over the token just taken and report what was expected.
    fn back_err<T>(&mut self, expected: &str) -> Result<T> {
        self.pos -= 1;
        self.err(expected)
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
        if self.eat_kw(kw) {
            Ok(())
        } else {
            self.err(&kw.to_ascii_uppercase())
        }
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        let yes = self.is_sym(s);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn sym(&mut self, s: &str) -> Result<()> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            self.err(&format!("\"{s}\""))
        }
    }

    fn word(&mut self) -> Result<String> {
        match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Ok(w),
            _ => self.back_err("a name"),
        }
    }

    fn usize(&mut self) -> Result<usize> {
        match self.next() {
            Some(Tok::Number(n)) => n.parse().map_err(|_| Error::Syntax(format!("expected a count at \"{n}\""))),
            _ => self.back_err("a number"),
        }
    }

    /// A TTL: a positive number of milliseconds.
    fn ttl_ms(&mut self) -> Result<i64> {
        match self.next() {
            Some(Tok::Number(n)) => match n.parse::<i64>() {
                Ok(ms) if ms > 0 => Ok(ms),
                _ => Err(Error::InvalidParameter(format!("TTL must be a positive number of milliseconds, not {n}"))),
            },
            _ => self.back_err("a TTL in milliseconds or INF"),
        }
    }

    fn done(&mut self) -> Result<()> {
        while self.eat_sym(";") {}
        match self.peek() {
            None => Ok(()),
            Some(_) => self.err("end of statement"),
        }
    }

    /// A path or pattern: node ('.' node)*; nodes may be `*`, `**`, `d*`, numbers, back-quoted.
    fn path(&mut self) -> Result<String> {
        let mut text = String::new();
        loop {
            let node = match self.next() {
                Some(Tok::Word(w)) => {
                    let mut w = w;
                    // `d*`: a partial node, when the `*` touches the word.
                    let word_end = self.toks[self.pos - 1].1 + w.chars().count();
                    if self.is_sym("*") && self.toks.get(self.pos).is_some_and(|(_, p)| *p == word_end) {
                        self.pos += 1;
                        w.push('*');
                    }
                    w
                }
                Some(Tok::Number(n)) if !text.is_empty() => n,
                Some(Tok::Quoted(q)) => format!("`{}`", q.replace('`', "``")),
                Some(Tok::Sym("*")) => "*".into(),
                Some(Tok::Sym("**")) => "**".into(),
                _ => return self.back_err("a path"),
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

    fn optional_path(&mut self) -> Result<Option<String>> {
        match self.peek() {
            Some(Tok::Word(w)) if !CLAUSE_WORDS.contains(&w.to_ascii_lowercase().as_str()) => Ok(Some(self.path()?)),
            Some(Tok::Quoted(_)) | Some(Tok::Sym("*")) | Some(Tok::Sym("**")) => Ok(Some(self.path()?)),
            _ => Ok(None),
        }
    }

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

    fn limit_offset(&mut self) -> Result<(Option<usize>, usize)> {
        let (mut limit, mut offset) = (None, 0);
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

    /// A time: integer, ISO-8601, now(), each with optional `± duration`s.
    fn time(&mut self) -> Result<i64> {
        let base = match self.next() {
            Some(Tok::Number(n)) => n.parse::<i64>().map_err(|_| Error::InvalidTime(format!("{n} is not a time")))?,
            Some(Tok::Sym("-")) => match self.next() {
                Some(Tok::Number(n)) => -n.parse::<i64>().map_err(|_| Error::InvalidTime(format!("-{n} is not a time")))?,
                _ => return self.back_err("a time"),
            },
            Some(Tok::Time(t)) | Some(Tok::Str(t)) => parse_iso_in(&t, self.zone)?,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("now") => {
                self.sym("(")?;
                self.sym(")")?;
                self.now()
            }
            _ => return self.back_err("a time"),
        };
        self.time_arithmetic(base)
    }

    fn time_arithmetic(&mut self, mut t: i64) -> Result<i64> {
        loop {
            let sign = if self.is_sym("-") {
                -1
            } else if self.is_sym("+") {
                1
            } else {
                return Ok(t);
            };
            // Only a duration (`1d`) continues a time: `time - 5` is arithmetic.
            match self.peek_at(1) {
                Some(Tok::Number(n)) if n.chars().any(|c| c.is_ascii_alphabetic()) => {
                    let d = parse_duration(n)?;
                    self.pos += 2;
                    t = t.checked_add(sign * d).ok_or_else(|| Error::InvalidTime("time arithmetic overflows".into()))?;
                }
                _ => return Ok(t),
            }
        }
    }

    fn statement(&mut self) -> Result<Statement> {
        let first = self.word()?.to_ascii_lowercase();
        match first.as_str() {
            "create" => self.create(),
            "drop" | "delete" if self.is_kw("database") || self.is_kw("storage") => {
                self.pos += 1;
                self.eat_kw("group");
                Ok(Statement::DropDatabases { paths: self.paths()? })
            }
            "drop" | "delete" if self.eat_kw("timeseries") => Ok(Statement::DeleteTimeseries { paths: self.paths()? }),
            "delete" => {
                self.kw("from")?;
                let paths = self.paths()?;
                let range = if self.eat_kw("where") {
                    let e = self.expr()?;
                    // Only ANDed time comparisons: anything else would delete
                    // more than it names.
                    exact_time_range(&e).ok_or_else(|| {
                        Error::Unsupported("DELETE ... WHERE supports time ranges only (<, <=, >, >=, =, BETWEEN joined by AND)".into())
                    })?
                } else {
                    TimeRange::ALL
                };
                Ok(Statement::DeleteData { paths, range })
            }
            "show" => self.show(),
            "count" => self.count(),
            "insert" => self.insert(),
            "select" => self.select(),
            "flush" => Ok(Statement::Flush { databases: self.optional_paths()? }),
            "set" => {
                self.kw("ttl")?;
                self.kw("to")?;
                let path = self.path()?;
                let ttl_ms = if self.eat_kw("inf") { None } else { Some(self.ttl_ms()?) };
                Ok(Statement::SetTtl { path, ttl_ms })
            }
            "unset" => {
                self.kw("ttl")?;
                if !self.eat_kw("from") {
                    self.kw("to")?;
                }
                Ok(Statement::SetTtl { path: self.path()?, ttl_ms: None })
            }
            "load" => match self.next() {
                Some(Tok::Str(path)) => Ok(Statement::Load { path }),
                _ => self.back_err("a quoted TsFile path"),
            },
            other => Err(Error::Syntax(format!("unknown TSQL statement \"{other}\""))),
        }
    }

    fn create(&mut self) -> Result<Statement> {
        if self.eat_kw("database") || (self.eat_kw("storage") && self.eat_kw("group")) {
            return Ok(Statement::CreateDatabase { path: self.path()? });
        }
        if self.eat_kw("aligned") {
            self.kw("timeseries")?;
            let device = self.path()?;
            self.sym("(")?;
            let mut series = Vec::new();
            loop {
                let name = self.word()?;
                let t = self.data_type()?;
                let spec = self.series_options(SeriesSpec::new(t))?;
                series.push((name, spec));
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.sym(")")?;
            return Ok(Statement::CreateAlignedTimeseries { device, series });
        }
        self.kw("timeseries")?;
        let path = self.path()?;
        let alias = if self.eat_sym("(") {
            let a = self.word()?;
            self.sym(")")?;
            Some(a)
        } else {
            None
        };
        self.eat_kw("with");
        let t = if self.eat_kw("datatype") {
            self.sym("=")?;
            let t = self.data_type()?;
            self.eat_sym(",");
            t
        } else {
            self.data_type()?
        };
        let mut spec = self.series_options(SeriesSpec::new(t))?;
        spec.alias = alias;
        Ok(Statement::CreateTimeseries { path, spec })
    }

    fn data_type(&mut self) -> Result<DataType> {
        let w = self.word()?;
        w.parse().map_err(|e: tsfile::Error| Error::Syntax(e.to_string()))
    }

    /// `ENCODING=…, COMPRESSOR=…, TAGS(…), ATTRIBUTES(…)` in any order.
    fn series_options(&mut self, mut spec: SeriesSpec) -> Result<SeriesSpec> {
        loop {
            // A comma continues the options only when an option follows (in
            // CREATE ALIGNED TIMESERIES it may start the next series instead).
            let save = self.pos;
            if self.eat_sym(",") && !["encoding", "compressor", "compression", "tags", "attributes"].iter().any(|k| self.is_kw(k)) && !self.at_max_point_number() {
                self.pos = save;
                return Ok(spec);
            }
            if self.eat_kw("encoding") {
                self.sym("=")?;
                let e: Encoding = self.word()?.parse().map_err(|e: tsfile::Error| Error::Syntax(e.to_string()))?;
                spec.encoding = Some(e);
            } else if self.eat_kw("compressor") || self.eat_kw("compression") {
                self.sym("=")?;
                let c: Compression = self.word()?.parse().map_err(|e: tsfile::Error| Error::Syntax(e.to_string()))?;
                spec.compression = Some(c);
            } else if self.eat_kw("tags") {
                spec.tags = self.key_values()?;
            } else if self.eat_kw("attributes") {
                spec.attributes = self.key_values()?;
            } else if self.at_max_point_number() {
                // IoTDB's `'MAX_POINT_NUMBER'='2'`: digits FLOAT/DOUBLE keep under RLE/TS_2DIFF.
                self.pos += 1;
                self.sym("=")?;
                let n = match self.next() {
                    Some(Tok::Str(v)) | Some(Tok::Number(v)) => v,
                    _ => return self.back_err("a number of digits"),
                };
                let n: u8 = n
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n <= 18)
                    .ok_or_else(|| Error::InvalidValue(format!("MAX_POINT_NUMBER {n:?} is not a whole number from 0 to 18")))?;
                spec.max_point_number = Some(n);
            } else {
                return Ok(spec);
            }
        }
    }

    fn at_max_point_number(&self) -> bool {
        matches!(self.peek(), Some(Tok::Str(w)) | Some(Tok::Word(w)) if w.eq_ignore_ascii_case("max_point_number"))
    }

    fn key_values(&mut self) -> Result<BTreeMap<String, String>> {
        self.sym("(")?;
        let mut map = BTreeMap::new();
        loop {
            let k = self.word()?;
            self.sym("=")?;
            let v = match self.next() {
                Some(Tok::Word(w)) | Some(Tok::Str(w)) | Some(Tok::Number(w)) | Some(Tok::Quoted(w)) => w,
                _ => return self.back_err("a value"),
            };
            map.insert(k, v);
            if !self.eat_sym(",") {
                break;
            }
        }
        self.sym(")")?;
        Ok(map)
    }

    fn show(&mut self) -> Result<Statement> {
        let show = if self.eat_kw("databases") || (self.eat_kw("storage") && self.eat_kw("group")) {
            Show::Databases { pattern: self.optional_path()? }
        } else if self.eat_kw("devices") {
            let pattern = self.optional_path()?;
            let with_database = self.eat_kw("with");
            if with_database {
                self.kw("database")?;
            }
            let (limit, offset) = self.limit_offset()?;
            Show::Devices { pattern, with_database, limit, offset }
        } else if self.eat_kw("timeseries") {
            let pattern = self.optional_path()?;
            let filter = if self.eat_kw("where") { Some(self.series_filter()?) } else { None };
            let (limit, offset) = self.limit_offset()?;
            Show::Timeseries { pattern, filter, limit, offset }
        } else if self.eat_kw("all") {
            self.kw("ttl")?;
            Show::Ttl { pattern: None }
        } else if self.eat_kw("ttl") {
            self.kw("on")?;
            Show::Ttl { pattern: Some(self.path()?) }
        } else if self.eat_kw("child") {
            if self.eat_kw("paths") {
                Show::ChildPaths { pattern: self.optional_path()? }
            } else {
                self.kw("nodes")?;
                Show::ChildNodes { pattern: self.optional_path()? }
            }
        } else {
            return self.err("DATABASES, DEVICES, TIMESERIES, CHILD or TTL");
        };
        Ok(Statement::Show(show))
    }

    fn count(&mut self) -> Result<Statement> {
        let show = if self.eat_kw("timeseries") {
            let pattern = self.optional_path()?;
            let level = if self.eat_kw("group") {
                self.kw("by")?;
                self.kw("level")?;
                self.sym("=")?;
                Some(self.usize()?)
            } else {
                None
            };
            Show::CountTimeseries { pattern, level }
        } else if self.eat_kw("devices") {
            Show::CountDevices { pattern: self.optional_path()? }
        } else if self.eat_kw("databases") {
            Show::CountDatabases { pattern: self.optional_path()? }
        } else if self.eat_kw("nodes") {
            let pattern = self.path()?;
            self.kw("level")?;
            self.sym("=")?;
            Show::CountNodes { pattern, level: self.usize()? }
        } else {
            return self.err("TIMESERIES, DEVICES, DATABASES or NODES");
        };
        Ok(Statement::Show(show))
    }

    /// `TIMESERIES CONTAINS 'x'`, `DATATYPE = FLOAT` or `TAGS(k) = v`.
    fn series_filter(&mut self) -> Result<SeriesFilter> {
        if self.eat_kw("timeseries") {
            self.kw("contains")?;
            return Ok(SeriesFilter::PathContains(self.string()?));
        }
        if self.eat_kw("datatype") {
            self.sym("=")?;
            return Ok(SeriesFilter::DataType(self.data_type()?));
        }
        if self.eat_kw("tags") {
            self.sym("(")?;
            let key = match self.next() {
                Some(Tok::Word(w)) | Some(Tok::Quoted(w)) | Some(Tok::Str(w)) => w,
                _ => return self.back_err("a tag key"),
            };
            self.sym(")")?;
            self.sym("=")?;
            let value = match self.next() {
                Some(Tok::Word(w)) | Some(Tok::Quoted(w)) | Some(Tok::Str(w)) | Some(Tok::Number(w)) => w,
                _ => return self.back_err("a tag value"),
            };
            return Ok(SeriesFilter::Tag(key, value));
        }
        self.err("TIMESERIES CONTAINS, DATATYPE = or TAGS(key) =")
    }

    /// `INSERT INTO device([timestamp|time,] m…) [ALIGNED] VALUES (…), …`.
    /// Without a time column (IoTDB's form) the one row is written at the
    /// server's time now.
    fn insert(&mut self) -> Result<Statement> {
        self.kw("into")?;
        let device = self.path()?;
        self.sym("(")?;
        let timed = self.eat_kw("timestamp") || self.eat_kw("time");
        let mut measurements = Vec::new();
        if !timed {
            measurements.push(self.word()?);
        }
        while self.eat_sym(",") {
            measurements.push(self.word()?);
        }
        self.sym(")")?;
        let aligned = self.eat_kw("aligned");
        self.kw("values")?;
        let mut rows = Vec::new();
        loop {
            let row_no = rows.len() + 1;
            self.sym("(")?;
            let mut values = Vec::new();
            let t = if timed {
                let t = self.time().map_err(|e| match e {
                    Error::InvalidTime(m) => Error::InvalidTime(format!("row {row_no}: {m}")),
                    other => other,
                })?;
                while self.eat_sym(",") {
                    values.push(self.literal()?);
                }
                t
            } else {
                values.push(self.literal()?);
                while self.eat_sym(",") {
                    values.push(self.literal()?);
                }
                self.now()
            };
            self.sym(")")?;
            rows.push((t, values));
            if !self.eat_sym(",") {
                break;
            }
        }
        if !timed && rows.len() > 1 {
            return Err(Error::Syntax("an INSERT without a timestamp column takes one row (the rows would share the time now)".into()));
        }
        Ok(Statement::Insert(Insert { device, aligned, measurements, rows }))
    }

    fn literal(&mut self) -> Result<Literal> {
        Ok(match self.next() {
            Some(Tok::Number(n)) => number_literal(n, false)?,
            Some(Tok::Sym("-")) => match self.next() {
                Some(Tok::Number(n)) => number_literal(n, true)?,
                Some(Tok::Word(w)) if is_infinity(&w) => Literal::Float("-inf".into()),
                _ => return self.back_err("a number"),
            },
            Some(Tok::Sym("+")) => match self.next() {
                Some(Tok::Number(n)) => number_literal(n, false)?,
                Some(Tok::Word(w)) if is_infinity(&w) => Literal::Float("inf".into()),
                _ => return self.back_err("a number"),
            },
            // IoTDB's special floating values.
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("nan") => Literal::Float("NaN".into()),
            Some(Tok::Word(w)) if is_infinity(&w) => Literal::Float("inf".into()),
            Some(Tok::Str(s)) => Literal::Text(s),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Boolean(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Boolean(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("x") => match self.next() {
                Some(Tok::Str(hex)) => Literal::Blob(parse_hex(&hex)?),
                _ => return self.back_err("a quoted hex blob"),
            },
            Some(Tok::Time(t)) => Literal::Text(t),
            _ => return self.back_err("a value"),
        })
    }

    fn select(&mut self) -> Result<Statement> {
        // `SELECT LAST s1, …` (but not a series or function named `last`).
        let last = self.is_kw("last") && !matches!(self.peek_at(1), Some(Tok::Sym("(")) | Some(Tok::Sym(",")) | Some(Tok::Sym("."))) && !self.is_kw_at(1, "from");
        if last {
            self.pos += 1;
        }
        let mut items = Vec::new();
        loop {
            let expr = self.expr()?;
            let alias = if self.eat_kw("as") { Some(self.word()?) } else { None };
            items.push(SelectItem { expr, alias });
            if !self.eat_sym(",") {
                break;
            }
        }
        self.kw("from")?;
        let from = self.paths()?;
        let filter = if self.eat_kw("where") { Some(self.expr()?) } else { None };
        let mut select = Select {
            items,
            from,
            filter,
            order_by: Vec::new(),
            limit: None,
            offset: 0,
            slimit: None,
            soffset: 0,
            group_by_time: None,
            having: None,
            fill: None,
            last,
            align_by_device: false,
            group_by_level: None,
            group_by_segment: None,
            group_by_tags: None,
            restrict: None,
            zone: self.zone,
        };
        if self.eat_kw("group") {
            self.kw("by")?;
            self.group_by(&mut select)?;
        }
        loop {
            if self.eat_kw("having") {
                select.having = Some(self.expr()?);
            } else if self.eat_kw("fill") {
                select.fill = Some(self.fill()?);
            } else {
                break;
            }
        }
        if self.eat_kw("order") {
            self.kw("by")?;
            loop {
                let expr = if self.eat_kw("time") || self.eat_kw("timestamp") {
                    Expr::Time
                } else if select.last && self.eat_kw("timeseries") {
                    Expr::Path(TIMESERIES_KEY.into())
                } else if self.eat_kw("device") {
                    Expr::Path(DEVICE_KEY.into())
                } else {
                    self.expr()?
                };
                let descending = if self.eat_kw("desc") {
                    true
                } else {
                    self.eat_kw("asc");
                    false
                };
                let nulls_first = if self.eat_kw("nulls") {
                    if self.eat_kw("first") {
                        Some(true)
                    } else {
                        self.kw("last")?;
                        Some(false)
                    }
                } else {
                    None
                };
                select.order_by.push(OrderItem { expr, descending, nulls_first });
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        // IoTDB writes FILL before ORDER BY; after it is taken too.
        if select.fill.is_none() && self.eat_kw("fill") {
            select.fill = Some(self.fill()?);
        }
        loop {
            if self.eat_kw("limit") {
                select.limit = Some(self.usize()?);
            } else if self.eat_kw("offset") {
                select.offset = self.usize()?;
            } else if self.eat_kw("slimit") {
                select.slimit = Some(self.usize()?);
            } else if self.eat_kw("soffset") {
                select.soffset = self.usize()?;
            } else {
                break;
            }
        }
        if self.eat_kw("align") {
            self.kw("by")?;
            if self.eat_kw("device") {
                select.align_by_device = true;
            } else {
                self.kw("time")?;
            }
        }
        Ok(Statement::Select(Box::new(select)))
    }

    /// `GROUP BY` after its keywords: time windows and/or `LEVEL = n[, m]`.
    fn group_by(&mut self, select: &mut Select) -> Result<()> {
        loop {
            if self.eat_kw("level") {
                self.sym("=")?;
                let mut levels = vec![self.usize()?];
                while self.is_sym(",") && matches!(self.peek_at(1), Some(Tok::Number(_))) {
                    self.pos += 1;
                    levels.push(self.usize()?);
                }
                select.group_by_level = Some(levels);
            } else if self.is_sym("(") {
                select.group_by_time = Some(self.time_windows()?);
            } else {
                if self.eat_kw("tags") {
                    self.sym("(")?;
                    let mut keys = vec![self.word()?];
                    while self.eat_sym(",") {
                        keys.push(self.word()?);
                    }
                    self.sym(")")?;
                    select.group_by_tags = Some(keys);
                    if !self.eat_sym(",") {
                        return Ok(());
                    }
                    continue;
                }
                if let Some(segment) = self.segment()? {
                    select.group_by_segment = Some(segment);
                    return Ok(());
                }
                return self.err("time windows, LEVEL, VARIATION, CONDITION, SESSION or COUNT after GROUP BY");
            }
            if !self.eat_sym(",") {
                return Ok(());
            }
        }
    }

    /// `VARIATION(…)`, `CONDITION(…)`, `SESSION(…)` or `COUNT(…)`, if next.
    fn segment(&mut self) -> Result<Option<Segment>> {
        let kind = ["variation", "condition", "session", "count"].into_iter().find(|k| self.is_kw(k));
        let Some(kind) = kind else { return Ok(None) };
        self.pos += 1;
        self.sym("(")?;
        // Trailing `ignoreNull = true|false`.
        let ignore_null = |p: &mut Self| -> Result<Option<bool>> {
            if p.is_kw("ignorenull") || p.is_kw("ignore_null") {
                p.pos += 1;
                p.sym("=")?;
                return Ok(Some(match p.literal()? {
                    Literal::Boolean(b) => b,
                    _ => return p.back_err("true or false"),
                }));
            }
            Ok(None)
        };
        let segment = match kind {
            "session" => {
                let gap = self.duration()?;
                if gap.months != 0 {
                    return Err(Error::Syntax("a SESSION gap cannot be in months".into()));
                }
                Segment::Session { gap: gap.ms }
            }
            "variation" => {
                let expr = self.expr()?;
                let (mut delta, mut ignore) = (0.0, true);
                while self.eat_sym(",") {
                    if let Some(b) = ignore_null(self)? {
                        ignore = b;
                    } else {
                        delta = match self.literal()? {
                            Literal::Integer(n) | Literal::Float(n) => n.parse().map_err(|_| Error::InvalidValue(format!("{n} is not a number")))?,
                            _ => return self.back_err("a number (the delta)"),
                        };
                        if delta < 0.0 {
                            return Err(Error::InvalidValue("the VARIATION delta must not be negative".into()));
                        }
                    }
                }
                Segment::Variation { expr, delta, ignore_null: ignore }
            }
            "condition" => {
                let expr = self.expr()?;
                let (mut keep, mut ignore) = (None, true);
                while self.eat_sym(",") {
                    if let Some(b) = ignore_null(self)? {
                        ignore = b;
                    } else if self.eat_kw("keep") {
                        let op = match self.next() {
                            Some(Tok::Sym(">=")) => BinaryOp::GtEq,
                            Some(Tok::Sym(">")) => BinaryOp::Gt,
                            Some(Tok::Sym("<=")) => BinaryOp::LtEq,
                            Some(Tok::Sym("<")) => BinaryOp::Lt,
                            Some(Tok::Sym("=")) => BinaryOp::Eq,
                            _ => return self.back_err("a comparison after KEEP"),
                        };
                        keep = Some((op, self.usize()? as u64));
                    } else {
                        return self.err("KEEP or ignoreNull");
                    }
                }
                Segment::Condition { expr, keep, ignore_null: ignore }
            }
            _ => {
                let expr = self.expr()?;
                self.sym(",")?;
                let n = self.usize()? as u64;
                if n == 0 {
                    return Err(Error::InvalidValue("GROUP BY COUNT needs a positive count".into()));
                }
                let mut ignore = true;
                if self.eat_sym(",") {
                    ignore = ignore_null(self)?.ok_or_else(|| Error::Syntax("expected ignoreNull".into()))?;
                }
                Segment::Count { expr, n, ignore_null: ignore }
            }
        };
        self.sym(")")?;
        Ok(Some(segment))
    }

    /// `([start, end), interval[, step])`, `((start, end], …)` or `(interval[, step])`.
    fn time_windows(&mut self) -> Result<GroupByTime> {
        self.sym("(")?;
        let (mut range, mut left_open) = (None, false);
        if self.is_sym("[") || self.is_sym("(") {
            left_open = self.eat_sym("(");
            if !left_open {
                self.sym("[")?;
            }
            let start = self.time()?;
            self.sym(",")?;
            let end = self.time()?;
            self.sym(if left_open { "]" } else { ")" })?;
            self.sym(",")?;
            if end < start {
                return Err(Error::Syntax(format!("the GROUP BY range ends ({end}) before it starts ({start})")));
            }
            range = Some((start, end));
        }
        let interval = self.duration()?;
        let step = if self.eat_sym(",") { Some(self.duration()?) } else { None };
        self.sym(")")?;
        Ok(GroupByTime { range, left_open, interval, step })
    }

    /// A duration: `1d`, `1mo`, `30m`, or plain milliseconds.
    fn duration(&mut self) -> Result<CalendarDuration> {
        match self.next() {
            Some(Tok::Number(n)) if n.chars().all(|c| c.is_ascii_digit()) => {
                let ms: i64 = n.parse().map_err(|_| Error::InvalidTime(format!("{n} is not a duration")))?;
                if ms <= 0 {
                    return Err(Error::InvalidTime(format!("{n} is not a positive duration")));
                }
                Ok(CalendarDuration { months: 0, ms })
            }
            Some(Tok::Number(n)) => CalendarDuration::parse(&n),
            _ => self.back_err("a duration such as 1m"),
        }
    }

    /// `FILL(…)` after its keyword.
    fn fill(&mut self) -> Result<Fill> {
        self.sym("(")?;
        let fill = if self.eat_kw("previous") {
            let bound = if self.eat_sym(",") { Some(self.duration()?) } else { None };
            if let Some(b) = bound {
                if b.months != 0 {
                    return Err(Error::Syntax("the time bound of FILL(PREVIOUS) cannot be in months".into()));
                }
            }
            Fill::Previous { bound: bound.map(|b| b.ms) }
        } else if self.eat_kw("linear") {
            Fill::Linear
        } else {
            Fill::Constant(self.literal()?)
        };
        if self.is_sym(",") {
            return Err(Error::Syntax("only FILL(PREVIOUS) takes a time bound".into()));
        }
        self.sym(")")?;
        Ok(fill)
    }

    fn is_kw_at(&self, ahead: usize, kw: &str) -> bool {
        matches!(self.peek_at(ahead), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    // ------------------------------------------------------------ expressions

    pub(crate) fn expr(&mut self) -> Result<Expr> {
        let mut left = self.and_expr()?;
        while self.eat_kw("or") || self.eat_sym("||") {
            left = binary(BinaryOp::Or, left, self.and_expr()?);
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr> {
        let mut left = self.not_expr()?;
        while self.eat_kw("and") || self.eat_sym("&&") {
            left = binary(BinaryOp::And, left, self.not_expr()?);
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr> {
        if self.eat_kw("not") || self.eat_sym("!") {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr> {
        let left = self.additive()?;
        let op = [("=", BinaryOp::Eq), ("!=", BinaryOp::NotEq), ("<=", BinaryOp::LtEq), (">=", BinaryOp::GtEq), ("<", BinaryOp::Lt), (">", BinaryOp::Gt)]
            .into_iter()
            .find(|(s, _)| self.is_sym(s));
        if let Some((_, op)) = op {
            self.pos += 1;
            if self.peek().is_none() {
                return self.err(if left == Expr::Time { "a time" } else { "a value" });
            }
            return Ok(binary(op, left, self.additive()?));
        }
        if self.eat_kw("is") {
            let negated = self.eat_kw("not");
            self.kw("null")?;
            return Ok(Expr::IsNull { expr: Box::new(left), negated });
        }
        let negated = self.eat_kw("not");
        if self.eat_kw("between") {
            let low = self.additive()?;
            self.kw("and")?;
            let high = self.additive()?;
            return Ok(Expr::Between { expr: Box::new(left), low: Box::new(low), high: Box::new(high), negated });
        }
        if self.eat_kw("in") || self.eat_kw("contains") {
            self.sym("(")?;
            let mut list = vec![self.additive()?];
            while self.eat_sym(",") {
                list.push(self.additive()?);
            }
            self.sym(")")?;
            return Ok(Expr::InList { expr: Box::new(left), list, negated });
        }
        if self.eat_kw("like") {
            let pattern = self.string()?;
            return Ok(Expr::Like { expr: Box::new(left), pattern, negated });
        }
        if self.eat_kw("regexp") {
            let pattern = self.string()?;
            return Ok(Expr::Regexp { expr: Box::new(left), pattern, negated });
        }
        if negated {
            return self.err("BETWEEN, IN, LIKE or REGEXP after NOT");
        }
        Ok(left)
    }

    fn string(&mut self) -> Result<String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            _ => self.back_err("a quoted string"),
        }
    }

    fn additive(&mut self) -> Result<Expr> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.is_sym("+") {
                BinaryOp::Plus
            } else if self.is_sym("-") {
                BinaryOp::Minus
            } else {
                return Ok(left);
            };
            // A time literal followed by a duration is time arithmetic.
            if let Expr::TimeLiteral(t) = left {
                if matches!(self.peek_at(1), Some(Tok::Number(n)) if n.chars().any(|c| c.is_ascii_alphabetic())) {
                    left = Expr::TimeLiteral(self.time_arithmetic(t)?);
                    continue;
                }
            }
            self.pos += 1;
            left = binary(op, left, self.multiplicative()?);
        }
    }

    fn multiplicative(&mut self) -> Result<Expr> {
        let mut left = self.unary()?;
        loop {
            let op = if self.is_sym("*") {
                BinaryOp::Multiply
            } else if self.is_sym("/") {
                BinaryOp::Divide
            } else if self.is_sym("%") {
                BinaryOp::Modulo
            } else {
                return Ok(left);
            };
            self.pos += 1;
            left = binary(op, left, self.unary()?);
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.eat_sym("-") {
            return Ok(match self.unary()? {
                Expr::Literal(Literal::Integer(n)) if !n.starts_with('-') => Expr::Literal(Literal::Integer(format!("-{n}"))),
                Expr::Literal(Literal::Float(n)) if !n.starts_with('-') => Expr::Literal(Literal::Float(format!("-{n}"))),
                e => Expr::Negate(Box::new(e)),
            });
        }
        if self.eat_sym("+") {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr> {
        match self.peek().cloned() {
            None => self.err("an expression"),
            Some(Tok::Sym("(")) => {
                self.pos += 1;
                let e = self.expr()?;
                self.sym(")")?;
                Ok(e)
            }
            Some(Tok::Sym("*")) | Some(Tok::Sym("**")) | Some(Tok::Quoted(_)) => Ok(Expr::Path(self.path()?)),
            Some(Tok::Number(n)) => {
                if n.chars().any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') {
                    return self.err("a number (a duration such as 1d only follows a time)");
                }
                self.pos += 1;
                Ok(Expr::Literal(number_literal(n, false)?))
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Expr::Literal(Literal::Text(s)))
            }
            Some(Tok::Time(_)) => Ok(Expr::TimeLiteral(self.time()?)),
            Some(Tok::Sym(_)) => self.err("an expression"),
            Some(Tok::Word(w)) => {
                let lower = w.to_ascii_lowercase();
                let call = matches!(self.peek_at(1), Some(Tok::Sym("(")));
                match lower.as_str() {
                    "true" | "false" | "null" => Ok(Expr::Literal(self.literal()?)),
                    "x" if matches!(self.peek_at(1), Some(Tok::Str(_))) => Ok(Expr::Literal(self.literal()?)),
                    "time" | "timestamp" if !matches!(self.peek_at(1), Some(Tok::Sym("."))) => {
                        self.pos += 1;
                        Ok(Expr::Time)
                    }
                    "now" if call => Ok(Expr::TimeLiteral(self.time()?)),
                    "case" => self.case(),
                    "cast" if call => {
                        self.pos += 2;
                        let expr = self.expr()?;
                        self.kw("as")?;
                        let to = self.data_type()?;
                        self.sym(")")?;
                        Ok(Expr::Cast { expr: Box::new(expr), to })
                    }
                    "substring" if call => self.substring(w),
                    _ if call => self.function(w),
                    _ if CLAUSE_WORDS.contains(&lower.as_str()) => self.err("an expression"),
                    _ => Ok(Expr::Path(self.path()?)),
                }
            }
        }
    }

    fn function(&mut self, name: String) -> Result<Expr> {
        self.pos += 2;
        let mut args = Vec::new();
        let mut options = BTreeMap::new();
        if !self.eat_sym(")") {
            loop {
                if let (Some(Tok::Str(k)), Some(Tok::Sym("="))) = (self.peek().cloned(), self.peek_at(1)) {
                    self.pos += 2;
                    let v = match self.next() {
                        Some(Tok::Str(v)) | Some(Tok::Number(v)) | Some(Tok::Word(v)) => v,
                        _ => return self.back_err("an option value"),
                    };
                    options.insert(k.to_ascii_lowercase(), v);
                } else {
                    args.push(self.expr()?);
                }
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.sym(")")?;
        }
        // The name as typed: it appears in the column header.
        Ok(Expr::Function { name, args, options })
    }

    /// `SUBSTRING(s FROM a [FOR b])`, or the call form `substring(s, a[, b])`.
    fn substring(&mut self, name: String) -> Result<Expr> {
        let start = self.pos;
        self.pos += 2;
        let expr = self.expr()?;
        if !self.eat_kw("from") {
            self.pos = start;
            return self.function(name);
        }
        let from = self.expr()?;
        let length = if self.eat_kw("for") { Some(Box::new(self.expr()?)) } else { None };
        self.sym(")")?;
        Ok(Expr::Substring { name, expr: Box::new(expr), from: Box::new(from), length })
    }

    fn case(&mut self) -> Result<Expr> {
        self.pos += 1;
        let operand = if self.is_kw("when") { None } else { Some(Box::new(self.expr()?)) };
        let mut whens = Vec::new();
        while self.eat_kw("when") {
            let w = self.expr()?;
            self.kw("then")?;
            whens.push((w, self.expr()?));
        }
        if whens.is_empty() {
            return self.err("WHEN");
        }
        let otherwise = if self.eat_kw("else") { Some(Box::new(self.expr()?)) } else { None };
        self.kw("end")?;
        Ok(Expr::Case { operand, whens, otherwise })
    }
}

fn binary(op: BinaryOp, left: Expr, right: Expr) -> Expr {
    Expr::Binary { op, left: Box::new(left), right: Box::new(right) }
}

fn is_infinity(w: &str) -> bool {
    w.eq_ignore_ascii_case("infinity") || w.eq_ignore_ascii_case("inf")
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

/// A time value of a comparison operand (an integer or time literal).
fn time_value(e: &Expr) -> Option<i64> {
    match e {
        Expr::TimeLiteral(t) => Some(*t),
        Expr::Literal(Literal::Integer(n)) => n.parse().ok(),
        _ => None,
    }
}

/// The time range `e` selects when it is exactly one (ANDed `<`, `<=`,
/// `>`, `>=`, `=`, `BETWEEN` on time).
pub(crate) fn exact_time_range(e: &Expr) -> Option<TimeRange> {
    match e {
        Expr::Binary { op: BinaryOp::And, left, right } => {
            let (x, y) = (exact_time_range(left)?, exact_time_range(right)?);
            Some(TimeRange::new(x.start.max(y.start), x.end.min(y.end)))
        }
        Expr::Binary { op, left, right } if op.is_comparison() => {
            let (op, t) = match (left.as_ref(), right.as_ref()) {
                (Expr::Time, r) => (*op, time_value(r)?),
                (l, Expr::Time) => (flip(*op), time_value(l)?),
                _ => return None,
            };
            Some(match op {
                BinaryOp::Gt => TimeRange::new(t.checked_add(1)?, i64::MAX),
                BinaryOp::GtEq => TimeRange::new(t, i64::MAX),
                BinaryOp::Lt => TimeRange::new(i64::MIN, t.checked_sub(1)?),
                BinaryOp::LtEq => TimeRange::new(i64::MIN, t),
                BinaryOp::Eq => TimeRange::new(t, t),
                _ => return None,
            })
        }
        Expr::Between { expr, low, high, negated: false } if **expr == Expr::Time => Some(TimeRange::new(time_value(low)?, time_value(high)?)),
        _ => None,
    }
}

/// The comparison with its operands swapped (`5 < time` is `time > 5`).
pub(crate) fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(sql: &str) -> Select {
        match parse(sql, 0).unwrap() {
            Statement::Select(s) => *s,
            other => panic!("not a select: {other:?}"),
        }
    }

    #[test]
    fn expressions_bind_by_precedence() {
        let s = select("SELECT s1 + s2 * 2 AS x, -s1, sin(s1), count(*) FROM root.sg.d1 WHERE s1 > 1 AND NOT s2 BETWEEN 1 AND 2 OR s3 IS NULL");
        assert_eq!(s.items.len(), 4);
        assert_eq!(s.items[0].alias.as_deref(), Some("x"));
        assert!(matches!(&s.items[0].expr, Expr::Binary { op: BinaryOp::Plus, right, .. } if matches!(right.as_ref(), Expr::Binary { op: BinaryOp::Multiply, .. })));
        assert!(matches!(&s.items[1].expr, Expr::Negate(_)));
        assert!(matches!(&s.items[3].expr, Expr::Function { name, args, .. } if name == "count" && args == &vec![Expr::Path("*".into())]));
        let typed = select("SELECT COUNT(s1) FROM root.sg.d1");
        assert!(matches!(&typed.items[0].expr, Expr::Function { name, .. } if name == "COUNT"));
        assert!(matches!(s.filter, Some(Expr::Binary { op: BinaryOp::Or, .. })));
    }

    #[test]
    fn clauses_in_any_order_after_where() {
        let s = select("select * from root.sg.** where time >= 2017-11-01T00:00:00 order by time desc, s1 asc nulls first limit 5 offset 2 slimit 3 soffset 1");
        assert_eq!((s.limit, s.offset, s.slimit, s.soffset), (Some(5), 2, Some(3), 1));
        assert_eq!(s.order_by.len(), 2);
        assert!(s.order_by[0].descending && s.order_by[0].expr == Expr::Time);
        assert_eq!(s.order_by[1].nulls_first, Some(true));
        assert_eq!(s.from, vec!["root.sg.**".to_string()]);
    }

    #[test]
    fn predicates_of_every_form() {
        let s = select("select s1 from root.a.b where s1 not in (1, 2) and s2 like 'a%' and s3 regexp '^x' and s1 not between 3 and 4 && !(s2 = 'y')");
        let mut forms = Vec::new();
        s.filter.as_ref().unwrap().visit(&mut |e| {
            forms.push(match e {
                Expr::InList { negated: true, .. } => "not in",
                Expr::Like { .. } => "like",
                Expr::Regexp { .. } => "regexp",
                Expr::Between { negated: true, .. } => "not between",
                Expr::Not(_) => "not",
                _ => "",
            })
        });
        for f in ["not in", "like", "regexp", "not between", "not"] {
            assert!(forms.contains(&f), "{f} in {forms:?}");
        }
    }

    #[test]
    fn syntax_errors_name_the_token_and_position() {
        let e = parse("select s1 form root.a", 0).unwrap_err().to_string();
        assert!(e.contains("\"form\"") && e.contains("position 11"), "{e}");
        let e = parse("select from root.a", 0).unwrap_err().to_string();
        assert!(e.contains("expected an expression at \"from\" (position 8)"), "{e}");
    }

    #[test]
    fn time_ranges_of_delete() {
        let r = |sql: &str| match parse(sql, 1000).unwrap() {
            Statement::DeleteData { range, .. } => range,
            other => panic!("{other:?}"),
        };
        assert_eq!(r("delete from root.a.b where time > 5 and time <= 9"), TimeRange::new(6, 9));
        assert_eq!(r("delete from root.a.b where time < now() - 1s"), TimeRange::new(i64::MIN, -1));
        assert!(matches!(parse("delete from root.a.b where s1 > 5", 0), Err(Error::Unsupported(_))));
    }

    #[test]
    fn case_and_cast() {
        let s = select("select case when s1 > 0 then 1 else 0 end, cast(s1 as INT32) from root.a.b");
        assert!(matches!(&s.items[0].expr, Expr::Case { whens, otherwise: Some(_), .. } if whens.len() == 1));
        assert!(matches!(&s.items[1].expr, Expr::Cast { to: DataType::Int32, .. }));
    }
}

//! The fast path for the commonest statement of an ingest stream:
//! `INSERT INTO root.a.b(time, s1, s2) [ALIGNED] VALUES (1, 2.5, 3), …`
//! with integer times and plain literals. It reads the statement's bytes
//! once, borrowing every value from the text (no token list, no `String`
//! per value) into a row-major grid the planner turns into typed columns.
//!
//! It accepts a strict subset of what [`super::parse`] accepts and means the
//! same by it; anything else (ISO times, `now()`, signs with spaces, quotes
//! with escapes, comments, non-ASCII text, errors of any kind) returns `None`
//! and the statement goes through the full parser, which also words the
//! errors. A property test holds the two paths to the same result.
//!
//! A prepared statement (extended protocol) of the same shape with `$n`
//! parameters for times and values is scanned once at Parse into a
//! [`PreparedInsert`]; each Execute binds the parameters' values straight
//! into a [`RawInsert`] (numbers formatted, text borrowed) — the statement
//! text is not rebuilt or tokenised again.

use datafusion::scalar::ScalarValue;

use crate::convert::{Literal, LiteralRef};

/// An `INSERT` read by [`scan`]: `cells` holds row `r`'s values at
/// `r * measurements.len() ..`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawInsert<'a> {
    pub(crate) device: &'a str,
    pub(crate) aligned: bool,
    pub(crate) measurements: Vec<&'a str>,
    pub(crate) times: Vec<i64>,
    pub(crate) cells: Vec<LiteralRef<'a>>,
}

/// Integers longer than this might not fit the parser's `i128` test for
/// "integer literal"; the full parser decides those.
const INTEGER_DIGITS_MAX: usize = 38;

/// Read `sql` (one statement, no `;` inside) as a plain multi-row insert,
/// or `None` when the full parser must read it.
pub(crate) fn scan(sql: &str) -> Option<RawInsert<'_>> {
    let mut s = Scanner { text: sql, b: sql.as_bytes(), i: 0 };
    let Head { device, measurements, aligned } = s.head()?;
    let width = measurements.len();
    let mut times = Vec::new();
    let mut cells = Vec::new();
    loop {
        s.ws();
        s.byte(b'(')?;
        s.ws();
        times.push(s.time()?);
        for _ in 0..width {
            s.ws();
            s.byte(b',')?;
            s.ws();
            cells.push(s.value()?);
        }
        s.ws();
        s.byte(b')')?;
        s.ws();
        if !s.eat(b',') {
            break;
        }
    }
    while s.eat(b';') {
        s.ws();
    }
    (s.i == s.b.len()).then_some(RawInsert { device, aligned, measurements, times, cells })
}

/// `INSERT INTO path(time, m1, …) [ALIGNED] VALUES`, up to the rows.
struct Head<'a> {
    device: &'a str,
    measurements: Vec<&'a str>,
    aligned: bool,
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

/// A time or value of a prepared INSERT: written in the statement, or `$n`.
#[derive(Debug, Clone, PartialEq)]
enum Slot<T> {
    Given(T),
    /// Parameter `$n` (0-based here).
    Param(usize),
}

/// A TSQL `INSERT INTO root.a.b(time, s1, …) [ALIGNED] VALUES ($1, $2, …), …`
/// scanned once (times and values either `$n` or plain literals), to be
/// bound many times by [`PreparedInsert::bind`].
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedInsert {
    device: String,
    aligned: bool,
    measurements: Vec<String>,
    times: Vec<Slot<i64>>,
    /// Row `r`'s values at `r * measurements.len() ..`.
    cells: Vec<Slot<Literal>>,
    params: usize,
}

/// A parameter's value as the text an INSERT literal would have (numbers;
/// empty for values bound without text).
pub struct ParamTexts(Vec<String>);

impl PreparedInsert {
    /// The statement as a prepared INSERT, or `None` when it is not one the
    /// scanner reads (it is then bound as text, as before).
    pub fn scan(sql: &str) -> Option<PreparedInsert> {
        let mut s = Scanner { text: sql, b: sql.as_bytes(), i: 0 };
        let Head { device, measurements, aligned } = s.head()?;
        let (device, measurements) = (device.to_string(), measurements.into_iter().map(str::to_string).collect::<Vec<_>>());
        let mut times = Vec::new();
        let mut cells = Vec::new();
        loop {
            s.ws();
            s.byte(b'(')?;
            s.ws();
            times.push(match s.param() {
                Some(n) => Slot::Param(n),
                None => Slot::Given(s.time()?),
            });
            for _ in 0..measurements.len() {
                s.ws();
                s.byte(b',')?;
                s.ws();
                cells.push(match s.param() {
                    Some(n) => Slot::Param(n),
                    None => Slot::Given(owned(s.value()?)),
                });
            }
            s.ws();
            s.byte(b')')?;
            s.ws();
            if !s.eat(b',') {
                break;
            }
        }
        while s.eat(b';') {
            s.ws();
        }
        if s.i != s.b.len() {
            return None;
        }
        let params = times
            .iter()
            .filter_map(|t| if let Slot::Param(n) = t { Some(n + 1) } else { None })
            .chain(cells.iter().filter_map(|c| if let Slot::Param(n) = c { Some(n + 1) } else { None }))
            .max()?;
        Some(PreparedInsert { device, aligned, measurements, times, cells, params })
    }

    /// The device path as written.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// How many parameters the statement takes (the largest `$n`).
    pub fn parameter_count(&self) -> usize {
        self.params
    }

    /// For each parameter `$n`, the measurement it is a value of, or `None`
    /// for a time (and for a parameter the statement does not use).
    pub fn parameter_targets(&self) -> Vec<Option<Option<&str>>> {
        let mut out = vec![None; self.params];
        for t in &self.times {
            if let Slot::Param(n) = t {
                out[*n] = Some(None);
            }
        }
        let width = self.measurements.len();
        for (i, c) in self.cells.iter().enumerate() {
            if let Slot::Param(n) = c {
                out[*n] = Some(Some(self.measurements[i % width].as_str()));
            }
        }
        out
    }

    /// Texts of the numeric parameters, for [`PreparedInsert::bind`].
    pub fn param_texts(&self, params: &[ScalarValue]) -> ParamTexts {
        ParamTexts(
            params
                .iter()
                .map(|v| match v {
                    ScalarValue::Int8(Some(x)) => x.to_string(),
                    ScalarValue::Int16(Some(x)) => x.to_string(),
                    ScalarValue::Int32(Some(x)) => x.to_string(),
                    ScalarValue::Int64(Some(x)) => x.to_string(),
                    ScalarValue::UInt8(Some(x)) => x.to_string(),
                    ScalarValue::UInt16(Some(x)) => x.to_string(),
                    ScalarValue::UInt32(Some(x)) => x.to_string(),
                    ScalarValue::UInt64(Some(x)) => x.to_string(),
                    ScalarValue::Float32(Some(x)) => format!("{x:?}"),
                    ScalarValue::Float64(Some(x)) => format!("{x:?}"),
                    _ => String::new(),
                })
                .collect(),
        )
    }

    /// The rows with `params` in place of their `$n`. `Ok(None)` for a value
    /// bound here differently than its text would be parsed (the caller binds
    /// the text instead); an error for a missing parameter.
    pub(crate) fn bind<'a>(&'a self, params: &'a [ScalarValue], texts: &'a ParamTexts) -> crate::error::Result<Option<RawInsert<'a>>> {
        if params.len() < self.params {
            return Err(crate::error::Error::Syntax(format!("there is no parameter ${} ({} bound)", self.params, params.len())));
        }
        let mut times = Vec::with_capacity(self.times.len());
        for t in &self.times {
            times.push(match t {
                Slot::Given(t) => *t,
                Slot::Param(n) => match &params[*n] {
                    ScalarValue::Int64(Some(x)) => *x,
                    ScalarValue::Int32(Some(x)) => i64::from(*x),
                    ScalarValue::Int16(Some(x)) => i64::from(*x),
                    ScalarValue::TimestampMillisecond(Some(x), _) => *x,
                    ScalarValue::TimestampMicrosecond(Some(x), _) => x.div_euclid(1000),
                    ScalarValue::TimestampSecond(Some(x), _) => match x.checked_mul(1000) {
                        Some(ms) => ms,
                        None => return Ok(None),
                    },
                    _ => return Ok(None),
                },
            });
        }
        let mut cells = Vec::with_capacity(self.cells.len());
        for c in &self.cells {
            cells.push(match c {
                Slot::Given(l) => l.as_ref(),
                Slot::Param(n) => match &params[*n] {
                    v if v.is_null() => LiteralRef::Null,
                    ScalarValue::Boolean(Some(b)) => LiteralRef::Boolean(*b),
                    ScalarValue::Float32(Some(_)) | ScalarValue::Float64(Some(_)) => LiteralRef::Float(&texts.0[*n]),
                    ScalarValue::Int8(_)
                    | ScalarValue::Int16(_)
                    | ScalarValue::Int32(_)
                    | ScalarValue::Int64(_)
                    | ScalarValue::UInt8(_)
                    | ScalarValue::UInt16(_)
                    | ScalarValue::UInt32(_)
                    | ScalarValue::UInt64(_) => LiteralRef::Integer(&texts.0[*n]),
                    ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => LiteralRef::Text(s),
                    ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) => LiteralRef::Blob(b),
                    _ => return Ok(None),
                },
            });
        }
        Ok(Some(RawInsert {
            device: &self.device,
            aligned: self.aligned,
            measurements: self.measurements.iter().map(String::as_str).collect(),
            times,
            cells,
        }))
    }
}

fn owned(l: LiteralRef<'_>) -> Literal {
    match l {
        LiteralRef::Integer(s) => Literal::Integer(s.to_string()),
        LiteralRef::Float(s) => Literal::Float(s.to_string()),
        LiteralRef::Boolean(b) => Literal::Boolean(b),
        LiteralRef::Text(s) => Literal::Text(s.to_string()),
        LiteralRef::Blob(b) => Literal::Blob(b.to_vec()),
        LiteralRef::Null => Literal::Null,
    }
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'a> Scanner<'a> {
    /// The statement's head: its device, measurements and `ALIGNED`.
    fn head(&mut self) -> Option<Head<'a>> {
        self.ws();
        self.keyword("insert")?;
        self.ws1()?;
        self.keyword("into")?;
        self.ws1()?;
        let device = self.path()?;
        self.ws();
        self.byte(b'(')?;
        self.ws();
        let time_column = self.ident()?;
        if !(time_column.eq_ignore_ascii_case("time") || time_column.eq_ignore_ascii_case("timestamp")) {
            return None;
        }
        let mut measurements = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                break;
            }
            self.byte(b',')?;
            self.ws();
            measurements.push(self.ident()?);
        }
        if measurements.is_empty() {
            return None;
        }
        self.ws();
        let aligned = self.keyword("aligned").is_some();
        if aligned {
            self.ws();
        }
        self.keyword("values")?;
        Some(Head { device, measurements, aligned })
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skip ASCII white space (the lexer's other white space and comments
    /// go to the full parser: they stop the scan where they appear).
    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn ws1(&mut self) -> Option<()> {
        let start = self.i;
        self.ws();
        (self.i > start).then_some(())
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    fn byte(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// A whole word equal to `kw` (any case).
    fn keyword(&mut self, kw: &str) -> Option<()> {
        let end = self.i + kw.len();
        let word = self.b.get(self.i..end)?;
        if !word.eq_ignore_ascii_case(kw.as_bytes()) || self.b.get(end).is_some_and(|c| is_word_byte(*c) || !c.is_ascii()) {
            return None;
        }
        self.i = end;
        Some(())
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`, ending where a lexer word would.
    fn ident(&mut self) -> Option<&'a str> {
        let start = self.i;
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') {
            return None;
        }
        while self.peek().is_some_and(is_word_byte) {
            self.i += 1;
        }
        if self.peek().is_some_and(|c| !c.is_ascii()) {
            return None;
        }
        Some(&self.text[start..self.i])
    }

    /// Identifiers joined by `.` with nothing between them.
    fn path(&mut self) -> Option<&'a str> {
        let start = self.i;
        self.ident()?;
        while self.eat(b'.') {
            self.ident()?;
        }
        Some(&self.text[start..self.i])
    }

    /// Digits, and where a number token would go on (letters, `_`, `.`,
    /// a date's `-`): `None`.
    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// After a number: the lexer's number token must end here too.
    fn number_ends(&self) -> Option<()> {
        match self.peek() {
            Some(c) if is_word_byte(c) || c == b'.' || c == b'-' || c == b'+' || !c.is_ascii() => None,
            _ => Some(()),
        }
    }

    /// A parameter `$n` (1 or more), as its 0-based index.
    fn param(&mut self) -> Option<usize> {
        if self.peek() != Some(b'$') {
            return None;
        }
        let start = self.i;
        self.i += 1;
        let digits = self.i;
        if self.digits() == 0 || self.number_ends().is_none() {
            self.i = start;
            return None;
        }
        match self.text[digits..self.i].parse::<usize>() {
            Ok(n) if (1..=65_535).contains(&n) => Some(n - 1),
            _ => {
                self.i = start;
                None
            }
        }
    }

    /// An integer time in milliseconds, `-` touching its digits.
    fn time(&mut self) -> Option<i64> {
        let negative = self.eat(b'-');
        let start = self.i;
        if self.digits() == 0 {
            return None;
        }
        self.number_ends()?;
        // As the parser: the digits are an i64, then negated.
        let t: i64 = self.text[start..self.i].parse().ok()?;
        Some(if negative { -t } else { t })
    }

    /// A number, `NULL`, `TRUE`/`FALSE` or a quoted string without escapes.
    fn value(&mut self) -> Option<LiteralRef<'a>> {
        let start = self.i;
        match self.peek()? {
            b'-' | b'0'..=b'9' => {
                self.eat(b'-');
                let whole = self.digits();
                if whole == 0 {
                    return None;
                }
                let mut float = false;
                if self.eat(b'.') {
                    float = true;
                    self.digits();
                }
                if matches!(self.peek(), Some(b'e' | b'E')) {
                    float = true;
                    self.i += 1;
                    if matches!(self.peek(), Some(b'-' | b'+')) {
                        self.i += 1;
                    }
                    if self.digits() == 0 {
                        return None;
                    }
                }
                self.number_ends()?;
                let text = &self.text[start..self.i];
                if float {
                    Some(LiteralRef::Float(text))
                } else if whole <= INTEGER_DIGITS_MAX {
                    Some(LiteralRef::Integer(text))
                } else {
                    None
                }
            }
            q @ (b'\'' | b'"') => {
                self.i += 1;
                let body = self.i;
                while self.peek()? != q {
                    self.i += 1;
                }
                let end = self.i;
                self.i += 1;
                // A doubled quote is an escape: the full parser unescapes it.
                if self.peek() == Some(q) {
                    return None;
                }
                Some(LiteralRef::Text(&self.text[body..end]))
            }
            _ => {
                let word = self.ident()?;
                if word.eq_ignore_ascii_case("null") {
                    Some(LiteralRef::Null)
                } else if word.eq_ignore_ascii_case("true") {
                    Some(LiteralRef::Boolean(true))
                } else if word.eq_ignore_ascii_case("false") {
                    Some(LiteralRef::Boolean(false))
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::Literal;
    use crate::tsql::ast::{Insert, Statement};
    use proptest::prelude::*;

    /// An INSERT as device, aligned, measurements, times and cells.
    type Shape<L> = (String, bool, Vec<String>, Vec<i64>, Vec<L>);

    /// What the full parser makes of `sql`, in the scanner's shape.
    fn parsed(sql: &str) -> Option<Shape<Literal>> {
        match crate::tsql::parse(sql, 0) {
            Ok(Statement::Insert(Insert { device, aligned, measurements, rows })) => {
                let times = rows.iter().map(|(t, _)| *t).collect();
                let cells = rows.into_iter().flat_map(|(_, v)| v).collect();
                Some((device, aligned, measurements, times, cells))
            }
            _ => None,
        }
    }

    fn scanned(sql: &str) -> Option<Shape<LiteralRef<'_>>> {
        scan(sql).map(|r| (r.device.to_string(), r.aligned, r.measurements.iter().map(|m| m.to_string()).collect(), r.times, r.cells))
    }

    /// Whenever the scanner reads a statement, the full parser reads the same.
    fn agree(sql: &str) {
        let Some((device, aligned, measurements, times, cells)) = scanned(sql) else { return };
        let Some(full) = parsed(sql) else { panic!("scanned but the parser refuses: {sql}") };
        let full_cells: Vec<LiteralRef<'_>> = full.4.iter().map(Literal::as_ref).collect();
        assert_eq!((device, aligned, measurements, times, cells), (full.0, full.1, full.2, full.3, full_cells), "{sql}");
    }

    #[test]
    fn plain_inserts_are_scanned() {
        let r = scan("INSERT INTO root.sg.d1(timestamp, s1, s2) VALUES (1, 2, 3.5), (-2, -4, 1e-3);").unwrap();
        assert_eq!(r.device, "root.sg.d1");
        assert!(!r.aligned);
        assert_eq!(r.measurements, ["s1", "s2"]);
        assert_eq!(r.times, [1, -2]);
        assert_eq!(r.cells, [LiteralRef::Integer("2"), LiteralRef::Float("3.5"), LiteralRef::Integer("-4"), LiteralRef::Float("1e-3")]);
        let r = scan(" insert into root.a.b (time,t,u,v) aligned values(5,'x y',null,TRUE)").unwrap();
        assert!(r.aligned);
        assert_eq!(r.cells, [LiteralRef::Text("x y"), LiteralRef::Null, LiteralRef::Boolean(true)]);
        agree("insert into root.a.b (time,t,u,v) aligned values(5,'x y',null,TRUE)");
    }

    #[test]
    fn anything_unusual_goes_to_the_full_parser() {
        for sql in [
            "INSERT INTO root.sg.d1(s1) VALUES (1)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (2024-01-01T00:00:00, 1)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (now(), 1)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, - 1)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, +1)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, NaN)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, 'it''s')",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, X'00')",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, 1_000)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1.5, 1)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, 1) garbage",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, 1, 2)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1)",
            "INSERT INTO root.sg.`d1`(time, s1) VALUES (1, 1)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, 1) -- comment",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, 1d)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1 + 1d, 1)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, 12345678901234567890123456789012345678901234)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, é)",
            "INSERT INTO root.sg.d1(time, sé) VALUES (1, 2)",
            "INSERT INTO root. sg.d1(time, s1) VALUES (1, 2)",
            "INSERTINTO root.sg.d1(time, s1) VALUES (1, 2)",
            "INSERT INTO root.sg.d1(time, s1) VALUES (1, 2),",
            "INSERT INTO root.sg.d1(time, s1) VALUES (99999999999999999999, 2)",
        ] {
            assert_eq!(scan(sql), None, "{sql}");
        }
    }

    #[test]
    fn a_prepared_insert_binds_as_its_bound_text_scans() {
        let sql = "INSERT INTO root.sg.d(time, s1, s2, s3) VALUES ($1, $2, $3, 7), ($4, 'lit', NULL, $2)";
        let prepared = PreparedInsert::scan(sql).unwrap();
        assert_eq!(prepared.parameter_count(), 4);
        assert_eq!(prepared.parameter_targets(), vec![Some(None), Some(Some("s3")), Some(Some("s2")), Some(None)]);
        let params = [ScalarValue::Int64(Some(5)), ScalarValue::Float64(Some(-2.5)), ScalarValue::Utf8(Some("a b".into())), ScalarValue::Int32(Some(-6))];
        let texts = prepared.param_texts(&params);
        let bound = prepared.bind(&params, &texts).unwrap().unwrap();
        let text = crate::tsql::bind(sql, &params).unwrap();
        assert_eq!(Some(bound), scan(&text), "{text}");
        // Parameters the text form would parse otherwise, or not at all: bound as text.
        let iso = [ScalarValue::Utf8(Some("2024-01-01T00:00:00".into())), ScalarValue::Int64(Some(1)), ScalarValue::Int64(Some(1)), ScalarValue::Int64(Some(1))];
        assert_eq!(prepared.bind(&iso, &prepared.param_texts(&iso)).unwrap(), None);
        assert!(prepared.bind(&params[..3], &texts).is_err(), "a missing parameter");
        for sql in [
            "INSERT INTO root.sg.d(time, s1) VALUES (1, 2)",
            "INSERT INTO root.sg.d(time, s1) VALUES ($0, $1)",
            "INSERT INTO root.sg.d(time, s1) VALUES ($1, $2x)",
            "INSERT INTO root.sg.d(time, s1) VALUES ($1, '$2')",
            "SELECT s1 FROM root.sg.d WHERE time > $1",
        ] {
            let params = PreparedInsert::scan(sql).map(|p| p.parameter_count());
            assert!(params.is_none() || sql.contains("'$2'") && params == Some(1), "{sql}: {params:?}");
        }
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            any::<i32>().prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| format!("{v:?}")),
            (-1000i32..1000, 0u32..100).prop_map(|(a, b)| format!("{a}.{b}")),
            "[0-9]{1,45}",
            "-?[0-9]{1,3}(\\.[0-9]{0,3})?([eE][+-]?[0-9]{1,2})?",
            Just("NULL".to_string()),
            Just("true".to_string()),
            Just("False".to_string()),
            Just("NaN".to_string()),
            "'[a-z ;,()]{0,6}'",
            "\"[a-z]{0,4}\"",
            "[-+0-9a-zA-Z._' ]{1,6}",
        ]
    }

    proptest! {
        /// Random statements, some malformed: the scanner never reads one
        /// the full parser reads differently, and reads the plain ones.
        #[test]
        fn the_scanner_agrees_with_the_parser(
            device in "root(\\.[a-z_][a-z0-9_]{0,3}){1,3}",
            aligned in any::<bool>(),
            width in 1usize..4,
            rows in prop::collection::vec((any::<i64>(), prop::collection::vec(value(), 1..5)), 1..4),
            spaces in "[ \t\n]{0,2}",
        ) {
            let measurements: Vec<String> = (0..width).map(|i| format!("s{i}")).collect();
            let rows: Vec<String> = rows
                .iter()
                .map(|(t, values)| {
                    let v: Vec<String> = (0..width).map(|i| values.get(i).cloned().unwrap_or_else(|| "1".into())).collect();
                    format!("({t},{spaces}{})", v.join(&format!(",{spaces}")))
                })
                .collect();
            let sql = format!(
                "INSERT INTO {device}(time, {}){spaces}{} VALUES {}",
                measurements.join(", "),
                if aligned { " ALIGNED" } else { "" },
                rows.join(&format!("{spaces},"))
            );
            agree(&sql);
        }

        /// Numbers, NULLs and booleans with integer times: always the fast path.
        #[test]
        fn plain_inserts_take_the_fast_path(
            rows in prop::collection::vec((-1_000_000_000_000i64..1_000_000_000_000, prop::collection::vec(prop_oneof![
                any::<i64>().prop_map(|v| v.to_string()),
                any::<f32>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| format!("{v:?}")),
                Just("null".to_string()),
                Just("TRUE".to_string()),
            ], 3)), 1..20),
        ) {
            let rows: Vec<String> = rows.iter().map(|(t, v)| format!("({t}, {})", v.join(", "))).collect();
            let sql = format!("INSERT INTO root.sg.d(timestamp, a, b, c) VALUES {}", rows.join(", "));
            prop_assert!(scan(&sql).is_some(), "{}", sql);
            agree(&sql);
        }
    }
}

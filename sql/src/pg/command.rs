//! Session statements: the transaction, parameter, notification and cursor
//! commands drivers send around their queries, recognised from statement
//! text (sqlparser knows only some of their forms, and `SHOW transaction
//! isolation level` or `MOVE` not at all), and the splitting of a simple
//! query's text into statements.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Error, Result};

/// One transaction characteristic (`ISOLATION LEVEL …`, `READ ONLY`, `DEFERRABLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransactionMode {
    Isolation(&'static str),
    ReadOnly(bool),
    Deferrable(bool),
}

/// Where a `FETCH`/`MOVE` goes, forward only (Arbor's cursors are `NO SCROLL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The next `n` rows (`NEXT`, `FORWARD n`, `n`, `RELATIVE n` for n ≥ 1).
    Forward(u64),
    /// Every remaining row.
    All,
    /// To absolute row `n` (1-based) and return it; 0 is before the first row.
    Absolute(u64),
    /// The last row.
    Last,
    /// `RELATIVE 0`: the current row again.
    Current,
    /// A backward move, which a forward-only cursor cannot make.
    Backward,
}

/// A session statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Begin(Vec<TransactionMode>),
    Commit,
    Rollback,
    /// `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`: accepted, with their tag
    /// (Arbor writes are durable at once; there is nothing to roll back to).
    Savepoint(&'static str),
    /// `SET name = value`; `None` is `DEFAULT`.
    Set { name: String, value: Option<String> },
    /// `SET TRANSACTION …` (`session == false`) or `SET SESSION CHARACTERISTICS AS TRANSACTION …`.
    SetTransaction { session: bool, modes: Vec<TransactionMode> },
    /// `RESET name`; `None` is `RESET ALL`.
    Reset(Option<String>),
    /// `SHOW name`; `None` is `SHOW ALL`.
    Show(Option<String>),
    /// `DISCARD ALL|PLANS|SEQUENCES|TEMP`, with the word after DISCARD.
    Discard(String),
    /// `DEALLOCATE ALL` (a named one goes to the planner, which owns prepared statements).
    DeallocateAll,
    Listen(String),
    /// `UNLISTEN channel`; `None` is `UNLISTEN *`.
    Unlisten(Option<String>),
    Notify { channel: String, payload: Option<String> },
    Fetch { direction: Direction, cursor: String, move_only: bool },
    /// `CLOSE name`; `None` is `CLOSE ALL`.
    Close(Option<String>),
}

impl Command {
    /// Whether this statement could be one: its first word is a session
    /// command's (cheap; the text may still be something else).
    pub(crate) fn starts(text: &str) -> bool {
        let word: String = text.trim_start().chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        matches!(
            word.to_ascii_uppercase().as_str(),
            "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE" | "SET" | "RESET" | "SHOW"
                | "DISCARD" | "DEALLOCATE" | "LISTEN" | "UNLISTEN" | "NOTIFY" | "FETCH" | "MOVE" | "CLOSE"
        )
    }
}

/// A token of a session statement.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An unquoted word, upper-cased.
    Keyword(String),
    /// An identifier in double quotes, as written.
    Quoted(String),
    Str(String),
    Number(String),
    Punct(char),
}

fn tokens(text: &str) -> Result<Vec<Tok>> {
    let dialect = PostgreSqlDialect {};
    let raw = Tokenizer::new(&dialect, text).tokenize().map_err(|e| Error::Syntax(e.to_string()))?;
    let mut out = Vec::new();
    for t in raw {
        out.push(match t {
            Token::Whitespace(_) | Token::EOF => continue,
            Token::Word(w) if w.quote_style.is_some() => Tok::Quoted(w.value),
            Token::Word(w) => Tok::Keyword(w.value.to_ascii_uppercase()),
            Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) | Token::NationalStringLiteral(s) => Tok::Str(s),
            Token::DollarQuotedString(s) => Tok::Str(s.value),
            Token::Number(n, _) => Tok::Number(n),
            Token::Eq => Tok::Punct('='),
            Token::Comma => Tok::Punct(','),
            Token::Mul => Tok::Punct('*'),
            Token::Minus => Tok::Punct('-'),
            Token::Plus => Tok::Punct('+'),
            Token::Period => Tok::Punct('.'),
            Token::SemiColon => Tok::Punct(';'),
            other => return Err(Error::Syntax(format!("syntax error at or near \"{other}\""))),
        });
    }
    while out.last() == Some(&Tok::Punct(';')) {
        out.pop();
    }
    Ok(out)
}

/// A cursor over a statement's tokens.
struct Words {
    toks: Vec<Tok>,
    at: usize,
}

impl Words {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn is(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Tok::Keyword(k)) if k == keyword)
    }

    /// Consume `keyword` if it is next.
    fn eat(&mut self, keyword: &str) -> bool {
        let yes = self.is(keyword);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(&Tok::Punct(c));
        if yes {
            self.at += 1;
        }
        yes
    }

    fn expect(&mut self, keyword: &str) -> Result<()> {
        if self.eat(keyword) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn done(&self) -> bool {
        self.at >= self.toks.len()
    }

    fn unexpected(&self) -> Error {
        match self.peek() {
            Some(t) => Error::Syntax(format!("syntax error at or near \"{}\"", show(t))),
            None => Error::Syntax("syntax error at end of input".into()),
        }
    }

    fn end(&self) -> Result<()> {
        if self.done() {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// A name: an identifier (folded to lower case unless quoted).
    fn name(&mut self) -> Result<String> {
        let n = match self.peek() {
            Some(Tok::Keyword(k)) => k.to_ascii_lowercase(),
            Some(Tok::Quoted(q)) => q.clone(),
            _ => return Err(self.unexpected()),
        };
        self.at += 1;
        Ok(n)
    }

    /// A possibly qualified parameter name (`search_path`, `myapp.user_id`).
    fn dotted_name(&mut self) -> Result<String> {
        let mut n = self.name()?;
        while self.eat_punct('.') {
            n.push('.');
            n.push_str(&self.name()?);
        }
        Ok(n)
    }

    /// One value of `SET`: a word, string or signed number.
    fn value(&mut self) -> Result<String> {
        self.list_value(false)
    }

    /// One value of a list parameter, where a quoted identifier keeps its
    /// quotes (`search_path = public, "$user"`), as PostgreSQL stores it.
    fn list_value(&mut self, list: bool) -> Result<String> {
        let sign = if self.eat_punct('-') {
            "-"
        } else {
            self.eat_punct('+');
            ""
        };
        let v = match self.peek() {
            Some(Tok::Keyword(k)) if sign.is_empty() => k.to_ascii_lowercase(),
            Some(Tok::Quoted(q)) if sign.is_empty() && list => format!("\"{q}\""),
            Some(Tok::Quoted(q) | Tok::Str(q)) if sign.is_empty() => q.clone(),
            Some(Tok::Number(n)) => format!("{sign}{n}"),
            _ => return Err(self.unexpected()),
        };
        self.at += 1;
        Ok(v)
    }

    /// A signed integer count.
    fn count(&mut self) -> Option<i64> {
        let save = self.at;
        let negative = self.eat_punct('-');
        if !negative {
            self.eat_punct('+');
        }
        if let Some(Tok::Number(n)) = self.peek() {
            if let Ok(v) = n.parse::<i64>() {
                self.at += 1;
                return Some(if negative { -v } else { v });
            }
        }
        self.at = save;
        None
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Keyword(k) => k.clone(),
        Tok::Quoted(q) => format!("\"{q}\""),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Number(n) => n.clone(),
        Tok::Punct(c) => c.to_string(),
    }
}

/// The session statement in `text`, `Ok(None)` when it is not one.
pub(crate) fn parse(text: &str) -> Result<Option<Command>> {
    if !Command::starts(text) {
        return Ok(None);
    }
    let mut w = Words { toks: tokens(text)?, at: 0 };
    let Some(Tok::Keyword(first)) = w.peek().cloned() else { return Ok(None) };
    w.at += 1;
    let command = match first.as_str() {
        "BEGIN" => {
            let _ = w.eat("WORK") || w.eat("TRANSACTION");
            Command::Begin(modes(&mut w)?)
        }
        "START" => {
            w.expect("TRANSACTION")?;
            Command::Begin(modes(&mut w)?)
        }
        "COMMIT" | "END" => {
            if w.is("PREPARED") {
                return Err(Error::Unsupported("COMMIT PREPARED: Arbor has no two-phase commit".into()));
            }
            let _ = w.eat("WORK") || w.eat("TRANSACTION");
            chain(&mut w)?;
            Command::Commit
        }
        "ROLLBACK" | "ABORT" => {
            if w.is("PREPARED") {
                return Err(Error::Unsupported("ROLLBACK PREPARED: Arbor has no two-phase commit".into()));
            }
            let _ = w.eat("WORK") || w.eat("TRANSACTION");
            if first == "ROLLBACK" && w.eat("TO") {
                w.eat("SAVEPOINT");
                w.name()?;
                w.end()?;
                return Ok(Some(Command::Savepoint("ROLLBACK")));
            }
            chain(&mut w)?;
            Command::Rollback
        }
        "SAVEPOINT" => {
            w.name()?;
            Command::Savepoint("SAVEPOINT")
        }
        "RELEASE" => {
            w.eat("SAVEPOINT");
            w.name()?;
            Command::Savepoint("RELEASE")
        }
        "SET" => set(&mut w)?,
        "RESET" => Command::Reset(if w.eat("ALL") { None } else { Some(parameter_name(&mut w)?) }),
        "SHOW" => Command::Show(if w.eat("ALL") { None } else { Some(parameter_name(&mut w)?) }),
        "DISCARD" => {
            let what = match w.peek() {
                Some(Tok::Keyword(k)) if matches!(k.as_str(), "ALL" | "PLANS" | "SEQUENCES" | "TEMP" | "TEMPORARY") => k.clone(),
                _ => return Err(w.unexpected()),
            };
            w.at += 1;
            Command::Discard(if what == "TEMPORARY" { "TEMP".into() } else { what })
        }
        "DEALLOCATE" => {
            w.eat("PREPARE");
            if !w.eat("ALL") {
                return Ok(None);
            }
            Command::DeallocateAll
        }
        "LISTEN" => Command::Listen(w.name()?),
        "UNLISTEN" => Command::Unlisten(if w.eat_punct('*') { None } else { Some(w.name()?) }),
        "NOTIFY" => {
            let channel = w.name()?;
            let payload = if w.eat_punct(',') {
                match w.peek().cloned() {
                    Some(Tok::Str(s)) => {
                        w.at += 1;
                        Some(s)
                    }
                    _ => return Err(w.unexpected()),
                }
            } else {
                None
            };
            Command::Notify { channel, payload }
        }
        "FETCH" | "MOVE" => {
            let direction = direction(&mut w)?;
            let _ = w.eat("FROM") || w.eat("IN");
            Command::Fetch { direction, cursor: w.name()?, move_only: first == "MOVE" }
        }
        "CLOSE" => Command::Close(if w.eat("ALL") { None } else { Some(w.name()?) }),
        _ => return Ok(None),
    };
    w.end()?;
    Ok(Some(command))
}

/// `[AND [NO] CHAIN]` after COMMIT/ROLLBACK.
fn chain(w: &mut Words) -> Result<()> {
    if w.eat("AND") {
        let no = w.eat("NO");
        w.expect("CHAIN")?;
        if !no {
            return Err(Error::Unsupported("COMMIT AND CHAIN".into()));
        }
    }
    Ok(())
}

/// Transaction modes, optionally separated by commas.
fn modes(w: &mut Words) -> Result<Vec<TransactionMode>> {
    let mut out = Vec::new();
    loop {
        if w.eat("ISOLATION") {
            w.expect("LEVEL")?;
            let level = if w.eat("SERIALIZABLE") {
                "serializable"
            } else if w.eat("REPEATABLE") {
                w.expect("READ")?;
                "repeatable read"
            } else if w.eat("READ") {
                if w.eat("COMMITTED") {
                    "read committed"
                } else {
                    w.expect("UNCOMMITTED")?;
                    "read uncommitted"
                }
            } else {
                return Err(w.unexpected());
            };
            out.push(TransactionMode::Isolation(level));
        } else if w.eat("READ") {
            if w.eat("ONLY") {
                out.push(TransactionMode::ReadOnly(true));
            } else {
                w.expect("WRITE")?;
                out.push(TransactionMode::ReadOnly(false));
            }
        } else if w.eat("NOT") {
            w.expect("DEFERRABLE")?;
            out.push(TransactionMode::Deferrable(false));
        } else if w.eat("DEFERRABLE") {
            out.push(TransactionMode::Deferrable(true));
        } else {
            break;
        }
        w.eat_punct(',');
    }
    Ok(out)
}

/// The parameter of `SHOW`/`RESET`, with PostgreSQL's multi-word spellings.
fn parameter_name(w: &mut Words) -> Result<String> {
    if w.eat("TIME") {
        w.expect("ZONE")?;
        return Ok("timezone".into());
    }
    if w.is("TRANSACTION") {
        w.at += 1;
        w.expect("ISOLATION")?;
        w.expect("LEVEL")?;
        return Ok("transaction_isolation".into());
    }
    if w.is("SESSION") && matches!(w.toks.get(w.at + 1), Some(Tok::Keyword(k)) if k == "AUTHORIZATION") {
        w.at += 2;
        return Ok("session_authorization".into());
    }
    w.dotted_name()
}

fn set(w: &mut Words) -> Result<Command> {
    // SESSION is the default scope; LOCAL (this transaction only) is taken
    // as SESSION: Arbor has no transaction to end the setting with.
    if w.eat("LOCAL") {
    } else if w.is("SESSION") {
        match w.toks.get(w.at + 1) {
            Some(Tok::Keyword(k)) if k == "CHARACTERISTICS" => {
                w.at += 2;
                w.expect("AS")?;
                w.expect("TRANSACTION")?;
                return Ok(Command::SetTransaction { session: true, modes: modes(w)? });
            }
            Some(Tok::Keyword(k)) if k == "AUTHORIZATION" => {
                w.at += 2;
                let value = if w.eat("DEFAULT") { None } else { Some(w.value()?) };
                return Ok(Command::Set { name: "session_authorization".into(), value });
            }
            _ => w.at += 1,
        }
    }
    if w.eat("TRANSACTION") {
        if w.eat("SNAPSHOT") {
            return Err(Error::Unsupported("SET TRANSACTION SNAPSHOT".into()));
        }
        return Ok(Command::SetTransaction { session: false, modes: modes(w)? });
    }
    if w.eat("CONSTRAINTS") {
        // Arbor has no deferrable constraints: nothing to defer.
        while !w.done() {
            w.at += 1;
        }
        return Ok(Command::Savepoint("SET CONSTRAINTS"));
    }
    let name = if w.is("TIME") && matches!(w.toks.get(w.at + 1), Some(Tok::Keyword(k)) if k == "ZONE") {
        w.at += 2;
        if w.eat("LOCAL") || w.eat("DEFAULT") {
            return Ok(Command::Set { name: "timezone".into(), value: None });
        }
        // `SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE` is rare; the plain forms are what clients send.
        return Ok(Command::Set { name: "timezone".into(), value: Some(w.value()?) });
    } else if w.eat("NAMES") {
        "client_encoding".to_string()
    } else if w.eat("SCHEMA") {
        "search_path".to_string()
    } else if w.eat("ROLE") {
        "role".to_string()
    } else {
        let n = w.dotted_name()?;
        if !(w.eat("TO") || w.eat_punct('=')) {
            return Err(w.unexpected());
        }
        n
    };
    if w.eat("DEFAULT") {
        return Ok(Command::Set { name, value: None });
    }
    let list = name == "search_path" || w.toks[w.at..].contains(&Tok::Punct(','));
    let mut values = vec![w.list_value(list)?];
    while w.eat_punct(',') {
        values.push(w.list_value(list)?);
    }
    Ok(Command::Set { name, value: Some(values.join(", ")) })
}

fn direction(w: &mut Words) -> Result<Direction> {
    let forward = |n: i64| match n {
        0 => Direction::Current,
        n if n > 0 => Direction::Forward(n as u64),
        _ => Direction::Backward,
    };
    Ok(if w.eat("NEXT") {
        Direction::Forward(1)
    } else if w.eat("PRIOR") {
        Direction::Backward
    } else if w.eat("FIRST") {
        Direction::Absolute(1)
    } else if w.eat("LAST") {
        Direction::Last
    } else if w.eat("ABSOLUTE") {
        match w.count() {
            Some(n) if n >= 0 => Direction::Absolute(n as u64),
            Some(_) => Direction::Backward,
            None => return Err(w.unexpected()),
        }
    } else if w.eat("RELATIVE") {
        forward(w.count().ok_or_else(|| w.unexpected())?)
    } else if w.eat("ALL") {
        Direction::All
    } else if w.eat("FORWARD") {
        if w.eat("ALL") {
            Direction::All
        } else {
            w.count().map_or(Direction::Forward(1), forward)
        }
    } else if w.eat("BACKWARD") {
        if !w.eat("ALL") {
            w.count();
        }
        Direction::Backward
    } else if let Some(n) = w.count() {
        forward(n)
    } else {
        Direction::Forward(1)
    })
}

/// The statements of a simple query's text, split at top-level `;`
/// (quotes, dollar quotes and comments respected). Text the tokenizer
/// rejects comes back whole, for the parser to report.
pub(crate) fn split_statements(sql: &str) -> Vec<&str> {
    let dialect = PostgreSqlDialect {};
    let Ok(toks) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return vec![sql];
    };
    // Token locations are (line, column in chars); walk the text once to
    // turn each `;` location into a byte offset.
    let mut out = Vec::new();
    let (mut line, mut col, mut byte) = (1u64, 1u64, 0usize);
    let mut chars = sql.char_indices().peekable();
    let mut start = 0;
    for t in toks.iter().filter(|t| t.token == Token::SemiColon) {
        let target = (t.span.start.line, t.span.start.column);
        while (line, col) < target {
            let Some((_, c)) = chars.next() else { break };
            byte += c.len_utf8();
            if c == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
        }
        out.push(&sql[start..byte]);
        start = byte + 1;
    }
    out.push(&sql[start.min(sql.len())..]);
    out.into_iter().filter(|s| !crate::query_text::is_empty_query(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(sql: &str) -> Command {
        parse(sql).unwrap().unwrap_or_else(|| panic!("{sql} is a session command"))
    }

    #[test]
    fn driver_session_statements_are_recognised() {
        assert_eq!(cmd("show transaction isolation level"), Command::Show(Some("transaction_isolation".into())));
        assert_eq!(cmd("SHOW TimeZone"), Command::Show(Some("timezone".into())));
        assert_eq!(cmd("SHOW \"TimeZone\""), Command::Show(Some("TimeZone".into())));
        assert_eq!(cmd("SHOW ALL"), Command::Show(None));
        assert_eq!(cmd("SET search_path TO public, \"$user\""), Command::Set { name: "search_path".into(), value: Some("public, \"$user\"".into()) });
        assert_eq!(cmd("SET extra_float_digits = 3"), Command::Set { name: "extra_float_digits".into(), value: Some("3".into()) });
        assert_eq!(cmd("set TIME ZONE 'Europe/Berlin';"), Command::Set { name: "timezone".into(), value: Some("Europe/Berlin".into()) });
        assert_eq!(cmd("SET statement_timeout = -1"), Command::Set { name: "statement_timeout".into(), value: Some("-1".into()) });
        assert_eq!(cmd("SET LOCAL myapp.user = DEFAULT"), Command::Set { name: "myapp.user".into(), value: None });
        assert_eq!(
            cmd("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
            Command::SetTransaction { session: true, modes: vec![TransactionMode::Isolation("repeatable read"), TransactionMode::ReadOnly(true)] }
        );
        assert_eq!(cmd("BEGIN ISOLATION LEVEL SERIALIZABLE NOT DEFERRABLE"), Command::Begin(vec![TransactionMode::Isolation("serializable"), TransactionMode::Deferrable(false)]));
        assert_eq!(cmd("START TRANSACTION READ WRITE"), Command::Begin(vec![TransactionMode::ReadOnly(false)]));
        assert_eq!(cmd("COMMIT WORK"), Command::Commit);
        assert_eq!(cmd("ROLLBACK TO SAVEPOINT s1"), Command::Savepoint("ROLLBACK"));
        assert_eq!(cmd("RESET ALL"), Command::Reset(None));
        assert_eq!(cmd("DISCARD ALL"), Command::Discard("ALL".into()));
        assert_eq!(cmd("UNLISTEN *"), Command::Unlisten(None));
        assert_eq!(cmd("NOTIFY jobs, 'x'"), Command::Notify { channel: "jobs".into(), payload: Some("x".into()) });
        assert_eq!(cmd("CLOSE ALL"), Command::Close(None));
        assert_eq!(cmd("CLOSE \"C1\""), Command::Close(Some("C1".into())));
        assert_eq!(cmd("FETCH FORWARD 5 FROM \"c\""), Command::Fetch { direction: Direction::Forward(5), cursor: "c".into(), move_only: false });
        assert_eq!(cmd("FETCH c"), Command::Fetch { direction: Direction::Forward(1), cursor: "c".into(), move_only: false });
        assert_eq!(cmd("FETCH ALL IN c"), Command::Fetch { direction: Direction::All, cursor: "c".into(), move_only: false });
        assert_eq!(cmd("fetch absolute 3 c"), Command::Fetch { direction: Direction::Absolute(3), cursor: "c".into(), move_only: false });
        assert_eq!(cmd("MOVE -1 IN c"), Command::Fetch { direction: Direction::Backward, cursor: "c".into(), move_only: true });
        assert_eq!(cmd("FETCH 10 c"), Command::Fetch { direction: Direction::Forward(10), cursor: "c".into(), move_only: false });
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert_eq!(parse("DEALLOCATE p1").unwrap(), None);
        assert!(parse("SET").is_err());
        assert!(parse("FETCH FORWARD 5 FROM").is_err());
        assert!(parse("BEGIN ISOLATION LEVEL SOMETIMES").is_err());
    }

    #[test]
    fn statements_split_at_top_level_semicolons() {
        assert_eq!(
            split_statements("SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;"),
            ["SELECT pg_advisory_unlock_all()", "\nCLOSE ALL", "\nUNLISTEN *", "\nRESET ALL"]
        );
        assert_eq!(split_statements("SELECT 'a;b', $$x;y$$; -- c;\nSELECT \"é;\" /* ; */"), ["SELECT 'a;b', $$x;y$$", " -- c;\nSELECT \"é;\" /* ; */"]);
        assert_eq!(split_statements("SELECT 'unterminated"), ["SELECT 'unterminated"]);
        assert_eq!(split_statements(" ; "), Vec::<&str>::new());
    }
}

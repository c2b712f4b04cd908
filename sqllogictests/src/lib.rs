//! The sqllogictest runner: starts the real `arbor` binary on a free port
//! with a fresh data directory and runs `.slt` files over the wire with
//! `tokio-postgres`, in simple or extended query mode.
//!
//! Beyond the sqllogictest format, a file may hold these lines:
//! - `# arbor: restart` — stop the server gracefully (SIGTERM) and start it
//!   again on the same data directory;
//! - `# arbor: crash` — kill it with SIGKILL and start it again.
//!
//! Errors are reported as `SQLSTATE message`, so `statement error 42P01`
//! checks the code.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// How statements are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The simple query protocol (`Query` messages, text results).
    Simple,
    /// The extended protocol (Parse/Bind/Execute, binary results).
    Extended,
}

/// A running `arbor` process on its own data directory.
pub struct Server {
    binary: PathBuf,
    data_dir: PathBuf,
    /// Extra command-line arguments (e.g. `--config FILE`).
    args: Vec<String>,
    child: Option<Child>,
    port: u16,
}

impl Server {
    /// Start `binary` serving `data_dir` on a free port.
    pub fn start(binary: &Path, data_dir: &Path) -> Result<Server, String> {
        Server::start_with_args(binary, data_dir, &[])
    }

    /// Start `binary` with extra command-line arguments.
    pub fn start_with_args(binary: &Path, data_dir: &Path, args: &[&str]) -> Result<Server, String> {
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut server = Server { binary: binary.to_path_buf(), data_dir: data_dir.to_path_buf(), args, child: None, port: 0 };
        server.spawn()?;
        Ok(server)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new(&self.binary)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(&self.args)
            .env("ARBOR_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("arbor listening on ") {
                        break addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).ok_or(format!("bad address line {line:?}"))?;
                    }
                }
                _ => {
                    let status = child.wait().map_err(|e| e.to_string())?;
                    return Err(format!("arbor exited before listening: {status}"));
                }
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
        self.port = port;
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stop gracefully (SIGTERM) and wait for the process to exit.
    pub fn stop(&mut self) -> Result<(), String> {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                    if !status.success() {
                        return Err(format!("arbor exited with {status} on SIGTERM"));
                    }
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    return Err("arbor did not stop within 30 s of SIGTERM".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Kill with SIGKILL: nothing is flushed.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self, crash: bool) -> Result<(), String> {
        if crash {
            self.crash();
        } else {
            self.stop()?;
        }
        self.spawn()
    }

    /// A connected client (user root, password root).
    pub async fn connect(&self) -> Result<Client, String> {
        let conf = format!("host=127.0.0.1 port={} user=root password=root dbname=arbor", self.port);
        let (client, connection) = tokio_postgres::connect(&conf, NoTls).await.map_err(|e| format!("connect: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.crash();
    }
}

/// An error as the runner shows it: the SQLSTATE, then the message.
#[derive(Debug)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

fn db_error(e: tokio_postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => DbError(format!("{} {}", db.code().code(), db.message())),
        None => DbError(format!("client error: {e}")),
    }
}

/// A sqllogictest connection to Arbor.
pub struct ArborDb {
    client: Client,
    mode: Mode,
}

impl ArborDb {
    pub fn new(client: Client, mode: Mode) -> Self {
        ArborDb { client, mode }
    }
}

/// Text of one value of an extended-protocol (binary) row, as PostgreSQL
/// prints it in text format, so both modes give the same strings.
fn binary_value_text(row: &tokio_postgres::Row, i: usize) -> Result<String, DbError> {
    let ty = row.columns()[i].type_().clone();
    let bad = |e: tokio_postgres::Error| DbError(format!("cannot decode column {i} of type {ty}: {e}"));
    macro_rules! get {
        ($t:ty, $f:expr) => {
            row.try_get::<_, Option<$t>>(i).map_err(bad)?.map($f)
        };
    }
    let text = match ty {
        Type::BOOL => get!(bool, |b| if b { "t".to_string() } else { "f".to_string() }),
        Type::INT2 => get!(i16, |v| v.to_string()),
        Type::INT4 => get!(i32, |v| v.to_string()),
        Type::INT8 => get!(i64, |v| v.to_string()),
        Type::OID => get!(u32, |v| v.to_string()),
        Type::FLOAT4 => get!(f32, |v| float_text(v, 6)),
        Type::FLOAT8 => get!(f64, |v| float_text(v, 15)),
        Type::TIMESTAMPTZ => get!(chrono::DateTime<chrono::Utc>, |t| pg_timestamp(t.naive_utc(), "+00")),
        Type::TIMESTAMP => get!(chrono::NaiveDateTime, |t| pg_timestamp(t, "")),
        Type::DATE => get!(chrono::NaiveDate, |d| d.format("%Y-%m-%d").to_string()),
        Type::BYTEA => get!(Vec<u8>, |b| format!("\\x{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())),
        Type::NUMERIC => get!(NumericText, |n| n.0),
        _ => get!(String, |s| s),
    };
    Ok(text.unwrap_or_else(|| "NULL".into()))
}

/// A binary `numeric` as PostgreSQL prints it: base-10000 digit groups,
/// the weight of the first, a sign and the number of decimals shown.
struct NumericText(String);

impl<'a> tokio_postgres::types::FromSql<'a> for NumericText {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let word = |i: usize| raw.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or("numeric value too short");
        let (count, weight, sign, scale) = (usize::from(word(0)?), i64::from(word(2)? as i16), word(4)?, usize::from(word(6)?));
        if sign == 0xC000 {
            return Ok(NumericText("NaN".into()));
        }
        let digits = (0..count).map(|k| word(8 + 2 * k)).collect::<Result<Vec<u16>, _>>()?;
        let group = |j: i64| usize::try_from(j).ok().and_then(|j| digits.get(j).copied()).unwrap_or(0);
        let mut text = if sign == 0x4000 { String::from("-") } else { String::new() };
        if weight < 0 {
            text.push('0');
        }
        for j in 0..=weight {
            text.push_str(&if j == 0 { group(j).to_string() } else { format!("{:04}", group(j)) });
        }
        let mut fraction = String::new();
        let mut j = weight + 1;
        while fraction.len() < scale {
            fraction.push_str(&format!("{:04}", group(j)));
            j += 1;
        }
        fraction.truncate(scale);
        if !fraction.is_empty() {
            text.push('.');
            text.push_str(&fraction);
        }
        Ok(NumericText(text))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// The server's text timestamps carry six fractional digits
/// (`00:00:00.000000+00`); PostgreSQL drops trailing zeros. Normalise so both
/// protocol modes compare equal.
fn normalise_text(v: &str) -> String {
    // arrow-pg prints whole floats as `13.0`; PostgreSQL prints `13`.
    if let Some(int) = v.strip_suffix(".0") {
        if !int.is_empty() && int.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) {
            return int.to_string();
        }
    }
    let bytes = v.as_bytes();
    let looks_like_ts = bytes.len() >= 26 && bytes[4] == b'-' && bytes[10] == b' ' && bytes[19] == b'.';
    if !looks_like_ts {
        return v.to_string();
    }
    let (head, rest) = v.split_at(20);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let zone = &rest[digits.len()..];
    let trimmed = digits.trim_end_matches('0');
    if trimmed.is_empty() {
        format!("{}{zone}", &head[..19])
    } else {
        format!("{head}{trimmed}{zone}")
    }
}

/// A binary float as PostgreSQL's text form prints it: shortest digits,
/// exponent form (`1e+20`, `1.5e-07`) below 1e-4 or from 10^`digits`.
fn float_text<F: Into<f64> + Copy + std::fmt::Display + std::fmt::LowerExp>(v: F, digits: i32) -> String {
    let f: f64 = v.into();
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let sci = format!("{v:e}");
    let exp: i32 = sci.split_once('e').and_then(|(_, e)| e.parse().ok()).unwrap_or(0);
    if f != 0.0 && (exp < -4 || exp >= digits) {
        let (mantissa, _) = sci.split_once('e').unwrap_or((&sci, ""));
        return format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    v.to_string()
}

fn pg_timestamp(t: chrono::NaiveDateTime, zone: &str) -> String {
    let frac = t.and_utc().timestamp_subsec_micros();
    let base = t.format("%Y-%m-%d %H:%M:%S").to_string();
    if frac == 0 {
        format!("{base}{zone}")
    } else {
        let digits = format!("{frac:06}");
        format!("{base}.{}{zone}", digits.trim_end_matches('0'))
    }
}

#[async_trait::async_trait]
impl AsyncDB for ArborDb {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        match self.mode {
            Mode::Simple => {
                let messages = self.client.simple_query(sql).await.map_err(db_error)?;
                let mut rows = Vec::new();
                let mut columns = None;
                let mut affected = 0;
                for m in messages {
                    match m {
                        SimpleQueryMessage::RowDescription(cols) => columns = Some(cols.len()),
                        SimpleQueryMessage::Row(row) => {
                            columns = Some(row.len());
                            rows.push((0..row.len()).map(|i| row.get(i).map_or("NULL".to_string(), normalise_text)).collect::<Vec<_>>());
                        }
                        SimpleQueryMessage::CommandComplete(n) => affected = n,
                        _ => {}
                    }
                }
                Ok(match columns {
                    Some(n) => DBOutput::Rows { types: vec![DefaultColumnType::Any; n], rows },
                    None => DBOutput::StatementComplete(affected),
                })
            }
            Mode::Extended => {
                let stmt = self.client.prepare(sql).await.map_err(db_error)?;
                if stmt.columns().is_empty() {
                    let n = self.client.execute(&stmt, &[]).await.map_err(db_error)?;
                    return Ok(DBOutput::StatementComplete(n));
                }
                let rows = self.client.query(&stmt, &[]).await.map_err(db_error)?;
                let n = stmt.columns().len();
                let rows = rows
                    .iter()
                    .map(|r| (0..n).map(|i| binary_value_text(r, i)).collect::<Result<Vec<_>, _>>())
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; n], rows })
            }
        }
    }

    fn engine_name(&self) -> &str {
        "arbor"
    }

    async fn shutdown(&mut self) {}

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await
    }
}

/// What a file is split into: runs of records separated by restart directives.
enum Segment {
    Script(String),
    Restart { crash: bool },
    /// `COPY … FROM STDIN` with its data and the expected outcome.
    Copy { line: usize, statement: String, data: String, expect: CopyExpect },
}

/// What a `# arbor: copy` directive expects.
#[derive(Debug, PartialEq)]
enum CopyExpect {
    Rows(u64),
    Error(String),
}

/// Split at directives; each script is padded with blank lines so the
/// sqllogictest parser reports the file's own line numbers.
///
/// `# arbor: copy rows=N` (or `error=SQLSTATE`) is followed by a COPY
/// statement line, its data lines, and `# arbor: end`.
fn segments(text: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if let Some(spec) = line.trim().strip_prefix("# arbor: copy ") {
            let expect = match spec.trim().split_once('=') {
                Some(("rows", count)) => CopyExpect::Rows(count.parse().map_err(|_| format!("line {}: bad row count {count:?}", n + 1))?),
                Some(("error", code)) => CopyExpect::Error(code.to_string()),
                _ => return Err(format!("line {}: expected `# arbor: copy rows=N` or `error=SQLSTATE`", n + 1)),
            };
            let Some((_, statement)) = lines.next() else { return Err(format!("line {}: COPY statement missing", n + 1)) };
            let mut data = String::new();
            let mut body = 1;
            loop {
                let Some((_, l)) = lines.next() else { return Err(format!("line {}: `# arbor: end` missing", n + 1)) };
                body += 1;
                if l.trim() == "# arbor: end" {
                    break;
                }
                data.push_str(l);
                data.push('\n');
            }
            let lines_so_far = current.lines().count() + 1 + body;
            out.push(Segment::Script(std::mem::replace(&mut current, "\n".repeat(lines_so_far))));
            out.push(Segment::Copy { line: n + 1, statement: statement.to_string(), data, expect });
            continue;
        }
        let directive = match line.trim() {
            "# arbor: restart" => Some(false),
            "# arbor: crash" => Some(true),
            _ => None,
        };
        match directive {
            Some(crash) => {
                let lines_so_far = current.lines().count() + 1;
                out.push(Segment::Script(std::mem::replace(&mut current, "\n".repeat(lines_so_far))));
                out.push(Segment::Restart { crash });
            }
            None => {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    out.push(Segment::Script(current));
    Ok(out)
}

/// Run one COPY directive and check its outcome.
async fn run_copy(port: u16, statement: &str, data: String, expect: &CopyExpect) -> Result<(), String> {
    use futures::SinkExt;
    let conf = format!("host=127.0.0.1 port={port} user=root password=root dbname=arbor");
    let (client, connection) = tokio_postgres::connect(&conf, NoTls).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let outcome = async {
        let sink = client.copy_in::<_, bytes::Bytes>(statement).await?;
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from(data)).await?;
        sink.finish().await
    }
    .await;
    let got = match outcome {
        Ok(n) => CopyExpect::Rows(n),
        Err(e) => CopyExpect::Error(e.as_db_error().map_or_else(|| e.to_string(), |d| d.code().code().to_string())),
    };
    if &got == expect {
        Ok(())
    } else {
        Err(format!("expected {expect:?}, got {got:?}"))
    }
}

/// Run one `.slt` file against a fresh server; returns the number of
/// statement and query records it holds.
pub async fn run_file(binary: &Path, file: &Path, mode: Mode) -> Result<usize, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let name = file.display().to_string();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut server = Server::start(binary, dir.path())?;
    let mut records = 0;
    for segment in segments(&text).map_err(|e| format!("{name}: {e}"))? {
        match segment {
            Segment::Restart { crash } => server.restart(crash)?,
            Segment::Copy { line, statement, data, expect } => {
                records += 1;
                run_copy(server.port(), &statement, data, &expect).await.map_err(|e| format!("{mode:?} mode: {name}:{line}: {e}"))?;
            }
            Segment::Script(script) => {
                let parsed = sqllogictest::parse_with_name::<DefaultColumnType>(&script, name.clone()).map_err(|e| format!("{name}: {e}"))?;
                records += parsed
                    .iter()
                    .filter(|r| matches!(r, sqllogictest::Record::Statement { .. } | sqllogictest::Record::Query { .. }))
                    .count();
                let port = server.port();
                let mut runner = sqllogictest::Runner::new(move || async move {
                    let conf = format!("host=127.0.0.1 port={port} user=root password=root dbname=arbor");
                    let (client, connection) = tokio_postgres::connect(&conf, NoTls).await.map_err(db_error)?;
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    Ok(ArborDb::new(client, mode))
                });
                // `onlyif simple` / `onlyif extended`: where text and binary
                // results differ (a binary timestamptz is an instant, printed
                // in UTC, not in the session's time zone).
                runner.add_label(match mode {
                    Mode::Simple => "simple",
                    Mode::Extended => "extended",
                });
                runner
                    .run_script_with_name_async(&script, name.clone())
                    .await
                    .map_err(|e| format!("{mode:?} mode: {}", e.display(false)))?;
            }
        }
    }
    server.stop()?;
    Ok(records)
}

/// Every `.slt` file under `dir`, sorted.
pub fn slt_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "slt") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Where the suites live: `$ARBOR_SLT_DIR` if set, else `sqllogictests/slt`.
pub fn suites_dir() -> PathBuf {
    match std::env::var_os("ARBOR_SLT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("slt"),
    }
}

//! `arbor-bench`: the workload driver. Loads the paper workload (10
//! devices × 10 DOUBLE sensors, one day at 1 s) and the late-data workload
//! (100 devices × 10 sensors, one hour at 1 s, 5 % of records delayed up to
//! 2 h) into an already running server over the PostgreSQL wire protocol,
//! then times Q1–Q6 in TSQL and in SQL (simple query protocol, text
//! results, until every row is decoded) and prints a table against the
//! targets. `--target postgres` loads the same data into plain tables of a
//! PostgreSQL server and runs the SQL twins, for comparison. `--workload
//! ingest` times the other ingest forms (binary COPY, 1,000-row INSERTs,
//! a COPY with a Device column, 16 connections at once; `ingest.rs`).

#[path = "arbor_bench/ingest.rs"]
mod ingest;
#[path = "arbor_bench/queries.rs"]
mod queries;
#[path = "arbor_bench/workload.rs"]
mod workload;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures::SinkExt;
use tokio_postgres::{Client, NoTls};

use crate::queries::{describe_error, iso_sql, Outcome, Query};
use crate::workload::{Record, SENSORS};

/// Seeds of the two workloads' generators.
const PAPER_SEED: u64 = 1;
const LATE_SEED: u64 = 2;
/// 2024-01-01T00:00:00Z: the paper workload's day.
const PAPER_START_MS: i64 = 1_704_067_200_000;
/// 2024-01-02T00:00:00Z: the late-data workload's hour.
const LATE_START_MS: i64 = 1_704_153_600_000;
/// 2023-01-01T00:00:00Z: the year workload's start, and its length.
const YEAR_START_MS: i64 = 1_672_531_200_000;
const YEAR_SECONDS: i64 = 365 * 86_400;
/// The late-data device Q6 reads.
const Q6_DEVICE: usize = 7;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub(crate) enum Target {
    /// Arbor: TSQL and SQL on device tables `"root.bench.dN"`.
    Arbor,
    /// PostgreSQL: SQL on plain tables `bench_dN`, `late_dN`.
    Postgres,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Workload {
    Paper,
    Late,
    /// Paper and late together.
    All,
    /// A year of one sensor at 1 s (31.5 M points) for GROUP BY time
    /// from statistics (QY); not part of `all`.
    Year,
    /// Ingest rates only (no queries), each form into its own database:
    /// binary COPY, 1,000-row INSERTs, one COPY with a Device column in
    /// delivery order, 16 connections inserting at once; `--only` picks
    /// forms by name (binary, rows, ooo, concurrent). Not part of `all`.
    Ingest,
}

#[derive(Parser, Debug)]
#[command(name = "arbor-bench", about = "Workload driver: loads the paper and late-data workloads over pgwire and times Q1–Q6")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 6667)]
    port: u16,
    #[arg(long, default_value = "root")]
    user: String,
    #[arg(long, default_value = "root")]
    password: String,
    /// Database to connect to (default: arbor, or postgres with --target postgres).
    #[arg(long)]
    dbname: Option<String>,
    #[arg(long, value_enum, default_value_t = Target::Arbor)]
    target: Target,
    #[arg(long, value_enum, default_value_t = Workload::All)]
    workload: Workload,
    /// Load the data first (the default).
    #[arg(long, overrides_with = "no_load")]
    load: bool,
    /// Skip loading: the data is already there.
    #[arg(long, overrides_with = "load")]
    no_load: bool,
    /// Timed runs per query (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only these queries, e.g. `Q1,Q3b` (exact names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Scale the time spans (the day and the hour) by this factor, e.g.
    /// 0.05 for a quick run against a debug build. Devices and sensors stay.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Records per late-data message (one INSERT per device per message).
    #[arg(long, default_value_t = 1000)]
    message_records: usize,
}

/// Where the data lies, after scaling.
pub(crate) struct Layout {
    pub(crate) paper_devices: usize,
    pub(crate) paper_start_ms: i64,
    pub(crate) paper_seconds: usize,
    pub(crate) late_devices: usize,
    pub(crate) late_start_ms: i64,
    pub(crate) late_seconds: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("arbor-bench: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if !(args.scale > 0.0 && args.scale <= 1.0) {
        return Err("--scale must be in (0, 1]".into());
    }
    let scaled = |seconds: f64| ((seconds * args.scale).round() as usize).max(60);
    let layout = Layout {
        paper_devices: 10,
        paper_start_ms: PAPER_START_MS,
        paper_seconds: scaled(86_400.0),
        late_devices: 100,
        late_start_ms: LATE_START_MS,
        late_seconds: scaled(3_600.0),
    };
    let paper = matches!(args.workload, Workload::Paper | Workload::All);
    let late = matches!(args.workload, Workload::Late | Workload::All);
    let year = args.workload == Workload::Year;
    let load = !args.no_load;
    let client = connect(&args).await?;
    let target = args.target;
    if args.workload == Workload::Ingest {
        if target != Target::Arbor {
            return Err("--workload ingest runs against Arbor only".into());
        }
        if let Some(unknown) = args.only.iter().find(|o| !ingest::LOADS.iter().any(|l| l.eq_ignore_ascii_case(o.trim()))) {
            return Err(format!("--only {unknown}: the ingest workload's forms are {}", ingest::LOADS.join(", ")));
        }
        println!("arbor-bench: ingest forms at {}:{}, scale {}", args.host, args.port, args.scale);
        return ingest::run(&args, &client, &layout, &args.only).await;
    }

    println!(
        "arbor-bench: target {:?} at {}:{}, workload {:?}, scale {}, {} runs per query",
        target, args.host, args.port, args.workload, args.scale, args.runs
    );
    let mut queries = Vec::new();
    if paper {
        if load {
            load_paper(&client, target, &layout).await?;
        }
        queries.extend(queries::paper_queries(target, &layout));
    }
    if late {
        let started = Instant::now();
        let records = workload::late_records(LATE_SEED, layout.late_devices, layout.late_start_ms, layout.late_seconds, 0.05);
        println!(
            "late data: {} records generated in {:.1} s, {} delivered after a later record of their device",
            records.len(),
            started.elapsed().as_secs_f64(),
            workload::out_of_order(&records)
        );
        if load {
            load_late(&client, target, &layout, &records, args.message_records.max(1)).await?;
        }
        let expected = workload::expected_device(&records, Q6_DEVICE);
        queries.extend(queries::late_queries(target, &layout, Q6_DEVICE, &expected));
    }
    if year && target == Target::Arbor {
        let seconds = ((YEAR_SECONDS as f64 * args.scale).round() as i64).max(86_400);
        if load {
            load_year(&client, seconds).await?;
        }
        queries.push(queries::year_query(YEAR_START_MS, seconds));
    }
    if !args.only.is_empty() {
        queries.retain(|q| args.only.iter().any(|o| o.trim().eq_ignore_ascii_case(q.id)));
    }
    println!();
    report(&client, &queries, args.runs.max(1)).await;
    Ok(())
}

async fn connect(args: &Args) -> Result<Client, String> {
    let dbname = args.dbname.clone().unwrap_or_else(|| match args.target {
        Target::Arbor => "arbor".into(),
        Target::Postgres => "postgres".into(),
    });
    let mut config = tokio_postgres::Config::new();
    config.host(&args.host).port(args.port).user(&args.user).password(&args.password).dbname(&dbname);
    config.application_name("arbor-bench");
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("cannot connect to {}:{} as {}: {e}", args.host, args.port, args.user))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("arbor-bench: connection: {e}");
        }
    });
    if args.target == Target::Postgres {
        client.batch_execute("SET TimeZone = 'UTC'").await.map_err(|e| describe_error(&e))?;
    }
    Ok(client)
}

/// Run statements, failing on the first error.
async fn execute(client: &Client, sql: &str) -> Result<(), String> {
    client.simple_query(sql).await.map(|_| ()).map_err(|e| format!("{}\n  in: {}", describe_error(&e), abbreviate(sql)))
}

/// On Arbor, warn when `device` already holds data: loading again
/// overwrites every point, which leaves unsequence files overlapping the
/// sequence ones (inexact statistics, merged reads) until compaction.
async fn warn_if_loaded(client: &Client, device: &str) {
    let Ok(messages) = client.simple_query(&format!("SELECT count(s0) FROM {device}")).await else { return };
    let count = messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(r.len().saturating_sub(1)).and_then(|c| c.parse::<u64>().ok()),
        _ => None,
    });
    if let Some(n) = count.filter(|n| *n > 0) {
        eprintln!(
            "warning: {device} already holds data ({n} points of s0); loading again overwrites it, leaving overlapping \
             unsequence files that slow reads until compaction. Use an empty data directory, or --no-load."
        );
    }
}

/// Run a schema statement; "already exists" (42710, 42P04, 42P07) is
/// fine, anything else is noted (a load that needs it fails later).
async fn create(client: &Client, sql: &str) {
    if let Err(e) = client.simple_query(sql).await {
        let exists = e.as_db_error().is_some_and(|db| matches!(db.code().code(), "42710" | "42P04" | "42P07"));
        if !exists {
            eprintln!("note: {} ({})", describe_error(&e), abbreviate(sql));
        }
    }
}

fn abbreviate(sql: &str) -> String {
    match sql.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &sql[..i]),
        None => sql.to_string(),
    }
}

fn sensor_list() -> String {
    (0..SENSORS).map(|s| format!("s{s}")).collect::<Vec<_>>().join(", ")
}

/// One point a second per device, COPY per device (CSV), then FLUSH.
async fn load_paper(client: &Client, target: Target, layout: &Layout) -> Result<(), String> {
    let columns = sensor_list();
    match target {
        Target::Arbor => {
            warn_if_loaded(client, "root.bench.d0").await;
            create(client, "CREATE DATABASE root.bench").await;
            for d in 0..layout.paper_devices {
                let series: Vec<String> = (0..SENSORS).map(|s| format!("s{s} DOUBLE")).collect();
                create(client, &format!("CREATE ALIGNED TIMESERIES root.bench.d{d}({})", series.join(", "))).await;
            }
        }
        Target::Postgres => {
            for d in 0..layout.paper_devices {
                let t = queries::table(target, "bench", d);
                let series: Vec<String> = (0..SENSORS).map(|s| format!("s{s} double precision")).collect();
                execute(client, &format!("DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (time timestamptz PRIMARY KEY, {})", series.join(", "))).await?;
            }
        }
    }
    let mut generating = Duration::ZERO;
    let mut sending = Duration::ZERO;
    let mut points = 0usize;
    for d in 0..layout.paper_devices {
        let started = Instant::now();
        let rows = workload::device_rows(PAPER_SEED, d, layout.paper_start_ms, layout.paper_seconds);
        let mut chunks = Vec::new();
        let mut csv = String::with_capacity(1 << 20);
        for (time, values) in &rows {
            use std::fmt::Write as _;
            match target {
                Target::Arbor => write!(csv, "{time}"),
                Target::Postgres => write!(csv, "{}", iso_sql(*time)),
            }
            .map_err(|e| e.to_string())?;
            for v in values {
                write!(csv, ",{v:.2}").map_err(|e| e.to_string())?;
            }
            csv.push('\n');
            if csv.len() >= 1 << 20 {
                chunks.push(bytes::Bytes::from(std::mem::replace(&mut csv, String::with_capacity(1 << 20))));
            }
        }
        chunks.push(bytes::Bytes::from(csv));
        generating += started.elapsed();
        let started = Instant::now();
        let statement = format!("COPY {} (time, {columns}) FROM STDIN (FORMAT csv)", queries::table(target, "bench", d));
        let sink = client.copy_in::<_, bytes::Bytes>(statement.as_str()).await.map_err(|e| format!("{} ({statement})", describe_error(&e)))?;
        futures::pin_mut!(sink);
        for chunk in chunks {
            sink.send(chunk).await.map_err(|e| format!("{} ({statement})", describe_error(&e)))?;
        }
        let copied = sink.finish().await.map_err(|e| format!("{} ({statement})", describe_error(&e)))?;
        if copied as usize != rows.len() {
            return Err(format!("{statement}: COPY {copied}, expected {}", rows.len()));
        }
        sending += started.elapsed();
        points += rows.len() * SENSORS;
    }
    let started = Instant::now();
    match target {
        Target::Arbor => execute(client, "FLUSH").await?,
        Target::Postgres => {
            let tables: Vec<String> = (0..layout.paper_devices).map(|d| queries::table(target, "bench", d)).collect();
            execute(client, &format!("VACUUM ANALYZE {}", tables.join(", "))).await?;
        }
    }
    let flushing = started.elapsed();
    println!(
        "paper load: {points} points in {:.2} s by COPY ({:.0} points/s; {:.2} s generating them), then {} in {:.2} s ({:.0} points/s overall)",
        sending.as_secs_f64(),
        points as f64 / sending.as_secs_f64(),
        generating.as_secs_f64(),
        if target == Target::Arbor { "FLUSH" } else { "VACUUM ANALYZE" },
        flushing.as_secs_f64(),
        points as f64 / (sending + flushing).as_secs_f64()
    );
    Ok(())
}

/// The year workload: `root.year.d1.s`, one DOUBLE point a second, sent by
/// COPY in 1 MiB chunks generated as they go.
async fn load_year(client: &Client, seconds: i64) -> Result<(), String> {
    warn_if_loaded(client, "root.year.d1").await;
    create(client, "CREATE DATABASE root.year").await;
    create(client, "CREATE TIMESERIES root.year.d1.s WITH DATATYPE=DOUBLE").await;
    let started = Instant::now();
    let statement = "COPY \"root.year.d1\" (time, s) FROM STDIN (FORMAT csv)";
    // One COPY per ten days keeps the generated CSV text small (the server
    // streams a COPY of any size into the WAL).
    const DAYS_PER_COPY: i64 = 10;
    let mut copied = 0u64;
    let mut first = 0i64;
    while first < seconds {
        let last = (first + DAYS_PER_COPY * 86_400).min(seconds);
        let sink = client.copy_in::<_, bytes::Bytes>(statement).await.map_err(|e| format!("{} ({statement})", describe_error(&e)))?;
        futures::pin_mut!(sink);
        let mut csv = String::with_capacity(1 << 20);
        for i in first..last {
            use std::fmt::Write as _;
            let t = YEAR_START_MS + i * 1000;
            // A daily sinusoid plus a slow drift, two decimals.
            let v = 20.0 + 5.0 * ((i % 86_400) as f64 * std::f64::consts::TAU / 86_400.0).sin() + (i / 86_400) as f64 * 0.01;
            writeln!(csv, "{t},{v:.2}").map_err(|e| e.to_string())?;
            if csv.len() >= 1 << 20 {
                let chunk = bytes::Bytes::from(std::mem::replace(&mut csv, String::with_capacity(1 << 20)));
                sink.send(chunk).await.map_err(|e| format!("{} ({statement})", describe_error(&e)))?;
            }
        }
        sink.send(bytes::Bytes::from(csv)).await.map_err(|e| format!("{} ({statement})", describe_error(&e)))?;
        copied += sink.finish().await.map_err(|e| format!("{} ({statement})", describe_error(&e)))?;
        first = last;
    }
    let sending = started.elapsed();
    let started = Instant::now();
    execute(client, "FLUSH").await?;
    println!(
        "year load: {copied} points in {:.2} s by COPY ({:.0} points/s), FLUSH in {:.2} s",
        sending.as_secs_f64(),
        copied as f64 / sending.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The records in delivery order, `message_records` per message; a
/// message is one simple query holding one INSERT per device in it.
async fn load_late(client: &Client, target: Target, layout: &Layout, records: &[Record], message_records: usize) -> Result<(), String> {
    let columns = sensor_list();
    match target {
        Target::Arbor => {
            warn_if_loaded(client, "root.late.d0").await;
            create(client, "CREATE DATABASE root.late").await;
            // Not aligned: the INSERTs below name no ALIGNED. Explicit
            // DOUBLE, where auto-creation would infer the type.
            for d in 0..layout.late_devices {
                let statements: Vec<String> = (0..SENSORS).map(|s| format!("CREATE TIMESERIES root.late.d{d}.s{s} WITH DATATYPE=DOUBLE")).collect();
                create(client, &statements.join("; ")).await;
            }
        }
        Target::Postgres => {
            for d in 0..layout.late_devices {
                let t = queries::table(target, "late", d);
                let series: Vec<String> = (0..SENSORS).map(|s| format!("s{s} double precision")).collect();
                execute(client, &format!("DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (time timestamptz PRIMARY KEY, {})", series.join(", "))).await?;
            }
        }
    }
    let upsert: Vec<String> = (0..SENSORS).map(|s| format!("s{s} = excluded.s{s}")).collect();
    let upsert = format!(" ON CONFLICT (time) DO UPDATE SET {}", upsert.join(", "));
    let mut sending = Duration::ZERO;
    let mut messages = 0usize;
    let mut statements = 0usize;
    let mut by_device: Vec<Vec<&Record>> = vec![Vec::new(); layout.late_devices];
    for message in records.chunks(message_records) {
        for r in message {
            by_device[r.device].push(r);
        }
        let mut sql = String::with_capacity(message.len() * 100);
        for (d, rows) in by_device.iter_mut().enumerate() {
            if rows.is_empty() {
                continue;
            }
            use std::fmt::Write as _;
            let _ = match target {
                Target::Arbor => write!(sql, "INSERT INTO root.late.d{d}(timestamp, {columns}) VALUES "),
                Target::Postgres => write!(sql, "INSERT INTO {} (time, {columns}) VALUES ", queries::table(target, "late", d)),
            };
            for (i, r) in rows.iter().enumerate() {
                sql.push_str(if i == 0 { "(" } else { ", (" });
                let _ = match target {
                    Target::Arbor => write!(sql, "{}", r.time_ms),
                    Target::Postgres => write!(sql, "'{}'", iso_sql(r.time_ms)),
                };
                for v in &r.values {
                    let _ = write!(sql, ", {v:.2}");
                }
                sql.push(')');
            }
            if target == Target::Postgres {
                sql.push_str(&upsert);
            }
            sql.push_str(";\n");
            statements += 1;
            rows.clear();
        }
        let started = Instant::now();
        execute(client, &sql).await?;
        sending += started.elapsed();
        messages += 1;
    }
    let started = Instant::now();
    match target {
        Target::Arbor => execute(client, "FLUSH").await?,
        Target::Postgres => {
            let tables: Vec<String> = (0..layout.late_devices).map(|d| queries::table(target, "late", d)).collect();
            execute(client, &format!("VACUUM ANALYZE {}", tables.join(", "))).await?;
        }
    }
    let flushing = started.elapsed();
    let points = records.len() * SENSORS;
    println!(
        "late load: {points} points in {messages} messages ({statements} INSERTs) in {:.2} s ({:.0} points/s), then {} in {:.2} s",
        sending.as_secs_f64(),
        points as f64 / sending.as_secs_f64(),
        if target == Target::Arbor { "FLUSH" } else { "VACUUM ANALYZE" },
        flushing.as_secs_f64()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Run every query and print the table.
async fn report(client: &Client, queries: &[Query], runs: usize) {
    println!(
        "{:<5} {:<7} {:>7} {:>10} {:>10} {:>10} {:>8}  result",
        "query", "surface", "rows", "median ms", "min ms", "max ms", "target"
    );
    let mut problems = Vec::new();
    for q in queries {
        let outcome = queries::run(client, q, runs).await;
        let head = format!("{:<5} {:<7}", q.id, q.surface.name());
        let target = format!("≤ {}", q.target_ms);
        match outcome {
            Outcome::Failed(e) => {
                println!("{head} {:>7} {:>10} {:>10} {:>10} {target:>8}  {e}", "-", "-", "-", "-");
            }
            Outcome::Timed { rows, mut runs, problem } => {
                runs.sort();
                let median = ms(runs[runs.len() / 2]);
                let mark = match &problem {
                    Some(p) => format!("WRONG: {p}"),
                    None if median <= q.target_ms => "pass".to_string(),
                    None => "miss".to_string(),
                };
                println!(
                    "{head} {rows:>7} {median:>10.3} {:>10.3} {:>10.3} {target:>8}  {mark}",
                    ms(runs[0]),
                    ms(runs[runs.len() - 1])
                );
                if problem.is_some() {
                    problems.push(format!("{} {}: {}", q.id, q.surface.name(), abbreviate(&q.text)));
                }
            }
        }
    }
    for p in problems {
        println!("  wrong answer from {p}");
    }
}

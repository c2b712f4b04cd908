//! The ingest forms of issue 10 besides the two workloads' own loads
//! (`--workload ingest`), each into its own database and followed by an
//! untimed FLUSH: the paper data by binary COPY (`binary`), the paper data
//! by multi-row INSERTs of 1,000 rows, one statement per message (`rows`),
//! the late-data records by one align-by-device COPY in delivery order
//! (`ooo`), and 16 connections inserting 1,000-row statements at once
//! (`concurrent`). `--only` picks some of them by these names.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::SinkExt;
use tokio_postgres::Client;

use crate::queries::describe_error;
use crate::workload::{self, Record, SENSORS};
use crate::{create, execute, sensor_list, Args, Layout, LATE_SEED, PAPER_SEED};

/// Rows per INSERT statement (`rows`, `concurrent`).
const STATEMENT_ROWS: usize = 1_000;
/// Connections of `concurrent`.
const CONNECTIONS: usize = 16;
/// CopyData messages of about this size.
const CHUNK_BYTES: usize = 1 << 20;
/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// The ingest loads by name.
pub(crate) const LOADS: [&str; 4] = ["binary", "rows", "ooo", "concurrent"];

/// Run the loads `only` names (all when empty).
pub(crate) async fn run(args: &Args, client: &Client, layout: &Layout, only: &[String]) -> Result<(), String> {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o.trim().eq_ignore_ascii_case(name));
    if wanted("binary") {
        load_binary(client, layout).await?;
    }
    if wanted("rows") {
        load_rows(client, layout).await?;
    }
    if wanted("ooo") {
        load_ooo(client, layout).await?;
    }
    if wanted("concurrent") {
        load_concurrent(args, client, layout).await?;
    }
    Ok(())
}

fn report(name: &str, points: usize, how: &str, took: Duration, flushing: Duration) {
    println!(
        "{name} load: {points} points {how} in {:.2} s ({:.0} points/s), then FLUSH in {:.2} s",
        took.as_secs_f64(),
        points as f64 / took.as_secs_f64(),
        flushing.as_secs_f64()
    );
}

async fn flush(client: &Client) -> Result<Duration, String> {
    let started = Instant::now();
    execute(client, "FLUSH").await?;
    Ok(started.elapsed())
}

/// Aligned DOUBLE devices `root.<database>.d0..`.
async fn create_aligned(client: &Client, database: &str, devices: usize) {
    create(client, &format!("CREATE DATABASE root.{database}")).await;
    for d in 0..devices {
        let series: Vec<String> = (0..SENSORS).map(|s| format!("s{s} DOUBLE")).collect();
        create(client, &format!("CREATE ALIGNED TIMESERIES root.{database}.d{d}({})", series.join(", "))).await;
    }
}

/// Non-aligned DOUBLE series `root.<database>.dN.s0..` for devices `devices`.
async fn create_plain(client: &Client, database: &str, devices: std::ops::Range<usize>) {
    create(client, &format!("CREATE DATABASE root.{database}")).await;
    for d in devices {
        let statements: Vec<String> = (0..SENSORS).map(|s| format!("CREATE TIMESERIES root.{database}.d{d}.s{s} WITH DATATYPE=DOUBLE")).collect();
        create(client, &statements.join("; ")).await;
    }
}

/// PostgreSQL's binary COPY of `rows` (time as timestamptz, ten float8s),
/// in messages of about [`CHUNK_BYTES`].
fn binary_copy(rows: &[(i64, [f64; SENSORS])]) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut buf = BytesMut::with_capacity(CHUNK_BYTES + 256);
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_u32(0);
    buf.put_u32(0);
    for (time, values) in rows {
        buf.put_i16(1 + SENSORS as i16);
        buf.put_i32(8);
        buf.put_i64(time * 1000 - PG_EPOCH_US);
        for v in values {
            buf.put_i32(8);
            buf.put_f64(*v);
        }
        if buf.len() >= CHUNK_BYTES {
            chunks.push(buf.split().freeze());
        }
    }
    buf.put_i16(-1);
    chunks.push(buf.freeze());
    chunks
}

/// Send `chunks` as one COPY; returns its row count.
async fn copy_in(client: &Client, statement: &str, chunks: Vec<Bytes>) -> Result<u64, String> {
    let sink = client.copy_in::<_, Bytes>(statement).await.map_err(|e| format!("{} ({statement})", describe_error(&e)))?;
    futures::pin_mut!(sink);
    for chunk in chunks {
        sink.send(chunk).await.map_err(|e| format!("{} ({statement})", describe_error(&e)))?;
    }
    sink.finish().await.map_err(|e| format!("{} ({statement})", describe_error(&e)))
}

/// The paper data into `root.bin`, one binary COPY per device.
async fn load_binary(client: &Client, layout: &Layout) -> Result<(), String> {
    create_aligned(client, "bin", layout.paper_devices).await;
    let columns = sensor_list();
    let mut sending = Duration::ZERO;
    let mut points = 0;
    for d in 0..layout.paper_devices {
        let rows = workload::device_rows(PAPER_SEED, d, layout.paper_start_ms, layout.paper_seconds);
        let chunks = binary_copy(&rows);
        let statement = format!("COPY \"root.bin.d{d}\" (time, {columns}) FROM STDIN (FORMAT binary)");
        let started = Instant::now();
        let copied = copy_in(client, &statement, chunks).await?;
        sending += started.elapsed();
        if copied as usize != rows.len() {
            return Err(format!("{statement}: COPY {copied}, expected {}", rows.len()));
        }
        points += rows.len() * SENSORS;
    }
    report("binary COPY", points, "by binary COPY", sending, flush(client).await?);
    Ok(())
}

/// `INSERT INTO root.<database>.d<d>(timestamp, s0, …) VALUES …` of `rows`.
fn insert_statement(database: &str, device: usize, rows: &[(i64, [f64; SENSORS])]) -> String {
    let mut sql = String::with_capacity(rows.len() * 80 + 100);
    let _ = write!(sql, "INSERT INTO root.{database}.d{device}(timestamp, {}) VALUES ", sensor_list());
    for (i, (time, values)) in rows.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        let _ = write!(sql, "{time}");
        for v in values {
            let _ = write!(sql, ", {v:.2}");
        }
        sql.push(')');
    }
    sql
}

/// The paper data into `root.rows`, 1,000-row INSERTs, one per message.
async fn load_rows(client: &Client, layout: &Layout) -> Result<(), String> {
    create_plain(client, "rows", 0..layout.paper_devices).await;
    let mut sending = Duration::ZERO;
    let mut points = 0;
    let mut statements = 0;
    for d in 0..layout.paper_devices {
        let rows = workload::device_rows(PAPER_SEED, d, layout.paper_start_ms, layout.paper_seconds);
        let texts: Vec<String> = rows.chunks(STATEMENT_ROWS).map(|c| insert_statement("rows", d, c)).collect();
        let started = Instant::now();
        for sql in &texts {
            execute(client, sql).await?;
        }
        sending += started.elapsed();
        statements += texts.len();
        points += rows.len() * SENSORS;
    }
    report("multi-row INSERT", points, &format!("in {statements} INSERTs of {STATEMENT_ROWS} rows"), sending, flush(client).await?);
    Ok(())
}

/// The late-data records into `root.ooo` by one COPY in IoTDB's
/// align-by-device layout (`Time,Device,s0,…`), in delivery order.
async fn load_ooo(client: &Client, layout: &Layout) -> Result<(), String> {
    create_plain(client, "ooo", 0..layout.late_devices).await;
    let records: Vec<Record> = workload::late_records(LATE_SEED, layout.late_devices, layout.late_start_ms, layout.late_seconds, 0.05);
    let mut chunks = Vec::new();
    let mut csv = String::with_capacity(CHUNK_BYTES + 256);
    csv.push_str("Time,Device");
    for s in 0..SENSORS {
        let _ = write!(csv, ",s{s}");
    }
    csv.push('\n');
    for r in &records {
        let _ = write!(csv, "{},root.ooo.d{}", r.time_ms, r.device);
        for v in &r.values {
            let _ = write!(csv, ",{v:.2}");
        }
        csv.push('\n');
        if csv.len() >= CHUNK_BYTES {
            chunks.push(Bytes::from(std::mem::replace(&mut csv, String::with_capacity(CHUNK_BYTES + 256))));
        }
    }
    chunks.push(Bytes::from(csv));
    let statement = "COPY root.ooo FROM STDIN (FORMAT csv, HEADER true)";
    let started = Instant::now();
    let copied = copy_in(client, statement, chunks).await?;
    let sending = started.elapsed();
    if copied as usize != records.len() {
        return Err(format!("{statement}: COPY {copied}, expected {}", records.len()));
    }
    report("device-column COPY", records.len() * SENSORS, "by one COPY with a Device column", sending, flush(client).await?);
    Ok(())
}

/// [`CONNECTIONS`] connections at once, each inserting the paper data of
/// its own device `root.conc.d<c>` (a 16th of the paper workload's points
/// each) as 1,000-row INSERTs, one per message.
async fn load_concurrent(args: &Args, client: &Client, layout: &Layout) -> Result<(), String> {
    create_plain(client, "conc", 0..CONNECTIONS).await;
    let seconds = (layout.paper_seconds * layout.paper_devices).div_ceil(CONNECTIONS);
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        clients.push(crate::connect(args).await?);
    }
    let texts: Vec<Vec<String>> = (0..CONNECTIONS)
        .map(|c| {
            let rows = workload::device_rows(PAPER_SEED, c, layout.paper_start_ms, seconds);
            rows.chunks(STATEMENT_ROWS).map(|chunk| insert_statement("conc", c, chunk)).collect()
        })
        .collect();
    let started = Instant::now();
    let tasks = clients.into_iter().zip(texts).map(|(client, texts)| async move {
        for sql in &texts {
            execute(&client, sql).await?;
        }
        Ok::<usize, String>(texts.len())
    });
    let statements: usize = futures::future::try_join_all(tasks).await?.into_iter().sum();
    let sending = started.elapsed();
    let points = seconds * CONNECTIONS * SENSORS;
    report(
        "concurrent INSERT",
        points,
        &format!("from {CONNECTIONS} connections in {statements} INSERTs of {STATEMENT_ROWS} rows"),
        sending,
        flush(client).await?,
    );
    Ok(())
}

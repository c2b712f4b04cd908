//! The paper's ingestion workload, in process: 10 devices x 10 DOUBLE
//! sensors, a random walk with 2 decimals, one point per second per sensor
//! for one day (8.64 M points), written in batches of 1,000 rows with the WAL
//! on (interval fsync). Then the same with 5% of the rows arriving hours
//! late; then reads: a whole-day scan of one series, count over the day
//! (statistics), count over one hour, and bytes per point on disk after
//! flush and after compaction.
//!
//! Prints medians over `ARBOR_BENCH_RUNS` runs (default 3).
//! `ARBOR_BENCH_HOURS` shortens the day for a smoke run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::{Column, DataType, EngineConfig, SeriesKey, StorageEngine, TimeRange, Values, WriteBatch};

const DEVICES: usize = 10;
const SENSORS: usize = 10;
const BATCH_ROWS: usize = 1_000;
const START: i64 = 1_700_000_000_000;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

fn device(d: usize) -> String {
    format!("root.bench.d{d}")
}

/// Per device, per sensor, the random walk in cents.
fn walks(rows: usize) -> Vec<Vec<Vec<f64>>> {
    (0..DEVICES)
        .map(|d| {
            (0..SENSORS)
                .map(|s| {
                    let mut cents: i64 = 2_000;
                    (0..rows)
                        .map(|r| {
                            let h = mix(((d * SENSORS + s) as u64) << 32 | r as u64);
                            cents += (h % 201) as i64 - 100;
                            cents as f64 / 100.0
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

fn batch_of(d: usize, walk: &[Vec<f64>], rows: &[usize]) -> WriteBatch {
    let times = rows.iter().map(|r| START + *r as i64 * 1_000).collect();
    let mut b = WriteBatch::new(device(d), false, times);
    for (s, w) in walk.iter().enumerate() {
        b = b.with_column(Column::full(format!("s{s}"), DataType::Double, Values::Double(rows.iter().map(|r| w[*r]).collect())));
    }
    b
}

/// Batches in arrival order. With `late`, 5% of the rows arrive 2 to 6
/// hours after their time, inside a later batch of their device.
fn batches(rows: usize, late: bool) -> Vec<WriteBatch> {
    let walks = walks(rows);
    let n_batches = rows.div_ceil(BATCH_ROWS);
    let mut per_device: Vec<Vec<Vec<usize>>> = vec![vec![Vec::new(); n_batches]; DEVICES];
    for (d, slots) in per_device.iter_mut().enumerate() {
        for r in 0..rows {
            let h = mix((d as u64) << 40 | r as u64 | 1 << 63);
            let arrival = if late && h % 100 < 5 { (r + (2 + (h >> 8) as usize % 5) * 3_600).min(rows - 1) } else { r };
            slots[arrival / BATCH_ROWS].push(r);
        }
    }
    let mut out = Vec::with_capacity(n_batches * DEVICES);
    for k in 0..n_batches {
        for (d, (slots, walk)) in per_device.iter().zip(&walks).enumerate() {
            if !slots[k].is_empty() {
                out.push(batch_of(d, walk, &slots[k]));
            }
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median_duration(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for kind in ["seq", "unseq"] {
        let Ok(parts) = std::fs::read_dir(dir.join(kind)) else { continue };
        for p in parts.flatten() {
            for f in std::fs::read_dir(p.path()).into_iter().flatten().flatten() {
                total += f.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

/// Defaults (WAL fsync every 100 ms, 7-day partitions, 10 000-point pages)
/// with 16 MiB memtables, so a day takes several flushes.
fn config() -> EngineConfig {
    EngineConfig { memtable_bytes_max: 16 << 20, ..EngineConfig::default() }
}

struct Ingest {
    acked: Duration,
    flushed: Duration,
    engine: Arc<StorageEngine>,
    dir: tempfile::TempDir,
}

fn ingest(batches: &[WriteBatch]) -> Ingest {
    let dir = tempfile::tempdir_in(std::env::var("ARBOR_BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string())).expect("tempdir");
    let engine = StorageEngine::open(dir.path(), config()).expect("open");
    let t0 = Instant::now();
    for b in batches {
        engine.write(b).expect("write");
    }
    let acked = t0.elapsed();
    engine.flush().expect("flush");
    let flushed = t0.elapsed();
    Ingest { acked, flushed, engine, dir }
}

fn main() {
    let hours: usize = std::env::var("ARBOR_BENCH_HOURS").ok().and_then(|s| s.parse().ok()).unwrap_or(24);
    let runs: usize = std::env::var("ARBOR_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let rows = hours * 3_600;
    let points = (rows * DEVICES * SENSORS) as f64;
    let c = config();
    println!("workload: {DEVICES} devices x {SENSORS} DOUBLE sensors x {rows} s = {points} points, batches of {BATCH_ROWS} rows, {runs} runs");
    println!("config: WAL {:?}, memtable {} MiB, soft/hard memory {}/{} MiB", c.wal_fsync, c.memtable_bytes_max >> 20, c.memory_soft_limit_bytes >> 20, c.memory_hard_limit_bytes >> 20);

    let mut keep = None;
    for (name, late) in [("in order", false), ("5% hours late", true)] {
        let data = batches(rows, late);
        let mut acked = Vec::new();
        let mut flushed = Vec::new();
        for run in 0..runs {
            let r = ingest(&data);
            acked.push(points / r.acked.as_secs_f64());
            flushed.push(points / r.flushed.as_secs_f64());
            if run + 1 == runs {
                let files = r.engine.files();
                let after_flush = disk_bytes(r.dir.path());
                let unseq = files.iter().filter(|f| !f.seq).count();
                let t = Instant::now();
                r.engine.compact().expect("compact");
                let compact_time = t.elapsed();
                let after_compaction = disk_bytes(r.dir.path());
                println!(
                    "ingest {name}: median {:.2} M points/s acknowledged, {:.2} M points/s until flushed",
                    median(acked.clone()) / 1e6,
                    median(flushed.clone()) / 1e6
                );
                println!(
                    "  on disk: {} files ({unseq} unsequence) {:.2} bytes/point after flush; compaction {:?} -> {} files {:.2} bytes/point",
                    files.len(),
                    after_flush as f64 / points,
                    compact_time,
                    r.engine.files().len(),
                    after_compaction as f64 / points
                );
                if !late {
                    keep = Some(r);
                }
            }
        }
    }

    let Some(r) = keep else { return };
    let key = SeriesKey::new(device(3), "s7");
    let day = TimeRange::new(START, START + rows as i64 * 1_000 - 1);
    let mut scans = Vec::new();
    let mut n = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let batches = r.engine.scan(&key, day).expect("scan");
        scans.push(t.elapsed());
        n = batches.iter().map(|b| b.times.len()).sum::<usize>();
    }
    let scan = median_duration(scans);
    println!("scan one series, whole day: {n} points in {scan:?} median = {:.1} M points/s", n as f64 / scan.as_secs_f64() / 1e6);

    let before = r.engine.read_counters();
    let mut counts = Vec::new();
    for _ in 0..2_000 {
        let t = Instant::now();
        let a = r.engine.aggregate(&key, day).expect("aggregate");
        counts.push(t.elapsed());
        assert_eq!(a.count as usize, rows);
    }
    let used = r.engine.read_counters().since(&before);
    println!(
        "count over the day: median {:?} (statistics: {} file-level, {} chunk, {} page; decoded {} chunks, {} pages)",
        median_duration(counts),
        used.files_from_statistics,
        used.chunks_from_statistics,
        used.pages_from_statistics,
        used.chunks_decoded,
        used.pages_decoded
    );
    let hour = TimeRange::new(START + 12 * 3_600_000 + 500, START + 13 * 3_600_000 + 499);
    let before = r.engine.read_counters();
    let mut counts = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        r.engine.aggregate(&key, hour).expect("aggregate");
        counts.push(t.elapsed());
    }
    let used = r.engine.read_counters().since(&before);
    println!(
        "count over one hour (page edges): median {:?} ({} pages from statistics, {} pages decoded per call)",
        median_duration(counts),
        used.pages_from_statistics / 200,
        used.pages_decoded / 200
    );
}

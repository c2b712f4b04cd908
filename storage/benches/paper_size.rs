//! Bytes per point of the paper workload after FLUSH, in process: the data
//! `arbor-bench` loads (server/src/bin/arbor_bench/workload.rs, same seeded
//! generator): 10 aligned devices x 10 DOUBLE sensors, one point per second
//! for 2024-01-01 (8.64 M points), each series a base level + a daily
//! sinusoid + a random walk (sigma 0.02) + noise (sigma 0.02), rounded to 2
//! decimals. Devices are written one after the other, as the driver's
//! COPYs do, with the engine's default configuration; then one flush.
//!
//! Prints the write and write+flush rates (median of `ARBOR_BENCH_RUNS`,
//! default 3), the flush alone, and bytes per point on disk after the flush
//! and after compaction; checks that every series reads back bit-exactly.
//! `ARBOR_BENCH_HOURS` shortens the day; `ARBOR_BENCH_KEEP=DIR` copies the
//! files to DIR/flushed and DIR/compacted (to read them with Apache TsFile).

use std::time::{Duration, Instant};

use storage::{Column, DataType, EngineConfig, SeriesKey, StorageEngine, TimeRange, Values, WriteBatch};

const DEVICES: usize = 10;
const SENSORS: usize = 10;
const BATCH_ROWS: usize = 10_000;
/// 2024-01-01T00:00:00Z.
const START_MS: i64 = 1_704_067_200_000;
const DAY_MS: i64 = 86_400_000;
const SEED: u64 = 1;
const WALK_SIGMA: f64 = 0.02;
const NOISE_SIGMA: f64 = 0.02;

/// splitmix64 with Box-Muller normals, as `arbor-bench` generates them.
struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    fn new(seed: u64) -> Self {
        Rng { state: seed, spare: None }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }
}

fn seed(workload: u64, device: usize, stream: usize) -> u64 {
    let mut r = Rng::new(0x4172_626F_7200_0000 ^ (workload << 40) ^ ((device as u64) << 16) ^ stream as u64);
    r.next_u64()
}

/// One device's columns: `rows` values per sensor.
fn device_columns(device: usize, rows: usize) -> Vec<Vec<f64>> {
    let mut columns: Vec<Vec<f64>> = (0..SENSORS).map(|_| Vec::with_capacity(rows)).collect();
    let mut series: Vec<(Rng, f64, f64, f64, f64)> = (0..SENSORS)
        .map(|s| {
            let mut rng = Rng::new(seed(SEED, device, s));
            let base = 10.0 + 90.0 * rng.uniform();
            let amplitude = 1.0 + 4.0 * rng.uniform();
            let phase = std::f64::consts::TAU * rng.uniform();
            (rng, base, amplitude, phase, 0.0)
        })
        .collect();
    for i in 0..rows {
        let t = START_MS + 1000 * i as i64;
        for (column, (rng, base, amplitude, phase, walk)) in columns.iter_mut().zip(series.iter_mut()) {
            *walk += WALK_SIGMA * rng.normal();
            let day_fraction = t.rem_euclid(DAY_MS) as f64 / DAY_MS as f64;
            let x = *base + *amplitude * (std::f64::consts::TAU * day_fraction + *phase).sin() + *walk + NOISE_SIGMA * rng.normal();
            column.push((x * 100.0).round() / 100.0);
        }
    }
    columns
}

fn device(d: usize) -> String {
    format!("root.bench.d{d}")
}

fn batches(data: &[Vec<Vec<f64>>], rows: usize) -> Vec<WriteBatch> {
    let mut out = Vec::new();
    for (d, columns) in data.iter().enumerate() {
        for start in (0..rows).step_by(BATCH_ROWS) {
            let end = (start + BATCH_ROWS).min(rows);
            let times = (start..end).map(|i| START_MS + 1000 * i as i64).collect();
            let mut b = WriteBatch::new(device(d), true, times);
            for (s, column) in columns.iter().enumerate() {
                b = b.with_column(Column::full(format!("s{s}"), DataType::Double, Values::Double(column[start..end].to_vec())));
            }
            out.push(b);
        }
    }
    out
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    tsfiles(dir).iter().map(|f| f.metadata().map(|m| m.len()).unwrap_or(0)).sum()
}

fn tsfiles(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for kind in ["seq", "unseq"] {
        let Ok(parts) = std::fs::read_dir(dir.join(kind)) else { continue };
        for p in parts.flatten() {
            for f in std::fs::read_dir(p.path()).into_iter().flatten().flatten() {
                out.push(f.path());
            }
        }
    }
    out
}

/// Copy the engine's TsFiles to `$ARBOR_BENCH_KEEP/<stage>` when that is set.
fn keep(db: &std::path::Path, stage: &str) {
    let Ok(keep) = std::env::var("ARBOR_BENCH_KEEP") else { return };
    let to = std::path::Path::new(&keep).join(stage);
    std::fs::create_dir_all(&to).expect("keep dir");
    for f in tsfiles(db) {
        if f.extension().is_some_and(|e| e == "tsfile") {
            std::fs::copy(&f, to.join(f.file_name().expect("name"))).expect("copy");
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let hours: usize = std::env::var("ARBOR_BENCH_HOURS").ok().and_then(|s| s.parse().ok()).unwrap_or(24);
    let runs: usize = std::env::var("ARBOR_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let rows = hours * 3_600;
    let points = (rows * DEVICES * SENSORS) as f64;
    let data: Vec<Vec<Vec<f64>>> = (0..DEVICES).map(|d| device_columns(d, rows)).collect();
    let input = batches(&data, rows);
    println!("paper workload: {DEVICES} aligned devices x {SENSORS} DOUBLE sensors x {rows} s = {points} points, {runs} runs");

    let (mut written, mut flushed, mut flush_only) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let dir = tempfile::tempdir_in(std::env::var("ARBOR_BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string())).expect("tempdir");
        let engine = StorageEngine::open(dir.path(), EngineConfig::default()).expect("open");
        let t0 = Instant::now();
        for b in &input {
            engine.write(b).expect("write");
        }
        let t1 = Instant::now();
        engine.flush().expect("flush");
        written.push(t1 - t0);
        flushed.push(t0.elapsed());
        flush_only.push(t1.elapsed());
        if run + 1 < runs {
            continue;
        }
        let after_flush = disk_bytes(dir.path());
        let files = engine.files().len();
        keep(dir.path(), "flushed");
        for (d, columns) in data.iter().enumerate() {
            for (s, column) in columns.iter().enumerate() {
                let key = SeriesKey::new(device(d), format!("s{s}"));
                let got: Vec<f64> = engine
                    .scan(&key, TimeRange::new(START_MS, START_MS + rows as i64 * 1000))
                    .expect("scan")
                    .into_iter()
                    .flat_map(|b| match b.values {
                        Values::Double(v) => v,
                        other => panic!("{key:?}: {other:?}"),
                    })
                    .collect();
                assert!(got.len() == column.len() && got.iter().zip(column).all(|(a, b)| a.to_bits() == b.to_bits()), "{key:?} does not read back exactly");
            }
        }
        engine.compact().expect("compact");
        let after_compaction = disk_bytes(dir.path());
        keep(dir.path(), "compacted");
        println!(
            "write: median {:.2} M points/s acknowledged, {:.2} M points/s until flushed (flush alone {:?})",
            points / median(written.clone()).as_secs_f64() / 1e6,
            points / median(flushed.clone()).as_secs_f64() / 1e6,
            median(flush_only.clone())
        );
        println!(
            "on disk: {files} files, {after_flush} bytes, {:.3} bytes/point after flush; {:.3} bytes/point after compaction (all series read back exactly)",
            after_flush as f64 / points,
            after_compaction as f64 / points
        );
    }
}

//! How fast and how big is the catalog at a million series?
//!
//! Creates 10,000 devices x 100 measurements through the write path's
//! `ensure_series` (auto-create), first in memory (for resident memory per
//! series), then persisted (one fsynced log record per device, snapshots),
//! and times the lookups and pattern queries the server runs on that tree.
//!
//! `cargo run -p catalog --release --example bench_create`

use std::hint::black_box;
use std::time::{Duration, Instant};

use catalog::{Catalog, CatalogConfig, DataType, Page, PathPattern};

const DEVICES: usize = 10_000;
const MEASUREMENTS: usize = 100;

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn measurements() -> Vec<(String, DataType)> {
    let types = [
        DataType::Double,
        DataType::Int64,
        DataType::Boolean,
        DataType::Text,
    ];
    (0..MEASUREMENTS)
        .map(|i| (format!("s{i:03}"), types[i % types.len()]))
        .collect()
}

fn device(d: usize) -> String {
    format!("root.bench.d{d:05}")
}

fn create_all(c: &Catalog, ms: &[(String, DataType)]) -> Result<Duration, catalog::Error> {
    let start = Instant::now();
    for d in 0..DEVICES {
        c.ensure_series(&device(d), ms, false)?;
    }
    Ok(start.elapsed())
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total = (DEVICES * MEASUREMENTS) as f64;
    let ms = measurements();

    // --- in memory: creation rate and resident memory ---
    let rss_before = rss_kib().unwrap_or(0);
    let c = Catalog::in_memory(CatalogConfig::default())?;
    let elapsed = create_all(&c, &ms)?;
    let rss_after = rss_kib().unwrap_or(0);
    assert_eq!(c.count_series(&PathPattern::all()), total as u64);
    let bytes = (rss_after.saturating_sub(rss_before)) * 1024;
    println!(
        "in memory:  created {} series ({DEVICES} devices x {MEASUREMENTS}) in {:.2} s = {:.0} series/s",
        total as u64,
        elapsed.as_secs_f64(),
        total / elapsed.as_secs_f64()
    );
    println!(
        "            VmRSS {} -> {} KiB: +{:.1} MiB = {:.0} bytes/series",
        rss_before,
        rss_after,
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / total
    );

    // --- the write path on existing series ---
    let (_, t) = time(|| {
        for d in 0..DEVICES {
            black_box(
                c.ensure_series(&device(d), &ms, false)
                    .map(|v| v.len())
                    .unwrap_or(0),
            );
        }
    });
    println!(
        "write path: ensure_series on existing series: {:.0} ns/series ({:.1} us per 100-measurement device)",
        t.as_nanos() as f64 / total,
        t.as_nanos() as f64 / DEVICES as f64 / 1000.0
    );
    let devices: Vec<String> = (0..DEVICES).map(device).collect();
    let (_, t) = time(|| {
        for dev in &devices {
            for (m, _) in &ms {
                black_box(c.lookup_series(dev, m));
            }
        }
    });
    println!(
        "            lookup_series: {:.0} ns/lookup",
        t.as_nanos() as f64 / total
    );

    // --- pattern queries on the million-series tree ---
    let queries = [
        ("count_series root.**", PathPattern::parse("root.**")?),
        (
            "count_series root.**.s050",
            PathPattern::parse("root.**.s050")?,
        ),
        (
            "count_series root.bench.d05000.*",
            PathPattern::parse("root.bench.d05000.*")?,
        ),
        (
            "count_series root.bench.d0500*.s0*",
            PathPattern::parse("root.bench.d0500*.s0*")?,
        ),
    ];
    for (name, p) in &queries {
        let (n, t) = time(|| c.count_series(p));
        println!(
            "query:      {name}: {n} in {:.3} ms",
            t.as_secs_f64() * 1000.0
        );
    }
    let one_device = PathPattern::parse("root.bench.d05000.*")?;
    let (n, t) = time(|| c.list_series(&one_device, Page::all()).len());
    println!(
        "query:      list_series root.bench.d05000.*: {n} rows in {:.3} ms",
        t.as_secs_f64() * 1000.0
    );
    let (n, t) = time(|| {
        c.list_series(&PathPattern::all(), Page::new(Some(100), 500_000))
            .len()
    });
    println!(
        "query:      list_series root.** limit 100 offset 500000: {n} rows in {:.1} ms",
        t.as_secs_f64() * 1000.0
    );
    let (n, t) = time(|| c.list_devices(&PathPattern::all(), Page::all()).len());
    println!(
        "query:      list_devices root.**: {n} rows in {:.1} ms",
        t.as_secs_f64() * 1000.0
    );
    let (rows, t) = time(|| c.count_series_by_level(&PathPattern::all(), 2));
    println!(
        "query:      count_series_by_level root.** level 2: {} groups in {:.1} ms",
        rows.len(),
        t.as_secs_f64() * 1000.0
    );
    drop(c);

    // --- persisted: fsync per schema change, snapshots, recovery ---
    let dir = tempfile::tempdir()?;
    let c = Catalog::open(dir.path(), CatalogConfig::default())?;
    let elapsed = create_all(&c, &ms)?;
    let stats = c.stats();
    println!(
        "persisted:  created {} series in {:.2} s = {:.0} series/s ({DEVICES} fsynced log records; log generation {}, {} records in current log)",
        total as u64,
        elapsed.as_secs_f64(),
        total / elapsed.as_secs_f64(),
        stats.log_generation,
        stats.log_records
    );
    let ((), t) = time(|| {
        c.snapshot()
            .unwrap_or_else(|e| eprintln!("snapshot failed: {e}"))
    });
    let size = std::fs::metadata(dir.path().join("schema.snapshot"))?.len();
    println!(
        "            snapshot of {} series: {:.0} ms, {:.1} MiB ({:.0} bytes/series)",
        total as u64,
        t.as_secs_f64() * 1000.0,
        size as f64 / (1024.0 * 1024.0),
        size as f64 / total
    );
    drop(c);
    let (c, t) = time(|| Catalog::open(dir.path(), CatalogConfig::default()));
    let c = c?;
    println!(
        "            reopen (load snapshot): {:.2} s, {} series",
        t.as_secs_f64(),
        c.count_series(&PathPattern::all())
    );
    Ok(())
}

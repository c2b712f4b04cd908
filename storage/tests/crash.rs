//! Crash test with a real process: a child process ingests (and deletes)
//! with a tiny memtable so flushes never stop and compaction keeps running,
//! printing every acknowledged operation; the parent kills it with SIGKILL
//! at a random moment, reopens the database and checks that every
//! acknowledged operation is there and nothing else is (the one operation in
//! flight may be there, whole).
//!
//! `ARBOR_CRASH_CYCLES` sets the number of kill/restart cycles (default 20);
//! `ARBOR_CRASH_DEBUG` prints each cycle; `ARBOR_CRASH_AGGRESSIVE` makes
//! compaction run almost back to back (smaller target files, lower
//! triggers). On failure the database directory is kept and its path, its
//! files and every missing or unexpected point (with the operation that
//! wrote it) are printed. `ARBOR_CRASH_FREE_KB=N` (for a small file system,
//! e.g. a tmpfs as `TMPDIR`) fills the file system before each child starts
//! so that only up to N KiB stay free: the child runs into ENOSPC in random
//! places (it may fail, it must not lose anything); the filler goes before
//! the check.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::{Column, DataType, EngineConfig, FsyncPolicy, SeriesKey, StorageEngine, TimeRange, Value, Values, WriteBatch};

const CHILD_DIR: &str = "ARBOR_CRASH_CHILD_DIR";
const CHILD_START: &str = "ARBOR_CRASH_CHILD_START";
const DEVICES: [(&str, bool); 3] = [("root.crash.d0", false), ("root.crash.d1", false), ("root.crash.a", true)];
const MEASUREMENTS: [&str; 2] = ["m0", "m1"];
const ROWS: i64 = 16;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

/// The i-th operation of the workload: a pure function of `i`.
enum Op {
    Write(WriteBatch),
    Delete(Vec<SeriesKey>, TimeRange),
}

fn op(i: u64) -> Op {
    let (device, aligned) = DEVICES[(i % 3) as usize];
    let base = (i as i64) * ROWS;
    if i % 13 == 7 && i > 20 {
        let start = (mix(i) % (base as u64)) as i64;
        let keys = MEASUREMENTS.iter().filter(|_| true).take(1 + (i % 2) as usize).map(|m| SeriesKey::new(device, *m)).collect();
        return Op::Delete(keys, TimeRange::new(start, start + 40));
    }
    let late = i % 5 == 3 && i > 10;
    let times: Vec<i64> = (0..ROWS)
        .map(|r| if late { (mix(i * 100 + r as u64) % (base as u64)) as i64 } else { base + r })
        .collect();
    let mut batch = WriteBatch::new(device, aligned, times);
    for (k, m) in MEASUREMENTS.iter().enumerate() {
        let vals: Vec<Option<Value>> = (0..ROWS)
            .map(|r| {
                let h = mix(i * 1000 + r as u64 * 10 + k as u64);
                (!h.is_multiple_of(10)).then_some(Value::Int64((h % 1_000_000) as i64))
            })
            .collect();
        batch = batch.with_column(Column::from_options(*m, DataType::Int64, &vals).expect("column"));
    }
    Op::Write(batch)
}

type Key = (String, String, i64);
type Model = BTreeMap<Key, i64>;
/// Per point, the operation that wrote its current value.
type Origins = BTreeMap<Key, u64>;

fn apply_tracked(model: &mut Model, origins: &mut Origins, i: u64) {
    match op(i) {
        Op::Write(b) => {
            for c in &b.columns {
                let mut v = 0;
                for (r, t) in b.times.iter().enumerate() {
                    if c.validity.as_ref().is_none_or(|x| x[r]) {
                        if let Values::Int64(vals) = &c.values {
                            let key = (b.device.clone(), c.measurement.clone(), *t);
                            origins.insert(key.clone(), i);
                            model.insert(key, vals[v]);
                        }
                        v += 1;
                    }
                }
            }
        }
        Op::Delete(keys, range) => {
            for k in keys {
                model.retain(|(d, m, t), _| !(d == &k.device && m == &k.measurement && range.contains(*t)));
            }
        }
    }
}

fn aggressive() -> bool {
    std::env::var("ARBOR_CRASH_AGGRESSIVE").is_ok()
}

fn child_config() -> EngineConfig {
    if aggressive() {
        return EngineConfig {
            background: true,
            wal_fsync: FsyncPolicy::IntervalMs(5),
            memtable_bytes_max: 4 * 1024,
            time_partition_ms: 4_000,
            seq_file_target_bytes: 4 * 1024,
            compaction_unseq_files_trigger: 1,
            compaction_small_seq_files_trigger: 2,
            page_max_points: 8,
            ..EngineConfig::default()
        };
    }
    EngineConfig {
        background: true,
        wal_fsync: FsyncPolicy::IntervalMs(5),
        memtable_bytes_max: 8 * 1024,
        time_partition_ms: 4_000,
        seq_file_target_bytes: 16 * 1024,
        compaction_unseq_files_trigger: 2,
        compaction_small_seq_files_trigger: 3,
        page_max_points: 32,
        ..EngineConfig::default()
    }
}

/// The child: a no-op unless started by the parent.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let start: u64 = std::env::var(CHILD_START).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let engine = StorageEngine::open(&dir, child_config()).expect("child open");
    // Explicit compactions too, so kills land inside them often.
    let compactor = Arc::clone(&engine);
    let pause = Duration::from_millis(if aggressive() { 1 } else { 15 });
    std::thread::spawn(move || loop {
        let _ = compactor.compact();
        std::thread::sleep(pause);
    });
    let mut out = std::io::stdout().lock();
    for i in start.. {
        let r = match op(i) {
            Op::Write(b) => engine.write(&b),
            Op::Delete(keys, range) => engine.delete(&keys, range),
        };
        r.expect("child operation");
        writeln!(out, "ACK {i}").expect("stdout");
        out.flush().expect("stdout");
    }
}

fn read_all(dir: &Path) -> Model {
    let engine = match StorageEngine::open(dir, common::test_config()) {
        Ok(e) => e,
        Err(e) => panic!("reopen after kill failed: {e}\ndatabase at {} (kept)\nfiles:\n  {}", dir.display(), list_files(dir).join("\n  ")),
    };
    let mut got = Model::new();
    for (d, _) in DEVICES {
        for m in MEASUREMENTS {
            for b in engine.scan(&SeriesKey::new(d, m), TimeRange::ALL).expect("scan") {
                let Values::Int64(v) = &b.values else { panic!("not INT64") };
                for (t, x) in b.times.iter().zip(v) {
                    got.insert((d.to_string(), m.to_string(), *t), *x);
                }
            }
        }
    }
    got
}

/// Every file under `dir` with its size, for failure reports.
fn list_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.push(format!("{} ({len} bytes)", p.strip_prefix(dir).unwrap_or(&p).display()));
            }
        }
    }
    out.sort();
    out
}

/// Fill the file system holding `filler` so that about `free` bytes stay
/// free (`stat -f` for the free space).
fn fill_to(filler: &Path, free: u64) {
    let _ = std::fs::remove_file(filler);
    let dir = filler.parent().unwrap();
    let out = Command::new("stat").args(["-f", "-c", "%a %S"]).arg(dir).output().expect("stat -f");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
    let (blocks, bsize) = (it.next().unwrap_or(0), it.next().unwrap_or(4096));
    let mut left = (blocks * bsize).saturating_sub(free);
    let mut f = std::fs::File::create(filler).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if f.write_all(&chunk[..n]).is_err() {
            break;
        }
        left -= n as u64;
    }
    let _ = f.sync_all();
}

/// Whether the kill interrupted a compaction (its log is still there).
fn killed_in_compaction(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("compaction")).map(|d| d.count() > 0).unwrap_or(false)
}

#[test]
fn acknowledged_operations_survive_kill_9() {
    let cycles: u64 = std::env::var("ARBOR_CRASH_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut next: u64 = 0; // operations [0, next) are known applied
    let mut model = Model::new();
    let mut origins = Origins::new();
    let mut kills_in_compaction = 0;
    let stderr_path = dir.path().with_extension("child-stderr.log");
    let free_kb: Option<u64> = std::env::var("ARBOR_CRASH_FREE_KB").ok().and_then(|s| s.parse().ok());
    let filler = dir.path().with_extension("filler");
    let mut total_acked = 0;
    for cycle in 0..cycles {
        if let Some(kb) = free_kb {
            fill_to(&filler, mix(cycle + 777) % (kb.max(1) * 1024));
        }
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_START, next.to_string())
            .stdout(Stdio::piped())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(&stderr_path).map_or(Stdio::null(), Stdio::from))
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || {
            let mut acked: Option<u64> = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ACK ").and_then(|n| n.trim().parse::<u64>().ok()) {
                    acked = Some(n);
                }
            }
            acked
        });
        let delay = 40 + mix(cycle + 12345) % 260;
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child");
        let acked = reader.join().expect("reader thread");
        let _ = std::fs::remove_file(&filler);
        let in_compaction = killed_in_compaction(dir.path());
        kills_in_compaction += usize::from(in_compaction);
        let files_at_kill = list_files(dir.path());

        let last = acked.map_or(next, |a| a + 1); // first operation not acknowledged
        for i in next..last {
            apply_tracked(&mut model, &mut origins, i);
        }
        total_acked += last - next;
        let t0 = Instant::now();
        let got = match std::panic::catch_unwind(|| read_all(dir.path())) {
            Ok(got) => got,
            Err(e) => {
                let _ = dir.keep();
                std::panic::resume_unwind(e);
            }
        };
        if std::env::var("ARBOR_CRASH_DEBUG").is_ok() {
            eprintln!("cycle {cycle}: {} acked, verified in {:?}", last - next, t0.elapsed());
        }
        if got == model {
            next = last;
        } else {
            // The operation in flight may have been applied, whole.
            let mut with_inflight = model.clone();
            let mut inflight_origins = origins.clone();
            apply_tracked(&mut with_inflight, &mut inflight_origins, last);
            if got != with_inflight {
                // Report against whichever of the two allowed states is closer.
                let (want, want_origins, which) = {
                    let diff = |m: &Model| m.iter().filter(|(k, v)| got.get(*k) != Some(*v)).count() + got.keys().filter(|k| !m.contains_key(*k)).count();
                    if diff(&with_inflight) < diff(&model) {
                        (&with_inflight, &inflight_origins, "acknowledged operations and the one in flight")
                    } else {
                        (&model, &origins, "acknowledged operations only")
                    }
                };
                let missing: Vec<String> = want
                    .iter()
                    .filter(|(k, v)| got.get(*k) != Some(*v))
                    .map(|(k, v)| format!("{} {} t={} expected {v} (op {}) got {:?}", k.0, k.1, k.2, want_origins.get(k).copied().unwrap_or(u64::MAX), got.get(k)))
                    .collect();
                let extra: Vec<String> = got
                    .iter()
                    .filter(|(k, _)| !want.contains_key(*k))
                    .map(|(k, v)| format!("{} {} t={} value {v}", k.0, k.1, k.2))
                    .collect();
                let inflight = match op(last) {
                    Op::Write(b) => format!("write of {} rows to {}", b.times.len(), b.device),
                    Op::Delete(keys, range) => format!("delete of {keys:?} in {range:?}"),
                };
                let which = format!("compared with {which}; op {last} in flight: {inflight}");
                let kept = dir.keep();
                panic!(
                    "cycle {cycle} of {cycles} (killed after {:?}, ops [{next}, {last}) acked this cycle, {last} in all, kill left a compaction log: {in_compaction}): \
                     engine disagrees with acknowledged operations ({which})\n\
                     database kept at {}\n\
                     {} missing/wrong:\n  {}\n\
                     {} unexpected:\n  {}\n\
                     files right after the kill:\n  {}\n\
                     files after the reopen:\n  {}\n\
                     child stderr: {}",
                    started.elapsed(),
                    kept.display(),
                    missing.len(),
                    missing.join("\n  "),
                    extra.len(),
                    extra.join("\n  "),
                    files_at_kill.join("\n  "),
                    list_files(&kept).join("\n  "),
                    stderr_path.display(),
                );
            }
            origins = inflight_origins;
            model = with_inflight;
            next = last + 1;
        }
    }
    let _ = std::fs::remove_file(&stderr_path);
    eprintln!("crash test: {cycles} kills, {total_acked} acknowledged operations, {kills_in_compaction} kills left a compaction log");
    assert!(total_acked > cycles, "the child made progress");
}

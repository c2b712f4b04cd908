//! Crash test with a real process: a child process ingests (and deletes)
//! with a tiny memtable so flushes never stop and compaction keeps running,
//! printing every acknowledged operation; the parent kills it with SIGKILL
//! at a random moment, reopens the database and checks that every
//! acknowledged operation is there and nothing else is (the one operation in
//! flight may be there, whole).
//!
//! `ARBOR_CRASH_CYCLES` sets the number of kill/restart cycles (default 20);
//! `ARBOR_CRASH_DEBUG` prints each cycle.

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

type Model = BTreeMap<(String, String, i64), i64>;

fn apply(model: &mut Model, i: u64) {
    match op(i) {
        Op::Write(b) => {
            for c in &b.columns {
                let mut v = 0;
                for (r, t) in b.times.iter().enumerate() {
                    if c.validity.as_ref().is_none_or(|x| x[r]) {
                        if let Values::Int64(vals) = &c.values {
                            model.insert((b.device.clone(), c.measurement.clone(), *t), vals[v]);
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

fn child_config() -> EngineConfig {
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
    std::thread::spawn(move || loop {
        let _ = compactor.compact();
        std::thread::sleep(Duration::from_millis(15));
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
    let engine = StorageEngine::open(dir, common::test_config()).expect("reopen after kill");
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
    let mut kills_in_compaction = 0;
    let mut total_acked = 0;
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_START, next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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
        kills_in_compaction += usize::from(killed_in_compaction(dir.path()));

        let last = acked.map_or(next, |a| a + 1); // first operation not acknowledged
        for i in next..last {
            apply(&mut model, i);
        }
        total_acked += last - next;
        let t0 = Instant::now();
        let got = read_all(dir.path());
        if std::env::var("ARBOR_CRASH_DEBUG").is_ok() {
            eprintln!("cycle {cycle}: {} acked, verified in {:?}", last - next, t0.elapsed());
        }
        if got == model {
            next = last;
        } else {
            // The operation in flight may have been applied, whole.
            let mut with_inflight = model.clone();
            apply(&mut with_inflight, last);
            if got != with_inflight {
                let missing: Vec<_> = model.iter().filter(|(k, v)| got.get(*k) != Some(v)).take(5).collect();
                let extra: Vec<_> = got.iter().filter(|(k, v)| model.get(*k) != Some(v)).take(5).collect();
                panic!(
                    "cycle {cycle} (killed after {:?}, {} ops acked): engine disagrees with acknowledged operations\n  missing/wrong: {missing:?}\n  unexpected: {extra:?}",
                    started.elapsed(),
                    last
                );
            }
            model = with_inflight;
            next = last + 1;
        }
    }
    eprintln!("crash test: {cycles} kills, {total_acked} acknowledged operations, {kills_in_compaction} kills left a compaction log");
    assert!(total_acked > cycles, "the child made progress");
}

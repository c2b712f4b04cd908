//! Behaviour of the engine through its public API: delay separation,
//! flush, deletes, compaction, aggregates from statistics, the last cache,
//! TTL, memory limits, restarts, and engine files being valid TsFiles.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use storage::{Column, DataType, EngineConfig, Error, MemoryBudget, SeriesKey, StorageEngine, TimeRange, Value, Values, WriteBatch};
use tsfile::TsFileReader;

const D: &str = "root.sg.d1";

fn key(m: &str) -> SeriesKey {
    SeriesKey::new(D, m)
}

#[test]
fn writes_are_read_back_in_time_order_with_last_write_winning() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    e.write(&ints(D, "s", &[(5, 50), (1, 10), (3, 30)])).unwrap();
    e.write(&ints(D, "s", &[(3, 31), (7, 70)])).unwrap();
    assert_eq!(int_points(&e, &key("s")), vec![(1, 10), (3, 31), (5, 50), (7, 70)]);
    assert_eq!(
        points(&e, &key("s"), TimeRange::new(2, 5)),
        vec![(3, Value::Int64(31)), (5, Value::Int64(50))]
    );
    e.flush().unwrap();
    e.write(&ints(D, "s", &[(5, 51)])).unwrap();
    assert_eq!(int_points(&e, &key("s")), vec![(1, 10), (3, 31), (5, 51), (7, 70)]);
}

#[test]
fn a_null_never_overwrites_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    let batch = |rows: &[(i64, Option<i64>, Option<f64>)]| {
        WriteBatch::new(D, true, rows.iter().map(|r| r.0).collect())
            .with_column(Column::from_options("a", DataType::Int64, &rows.iter().map(|r| r.1.map(Value::Int64)).collect::<Vec<_>>()).unwrap())
            .with_column(Column::from_options("b", DataType::Double, &rows.iter().map(|r| r.2.map(Value::Double)).collect::<Vec<_>>()).unwrap())
    };
    e.write(&batch(&[(1, Some(1), Some(1.5)), (2, Some(2), None)])).unwrap();
    e.flush().unwrap();
    e.write(&batch(&[(1, None, Some(9.5)), (2, Some(20), None), (3, None, None)])).unwrap();
    assert_eq!(int_points(&e, &key("a")), vec![(1, 1), (2, 20)]);
    let rows = e.scan_aligned(D, &["a", "b"], TimeRange::ALL).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].times, vec![1, 2]);
    assert_eq!(rows[0].columns[0].validity, vec![true, true]);
    assert_eq!(rows[0].columns[0].values, Values::Int64(vec![1, 20]));
    assert_eq!(rows[0].columns[1].validity, vec![true, false]);
    assert_eq!(rows[0].columns[1].values, Values::Double(vec![9.5]));
}

#[test]
fn late_points_go_to_unsequence_files_and_sequence_files_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    e.write(&ints(D, "s", &[(100, 1), (200, 2)])).unwrap();
    e.flush().unwrap();
    // 150 is older than the stable time 200: unsequence. 300 is sequence.
    e.write(&ints(D, "s", &[(150, 3), (300, 4)])).unwrap();
    e.flush().unwrap();
    let files = e.files();
    let seq: Vec<_> = files.iter().filter(|f| f.seq).collect();
    let unseq: Vec<_> = files.iter().filter(|f| !f.seq).collect();
    assert_eq!(seq.len(), 2);
    assert_eq!(unseq.len(), 1);
    assert_eq!(unseq[0].devices, vec![(D.to_string(), 150, 150)]);
    assert_seq_files_disjoint(&e);
    assert_eq!(int_points(&e, &key("s")), vec![(100, 1), (150, 3), (200, 2), (300, 4)]);

    e.compact().unwrap();
    let files = e.files();
    assert!(files.iter().all(|f| f.seq), "compaction merges unsequence data into sequence files");
    assert_eq!(files.len(), 1);
    assert_eq!(int_points(&e, &key("s")), vec![(100, 1), (150, 3), (200, 2), (300, 4)]);
}

fn assert_seq_files_disjoint(e: &StorageEngine) {
    let mut by_device: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for f in e.files().into_iter().filter(|f| f.seq) {
        for (d, s, t) in f.devices {
            by_device.entry(d).or_default().push((s, t));
        }
    }
    for (d, mut spans) in by_device {
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].1 < w[1].0, "sequence files of {d} overlap: {:?} and {:?}", w[0], w[1]);
        }
    }
}

#[test]
fn time_partitions_bound_files() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), EngineConfig { time_partition_ms: 100, ..test_config() });
    e.write(&ints(D, "s", &[(-5, 0), (50, 1), (150, 2), (250, 3)])).unwrap();
    e.flush().unwrap();
    let mut parts: Vec<i64> = e.files().iter().map(|f| f.partition).collect();
    parts.sort();
    assert_eq!(parts, vec![-1, 0, 1, 2]);
    for f in e.files() {
        for (_, s, t) in &f.devices {
            assert_eq!(s.div_euclid(100), f.partition);
            assert_eq!(t.div_euclid(100), f.partition);
        }
    }
    assert_eq!(int_points(&e, &key("s")).len(), 4);
    e.compact().unwrap();
    assert_eq!(e.files().len(), 4, "compaction never merges across partitions");
}

#[test]
fn deletes_hide_points_everywhere_and_later_inserts_are_visible() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    e.write(&ints(D, "s", &(0..10).map(|t| (t, t)).collect::<Vec<_>>())).unwrap();
    e.flush().unwrap();
    e.write(&ints(D, "s", &[(2, 200), (20, 20)])).unwrap(); // unsequence 2, memtable 20
    e.delete(&[key("s")], TimeRange::new(1, 4)).unwrap();
    assert_eq!(int_points(&e, &key("s")), vec![(0, 0), (5, 5), (6, 6), (7, 7), (8, 8), (9, 9), (20, 20)]);
    assert!(e.files().iter().any(|f| f.tombstones == 1), "the tombstone sits beside the file");
    e.write(&ints(D, "s", &[(3, 33)])).unwrap();
    assert_eq!(int_points(&e, &key("s"))[1], (3, 33));
    let agg = e.aggregate(&key("s"), TimeRange::ALL).unwrap();
    assert_eq!(agg.count, 8);

    // Survives a restart (WAL replay) and a compaction (tombstones applied and dropped).
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key("s")), vec![(0, 0), (3, 33), (5, 5), (6, 6), (7, 7), (8, 8), (9, 9), (20, 20)]);
    e.flush().unwrap();
    e.compact().unwrap();
    assert!(e.files().iter().all(|f| f.tombstones == 0));
    assert_eq!(int_points(&e, &key("s")), vec![(0, 0), (3, 33), (5, 5), (6, 6), (7, 7), (8, 8), (9, 9), (20, 20)]);
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key("s")).len(), 8);
}

#[test]
fn aggregates_use_statistics_where_exact_and_decode_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config()); // 16 points per page
    let pts: Vec<(i64, i64)> = (0..160).map(|t| (t, (t * 7) % 13)).collect();
    e.write(&ints(D, "s", &pts)).unwrap();
    e.flush().unwrap();
    let model = |r: TimeRange| -> (u64, f64, i64, i64) {
        let v: Vec<i64> = pts.iter().filter(|p| r.contains(p.0)).map(|p| p.1).collect();
        (v.len() as u64, v.iter().sum::<i64>() as f64, *v.iter().min().unwrap(), *v.iter().max().unwrap())
    };

    // Whole file: one series-level statistic, nothing decoded.
    let before = e.read_counters();
    let a = e.aggregate(&key("s"), TimeRange::ALL).unwrap();
    let used = e.read_counters().since(&before);
    assert_eq!(used.files_from_statistics, 1);
    assert_eq!(used.pages_decoded + used.chunks_decoded, 0);
    let (c, s, mn, mx) = model(TimeRange::ALL);
    assert_eq!((a.count, a.sum, a.min.clone(), a.max.clone()), (c, Some(s), Some(Value::Int64(mn)), Some(Value::Int64(mx))));
    assert_eq!(a.first, Some((0, Value::Int64(0))));
    assert_eq!(a.last, Some((159, Value::Int64(pts[159].1))));
    assert_eq!((a.min_time, a.max_time), (Some(0), Some(159)));

    // A range cutting two pages: 8 whole pages from statistics, 2 decoded.
    let r = TimeRange::new(8, 151);
    let before = e.read_counters();
    let a = e.aggregate(&key("s"), r).unwrap();
    let used = e.read_counters().since(&before);
    assert_eq!(used.pages_from_statistics, 8);
    assert_eq!(used.pages_decoded, 2);
    let (c, s, mn, mx) = model(r);
    assert_eq!((a.count, a.sum, a.min, a.max), (c, Some(s), Some(Value::Int64(mn)), Some(Value::Int64(mx))));

    // An overwrite in the memtable overlaps the chunk: it is decoded and merged.
    e.write(&ints(D, "s", &[(50, 1000)])).unwrap();
    let before = e.read_counters();
    let a = e.aggregate(&key("s"), TimeRange::ALL).unwrap();
    let used = e.read_counters().since(&before);
    assert_eq!(used.chunks_decoded, 1);
    assert_eq!(a.count, 160);
    assert_eq!(a.max, Some(Value::Int64(1000)));
    assert_eq!(a.sum, Some(s_of(&pts) - pts[50].1 as f64 + 1000.0));

    // A tombstone also forces decoding, and is honoured.
    e.flush().unwrap();
    e.delete(&[key("s")], TimeRange::new(0, 9)).unwrap();
    let a = e.aggregate(&key("s"), TimeRange::ALL).unwrap();
    assert_eq!(a.count, 150);
    assert_eq!(a.min_time, Some(10));
}

#[test]
fn chunks_inside_the_range_are_answered_from_chunk_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config()); // 16-point pages: compaction windows of 3 200 points
    let pts: Vec<(i64, i64)> = (0..10_000).map(|t| (t, t % 97)).collect();
    for chunk in pts.chunks(1_000) {
        e.write(&ints(D, "s", chunk)).unwrap();
        e.flush().unwrap();
    }
    e.compact().unwrap();
    assert_eq!(e.files().len(), 1);
    let r = TimeRange::new(1_000, 8_999);
    let before = e.read_counters();
    let a = e.aggregate(&key("s"), r).unwrap();
    let used = e.read_counters().since(&before);
    assert!(used.chunks_from_statistics >= 1, "{used:?}");
    assert_eq!(used.chunks_decoded, 0);
    let inside: Vec<i64> = pts.iter().filter(|p| r.contains(p.0)).map(|p| p.1).collect();
    assert_eq!(a.count, inside.len() as u64);
    assert_eq!(a.sum, Some(inside.iter().sum::<i64>() as f64));
    assert_eq!(a.first, Some((1_000, Value::Int64(1_000 % 97))));
    assert_eq!(a.last, Some((8_999, Value::Int64(8_999 % 97))));
}

fn s_of(pts: &[(i64, i64)]) -> f64 {
    pts.iter().map(|p| p.1 as f64).sum()
}

#[test]
fn the_last_value_cache_follows_overwrites_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    let k = key("s");
    assert_eq!(e.last(&k).unwrap(), None);
    e.write(&ints(D, "s", &[(1, 1), (5, 5)])).unwrap();
    assert_eq!(e.last(&k).unwrap(), Some((5, Value::Int64(5))));
    e.write(&ints(D, "s", &[(5, 50), (3, 3)])).unwrap();
    assert_eq!(e.last(&k).unwrap(), Some((5, Value::Int64(50))));
    e.flush().unwrap();
    e.write(&ints(D, "s", &[(4, 4)])).unwrap();
    assert_eq!(e.last(&k).unwrap(), Some((5, Value::Int64(50))));
    e.delete(std::slice::from_ref(&k), TimeRange::new(5, 10)).unwrap();
    assert_eq!(e.last(&k).unwrap(), Some((4, Value::Int64(4))));
    e.delete(std::slice::from_ref(&k), TimeRange::ALL).unwrap();
    assert_eq!(e.last(&k).unwrap(), None);
    e.write(&ints(D, "s", &[(2, 2)])).unwrap();
    assert_eq!(e.last(&k).unwrap(), Some((2, Value::Int64(2))));
}

#[test]
fn engine_files_are_valid_tsfiles() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    e.write(&ints(D, "s", &(0..100).map(|t| (t, t * 2)).collect::<Vec<_>>())).unwrap();
    let aligned = WriteBatch::new("root.sg.a", true, vec![1, 2, 3])
        .with_column(Column::full("x", DataType::Float, Values::Float(vec![1.0, 2.0, 3.0])))
        .with_column(Column::from_options("y", DataType::Text, &[None, Some(Value::Binary(b"hi".to_vec())), None]).unwrap());
    e.write(&aligned).unwrap();
    e.flush().unwrap();
    e.write(&ints(D, "s", &[(50, -1)])).unwrap();
    e.flush().unwrap();
    for f in e.files() {
        let r = TsFileReader::open(&f.path).unwrap();
        assert!(!r.all_device_metadata().unwrap().is_empty());
    }
    e.compact().unwrap();
    let files = e.files();
    assert_eq!(files.len(), 1);
    let r = TsFileReader::open(&files[0].path).unwrap();
    let d = tsfile::DeviceId::from_tree_path(D);
    let batches = r.read_series(&d, "s", TimeRange::ALL).unwrap();
    let n: usize = batches.iter().map(|b| b.times.len()).sum();
    assert_eq!(n, 100);
    let a = r.read_aligned(&tsfile::DeviceId::from_tree_path("root.sg.a"), &["x", "y"], TimeRange::ALL).unwrap();
    assert_eq!(a[0].times, vec![1, 2, 3]);
    assert_eq!(a[0].columns[1].validity, vec![false, true, false]);
}

#[test]
fn ttl_hides_expired_points_rejects_old_writes_and_drops_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(std::sync::atomic::AtomicI64::new(1_000));
    let clock_now = Arc::clone(&now);
    let config = EngineConfig {
        ttl_ms: Some(100),
        time_partition_ms: 50,
        clock: Arc::new(move || clock_now.load(std::sync::atomic::Ordering::SeqCst)),
        ..test_config()
    };
    let e = open(dir.path(), config);
    e.write(&ints(D, "s", &[(920, 1), (990, 2)])).unwrap();
    assert!(matches!(e.write(&ints(D, "s", &[(899, 0)])), Err(Error::OutsideTtl { .. })));
    e.flush().unwrap();
    now.store(1_050, std::sync::atomic::Ordering::SeqCst); // bound 950
    assert_eq!(int_points(&e, &key("s")), vec![(990, 2)]);
    assert_eq!(e.aggregate(&key("s"), TimeRange::ALL).unwrap().count, 1);
    assert_eq!(e.last(&key("s")).unwrap(), Some((990, Value::Int64(2))));
    now.store(1_200, std::sync::atomic::Ordering::SeqCst); // bound 1100
    assert_eq!(e.last(&key("s")).unwrap(), None);
    e.compact().unwrap();
    assert!(e.files().is_empty(), "wholly expired files are dropped");
    e.set_ttl(None).unwrap();
    assert!(int_points(&e, &key("s")).is_empty());
}

#[test]
fn the_hard_memory_limit_rejects_writes_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let budget = Arc::new(MemoryBudget::new(1_000, 2_000));
    let config = EngineConfig { memory_budget: Some(Arc::clone(&budget)), memtable_bytes_max: 1 << 30, ..test_config() };
    let e = open(dir.path(), config);
    let big: Vec<(i64, i64)> = (0..200).map(|t| (t, t)).collect(); // ~3200 bytes
    let err = e.write(&ints(D, "s", &big)).unwrap_err();
    assert!(matches!(err, Error::MemoryBudgetExceeded { .. }), "{err}");
    assert!(err.to_string().contains("memory budget exceeded"));
    // Smaller writes succeed; past the soft limit the engine flushes to make room.
    for i in 0..20 {
        e.write(&ints(D, "s", &(i * 40..i * 40 + 40).map(|t| (t, t)).collect::<Vec<_>>())).unwrap();
    }
    assert!(budget.used() <= 2_000);
    assert_eq!(int_points(&e, &key("s")).len(), 800);
    drop(e);
    assert_eq!(budget.used(), 0, "a dropped engine returns its memory");
}

#[test]
fn small_memtables_flush_by_themselves_and_restart_replays_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig { memtable_bytes_max: 1_000, ..test_config() };
    let e = open(dir.path(), config.clone());
    for i in 0..50 {
        e.write(&ints(D, "s", &(i * 10..i * 10 + 10).map(|t| (t, t)).collect::<Vec<_>>())).unwrap();
    }
    assert!(e.files().len() > 3, "memtables were flushed as they filled");
    drop(e);
    let e = open(dir.path(), config);
    let pts = int_points(&e, &key("s"));
    assert_eq!(pts.len(), 500);
    assert!(pts.iter().all(|(t, v)| t == v));
}

#[test]
fn background_threads_flush_and_compact() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        background: true,
        memtable_bytes_max: 8_000,
        compaction_unseq_files_trigger: 2,
        compaction_small_seq_files_trigger: 3,
        ..test_config()
    };
    let e = open(dir.path(), config.clone());
    for i in 0..60i64 {
        let late = (i * 37) % 400;
        e.write(&ints(D, "s", &(i * 20..i * 20 + 20).map(|t| (t, t)).chain([(late, late)]).collect::<Vec<_>>())).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while e.files().len() > 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_seq_files_disjoint(&e);
    assert_eq!(int_points(&e, &key("s")).len(), 1200);
    e.close().unwrap();
    assert!(matches!(e.write(&ints(D, "s", &[(1, 1)])), Err(Error::Closed)));
    let e = open(dir.path(), config);
    assert_eq!(int_points(&e, &key("s")).len(), 1200);
}

#[test]
fn a_directory_is_opened_by_one_engine_at_a_time_and_drop_all_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("root.sg");
    let e = open(&db, test_config());
    assert!(matches!(StorageEngine::open(&db, test_config()), Err(Error::Locked { .. })));
    e.write(&ints(D, "s", &[(1, 1)])).unwrap();
    e.drop_all().unwrap();
    assert!(!db.exists());
    assert!(matches!(e.scan(&key("s"), TimeRange::ALL), Err(Error::Closed)));
}

#[test]
fn type_and_shape_errors_reject_the_batch_whole() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    e.write(&ints(D, "s", &[(1, 1)])).unwrap();
    let wrong = doubles(D, "s", &[(2, 2.0)]);
    assert!(matches!(e.write(&wrong), Err(Error::TypeMismatch { .. })));
    let bad = WriteBatch::new(D, false, vec![1, 2]).with_column(Column::full("s", DataType::Int64, Values::Int64(vec![1])));
    assert!(matches!(e.write(&bad), Err(Error::InvalidBatch { .. })));
    assert_eq!(int_points(&e, &key("s")), vec![(1, 1)]);
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key("s")), vec![(1, 1)], "rejected batches never reach the WAL");
}

#[test]
fn metadata_statistics_are_exact_only_where_no_overlap_tombstone_or_memtable_point_interferes() {
    use storage::{Bound, DeviceStatistics};
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    let all = [TimeRange::ALL];
    let names = |ms: &[&str]| ms.iter().map(|m| m.to_string()).collect::<Vec<_>>();
    let stats = |ms: &[&str], ranges: &[TimeRange]| -> DeviceStatistics { e.statistics(D, &names(ms), ranges).unwrap() };

    // Only in the memtable: bounded, not exact.
    e.write(&ints(D, "s", &[(1, 10), (2, 5), (3, 30)])).unwrap();
    assert_eq!(stats(&["s"], &all).columns[0].count, Bound::AtMost(3));
    // Flushed: exact, with min/max and times; rows of one measurement are its points.
    e.flush().unwrap();
    let s = stats(&["s"], &all);
    assert_eq!(s.rows, Bound::Exact(3));
    assert_eq!(s.columns[0].count, Bound::Exact(3));
    assert_eq!((s.columns[0].min.clone(), s.columns[0].max.clone()), (Some(Value::Int64(5)), Some(Value::Int64(30))));
    assert_eq!((s.columns[0].min_time, s.columns[0].max_time), (Some(1), Some(3)));
    // A range that cuts the chunk: only a bound. One that misses it: exactly nothing.
    assert_eq!(stats(&["s"], &[TimeRange::new(2, 9)]).columns[0].count, Bound::AtMost(3));
    assert_eq!(stats(&["s"], &[TimeRange::new(4, 9)]).columns[0].count, Bound::Exact(0));
    assert_eq!(stats(&["missing"], &all).columns[0].count, Bound::Exact(0));

    // A second measurement with points: rows are only bounded on a non-aligned device.
    e.write(&ints(D, "t", &[(10, 1)])).unwrap();
    e.flush().unwrap();
    assert_eq!(stats(&["s", "t"], &all).rows, Bound::AtMost(4));

    // A late point overlapping the sequence chunk: inexact until compaction.
    e.write(&ints(D, "s", &[(2, 6)])).unwrap();
    e.flush().unwrap();
    assert_eq!(stats(&["s"], &all).columns[0].count, Bound::AtMost(4));
    e.compact().unwrap();
    assert_eq!(stats(&["s"], &all).columns[0].count, Bound::Exact(3));

    // A tombstone touching the chunk: inexact until compaction.
    e.delete(&[key("s")], TimeRange::new(3, 3)).unwrap();
    assert_eq!(stats(&["s"], &all).columns[0].count, Bound::AtMost(3));
    e.compact().unwrap();
    let s = stats(&["s"], &all);
    assert_eq!(s.columns[0].count, Bound::Exact(2));
    assert_eq!((s.columns[0].min.clone(), s.columns[0].max.clone()), (Some(Value::Int64(6)), Some(Value::Int64(10))));

    // Aligned: rows from the time column where a column is dense.
    let aligned = WriteBatch::new("root.sg.a", true, vec![1, 2, 3])
        .with_column(Column::full("x", DataType::Double, Values::Double(vec![1.0, 2.0, 3.0])))
        .with_column(Column::from_options("y", DataType::Int64, &[None, Some(Value::Int64(7)), None]).unwrap());
    e.write(&aligned).unwrap();
    e.flush().unwrap();
    let a = e.statistics("root.sg.a", &names(&["x", "y"]), &all).unwrap();
    assert_eq!(a.rows, Bound::Exact(3));
    assert_eq!(a.columns[1].count, Bound::Exact(1));
    // Only the sparse column asked: its rows are its points.
    assert_eq!(e.statistics("root.sg.a", &names(&["y"]), &all).unwrap().rows, Bound::Exact(1));
}

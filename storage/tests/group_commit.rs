//! Atomic groups and group commit: a group of batches (a COPY) is applied
//! and replayed whole or not at all; concurrent writers under
//! `FsyncPolicy::EveryBatch` share syncs and lose nothing acknowledged; a
//! failed sync refuses later writes instead of acknowledging them.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::Arc;

use common::*;
use storage::fs::{FaultInjectingFs, FaultPlan, RealFs};
use storage::{Column, DataType, EngineConfig, Error, FsyncPolicy, SeriesKey, Values, WriteBatch};

fn every_batch() -> EngineConfig {
    EngineConfig { wal_fsync: FsyncPolicy::EveryBatch, ..test_config() }
}

fn wal_segments(db: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(db.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_group_is_applied_and_replayed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), every_batch());
    let group = vec![
        ints("root.sg.d1", "s", &[(1, 10), (2, 20)]),
        ints("root.sg.d2", "s", &[(1, 11)]),
        ints("root.sg.d1", "s", &[(3, 30)]),
    ];
    e.write_group(&group).unwrap();
    assert_eq!(int_points(&e, &SeriesKey::new("root.sg.d1", "s")), vec![(1, 10), (2, 20), (3, 30)]);
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &SeriesKey::new("root.sg.d1", "s")), vec![(1, 10), (2, 20), (3, 30)]);
    assert_eq!(int_points(&e, &SeriesKey::new("root.sg.d2", "s")), vec![(1, 11)]);
}

#[test]
fn a_group_with_a_bad_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), every_batch());
    e.write(&ints("root.sg.d1", "s", &[(1, 1)])).unwrap();
    // The last batch disagrees with the memtable's type of the series.
    let group = vec![ints("root.sg.d2", "s", &[(5, 5)]), doubles("root.sg.d1", "s", &[(9, 9.5)])];
    let err = e.write_group(&group).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    // Two batches of the group disagreeing with each other.
    let group = vec![ints("root.sg.d3", "s", &[(5, 5)]), doubles("root.sg.d3", "s", &[(6, 6.5)])];
    assert!(matches!(e.write_group(&group), Err(Error::TypeMismatch { .. })));
    // … or on the device's alignment (the first would be lost to the second's layout).
    let mut aligned = ints("root.sg.d4", "t", &[(6, 6)]);
    aligned.aligned = true;
    let group = vec![ints("root.sg.d4", "s", &[(5, 5)]), aligned];
    assert!(matches!(e.write_group(&group), Err(Error::AlignmentMismatch { .. })));
    assert!(int_points(&e, &SeriesKey::new("root.sg.d2", "s")).is_empty());
    assert!(int_points(&e, &SeriesKey::new("root.sg.d3", "s")).is_empty());
    assert!(int_points(&e, &SeriesKey::new("root.sg.d4", "s")).is_empty());
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &SeriesKey::new("root.sg.d1", "s")), vec![(1, 1)]);
    assert!(int_points(&e, &SeriesKey::new("root.sg.d2", "s")).is_empty());
}

#[test]
fn a_torn_group_record_is_absent_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), every_batch());
    e.write(&ints("root.sg.d1", "s", &[(1, 1)])).unwrap();
    let group: Vec<WriteBatch> = (0..50).map(|i| ints("root.sg.d1", "s", &[(100 + i, i)])).collect();
    e.write_group(&group).unwrap();
    drop(e);
    // A crash halfway through the group's write: its second half never reached the disk.
    let seg = wal_segments(dir.path()).pop().unwrap();
    let data = std::fs::read(&seg).unwrap();
    std::fs::write(&seg, &data[..data.len() - 300]).unwrap();
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &SeriesKey::new("root.sg.d1", "s")), vec![(1, 1)]);
}

#[test]
fn concurrent_writers_share_syncs_and_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig { background: true, ..every_batch() };
    let e = open(dir.path(), config);
    let threads: Vec<_> = (0..8)
        .map(|w| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for i in 0..100i64 {
                    e.write(&ints(&format!("root.sg.w{w}"), "s", &[(i, i * w)])).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(e);
    let e = open(dir.path(), test_config());
    for w in 0..8i64 {
        let got = int_points(&e, &SeriesKey::new(format!("root.sg.w{w}"), "s"));
        assert_eq!(got, (0..100).map(|i| (i, i * w)).collect::<Vec<_>>(), "writer {w}");
    }
}

#[test]
fn deferred_writes_are_durable_once_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), every_batch());
    let tickets: Vec<_> = (0..20).map(|i| e.write_deferred(&ints("root.sg.d1", "s", &[(i, i)])).unwrap()).collect();
    // Visible before the sync; the last ticket covers all earlier ones.
    assert_eq!(int_points(&e, &SeriesKey::new("root.sg.d1", "s")).len(), 20);
    e.wait_durable(*tickets.iter().max().unwrap()).unwrap();
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &SeriesKey::new("root.sg.d1", "s")).len(), 20);
}

#[test]
fn a_failed_sync_is_reported_and_refuses_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultInjectingFs::new(Arc::new(RealFs));
    let e = open(dir.path(), EngineConfig { fs: Arc::new(fs.clone()), ..every_batch() });
    e.write(&ints("root.sg.d1", "s", &[(1, 1)])).unwrap();
    fs.set_plan(FaultPlan { fail_syncs: true, path_contains: Some(".wal".into()), ..FaultPlan::default() });
    assert!(matches!(e.write(&ints("root.sg.d1", "s", &[(2, 2)])), Err(Error::Io { .. })));
    fs.set_plan(FaultPlan::default());
    let err = e.write(&ints("root.sg.d1", "s", &[(3, 3)])).unwrap_err();
    assert!(err.to_string().contains("restart"), "{err}");
    drop(e);
    let e = open(dir.path(), test_config());
    let got = int_points(&e, &SeriesKey::new("root.sg.d1", "s"));
    assert!(got.starts_with(&[(1, 1)]) && !got.contains(&(3, 3)), "{got:?}");
}

#[test]
fn an_aligned_group_round_trips_with_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), every_batch());
    let b = WriteBatch::new("root.sg.a", true, vec![1, 2, 3])
        .with_column(Column::full("x", DataType::Double, Values::Double(vec![1.5, 2.5, 3.5])))
        .with_column(Column::from_options("y", DataType::Int32, &[None, Some(storage::Value::Int32(7)), None]).unwrap());
    e.write_group(&[b.clone(), b]).unwrap();
    drop(e);
    let e = open(dir.path(), test_config());
    let rows = e.scan_aligned("root.sg.a", &["x", "y"], storage::TimeRange::ALL).unwrap();
    assert_eq!(rows.iter().map(|r| r.times.len()).sum::<usize>(), 3);
}

#[test]
fn a_group_past_the_hard_memory_limit_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig { memory_soft_limit_bytes: 1 << 10, memory_hard_limit_bytes: 4 << 10, ..every_batch() };
    let e = open(dir.path(), config);
    let group: Vec<WriteBatch> = (0..100i64).map(|i| ints("root.sg.d1", "s", &(0..10).map(|t| (i * 10 + t, t)).collect::<Vec<_>>())).collect();
    let err = e.write_group(&group).unwrap_err();
    assert!(matches!(err, Error::MemoryBudgetExceeded { .. }), "{err}");
    assert!(int_points(&e, &SeriesKey::new("root.sg.d1", "s")).is_empty());
    // Smaller writes still go through.
    e.write_group(&group[..2]).unwrap();
    assert_eq!(int_points(&e, &SeriesKey::new("root.sg.d1", "s")).len(), 20);
}

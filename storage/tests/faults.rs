//! I/O faults through the `FileSystem` seam and damaged files on disk:
//! torn WAL tails are cut, empty segments ignored, corruption refused with a
//! named error, failed writes reported without losing acknowledged data,
//! unfinished flush files rebuilt from the WAL, and damaged TsFiles reduced
//! to their intact prefix.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use storage::fs::{FaultInjectingFs, FaultPlan, FileSystem, RealFs};
use storage::{EngineConfig, Error, MemoryBudget, SeriesKey, TimeRange};

const D: &str = "root.sg.d1";

fn key() -> SeriesKey {
    SeriesKey::new(D, "s")
}

fn batch(i: i64) -> storage::WriteBatch {
    ints(D, "s", &(i * 10..i * 10 + 10).map(|t| (t, t)).collect::<Vec<_>>())
}

fn expected(batches: impl IntoIterator<Item = i64>) -> Vec<(i64, i64)> {
    batches.into_iter().flat_map(|i| (i * 10..i * 10 + 10).map(|t| (t, t))).collect()
}

fn wal_segments(db: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(db.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// The segment holding data (the newest one is empty after a reopen).
fn largest_segment(db: &Path) -> PathBuf {
    wal_segments(db).into_iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap()
}

fn tsfiles(db: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for kind in ["seq", "unseq"] {
        let Ok(parts) = std::fs::read_dir(db.join(kind)) else { continue };
        for p in parts {
            for f in std::fs::read_dir(p.unwrap().path()).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "tsfile") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_torn_wal_tail_is_cut_and_writing_continues() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    for i in 0..5 {
        e.write(&batch(i)).unwrap();
    }
    drop(e);
    let seg = largest_segment(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);

    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected(0..4), "the torn last record is dropped, the rest kept");
    assert!(std::fs::metadata(&seg).unwrap().len() < len - 3, "the torn bytes were cut off");
    e.write(&batch(5)).unwrap();
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected([0, 1, 2, 3, 5]));
}

#[test]
fn a_zero_length_segment_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    e.write(&batch(0)).unwrap();
    drop(e);
    std::fs::write(dir.path().join("wal").join(format!("{:016}-{:06}.wal", 9999, 0)), b"").unwrap();
    std::fs::write(dir.path().join("wal").join(format!("{:016}-{:06}.wal", 1, 7)), b"").unwrap();
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected(0..1));
    e.write(&batch(1)).unwrap();
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected(0..2));
}

#[test]
fn corruption_in_the_middle_of_a_segment_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    for i in 0..3 {
        e.write(&batch(i)).unwrap();
    }
    drop(e);
    let seg = largest_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let first_record = 20; // after the segment header
    bytes[first_record + 30] ^= 0x5A;
    std::fs::write(&seg, &bytes).unwrap();
    match StorageEngine_open(dir.path()) {
        Err(Error::Corrupt { file, offset, .. }) => {
            assert_eq!(file, seg);
            assert_eq!(offset, first_record as u64);
        }
        other => panic!("expected Error::Corrupt, got {other:?}"),
    }
    // Nothing was thrown away while refusing.
    assert_eq!(std::fs::read(&seg).unwrap(), bytes);
}

#[allow(non_snake_case)]
fn StorageEngine_open(db: &Path) -> storage::Result<Arc<storage::StorageEngine>> {
    storage::StorageEngine::open(db, test_config())
}

#[test]
fn a_failed_wal_write_is_reported_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultInjectingFs::new(Arc::new(RealFs));
    let config = EngineConfig { fs: Arc::new(fs.clone()), ..test_config() };
    let e = open(dir.path(), config);
    e.write(&batch(0)).unwrap();
    e.write(&batch(1)).unwrap();
    fs.set_plan(FaultPlan { fail_write_after: Some(0), torn: true, path_contains: Some(".wal".into()), ..FaultPlan::default() });
    let err = e.write(&batch(2)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(fs.faults_injected(), 1);
    assert_eq!(int_points(&e, &key()), expected(0..2), "a failed write is not applied");
    e.write(&batch(3)).unwrap();
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected([0, 1, 3]));
}

#[test]
fn failed_flushes_keep_data_in_memory_and_the_hard_limit_then_rejects_writes() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultInjectingFs::new(Arc::new(RealFs));
    let budget = Arc::new(MemoryBudget::new(3_000, 6_000));
    let config = EngineConfig {
        fs: Arc::new(fs.clone()),
        memtable_bytes_max: 1_000,
        memory_budget: Some(Arc::clone(&budget)),
        ..test_config()
    };
    let e = open(dir.path(), config.clone());
    fs.set_plan(FaultPlan { fail_write_after: Some(0), keep_failing: true, path_contains: Some(".tsfile".into()), ..FaultPlan::default() });
    let mut acked = Vec::new();
    let mut rejected = false;
    for i in 0..100 {
        match e.write(&batch(i)) {
            Ok(()) => acked.push(i),
            Err(Error::MemoryBudgetExceeded { .. }) => {
                rejected = true;
                break;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(rejected, "writes are rejected once flushes cannot free memory");
    assert!(tsfiles(dir.path()).is_empty(), "failed flushes leave no files behind");
    assert!(e.flush().is_err());
    assert_eq!(int_points(&e, &key()), expected(acked.clone()));

    fs.clear();
    e.flush().unwrap();
    assert_eq!(budget.used(), 0);
    e.write(&batch(1000)).unwrap();
    drop(e);
    let e = open(dir.path(), test_config());
    acked.push(1000);
    assert_eq!(int_points(&e, &key()), expected(acked));
}

#[test]
fn a_failed_checkpoint_keeps_the_flush_files_for_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultInjectingFs::new(Arc::new(RealFs));
    let e = open(dir.path(), EngineConfig { fs: Arc::new(fs.clone()), ..test_config() });
    e.write(&batch(0)).unwrap();
    fs.set_plan(FaultPlan { fail_write_after: Some(0), path_contains: Some("CHECKPOINT".into()), ..FaultPlan::default() });
    assert!(e.flush().is_err());
    let after_failure = tsfiles(dir.path());
    assert_eq!(after_failure.len(), 1);
    fs.clear();
    e.flush().unwrap();
    assert_eq!(tsfiles(dir.path()), after_failure, "the retry reuses the written file");
    assert_eq!(int_points(&e, &key()), expected(0..1));
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected(0..1));
    assert_eq!(e.files().len(), 1);
}

#[test]
fn an_unfinished_flush_file_is_discarded_and_rebuilt_from_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    for i in 0..3 {
        e.write(&batch(i)).unwrap();
    }
    drop(e);
    // What a crash in the middle of flushing generation 1 leaves behind.
    let part = dir.path().join("seq").join("0");
    std::fs::create_dir_all(&part).unwrap();
    let partial = part.join(format!("{:016}-f{:016}.tsfile", 77, 1));
    std::fs::write(&partial, b"TsFile\x04\x00\x0eroot").unwrap();
    let e = open(dir.path(), test_config());
    assert!(!partial.exists());
    assert_eq!(int_points(&e, &key()), expected(0..3));
    e.flush().unwrap();
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected(0..3));
}

#[test]
fn a_damaged_tsfile_without_wal_keeps_its_intact_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    e.write(&ints("root.sg.a", "s", &(0..50).map(|t| (t, t)).collect::<Vec<_>>())).unwrap();
    e.write(&ints("root.sg.b", "s", &(0..50).map(|t| (t, -t)).collect::<Vec<_>>())).unwrap();
    e.flush().unwrap();
    drop(e);
    let files = tsfiles(dir.path());
    assert_eq!(files.len(), 1);
    let full = std::fs::read(&files[0]).unwrap();

    // Tail cut off: every chunk group is intact.
    std::fs::write(&files[0], &full[..full.len() - 20]).unwrap();
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &SeriesKey::new("root.sg.a", "s")).len(), 50);
    assert_eq!(int_points(&e, &SeriesKey::new("root.sg.b", "s")).len(), 50);
    drop(e);
    assert!(tsfile::TsFileReader::open(&files[0]).is_ok(), "the salvaged file is a valid TsFile again");

    // Cut in the middle of the data: what is intact survives, nothing else appears.
    let reader = tsfile::TsFileReader::open(&files[0]).unwrap();
    let groups = reader.chunk_groups().unwrap();
    let second = groups[1].offset as usize;
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..second + 40]).unwrap();
    let e = open(dir.path(), test_config());
    let first_device = &groups[0].device.to_string();
    let a = int_points(&e, &SeriesKey::new(first_device.as_str(), "s"));
    assert_eq!(a.len(), 50);
    let other = if first_device == "root.sg.a" { "root.sg.b" } else { "root.sg.a" };
    assert!(int_points(&e, &SeriesKey::new(other, "s")).is_empty());
}

#[test]
fn a_torn_mods_tail_is_cut_and_damage_before_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    e.write(&batch(0)).unwrap();
    e.flush().unwrap();
    e.delete(&[key()], TimeRange::new(0, 1)).unwrap();
    e.delete(&[key()], TimeRange::new(5, 6)).unwrap();
    drop(e);
    // Both deletes are also in the WAL, so after cutting the .mods the replay restores them.
    let mods = PathBuf::from(format!("{}.mods", tsfiles(dir.path())[0].display()));
    let bytes = std::fs::read(&mods).unwrap();
    std::fs::write(&mods, &bytes[..bytes.len() - 2]).unwrap();
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()).len(), 6);
    e.flush().unwrap();
    drop(e);
    let bytes = std::fs::read(&mods).unwrap();
    let mut bad = bytes.clone();
    bad[14] ^= 0xFF;
    std::fs::write(&mods, &bad).unwrap();
    assert!(matches!(StorageEngine_open(dir.path()), Err(Error::Corrupt { .. })));
}

#[test]
fn the_fault_injecting_fs_is_usable_as_a_file_system() {
    let fs: Arc<dyn FileSystem> = Arc::new(FaultInjectingFs::new(Arc::new(RealFs)));
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), EngineConfig { fs, ..test_config() });
    e.write(&batch(0)).unwrap();
    e.flush().unwrap();
    e.compact().unwrap();
    assert_eq!(int_points(&e, &key()), expected(0..1));
}

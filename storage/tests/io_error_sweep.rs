//! I/O errors at every write and every sync: a workload of writes, late
//! writes, deletes, flushes and compactions runs with the N-th file write
//! failing (torn), or the N-th sync failing, either once or from then on
//! (a full disk, a dying device), for every N the workload reaches; then the engine is dropped (as by `kill -9`: no close) and the
//! database reopened without faults. Every acknowledged operation must be
//! there; the operation that failed may be there, whole, or not at all.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use storage::fs::{DirLock, FaultInjectingFs, FaultPlan, FileSystem, FsFile, RealFs};
use storage::{EngineConfig, SeriesKey, StorageEngine, TimeRange};

const DEVICES: [&str; 2] = ["root.sw.d0", "root.sw.d1"];
const OPS: u64 = 60;

type Model = BTreeMap<(usize, i64), i64>;

enum Op {
    Write(usize, Vec<(i64, i64)>),
    Delete(usize, TimeRange),
}

fn op(i: u64) -> Op {
    let d = (i % 2) as usize;
    let base = i as i64 * 8;
    if i % 7 == 6 {
        let start = (i as i64 * 37) % base;
        return Op::Delete(d, TimeRange::new(start, start + 12));
    }
    let late = i % 4 == 3;
    let pts = (0..8i64)
        .map(|r| {
            let t = if late { (i as i64 * 131 + r * 17) % base } else { base + r };
            (t, i as i64 * 1000 + r)
        })
        .collect();
    Op::Write(d, pts)
}

fn apply(model: &mut Model, i: u64) {
    match op(i) {
        Op::Write(d, pts) => {
            for (t, v) in pts {
                model.insert((d, t), v);
            }
        }
        Op::Delete(d, r) => model.retain(|(dd, t), _| !(*dd == d && r.contains(*t))),
    }
}

fn run(engine: &StorageEngine, i: u64) -> storage::Result<()> {
    match op(i) {
        Op::Write(d, pts) => engine.write(&ints(DEVICES[d], "s", &pts)),
        Op::Delete(d, r) => engine.delete(&[SeriesKey::new(DEVICES[d], "s")], r),
    }
}

/// The real file system without `fsync`: the check is a `kill -9`, not a
/// power loss, so syncs only cost time (the fault layer above still counts
/// and fails them).
#[derive(Debug)]
struct NoSyncFs;

#[derive(Debug)]
struct NoSyncFile(Arc<dyn FsFile>);

impl FsFile for NoSyncFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_at(offset, buf)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync(&self) -> std::io::Result<()> {
        Ok(())
    }
}

impl FileSystem for NoSyncFs {
    fn create(&self, path: &Path) -> std::io::Result<Arc<dyn FsFile>> {
        Ok(Arc::new(NoSyncFile(RealFs.create(path)?)))
    }
    fn open(&self, path: &Path) -> std::io::Result<Arc<dyn FsFile>> {
        Ok(Arc::new(NoSyncFile(RealFs.open(path)?)))
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        RealFs.list(dir)
    }
    fn is_dir(&self, path: &Path) -> bool {
        RealFs.is_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        RealFs.exists(path)
    }
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        RealFs.remove_file(path)
    }
    fn remove_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        RealFs.remove_dir_all(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        RealFs.rename(from, to)
    }
    fn sync_dir(&self, _dir: &Path) -> std::io::Result<()> {
        Ok(())
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn DirLock>> {
        RealFs.lock(path)
    }
}

fn config(fs: Option<Arc<FaultInjectingFs>>) -> EngineConfig {
    let mut c = EngineConfig {
        memtable_bytes_max: 600,
        time_partition_ms: 200,
        seq_file_target_bytes: 2048,
        compaction_unseq_files_trigger: 1,
        compaction_small_seq_files_trigger: 2,
        page_max_points: 4,
        ..test_config()
    };
    c.fs = match fs {
        Some(fs) => fs,
        None => Arc::new(NoSyncFs),
    };
    c
}

fn read(engine: &StorageEngine) -> Model {
    let mut got = Model::new();
    for (d, name) in DEVICES.iter().enumerate() {
        for (t, v) in int_points(engine, &SeriesKey::new(*name, "s")) {
            got.insert((d, t), v);
        }
    }
    got
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Write,
    Sync,
}

/// Returns whether the fault fired.
fn one(n: u64, keep_failing: bool, fault: Fault) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(FaultInjectingFs::new(Arc::new(NoSyncFs)));
    let engine = StorageEngine::open(dir.path(), config(Some(Arc::clone(&fs)))).unwrap();
    fs.set_plan(match fault {
        Fault::Write => FaultPlan { fail_write_after: Some(n), keep_failing, torn: true, ..FaultPlan::default() },
        Fault::Sync => FaultPlan { fail_sync_after: Some(n), keep_failing, ..FaultPlan::default() },
    });
    let mut model = Model::new();
    let mut attempted: Vec<u64> = Vec::new();
    let mut failed: Vec<u64> = Vec::new();
    for i in 0..OPS {
        attempted.push(i);
        match run(&engine, i) {
            Ok(()) => apply(&mut model, i),
            Err(_) => {
                failed.push(i);
                if keep_failing {
                    break;
                }
            }
        }
        if i % 5 == 4 {
            let _ = engine.compact();
        }
    }
    let fired = fs.faults_injected() > 0;
    drop(engine);
    let engine = match StorageEngine::open(dir.path(), config(None)) {
        Ok(e) => e,
        Err(e) => panic!("{fault:?} #{n} failing (keep failing: {keep_failing}): reopen failed: {e}"),
    };
    let got = read(&engine);
    if got != model {
        // A failed operation may have been applied, whole (it may have been
        // logged before the error): try every subset of the failed ones.
        let ok = (0u64..1 << failed.len().min(12)).any(|mask| {
            let mut m = Model::new();
            for &i in &attempted {
                if failed.iter().position(|f| *f == i).is_none_or(|k| mask >> k & 1 == 1) {
                    apply(&mut m, i);
                }
            }
            m == got
        });
        assert!(
            ok,
            "{fault:?} #{n} failing (keep failing: {keep_failing}), failed ops {failed:?}:\n missing/wrong {:?}\n unexpected {:?}",
            model.iter().filter(|(k, v)| got.get(*k) != Some(v)).collect::<Vec<_>>(),
            got.iter().filter(|(k, v)| model.get(*k) != Some(v)).collect::<Vec<_>>()
        );
    }
    fired
}

fn sweep(fault: Fault) {
    for keep_failing in [true, false] {
        let mut n = 0;
        while one(n, keep_failing, fault) {
            n += 1;
        }
        assert!(n > 50, "the workload makes enough {fault:?}s to be worth sweeping ({n})");
    }
}

#[test]
fn every_failing_write_loses_nothing_acknowledged() {
    sweep(Fault::Write);
}

#[test]
fn every_failing_sync_loses_nothing_acknowledged() {
    sweep(Fault::Sync);
}

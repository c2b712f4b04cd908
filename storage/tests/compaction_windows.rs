//! Crash windows of compaction, made deterministic with a file system that
//! fails exactly the step under test:
//!
//! - the `done` mark of a compaction log reaches the file but its sync
//!   reports an error (or the outputs fail to open afterwards): the
//!   compaction is abandoned, and the log must not be left saying `done`
//!   while its outputs are deleted, or the next start deletes the inputs
//!   too (every point of the partition lost);
//! - copying a tombstone that arrived during the merge onto the outputs
//!   fails: the outputs must not replace the inputs without it (the
//!   deleted points would come back).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use storage::fs::{DirLock, FileSystem, FsFile, RealFs};
use storage::{EngineConfig, SeriesKey, StorageEngine, TimeRange};

const D: &str = "root.sg.d1";

/// Which steps fail.
#[derive(Default)]
struct Switches {
    /// The sync after writing a compaction log's `done` record fails (the
    /// record itself is written).
    fail_done_sync: AtomicBool,
    /// Removing a compaction log fails.
    fail_log_remove: AtomicBool,
    /// Cutting a compaction log (taking `done` back) fails.
    fail_log_truncate: AtomicBool,
    /// Writes to `.mods` files of compaction outputs fail.
    fail_output_mods: AtomicBool,
    /// Run once when the first compaction output is created.
    on_output: OnceLock<Box<dyn Fn() + Send + Sync>>,
    fired: AtomicBool,
}

fn is_log(path: &Path) -> bool {
    path.parent().and_then(|p| p.file_name()).is_some_and(|n| n == "compaction") && path.extension().is_some_and(|e| e == "log")
}

fn is_output(path: &Path) -> bool {
    path.to_string_lossy().ends_with("-c.tsfile")
}

fn is_output_mods(path: &Path) -> bool {
    path.to_string_lossy().ends_with("-c.tsfile.mods")
}

struct TestFile {
    inner: Arc<dyn FsFile>,
    path: PathBuf,
    sw: Arc<Switches>,
    last_write: Mutex<Vec<u8>>,
}

impl std::fmt::Debug for TestFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestFile").field("path", &self.path).finish_non_exhaustive()
    }
}

impl FsFile for TestFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if is_output_mods(&self.path) && self.sw.fail_output_mods.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected .mods write failure"));
        }
        *self.last_write.lock().unwrap() = buf.to_vec();
        self.inner.write_at(offset, buf)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        if is_log(&self.path) && self.sw.fail_log_truncate.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected truncate failure"));
        }
        self.last_write.lock().unwrap().clear();
        self.inner.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        // A `done` record: length 1, crc, payload [3].
        let done = {
            let w = self.last_write.lock().unwrap();
            w.len() == 9 && w[..4] == 1u32.to_le_bytes() && w[8] == 3
        };
        if is_log(&self.path) && done && self.sw.fail_done_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected sync failure after the done record"));
        }
        self.inner.sync()
    }
}

struct TestFs {
    sw: Arc<Switches>,
}

impl std::fmt::Debug for TestFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestFs")
    }
}

impl TestFs {
    fn wrap(&self, path: &Path, f: Arc<dyn FsFile>) -> Arc<dyn FsFile> {
        Arc::new(TestFile { inner: f, path: path.to_path_buf(), sw: Arc::clone(&self.sw), last_write: Mutex::default() })
    }
}

impl FileSystem for TestFs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        if is_output(path) && !self.sw.fired.swap(true, Ordering::SeqCst) {
            if let Some(hook) = self.sw.on_output.get() {
                hook();
            }
        }
        Ok(self.wrap(path, RealFs.create(path)?))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(self.wrap(path, RealFs.open(path)?))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        RealFs.list(dir)
    }
    fn is_dir(&self, path: &Path) -> bool {
        RealFs.is_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        RealFs.exists(path)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        if is_log(path) && self.sw.fail_log_remove.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected remove failure"));
        }
        RealFs.remove_file(path)
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.remove_dir_all(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        RealFs.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        RealFs.lock(path)
    }
}

fn config(sw: &Arc<Switches>) -> EngineConfig {
    EngineConfig { fs: Arc::new(TestFs { sw: Arc::clone(sw) }), ..test_config() }
}

fn key() -> SeriesKey {
    SeriesKey::new(D, "s")
}

/// Three flushed sequence files and one unsequence file in one partition;
/// returns the expected points.
fn three_files_and_a_late_one(e: &StorageEngine) -> Vec<(i64, i64)> {
    let mut expected: Vec<(i64, i64)> = Vec::new();
    for f in 0..3 {
        let pts: Vec<(i64, i64)> = (f * 10..f * 10 + 10).map(|t| (t, t)).collect();
        e.write(&ints(D, "s", &pts)).unwrap();
        e.flush().unwrap();
        expected.extend(pts);
    }
    e.write(&ints(D, "s", &[(5, 500), (15, 1500)])).unwrap();
    e.flush().unwrap();
    for (t, v) in &mut expected {
        if *t == 5 || *t == 15 {
            *v *= 100;
        }
    }
    assert_eq!(e.files().len(), 4, "three sequence files and one unsequence file");
    expected
}

fn logs(db: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(db.join("compaction")).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
}

/// The `done` mark is on disk but its sync failed; the log cannot be removed
/// (the same state as a kill between deleting the outputs and the log).
#[test]
fn a_failed_done_sync_does_not_leave_a_done_log_without_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Arc::new(Switches::default());
    let e = open(dir.path(), config(&sw));
    let expected = three_files_and_a_late_one(&e);

    sw.fail_done_sync.store(true, Ordering::SeqCst);
    sw.fail_log_remove.store(true, Ordering::SeqCst);
    assert!(e.compact().is_err(), "the compaction reports the failed sync");
    assert_eq!(int_points(&e, &key()), expected, "the inputs are still the truth");
    assert_eq!(logs(dir.path()).len(), 1, "the log could not be removed");
    drop(e); // as after kill -9: everything acknowledged is in files

    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected, "nothing lost after the restart");
    assert!(logs(dir.path()).is_empty());
    // And the database still compacts.
    e.compact().unwrap();
    assert_eq!(e.files().len(), 1);
    assert_eq!(int_points(&e, &key()), expected);
}

/// The same failure with the log removable: the compaction is abandoned
/// cleanly and the next one succeeds.
#[test]
fn a_failed_done_sync_abandons_the_compaction_and_the_next_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Arc::new(Switches::default());
    let e = open(dir.path(), config(&sw));
    let expected = three_files_and_a_late_one(&e);

    sw.fail_done_sync.store(true, Ordering::SeqCst);
    assert!(e.compact().is_err());
    assert_eq!(int_points(&e, &key()), expected);
    assert!(logs(dir.path()).is_empty());
    sw.fail_done_sync.store(false, Ordering::SeqCst);
    e.compact().unwrap();
    assert_eq!(e.files().len(), 1);
    assert_eq!(int_points(&e, &key()), expected);
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected);
}

/// `done` is on disk, its sync failed and it cannot be taken back: the
/// outputs stay beside the inputs, compaction stops, deletes still count,
/// and the next start finishes the compaction from the log.
#[test]
fn a_done_mark_that_cannot_be_taken_back_is_finished_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Arc::new(Switches::default());
    let e = open(dir.path(), config(&sw));
    let mut expected = three_files_and_a_late_one(&e);

    sw.fail_done_sync.store(true, Ordering::SeqCst);
    sw.fail_log_truncate.store(true, Ordering::SeqCst);
    assert!(e.compact().is_err());
    sw.fail_done_sync.store(false, Ordering::SeqCst);
    sw.fail_log_truncate.store(false, Ordering::SeqCst);
    assert!(e.compact().is_err(), "compaction is halted until the next start");
    assert_eq!(int_points(&e, &key()), expected);
    e.delete(&[key()], TimeRange::new(3, 6)).unwrap();
    expected.retain(|(t, _)| !(3..=6).contains(t));
    assert_eq!(int_points(&e, &key()), expected);
    drop(e);

    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected, "finished from the log, with the later tombstone");
    assert!(logs(dir.path()).is_empty());
    assert_eq!(e.files().len(), 1, "the outputs replaced the inputs");
    e.compact().unwrap();
    assert_eq!(int_points(&e, &key()), expected);
}

/// A delete arrives while the merge runs; copying its tombstone onto the
/// outputs fails. The deleted points must stay deleted, now and after a
/// restart.
#[test]
fn a_failed_tombstone_copy_does_not_bring_deleted_points_back() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Arc::new(Switches::default());
    let e = open(dir.path(), config(&sw));
    let mut expected = three_files_and_a_late_one(&e);

    let weak = Arc::downgrade(&e);
    let sw2 = Arc::clone(&sw);
    sw.on_output
        .set(Box::new(move || {
            // Runs inside the merge, before the first output is written.
            if let Some(e) = weak.upgrade() {
                e.delete(&[key()], TimeRange::new(12, 17)).unwrap();
            }
            sw2.fail_output_mods.store(true, Ordering::SeqCst);
        }))
        .unwrap_or_else(|_| panic!("hook set twice"));
    expected.retain(|(t, _)| !(12..=17).contains(t));

    let r = e.compact();
    assert_eq!(int_points(&e, &key()), expected, "deleted points stay deleted while running (compact: {r:?})");
    sw.fail_output_mods.store(false, Ordering::SeqCst);
    drop(e);
    let e = open(dir.path(), test_config());
    assert_eq!(int_points(&e, &key()), expected, "deleted points stay deleted after a restart");
    e.compact().unwrap();
    assert_eq!(int_points(&e, &key()), expected);
}

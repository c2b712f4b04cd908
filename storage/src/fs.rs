//! The file-system seam. Every byte the engine reads or writes goes through
//! [`FileSystem`] and [`FsFile`], so tests can fail the N-th write, tear a
//! write in half, or fail syncs ([`FaultInjectingFs`]) and check that the
//! engine reports the error and loses nothing it acknowledged.
//!
//! Files use positional I/O (`read_at`/`write_at` with `&self`) so one handle
//! can be shared by a writer and a background syncer without a lock.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// An open file.
pub trait FsFile: Send + Sync + fmt::Debug {
    /// Fill `buf` from `offset`; fails with `UnexpectedEof` past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Write all of `buf` at `offset`.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Make written data durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
}

/// Something that keeps a directory locked until dropped.
pub trait DirLock: Send + Sync + fmt::Debug {}

/// The operations the engine needs from a file system.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Create (or truncate) a file for reading and writing.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>>;
    /// Open an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>>;
    /// Entries of a directory (files and directories), in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    fn is_dir(&self, path: &Path) -> bool;
    fn exists(&self, path: &Path) -> bool;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Atomically replace `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Make directory entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Take an exclusive lock on `path` (created if missing), held until the
    /// returned guard is dropped or the process dies.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>>;
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile {
    file: std::fs::File,
}

impl FsFile for RealFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[derive(Debug)]
struct RealLock {
    _file: std::fs::File,
}

impl DirLock for RealLock {}

impl FileSystem for RealFs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Arc::new(RealFile { file }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(RealFile { file }))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect()
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(RealLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(io::ErrorKind::WouldBlock, "locked")),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// What [`FaultInjectingFs`] should break.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Let this many matching writes succeed, then fail the next one.
    pub fail_write_after: Option<u64>,
    /// Keep failing every matching write once the first has failed.
    pub keep_failing: bool,
    /// A failing write first writes half of its bytes (a torn write).
    pub torn: bool,
    /// Fail every `sync` of a matching file.
    pub fail_syncs: bool,
    /// Let this many matching syncs succeed, then fail the next one (and,
    /// with `keep_failing`, every one after it).
    pub fail_sync_after: Option<u64>,
    /// Only files whose path contains this string match (all when `None`).
    pub path_contains: Option<String>,
}

#[derive(Debug, Default)]
struct FaultState {
    plan: FaultPlan,
    matching_writes: u64,
    failing: bool,
    matching_syncs: u64,
    syncs_failing: bool,
}

/// A [`FileSystem`] that forwards to another one and injects the faults of
/// its current [`FaultPlan`].
#[derive(Debug, Clone)]
pub struct FaultInjectingFs {
    inner: Arc<dyn FileSystem>,
    state: Arc<Mutex<FaultState>>,
    injected: Arc<AtomicU64>,
}

impl FaultInjectingFs {
    pub fn new(inner: Arc<dyn FileSystem>) -> Self {
        FaultInjectingFs {
            inner,
            state: Arc::default(),
            injected: Arc::default(),
        }
    }

    /// Replace the plan; counting starts afresh.
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *s = FaultState {
            plan,
            matching_writes: 0,
            failing: false,
            matching_syncs: 0,
            syncs_failing: false,
        };
    }

    /// Stop injecting faults.
    pub fn clear(&self) {
        self.set_plan(FaultPlan::default());
    }

    /// How many faults were injected so far.
    pub fn faults_injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    fn wrap(&self, path: &Path, file: Arc<dyn FsFile>) -> Arc<dyn FsFile> {
        Arc::new(FaultyFile {
            inner: file,
            path: path.to_path_buf(),
            state: Arc::clone(&self.state),
            injected: Arc::clone(&self.injected),
        })
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn FsFile>,
    path: PathBuf,
    state: Arc<Mutex<FaultState>>,
    injected: Arc<AtomicU64>,
}

fn injected_error(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl FaultyFile {
    fn matches(&self, plan: &FaultPlan) -> bool {
        plan.path_contains
            .as_deref()
            .is_none_or(|p| self.path.to_string_lossy().contains(p))
    }
}

impl FsFile for FaultyFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let (fail, torn) = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if !self.matches(&s.plan) {
                (false, false)
            } else if s.failing && s.plan.keep_failing {
                (true, s.plan.torn)
            } else {
                let n = s.matching_writes;
                s.matching_writes += 1;
                let fail = s.plan.fail_write_after == Some(n);
                s.failing |= fail;
                (fail, s.plan.torn)
            }
        };
        if fail {
            self.injected.fetch_add(1, Ordering::Relaxed);
            if torn && buf.len() > 1 {
                self.inner.write_at(offset, &buf[..buf.len() / 2])?;
            }
            return Err(injected_error("write"));
        }
        self.inner.write_at(offset, buf)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        let fail = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if !self.matches(&s.plan) {
                false
            } else if s.plan.fail_syncs || (s.syncs_failing && s.plan.keep_failing) {
                true
            } else {
                let n = s.matching_syncs;
                s.matching_syncs += 1;
                let fail = s.plan.fail_sync_after == Some(n);
                s.syncs_failing |= fail;
                fail
            }
        };
        if fail {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Err(injected_error("sync"));
        }
        self.inner.sync()
    }
}

impl FileSystem for FaultInjectingFs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(self.wrap(path, self.inner.create(path)?))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(self.wrap(path, self.inner.open(path)?))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.inner.list(dir)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.inner.is_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        self.inner.lock(path)
    }
}

/// A shared file as a [`tsfile::reader::ReadAt`] source for `TsFileReader`.
#[derive(Debug, Clone)]
pub(crate) struct FsReadAt {
    file: Arc<dyn FsFile>,
    len: u64,
}

impl FsReadAt {
    pub(crate) fn new(file: Arc<dyn FsFile>) -> io::Result<Self> {
        let len = file.len()?;
        Ok(FsReadAt { file, len })
    }
}

impl tsfile::reader::ReadAt for FsReadAt {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_at(offset, buf)
    }
}

/// A buffered appender over an [`FsFile`], for `TsFileWriter`.
#[derive(Debug)]
pub(crate) struct FsWriter {
    file: Arc<dyn FsFile>,
    pos: u64,
    buf: Vec<u8>,
}

/// Bytes gathered before one positional write.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

impl FsWriter {
    pub(crate) fn new(file: Arc<dyn FsFile>) -> Self {
        FsWriter {
            file,
            pos: 0,
            buf: Vec::with_capacity(WRITE_BUFFER_BYTES),
        }
    }

    pub(crate) fn file(&self) -> &Arc<dyn FsFile> {
        &self.file
    }
}

impl io::Write for FsWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        if data.len() >= WRITE_BUFFER_BYTES {
            self.file.write_at(self.pos, data)?;
            self.pos += data.len() as u64;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_at(self.pos, &self.buf)?;
            self.pos += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_matching_write_fails_and_can_tear() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultInjectingFs::new(Arc::new(RealFs));
        fs.set_plan(FaultPlan {
            fail_write_after: Some(1),
            torn: true,
            path_contains: Some("b.dat".into()),
            ..FaultPlan::default()
        });
        let a = fs.create(&dir.path().join("a.dat")).unwrap();
        let b = fs.create(&dir.path().join("b.dat")).unwrap();
        a.write_at(0, b"xxxx").unwrap();
        b.write_at(0, b"1234").unwrap();
        assert!(b.write_at(4, b"5678").is_err());
        assert_eq!(b.len().unwrap(), 6, "a torn write leaves half of its bytes");
        b.write_at(6, b"90").unwrap();
        assert_eq!(fs.faults_injected(), 1);
    }

    #[test]
    fn a_directory_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RealFs.lock(&dir.path().join("LOCK")).unwrap();
        assert!(RealFs.lock(&dir.path().join("LOCK")).is_err());
        drop(lock);
        assert!(RealFs.lock(&dir.path().join("LOCK")).is_ok());
    }
}

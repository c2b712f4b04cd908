//! The storage engine of one database: the write path (WAL, then
//! memtables, with delay separation), sealing and flushing generations,
//! deletes, the read entry points, the last-value cache, background threads
//! and the WAL replay that recovery ends with.
//!
//! Locking: one mutex guards the engine state (WAL, memtables, file index,
//! stable times, last cache). Writes hold it while they append to the WAL and
//! the memtables, so WAL order is memtable order; they encode their record
//! before taking it and wait for the WAL sync after releasing it (group
//! commit, see [`crate::commit`]), so one `fsync` serves every writer that
//! appended meanwhile. A write is visible to reads once applied and
//! acknowledged once durable. Reads take a snapshot
//! under it (file handles and copies of memtable points) and read files
//! without it. Flushes and compactions do their I/O without it and take it
//! only to publish their results; `flush_lock` and `compaction_lock` keep
//! each to one at a time.
//!
//! Streamed groups ([`OpenGroup`], a big `COPY`): parts are logged as they
//! come (not applied). While they take at most the configured
//! `group_resident_bytes_max` they are also kept in memory, merged into one
//! batch per device; later parts are not kept. The commit logs the final
//! part and an apply record, then applies the merged parts under one hold
//! of the state lock (readers see all of them or none; the memtables take
//! the merged vectors as they are where they can), then reads the other
//! parts back from the log and applies them a part at a time, releasing
//! the lock between parts so flushes (and readers) go on and memory stays
//! within the memtable budget, and the final one from memory. While it
//! applies, the commit holds `write_gate` exclusively: no other write or
//! delete is logged in between, so recovery, which applies the whole group
//! at the position of its apply records, reproduces exactly the order the
//! live run applied things in (no seal happens among the merged parts, so
//! applying them merged is applying them in order). Readers may see a
//! group larger than the in-memory limit partly applied while its commit
//! runs; an aborted group was never applied, so nothing of it is ever seen.
//! The replay of a commit a crash cut short applies the rest of the group
//! within the memtable budget too: it flushes as it goes, before the engine
//! opens (`Inner::replay_group`).
//!
//! Group pins: the WAL segments from a group's first part on stay on disk
//! while the group is open, and after its commit until every generation its
//! data went into is flushed (`GroupPin`); the checkpoint itself advances
//! as usual, only segment removal waits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tsfile::{AlignedBatch, SeriesBatch, TimeRange, Value};

use crate::batch::{Aggregates, ReadCounters, SeriesKey, WriteBatch};
use crate::commit::{CommitTicket, GroupCommit};
use crate::compaction::{self, CompactionLog, Input, MergeEnv, Task};
use crate::config::{EngineConfig, FsyncPolicy, MemoryBudget};
use crate::error::{Error, Result};
use crate::files::{new_meta_cache, FileSet, MetaCache, TsFileResource};
use crate::flush;
use crate::fs::{DirLock, FileSystem};
use crate::memtable::{Incoming, MemTable, Rows};
use crate::mods::{deleted_ranges, Deletion};
use crate::read::{self, Counters, FileSource, MemSource, SeriesView};
use crate::recovery::{self, recover_files, WAL_DIR};
use crate::run::remove_ranges;
use crate::scan::{DeviceScan, ScanRequest};
use crate::statistics::{self, Bound, DeviceStatistics};
use crate::wal::{self, Frame, GroupApply, GroupRecord, RecordLocation, Wal, WalRecord};

/// Ranks of memtable data sit above every file version.
const MEM_RANK_BASE: u64 = 1 << 62;

/// A wake-up flag for a background thread.
#[derive(Default)]
struct Signal {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    fn notify(&self) {
        *self.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Wait for a notification or the timeout; clears the flag.
    fn wait(&self, timeout: Duration) {
        let flag = self.flag.lock().unwrap_or_else(|e| e.into_inner());
        let (mut flag, _) = self
            .cv
            .wait_timeout_while(flag, timeout, |f| !*f)
            .unwrap_or_else(|e| e.into_inner());
        *flag = false;
    }
}

/// The working memtables of the current generation.
#[derive(Default)]
struct Active {
    seq: MemTable,
    unseq: MemTable,
}

impl Active {

    fn bytes(&self) -> usize {
        self.seq.bytes + self.unseq.bytes
    }

    fn is_empty(&self) -> bool {
        self.seq.is_empty() && self.unseq.is_empty() && self.bytes() == 0
    }
}

/// Memtables sealed and waiting for (or in) flush.
struct Sealed {
    /// Last WAL generation whose records are in these memtables: once
    /// flushed, the WAL up to it can go.
    hi: u64,
    /// Order of sealing: a later memtable holds newer data.
    order: u64,
    seq: MemTable,
    unseq: MemTable,
    bytes: usize,
    /// Deletions issued after sealing; applied on read and written to the
    /// `.mods` of the flushed files.
    deletes: Mutex<Vec<Arc<Deletion>>>,
    /// Files already written by a flush attempt that failed later on.
    written: Mutex<Option<Vec<Arc<TsFileResource>>>>,
}

/// What the last-value cache knows of a series.
#[derive(Debug, Clone)]
enum LastEntry {
    Known(Option<(i64, Value)>),
    /// Being computed by the reader holding this token; a write or delete
    /// in the meantime removes it so the stale answer is not cached.
    Pending(u64),
}

/// Why WAL segments from generation `first` on must stay (a streamed group).
#[derive(Debug, Clone, Copy)]
struct GroupPin {
    /// Generation of the group's first part.
    first: u64,
    /// `None` while the group is open or being applied; then the last
    /// generation its data went into: the pin goes once that is flushed.
    release: Option<u64>,
}

struct State {
    wal: Option<Wal>,
    /// Streamed groups whose parts the WAL must keep, by group id.
    pins: HashMap<u64, GroupPin>,
    /// The streamed group being applied, at the next batch to apply: a seal
    /// logs it again at the head of the new generation.
    applying: Option<GroupApply>,
    /// The generation the working memtables (and the open WAL segment) belong to.
    generation: u64,
    /// Every generation up to this one is flushed.
    checkpoint: u64,
    active: Active,
    sealed: VecDeque<Arc<Sealed>>,
    next_order: u64,
    files: FileSet,
    /// Per device, the latest time sealed into a sequence memtable: newer
    /// points are sequence data, older ones unsequence.
    stable: HashMap<String, i64>,
    /// The last-value cache (bounded; every change happens under the state lock).
    last: moka::sync::Cache<SeriesKey, LastEntry>,
    /// Every device the last-value cache ever took an entry of (at most
    /// the database's devices): a write to another device has nothing
    /// cached to keep current.
    last_devices: HashSet<String>,
    last_token: u64,
    ttl_ms: Option<i64>,
    closed: bool,
}

pub(crate) struct Inner {
    dir: PathBuf,
    wal_dir: PathBuf,
    config: EngineConfig,
    /// Time partition width in timestamp units, fixed when the database
    /// was created (files are placed by it).
    partition_width: i64,
    fs: Arc<dyn FileSystem>,
    budget: Arc<MemoryBudget>,
    state: Mutex<State>,
    flush_lock: Mutex<()>,
    compaction_lock: Mutex<()>,
    flush_signal: Signal,
    compaction_signal: Signal,
    sync_signal: Signal,
    commit: GroupCommit,
    /// Shared by every write and delete while it logs and applies; held
    /// exclusively by a streamed group's commit while it applies.
    write_gate: RwLock<()>,
    /// Id of the next streamed group (above every id in the WAL at start).
    next_group_id: AtomicU64,
    versions: Arc<AtomicU64>,
    compaction_ids: AtomicU64,
    /// Set when an abandoned compaction's `done` mark could not be taken
    /// back: no compaction runs until the next start resolves its log.
    compaction_halted: AtomicBool,
    pub(crate) cache: MetaCache,
    pub(crate) counters: Counters,
    shutdown: AtomicBool,
    dir_lock: Mutex<Option<Box<dyn DirLock>>>,
}

/// The storage engine of one database. Cheap to share (`Arc`); dropping the
/// last reference stops its threads without flushing (the WAL has the data).
pub struct StorageEngine {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for StorageEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageEngine").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

/// A file of the engine, for inspection and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: PathBuf,
    pub seq: bool,
    pub partition: i64,
    pub version: u64,
    pub size_bytes: u64,
    /// Tombstones recorded against the file.
    pub tombstones: usize,
    /// Per device, the earliest and latest time in the file.
    pub devices: Vec<(String, i64, i64)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which rows of a batch are sequence data (newer than the stable time).
enum Route {
    AllSeq,
    AllUnseq,
    Split { seq: Vec<bool>, unseq: Vec<bool> },
}

fn route(batch: &WriteBatch, stable: Option<i64>) -> Route {
    let Some(stable) = stable else { return Route::AllSeq };
    // Row flags only for a batch that straddles the stable time.
    if batch.times.iter().all(|t| *t > stable) {
        return Route::AllSeq;
    }
    if batch.times.iter().all(|t| *t <= stable) {
        return Route::AllUnseq;
    }
    let seq: Vec<bool> = batch.times.iter().map(|t| *t > stable).collect();
    let unseq = seq.iter().map(|s| !s).collect();
    Route::Split { seq, unseq }
}

fn touches(file: &TsFileResource, d: &Deletion) -> bool {
    d.series
        .iter()
        .any(|k| file.span(&k.device).is_some_and(|s| s.overlaps(d.range.start, d.range.end)))
}

/// Per device, the earliest and latest time of a file's points (from its
/// index statistics; devices without points are left out).
fn file_spans(reader: &tsfile::TsFileReader<impl tsfile::reader::ReadAt>) -> Result<HashMap<String, (i64, i64)>> {
    let mut spans: HashMap<String, (i64, i64)> = HashMap::new();
    for meta in reader.all_device_metadata()? {
        for s in meta.value_series().filter(|s| s.statistics.count > 0) {
            let (a, b) = (s.statistics.start_time, s.statistics.end_time);
            let e = spans.entry(meta.device.to_string()).or_insert((a, b));
            *e = (e.0.min(a), e.1.max(b));
        }
    }
    Ok(spans)
}

/// Copy `src` (outside the database) to `dst` through the engine's file
/// system and sync it.
fn copy_into(fs: &dyn FileSystem, src: &Path, dst: &Path) -> Result<()> {
    use std::io::Read;
    /// Bytes copied per write.
    const COPY_CHUNK_BYTES: usize = 4 << 20;
    let mut input = std::fs::File::open(src).map_err(|e| Error::io(src, e))?;
    let out = fs.create(dst).map_err(|e| Error::io(dst, e))?;
    let mut buf = vec![0u8; COPY_CHUNK_BYTES];
    let mut at = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(|e| Error::io(src, e))?;
        if n == 0 {
            break;
        }
        out.write_at(at, &buf[..n]).map_err(|e| Error::io(dst, e))?;
        at += n as u64;
    }
    out.sync().map_err(|e| Error::io(dst, e))
}

impl Inner {
    /// The one time partition all of a file's points fall in, if they do
    /// and none is past the TTL.
    fn adoptable_partition(&self, spans: &HashMap<String, (i64, i64)>) -> Option<i64> {
        let width = self.partition_width;
        let bound = self.config.ttl_bound(lock(&self.state).ttl_ms);
        let mut partition = None;
        for (start, end) in spans.values() {
            let (p0, p1) = (start.div_euclid(width), end.div_euclid(width));
            if p0 != p1 || *start < bound || partition.is_some_and(|p| p != p0) {
                return None;
            }
            partition = Some(p0);
        }
        partition
    }

    /// Whether every device's points in `spans` are later than anything
    /// stored for it: stable time, memtables, files.
    fn later_than_stored(&self, st: &State, spans: &HashMap<String, (i64, i64)>) -> bool {
        spans.iter().all(|(device, (start, _))| {
            let stable = st.stable.get(device).is_none_or(|s| s < start);
            let mems = std::iter::once((&st.active.seq, &st.active.unseq))
                .chain(st.sealed.iter().map(|s| (&s.seq, &s.unseq)))
                .all(|(seq, unseq)| [seq, unseq].iter().all(|m| m.devices.get(device).and_then(|d| d.max_time()).is_none_or(|t| t < *start)));
            let files = st.files.all().all(|f| f.span(device).is_none_or(|s| s.end < *start));
            stable && mems && files
        })
    }
}

impl StorageEngine {
    /// Open (or create) the database in `dir`: recover files, replay the WAL,
    /// start background threads.
    pub fn open(dir: impl AsRef<Path>, config: EngineConfig) -> Result<Arc<StorageEngine>> {
        let dir = dir.as_ref().to_path_buf();
        let fs = Arc::clone(&config.fs);
        fs.create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock_path = dir.join("LOCK");
        let dir_lock = fs.lock(&lock_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => Error::Locked { dir: dir.clone() },
            _ => Error::io(&lock_path, e),
        })?;
        let partition_width = recovery::partition_width(&fs, &dir, config.partition_width())?;
        let cache = new_meta_cache();
        let recovered = recover_files(&fs, &dir, &cache, config.page_max_points)?;
        let budget = config
            .memory_budget
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryBudget::new(config.memory_soft_limit_bytes, config.memory_hard_limit_bytes)));
        let wal_dir = dir.join(WAL_DIR);
        let first_gen = recovered.segments.first().map_or(recovered.checkpoint + 1, |s| s.generation);
        let state = State {
            wal: None,
            pins: HashMap::new(),
            applying: None,
            generation: first_gen,
            checkpoint: recovered.checkpoint,
            active: Active::default(),
            sealed: VecDeque::new(),
            next_order: 1,
            files: recovered.files,
            stable: recovered.stable,
            last: moka::sync::Cache::new(config.last_cache_entries_max),
            last_devices: HashSet::new(),
            last_token: 0,
            ttl_ms: config.ttl_ms,
            closed: false,
        };
        let inner = Arc::new(Inner {
            dir,
            wal_dir,
            fs,
            budget,
            state: Mutex::new(state),
            flush_lock: Mutex::new(()),
            compaction_lock: Mutex::new(()),
            flush_signal: Signal::default(),
            compaction_signal: Signal::default(),
            sync_signal: Signal::default(),
            commit: GroupCommit::default(),
            write_gate: RwLock::new(()),
            next_group_id: AtomicU64::new(1),
            versions: Arc::new(AtomicU64::new(recovered.next_version)),
            compaction_ids: AtomicU64::new(1),
            compaction_halted: AtomicBool::new(false),
            cache,
            counters: Counters::default(),
            shutdown: AtomicBool::new(false),
            dir_lock: Mutex::new(Some(dir_lock)),
            partition_width,
            config,
        });
        let engine = StorageEngine { inner: Arc::clone(&inner), threads: Mutex::new(Vec::new()) };
        inner.replay(&recovered.segments, &recovered.retained)?;
        if inner.config.background {
            engine.start_threads();
        } else {
            // Deterministic mode: flush what the replay sealed right away.
            inner.flush_all_sealed_logged();
        }
        Ok(Arc::new(engine))
    }

    fn start_threads(&self) {
        let mut threads = lock(&self.threads);
        let spawn = |name: &str, body: fn(&Inner)| {
            let inner = Arc::clone(&self.inner);
            std::thread::Builder::new().name(name.to_string()).spawn(move || body(&inner))
        };
        for (name, body) in [
            ("arbor-flush", Inner::flush_loop as fn(&Inner)),
            ("arbor-compaction", Inner::compaction_loop as fn(&Inner)),
        ] {
            match spawn(name, body) {
                Ok(h) => threads.push(h),
                Err(e) => tracing::error!(error = %e, "cannot start {name} thread"),
            }
        }
        if matches!(self.inner.config.wal_fsync, FsyncPolicy::IntervalMs(_)) {
            match spawn("arbor-wal-sync", Inner::sync_loop) {
                Ok(h) => threads.push(h),
                Err(e) => tracing::error!(error = %e, "cannot start the WAL sync thread"),
            }
        }
    }

    fn stop_threads(&self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        self.inner.flush_signal.notify();
        self.inner.compaction_signal.notify();
        self.inner.sync_signal.notify();
        for h in lock(&self.threads).drain(..) {
            let _ = h.join();
        }
    }

    /// Write a batch: logged, then applied. Returns once the batch is in the
    /// WAL (synced per the fsync policy) and visible to reads.
    pub fn write(&self, batch: &WriteBatch) -> Result<()> {
        let ticket = self.write_deferred(batch)?;
        self.wait_durable(ticket)
    }

    /// Write a batch without waiting for the WAL sync: it is logged and
    /// visible, and durable once [`StorageEngine::wait_durable`] returns for
    /// the ticket. Lets several statements share one sync.
    pub fn write_deferred(&self, batch: &WriteBatch) -> Result<CommitTicket> {
        batch.validate()?;
        if batch.times.is_empty() || batch.columns.iter().all(|c| c.values.is_empty()) {
            return Ok(CommitTicket::default());
        }
        self.apply_logged(&[batch], Frame::write(batch))
    }

    /// Write several batches atomically: one WAL record holds them all, so
    /// after a crash either all of them are there or none; an error leaves
    /// none applied. Returns once they are durable and visible.
    pub fn write_group(&self, batches: &[WriteBatch]) -> Result<()> {
        let ticket = self.write_group_deferred(batches)?;
        self.wait_durable(ticket)
    }

    /// [`StorageEngine::write_group`] without waiting for the WAL sync: the
    /// group is logged (one record) and visible, durable once
    /// [`StorageEngine::wait_durable`] returns for the ticket.
    pub fn write_group_deferred(&self, batches: &[WriteBatch]) -> Result<CommitTicket> {
        for b in batches {
            b.validate()?;
        }
        let batches: Vec<&WriteBatch> = batches.iter().filter(|b| !b.times.is_empty() && b.columns.iter().any(|c| !c.values.is_empty())).collect();
        let frame = match batches.as_slice() {
            [] => return Ok(CommitTicket::default()),
            [one] => Frame::write(one),
            _ => Frame::group(&batches),
        };
        self.apply_logged(&batches, frame)
    }

    /// Admit, then under the lock: check every batch, append the one record,
    /// apply every batch.
    fn apply_logged(&self, batches: &[&WriteBatch], frame: Frame) -> Result<CommitTicket> {
        self.inner.commit.check()?;
        frame.check_size()?;
        self.inner.admit(batches.iter().map(|b| b.estimated_bytes()).sum())?;
        let _gate = self.inner.write_gate.read().unwrap_or_else(|e| e.into_inner());
        let (ticket, sealed) = {
            let mut st = self.inner.live_state()?;
            let ticket = self.inner.apply_group(&mut st, batches, &frame)?;
            if !self.inner.config.background {
                if let Some(Err(e)) = st.wal.as_mut().map(Wal::sync_if_due) {
                    // The batch is applied and with the OS; only its
                    // durability against power loss is in doubt.
                    tracing::error!(error = %e, "WAL sync failed");
                }
            }
            let sealed = st.active.bytes() >= self.inner.config.memtable_bytes_max && self.inner.seal_logged(&mut st);
            (ticket, sealed)
        };
        if sealed {
            self.inner.after_seal();
        }
        Ok(ticket)
    }

    /// Wait until the write of `ticket` is durable (under
    /// `FsyncPolicy::EveryBatch`; the interval policy syncs in the background).
    pub fn wait_durable(&self, ticket: CommitTicket) -> Result<()> {
        self.inner.wait_durable(ticket)
    }

    /// Start a streamed group: batches logged part by part as they are
    /// produced, applied atomically by [`OpenGroup::commit`]; dropping the
    /// group uncommitted aborts it (nothing applied, nothing replayed).
    pub fn begin_group(&self) -> OpenGroup {
        OpenGroup {
            inner: Arc::clone(&self.inner),
            id: self.inner.next_group_id.fetch_add(1, Ordering::SeqCst),
            parts: Vec::new(),
            merged: Vec::new(),
            merged_index: HashMap::new(),
            merged_parts: 0,
            merged_bytes: 0,
            tail: None,
            types: HashMap::new(),
            committed: false,
        }
    }

    /// Adopt a complete TsFile written elsewhere (Apache TsFile, IoTDB) as a
    /// sequence file of this database, without rewriting its points: the
    /// file is copied into a partition directory under a temporary name,
    /// synced, and renamed to a file name recovery keeps, then indexed.
    ///
    /// Only a file that cannot disturb the order of what is stored is
    /// adopted: every device's points in one time partition, within the TTL,
    /// and later than everything the database holds for that device (its
    /// stable time, its memtable points, every file). Otherwise nothing is
    /// done and `Ok(false)` comes back: the caller rewrites the points
    /// through the WAL. A file the engine cannot index is an error and
    /// leaves nothing behind. Acknowledged adoption survives `kill -9`.
    pub fn adopt_file(&self, src: &Path) -> Result<bool> {
        let inner = &self.inner;
        let reader = tsfile::TsFileReader::open(src)?;
        let spans = file_spans(&reader)?;
        drop(reader);
        let Some(partition) = inner.adoptable_partition(&spans) else { return Ok(false) };
        {
            let st = inner.live_state()?;
            if !inner.later_than_stored(&st, &spans) {
                return Ok(false);
            }
        }
        let dir = crate::files::partition_dir(&inner.dir, true, partition);
        inner.fs.create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let version = inner.versions.fetch_add(1, Ordering::SeqCst);
        let name = crate::files::tsfile_name(version, crate::files::Origin::Compaction);
        let path = dir.join(&name);
        let tmp = dir.join(format!("{name}.tmp"));
        let copied = copy_into(inner.fs.as_ref(), src, &tmp);
        if let Err(e) = copied {
            let _ = inner.fs.remove_file(&tmp);
            return Err(e);
        }
        let mut st = inner.live_state()?;
        // Writes may have come in while the file was copied.
        if !inner.later_than_stored(&st, &spans) {
            drop(st);
            let _ = inner.fs.remove_file(&tmp);
            return Ok(false);
        }
        let published = (|| -> Result<Arc<TsFileResource>> {
            inner.fs.rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
            inner.fs.sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            Ok(Arc::new(TsFileResource::open(&inner.fs, &path, true, partition, &inner.cache)?))
        })();
        let file = match published {
            Ok(f) => f,
            Err(e) => {
                let _ = inner.fs.remove_file(&tmp);
                let _ = inner.fs.remove_file(&path);
                let _ = inner.fs.sync_dir(&dir);
                return Err(e);
            }
        };
        for (device, (_, end)) in &spans {
            let stable = st.stable.entry(device.clone()).or_insert(*end);
            *stable = (*stable).max(*end);
        }
        // The last-value cache learns the file's points on the next read.
        st.last.invalidate_all();
        st.files.add(file);
        drop(st);
        inner.compaction_signal.notify();
        Ok(true)
    }

    /// Delete the points of `series` in `range` (inclusive). Points written
    /// later are visible again.
    pub fn delete(&self, series: &[SeriesKey], range: TimeRange) -> Result<()> {
        if series.is_empty() || range.start > range.end {
            return Ok(());
        }
        self.inner.commit.check()?;
        let frame = Frame::delete(series, range);
        let _gate = self.inner.write_gate.read().unwrap_or_else(|e| e.into_inner());
        let ticket = {
            let mut st = self.inner.live_state()?;
            let ticket = match st.wal.as_mut() {
                Some(w) => CommitTicket(w.append(&frame)?),
                None => return Err(Error::Closed),
            };
            self.inner.apply_delete(&mut st, series, range)?;
            ticket
        };
        self.wait_durable(ticket)
    }

    /// The points of one series in `range`, in time order.
    pub fn scan(&self, series: &SeriesKey, range: TimeRange) -> Result<Vec<SeriesBatch>> {
        let view = self.inner.view(series, range)?;
        read::scan(&view, &self.inner.cache, &self.inner.counters)
    }

    /// Rows of a device's measurements in `range`, aligned by time: one row
    /// per time at which any of them has a value; `validity` marks NULLs.
    /// Works for aligned and non-aligned devices alike.
    pub fn scan_aligned(&self, device: &str, measurements: &[&str], range: TimeRange) -> Result<Vec<AlignedBatch>> {
        let views = measurements
            .iter()
            .map(|m| self.inner.view(&SeriesKey::new(device, *m), range))
            .collect::<Result<Vec<_>>>()?;
        read::scan_aligned(&views, &self.inner.cache, &self.inner.counters)
    }

    /// Rows of a device's measurements, streamed one time slice at a time
    /// (see [`crate::scan`]): bounded memory whatever the range.
    pub fn scan_device(&self, request: ScanRequest) -> Result<DeviceScan> {
        DeviceScan::new(Arc::clone(&self.inner), request)
    }

    /// count/sum/min/max/first/last/min_time/max_time of a series in
    /// `range`, from statistics wherever they are exact.
    pub fn aggregate(&self, series: &SeriesKey, range: TimeRange) -> Result<Aggregates> {
        let view = self.inner.view(series, range)?;
        read::aggregate(&view, &self.inner.cache, &self.inner.counters)
    }

    /// What file metadata alone says of `device`'s `measurements` in
    /// `ranges` (disjoint, inclusive, ascending): exact counts and min/max
    /// where no overlap, tombstone or memtable point makes them inexact.
    /// Reads no data page.
    pub fn statistics(&self, device: &str, measurements: &[String], ranges: &[TimeRange]) -> Result<DeviceStatistics> {
        let (ranges, sources) = {
            let st = self.inner.live_state()?;
            let bound = self.inner.config.ttl_bound(st.ttl_ms);
            let ranges: Vec<TimeRange> =
                ranges.iter().map(|r| TimeRange::new(r.start.max(bound), r.end)).filter(|r| r.start <= r.end).collect();
            let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
                let columns = measurements.iter().map(|_| statistics::ColumnStatistics::none()).collect();
                return Ok(DeviceStatistics { rows: Bound::Exact(0), columns });
            };
            let (start, end) = (first.start, last.end);
            let width = self.inner.partition_width;
            let mut files = Vec::new();
            for seq in [true, false] {
                for f in st.files.in_partitions(seq, start.div_euclid(width), end.div_euclid(width)) {
                    if f.span(device).is_some_and(|s| s.overlaps(start, end)) {
                        files.push((Arc::clone(f), f.mods.entries()));
                    }
                }
            }
            // A span not known without a scan may lie anywhere.
            let in_ranges = |span: Option<(i64, i64)>| span.is_none_or(|(s, e)| ranges.iter().any(|r| r.start <= e && s <= r.end));
            let mem_points = measurements
                .iter()
                .map(|m| {
                    let memtables = st.sealed.iter().flat_map(|s| [&s.seq, &s.unseq]).chain([&st.active.seq, &st.active.unseq]);
                    memtables.filter_map(|mem| mem.series_extent(device, m)).filter(|(_, span)| in_ranges(*span)).map(|(len, _)| len as u64).sum()
                })
                .collect();
            (ranges, statistics::Sources { files, mem_points })
        };
        statistics::device_statistics(device, measurements, &ranges, &sources, &self.inner.cache)
    }

    /// Aggregates of one series over each of `windows` (inclusive ranges
    /// sorted by start and end), reading every chunk and page at most once.
    pub fn aggregate_windows(&self, series: &SeriesKey, windows: &[TimeRange]) -> Result<Vec<Aggregates>> {
        let (Some(first), Some(end)) = (windows.first(), windows.iter().map(|w| w.end).max()) else {
            return Ok(Vec::new());
        };
        let view = self.inner.view(series, TimeRange::new(first.start, end))?;
        read::aggregate_windows(&view, windows, &self.inner.cache, &self.inner.counters)
    }

    /// The latest point of a series (from the last-value cache when it knows).
    pub fn last(&self, series: &SeriesKey) -> Result<Option<(i64, Value)>> {
        let token = {
            let mut st = self.inner.live_state()?;
            let bound = self.inner.config.ttl_bound(st.ttl_ms);
            if let Some(LastEntry::Known(v)) = st.last.get(series) {
                return Ok(v.filter(|(t, _)| *t >= bound));
            }
            st.last_token += 1;
            let token = st.last_token;
            if !st.last_devices.contains(series.device.as_str()) {
                st.last_devices.insert(series.device.clone());
            }
            st.last.insert(series.clone(), LastEntry::Pending(token));
            token
        };
        let last = self.aggregate(series, TimeRange::ALL)?.last;
        let st = lock(&self.inner.state);
        if matches!(st.last.get(series), Some(LastEntry::Pending(t)) if t == token) {
            st.last.insert(series.clone(), LastEntry::Known(last.clone()));
        }
        Ok(last)
    }

    /// Seal the working memtables and flush everything sealed; returns once
    /// the data is in TsFiles and the WAL behind it is gone.
    pub fn flush(&self) -> Result<()> {
        {
            let mut st = self.inner.live_state()?;
            self.inner.seal(&mut st)?;
        }
        while self.inner.flush_one()? {}
        Ok(())
    }

    /// Compact now: every partition that holds unsequence files, tombstones,
    /// expired points or more than one file is merged into sequence files.
    pub fn compact(&self) -> Result<()> {
        drop(self.inner.live_state()?);
        let _guard = lock(&self.inner.compaction_lock);
        self.inner.drop_expired_files()?;
        let tasks = {
            let st = self.inner.live_state()?;
            let bound = self.inner.config.ttl_bound(st.ttl_ms);
            compaction::select(&st.files, &self.inner.config, true, bound)
        };
        for task in tasks {
            self.inner.run_compaction(task)?;
        }
        Ok(())
    }

    /// Change the database's TTL (`None`: keep data forever).
    pub fn set_ttl(&self, ttl_ms: Option<i64>) -> Result<()> {
        let mut st = self.inner.live_state()?;
        st.ttl_ms = ttl_ms;
        st.last.invalidate_all();
        Ok(())
    }

    /// Flush, stop background work and release the directory. Further calls
    /// return [`Error::Closed`].
    pub fn close(&self) -> Result<()> {
        if lock(&self.inner.state).closed {
            return Ok(());
        }
        self.stop_threads();
        let flushed = self.flush();
        let mut st = lock(&self.inner.state);
        let synced = st.wal.as_mut().map_or(Ok(()), Wal::sync);
        st.wal = None;
        st.closed = true;
        drop(st);
        *lock(&self.inner.dir_lock) = None;
        flushed.and(synced)
    }

    /// Delete the database: stop, then remove its directory (DROP DATABASE).
    pub fn drop_all(&self) -> Result<()> {
        self.stop_threads();
        let mut st = lock(&self.inner.state);
        st.closed = true;
        st.wal = None;
        st.files = FileSet::default();
        let released: usize = st.sealed.drain(..).map(|s| s.bytes).sum::<usize>() + st.active.bytes();
        st.active = Active::default();
        drop(st);
        self.inner.budget.release(released);
        *lock(&self.inner.dir_lock) = None;
        self.inner.cache.invalidate_all();
        self.inner.fs.remove_dir_all(&self.inner.dir).map_err(|e| Error::io(&self.inner.dir, e))
    }

    /// How reads were answered so far (statistics vs decoding).
    pub fn read_counters(&self) -> ReadCounters {
        self.inner.counters.snapshot()
    }

    /// The engine's TsFiles.
    pub fn files(&self) -> Vec<FileInfo> {
        let st = lock(&self.inner.state);
        st.files
            .all()
            .map(|f| {
                let mut devices: Vec<(String, i64, i64)> = f.devices.iter().map(|(d, s)| (d.clone(), s.start, s.end)).collect();
                devices.sort();
                FileInfo {
                    path: f.path.clone(),
                    seq: f.seq,
                    partition: f.partition,
                    version: f.version,
                    size_bytes: f.size,
                    tombstones: f.mods.len(),
                    devices,
                }
            })
            .collect()
    }

    /// Bytes held by this engine's memtables (working and sealed).
    pub fn memtable_bytes(&self) -> usize {
        let st = lock(&self.inner.state);
        st.active.bytes() + st.sealed.iter().map(|s| s.bytes).sum::<usize>()
    }

    /// The memory budget this engine charges.
    pub fn memory_budget(&self) -> &Arc<MemoryBudget> {
        &self.inner.budget
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

impl Drop for StorageEngine {
    fn drop(&mut self) {
        self.stop_threads();
        let mut st = lock(&self.inner.state);
        if let Some(w) = st.wal.as_mut() {
            if let Err(e) = w.sync() {
                tracing::warn!(error = %e, "WAL sync on drop failed");
            }
        }
        let released: usize = st.sealed.iter().map(|s| s.bytes).sum::<usize>() + st.active.bytes();
        st.sealed.clear();
        st.active = Active::default();
        st.closed = true;
        drop(st);
        self.inner.budget.release(released);
    }
}

impl Inner {
    fn live_state(&self) -> Result<MutexGuard<'_, State>> {
        let st = lock(&self.state);
        if st.closed {
            return Err(Error::Closed);
        }
        Ok(st)
    }

    /// Apply memory back-pressure before a write of about `bytes`.
    fn admit(&self, bytes: usize) -> Result<()> {
        if bytes > self.budget.hard_limit() {
            return self.budget.check_hard(bytes);
        }
        if self.budget.used() + bytes <= self.budget.soft_limit() {
            return Ok(());
        }
        if self.config.background {
            // Past the hard limit a writer is turned away at once; between
            // the limits it waits for flushes.
            self.budget.check_hard(bytes)?;
        }
        // Make sure something is on its way to disk: our own working
        // memtables, if nothing of ours is being flushed already.
        let sealed = {
            let mut st = self.live_state()?;
            st.sealed.is_empty() && !st.active.is_empty() && self.seal_logged(&mut st)
        };
        if self.config.background {
            if sealed {
                self.flush_signal.notify();
            }
            if !self.budget.wait_below_soft(Duration::from_millis(self.config.write_stall_timeout_ms)) {
                let used = self.budget.used();
                return Err(Error::MemoryBudgetExceeded { used, requested: bytes, limit: self.budget.soft_limit() });
            }
        } else {
            self.flush_all_sealed_logged();
        }
        self.budget.check_hard(bytes)
    }

    /// Log and apply batches as one record: every check first, so an error
    /// leaves nothing logged or applied.
    fn apply_group(&self, st: &mut State, batches: &[&WriteBatch], frame: &Frame) -> Result<CommitTicket> {
        let bound = self.config.ttl_bound(st.ttl_ms);
        for batch in batches {
            if let Some(&t) = batch.times.iter().find(|t| **t < bound) {
                return Err(Error::OutsideTtl { device: batch.device.clone(), time: t, bound });
            }
            // Both memtables, whatever the routing: a series has one type.
            st.active.seq.check(batch)?;
            st.active.unseq.check(batch)?;
        }
        // Batches of one device in the group must agree with each other too
        // (one type per series, one alignment): only a device that comes
        // back needs the look.
        let mut seen = HashSet::with_capacity(batches.len());
        if batches.len() > 1 && batches.iter().any(|b| !seen.insert(b.device.as_str())) {
            let mut types: HashMap<(&str, &str), tsfile::DataType> = HashMap::new();
            let mut aligned: HashMap<&str, bool> = HashMap::new();
            for batch in batches {
                if *aligned.entry(batch.device.as_str()).or_insert(batch.aligned) != batch.aligned {
                    return Err(Error::AlignmentMismatch { device: batch.device.clone(), aligned: !batch.aligned });
                }
                for c in &batch.columns {
                    let t = *types.entry((batch.device.as_str(), c.measurement.as_str())).or_insert(c.data_type);
                    if t != c.data_type {
                        return Err(Error::TypeMismatch { series: format!("{}.{}", batch.device, c.measurement), expected: t, got: c.data_type });
                    }
                }
            }
        }
        let lsn = match st.wal.as_mut() {
            Some(w) => w.append(frame)?,
            None => return Err(Error::Closed),
        };
        for batch in batches {
            // Checked above, under this same lock hold.
            self.apply_checked(st, Incoming::Shared(batch));
        }
        Ok(CommitTicket(lsn))
    }

    /// Route a batch into the memtables (it is logged already).
    fn apply_write(&self, st: &mut State, batch: Incoming<'_>) -> Result<()> {
        // Both memtables, whatever the routing: a series has one type.
        st.active.seq.check(batch.get())?;
        st.active.unseq.check(batch.get())?;
        self.apply_checked(st, batch);
        Ok(())
    }

    /// [`Inner::apply_write`] of a batch both working memtables were just
    /// checked against.
    /// An owned batch may be left emptied (its vectors taken by a memtable).
    fn apply_checked(&self, st: &mut State, batch: Incoming<'_>) {
        // Before the memtables may take the batch's vectors.
        self.update_last(st, batch.get());
        let added = match route(batch.get(), st.stable.get(&batch.get().device).copied()) {
            Route::AllSeq => st.active.seq.insert(batch, Rows::All),
            Route::AllUnseq => st.active.unseq.insert(batch, Rows::All),
            Route::Split { seq, unseq } => {
                let b = batch.get();
                st.active.seq.insert(Incoming::Shared(b), Rows::Selected(&seq)) + st.active.unseq.insert(Incoming::Shared(b), Rows::Selected(&unseq))
            }
        };
        self.budget.add(added);
    }

    /// Wait until the write of `ticket` is durable (under
    /// `FsyncPolicy::EveryBatch`; the interval policy syncs in the background).
    fn wait_durable(&self, ticket: CommitTicket) -> Result<()> {
        if ticket == CommitTicket::default() || self.config.wal_fsync != FsyncPolicy::EveryBatch {
            return Ok(());
        }
        self.commit.wait(ticket, || self.sync_wal())
    }

    /// Back-pressure for a committed group's next part: like [`Inner::admit`]
    /// but never refusing (the group is committed in the log; refusing now
    /// would leave it half applied), waiting at most the stall timeout.
    fn admit_committed(&self, bytes: usize) {
        if self.budget.used() + bytes <= self.budget.soft_limit() {
            return;
        }
        let sealed = {
            let mut st = lock(&self.state);
            st.sealed.is_empty() && !st.active.is_empty() && !st.closed && self.seal_logged(&mut st)
        };
        if self.config.background {
            if sealed {
                self.flush_signal.notify();
            }
            if !self.budget.wait_below_soft(Duration::from_millis(self.config.write_stall_timeout_ms)) {
                tracing::warn!(used = self.budget.used(), "applying a committed group past the memtable budget");
            }
        } else {
            self.flush_all_sealed_logged();
        }
    }

    /// Apply a logged batch; a batch the working memtables cannot take
    /// (another type or alignment for a series, after a drop and re-create)
    /// goes into fresh ones, as the replay does.
    fn apply_write_or_seal(&self, st: &mut State, mut batch: Incoming<'_>) -> Result<()> {
        // A refused batch is untouched: the checks come before any insert.
        match self.apply_write(st, batch.reborrow()) {
            Err(Error::TypeMismatch { .. } | Error::AlignmentMismatch { .. }) => {
                self.seal(st)?;
                self.apply_write(st, batch)
            }
            other => other,
        }
    }

    /// Sync the WAL up to what is appended now; returns that LSN.
    fn sync_wal(&self) -> Result<u64> {
        let (lsn, path, files) = {
            let mut st = lock(&self.state);
            match st.wal.as_mut() {
                Some(w) => (w.appended(), w.path().to_path_buf(), w.take_sync_targets()),
                None => return Err(Error::Closed),
            }
        };
        for f in files {
            f.sync().map_err(|e| Error::io(&path, e))?;
        }
        Ok(lsn)
    }

    /// Keep cached last values right after a write.
    fn update_last(&self, st: &mut State, batch: &WriteBatch) {
        // Most devices are never asked for their last values: skip the
        // cache (a key and a lookup per column) for those.
        if !st.last_devices.contains(batch.device.as_str()) {
            return;
        }
        for c in &batch.columns {
            let key = SeriesKey::new(batch.device.as_str(), c.measurement.as_str());
            let Some(entry) = st.last.get(&key) else { continue };
            // The newest present row of this column (later rows win ties).
            let mut best: Option<(i64, usize)> = None;
            let mut v = 0;
            for (i, t) in batch.times.iter().enumerate() {
                if c.is_valid(i) {
                    if best.is_none_or(|(bt, _)| *t >= bt) {
                        best = Some((*t, v));
                    }
                    v += 1;
                }
            }
            let Some((t, vi)) = best else { continue };
            match entry {
                LastEntry::Known(cur) => {
                    // A late point older than the cached one never replaces it.
                    if cur.as_ref().is_none_or(|(ct, _)| t >= *ct) {
                        st.last.insert(key, LastEntry::Known(Some((t, c.values.get(vi)))));
                    }
                }
                LastEntry::Pending(_) => {
                    // A reader is computing it from an older snapshot.
                    st.last.invalidate(&key);
                }
            }
        }
    }

    fn apply_delete(&self, st: &mut State, series: &[SeriesKey], range: TimeRange) -> Result<()> {
        let deletion = Arc::new(Deletion::new(series, range));
        for k in series {
            st.active.seq.delete(&k.device, &k.measurement, range);
            st.active.unseq.delete(&k.device, &k.measurement, range);
            match st.last.get(k) {
                Some(LastEntry::Known(Some((t, _)))) if !range.contains(t) => {}
                Some(LastEntry::Known(None)) => {}
                Some(_) => st.last.invalidate(k),
                None => {}
            }
        }
        for s in &st.sealed {
            lock(&s.deletes).push(Arc::clone(&deletion));
        }
        let mut result = Ok(());
        for f in st.files.all() {
            if touches(f, &deletion) {
                if let Err(e) = f.mods.append(Arc::clone(&deletion)) {
                    tracing::error!(file = %f.path.display(), error = %e, "cannot record a tombstone");
                    result = Err(e);
                }
            }
        }
        result
    }

    /// Seal the working memtables into the flush queue and start a new WAL
    /// generation. Returns whether anything was sealed.
    fn seal(&self, st: &mut State) -> Result<bool> {
        if st.active.is_empty() {
            return Ok(false);
        }
        let next = st.generation + 1;
        if let Some(w) = st.wal.as_mut() {
            w.start_generation(next)?;
        }
        let hi = st.generation;
        self.seal_as(st, hi);
        st.generation = next;
        if let (Some(a), Some(w)) = (st.applying, st.wal.as_mut()) {
            // The new generation says where the group being applied resumes.
            if let Err(e) = w.append(&Frame::apply(a)) {
                self.commit.poison(format!("cannot log where a streamed group resumes: {e}"));
                return Err(e);
            }
        }
        Ok(true)
    }

    fn seal_logged(&self, st: &mut State) -> bool {
        self.seal(st).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot seal memtables (new WAL segment failed); will retry");
            false
        })
    }

    /// Move the working memtables to the flush queue as covering WAL
    /// generations up to `hi`.
    fn seal_as(&self, st: &mut State, hi: u64) {
        let active = std::mem::take(&mut st.active);
        for (device, d) in &active.seq.devices {
            if let Some(max) = d.max_time() {
                let e = st.stable.entry(device.clone()).or_insert(max);
                *e = (*e).max(max);
            }
        }
        let order = st.next_order;
        st.next_order += 1;
        let bytes = active.bytes();
        st.sealed.push_back(Arc::new(Sealed {
            hi,
            order,
            seq: active.seq,
            unseq: active.unseq,
            bytes,
            deletes: Mutex::new(Vec::new()),
            written: Mutex::new(None),
        }));
    }

    fn after_seal(&self) {
        if self.config.background {
            self.flush_signal.notify();
        } else {
            self.flush_all_sealed_logged();
        }
    }

    fn flush_all_sealed_logged(&self) {
        loop {
            match self.flush_one() {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(error = %e, "flush failed; the data stays in memory and the WAL");
                    return;
                }
            }
        }
    }

    /// Flush the oldest sealed memtables. Returns false when none is waiting.
    fn flush_one(&self) -> Result<bool> {
        let _guard = lock(&self.flush_lock);
        let Some(sealed) = lock(&self.state).sealed.front().cloned() else {
            return Ok(false);
        };
        let fs = self.fs.as_ref();
        let done = lock(&sealed.written).clone();
        let resources = match done {
            Some(r) => r,
            None => {
                let r = self.write_sealed(&sealed)?;
                *lock(&sealed.written) = Some(r.clone());
                r
            }
        };
        // Tombstones issued since sealing go beside the new files first,
        // then the checkpoint makes the flush count: the WAL up to `hi` is
        // done. Until then the files are nobody's; on failure they go.
        let pending: Vec<Arc<Deletion>> = lock(&sealed.deletes).clone();
        let checkpoint = lock(&self.state).checkpoint.max(sealed.hi);
        let committed = (|| -> Result<()> {
            // An apply record a seal logged must be durable before the
            // generation before it counts as flushed (else a power loss
            // could keep the checkpoint and lose the record).
            if !lock(&self.state).pins.is_empty() {
                match self.sync_wal() {
                    Ok(_) | Err(Error::Closed) => {}
                    Err(e) => return Err(e),
                }
            }
            for d in &pending {
                for r in resources.iter().filter(|r| touches(r, d)) {
                    r.mods.append(Arc::clone(d))?;
                }
            }
            // A tombstone that failed to reach a file's `.mods` counts in
            // memory only; the WAL still has its delete. It must be on disk
            // before the checkpoint lets that WAL go.
            let dirty: Vec<Arc<TsFileResource>> = lock(&self.state).files.all().chain(resources.iter()).filter(|f| f.mods.is_dirty()).cloned().collect();
            for f in dirty {
                f.mods.repair()?;
            }
            wal::write_checkpoint(fs, &self.wal_dir, checkpoint)
        })();
        // On failure the files stay (the checkpoint may or may not have
        // reached the disk); the next attempt reuses them.
        committed?;
        let mut result = Ok(true);
        let floor;
        {
            let mut st = lock(&self.state);
            let late: Vec<Arc<Deletion>> = lock(&sealed.deletes)[pending.len()..].to_vec();
            for d in &late {
                for r in resources.iter().filter(|r| touches(r, d)) {
                    if let Err(e) = r.mods.append(Arc::clone(d)) {
                        result = Err(e);
                    }
                }
            }
            for r in resources {
                st.files.add(r);
            }
            if st.sealed.front().is_some_and(|s| Arc::ptr_eq(s, &sealed)) {
                st.sealed.pop_front();
            }
            st.checkpoint = checkpoint;
            st.pins.retain(|_, p| p.release.is_none_or(|r| r > checkpoint));
            floor = wal_floor(&st);
        }
        self.budget.release(sealed.bytes);
        if let Err(e) = wal::remove_flushed_segments(fs, &self.wal_dir, floor) {
            tracing::warn!(error = %e, "cannot remove flushed WAL segments; they are removed on the next start");
        }
        self.compaction_signal.notify();
        result
    }

    /// Write the sealed memtables as TsFiles and open them; on failure no
    /// file is left behind.
    fn write_sealed(&self, sealed: &Sealed) -> Result<Vec<Arc<TsFileResource>>> {
        let fs = self.fs.as_ref();
        let env = flush::FlushEnv {
            fs,
            db: &self.dir,
            versions: &self.versions,
            partition_width: self.partition_width,
            page_max_points: self.config.page_max_points,
        };
        let mut written = Vec::new();
        let result = (|| -> Result<Vec<Arc<TsFileResource>>> {
            for (mem, seq) in [(&sealed.seq, true), (&sealed.unseq, false)] {
                for (p, path) in flush::write_memtable(&env, mem, seq, sealed.hi)? {
                    written.push((p, path, seq));
                }
            }
            let mut resources = Vec::with_capacity(written.len());
            for (p, path, seq) in &written {
                resources.push(Arc::new(TsFileResource::open(&self.fs, path, *seq, *p, &self.cache)?));
            }
            Ok(resources)
        })();
        if result.is_err() {
            for (_, path, _) in &written {
                let _ = fs.remove_file(path);
            }
        }
        result
    }

    /// A snapshot of everything needed to read one series.
    pub(crate) fn view(&self, key: &SeriesKey, range: TimeRange) -> Result<SeriesView> {
        let mut st = self.live_state()?;
        let bound = self.config.ttl_bound(st.ttl_ms);
        let range = TimeRange::new(range.start.max(bound), range.end);
        let mut view = SeriesView { key: key.clone(), range, files: Vec::new(), mem: Vec::new() };
        if range.start > range.end {
            return Ok(view);
        }
        let width = self.partition_width;
        let (p0, p1) = (range.start.div_euclid(width), range.end.div_euclid(width));
        for seq in [true, false] {
            for f in st.files.in_partitions(seq, p0, p1) {
                if f.span(&key.device).is_some_and(|s| s.overlaps(range.start, range.end)) {
                    view.files.push(FileSource {
                        file: Arc::clone(f),
                        rank: if seq { 0 } else { f.version },
                        deleted: deleted_ranges(&f.mods.entries(), key),
                    });
                }
            }
        }
        for s in &st.sealed {
            let deleted = deleted_ranges(&lock(&s.deletes), key);
            for (mem, kind) in [(&s.seq, 0), (&s.unseq, 1)] {
                if let Some((data_type, run)) = mem.run(&key.device, &key.measurement, range) {
                    // Deletions recorded after the memtable was sealed.
                    let run = remove_ranges(run, &deleted);
                    if !run.times.is_empty() {
                        view.mem.push(MemSource { rank: MEM_RANK_BASE + s.order * 2 + kind, data_type, run });
                    }
                }
            }
        }
        let order = st.next_order;
        for kind in [0u64, 1] {
            let mem = if kind == 0 { &mut st.active.seq } else { &mut st.active.unseq };
            if let Some((data_type, run)) = mem.read_normalized(&key.device, &key.measurement, range) {
                if !run.times.is_empty() {
                    view.mem.push(MemSource { rank: MEM_RANK_BASE + order * 2 + kind, data_type, run });
                }
            }
        }
        Ok(view)
    }

    /// Delete files wholly older than the TTL bound.
    fn drop_expired_files(&self) -> Result<()> {
        let expired = {
            let mut st = self.live_state()?;
            let bound = self.config.ttl_bound(st.ttl_ms);
            let expired = compaction::expired(&st.files, bound);
            for f in &expired {
                st.files.remove(f);
            }
            expired
        };
        for f in expired {
            tracing::info!(file = %f.path.display(), "dropping a file past its TTL");
            f.remove_from_disk(self.fs.as_ref(), &self.cache)?;
        }
        Ok(())
    }

    /// Run one compaction task to the end: log, merge, publish, clean up.
    fn run_compaction(&self, task: Task) -> Result<()> {
        if task.seq.is_empty() && task.unseq.is_empty() {
            return Ok(());
        }
        if self.compaction_halted.load(Ordering::SeqCst) {
            return Err(Error::io(
                self.dir.join(compaction::COMPACTION_DIR),
                std::io::Error::other("compaction halted: an abandoned compaction's log could not be taken back; it is finished on the next start"),
            ));
        }
        // The log records how many tombstones each input had; they must
        // all be on disk for the next start to tell the later ones apart.
        for f in task.seq.iter().chain(&task.unseq) {
            f.mods.repair()?;
        }
        let bound = self.config.ttl_bound(lock(&self.state).ttl_ms);
        let inputs: Vec<Input> = task
            .seq
            .iter()
            .map(|f| (f, 0))
            .chain(task.unseq.iter().map(|f| (f, f.version)))
            .map(|(f, rank)| Input { file: Arc::clone(f), rank, deletions: f.mods.entries() })
            .collect();
        let logged: Vec<(Arc<TsFileResource>, usize)> = inputs.iter().map(|i| (Arc::clone(&i.file), i.deletions.len())).collect();
        let id = self.compaction_ids.fetch_add(1, Ordering::SeqCst);
        let mut log = CompactionLog::create(self.fs.as_ref(), &self.dir, id, &logged)?;
        let env = MergeEnv {
            fs: self.fs.as_ref(),
            db: &self.dir,
            cache: &self.cache,
            versions: &self.versions,
            config: &self.config,
            ttl_bound: bound,
            shutdown: &self.shutdown,
        };
        let mut outputs = Vec::new();
        let merged = compaction::write_outputs(&env, task.partition, &inputs, &mut log, &mut outputs)
            .and_then(|()| log.done())
            .and_then(|()| {
                outputs
                    .iter()
                    .map(|p| TsFileResource::open(&self.fs, p, true, task.partition, &self.cache).map(Arc::new))
                    .collect::<Result<Vec<_>>>()
            });
        let opened = match merged {
            Ok(o) => o,
            Err(e) => {
                // Not published: the inputs stay the truth.
                self.abandon_compaction(log, &outputs);
                return Err(e);
            }
        };
        // Publish: tombstones that arrived during the merge move onto the
        // outputs, and the outputs replace the inputs in one step. If a
        // tombstone cannot be copied the outputs are not published (they
        // would bring the deleted points back): the compaction is abandoned.
        {
            let mut st = lock(&self.state);
            let mut copied = Ok(());
            'copy: for i in &inputs {
                let seen = i.deletions.len();
                for d in i.file.mods.entries().iter().skip(seen) {
                    for o in &opened {
                        if let Err(e) = o.mods.append(Arc::clone(d)) {
                            copied = Err(e);
                            break 'copy;
                        }
                    }
                }
            }
            if let Err(e) = copied {
                drop(st);
                tracing::error!(error = %e, "cannot copy a tombstone onto a compaction output; abandoning the compaction");
                for o in &opened {
                    for device in o.devices.keys() {
                        self.cache.invalidate(&(o.version, device.clone()));
                    }
                }
                self.abandon_compaction(log, &outputs);
                return Err(e);
            }
            for i in &inputs {
                st.files.remove(&i.file);
            }
            for o in opened {
                st.files.add(o);
            }
        }
        for i in &inputs {
            i.file.remove_from_disk(self.fs.as_ref(), &self.cache)?;
        }
        log.remove(self.fs.as_ref())
    }

    /// Undo a compaction that was not published: the log must durably say
    /// "not done" before any output goes (a `done` log without its outputs
    /// makes the next start delete the inputs: every point of them lost),
    /// and the log goes only once every output is gone (an output without a
    /// log would be taken for a live file). Errors are logged: the caller
    /// reports the original one.
    fn abandon_compaction(&self, mut log: CompactionLog, outputs: &[std::path::PathBuf]) {
        if let Err(e) = log.undo_done() {
            // The log may say done and its outputs are complete: leave both
            // for the next start to finish the compaction (it copies the
            // tombstones the inputs get meanwhile), and merge nothing more
            // until then (a later merge of the same inputs would leave two
            // copies of their points).
            tracing::error!(error = %e, "cannot take back a compaction's done mark; compaction halted until the next start");
            self.compaction_halted.store(true, Ordering::SeqCst);
            return;
        }
        let mut all_removed = true;
        for p in outputs {
            for q in [p.clone(), crate::mods::mods_path(p)] {
                match self.fs.remove_file(&q) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        tracing::warn!(path = %q.display(), error = %e, "cannot remove an abandoned compaction output; the next start removes it");
                        all_removed = false;
                    }
                    _ => {}
                }
            }
        }
        if !all_removed {
            return;
        }
        if let Err(e2) = log.remove(self.fs.as_ref()) {
            tracing::warn!(error = %e2, "cannot remove a compaction log; it is undone on the next start");
        }
    }

    /// One round of background compaction.
    fn compact_background(&self) -> Result<()> {
        let _guard = lock(&self.compaction_lock);
        self.drop_expired_files()?;
        // One task at a time, re-selecting after each: flushes keep adding files.
        for _ in 0..16 {
            if self.shutdown.load(Ordering::Relaxed) {
                return Ok(());
            }
            let task = {
                let st = self.live_state()?;
                let bound = self.config.ttl_bound(st.ttl_ms);
                compaction::select(&st.files, &self.config, false, bound).into_iter().next()
            };
            let Some(task) = task else { return Ok(()) };
            self.run_compaction(task)?;
        }
        Ok(())
    }

    fn flush_loop(&self) {
        while !self.shutdown.load(Ordering::Relaxed) {
            match self.flush_one() {
                Ok(true) => {}
                Ok(false) => self.flush_signal.wait(Duration::from_millis(500)),
                Err(e) => {
                    tracing::error!(error = %e, "background flush failed; retrying");
                    self.flush_signal.wait(Duration::from_secs(1));
                }
            }
        }
    }

    fn compaction_loop(&self) {
        while !self.shutdown.load(Ordering::Relaxed) {
            self.compaction_signal.wait(Duration::from_secs(1));
            if self.shutdown.load(Ordering::Relaxed) {
                return;
            }
            if let Err(e) = self.compact_background() {
                if !matches!(e, Error::Closed) {
                    tracing::error!(error = %e, "background compaction failed");
                }
            }
        }
    }

    fn sync_loop(&self) {
        let FsyncPolicy::IntervalMs(ms) = self.config.wal_fsync else { return };
        while !self.shutdown.load(Ordering::Relaxed) {
            self.sync_signal.wait(Duration::from_millis(ms.max(1)));
            let targets = lock(&self.state).wal.as_mut().map(Wal::take_sync_targets).unwrap_or_default();
            for f in targets {
                if let Err(e) = f.sync() {
                    tracing::error!(error = %e, "WAL sync failed");
                }
            }
        }
    }

    /// Replay the WAL segments left after recovery into memtables, then open
    /// a new generation for new writes. `retained` are segments of flushed
    /// generations still on disk: only streamed groups' parts are read from them.
    fn replay(&self, segments: &[wal::Segment], retained: &[wal::Segment]) -> Result<()> {
        // What the replay applies may be flushed before the engine opens (the
        // rest of a long commit): the log it comes from is made durable
        // first, so no file ever holds what a power loss could take from
        // the log (a group half present, its apply record gone).
        for seg in retained.iter().chain(segments) {
            self.fs.open(&seg.path).and_then(|f| f.sync()).map_err(|e| Error::io(&seg.path, e))?;
        }
        let groups = index_groups(self.fs.as_ref(), retained, segments)?;
        let mut guard = Some(lock(&self.state));
        let st = guard.as_mut().ok_or(Error::Closed)?;
        let mut current = st.generation;
        let generation = segments.last().map_or(st.checkpoint, |s| s.generation).max(st.checkpoint) + 1;
        // Groups replayed here keep their parts until what they wrote is
        // flushed: pinned before the replay, which may flush (see
        // [`Inner::replay_group`]).
        let replay_gens: std::collections::HashSet<u64> = segments.iter().map(|s| s.generation).collect();
        for (id, g) in &groups {
            let replayed = g.applies.iter().any(|(at, _)| replay_gens.contains(&at.0));
            if let (true, Some(first)) = (replayed, g.parts.values().map(|l| l.generation).min()) {
                st.pins.insert(*id, GroupPin { first, release: Some(generation) });
            }
        }
        let mut records = 0u64;
        for seg in segments {
            let st = guard.as_mut().ok_or(Error::Closed)?;
            if seg.generation != current {
                // A generation boundary: seal here if the memtables are full,
                // as the original run did.
                if st.active.bytes() >= self.config.memtable_bytes_max && !st.active.is_empty() {
                    self.seal_as(st, current);
                }
                current = seg.generation;
                st.generation = current;
            }
            wal::scan_segment(self.fs.as_ref(), seg, |pos, payload| {
                records += 1;
                let corrupt = |what: String| Error::corrupt(&seg.path, pos, format!("undecodable WAL record: {what}"));
                match wal::peek_group(payload).map_err(corrupt)? {
                    // Parts count only through their group's apply records.
                    Some(GroupRecord::Part { .. }) => return Ok(()),
                    Some(GroupRecord::Apply(a)) => {
                        let group = groups.get(&a.id).ok_or_else(|| Error::corrupt(&seg.path, pos, "apply record of an unknown group"))?;
                        let st = guard.take().ok_or(Error::Closed)?;
                        guard = Some(self.replay_group(st, current, group, (seg.generation, seg.index, pos))?);
                        return Ok(());
                    }
                    None => {}
                }
                let st = guard.as_mut().ok_or(Error::Closed)?;
                match wal::decode_record(payload).map_err(corrupt)? {
                    WalRecord::Write(mut batch) => self.replay_write(st, current, &mut batch),
                    WalRecord::Group(mut batches) => batches.iter_mut().try_for_each(|b| self.replay_write(st, current, b)),
                    WalRecord::Delete { series, range } => self.apply_delete(st, &series, range),
                    WalRecord::Part { .. } | WalRecord::Apply(_) => Ok(()),
                }
            })?;
        }
        let mut st = guard.ok_or(Error::Closed)?;
        if records > 0 {
            tracing::info!(records, segments = segments.len(), "replayed the WAL");
        }
        st.generation = generation;
        let next_id = groups.keys().max().map_or(1, |m| m + 1);
        self.next_group_id.store(next_id, Ordering::SeqCst);
        let floor = wal_floor(&st);
        if retained.iter().any(|s| s.generation <= floor) {
            wal::remove_flushed_segments(self.fs.as_ref(), &self.wal_dir, floor)?;
        }
        st.wal = Some(Wal::create(Arc::clone(&self.fs), &self.wal_dir, self.config.wal_fsync, self.config.wal_segment_bytes, generation)?);
        Ok(())
    }

    /// Apply one logged batch during the replay.
    fn replay_write(&self, st: &mut State, current: u64, batch: &mut WriteBatch) -> Result<()> {
        if let Err(e) = self.apply_write(st, Incoming::Owned(batch)) {
            if !matches!(e, Error::TypeMismatch { .. } | Error::AlignmentMismatch { .. }) {
                return Err(e);
            }
            // Data the original run kept in separate memtables: separate
            // them again. The sealed part claims only the generations before
            // this one, so the WAL of this generation stays until all of it
            // is flushed.
            self.seal_as(st, current.saturating_sub(1));
            self.apply_write(st, Incoming::Owned(batch))?;
        }
        Ok(())
    }

    /// Apply what the apply record at `at` (generation, segment index,
    /// offset) covers: the group's batches from that record's position up
    /// to the group's next apply record, or to the end.
    ///
    /// The rest of a commit a crash interrupted may be larger than memory
    /// (a COPY of many gigabytes): whenever the memtables reach their
    /// budget, what is replayed so far is sealed and flushed here, as the
    /// live run's apply did. The files claim only the generations before
    /// this one, so this generation's log stays and a crash during the
    /// replay replays it again over them (the same points, in the same
    /// order, the last write winning as before). The group's parts are
    /// pinned ([`Inner::replay`]), so the flush's checkpoint keeps them.
    fn replay_group<'a>(&'a self, mut st: MutexGuard<'a, State>, current: u64, group: &GroupLog, at: (u64, u32, u64)) -> Result<MutexGuard<'a, State>> {
        let k = group.applies.iter().position(|(a, _)| *a == at).ok_or_else(|| Error::corrupt(&self.wal_dir, at.2, "apply record missing from the index"))?;
        let from = group.applies[k].1;
        let (end_part, end_batch) = match group.applies.get(k + 1) {
            Some((_, next)) => (next.part, next.batch),
            None => (from.parts, 0),
        };
        for part in from.part..from.parts.min(end_part.saturating_add(1)) {
            if part == end_part && end_batch == 0 {
                break;
            }
            let loc = group.parts.get(&part).ok_or_else(|| {
                Error::corrupt(&self.wal_dir, at.2, format!("group {} committed with {} parts, part {part} is missing", from.id, from.parts))
            })?;
            let WalRecord::Part { mut batches, .. } = wal::read_record(loc)? else {
                return Err(Error::corrupt(&loc.path, loc.offset, "not a part record"));
            };
            let lo = if part == from.part { from.batch as usize } else { 0 };
            let hi = if part == end_part { (end_batch as usize).min(batches.len()) } else { batches.len() };
            for b in batches.get_mut(lo..hi).unwrap_or_default() {
                self.replay_write(&mut st, current, b)?;
                if st.active.bytes() >= self.config.memtable_bytes_max {
                    self.seal_as(&mut st, current.saturating_sub(1));
                    // Nothing else runs before the engine opens: the flush
                    // takes the state lock as it needs it.
                    drop(st);
                    while self.flush_one()? {}
                    st = lock(&self.state);
                }
            }
        }
        Ok(st)
    }
}

/// Where a streamed group's records are in the WAL.
#[derive(Default)]
struct GroupLog {
    /// Part index → the record.
    parts: HashMap<u32, RecordLocation>,
    /// Apply records in log order: (generation, segment index, offset) and body.
    applies: Vec<((u64, u32, u64), GroupApply)>,
}

/// Read every segment once for streamed groups' parts and apply records.
fn index_groups(fs: &dyn FileSystem, retained: &[wal::Segment], segments: &[wal::Segment]) -> Result<HashMap<u64, GroupLog>> {
    let mut groups: HashMap<u64, GroupLog> = HashMap::new();
    for seg in retained.iter().chain(segments) {
        let mut file = None;
        wal::scan_segment(fs, seg, |pos, payload| {
            let corrupt = |what: String| Error::corrupt(&seg.path, pos, format!("undecodable WAL record: {what}"));
            match wal::peek_group(payload).map_err(corrupt)? {
                Some(GroupRecord::Part { id, index }) => {
                    let file = match &file {
                        Some(f) => Arc::clone(f),
                        None => {
                            let f = fs.open(&seg.path).map_err(|e| Error::io(&seg.path, e))?;
                            file = Some(Arc::clone(&f));
                            f
                        }
                    };
                    let len = wal::RECORD_HEADER_LEN + payload.len() as u64;
                    let loc = RecordLocation { file, path: seg.path.clone(), generation: seg.generation, offset: pos, len };
                    groups.entry(id).or_default().parts.insert(index, loc);
                }
                Some(GroupRecord::Apply(a)) => groups.entry(a.id).or_default().applies.push(((seg.generation, seg.index, pos), a)),
                None => {}
            }
            Ok(())
        })?;
    }
    Ok(groups)
}

/// Segments of generations up to this one can be removed: flushed, and no
/// streamed group needs their parts.
fn wal_floor(st: &State) -> u64 {
    let pinned = st.pins.values().map(|p| p.first.saturating_sub(1)).min().unwrap_or(u64::MAX);
    st.checkpoint.min(pinned)
}

/// A streamed group being written ([`StorageEngine::begin_group`]): parts
/// are logged (not applied, not kept in memory) by [`OpenGroup::write_part`]
/// and applied all at once by [`OpenGroup::commit`], which takes the final
/// part. Dropped uncommitted,
/// the group is aborted: its parts stay in the log until the checkpoint
/// passes them and are never replayed.
pub struct OpenGroup {
    inner: Arc<Inner>,
    id: u64,
    /// Where each logged part is.
    parts: Vec<RecordLocation>,
    /// The first `merged_parts` parts, kept in memory as one batch per
    /// device (rows in log order) while they take at most
    /// [`EngineConfig::group_resident_bytes_max`]; the commit applies them
    /// at once. Later parts are read back from the log, but the final one.
    merged: Vec<WriteBatch>,
    merged_index: HashMap<String, usize>,
    merged_parts: usize,
    merged_bytes: usize,
    /// The final part when it is not merged (applied from memory).
    tail: Option<Vec<WriteBatch>>,
    /// The type of every series written so far: one type per series in a group.
    types: HashMap<(String, String), tsfile::DataType>,
    /// The apply record is logged: from then on the group is replayed whole.
    committed: bool,
}

impl std::fmt::Debug for OpenGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenGroup").field("id", &self.id).field("parts", &self.parts.len()).finish_non_exhaustive()
    }
}

impl OpenGroup {
    /// Parts logged so far.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// Log `batches` as the group's next part (not synced, not applied).
    /// Checked as a write would be (types, alignment, TTL) so the commit
    /// does not fail on them. While the group's parts so far take at most
    /// [`EngineConfig::group_resident_bytes_max`] they are kept in memory,
    /// merged per device (on the caller's thread); past that they are read
    /// back from the log by the commit. Returns the batches whose rows the
    /// group copied or does not keep: their buffers are the caller's to
    /// reuse (a bulk load then touches no fresh memory for its next part).
    pub fn write_part(&mut self, batches: Vec<WriteBatch>) -> Result<Vec<WriteBatch>> {
        self.log_part(batches, false)
    }

    /// [`OpenGroup::write_part`]; `last`: the final part, kept in memory
    /// whatever its size (the caller held it anyway).
    fn log_part(&mut self, mut batches: Vec<WriteBatch>, last: bool) -> Result<Vec<WriteBatch>> {
        let inner = Arc::clone(&self.inner);
        inner.commit.check()?;
        for b in &batches {
            b.validate()?;
        }
        batches.retain(is_logged);
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        for b in &batches {
            for c in &b.columns {
                let t = *self.types.entry((b.device.clone(), c.measurement.clone())).or_insert(c.data_type);
                if t != c.data_type {
                    return Err(Error::TypeMismatch { series: format!("{}.{}", b.device, c.measurement), expected: t, got: c.data_type });
                }
            }
        }
        // A device comes back with one alignment.
        for b in &batches {
            if let Some(&i) = self.merged_index.get(&b.device) {
                if self.merged[i].aligned != b.aligned {
                    return Err(Error::AlignmentMismatch { device: b.device.clone(), aligned: self.merged[i].aligned });
                }
            }
        }
        let index = u32::try_from(self.parts.len()).map_err(|_| Error::batch("?", "a streamed group of more than 2^32 parts"))?;
        let frame = Frame::part(self.id, index, &batches.iter().collect::<Vec<_>>());
        frame.check_size()?;
        let mut st = inner.live_state()?;
        let bound = inner.config.ttl_bound(st.ttl_ms);
        for b in &batches {
            if let Some(&t) = b.times.iter().find(|t| **t < bound) {
                return Err(Error::OutsideTtl { device: b.device.clone(), time: t, bound });
            }
            st.active.seq.check(b)?;
            st.active.unseq.check(b)?;
        }
        let (_, location) = match st.wal.as_mut() {
            Some(w) => w.append_located(&frame)?,
            None => return Err(Error::Closed),
        };
        st.pins.entry(self.id).or_insert(GroupPin { first: location.generation, release: None });
        drop(st);
        let bytes: usize = batches.iter().map(WriteBatch::estimated_bytes).sum();
        let prefix = self.merged_parts == self.parts.len();
        self.parts.push(location);
        let mut spent = Vec::new();
        if prefix && (last || self.merged_bytes + bytes <= inner.config.group_resident_bytes_max) {
            self.merged_bytes += bytes;
            self.merged_parts += 1;
            for b in batches {
                match self.merged_index.get(&b.device) {
                    Some(&i) => {
                        self.merged[i].append(&b);
                        spent.push(b);
                    }
                    None => {
                        self.merged_index.insert(b.device.clone(), self.merged.len());
                        self.merged.push(b);
                    }
                }
            }
        } else if last {
            self.tail = Some(batches);
        } else {
            spent = batches;
        }
        Ok(spent)
    }

    /// Under `FsyncPolicy::EveryBatch`, sync the segment the last part went
    /// to now, so its pages go to disk while the writer prepares the next
    /// part instead of all at the commit's sync. Durability is unchanged:
    /// the commit still waits for its own sync; this only leaves that one
    /// less to write.
    pub fn sync_parts(&self) -> Result<()> {
        if self.inner.config.wal_fsync != FsyncPolicy::EveryBatch {
            return Ok(());
        }
        let Some(loc) = self.parts.last() else { return Ok(()) };
        loc.file.sync().map_err(|e| {
            // As a failed group-commit sync: the page cache may have dropped
            // other writers' pages, so no later sync could prove them durable.
            self.inner.commit.poison(format!("WAL sync failed: {e}"));
            Error::io(&loc.path, e)
        })
    }

    /// Commit with `last` as the group's final part (may be empty): log it
    /// and the apply record, apply every part, and return once it is
    /// durable. The parts kept in memory are applied under one hold of the
    /// engine's lock, so readers see all of them or none (a group wholly in
    /// memory appears at once), the memtables taking their vectors where
    /// they can; later parts are read back from the log and applied one by
    /// one. All or nothing across errors before the apply record and
    /// across crashes; an error while applying (an I/O error reading the
    /// log back) leaves the database refusing writes until a restart,
    /// which replays the group whole.
    pub fn commit(mut self, last: Vec<WriteBatch>) -> Result<()> {
        let ticket = self.commit_deferred(last)?;
        self.inner.wait_durable(ticket)
    }

    /// [`OpenGroup::commit`] without waiting for the sync; durable once
    /// [`StorageEngine::wait_durable`] returns for the ticket.
    pub fn commit_deferred(&mut self, last: Vec<WriteBatch>) -> Result<CommitTicket> {
        if self.committed {
            return Ok(CommitTicket::default());
        }
        self.log_part(last, true)?;
        if self.parts.is_empty() {
            return Ok(CommitTicket::default());
        }
        let inner = Arc::clone(&self.inner);
        inner.commit.check()?;
        let parts = u32::try_from(self.parts.len()).map_err(|_| Error::batch("?", "a streamed group of more than 2^32 parts"))?;
        let _gate = inner.write_gate.write().unwrap_or_else(|e| e.into_inner());
        {
            let mut st = inner.live_state()?;
            let a = GroupApply { id: self.id, part: 0, batch: 0, parts };
            match st.wal.as_mut() {
                Some(w) => w.append(&Frame::apply(a))?,
                None => return Err(Error::Closed),
            };
            st.applying = Some(a);
        }
        self.committed = true;
        let applied = self.apply_parts(&inner, parts);
        let mut st = lock(&inner.state);
        st.applying = None;
        let release = st.generation;
        if let Some(p) = st.pins.get_mut(&self.id) {
            p.release = Some(release);
        }
        let lsn = st.wal.as_ref().map_or(0, Wal::appended);
        drop(st);
        if let Err(e) = applied {
            inner.commit.poison(format!("a committed group could not be applied: {e}"));
            return Err(e);
        }
        Ok(CommitTicket(lsn))
    }

    /// Apply every part in order: the merged ones at once (or, if the
    /// memtables cannot take them all now, read back and applied one by
    /// one), then the rest read back from the log, then the tail. A helper
    /// thread reads and decodes the logged parts ahead of the apply (the
    /// rendezvous channel keeps it one part ahead: at most two decoded
    /// parts in memory).
    fn apply_parts(&mut self, inner: &Inner, parts: u32) -> Result<()> {
        let merged = std::mem::take(&mut self.merged);
        let merged_parts = self.merged_parts as u32;
        let applied_merged = merged_parts > 0 && self.apply_merged(inner, merged_parts, parts, merged)?;
        let first_read = if applied_merged { merged_parts } else { 0 };
        let tail = self.tail.take();
        let to_read = if tail.is_some() { parts - 1 } else { parts };
        if first_read >= to_read {
            // Nothing to read back from the log: no reader thread.
            return match tail {
                Some(batches) => self.apply_part(inner, parts - 1, parts, batches),
                None => Ok(()),
            };
        }
        let (id, locations): (u64, Vec<(u32, RecordLocation)>) =
            (self.id, (first_read..to_read).map(|i| (i, self.parts[i as usize].clone())).collect());
        std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<Vec<WriteBatch>>>(0);
            let reader = std::thread::Builder::new().name("arbor-group-read".into()).spawn_scoped(scope, move || {
                for (i, loc) in &locations {
                    let part = read_part(id, loc, *i);
                    let failed = part.is_err();
                    // A closed channel: the apply stopped on an error.
                    if sender.send(part).is_err() || failed {
                        break;
                    }
                }
            });
            if let Err(e) = reader {
                return Err(Error::io("wal", e));
            }
            for part in first_read..to_read {
                let batches = receiver.recv().map_err(|_| Error::io("wal", std::io::Error::other("the group's part reader stopped")))??;
                self.apply_part(inner, part, parts, batches)?;
            }
            if let Some(batches) = tail {
                self.apply_part(inner, parts - 1, parts, batches)?;
            }
            Ok(())
        })
    }

    /// Apply parts `0..merged_parts`, merged per device, under one hold of
    /// the lock; `false` (nothing applied) when a batch does not fit the
    /// working memtables now (a series re-created with another type since
    /// it was logged): the parts are then applied one by one, which seals
    /// between them as needed.
    fn apply_merged(&self, inner: &Inner, merged_parts: u32, parts: u32, mut merged: Vec<WriteBatch>) -> Result<bool> {
        inner.admit_committed(merged.iter().map(WriteBatch::estimated_bytes).sum());
        let mut st = inner.live_state()?;
        if !merged.iter().all(|b| st.active.seq.check(b).is_ok() && st.active.unseq.check(b).is_ok()) {
            return Ok(false);
        }
        for b in &mut merged {
            // Checked above, under this same lock hold: no seal in between,
            // so applying the merged rows is applying the parts in order.
            inner.apply_checked(&mut st, Incoming::Owned(b));
        }
        st.applying = Some(GroupApply { id: self.id, part: merged_parts, batch: 0, parts });
        let sealed = st.active.bytes() >= inner.config.memtable_bytes_max && inner.seal_logged(&mut st);
        drop(st);
        if sealed {
            inner.after_seal();
        }
        Ok(true)
    }

    fn apply_part(&self, inner: &Inner, part: u32, parts: u32, mut batches: Vec<WriteBatch>) -> Result<()> {
        inner.admit_committed(batches.iter().map(WriteBatch::estimated_bytes).sum());
        let mut st = inner.live_state()?;
        for (k, b) in batches.iter_mut().enumerate() {
            st.applying = Some(GroupApply { id: self.id, part, batch: k as u32, parts });
            inner.apply_write_or_seal(&mut st, Incoming::Owned(b))?;
        }
        st.applying = Some(GroupApply { id: self.id, part: part + 1, batch: 0, parts });
        let sealed = st.active.bytes() >= inner.config.memtable_bytes_max && inner.seal_logged(&mut st);
        drop(st);
        if sealed {
            inner.after_seal();
        }
        Ok(())
    }
}

/// Part `part` of group `id` read back from the log, checked to be that part.
fn read_part(id: u64, loc: &RecordLocation, part: u32) -> Result<Vec<WriteBatch>> {
    let WalRecord::Part { id: logged, index, batches } = wal::read_record(loc)? else {
        return Err(Error::corrupt(&loc.path, loc.offset, "not a part record"));
    };
    if logged != id || index != part {
        return Err(Error::corrupt(&loc.path, loc.offset, format!("part {index} of group {logged} where part {part} of group {id} was logged")));
    }
    Ok(batches)
}

/// Whether a batch of a part is logged: one with a point.
fn is_logged(b: &WriteBatch) -> bool {
    !b.times.is_empty() && b.columns.iter().any(|c| !c.values.is_empty())
}

impl Drop for OpenGroup {
    fn drop(&mut self) {
        if !self.committed && !self.parts.is_empty() {
            lock(&self.inner.state).pins.remove(&self.id);
        }
    }
}

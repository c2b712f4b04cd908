//! Engine configuration and the memory budget shared by writers.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::fs::{FileSystem, RealFs};

/// When the WAL is made durable with `fsync`. Either way a write reaches the
/// operating system before it is acknowledged, so it survives `kill -9`;
/// the policy decides what survives a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fsync` before every write is acknowledged.
    EveryBatch,
    /// `fsync` at most this many milliseconds after a write.
    IntervalMs(u64),
}

/// The unit of the database's timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimePrecision {
    #[default]
    Ms,
    Us,
    Ns,
}

impl TimePrecision {
    /// Timestamp units per millisecond.
    pub fn per_ms(self) -> i64 {
        match self {
            TimePrecision::Ms => 1,
            TimePrecision::Us => 1_000,
            TimePrecision::Ns => 1_000_000,
        }
    }
}

/// Milliseconds since the Unix epoch; replaceable so tests control TTL.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

/// Settings of one database's engine.
#[derive(Clone)]
pub struct EngineConfig {
    pub wal_fsync: FsyncPolicy,
    /// A WAL segment is closed and a new one started past this size.
    pub wal_segment_bytes: u64,
    /// The working memtables (sequence + unsequence) are sealed and flushed
    /// once they hold this many bytes.
    pub memtable_bytes_max: usize,
    /// A streamed group ([`crate::OpenGroup`], a big `COPY`) keeps its
    /// logged parts in memory for its commit to apply while they take at
    /// most this many bytes; parts past it are read back from the log.
    pub group_resident_bytes_max: usize,
    /// Above this many bytes in memtables (working and flushing) writers wait
    /// for flushes to catch up.
    pub memory_soft_limit_bytes: usize,
    /// A write that would take memtables past this is rejected with
    /// [`Error::MemoryBudgetExceeded`].
    pub memory_hard_limit_bytes: usize,
    /// A budget shared by several databases' engines; when `None` the engine
    /// makes its own from the two limits above.
    pub memory_budget: Option<Arc<MemoryBudget>>,
    /// How long a writer waits above the soft limit before giving up with
    /// [`Error::MemoryBudgetExceeded`].
    pub write_stall_timeout_ms: u64,
    /// Width of a time partition; no file spans two partitions. Fixed when
    /// the database is created (later values are ignored with a warning).
    pub time_partition_ms: i64,
    pub time_precision: TimePrecision,
    /// Compaction closes an output file once it is this large.
    pub seq_file_target_bytes: u64,
    /// Points older than `now - ttl_ms` are invisible and dropped by compaction.
    pub ttl_ms: Option<i64>,
    /// Flush, compaction and WAL sync run on background threads. When false
    /// (deterministic tests) flushes run inline in the write that fills a
    /// memtable and compaction only runs on [`crate::StorageEngine::compact`].
    pub background: bool,
    /// Background compaction of a partition starts when it holds this many
    /// unsequence files.
    pub compaction_unseq_files_trigger: usize,
    /// ... or this many sequence files smaller than half the target size.
    pub compaction_small_seq_files_trigger: usize,
    /// Points per TsFile page (Apache's default is 10 000).
    /// Series whose latest point the last-value cache keeps (least
    /// recently used ones are evicted beyond this).
    pub last_cache_entries_max: u64,
    pub page_max_points: usize,
    pub fs: Arc<dyn FileSystem>,
    pub clock: Clock,
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("wal_fsync", &self.wal_fsync)
            .field("wal_segment_bytes", &self.wal_segment_bytes)
            .field("memtable_bytes_max", &self.memtable_bytes_max)
            .field("group_resident_bytes_max", &self.group_resident_bytes_max)
            .field("memory_soft_limit_bytes", &self.memory_soft_limit_bytes)
            .field("memory_hard_limit_bytes", &self.memory_hard_limit_bytes)
            .field("time_partition_ms", &self.time_partition_ms)
            .field("time_precision", &self.time_precision)
            .field("seq_file_target_bytes", &self.seq_file_target_bytes)
            .field("ttl_ms", &self.ttl_ms)
            .field("background", &self.background)
            .field("fs", &self.fs)
            .finish_non_exhaustive()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            wal_fsync: FsyncPolicy::IntervalMs(100),
            wal_segment_bytes: 64 << 20,
            memtable_bytes_max: 64 << 20,
            group_resident_bytes_max: 32 << 20,
            memory_soft_limit_bytes: 256 << 20,
            memory_hard_limit_bytes: 512 << 20,
            memory_budget: None,
            write_stall_timeout_ms: 30_000,
            time_partition_ms: 7 * 24 * 3600 * 1000,
            time_precision: TimePrecision::Ms,
            seq_file_target_bytes: 256 << 20,
            ttl_ms: None,
            background: true,
            compaction_unseq_files_trigger: 4,
            compaction_small_seq_files_trigger: 8,
            page_max_points: 10_000,
            last_cache_entries_max: 1_000_000,
            fs: Arc::new(RealFs),
            clock: system_clock(),
        }
    }
}

impl EngineConfig {
    /// Partition width in timestamp units.
    pub(crate) fn partition_width(&self) -> i64 {
        self.time_partition_ms.saturating_mul(self.time_precision.per_ms()).max(1)
    }

    /// The oldest visible timestamp under TTL, in timestamp units.
    pub(crate) fn ttl_bound(&self, ttl_ms: Option<i64>) -> i64 {
        match ttl_ms {
            Some(ttl) => ((self.clock)().saturating_sub(ttl)).saturating_mul(self.time_precision.per_ms()),
            None => i64::MIN,
        }
    }
}

/// Bytes held by memtables, against a soft limit (writers wait) and a hard
/// limit (writes are rejected). One budget may be shared by all databases.
#[derive(Debug)]
pub struct MemoryBudget {
    soft: usize,
    hard: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

impl MemoryBudget {
    pub fn new(soft_limit_bytes: usize, hard_limit_bytes: usize) -> Self {
        MemoryBudget {
            soft: soft_limit_bytes,
            hard: hard_limit_bytes.max(soft_limit_bytes),
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    pub fn used(&self) -> usize {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn soft_limit(&self) -> usize {
        self.soft
    }

    pub fn hard_limit(&self) -> usize {
        self.hard
    }

    /// Reject `bytes` if it would pass the hard limit.
    pub(crate) fn check_hard(&self, bytes: usize) -> Result<()> {
        let used = self.used();
        if used.saturating_add(bytes) > self.hard {
            return Err(Error::MemoryBudgetExceeded {
                used,
                requested: bytes,
                limit: self.hard,
            });
        }
        Ok(())
    }

    /// Wait while above the soft limit, at most `timeout`. Returns whether
    /// the budget is now below the soft limit.
    pub(crate) fn wait_below_soft(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > self.soft {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Wake up now and then even without a notification: another
            // engine sharing the budget may free memory without our condvar.
            let wait = (deadline - now).min(Duration::from_millis(50));
            used = self.freed.wait_timeout(used, wait).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    pub(crate) fn add(&self, bytes: usize) {
        *self.used.lock().unwrap_or_else(|e| e.into_inner()) += bytes;
    }

    pub(crate) fn release(&self, bytes: usize) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(bytes);
        drop(used);
        self.freed.notify_all();
    }
}

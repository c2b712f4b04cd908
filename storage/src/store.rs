//! [`SeriesStore`]: the small contract the query layer reads and writes
//! through, so it never reaches into engine internals.

use tsfile::{AlignedBatch, TimeRange, Value};

use crate::batch::{Aggregates, SeriesKey, WriteBatch};
use crate::commit::CommitTicket;
use crate::engine::{OpenGroup, StorageEngine};
use crate::error::Result;
use crate::scan::ScanRequest;
use crate::statistics::DeviceStatistics;

/// Batches of a streaming scan, produced as they are read (blocking).
pub type BatchStream = Box<dyn Iterator<Item = Result<AlignedBatch>> + Send>;

/// What one database's storage offers the query layer.
pub trait SeriesStore: Send + Sync + std::fmt::Debug {
    /// Rows of a device's measurements aligned by time, streamed.
    fn scan(&self, request: ScanRequest) -> Result<BatchStream>;
    /// Aggregates of one series in `range`, from statistics wherever exact.
    fn aggregate(&self, series: &SeriesKey, range: TimeRange) -> Result<Aggregates>;
    /// What file metadata alone says of a device's measurements in some
    /// ranges, reading no data: exact where nothing makes it inexact.
    fn statistics(&self, device: &str, measurements: &[String], ranges: &[TimeRange]) -> Result<DeviceStatistics>;
    /// Aggregates of one series over each window (inclusive ranges sorted
    /// by start and end; they may overlap), each chunk and page read once.
    fn aggregate_windows(&self, series: &SeriesKey, windows: &[TimeRange]) -> Result<Vec<Aggregates>>;
    /// The point with the largest time of a series.
    fn last(&self, series: &SeriesKey) -> Result<Option<(i64, Value)>>;
    /// Append a batch durably (acknowledged once it survives `kill -9`).
    fn write(&self, batch: &WriteBatch) -> Result<()>;
    /// Append a batch, logged and visible but not yet synced; durable once
    /// [`SeriesStore::wait_durable`] returns for the ticket.
    fn write_deferred(&self, batch: &WriteBatch) -> Result<CommitTicket>;
    /// Wait until the write of `ticket` is durable.
    fn wait_durable(&self, ticket: CommitTicket) -> Result<()>;
    /// Append several batches atomically (one WAL record: all or none,
    /// across errors and crashes), durably.
    fn write_group(&self, batches: &[WriteBatch]) -> Result<()>;
    /// [`SeriesStore::write_group`], logged and visible but not yet synced.
    fn write_group_deferred(&self, batches: &[WriteBatch]) -> Result<CommitTicket>;
    /// Start a streamed group: parts logged as they come, applied
    /// atomically at [`OpenGroup::commit`], aborted when dropped uncommitted.
    /// `None` from a store that cannot stream (test doubles).
    fn begin_group(&self) -> Option<OpenGroup> {
        None
    }
    /// Delete the points of `series` in `range` (inclusive).
    fn delete(&self, series: &[SeriesKey], range: TimeRange) -> Result<()>;
    /// Persist memtables into TsFiles.
    fn flush(&self) -> Result<()>;
    /// Adopt a complete TsFile as a sequence file without rewriting it;
    /// `false` (nothing done) when its points would overlap stored ones.
    fn adopt_file(&self, path: &std::path::Path) -> Result<bool>;
}

impl SeriesStore for StorageEngine {
    fn scan(&self, request: ScanRequest) -> Result<BatchStream> {
        Ok(Box::new(self.scan_device(request)?))
    }

    fn aggregate(&self, series: &SeriesKey, range: TimeRange) -> Result<Aggregates> {
        StorageEngine::aggregate(self, series, range)
    }

    fn statistics(&self, device: &str, measurements: &[String], ranges: &[TimeRange]) -> Result<DeviceStatistics> {
        StorageEngine::statistics(self, device, measurements, ranges)
    }

    fn aggregate_windows(&self, series: &SeriesKey, windows: &[TimeRange]) -> Result<Vec<Aggregates>> {
        StorageEngine::aggregate_windows(self, series, windows)
    }

    fn last(&self, series: &SeriesKey) -> Result<Option<(i64, Value)>> {
        StorageEngine::last(self, series)
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        StorageEngine::write(self, batch)
    }

    fn write_deferred(&self, batch: &WriteBatch) -> Result<CommitTicket> {
        StorageEngine::write_deferred(self, batch)
    }

    fn wait_durable(&self, ticket: CommitTicket) -> Result<()> {
        StorageEngine::wait_durable(self, ticket)
    }

    fn write_group(&self, batches: &[WriteBatch]) -> Result<()> {
        StorageEngine::write_group(self, batches)
    }

    fn write_group_deferred(&self, batches: &[WriteBatch]) -> Result<CommitTicket> {
        StorageEngine::write_group_deferred(self, batches)
    }

    fn begin_group(&self) -> Option<OpenGroup> {
        Some(StorageEngine::begin_group(self))
    }

    fn delete(&self, series: &[SeriesKey], range: TimeRange) -> Result<()> {
        StorageEngine::delete(self, series, range)
    }

    fn flush(&self) -> Result<()> {
        StorageEngine::flush(self)
    }

    fn adopt_file(&self, path: &std::path::Path) -> Result<bool> {
        StorageEngine::adopt_file(self, path)
    }
}

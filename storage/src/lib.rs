//! Arbor's storage engine: one LSM engine per database over Apache TsFiles,
//! following Apache IoTDB's design of separating in-order (sequence) from
//! late (unsequence) data.
//!
//! - [`StorageEngine::write`] appends a [`WriteBatch`] to the WAL, then to
//!   the working memtables: points newer than their device's *stable time*
//!   (the latest time sealed for flush) are sequence data, older ones
//!   unsequence data.
//! - Full memtables are sealed and flushed in the background into TsFiles,
//!   one per time partition; sequence files never overlap per device.
//! - [`StorageEngine::delete`] records tombstones (`.mods` beside each file)
//!   that every read honours and compaction removes.
//! - Compaction merges unsequence files and tombstones into sequence files
//!   and small sequence files into larger ones, crash-safely.
//! - On open, interrupted compactions are finished or undone, damaged files
//!   salvaged, and the WAL replayed.
//! - Reads merge all sources so the newest value wins; aggregates come from
//!   file, chunk and page statistics wherever those are exact.
//!
//! Module map: `scan` (streaming device reads), `store` (the trait the
//! query layer uses), `wal` (log + checkpoint), `memtable`, `flush`, `files`
//! (file index), `mods` (tombstones), `compaction`, `recovery`, `read`,
//! `statistics` (metadata-only counts and min/max), `run` (sorted-run
//! merging), `engine` (the state and its locking), [`fs`] (the
//! file-system seam used for fault injection).

mod batch;
mod commit;
mod compaction;
mod config;
mod engine;
mod error;
mod files;
mod flush;
pub mod fs;
mod memtable;
mod mods;
mod read;
mod recovery;
mod run;
pub mod scan;
mod statistics;
mod store;
mod wal;

pub use batch::{Aggregates, Column, ReadCounters, SeriesKey, WriteBatch};
pub use commit::CommitTicket;
pub use config::{Clock, EngineConfig, FsyncPolicy, MemoryBudget, TimePrecision};
pub use engine::{FileInfo, OpenGroup, StorageEngine};
pub use scan::{DeviceScan, ScanOrder, ScanRequest};
pub use statistics::{Bound, ColumnStatistics, DeviceStatistics};
pub use store::{BatchStream, SeriesStore};
pub use error::{Error, Result};
pub use tsfile::{AlignedBatch, ColumnBatch, DataType, SeriesBatch, TimeRange, Value, Values};

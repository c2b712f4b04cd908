//! The crate's one error type. Variants are named by cause so the server can
//! map each to a SQLSTATE with one exhaustive `match`.

use std::path::PathBuf;

use tsfile::DataType;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the engine wrote does not read back: a WAL record, a `.mods`
    /// record, a compaction log or a TsFile damaged somewhere other than an
    /// unfinished tail. The engine refuses to start rather than drop data.
    #[error("corrupt file {}: {what} at offset {offset}", file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        what: String,
    },
    /// The memtables hold more than the hard memory limit allows; the write
    /// was rejected whole (SQLSTATE 53200).
    #[error("memory budget exceeded: {used} bytes in memtables, {requested} more requested, hard limit {limit}")]
    MemoryBudgetExceeded {
        used: usize,
        requested: usize,
        limit: usize,
    },
    /// A series was written or read with a type other than the one it holds.
    #[error("type mismatch for {series}: it holds {expected}, got {got}")]
    TypeMismatch {
        series: String,
        expected: DataType,
        got: DataType,
    },
    /// A device written both aligned and non-aligned while data of the
    /// other kind is still in memory.
    #[error("device {device} is {} but was written {}", if *.aligned { "aligned" } else { "not aligned" }, if *.aligned { "non-aligned" } else { "aligned" })]
    AlignmentMismatch { device: String, aligned: bool },
    /// A write batch that is malformed (lengths disagree, duplicate columns...).
    #[error("invalid write batch for {device}: {what}")]
    InvalidBatch { device: String, what: String },
    /// A point older than the database's TTL bound; the batch was rejected whole.
    #[error("time {time} of {device} is older than the TTL bound {bound}")]
    OutsideTtl { device: String, time: i64, bound: i64 },
    /// Another engine already has the directory open.
    #[error("database directory {} is in use by another engine", dir.display())]
    Locked { dir: PathBuf },
    /// The engine was closed or dropped (`close`, `drop_all`).
    #[error("the storage engine is closed")]
    Closed,
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tsfile(#[from] tsfile::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(file: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corrupt {
            file: file.into(),
            offset,
            what: what.into(),
        }
    }

    pub(crate) fn batch(device: &str, what: impl Into<String>) -> Self {
        Error::InvalidBatch {
            device: device.to_string(),
            what: what.into(),
        }
    }
}

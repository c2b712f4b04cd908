//! The crate's one error type. Variants are named by cause; every message
//! names the path (or file and byte offset) it is about.

use std::path::PathBuf;

use tsfile::{Compression, DataType, Encoding};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the series tree.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Text that is not a valid path or pattern, or a path that cannot be
    /// used where it was given (too short for a database, a wildcard where a
    /// concrete path is needed, ...).
    #[error("invalid path {path}: {reason}")]
    InvalidPath { path: String, reason: String },

    #[error("database {path} does not exist")]
    DatabaseNotFound { path: String },

    #[error("database {path} already exists")]
    DatabaseAlreadyExists { path: String },

    /// Databases cannot nest: `path` lies above or below database `existing`.
    #[error("database {path} conflicts with existing database {existing}: databases cannot nest")]
    DatabaseConflict { path: String, existing: String },

    /// No database covers `path` (and auto-creation is off or not possible).
    #[error("no database is set for {path}; create one with CREATE DATABASE")]
    DatabaseNotSet { path: String },

    #[error("time series {path} does not exist")]
    SeriesNotFound { path: String },

    #[error("time series {path} already exists")]
    SeriesAlreadyExists { path: String },

    /// A measurement would be created where a non-measurement node (a
    /// device, database or inner node) already is, or the reverse.
    #[error("path {path} already exists and is not a time series")]
    PathAlreadyExists { path: String },

    /// A path runs through a measurement, which is always a leaf.
    #[error("{path} is a time series and cannot have children")]
    PathIsMeasurement { path: String },

    /// The name or alias `alias` given for `path` is already a measurement
    /// name or alias of the same device.
    #[error("{alias} (for {path}) is already a measurement name or alias of the device")]
    AliasAlreadyExists { path: String, alias: String },

    /// Aligned and non-aligned series cannot share a device.
    #[error("device {device} is {}aligned", if *.aligned { "" } else { "not " })]
    AlignmentMismatch { device: String, aligned: bool },

    /// A value of type `got` was written to a series declared as `expected`.
    #[error("type mismatch for {path}: series is {expected}, value is {got}")]
    TypeMismatch {
        path: String,
        expected: DataType,
        got: DataType,
    },

    #[error("data type {data_type} cannot be used for time series {path}")]
    UnsupportedDataType { path: String, data_type: DataType },

    #[error("encoding {encoding} is not valid for {data_type} time series {path}")]
    EncodingNotSupported {
        path: String,
        data_type: DataType,
        encoding: Encoding,
    },

    #[error("compression {compression} cannot be written (time series {path})")]
    CompressionNotSupported {
        path: String,
        compression: Compression,
    },

    /// A broken invariant inside the catalog (a bug, never bad input).
    #[error("internal catalog error: {0}")]
    Internal(String),

    /// A schema file is damaged somewhere other than a torn tail; the catalog
    /// refuses to start rather than silently lose schema.
    #[error("corrupt schema file {}: {what} at offset {offset}", .file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        what: String,
    },

    /// An earlier write to the schema log failed and could not be undone;
    /// no further schema change is accepted until the catalog is reopened.
    #[error("schema log {} is unusable after a failed write; reopen the catalog", .file.display())]
    LogPoisoned { file: PathBuf },

    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid_path(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidPath {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

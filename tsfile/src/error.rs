//! The crate's one error type. Every variant names its cause; damaged input
//! names the file (when known) and the byte offset where reading failed.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing a TsFile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes do not follow the format: truncated, flipped, absurd lengths.
    #[error("corrupt TsFile {file}: {what} at offset {offset}")]
    Corrupt {
        file: String,
        offset: u64,
        what: String,
    },
    /// Well-formed input that uses a feature this crate does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An encoding that the data type cannot use (e.g. GORILLA for TEXT).
    #[error("encoding {encoding} is not valid for data type {data_type}")]
    EncodingNotSupported {
        encoding: crate::Encoding,
        data_type: crate::DataType,
    },
    /// A caller broke a writer rule (unsorted times, wrong value type, ...).
    #[error("invalid write: {0}")]
    InvalidWrite(String),
    /// Lookup of a device or series that the file does not hold.
    #[error("series not found: {0}")]
    SeriesNotFound(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A corruption error without a file name yet; readers attach the file
    /// name with [`Error::in_file`] as the error leaves them.
    pub fn corrupt(offset: u64, what: impl Into<String>) -> Self {
        Error::Corrupt {
            file: String::new(),
            offset,
            what: what.into(),
        }
    }

    /// Attach a file name to a corruption error that has none yet.
    pub fn in_file(self, name: &str) -> Self {
        match self {
            Error::Corrupt { file, offset, what } if file.is_empty() => Error::Corrupt {
                file: name.to_string(),
                offset,
                what,
            },
            other => other,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl Error {
    /// Re-anchor an error raised inside a decompressed page body at the
    /// page's file offset, keeping the position within the body in the text.
    pub fn in_page(self, page_offset: u64) -> Self {
        match self {
            Error::Corrupt { file, offset, what } => Error::Corrupt {
                file,
                offset: page_offset,
                what: format!("{what} (page body byte {offset})"),
            },
            other => other,
        }
    }
}

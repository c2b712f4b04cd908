//! Apache TsFile, format version 4: types, encodings, compression,
//! statistics, a writer and a reader (see `shared/TSFILE_FORMAT.md`).
//!
//! This crate knows nothing of the storage engine and uses no async runtime.

pub mod encoding;
pub mod error;
pub mod io;
pub mod types;

pub use error::{Error, Result};
pub use types::{Compression, DataType, Encoding, PhysicalType, Value, Values};

//! Apache TsFile, format version 4: types, encodings, compression,
//! statistics, a writer and a reader (see `shared/TSFILE_FORMAT.md`).
//!
//! This crate knows nothing of the storage engine and uses no async runtime.

pub mod encoding;
pub mod error;
pub mod io;
pub mod types;
pub mod writer;

pub use error::{Error, Result};
pub use types::{Compression, DataType, Encoding, PhysicalType, Value, Values};
pub mod bloom;
pub mod compression;
pub mod csv_io;
pub mod device;
pub mod metadata;
pub mod reader;
pub mod statistics;
pub mod text;

pub use device::DeviceId;
pub use statistics::{Statistics, ValueStatistics};
pub use writer::{AlignedColumn, SeriesChunk, SeriesSchema, TsFileWriter, WriterOptions};
pub use reader::{scan_chunk_groups, AlignedBatch, ChunkGroupInfo, ColumnBatch, DeviceMetadata, SeriesBatch, TimeRange, TsFileReader};

//! Arbor's series tree (IoTDB's tree data model): databases, devices,
//! measurements with their type, encoding, compression, alias, tags and
//! attributes; path patterns matched by walking the tree; automatic schema
//! creation on first write; stable numeric ids for the storage engine; and
//! the schema's persistence (a CRC-framed log plus snapshots).
//!
//! The catalog does not know how data is stored. Storage keys data by
//! [`SeriesId`]/[`DeviceId`]/[`DatabaseId`] and gets them from
//! [`Catalog::ensure_series`]; the SQL layer parses paths with [`Path`] and
//! [`PathPattern`] and answers SHOW/COUNT statements from the listings.
//!
//! Modules: `path` and `pattern` (text forms), `schema` (the values handed
//! out), `tree` (the in-memory tree and pattern walk), `record` and `log`
//! (persistence), `catalog` (the shared, locked entry point), `error`.

mod catalog;
mod error;
mod log;
mod path;
mod pattern;
mod record;
mod schema;
mod tree;

pub use catalog::{Catalog, CatalogConfig, CatalogStats, FoundSeries};
pub use error::{Error, Result};
pub use log::RecoveryReport;
pub use path::{needs_quoting, Path, MAX_PATH_LEVELS};
pub use pattern::{PathPattern, PatternNode};
pub use schema::{
    DatabaseId, DatabaseInfo, DeletedSeries, DeviceId, DeviceInfo, DroppedDatabase, NodeInfo,
    NodeType, Page, SeriesHandle, SeriesId, SeriesInfo, SeriesSpec, ValueKind,
};
pub use tsfile::{Compression, DataType, Encoding};

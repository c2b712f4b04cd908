//! The values the catalog hands out: stable ids, series handles for the
//! write path, creation specs, and the rows of SHOW-style listings.

use std::collections::BTreeMap;
use std::fmt;

use tsfile::{Compression, DataType, Encoding};

use crate::path::Path;

/// Stable id of a database; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatabaseId(pub u64);

/// Stable id of a device; never reused (a device whose last series is
/// deleted and that is later recreated gets a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub u64);

/// Stable id of a time series; never reused, so data written under an old
/// id can never be read back as a recreated series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub u64);

impl fmt::Display for DatabaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the write path needs to know about one series, small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesHandle {
    pub id: SeriesId,
    pub device: DeviceId,
    pub database: DatabaseId,
    pub data_type: DataType,
    pub encoding: Encoding,
    pub compression: Compression,
    /// The device's flag: aligned series share one time column.
    pub aligned: bool,
    /// IoTDB's `MAX_POINT_NUMBER` given at creation (see [`SeriesHandle::rounding`]).
    pub max_point_number: Option<u8>,
}

impl SeriesHandle {
    /// Decimal digits FLOAT/DOUBLE values keep, as IoTDB stores them: when
    /// RLE or TS_2DIFF was asked for, `MAX_POINT_NUMBER` (default 2); the
    /// lossless default encodings keep every digit (`None`).
    pub fn rounding(&self) -> Option<u8> {
        let lossy = matches!(self.data_type, DataType::Float | DataType::Double)
            && matches!(self.encoding, Encoding::Rle | Encoding::Ts2Diff);
        lossy.then(|| self.max_point_number.unwrap_or(2))
    }
}

/// How to create one series explicitly (`CREATE TIMESERIES ... WITH ...`).
/// `None` encoding/compression take the defaults: the type's
/// `default_encoding()` and the configured compression (LZ4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesSpec {
    pub data_type: DataType,
    pub encoding: Option<Encoding>,
    pub compression: Option<Compression>,
    pub alias: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, String>,
    /// IoTDB's `MAX_POINT_NUMBER` property.
    pub max_point_number: Option<u8>,
}

impl SeriesSpec {
    pub fn new(data_type: DataType) -> Self {
        SeriesSpec {
            data_type,
            encoding: None,
            compression: None,
            alias: None,
            tags: BTreeMap::new(),
            attributes: BTreeMap::new(),
            max_point_number: None,
        }
    }

    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = Some(encoding);
        self
    }

    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.alias = Some(alias.into());
        self
    }

    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }
}

/// One row of SHOW TIMESERIES.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesInfo {
    pub path: Path,
    pub database: Path,
    pub handle: SeriesHandle,
    pub alias: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, String>,
}

impl SeriesInfo {
    /// The device path (the series path without its measurement).
    pub fn device_path(&self) -> Path {
        self.path.parent().unwrap_or_else(Path::root)
    }

    /// The measurement name.
    pub fn measurement(&self) -> &str {
        self.path.last()
    }
}

/// One row of SHOW DEVICES.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub id: DeviceId,
    pub path: Path,
    pub database_id: DatabaseId,
    pub database: Path,
    pub aligned: bool,
    /// Number of measurements directly under the device.
    pub series_count: u64,
}

/// One row of SHOW DATABASES.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    pub id: DatabaseId,
    pub path: Path,
    /// Its own TTL in milliseconds (IoTDB's `SET TTL`), if it has one.
    pub ttl_ms: Option<i64>,
}

/// What a dropped database held, so storage can delete its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedDatabase {
    pub id: DatabaseId,
    pub path: Path,
    pub devices: Vec<DeviceId>,
    pub series: Vec<SeriesId>,
}

/// One series removed by [`crate::Catalog::delete_series`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSeries {
    pub id: SeriesId,
    pub device: DeviceId,
    pub database: DatabaseId,
    pub path: Path,
}

/// The type of a node as SHOW CHILD PATHS reports it (IoTDB's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeType {
    Root,
    /// An inner node above databases (`root.a` when `root.a.b` is a database).
    DatabaseInternal,
    Database,
    /// An inner node inside a database that is not a device.
    Internal,
    Device,
    Timeseries,
}

impl NodeType {
    pub fn name(self) -> &'static str {
        match self {
            NodeType::Root => "ROOT",
            NodeType::DatabaseInternal => "SG INTERNAL",
            NodeType::Database => "DATABASE",
            NodeType::Internal => "INTERNAL",
            NodeType::Device => "DEVICE",
            NodeType::Timeseries => "TIMESERIES",
        }
    }
}

impl fmt::Display for NodeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A node of the series tree and its type (a row of `arbor.nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub path: Path,
    pub node_type: NodeType,
}

/// LIMIT/OFFSET of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Page {
    pub limit: Option<usize>,
    pub offset: usize,
}

impl Page {
    /// No limit, no offset.
    pub fn all() -> Page {
        Page::default()
    }

    pub fn new(limit: Option<usize>, offset: usize) -> Page {
        Page { limit, offset }
    }
}

/// The kind of a literal being written, for type inference on auto-create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Boolean,
    Integer,
    Floating,
    Text,
}

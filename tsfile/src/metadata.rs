//! On-disk structures of the data and index regions (spec §4, §6–§8):
//! chunk and page headers, TimeseriesMetadata with its ChunkMetadata list,
//! metadata index nodes, table schemas and TsFileMetadata.

use std::collections::BTreeMap;

use crate::bloom::BloomFilter;
use crate::device::DeviceId;
use crate::error::{Error, Result};
use crate::io::{ByteReader, ByteWriter};
use crate::statistics::Statistics;
use crate::types::{Compression, DataType, Encoding};

pub const MAGIC: &[u8; 6] = b"TsFile";
pub const VERSION: u8 = 4;

pub const MARKER_CHUNK_GROUP_HEADER: u8 = 0x00;
pub const MARKER_CHUNK_HEADER: u8 = 0x01;
pub const MARKER_SEPARATOR: u8 = 0x02;
pub const MARKER_OPERATION_INDEX_RANGE: u8 = 0x04;
pub const MARKER_ONLY_ONE_PAGE_CHUNK_HEADER: u8 = 0x05;
pub const TIME_COLUMN_MASK: u8 = 0x80;
pub const VALUE_COLUMN_MASK: u8 = 0x40;

/// Which column of which kind of device a chunk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    NonAligned,
    AlignedTime,
    AlignedValue,
}

impl ChunkKind {
    fn mask(self) -> u8 {
        match self {
            ChunkKind::NonAligned => 0,
            ChunkKind::AlignedTime => TIME_COLUMN_MASK,
            ChunkKind::AlignedValue => VALUE_COLUMN_MASK,
        }
    }
}

fn data_type_at(r: &mut ByteReader<'_>) -> Result<DataType> {
    let offset = r.offset();
    let code = r.u8()?;
    DataType::from_code(code).ok_or_else(|| Error::corrupt(offset, format!("unknown data type code {code}")))
}

/// Chunk header (spec §4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkHeader {
    pub kind: ChunkKind,
    /// More than one page: pages carry statistics.
    pub multi_page: bool,
    pub measurement: String,
    /// Bytes of all page headers and bodies that follow the header.
    pub data_size: u32,
    pub data_type: DataType,
    pub compression: Compression,
    pub encoding: Encoding,
}

impl ChunkHeader {
    pub fn marker(&self) -> u8 {
        let base = if self.multi_page {
            MARKER_CHUNK_HEADER
        } else {
            MARKER_ONLY_ONE_PAGE_CHUNK_HEADER
        };
        base | self.kind.mask()
    }

    pub fn serialize(&self, out: &mut Vec<u8>) {
        out.put_u8(self.marker());
        out.put_varstr(Some(self.measurement.as_bytes()));
        out.put_uvarint(self.data_size);
        out.put_u8(self.data_type.code());
        out.put_u8(self.compression.code());
        out.put_u8(self.encoding.code());
    }

    pub fn deserialize(r: &mut ByteReader<'_>) -> Result<Self> {
        let offset = r.offset();
        let marker = r.u8()?;
        let kind = match marker & 0xC0 {
            0 => ChunkKind::NonAligned,
            TIME_COLUMN_MASK => ChunkKind::AlignedTime,
            VALUE_COLUMN_MASK => ChunkKind::AlignedValue,
            _ => return Err(Error::corrupt(offset, format!("bad chunk marker {marker:#04x}"))),
        };
        let multi_page = match marker & 0x3F {
            MARKER_CHUNK_HEADER => true,
            MARKER_ONLY_ONE_PAGE_CHUNK_HEADER => false,
            _ => return Err(Error::corrupt(offset, format!("bad chunk marker {marker:#04x}"))),
        };
        let measurement = r.varstr_nonnull()?;
        let data_size = r.uvarint()?;
        let data_type = data_type_at(r)?;
        let at = r.offset();
        let code = r.u8()?;
        let compression = Compression::from_code(code)
            .ok_or_else(|| Error::corrupt(at, format!("unknown compression code {code}")))?;
        let at = r.offset();
        let code = r.u8()?;
        let encoding = Encoding::from_code(code)
            .ok_or_else(|| Error::corrupt(at, format!("unknown encoding code {code}")))?;
        Ok(ChunkHeader {
            kind,
            multi_page,
            measurement,
            data_size,
            data_type,
            compression,
            encoding,
        })
    }
}

/// Page header (spec §4.3). An empty page has `uncompressed_size == 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageHeader {
    pub uncompressed_size: u32,
    pub compressed_size: u32,
    pub statistics: Option<Statistics>,
}

impl PageHeader {
    pub fn is_empty_page(&self) -> bool {
        self.uncompressed_size == 0
    }

    pub fn serialize(&self, out: &mut Vec<u8>) {
        out.put_uvarint(self.uncompressed_size);
        if self.uncompressed_size == 0 {
            return;
        }
        out.put_uvarint(self.compressed_size);
        if let Some(s) = &self.statistics {
            s.serialize(out);
        }
    }

    pub fn deserialize(r: &mut ByteReader<'_>, data_type: DataType, multi_page: bool) -> Result<Self> {
        let uncompressed_size = r.uvarint()?;
        if uncompressed_size == 0 {
            return Ok(PageHeader {
                uncompressed_size,
                compressed_size: 0,
                statistics: None,
            });
        }
        let compressed_size = r.uvarint()?;
        let statistics = if multi_page {
            Some(Statistics::deserialize(data_type, r)?)
        } else {
            None
        };
        Ok(PageHeader {
            uncompressed_size,
            compressed_size,
            statistics,
        })
    }
}

/// Where a chunk lives and, for multi-chunk series, its statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkMetadata {
    pub offset_of_chunk_header: u64,
    pub statistics: Statistics,
}

/// One series' entry in the index region (spec §6).
#[derive(Debug, Clone, PartialEq)]
pub struct TimeseriesMetadata {
    pub measurement: String,
    pub data_type: DataType,
    pub kind: ChunkKind,
    pub statistics: Statistics,
    /// Chunks in offset order. For a single-chunk series the chunk's
    /// statistics are the series statistics.
    pub chunks: Vec<ChunkMetadata>,
}

impl TimeseriesMetadata {
    pub fn serialize(&self, out: &mut Vec<u8>) {
        let multi = self.chunks.len() > 1;
        out.put_u8(u8::from(multi) | self.kind.mask());
        out.put_varstr(Some(self.measurement.as_bytes()));
        out.put_u8(self.data_type.code());
        let mut list = Vec::with_capacity(self.chunks.len() * 8);
        for c in &self.chunks {
            list.put_i64(c.offset_of_chunk_header as i64);
            if multi {
                c.statistics.serialize(&mut list);
            }
        }
        out.put_uvarint(list.len() as u32);
        self.statistics.serialize(out);
        out.extend_from_slice(&list);
    }

    pub fn deserialize(r: &mut ByteReader<'_>) -> Result<Self> {
        let type_byte = r.u8()?;
        let multi = type_byte & 0x3F != 0;
        let measurement = r.varstr_nonnull()?;
        let data_type = data_type_at(r)?;
        let list_size = r.length(1)?;
        let statistics = Statistics::deserialize(data_type, r)?;
        let list_offset = r.offset();
        let mut list = ByteReader::at(r.bytes(list_size)?, list_offset);
        let mut chunks = Vec::new();
        while !list.is_empty() {
            let at = list.offset();
            let offset = list.i64()?;
            if offset < 0 {
                return Err(Error::corrupt(at, format!("negative chunk offset {offset}")));
            }
            let stats = if multi {
                Statistics::deserialize(data_type, &mut list)?
            } else {
                statistics.clone()
            };
            chunks.push(ChunkMetadata {
                offset_of_chunk_header: offset as u64,
                statistics: stats,
            });
        }
        let kind = if data_type == DataType::Vector {
            ChunkKind::AlignedTime
        } else if type_byte & VALUE_COLUMN_MASK != 0 {
            ChunkKind::AlignedValue
        } else {
            // The C++ writer sets no mask bits; callers that know the
            // device is aligned fix the kind up.
            ChunkKind::NonAligned
        };
        Ok(TimeseriesMetadata {
            measurement,
            data_type,
            kind,
            statistics,
            chunks,
        })
    }
}

/// Node types of the metadata index tree (spec §1, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexNodeType {
    InternalDevice,
    LeafDevice,
    InternalMeasurement,
    LeafMeasurement,
}

impl IndexNodeType {
    pub fn code(self) -> u8 {
        match self {
            IndexNodeType::InternalDevice => 0,
            IndexNodeType::LeafDevice => 1,
            IndexNodeType::InternalMeasurement => 2,
            IndexNodeType::LeafMeasurement => 3,
        }
    }

    pub fn is_device_level(self) -> bool {
        matches!(self, IndexNodeType::InternalDevice | IndexNodeType::LeafDevice)
    }
}

/// The key of an index entry: a device id or a measurement name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexKey {
    Device(DeviceId),
    Measurement(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub key: IndexKey,
    pub offset: u64,
}

/// A metadata index node (spec §7).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexNode {
    pub entries: Vec<IndexEntry>,
    pub end_offset: u64,
    pub node_type: IndexNodeType,
}

impl IndexNode {
    /// Byte range `[start, end)` of child `i`.
    pub fn child_range(&self, i: usize) -> (u64, u64) {
        let start = self.entries[i].offset;
        let end = self
            .entries
            .get(i + 1)
            .map_or(self.end_offset, |e| e.offset);
        (start, end)
    }

    pub fn serialize(&self, out: &mut Vec<u8>) {
        out.put_uvarint(self.entries.len() as u32);
        for e in &self.entries {
            match &e.key {
                IndexKey::Device(d) => d.serialize(out),
                IndexKey::Measurement(m) => out.put_varstr(Some(m.as_bytes())),
            }
            out.put_i64(e.offset as i64);
        }
        out.put_i64(self.end_offset as i64);
        out.put_u8(self.node_type.code());
    }

    /// `v3` selects version-3 device keys (one `varstr` path).
    pub fn deserialize(r: &mut ByteReader<'_>, device_level: bool, v3: bool) -> Result<Self> {
        let n = r.length(9)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let key = if device_level {
                IndexKey::Device(if v3 {
                    DeviceId::deserialize_v3(r)?
                } else {
                    DeviceId::deserialize(r)?
                })
            } else {
                IndexKey::Measurement(r.varstr_nonnull()?)
            };
            let at = r.offset();
            let offset = r.i64()?;
            if offset < 0 {
                return Err(Error::corrupt(at, format!("negative index offset {offset}")));
            }
            entries.push(IndexEntry {
                key,
                offset: offset as u64,
            });
        }
        let at = r.offset();
        let end_offset = r.i64()?;
        let type_at = r.offset();
        let code = r.u8()?;
        let node_type = match code {
            0 => IndexNodeType::InternalDevice,
            1 => IndexNodeType::LeafDevice,
            2 => IndexNodeType::InternalMeasurement,
            3 => IndexNodeType::LeafMeasurement,
            _ => return Err(Error::corrupt(type_at, format!("unknown index node type {code}"))),
        };
        if node_type.is_device_level() != device_level {
            return Err(Error::corrupt(type_at, format!("index node type {code} at the wrong level")));
        }
        let last = entries.last().map_or(0, |e| e.offset as i64);
        if end_offset < last {
            return Err(Error::corrupt(at, format!("index node end offset {end_offset} before its last child {last}")));
        }
        for w in entries.windows(2) {
            if w[1].offset < w[0].offset {
                return Err(Error::corrupt(at, "index node children out of order"));
            }
        }
        Ok(IndexNode {
            entries,
            end_offset: end_offset as u64,
            node_type,
        })
    }
}

/// Column category in a table schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnCategory {
    Tag,
    Field,
    Attribute,
    Other(i32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    pub name: String,
    pub data_type: DataType,
    pub encoding: u8,
    pub compression: u8,
    pub properties: Vec<(String, String)>,
    pub category: ColumnCategory,
}

/// A table-model table's schema (spec §8.2).
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    pub columns: Vec<ColumnSchema>,
}

impl TableSchema {
    fn deserialize(r: &mut ByteReader<'_>) -> Result<Self> {
        let n = r.length(11)?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.i32str()?;
            let data_type = data_type_at(r)?;
            let encoding = r.u8()?;
            let compression = r.u8()?;
            let at = r.offset();
            let props = r.i32()?;
            if props < 0 || props as usize > r.remaining() / 8 {
                return Err(Error::corrupt(at, format!("absurd property count {props}")));
            }
            let mut properties = Vec::with_capacity(props as usize);
            for _ in 0..props {
                properties.push((r.i32str()?, r.i32str()?));
            }
            let category = match r.i32()? {
                0 => ColumnCategory::Tag,
                1 => ColumnCategory::Field,
                2 => ColumnCategory::Attribute,
                other => ColumnCategory::Other(other),
            };
            columns.push(ColumnSchema {
                name,
                data_type,
                encoding,
                compression,
                properties,
                category,
            });
        }
        Ok(TableSchema { columns })
    }
}

/// The file's root structure (spec §8).
#[derive(Debug, Clone, PartialEq)]
pub struct TsFileMetadata {
    /// Device-level index root per table name, in table order.
    pub table_roots: BTreeMap<String, IndexNode>,
    pub table_schemas: BTreeMap<String, TableSchema>,
    pub meta_offset: u64,
    pub bloom_filter: Option<BloomFilter>,
    pub properties: Vec<(String, Option<String>)>,
}

impl TsFileMetadata {
    pub fn serialize(&self, out: &mut Vec<u8>) {
        out.put_uvarint(self.table_roots.len() as u32);
        for (name, root) in &self.table_roots {
            out.put_varstr(Some(name.as_bytes()));
            root.serialize(out);
        }
        // Arbor writes tree-model files only: no table schemas.
        out.put_uvarint(0);
        out.put_i64(self.meta_offset as i64);
        match &self.bloom_filter {
            Some(b) => b.serialize(out),
            None => out.put_uvarint(0),
        }
        // Both Apache writers write the count zigzag-encoded (spec §8.4).
        out.put_varint(self.properties.len() as i32);
        for (k, v) in &self.properties {
            out.put_varstr(Some(k.as_bytes()));
            out.put_varstr(v.as_deref().map(str::as_bytes));
        }
    }

    pub fn deserialize(r: &mut ByteReader<'_>, version: u8) -> Result<Self> {
        let v3 = version == 3;
        let mut table_roots = BTreeMap::new();
        if v3 {
            table_roots.insert(String::new(), IndexNode::deserialize(r, true, true)?);
        } else {
            let n = r.length(2)?;
            for _ in 0..n {
                let name = r.varstr_nonnull()?;
                table_roots.insert(name, IndexNode::deserialize(r, true, false)?);
            }
        }
        let mut table_schemas = BTreeMap::new();
        if !v3 {
            let n = r.length(2)?;
            for _ in 0..n {
                let name = r.varstr_nonnull()?;
                table_schemas.insert(name, TableSchema::deserialize(r)?);
            }
        }
        let at = r.offset();
        let meta_offset = r.i64()?;
        if meta_offset < 0 {
            return Err(Error::corrupt(at, format!("negative metaOffset {meta_offset}")));
        }
        let bloom_filter = if r.is_empty() {
            None
        } else {
            BloomFilter::deserialize(r)?
        };
        let mut properties = Vec::new();
        if !v3 && !r.is_empty() {
            let at = r.offset();
            let n = r.varint()?;
            if n < 0 || n as usize > r.remaining() {
                return Err(Error::corrupt(at, format!("absurd property count {n}")));
            }
            for _ in 0..n {
                let k = r.varstr_nonnull()?;
                let v = r.varstr()?;
                properties.push((k, v));
            }
        }
        Ok(TsFileMetadata {
            table_roots,
            table_schemas,
            meta_offset: meta_offset as u64,
            bloom_filter,
            properties,
        })
    }

    /// The default properties both Apache writers emit.
    pub fn default_properties() -> Vec<(String, Option<String>)> {
        vec![
            ("encryptKey".into(), None),
            ("encryptType".into(), Some("org.apache.tsfile.encrypt.UNENCRYPTED".into())),
            ("encryptLevel".into(), Some("0".into())),
        ]
    }
}

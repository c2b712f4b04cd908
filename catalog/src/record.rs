//! Schema changes as records, and their binary form. The schema log and the
//! snapshot are both sequences of these records (see `log.rs` for framing).
//!
//! Payload layout (little-endian; `str` = u32 length + UTF-8 bytes;
//! `path` = u16 node count + that many `str`; `map` = u32 count + key/value `str`s):
//!
//! ```text
//! 1 CreateDatabase   id u64, path
//! 2 CreateSeries     device_id u64, device path, aligned u8, count u32, then per series:
//!                    id u64, name str, data_type u8, encoding u8, compression u8,
//!                    has_alias u8 [alias str], tags map, attributes map
//! 5 CreateSeries     as 2, each series then followed by has_max_point_number u8
//!                    [max_point_number u8] (written only when a series has one,
//!                    so logs without it read as before)
//! 3 DropDatabase     id u64
//! 4 DeleteSeries     count u32, ids u64...
//! 6 SetTtl           database id u64, has_ttl u8 [ttl_ms i64] (IoTDB's TTL, in ms)
//! 16 SnapshotHeader  generation u64, next_database_id u64, next_device_id u64, next_series_id u64
//! 17 SnapshotEnd     record count u64 (records between header and end)
//! ```
//! Codes are TsFile's own type/encoding/compression codes.

use std::collections::BTreeMap;

use tsfile::{Compression, DataType, Encoding};

use crate::path::MAX_PATH_LEVELS;

/// A series inside a [`Record::CreateSeries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewSeries {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) data_type: DataType,
    pub(crate) encoding: Encoding,
    pub(crate) compression: Compression,
    pub(crate) alias: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) attributes: BTreeMap<String, String>,
    /// IoTDB's `MAX_POINT_NUMBER`: decimal digits kept by RLE/TS_2DIFF for FLOAT/DOUBLE.
    pub(crate) max_point_number: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    CreateDatabase {
        id: u64,
        path: Vec<String>,
    },
    /// Creates the device (with `device_id`) if it is not one yet, then the series.
    CreateSeries {
        device_id: u64,
        device: Vec<String>,
        aligned: bool,
        series: Vec<NewSeries>,
    },
    DropDatabase {
        id: u64,
    },
    DeleteSeries {
        ids: Vec<u64>,
    },
    /// A database's TTL in milliseconds (`None`: the server's default).
    SetTtl {
        id: u64,
        ttl_ms: Option<i64>,
    },
    SnapshotHeader {
        generation: u64,
        next_database_id: u64,
        next_device_id: u64,
        next_series_id: u64,
    },
    SnapshotEnd {
        records: u64,
    },
}

const CREATE_DATABASE: u8 = 1;
const CREATE_SERIES: u8 = 2;
const DROP_DATABASE: u8 = 3;
const DELETE_SERIES: u8 = 4;
const CREATE_SERIES_WITH_PROPS: u8 = 5;
const SET_TTL: u8 = 6;
const SNAPSHOT_HEADER: u8 = 16;
const SNAPSHOT_END: u8 = 17;

impl Record {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Record::CreateDatabase { id, path } => {
                out.push(CREATE_DATABASE);
                put_u64(out, *id);
                put_path(out, path);
            }
            Record::CreateSeries {
                device_id,
                device,
                aligned,
                series,
            } => {
                let props = series.iter().any(|s| s.max_point_number.is_some());
                out.push(if props {
                    CREATE_SERIES_WITH_PROPS
                } else {
                    CREATE_SERIES
                });
                put_u64(out, *device_id);
                put_path(out, device);
                out.push(u8::from(*aligned));
                put_u32(out, len_u32(series.len()));
                for s in series {
                    put_u64(out, s.id);
                    put_str(out, &s.name);
                    out.push(s.data_type.code());
                    out.push(s.encoding.code());
                    out.push(s.compression.code());
                    match &s.alias {
                        Some(a) => {
                            out.push(1);
                            put_str(out, a);
                        }
                        None => out.push(0),
                    }
                    put_map(out, &s.tags);
                    put_map(out, &s.attributes);
                    if props {
                        match s.max_point_number {
                            Some(n) => out.extend_from_slice(&[1, n]),
                            None => out.push(0),
                        }
                    }
                }
            }
            Record::DropDatabase { id } => {
                out.push(DROP_DATABASE);
                put_u64(out, *id);
            }
            Record::DeleteSeries { ids } => {
                out.push(DELETE_SERIES);
                put_u32(out, len_u32(ids.len()));
                for id in ids {
                    put_u64(out, *id);
                }
            }
            Record::SetTtl { id, ttl_ms } => {
                out.push(SET_TTL);
                put_u64(out, *id);
                match ttl_ms {
                    Some(ms) => {
                        out.push(1);
                        out.extend_from_slice(&ms.to_le_bytes());
                    }
                    None => out.push(0),
                }
            }
            Record::SnapshotHeader {
                generation,
                next_database_id,
                next_device_id,
                next_series_id,
            } => {
                out.push(SNAPSHOT_HEADER);
                put_u64(out, *generation);
                put_u64(out, *next_database_id);
                put_u64(out, *next_device_id);
                put_u64(out, *next_series_id);
            }
            Record::SnapshotEnd { records } => {
                out.push(SNAPSHOT_END);
                put_u64(out, *records);
            }
        }
    }

    /// Decode one payload. The error names what is wrong; the caller adds
    /// file and offset.
    pub(crate) fn decode(payload: &[u8]) -> Result<Record, String> {
        let mut r = Reader {
            buf: payload,
            pos: 0,
        };
        let record = match r.u8()? {
            CREATE_DATABASE => Record::CreateDatabase {
                id: r.u64()?,
                path: r.path()?,
            },
            op @ (CREATE_SERIES | CREATE_SERIES_WITH_PROPS) => {
                let device_id = r.u64()?;
                let device = r.path()?;
                let aligned = r.bool()?;
                // Each series needs at least 23 bytes: bounds the allocation.
                let n = r.count(23)?;
                let mut series = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = r.u64()?;
                    let name = r.str()?;
                    let code = r.u8()?;
                    let data_type = DataType::from_code(code)
                        .filter(|t| *t != DataType::Vector)
                        .ok_or_else(|| format!("unknown data type code {code}"))?;
                    let code = r.u8()?;
                    let encoding = Encoding::from_code(code)
                        .ok_or_else(|| format!("unknown encoding code {code}"))?;
                    let code = r.u8()?;
                    let compression = Compression::from_code(code)
                        .ok_or_else(|| format!("unknown compression code {code}"))?;
                    let alias = if r.bool()? { Some(r.str()?) } else { None };
                    let tags = r.map()?;
                    let attributes = r.map()?;
                    let max_point_number = if op == CREATE_SERIES_WITH_PROPS && r.bool()? {
                        Some(r.u8()?)
                    } else {
                        None
                    };
                    series.push(NewSeries {
                        id,
                        name,
                        data_type,
                        encoding,
                        compression,
                        alias,
                        tags,
                        attributes,
                        max_point_number,
                    });
                }
                Record::CreateSeries {
                    device_id,
                    device,
                    aligned,
                    series,
                }
            }
            DROP_DATABASE => Record::DropDatabase { id: r.u64()? },
            DELETE_SERIES => {
                let n = r.count(8)?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(r.u64()?);
                }
                Record::DeleteSeries { ids }
            }
            SET_TTL => Record::SetTtl {
                id: r.u64()?,
                ttl_ms: if r.bool()? {
                    Some(r.u64()? as i64)
                } else {
                    None
                },
            },
            SNAPSHOT_HEADER => Record::SnapshotHeader {
                generation: r.u64()?,
                next_database_id: r.u64()?,
                next_device_id: r.u64()?,
                next_series_id: r.u64()?,
            },
            SNAPSHOT_END => Record::SnapshotEnd { records: r.u64()? },
            op => return Err(format!("unknown record type {op}")),
        };
        if r.pos != payload.len() {
            return Err(format!(
                "{} unexpected bytes after record",
                payload.len() - r.pos
            ));
        }
        Ok(record)
    }
}

/// Lengths in records are u32; the log refuses payloads past
/// `MAX_RECORD_BYTES` long before a count could overflow.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, len_u32(s.len()));
    out.extend_from_slice(s.as_bytes());
}

fn put_path(out: &mut Vec<u8>, nodes: &[String]) {
    // Paths have at most MAX_PATH_LEVELS nodes, well inside u16.
    out.extend_from_slice(&u16::try_from(nodes.len()).unwrap_or(u16::MAX).to_le_bytes());
    for n in nodes {
        put_str(out, n);
    }
}

fn put_map(out: &mut Vec<u8>, map: &BTreeMap<String, String>) {
    put_u32(out, len_u32(map.len()));
    for (k, v) in map {
        put_str(out, k);
        put_str(out, v);
    }
}

/// Bounds-checked cursor over one payload.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("record truncated at payload byte {}", self.pos))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn bool(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("invalid flag byte {b}")),
        }
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// An element count, checked against the bytes left so a damaged count
    /// cannot make us allocate gigabytes.
    fn count(&mut self, min_element_bytes: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_element_bytes) > self.buf.len() - self.pos {
            return Err(format!("count {n} exceeds the record"));
        }
        Ok(n)
    }

    fn str(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }

    fn path(&mut self) -> Result<Vec<String>, String> {
        let n = usize::from(u16::from_le_bytes(self.array()?));
        if n == 0 || n > MAX_PATH_LEVELS {
            return Err(format!("path with {n} nodes"));
        }
        (0..n).map(|_| self.str()).collect()
    }

    fn map(&mut self) -> Result<BTreeMap<String, String>, String> {
        let n = self.count(8)?;
        let mut map = BTreeMap::new();
        for _ in 0..n {
            let k = self.str()?;
            let v = self.str()?;
            map.insert(k, v);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: Record) {
        let mut buf = Vec::new();
        r.encode(&mut buf);
        assert_eq!(Record::decode(&buf).unwrap(), r);
        // Every strict prefix fails to decode rather than panicking.
        for cut in 0..buf.len() {
            assert!(Record::decode(&buf[..cut]).is_err());
        }
    }

    #[test]
    fn records_round_trip() {
        round_trip(Record::CreateDatabase {
            id: 7,
            path: vec!["root".into(), "ln".into()],
        });
        round_trip(Record::CreateSeries {
            device_id: 3,
            device: vec!["root".into(), "ln".into(), "d 1".into()],
            aligned: true,
            series: vec![
                NewSeries {
                    id: 10,
                    name: "s1".into(),
                    data_type: DataType::Double,
                    encoding: Encoding::Gorilla,
                    compression: Compression::Lz4,
                    alias: Some("temp".into()),
                    tags: [("unit".to_string(), "C".to_string())].into(),
                    attributes: [("owner".to_string(), "x".to_string())].into(),
                    max_point_number: Some(3),
                },
                NewSeries {
                    id: 11,
                    name: "s2".into(),
                    data_type: DataType::Text,
                    encoding: Encoding::Plain,
                    compression: Compression::Zstd,
                    alias: None,
                    tags: BTreeMap::new(),
                    attributes: BTreeMap::new(),
                    max_point_number: None,
                },
            ],
        });
        round_trip(Record::DropDatabase { id: 1 });
        round_trip(Record::SetTtl {
            id: 1,
            ttl_ms: Some(3_600_000),
        });
        round_trip(Record::SetTtl {
            id: 2,
            ttl_ms: None,
        });
        round_trip(Record::DeleteSeries { ids: vec![1, 2, 3] });
        round_trip(Record::SnapshotHeader {
            generation: 2,
            next_database_id: 3,
            next_device_id: 4,
            next_series_id: 5,
        });
        round_trip(Record::SnapshotEnd { records: 9 });
    }

    #[test]
    fn rejects_unknown_codes() {
        assert!(Record::decode(&[99]).is_err());
        let mut buf = Vec::new();
        Record::DropDatabase { id: 1 }.encode(&mut buf);
        buf.push(0);
        assert!(Record::decode(&buf).is_err());
        // A huge count in a short record is refused without allocating.
        let mut buf = vec![DELETE_SERIES];
        buf.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Record::decode(&buf).is_err());
    }
}

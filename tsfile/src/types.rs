//! Data types, encodings and compression codes (format spec §1), and the
//! columnar value container used by encoders, decoders, writer and reader.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A TsFile data type. `Vector` only appears as the time column of an aligned device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Boolean,
    Int32,
    Int64,
    Float,
    Double,
    Text,
    Vector,
    Timestamp,
    Date,
    Blob,
    String,
}

impl DataType {
    /// Every type a series can have (excludes `Vector`).
    pub const ALL: [DataType; 10] = [
        DataType::Boolean,
        DataType::Int32,
        DataType::Int64,
        DataType::Float,
        DataType::Double,
        DataType::Text,
        DataType::String,
        DataType::Blob,
        DataType::Timestamp,
        DataType::Date,
    ];

    pub fn code(self) -> u8 {
        match self {
            DataType::Boolean => 0,
            DataType::Int32 => 1,
            DataType::Int64 => 2,
            DataType::Float => 3,
            DataType::Double => 4,
            DataType::Text => 5,
            DataType::Vector => 6,
            DataType::Timestamp => 8,
            DataType::Date => 9,
            DataType::Blob => 10,
            DataType::String => 11,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => DataType::Boolean,
            1 => DataType::Int32,
            2 => DataType::Int64,
            3 => DataType::Float,
            4 => DataType::Double,
            5 => DataType::Text,
            6 => DataType::Vector,
            8 => DataType::Timestamp,
            9 => DataType::Date,
            10 => DataType::Blob,
            11 => DataType::String,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DataType::Boolean => "BOOLEAN",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Float => "FLOAT",
            DataType::Double => "DOUBLE",
            DataType::Text => "TEXT",
            DataType::Vector => "VECTOR",
            DataType::Timestamp => "TIMESTAMP",
            DataType::Date => "DATE",
            DataType::Blob => "BLOB",
            DataType::String => "STRING",
        }
    }

    /// The physical representation of values of this type.
    pub fn physical(self) -> PhysicalType {
        match self {
            DataType::Boolean => PhysicalType::Boolean,
            DataType::Int32 | DataType::Date => PhysicalType::Int32,
            DataType::Int64 | DataType::Timestamp | DataType::Vector => PhysicalType::Int64,
            DataType::Float => PhysicalType::Float,
            DataType::Double => PhysicalType::Double,
            DataType::Text | DataType::String | DataType::Blob => PhysicalType::Binary,
        }
    }

    /// Encodings Apache TsFile allows for this type and that this crate writes.
    pub fn writable_encodings(self) -> &'static [Encoding] {
        use Encoding::*;
        match self {
            DataType::Boolean => &[Plain, Rle],
            DataType::Int32 | DataType::Int64 | DataType::Timestamp | DataType::Date => {
                &[Plain, Rle, Ts2Diff, Gorilla, Zigzag, Chimp]
            }
            DataType::Float | DataType::Double => &[Plain, Rle, Ts2Diff, Gorilla, Chimp],
            DataType::Text | DataType::String => &[Plain, Dictionary],
            DataType::Blob => &[Plain],
            DataType::Vector => &[Ts2Diff],
        }
    }

    /// The encoding Apache's writers use when none is asked for.
    pub fn default_encoding(self) -> Encoding {
        match self {
            DataType::Boolean | DataType::Text | DataType::String | DataType::Blob => {
                Encoding::Plain
            }
            DataType::Float | DataType::Double => Encoding::Gorilla,
            _ => Encoding::Ts2Diff,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DataType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let t = match s.to_ascii_uppercase().as_str() {
            "BOOLEAN" => DataType::Boolean,
            "INT32" => DataType::Int32,
            "INT64" => DataType::Int64,
            "FLOAT" => DataType::Float,
            "DOUBLE" => DataType::Double,
            "TEXT" => DataType::Text,
            "STRING" => DataType::String,
            "BLOB" => DataType::Blob,
            "TIMESTAMP" => DataType::Timestamp,
            "DATE" => DataType::Date,
            _ => return Err(Error::Unsupported(format!("unknown data type {s:?}"))),
        };
        Ok(t)
    }
}

/// How values of a data type are laid out in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhysicalType {
    Boolean,
    Int32,
    Int64,
    Float,
    Double,
    Binary,
}

/// Value encodings (spec §1, §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Plain,
    Dictionary,
    Rle,
    Diff,
    Ts2Diff,
    Bitmap,
    GorillaV1,
    Regular,
    Gorilla,
    Zigzag,
    Freq,
    Chimp,
    Sprintz,
    Rlbe,
    Camel,
}

impl Encoding {
    pub fn code(self) -> u8 {
        match self {
            Encoding::Plain => 0,
            Encoding::Dictionary => 1,
            Encoding::Rle => 2,
            Encoding::Diff => 3,
            Encoding::Ts2Diff => 4,
            Encoding::Bitmap => 5,
            Encoding::GorillaV1 => 6,
            Encoding::Regular => 7,
            Encoding::Gorilla => 8,
            Encoding::Zigzag => 9,
            Encoding::Freq => 10,
            Encoding::Chimp => 11,
            Encoding::Sprintz => 12,
            Encoding::Rlbe => 13,
            Encoding::Camel => 14,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Encoding::Plain,
            1 => Encoding::Dictionary,
            2 => Encoding::Rle,
            3 => Encoding::Diff,
            4 => Encoding::Ts2Diff,
            5 => Encoding::Bitmap,
            6 => Encoding::GorillaV1,
            7 => Encoding::Regular,
            8 => Encoding::Gorilla,
            9 => Encoding::Zigzag,
            10 => Encoding::Freq,
            11 => Encoding::Chimp,
            12 => Encoding::Sprintz,
            13 => Encoding::Rlbe,
            14 => Encoding::Camel,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Plain => "PLAIN",
            Encoding::Dictionary => "DICTIONARY",
            Encoding::Rle => "RLE",
            Encoding::Diff => "DIFF",
            Encoding::Ts2Diff => "TS_2DIFF",
            Encoding::Bitmap => "BITMAP",
            Encoding::GorillaV1 => "GORILLA_V1",
            Encoding::Regular => "REGULAR",
            Encoding::Gorilla => "GORILLA",
            Encoding::Zigzag => "ZIGZAG",
            Encoding::Freq => "FREQ",
            Encoding::Chimp => "CHIMP",
            Encoding::Sprintz => "SPRINTZ",
            Encoding::Rlbe => "RLBE",
            Encoding::Camel => "CAMEL",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encoding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let upper = s.to_ascii_uppercase();
        (0..=14u8)
            .filter_map(Encoding::from_code)
            .find(|e| e.name() == upper || (upper == "TS2DIFF" && *e == Encoding::Ts2Diff))
            .ok_or_else(|| Error::Unsupported(format!("unknown encoding {s:?}")))
    }
}

/// Page compression codes (spec §1, §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Uncompressed,
    Snappy,
    Gzip,
    Lzo,
    Lz4,
    Zstd,
    Lzma2,
}

impl Compression {
    /// Codecs this crate writes (LZO never; LZMA2 is read-only).
    pub const WRITABLE: [Compression; 5] = [
        Compression::Uncompressed,
        Compression::Snappy,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
    ];

    pub fn code(self) -> u8 {
        match self {
            Compression::Uncompressed => 0,
            Compression::Snappy => 1,
            Compression::Gzip => 2,
            Compression::Lzo => 3,
            Compression::Lz4 => 7,
            Compression::Zstd => 8,
            Compression::Lzma2 => 9,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Compression::Uncompressed,
            1 => Compression::Snappy,
            2 => Compression::Gzip,
            3 => Compression::Lzo,
            7 => Compression::Lz4,
            8 => Compression::Zstd,
            9 => Compression::Lzma2,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Uncompressed => "UNCOMPRESSED",
            Compression::Snappy => "SNAPPY",
            Compression::Gzip => "GZIP",
            Compression::Lzo => "LZO",
            Compression::Lz4 => "LZ4",
            Compression::Zstd => "ZSTD",
            Compression::Lzma2 => "LZMA2",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let upper = s.to_ascii_uppercase();
        [
            Compression::Uncompressed,
            Compression::Snappy,
            Compression::Gzip,
            Compression::Lzo,
            Compression::Lz4,
            Compression::Zstd,
            Compression::Lzma2,
        ]
        .into_iter()
        .find(|c| c.name() == upper || (upper == "NONE" && *c == Compression::Uncompressed))
        .ok_or_else(|| Error::Unsupported(format!("unknown compression {s:?}")))
    }
}

/// A column of non-null values of one physical type.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Boolean(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    Binary(Vec<Vec<u8>>),
}

impl Values {
    /// An empty column able to hold values of `data_type`.
    pub fn empty(data_type: DataType) -> Self {
        Self::with_capacity(data_type, 0)
    }

    pub fn with_capacity(data_type: DataType, n: usize) -> Self {
        match data_type.physical() {
            PhysicalType::Boolean => Values::Boolean(Vec::with_capacity(n)),
            PhysicalType::Int32 => Values::Int32(Vec::with_capacity(n)),
            PhysicalType::Int64 => Values::Int64(Vec::with_capacity(n)),
            PhysicalType::Float => Values::Float(Vec::with_capacity(n)),
            PhysicalType::Double => Values::Double(Vec::with_capacity(n)),
            PhysicalType::Binary => Values::Binary(Vec::with_capacity(n)),
        }
    }

    /// Remove every value, keeping the buffer for reuse.
    pub fn clear(&mut self) {
        match self {
            Values::Boolean(v) => v.clear(),
            Values::Int32(v) => v.clear(),
            Values::Int64(v) => v.clear(),
            Values::Float(v) => v.clear(),
            Values::Double(v) => v.clear(),
            Values::Binary(v) => v.clear(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Boolean(v) => v.len(),
            Values::Int32(v) => v.len(),
            Values::Int64(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Double(v) => v.len(),
            Values::Binary(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn physical(&self) -> PhysicalType {
        match self {
            Values::Boolean(_) => PhysicalType::Boolean,
            Values::Int32(_) => PhysicalType::Int32,
            Values::Int64(_) => PhysicalType::Int64,
            Values::Float(_) => PhysicalType::Float,
            Values::Double(_) => PhysicalType::Double,
            Values::Binary(_) => PhysicalType::Binary,
        }
    }

    /// The values at `range`, as a new column.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Values {
        match self {
            Values::Boolean(v) => Values::Boolean(v[range].to_vec()),
            Values::Int32(v) => Values::Int32(v[range].to_vec()),
            Values::Int64(v) => Values::Int64(v[range].to_vec()),
            Values::Float(v) => Values::Float(v[range].to_vec()),
            Values::Double(v) => Values::Double(v[range].to_vec()),
            Values::Binary(v) => Values::Binary(v[range].to_vec()),
        }
    }

    /// Append all of `other` (same physical type) to `self`.
    pub fn extend_from(&mut self, other: &Values) -> Result<()> {
        match (self, other) {
            (Values::Boolean(a), Values::Boolean(b)) => a.extend_from_slice(b),
            (Values::Int32(a), Values::Int32(b)) => a.extend_from_slice(b),
            (Values::Int64(a), Values::Int64(b)) => a.extend_from_slice(b),
            (Values::Float(a), Values::Float(b)) => a.extend_from_slice(b),
            (Values::Double(a), Values::Double(b)) => a.extend_from_slice(b),
            (Values::Binary(a), Values::Binary(b)) => a.extend_from_slice(b),
            (a, b) => {
                return Err(Error::InvalidWrite(format!(
                    "cannot append {:?} values to a {:?} column",
                    b.physical(),
                    a.physical()
                )))
            }
        }
        Ok(())
    }

    /// The value at `i` as a single [`Value`].
    pub fn get(&self, i: usize) -> Value {
        match self {
            Values::Boolean(v) => Value::Boolean(v[i]),
            Values::Int32(v) => Value::Int32(v[i]),
            Values::Int64(v) => Value::Int64(v[i]),
            Values::Float(v) => Value::Float(v[i]),
            Values::Double(v) => Value::Double(v[i]),
            Values::Binary(v) => Value::Binary(v[i].clone()),
        }
    }

    /// Append one value; it must match the column's physical type.
    pub fn push(&mut self, value: Value) -> Result<()> {
        match (self, value) {
            (Values::Boolean(a), Value::Boolean(b)) => a.push(b),
            (Values::Int32(a), Value::Int32(b)) => a.push(b),
            (Values::Int64(a), Value::Int64(b)) => a.push(b),
            (Values::Float(a), Value::Float(b)) => a.push(b),
            (Values::Double(a), Value::Double(b)) => a.push(b),
            (Values::Binary(a), Value::Binary(b)) => a.push(b),
            (a, b) => {
                return Err(Error::InvalidWrite(format!(
                    "cannot put {b:?} into a {:?} column",
                    a.physical()
                )))
            }
        }
        Ok(())
    }
}

/// One value of any physical type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Boolean(bool),
    Int32(i32),
    Int64(i64),
    Float(f32),
    Double(f64),
    Binary(Vec<u8>),
}

//! Value encodings (spec §11). One call encodes or decodes one page's
//! values; every page body is self-contained.
//!
//! Decoders take the bytes of one page's value section and the number of
//! values `n` the page must yield. They never panic on damaged input and
//! never allocate more than [`MAX_PAGE_VALUES`] values: errors carry the
//! offset within the given slice (the reader shifts it to a file offset).

pub(crate) mod camel;
pub(crate) mod chimp;
pub(crate) mod dictionary;
pub(crate) mod float;
pub(crate) mod gorilla;
pub(crate) mod plain;
pub(crate) mod rlbe;
pub(crate) mod rle;
pub(crate) mod sprintz;
pub(crate) mod ts2diff;
pub(crate) mod zigzag;

pub(crate) mod bits;

use crate::compression;
use crate::error::{Error, Result};
use crate::types::{Compression, DataType, Encoding, PhysicalType, Values};

/// Upper bound on the values one page may decode to; a length field that
/// claims more is treated as corruption.
pub const MAX_PAGE_VALUES: usize = 1 << 24;

/// Encoder settings that a series may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Decimal digits kept by FLOAT/DOUBLE under TS_2DIFF or RLE (spec §11.3).
    pub max_point_number: u32,
    /// How TS_2DIFF lays out its blocks (INT32/INT64/DATE/TIMESTAMP, and
    /// the integer stream of FLOAT/DOUBLE).
    pub ts2diff_layout: Ts2DiffLayout,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            max_point_number: 2,
            ts2diff_layout: Ts2DiffLayout::Blocks,
        }
    }
}

/// The two TS_2DIFF page layouts Arbor writes; both are plain TS_2DIFF to
/// every reader (spec §11.2: the block header carries the delta count and
/// the bit width).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ts2DiffLayout {
    /// Java's: blocks of 128 deltas, each packed at its tightest width.
    #[default]
    Blocks,
    /// One block per page with every delta in whole bytes (the width rounded
    /// up to a multiple of 8). Meant to be compressed with ZSTD, whose
    /// Huffman-coded literals then code each delta close to its entropy.
    BytePacked,
}

fn unsupported(encoding: Encoding, data_type: DataType) -> Error {
    Error::EncodingNotSupported {
        encoding,
        data_type,
    }
}

/// Check that `encoding` may be written for `data_type`.
pub fn check_writable(encoding: Encoding, data_type: DataType) -> Result<()> {
    if data_type.writable_encodings().contains(&encoding) {
        Ok(())
    } else {
        Err(unsupported(encoding, data_type))
    }
}

/// Encode one page of values of `data_type` with `encoding`, appending to `out`.
pub fn encode(
    encoding: Encoding,
    data_type: DataType,
    values: &Values,
    options: &EncodeOptions,
    out: &mut Vec<u8>,
) -> Result<()> {
    check_writable(encoding, data_type)?;
    if values.physical() != data_type.physical() {
        return Err(Error::InvalidWrite(format!(
            "values of physical type {:?} given for a {data_type} series",
            values.physical()
        )));
    }
    let mpn = options.max_point_number;
    match (encoding, values) {
        (Encoding::Plain, v) => plain::encode(v, out),
        (Encoding::Rle, Values::Boolean(v)) => rle::encode_bool(v, out),
        (Encoding::Rle, Values::Int32(v)) => rle::encode_i32(v, out),
        (Encoding::Rle, Values::Int64(v)) => rle::encode_i64(v, out),
        (Encoding::Rle | Encoding::Ts2Diff, Values::Float(v)) => {
            float::encode_f32(v, encoding, mpn, options.ts2diff_layout, out)
        }
        (Encoding::Rle | Encoding::Ts2Diff, Values::Double(v)) => {
            float::encode_f64(v, encoding, mpn, options.ts2diff_layout, out)
        }
        (Encoding::Ts2Diff, Values::Int32(v)) => match options.ts2diff_layout {
            Ts2DiffLayout::Blocks => ts2diff::encode_i32(v, out),
            Ts2DiffLayout::BytePacked => ts2diff::encode_i32_byte_packed(v, out),
        },
        (Encoding::Ts2Diff, Values::Int64(v)) => match options.ts2diff_layout {
            Ts2DiffLayout::Blocks => ts2diff::encode_i64(v, out),
            Ts2DiffLayout::BytePacked => ts2diff::encode_i64_byte_packed(v, out),
        },
        (Encoding::Gorilla, Values::Int32(v)) => gorilla::encode_i32(v, out),
        (Encoding::Gorilla, Values::Int64(v)) => gorilla::encode_i64(v, out),
        (Encoding::Gorilla, Values::Float(v)) => gorilla::encode_f32(v, out),
        (Encoding::Gorilla, Values::Double(v)) => gorilla::encode_f64(v, out),
        (Encoding::Chimp, Values::Int32(v)) => chimp::encode_i32(v, out),
        (Encoding::Chimp, Values::Int64(v)) => chimp::encode_i64(v, out),
        (Encoding::Chimp, Values::Float(v)) => chimp::encode_f32(v, out),
        (Encoding::Chimp, Values::Double(v)) => chimp::encode_f64(v, out),
        (Encoding::Zigzag, Values::Int32(v)) => zigzag::encode_i32(v, out),
        (Encoding::Zigzag, Values::Int64(v)) => zigzag::encode_i64(v, out),
        (Encoding::Dictionary, Values::Binary(v)) => dictionary::encode(v, out),
        _ => return Err(unsupported(encoding, data_type)),
    }
    Ok(())
}

/// Decode exactly `n` values of `data_type` encoded with `encoding`.
pub fn decode(encoding: Encoding, data_type: DataType, input: &[u8], n: usize) -> Result<Values> {
    if n > MAX_PAGE_VALUES {
        return Err(Error::corrupt(
            0,
            format!("page claims {n} values, more than the limit {MAX_PAGE_VALUES}"),
        ));
    }
    let physical = data_type.physical();
    let values = match (encoding, physical) {
        (Encoding::Plain, _) => plain::decode(data_type, input, n)?,
        (Encoding::Rle, PhysicalType::Boolean) => Values::Boolean(rle::decode_bool(input, n)?),
        (Encoding::Rle, PhysicalType::Int32) => Values::Int32(rle::decode_i32(input, n)?),
        (Encoding::Rle, PhysicalType::Int64) => Values::Int64(rle::decode_i64(input, n)?),
        (Encoding::Rle | Encoding::Ts2Diff, PhysicalType::Float) => {
            Values::Float(float::decode_f32(input, encoding, n)?)
        }
        (Encoding::Rle | Encoding::Ts2Diff, PhysicalType::Double) => {
            Values::Double(float::decode_f64(input, encoding, n)?)
        }
        (Encoding::Ts2Diff, PhysicalType::Int32) => Values::Int32(ts2diff::decode_i32(input, n)?),
        (Encoding::Ts2Diff, PhysicalType::Int64) => Values::Int64(ts2diff::decode_i64(input, n)?),
        (Encoding::Gorilla, PhysicalType::Int32) => Values::Int32(gorilla::decode_i32(input, n)?),
        (Encoding::Gorilla, PhysicalType::Int64) => Values::Int64(gorilla::decode_i64(input, n)?),
        (Encoding::Gorilla, PhysicalType::Float) => Values::Float(gorilla::decode_f32(input, n)?),
        (Encoding::Gorilla, PhysicalType::Double) => {
            Values::Double(gorilla::decode_f64(input, n)?)
        }
        (Encoding::Chimp, PhysicalType::Int32) => Values::Int32(chimp::decode_i32(input, n)?),
        (Encoding::Chimp, PhysicalType::Int64) => Values::Int64(chimp::decode_i64(input, n)?),
        (Encoding::Chimp, PhysicalType::Float) => Values::Float(chimp::decode_f32(input, n)?),
        (Encoding::Chimp, PhysicalType::Double) => Values::Double(chimp::decode_f64(input, n)?),
        (Encoding::Zigzag, PhysicalType::Int32) => Values::Int32(zigzag::decode_i32(input, n)?),
        (Encoding::Zigzag, PhysicalType::Int64) => Values::Int64(zigzag::decode_i64(input, n)?),
        (Encoding::Dictionary, PhysicalType::Binary) => {
            Values::Binary(dictionary::decode(input, n)?)
        }
        (Encoding::Sprintz, PhysicalType::Int32) => Values::Int32(sprintz::decode_i32(input, n)?),
        (Encoding::Sprintz, PhysicalType::Int64) => Values::Int64(sprintz::decode_i64(input, n)?),
        (Encoding::Rlbe, PhysicalType::Int32) => Values::Int32(rlbe::decode_i32(input, n)?),
        (Encoding::Rlbe, PhysicalType::Int64) => Values::Int64(rlbe::decode_i64(input, n)?),
        (Encoding::Rlbe, PhysicalType::Float) => Values::Float(rlbe::decode_f32(input, n)?),
        (Encoding::Rlbe, PhysicalType::Double) => Values::Double(rlbe::decode_f64(input, n)?),
        (Encoding::Camel, PhysicalType::Double) => Values::Double(camel::decode_f64(input, n)?),
        _ => {
            return Err(Error::Unsupported(format!(
                "reading {encoding} for data type {data_type}"
            )))
        }
    };
    if values.len() != n {
        return Err(Error::corrupt(
            input.len() as u64,
            format!("page yielded {} values, expected {n}", values.len()),
        ));
    }
    Ok(values)
}

/// Decode a time column (TS_2DIFF, INT64) to the end of its buffer.
pub fn decode_times(input: &[u8]) -> Result<Vec<i64>> {
    ts2diff::decode_i64_all(input)
}

/// Encode a time column (always TS_2DIFF, INT64).
pub fn encode_times(times: &[i64], out: &mut Vec<u8>) {
    ts2diff::encode_i64(times, out)
}

/// The smallest max point number under which TS_2DIFF stores every float
/// value bit-exactly, or `None` when no such number exists.
pub fn lossless_max_point_number(values: &Values) -> Option<u32> {
    match values {
        Values::Float(v) => float::lossless_max_point_number_f32(v),
        Values::Double(v) => float::lossless_max_point_number_f64(v),
        _ => None,
    }
}

/// Candidates for the automatic choice, most likely winners first. Only
/// pairs that both Apache readers (Java and C++ 2.5.0) decode are offered:
/// C++ has no decoder for BOOLEAN+RLE or DATE/TIMESTAMP+ZIGZAG.
fn auto_candidates(data_type: DataType) -> &'static [Encoding] {
    use Encoding::*;
    match data_type {
        DataType::Date | DataType::Timestamp => return &[Ts2Diff, Gorilla, Rle, Chimp, Plain],
        DataType::Boolean => return &[Plain],
        _ => {}
    }
    match data_type.physical() {
        PhysicalType::Boolean => &[Plain],
        PhysicalType::Int32 | PhysicalType::Int64 => &[Ts2Diff, Gorilla, Rle, Zigzag, Chimp, Plain],
        PhysicalType::Float | PhysicalType::Double => &[Ts2Diff, Gorilla, Chimp, Plain],
        PhysicalType::Binary if data_type == DataType::Blob => &[Plain],
        PhysicalType::Binary => &[Dictionary, Plain],
    }
}

/// What the automatic choice settled on for one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub encoding: Encoding,
    pub options: EncodeOptions,
    pub compression: Compression,
}

/// ZSTD must beat the next best codec by this share of its size to be
/// chosen: it decodes several times slower than LZ4.
const ZSTD_MIN_GAIN: f64 = 0.03;

/// A candidate whose encoded size is this many times the smallest one so
/// far is not compressed to compare: no codec closes such a gap on encoded
/// numbers (PLAIN doubles against TS_2DIFF, say), and compressing costs.
const HOPELESS_RATIO: usize = 3;

/// Pick the lossless encoding and, among `compressions`, the codec that
/// make `sample` smallest once compressed (ZSTD as [`compression::compress_chosen`]
/// does it). FLOAT/DOUBLE may use TS_2DIFF only when `all` (the whole
/// chunk) fits a max point number exactly; that number is returned in the
/// options. `compressions` must not be empty.
pub fn choose(data_type: DataType, sample: &Values, all: &Values, compressions: &[Compression]) -> Choice {
    choose_among(data_type, auto_candidates(data_type), sample, all, compressions).unwrap_or(Choice {
        encoding: data_type.default_encoding(),
        options: EncodeOptions::default(),
        compression: compressions.first().copied().unwrap_or(Compression::Lz4),
    })
}

/// [`choose`] restricted to `encodings`; `None` when none of them stores
/// `all` losslessly (or `compressions` is empty).
pub fn choose_among(
    data_type: DataType,
    encodings: &[Encoding],
    sample: &Values,
    all: &Values,
    compressions: &[Compression],
) -> Option<Choice> {
    let mut best = None;
    let mut best_cost = f64::INFINITY;
    let mut smallest_raw = usize::MAX;
    let mut buf = Vec::new();
    let mut packed = Vec::new();
    let has_end = holds_gorilla_end_marker(all);
    let integer_stream = !matches!(data_type.physical(), PhysicalType::Boolean | PhysicalType::Binary);
    for &encoding in encodings {
        // Java's GORILLA/CHIMP readers stop at a value equal to the END
        // marker, so never choose them for data that holds one.
        if has_end && matches!(encoding, Encoding::Gorilla | Encoding::Chimp) {
            continue;
        }
        if check_writable(encoding, data_type).is_err() {
            continue;
        }
        let base = match (encoding, data_type.physical()) {
            (Encoding::Ts2Diff, PhysicalType::Float | PhysicalType::Double) => {
                match lossless_max_point_number(all) {
                    Some(mpn) => EncodeOptions { max_point_number: mpn, ..EncodeOptions::default() },
                    None => continue,
                }
            }
            _ => EncodeOptions::default(),
        };
        let layouts: &[Ts2DiffLayout] = if encoding == Encoding::Ts2Diff && integer_stream {
            &[Ts2DiffLayout::Blocks, Ts2DiffLayout::BytePacked]
        } else {
            &[Ts2DiffLayout::Blocks]
        };
        for &layout in layouts {
            let options = EncodeOptions { ts2diff_layout: layout, ..base };
            buf.clear();
            if encode(encoding, data_type, sample, &options, &mut buf).is_err() {
                continue;
            }
            if buf.len() > smallest_raw.saturating_mul(HOPELESS_RATIO) {
                continue;
            }
            smallest_raw = smallest_raw.min(buf.len());
            for &codec in compressions {
                // Whole-byte deltas only pay off under an entropy coder.
                if layout == Ts2DiffLayout::BytePacked && codec != Compression::Zstd {
                    continue;
                }
                let size = if codec == Compression::Uncompressed {
                    buf.len()
                } else {
                    packed.clear();
                    match compression::compress_chosen(codec, &buf, &mut packed) {
                        Ok(()) => packed.len(),
                        Err(_) => continue,
                    }
                };
                let cost = if codec == Compression::Zstd && compressions.len() > 1 {
                    size as f64 * (1.0 + ZSTD_MIN_GAIN)
                } else {
                    size as f64
                };
                if cost < best_cost {
                    best_cost = cost;
                    best = Some(Choice { encoding, options, compression: codec });
                }
            }
        }
    }
    best
}

/// Whether any value equals the END marker of GORILLA/CHIMP pages (spec §11.5).
fn holds_gorilla_end_marker(values: &Values) -> bool {
    match values {
        Values::Int32(v) => v.contains(&i32::MIN),
        Values::Int64(v) => v.contains(&i64::MIN),
        Values::Float(v) => v.iter().any(|x| x.to_bits() == 0x7FC0_0000),
        Values::Double(v) => v.iter().any(|x| x.to_bits() == 0x7FF8_0000_0000_0000),
        _ => false,
    }
}

/// Helpers shared by the decoders' unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    /// Bytes from a hex string (whitespace ignored).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// `count` pseudo-random byte strings of up to `max_len` bytes.
    pub(crate) fn garbage(seed: u32, count: usize, max_len: u32) -> Vec<Vec<u8>> {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        (0..count)
            .map(|_| {
                let len = next() % (max_len + 1);
                (0..len).map(|_| next() as u8).collect()
            })
            .collect()
    }
}

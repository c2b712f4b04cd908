//! TS_2DIFF (spec §11.2) for INT32/DATE and INT64/TIMESTAMP, including the
//! time column of every page (`decode_i64_all`). Also the integer stream
//! under FLOAT/DOUBLE TS_2DIFF (§11.3).
//!
//! Blocks hold 129 values (first value + 128 deltas) like Java's default,
//! the last block of a page fewer; or, in the byte-packed layout
//! ([`super::Ts2DiffLayout::BytePacked`]), the page is one block whose
//! deltas take whole bytes each.

use super::rle::{BitPacker, BitUnpacker};
use super::MAX_PAGE_VALUES;
use crate::error::{Error, Result};
use crate::io::{ByteReader, ByteWriter};

/// Deltas per block (Java `deltaBlockSize`).
const BLOCK_DELTAS: usize = 128;

/// Write one block. `deltas` are sign-extended to i64 for INT32 so that
/// `delta - min` is exact and never exceeds 32 bits. The packed width is
/// the deltas' bit length rounded up to a multiple of `width_step`
/// (1: tight, Java's choice; 8: whole bytes). Readers take the width from
/// the block header, so any width that holds every field is valid.
fn write_block(first: i64, deltas: &[i64], wide: bool, width_step: u32, out: &mut Vec<u8>) {
    let min = match deltas.iter().min() {
        Some(&m) => m,
        // Java leaves its "no delta yet" sentinel in a one-value block.
        None if wide => i64::MAX,
        None => i64::from(i32::MAX),
    };
    let all = deltas
        .iter()
        .fold(0u64, |acc, &d| acc | d.wrapping_sub(min) as u64);
    // Rounding up never passes the type's width: 32 and 64 are multiples of 8.
    let width = (64 - all.leading_zeros()).div_ceil(width_step) * width_step;
    out.put_i32(deltas.len() as i32);
    out.put_i32(width as i32);
    if wide {
        out.put_i64(min);
        out.put_i64(first);
    } else {
        out.put_i32(min as i32);
        out.put_i32(first as i32);
    }
    if width > 0 {
        let mut packer = BitPacker::new(out);
        for &d in deltas {
            packer.put(d.wrapping_sub(min) as u64, width);
        }
        packer.finish();
    }
}

pub(crate) fn encode_i32(v: &[i32], out: &mut Vec<u8>) {
    out.reserve(v.len().div_ceil(BLOCK_DELTAS + 1) * 16 + v.len() * 2);
    let mut deltas = [0i64; BLOCK_DELTAS];
    for block in v.chunks(BLOCK_DELTAS + 1) {
        let n = block.len() - 1;
        for (d, pair) in deltas.iter_mut().zip(block.windows(2)) {
            *d = i64::from(pair[1].wrapping_sub(pair[0]));
        }
        write_block(i64::from(block[0]), &deltas[..n], false, 1, out);
    }
}

pub(crate) fn encode_i64(v: &[i64], out: &mut Vec<u8>) {
    out.reserve(v.len().div_ceil(BLOCK_DELTAS + 1) * 24 + v.len() * 2);
    let mut deltas = [0i64; BLOCK_DELTAS];
    for block in v.chunks(BLOCK_DELTAS + 1) {
        let n = block.len() - 1;
        for (d, pair) in deltas.iter_mut().zip(block.windows(2)) {
            *d = pair[1].wrapping_sub(pair[0]);
        }
        write_block(block[0], &deltas[..n], true, 1, out);
    }
}

/// The byte-packed layout: the whole page is one block (the format lets a
/// block hold any number of deltas; Java and C++ read the count from the
/// block header) and every delta takes whole bytes. Bigger than
/// [`encode_i32`] as it stands, but a byte-wise entropy coder (ZSTD's
/// Huffman literals) then sees one symbol per delta and gets close to the
/// deltas' entropy, where tight bit fields straddle bytes and defeat it.
pub(crate) fn encode_i32_byte_packed(v: &[i32], out: &mut Vec<u8>) {
    let Some(&first) = v.first() else { return };
    let deltas: Vec<i64> = v.windows(2).map(|p| i64::from(p[1].wrapping_sub(p[0]))).collect();
    out.reserve(16 + deltas.len() * 2);
    write_block(i64::from(first), &deltas, false, 8, out);
}

/// [`encode_i32_byte_packed`] for INT64 streams.
pub(crate) fn encode_i64_byte_packed(v: &[i64], out: &mut Vec<u8>) {
    let Some(&first) = v.first() else { return };
    let deltas: Vec<i64> = v.windows(2).map(|p| p[1].wrapping_sub(p[0])).collect();
    out.reserve(24 + deltas.len() * 2);
    write_block(first, &deltas, true, 8, out);
}

/// The two integer widths TS_2DIFF stores.
trait DeltaInt: Copy {
    const BITS: u32;
    fn read(r: &mut ByteReader<'_>) -> Result<Self>;
    /// Reinterpret the low `BITS` bits of a packed field.
    fn from_field(field: u64) -> Self;
    fn wrapping_add(self, other: Self) -> Self;
}

impl DeltaInt for i32 {
    const BITS: u32 = 32;
    fn read(r: &mut ByteReader<'_>) -> Result<Self> {
        r.i32()
    }
    #[inline]
    fn from_field(field: u64) -> Self {
        field as u32 as i32
    }
    #[inline]
    fn wrapping_add(self, other: Self) -> Self {
        i32::wrapping_add(self, other)
    }
}

impl DeltaInt for i64 {
    const BITS: u32 = 64;
    fn read(r: &mut ByteReader<'_>) -> Result<Self> {
        r.i64()
    }
    #[inline]
    fn from_field(field: u64) -> Self {
        field as i64
    }
    #[inline]
    fn wrapping_add(self, other: Self) -> Self {
        i64::wrapping_add(self, other)
    }
}

/// Decode blocks until `n` values (`Some(n)`), or until the input ends
/// (`None`, bounded by [`MAX_PAGE_VALUES`]). `base` offsets error positions.
fn decode_blocks<T: DeltaInt>(input: &[u8], n: Option<usize>, base: u64) -> Result<Vec<T>> {
    let want = n.unwrap_or(MAX_PAGE_VALUES);
    if want > MAX_PAGE_VALUES {
        return Err(Error::corrupt(base, format!("{want} values requested")));
    }
    let mut out: Vec<T> = Vec::with_capacity(n.unwrap_or(0));
    let mut r = ByteReader::at(input, base);
    while out.len() < want || n.is_none() {
        if r.is_empty() {
            if n.is_none() {
                break;
            }
            return Err(r.error(format!(
                "TS_2DIFF data ends after {} of {want} values",
                out.len()
            )));
        }
        let block_at = r.offset();
        let count = r.i32()?;
        let width = r.i32()?;
        if count < 0 {
            return Err(Error::corrupt(
                block_at,
                format!("TS_2DIFF block of {count} deltas"),
            ));
        }
        if width < 0 || width as u32 > T::BITS {
            return Err(Error::corrupt(
                block_at + 4,
                format!("TS_2DIFF bit width {width} outside 0..={}", T::BITS),
            ));
        }
        let width = width as u32;
        let min = T::read(&mut r)?;
        let first = T::read(&mut r)?;
        let packed_len = (count as u64 * u64::from(width)).div_ceil(8);
        if packed_len > r.remaining() as u64 {
            return Err(r.error(format!(
                "TS_2DIFF block needs {packed_len} packed bytes, {} remain",
                r.remaining()
            )));
        }
        let packed = r.bytes(packed_len as usize)?;
        let values = count as usize + 1;
        if n.is_none() && out.len() + values > MAX_PAGE_VALUES {
            return Err(Error::corrupt(
                block_at,
                format!("time column holds more than {MAX_PAGE_VALUES} values"),
            ));
        }
        // A block that runs past n is cut short, as Java's reader stops at n.
        let take = values.min(want - out.len());
        out.reserve(take);
        out.push(first);
        let mut prev = first;
        if width == 0 {
            out.extend((1..take).map(|_| {
                prev = prev.wrapping_add(min);
                prev
            }));
        } else if width == 8 {
            // The byte-packed layout: one field per byte, no bit juggling.
            out.extend(packed[..take.saturating_sub(1)].iter().map(|&b| {
                prev = prev
                    .wrapping_add(min)
                    .wrapping_add(T::from_field(u64::from(b)));
                prev
            }));
        } else {
            let mut fields = BitUnpacker::new(packed);
            out.extend((1..take).map(|_| {
                prev = prev
                    .wrapping_add(min)
                    .wrapping_add(T::from_field(fields.get(width)));
                prev
            }));
        }
    }
    Ok(out)
}

pub(crate) fn decode_i32(input: &[u8], n: usize) -> Result<Vec<i32>> {
    decode_i32_at(input, n, 0)
}

/// [`decode_i32`] for a slice that starts at offset `base` of the page.
pub(crate) fn decode_i32_at(input: &[u8], n: usize, base: u64) -> Result<Vec<i32>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    decode_blocks(input, Some(n), base)
}

pub(crate) fn decode_i64(input: &[u8], n: usize) -> Result<Vec<i64>> {
    decode_i64_at(input, n, 0)
}

/// [`decode_i64`] for a slice that starts at offset `base` of the page.
pub(crate) fn decode_i64_at(input: &[u8], n: usize, base: u64) -> Result<Vec<i64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    decode_blocks(input, Some(n), base)
}

/// Decode an INT64 column block by block to the end of `input` (a time
/// column, whose value count is not stored anywhere else).
pub(crate) fn decode_i64_all(input: &[u8]) -> Result<Vec<i64>> {
    decode_blocks(input, None, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn spec_example_timestamps_1_2_3() {
        let mut out = Vec::new();
        encode_i64(&[1, 2, 3], &mut out);
        assert_eq!(
            out,
            hex("00000002 00000000 0000000000000001 0000000000000001")
        );
        assert_eq!(decode_i64_all(&out).unwrap(), [1, 2, 3]);
        assert_eq!(decode_i64(&out, 3).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn one_value_block_uses_the_java_sentinel() {
        let mut out = Vec::new();
        encode_i32(&[7], &mut out);
        assert_eq!(out, hex("00000000 00000000 7fffffff 00000007"));
        assert_eq!(decode_i32(&out, 1).unwrap(), [7]);
    }

    #[test]
    fn packed_deltas_are_msb_first() {
        // deltas 1, 3, 2 -> min 1, fields 0, 2, 1 at width 2: 00 10 01 -> 0x24
        let mut out = Vec::new();
        encode_i32(&[10, 11, 14, 16], &mut out);
        assert_eq!(out, hex("00000003 00000002 00000001 0000000a 24"));
        assert_eq!(decode_i32(&out, 4).unwrap(), [10, 11, 14, 16]);
    }

    #[test]
    fn blocks_hold_129_values_and_wrap_at_extremes() {
        let v: Vec<i64> = (0..1000)
            .map(|i| match i % 7 {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => i * 1_000_003,
            })
            .collect();
        let mut out = Vec::new();
        encode_i64(&v, &mut out);
        assert_eq!(decode_i64_all(&out).unwrap(), v);
        let w: Vec<i32> = v.iter().map(|&x| x as i32).collect();
        let mut out = Vec::new();
        encode_i32(&w, &mut out);
        assert_eq!(decode_i32(&out, w.len()).unwrap(), w);
        // a full block holds 128 deltas
        assert_eq!(&out[..4], &128i32.to_be_bytes());
    }

    #[test]
    fn byte_packed_is_one_block_of_whole_byte_fields() {
        // deltas 1, 3, 2 -> min 1, fields 0, 2, 1 at width 8 (tight: 2)
        let mut out = Vec::new();
        encode_i32_byte_packed(&[10, 11, 14, 16], &mut out);
        assert_eq!(out, hex("00000003 00000008 00000001 0000000a 00 02 01"));
        assert_eq!(decode_i32(&out, 4).unwrap(), [10, 11, 14, 16]);
        // constant deltas keep width 0; one value keeps Java's sentinel
        let mut out = Vec::new();
        encode_i64_byte_packed(&[5, 7, 9], &mut out);
        assert_eq!(out, hex("00000002 00000000 0000000000000002 0000000000000005"));
        let mut out = Vec::new();
        encode_i64_byte_packed(&[5], &mut out);
        assert_eq!(out, hex("00000000 00000000 7fffffffffffffff 0000000000000005"));
        assert_eq!(decode_i64(&out, 1).unwrap(), [5]);
    }

    #[test]
    fn byte_packed_round_trips_long_pages_and_extremes() {
        let v: Vec<i64> = (0..10_000)
            .map(|i| match i % 11 {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => (i * 37) % 300 - 150,
            })
            .collect();
        let mut out = Vec::new();
        encode_i64_byte_packed(&v, &mut out);
        assert_eq!(&out[..8], hex("0000270f 00000040"));
        assert_eq!(decode_i64(&out, v.len()).unwrap(), v);
        let w: Vec<i32> = (0..10_000).map(|i| ((i * 7919) % 513) - 256).collect();
        let mut out = Vec::new();
        encode_i32_byte_packed(&w, &mut out);
        // range 512 needs 10 bits: two bytes per delta
        assert_eq!(&out[..8], hex("0000270f 00000010"));
        assert_eq!(decode_i32(&out, w.len()).unwrap(), w);
        let x: Vec<i32> = vec![i32::MIN, i32::MAX, 0, -1, i32::MIN];
        let mut out = Vec::new();
        encode_i32_byte_packed(&x, &mut out);
        assert_eq!(decode_i32(&out, x.len()).unwrap(), x);
    }

    #[test]
    fn absurd_block_counts_are_rejected_without_allocating() {
        // bitWidth 0, deltaCount 2^31-1: no packed bytes needed at all.
        let block = hex("7fffffff 00000000 0000000000000001 0000000000000001");
        let err = decode_i64_all(&block).unwrap_err();
        assert!(matches!(err, Error::Corrupt { offset: 0, .. }), "{err}");
        // With an explicit n, only n values are produced.
        assert_eq!(decode_i64(&block, 4).unwrap(), [1, 2, 3, 4]);
        // negative count, width too large, packed bytes missing
        for bad in [
            hex("ffffffff 00000000 0000000000000001 0000000000000001"),
            hex("00000001 00000041 0000000000000001 0000000000000001"),
            hex("00000009 00000008 0000000000000001 0000000000000001 0102"),
        ] {
            assert!(matches!(decode_i64_all(&bad), Err(Error::Corrupt { .. })));
        }
        assert!(matches!(
            decode_i32(&hex("00000001 00000021 00000000 00000000 ffffffffff"), 2),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error_not_a_panic() {
        let mut good = Vec::new();
        encode_i64(&(0..300).map(|i| i * i).collect::<Vec<_>>(), &mut good);
        for cut in 1..good.len() {
            assert!(decode_i64(&good[..cut], 300).is_err(), "cut {cut}");
        }
        let mut state = 0x9abc_def1u32;
        for _ in 0..2000 {
            let len = (state % 60) as usize;
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = decode_i64_all(&garbage);
            let _ = decode_i32(&garbage, 100);
        }
    }
}

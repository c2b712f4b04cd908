//! RLE / bit-packing hybrid (spec §11.4) for BOOLEAN, INT32/DATE and
//! INT64/TIMESTAMP, plus the fixed-width MSB-first bit packer and unpacker
//! that TS_2DIFF (§11.2) shares with it. DICTIONARY (§11.6) stores its
//! indices with [`encode_i32`] / [`decode_i32_at`].
//!
//! Writer choices: one package per page (split only past
//! [`MAX_PAGE_VALUES`] values); BOOLEAN/INT32 use RLE runs for 8 or more
//! equal values (as Java does), INT64 uses bit-packed runs only because Java
//! and C++ disagree on the byte order of INT64 RLE run values. An
//! incomplete bit-packed group only ever ends the package. The reader
//! accepts any mix of runs and packages; INT64 run values are big-endian
//! (Java's layout).

use super::MAX_PAGE_VALUES;
use crate::error::{Error, Result};
use crate::io::{ByteReader, ByteWriter};

/// Java's `RLE_MIN_REPEATED_NUM`: values per bit-packed group, and the
/// shortest repeat written as an RLE run.
const GROUP: usize = 8;
/// Java's `RLE_MAX_BIT_PACKED_NUM`: groups per bit-packed run.
const MAX_GROUPS_PER_RUN: usize = 63;
/// Java's `RLE_MAX_REPEATED_NUM`: longest RLE run.
const MAX_REPEAT: usize = 0x7FFF;

#[inline]
fn low_mask(width: u32) -> u64 {
    // Shifting a u128 keeps width == 64 well defined.
    ((1u128 << width) - 1) as u64
}

/// Appends fixed-width fields MSB-first (big-endian bit order).
pub(crate) struct BitPacker<'a> {
    out: &'a mut Vec<u8>,
    acc: u128,
    bits: u32,
}

impl<'a> BitPacker<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        BitPacker {
            out,
            acc: 0,
            bits: 0,
        }
    }

    /// Append the low `width` (0..=64) bits of `value`.
    #[inline]
    pub(crate) fn put(&mut self, value: u64, width: u32) {
        // `bits` < 64 before, so at most 127 bits are pending afterwards.
        self.acc = (self.acc << width) | u128::from(value & low_mask(width));
        self.bits += width;
        if self.bits >= 64 {
            self.bits -= 64;
            self.out
                .extend_from_slice(&((self.acc >> self.bits) as u64).to_be_bytes());
        }
    }

    /// Flush the pending bits, zero-padding the last byte.
    pub(crate) fn finish(self) {
        if self.bits > 0 {
            let left_aligned = (self.acc as u64) << (64 - self.bits);
            let n = self.bits.div_ceil(8) as usize;
            self.out.extend_from_slice(&left_aligned.to_be_bytes()[..n]);
        }
    }
}

/// Reads fixed-width MSB-first fields. Reading past the end yields zero
/// bits instead of panicking; callers check lengths beforehand.
pub(crate) struct BitUnpacker<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u128,
    bits: u32,
}

impl<'a> BitUnpacker<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitUnpacker {
            data,
            pos: 0,
            acc: 0,
            bits: 0,
        }
    }

    /// The next `width`-bit (0..=64) field.
    #[inline]
    pub(crate) fn get(&mut self, width: u32) -> u64 {
        if self.bits < width {
            self.refill(width);
        }
        self.bits -= width;
        ((self.acc >> self.bits) as u64) & low_mask(width)
    }

    #[cold]
    fn refill_tail(&mut self, width: u32) {
        while self.bits < width {
            match self.data.get(self.pos) {
                Some(&b) => {
                    self.acc = (self.acc << 8) | u128::from(b);
                    self.pos += 1;
                }
                None => self.acc <<= 8,
            }
            self.bits += 8;
        }
    }

    #[inline]
    fn refill(&mut self, width: u32) {
        // `bits` < width <= 64, so 64 more bits still fit in 128.
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.acc = (self.acc << 64) | u128::from(u64::from_be_bytes(word));
            self.bits += 64;
            self.pos += 8;
        } else {
            self.refill_tail(width);
        }
    }
}

/// Values the hybrid encoder can pack.
trait Word: Copy + PartialEq {
    fn bits(self) -> u64;
}

impl Word for bool {
    #[inline]
    fn bits(self) -> u64 {
        u64::from(self)
    }
}

impl Word for i32 {
    #[inline]
    fn bits(self) -> u64 {
        u64::from(self as u32)
    }
}

impl Word for i64 {
    #[inline]
    fn bits(self) -> u64 {
        self as u64
    }
}

/// Java's bit width: bit length of the largest value, at least 1.
fn bit_width<T: Word>(values: &[T]) -> u32 {
    let all = values.iter().fold(0u64, |acc, v| acc | v.bits());
    (64 - all.leading_zeros()).max(1)
}

/// Number of values equal to `values[0]` at the start, at most `max`.
#[inline]
fn run_length<T: Word>(values: &[T], max: usize) -> usize {
    let first = values[0];
    values
        .iter()
        .take(max)
        .position(|v| *v != first)
        .unwrap_or(values.len().min(max))
}

/// Write one package for `values` (non-empty).
fn encode_package<T: Word>(values: &[T], width: u32, rle_runs: bool, out: &mut Vec<u8>) {
    // Leave room for the longest uvarint length and close the gap afterwards,
    // rather than encoding the package twice.
    let start = out.len();
    out.extend_from_slice(&[0u8; 5]);
    out.push(width as u8);
    let value_bytes = width.div_ceil(8) as usize;
    let mut i = 0;
    while i < values.len() {
        let rest = &values[i..];
        if rle_runs {
            let r = run_length(rest, MAX_REPEAT);
            if r >= GROUP {
                out.put_uvarint((r as u32) << 1);
                // INT32/BOOLEAN run values are little-endian.
                out.extend_from_slice(&rest[0].bits().to_le_bytes()[..value_bytes]);
                i += r;
                continue;
            }
        }
        // A bit-packed run; the header (< 0x80, one byte) and the count of
        // the last group are filled in once the run is known.
        let header_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let mut groups = 0;
        let mut last;
        let mut packer = BitPacker::new(out);
        loop {
            let group = &values[i..values.len().min(i + GROUP)];
            for v in group {
                packer.put(v.bits(), width);
            }
            for _ in group.len()..GROUP {
                packer.put(0, width);
            }
            groups += 1;
            last = group.len();
            i += group.len();
            if i >= values.len() || groups == MAX_GROUPS_PER_RUN {
                break;
            }
            if rle_runs && run_length(&values[i..], GROUP) >= GROUP {
                break;
            }
        }
        packer.finish();
        out[header_at] = ((groups << 1) | 1) as u8;
        out[header_at + 1] = last as u8;
    }
    let mut len = (out.len() - start - 5) as u32;
    let mut k = 0;
    loop {
        let more = len >= 0x80;
        out[start + k] = (len as u8 & 0x7f) | if more { 0x80 } else { 0 };
        len >>= 7;
        k += 1;
        if !more {
            break;
        }
    }
    out.copy_within(start + 5.., start + k);
    out.truncate(out.len() - (5 - k));
}

fn encode_packages<T: Word>(values: &[T], rle_runs: bool, out: &mut Vec<u8>) {
    for chunk in values.chunks(MAX_PAGE_VALUES) {
        let width = bit_width(chunk);
        out.reserve(8 + chunk.len().div_ceil(GROUP) * (width as usize + 2));
        encode_package(chunk, width, rle_runs, out);
    }
}

pub(crate) fn encode_bool(v: &[bool], out: &mut Vec<u8>) {
    encode_packages(v, true, out);
}

pub(crate) fn encode_i32(v: &[i32], out: &mut Vec<u8>) {
    encode_packages(v, true, out);
}

pub(crate) fn encode_i64(v: &[i64], out: &mut Vec<u8>) {
    encode_packages(v, false, out);
}

/// Decode `n` values; `max_width` is 32 or 64, and INT64 (`max_width` 64)
/// run values are big-endian. `base` is the offset of `input[0]` for errors.
fn decode_hybrid<T>(
    input: &[u8],
    n: usize,
    base: u64,
    max_width: u32,
    convert: impl Fn(u64) -> T,
) -> Result<Vec<T>>
where
    T: Copy,
{
    if n > MAX_PAGE_VALUES {
        return Err(Error::corrupt(base, format!("{n} values requested")));
    }
    let mut out: Vec<T> = Vec::with_capacity(n);
    let mut r = ByteReader::at(input, base);
    while out.len() < n {
        if r.is_empty() {
            return Err(r.error(format!("RLE data ends after {} of {n} values", out.len())));
        }
        let len = r.length(1)?;
        let package_base = r.offset();
        let mut p = ByteReader::at(r.bytes(len)?, package_base);
        if p.is_empty() {
            continue; // Java writes an empty package for an empty page
        }
        let width = u32::from(p.u8()?);
        if width > max_width {
            return Err(p.error(format!("RLE bit width {width} exceeds {max_width}")));
        }
        let value_bytes = width.div_ceil(8) as usize;
        while !p.is_empty() && out.len() < n {
            let run_at = p.offset();
            let header = p.uvarint()?;
            let want = n - out.len();
            if header & 1 == 0 {
                let count = (header >> 1) as usize;
                if count == 0 {
                    return Err(Error::corrupt(run_at, "RLE run of length 0"));
                }
                let raw = p.bytes(value_bytes)?;
                let value = if max_width == 64 {
                    raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
                } else {
                    raw.iter()
                        .rev()
                        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
                };
                let v = convert(value);
                out.resize(out.len() + count.min(want), v);
            } else {
                let groups = (header >> 1) as usize;
                if groups == 0 {
                    return Err(Error::corrupt(run_at, "bit-packed run of 0 groups"));
                }
                let last = usize::from(p.u8()?);
                if last > GROUP {
                    return Err(Error::corrupt(
                        run_at,
                        format!("bit-packed run ends with {last} values in a group of 8"),
                    ));
                }
                let packed = p.bytes(groups * width as usize)?;
                let count = (groups - 1) * GROUP + last;
                let mut unpacker = BitUnpacker::new(packed);
                out.extend((0..count.min(want)).map(|_| convert(unpacker.get(width))));
            }
        }
    }
    Ok(out)
}

pub(crate) fn decode_bool(input: &[u8], n: usize) -> Result<Vec<bool>> {
    decode_hybrid(input, n, 0, 32, |v| v != 0)
}

pub(crate) fn decode_i32(input: &[u8], n: usize) -> Result<Vec<i32>> {
    decode_i32_at(input, n, 0)
}

/// [`decode_i32`] for a slice that starts at offset `base` of the page.
pub(crate) fn decode_i32_at(input: &[u8], n: usize, base: u64) -> Result<Vec<i32>> {
    decode_hybrid(input, n, base, 32, |v| v as u32 as i32)
}

pub(crate) fn decode_i64(input: &[u8], n: usize) -> Result<Vec<i64>> {
    decode_i64_at(input, n, 0)
}

/// [`decode_i64`] for a slice that starts at offset `base` of the page.
pub(crate) fn decode_i64_at(input: &[u8], n: usize, base: u64) -> Result<Vec<i64>> {
    decode_hybrid(input, n, base, 64, |v| v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc_i32(v: &[i32]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_i32(v, &mut out);
        out
    }

    #[test]
    fn spec_example_1_2_3() {
        let bytes = enc_i32(&[1, 2, 3]);
        assert_eq!(bytes, [0x05, 0x02, 0x03, 0x03, 0x6c, 0x00]);
        assert_eq!(decode_i32(&bytes, 3).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn long_repeat_becomes_an_rle_run() {
        let mut v = vec![3, 1];
        v.extend(std::iter::repeat_n(5, 20));
        let bytes = enc_i32(&v);
        // width 3; bit-packed group [3,1,5,5,5,5,5,5] then an RLE run of 14 fives.
        assert_eq!(bytes[1], 3);
        assert_eq!(&bytes[2..4], &[0x03, 0x08]);
        assert_eq!(&bytes[7..], &[14 << 1, 5]);
        assert_eq!(decode_i32(&bytes, v.len()).unwrap(), v);
    }

    #[test]
    fn rle_runs_are_split_at_the_java_maximum() {
        let v = vec![-7i32; MAX_REPEAT * 2 + 3];
        let bytes = enc_i32(&v);
        assert_eq!(decode_i32(&bytes, v.len()).unwrap(), v);
    }

    #[test]
    fn int64_uses_bit_packing_only() {
        let v = vec![i64::MIN; 100];
        let mut bytes = Vec::new();
        encode_i64(&v, &mut bytes);
        // 100 values = 13 groups (the last holds 4), one bit-packed run.
        let mut p = ByteReader::new(&bytes);
        let len = p.uvarint().unwrap() as usize;
        assert_eq!(len, p.remaining());
        assert_eq!(p.u8().unwrap(), 64);
        assert_eq!(p.u8().unwrap(), (13 << 1) | 1);
        assert_eq!(p.u8().unwrap(), 4);
        assert_eq!(decode_i64(&bytes, v.len()).unwrap(), v);
    }

    #[test]
    fn int64_rle_runs_are_read_big_endian() {
        // package: width 16, RLE run of 9 x 0x0102 stored MSB first
        let bytes = [0x04, 16, 18, 0x01, 0x02];
        assert_eq!(decode_i64(&bytes, 9).unwrap(), vec![0x0102; 9]);
        // the same run as INT32 is little-endian
        assert_eq!(decode_i32(&bytes, 9).unwrap(), vec![0x0201; 9]);
    }

    #[test]
    fn several_packages_are_concatenated() {
        let mut bytes = enc_i32(&[1, 2, 3]);
        bytes.extend(enc_i32(&[-1]));
        assert_eq!(decode_i32(&bytes, 4).unwrap(), [1, 2, 3, -1]);
    }

    #[test]
    fn booleans_round_trip() {
        let v: Vec<bool> = (0..1000)
            .map(|i| i % 3 == 0 || (300..400).contains(&i))
            .collect();
        let mut bytes = Vec::new();
        encode_bool(&v, &mut bytes);
        assert_eq!(decode_bool(&bytes, v.len()).unwrap(), v);
    }

    #[test]
    fn bit_packer_matches_unpacker_for_all_widths() {
        for width in 0..=64u32 {
            let values: Vec<u64> = (0..37u64)
                .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & low_mask(width))
                .collect();
            let mut out = Vec::new();
            let mut p = BitPacker::new(&mut out);
            for &v in &values {
                p.put(v, width);
            }
            p.finish();
            assert_eq!(out.len(), (37 * width as usize).div_ceil(8));
            let mut u = BitUnpacker::new(&out);
            for &v in &values {
                assert_eq!(u.get(width), v, "width {width}");
            }
        }
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        let good = enc_i32(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 1000, -5]);
        for cut in 0..good.len() {
            assert!(decode_i32(&good[..cut], 11).is_err(), "cut at {cut}");
        }
        // width beyond 32, zero-length RLE run, zero groups, lastCount > 8
        for bad in [
            &[0x02, 33, 0x03][..],
            &[0x03, 0x01, 0x00, 0x00],
            &[0x03, 0x01, 0x01, 0x01],
            &[0x04, 0x01, 0x03, 0x09, 0xff],
            &[0xff, 0xff, 0xff, 0xff, 0x0f],
        ] {
            assert!(matches!(decode_i32(bad, 4), Err(Error::Corrupt { .. })));
        }
        // A huge RLE run does not allocate past n.
        assert_eq!(
            decode_i32(&[0x05, 0x01, 0xfe, 0xff, 0x7f, 0x01], 3).unwrap(),
            [1, 1, 1]
        );
        let mut state = 0x1234_5678u32;
        for _ in 0..2000 {
            let len = (state % 40) as usize;
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = decode_i32(&garbage, 50);
            let _ = decode_i64(&garbage, 50);
            let _ = decode_bool(&garbage, 50);
        }
    }
}

//! SPRINTZ (spec §11.9) for INT32/DATE and INT64/TIMESTAMP: decoding only.
//!
//! A page is a run of blocks, each opened by one byte `h`:
//! * `h & 0x80` set: a tail of `h & 0x7F` raw values stored as one nested
//!   RLE package (§11.4);
//! * otherwise a full block of 9 values: `h` is the bit width, then the
//!   first value (INT32: `uvarint` of its 32-bit pattern, INT64: `i64` BE),
//!   then `h` bytes packing 8 mapped prediction errors like one RLE
//!   bit-packed group.
//!
//! Errors are mapped `e <= 0 -> -2e`, `e > 0 -> 2e - 1` and predicted by
//! FIRE, a tiny learned delta predictor reset at every block. Arithmetic
//! wraps at the value width and FIRE's accumulator is a Java `int` for both
//! widths, with one exception: for INT64 the product `alpha * delta` is
//! taken in 128 bits, as the C++ core of tsfile 2.5.0 does (checked against
//! its files). Java's `LongFire` wraps that product at 64 bits instead, so
//! a Java-written INT64 page whose consecutive deltas reach about 2^35
//! decodes differently here than in Java; the file does not say which
//! writer made it.
//!
//! Arbor does not write SPRINTZ: Apache's writers silently corrupt values
//! whose prediction error does not fit W-1 bits (tests/interop/README.md),
//! so a lossless writer would have to refuse such data anyway.
//!
//! Not handled: the "optimal mode" of the newest Java writer (a page that
//! starts with the bytes `00 01`, variable block sizes); tsfile 2.5.0 does
//! not write it, and such a page decodes as legacy blocks (wrong values or
//! an error).

use super::rle::{self, BitUnpacker};
use super::MAX_PAGE_VALUES;
use crate::error::{Error, Result};
use crate::io::ByteReader;

/// Prediction errors per full block; the block also carries its first value.
const ERRORS_PER_BLOCK: usize = 8;
/// Flag bit of a tail block's header byte.
const TAIL_FLAG: u8 = 0x80;

/// The integer width a SPRINTZ stream is decoded at.
trait Word: Copy + Default {
    const BITS: u32;
    /// FIRE's learning-rate shift and fixed-point fraction bits.
    const LEARN_SHIFT: u32;
    const FRACTION_BITS: u32;
    fn from_packed(bits: u64) -> Self;
    fn read_first(r: &mut ByteReader<'_>) -> Result<Self>;
    fn decode_tail(package: &[u8], n: usize, base: u64) -> Result<Vec<Self>>;
    /// Undo the error mapping (odd = positive), with Java's wrapping and
    /// truncating division.
    fn unmap(self) -> Self;
    fn is_positive(self) -> bool;
    fn wrapping_add(self, other: Self) -> Self;
    fn wrapping_sub(self, other: Self) -> Self;
    /// `(alpha * delta) >> FRACTION_BITS`, wrapping like Java.
    fn scaled(alpha: i32, delta: Self) -> Self;
    /// `acc - gradient` stored back into a Java `int`.
    fn sub_from_acc(acc: i32, gradient: Self) -> i32;
}

impl Word for i32 {
    const BITS: u32 = 32;
    const LEARN_SHIFT: u32 = 2;
    const FRACTION_BITS: u32 = 8;
    fn from_packed(bits: u64) -> Self {
        bits as u32 as i32
    }
    fn read_first(r: &mut ByteReader<'_>) -> Result<Self> {
        Ok(r.uvarint()? as i32)
    }
    fn decode_tail(package: &[u8], n: usize, base: u64) -> Result<Vec<Self>> {
        rle::decode_i32_at(package, n, base)
    }
    fn unmap(self) -> Self {
        if self % 2 == 0 {
            self.wrapping_neg() / 2
        } else {
            self.wrapping_add(1) / 2
        }
    }
    fn is_positive(self) -> bool {
        self > 0
    }
    fn wrapping_add(self, other: Self) -> Self {
        i32::wrapping_add(self, other)
    }
    fn wrapping_sub(self, other: Self) -> Self {
        i32::wrapping_sub(self, other)
    }
    fn scaled(alpha: i32, delta: Self) -> Self {
        alpha.wrapping_mul(delta) >> Self::FRACTION_BITS
    }
    fn sub_from_acc(acc: i32, gradient: Self) -> i32 {
        acc.wrapping_sub(gradient)
    }
}

impl Word for i64 {
    const BITS: u32 = 64;
    const LEARN_SHIFT: u32 = 3;
    const FRACTION_BITS: u32 = 16;
    fn from_packed(bits: u64) -> Self {
        bits as i64
    }
    fn read_first(r: &mut ByteReader<'_>) -> Result<Self> {
        r.i64()
    }
    fn decode_tail(package: &[u8], n: usize, base: u64) -> Result<Vec<Self>> {
        rle::decode_i64_at(package, n, base)
    }
    fn unmap(self) -> Self {
        if self % 2 == 0 {
            self.wrapping_neg() / 2
        } else {
            self.wrapping_add(1) / 2
        }
    }
    fn is_positive(self) -> bool {
        self > 0
    }
    fn wrapping_add(self, other: Self) -> Self {
        i64::wrapping_add(self, other)
    }
    fn wrapping_sub(self, other: Self) -> Self {
        i64::wrapping_sub(self, other)
    }
    fn scaled(alpha: i32, delta: Self) -> Self {
        // The C++ writer (tsfile 2.5.0) multiplies in 128 bits; Java's
        // LongFire wraps at 64. They differ only when |alpha * delta| >= 2^63,
        // i.e. for deltas of 2^35 and more; see the module notes.
        ((i128::from(alpha) * i128::from(delta)) >> Self::FRACTION_BITS) as i64
    }
    fn sub_from_acc(acc: i32, gradient: Self) -> i32 {
        // Java's `int -= long` narrows the result to 32 bits.
        i64::from(acc).wrapping_sub(gradient) as i32
    }
}

/// Rebuild a full block from its first value and 8 mapped errors.
fn unpredict<T: Word>(first: T, mapped: [T; ERRORS_PER_BLOCK], out: &mut Vec<T>) {
    let mut acc: i32 = 0;
    let mut delta = T::default();
    let mut prev = first;
    out.push(first);
    for m in mapped {
        let err = m.unmap();
        let pred = prev.wrapping_add(T::scaled(acc >> T::LEARN_SHIFT, delta));
        let value = pred.wrapping_add(err);
        let gradient = if err.is_positive() {
            T::default().wrapping_sub(delta)
        } else {
            delta
        };
        acc = T::sub_from_acc(acc, gradient);
        delta = value.wrapping_sub(prev);
        prev = value;
        out.push(value);
    }
}

fn decode<T: Word>(input: &[u8], n: usize) -> Result<Vec<T>> {
    if n > MAX_PAGE_VALUES {
        return Err(Error::corrupt(0, format!("{n} values requested")));
    }
    let mut out: Vec<T> = Vec::with_capacity(n);
    let mut r = ByteReader::new(input);
    while out.len() < n {
        if r.is_empty() {
            return Err(r.error(format!(
                "SPRINTZ data ends after {} of {n} values",
                out.len()
            )));
        }
        let header_at = r.offset();
        let h = r.u8()?;
        if h & TAIL_FLAG != 0 {
            let count = usize::from(h & !TAIL_FLAG);
            if count == 0 {
                continue;
            }
            // One RLE package: its uvarint length, then that many bytes.
            let start = r.position();
            let len = r.length(1)?;
            r.skip(len)?;
            let package = &input[start..r.position()];
            let values = T::decode_tail(package, count, start as u64)?;
            let take = count.min(n - out.len());
            out.extend_from_slice(&values[..take]);
        } else {
            let width = u32::from(h);
            if width > T::BITS {
                return Err(Error::corrupt(
                    header_at,
                    format!("SPRINTZ bit width {width} exceeds {}", T::BITS),
                ));
            }
            let first = T::read_first(&mut r)?;
            let packed = r.bytes(width as usize)?;
            let mut unpacker = BitUnpacker::new(packed);
            let mut mapped = [T::default(); ERRORS_PER_BLOCK];
            for m in &mut mapped {
                *m = T::from_packed(unpacker.get(width));
            }
            unpredict(first, mapped, &mut out);
            // A block may run past the values the page needs.
            out.truncate(n);
        }
    }
    Ok(out)
}

pub(crate) fn decode_i32(input: &[u8], n: usize) -> Result<Vec<i32>> {
    decode(input, n)
}

pub(crate) fn decode_i64(input: &[u8], n: usize) -> Result<Vec<i64>> {
    decode(input, n)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{garbage, hex};
    use super::*;

    // Value sections of pages written by Apache tsfile 2.5.0 (PyPI, C++
    // core) through tests/interop/apache_tsfile.py, uncompressed; expected
    // values are what Apache's own reader returns for them.

    /// INT32 [10, 12, 15, 15, 15, 14, -3, 100, i32::MAX, 1000, -1000, 0]:
    /// one full block (bit width 32), then a tail of 3. Apache's writer
    /// overflows on the jump to i32::MAX and stores -1 instead (a known
    /// writer limitation), so the block exercises full-width wrapping.
    const SP32: &str = "200a000000030000000500000000000000000000000200000022000000cdffffff3b
                        8323200303000003e8fffffc18000000000000000000000000000000000000000000000000";
    const SP32_VALUES: [i32; 12] = [10, 12, 15, 15, 15, 14, -3, 100, -1, 1000, -1000, 0];

    /// INT32: nine i32::MIN (first value as a 5-byte uvarint, width 1),
    /// then a tail holding 7.
    const SP32_CONST: &str = "018080808008008106030301e00000";

    /// INT64: timestamps, small negatives, i64::MAX three times, i64::MIN
    /// (two full blocks, then a tail of one).
    const SP64: &str = "2a0000018bcfe5680000000001f3c00000007cf00000001f2c00000007cdc5e7f2bbd580301fa6c6
                        1000000030140000000c0584434003047fffffffffffffff7fffffffffffffff7fffffffffffffff
                        80000000000000000000000000000000000000000000000000000000000000000000000000000000";
    const SP64_VALUES: [i64; 13] = [
        1_700_000_000_000,
        1_700_000_001_000,
        1_700_000_002_000,
        1_700_000_002_999,
        1_700_000_004_001,
        -5,
        -6,
        -7,
        -8,
        i64::MAX,
        i64::MAX,
        i64::MAX,
        i64::MIN,
    ];

    /// INT64 with deltas of 2^40..2^44: FIRE's alpha * delta passes 2^63,
    /// where the C++ writer's 128-bit product and Java's wrapping one part.
    const SP64_BIG: &str = "390000000000000000000751269e0d368000e2d351d227c21fedbf6c7aee5c4498c5f44aa1
                            a223d712bf5ad3611f095329f3a97600317839f97fec388de2d31737a2";
    const SP64_BIG_VALUES: [i64; 9] = [
        0,
        8_045_121_637_687,
        9_993_537_565_063,
        25_537_335_320_762,
        28_292_710_953_189,
        39_645_880_138_461,
        56_748_689_014_610,
        61_625_656_315_463,
        64_237_157_474_079,
    ];

    #[test]
    fn apache_int32_pages() {
        assert_eq!(decode_i32(&hex(SP32), 12).unwrap(), SP32_VALUES);
        let mut want = vec![i32::MIN; 9];
        want.push(7);
        assert_eq!(decode_i32(&hex(SP32_CONST), 10).unwrap(), want);
        // single value: a tail block only
        let one = [hex("8123200301ffffffd6"), vec![0; 28]].concat();
        assert_eq!(decode_i32(&one, 1).unwrap(), [-42]);
    }

    #[test]
    fn apache_int64_pages() {
        assert_eq!(decode_i64(&hex(SP64), 13).unwrap(), SP64_VALUES);
        assert_eq!(decode_i64(&hex(SP64_BIG), 9).unwrap(), SP64_BIG_VALUES);
        let one = [hex("8143400301ffffffffffffffd6"), vec![0; 56]].concat();
        assert_eq!(decode_i64(&one, 1).unwrap(), [-42]);
    }

    #[test]
    fn fewer_values_than_the_blocks_hold() {
        assert_eq!(decode_i32(&hex(SP32), 4).unwrap(), &SP32_VALUES[..4]);
        assert_eq!(decode_i32(&hex(SP32), 10).unwrap(), &SP32_VALUES[..10]);
        assert_eq!(decode_i64(&hex(SP64), 0).unwrap(), Vec::<i64>::new());
        assert_eq!(decode_i64(&[], 0).unwrap(), Vec::<i64>::new());
    }

    #[test]
    fn error_mapping_wraps_like_java() {
        // odd = positive, even = zero or negative; extremes wrap
        assert_eq!(1i32.unmap(), 1);
        assert_eq!(2i32.unmap(), -1);
        assert_eq!(0i32.unmap(), 0);
        assert_eq!(i32::MIN.unmap(), i32::MIN / 2);
        assert_eq!((-1i32).unmap(), 0);
        assert_eq!(i64::MIN.unmap(), i64::MIN / 2);
        assert_eq!(i64::MAX.unmap(), -(1 << 62)); // (MAX + 1) wraps first
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        for page in [SP32, SP32_CONST, SP64, SP64_BIG] {
            let good = hex(page);
            for cut in 0..good.len() {
                let short = &good[..cut];
                assert!(decode_i32(short, 12).is_err() || decode_i64(short, 13).is_err());
            }
        }
        for cut in 0..hex(SP64).len() {
            assert!(decode_i64(&hex(SP64)[..cut], 13).is_err(), "cut {cut}");
        }
        // bit width above the type's
        let err = decode_i32(&[33, 0, 0], 9).unwrap_err();
        assert!(matches!(err, Error::Corrupt { offset: 0, .. }), "{err}");
        assert!(matches!(decode_i64(&[65; 80], 9), Err(Error::Corrupt { .. })));
        // tail whose RLE package is shorter than its length claims
        assert!(matches!(decode_i32(&[0x81, 0x05, 0x01], 1), Err(Error::Corrupt { .. })));
        // an empty tail block is skipped, a missing value is an error
        assert!(matches!(decode_i32(&[0x80], 1), Err(Error::Corrupt { .. })));
        assert!(matches!(decode_i32(&[], 1), Err(Error::Corrupt { .. })));
        for bytes in garbage(0x5eed, 3000, 60) {
            let _ = decode_i32(&bytes, 30);
            let _ = decode_i64(&bytes, 30);
        }
    }
}

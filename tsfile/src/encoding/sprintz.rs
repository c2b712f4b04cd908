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
//! FIRE, a tiny learned delta predictor reset at every block. All arithmetic
//! wraps at the value width, as Java's does; FIRE's accumulator is a Java
//! `int` for both widths.
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

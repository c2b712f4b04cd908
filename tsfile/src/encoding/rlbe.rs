//! RLBE (spec §11.10) for INT32/DATE, INT64/TIMESTAMP, FLOAT and DOUBLE:
//! decoding only. FLOAT/DOUBLE pages are the 32/64-bit RLBE of the raw IEEE
//! bits (as the C++ writer and the current Java reader have it).
//!
//! A page is a run of blocks, each starting on a byte boundary:
//! `32 bits count`, then segments until `count` values are known. A segment
//! is `L` (6 bits for W = 32, 7 for W = 64), the run length `R` as a
//! Fibonacci code (Zeckendorf bits for 1, 2, 3, 5, ... smallest first, closed
//! by an extra `1`), and `R` fields of `L` bits. The first field of a block
//! is the value itself, every later one the wrapping delta to its
//! predecessor. A full-width field (`L == W`) is a negative number whose
//! sign bit the writer leaves out; the reader puts it back.
//!
//! Arbor does not write RLBE (it is not among the writer's encodings).

use super::bits::BitReader;
use super::MAX_PAGE_VALUES;
use crate::error::{Error, Result};

/// Values per block as Apache writes them; a larger count is corruption
/// (the C++ reader has the same limit).
const MAX_BLOCK_VALUES: u64 = 10_000;

/// Decode `n` values of width `W` (32 or 64) as raw bit patterns.
fn decode_bits<const W: u32>(input: &[u8], n: usize) -> Result<Vec<u64>> {
    if n > MAX_PAGE_VALUES {
        return Err(Error::corrupt(0, format!("{n} values requested")));
    }
    let length_bits = if W == 32 { 6 } else { 7 };
    let mask = if W == 64 { u64::MAX } else { (1u64 << W) - 1 };
    let sign = 1u64 << (W - 1);
    let mut out = Vec::with_capacity(n);
    let mut r = BitReader::new(input);
    'blocks: while out.len() < n {
        // Blocks start on a byte boundary.
        let skip = (8 - r.bit_position() % 8) % 8;
        r.read(skip as u32)?;
        let count = r.read(32)?;
        if count == 0 || count > MAX_BLOCK_VALUES {
            return Err(r.error(format!("RLBE block of {count} values")));
        }
        let mut left = count;
        let mut prev = 0u64;
        let mut first = true;
        while left > 0 {
            let width = r.read(length_bits)? as u32;
            if width == 0 || width > W {
                return Err(r.error(format!("RLBE value width {width} outside 1..={W}")));
            }
            let run = read_fibonacci(&mut r, left)?;
            for _ in 0..run {
                let mut field = r.read_long(width)?;
                if width == W {
                    field |= sign;
                }
                prev = if first { field } else { prev.wrapping_add(field) & mask };
                first = false;
                out.push(prev);
                if out.len() == n {
                    break 'blocks;
                }
            }
            left -= run;
        }
    }
    Ok(out)
}

/// A Fibonacci-coded run length between 1 and `max`.
fn read_fibonacci(r: &mut BitReader<'_>, max: u64) -> Result<u64> {
    let (mut lower, mut term) = (1u64, 1u64); // F(j-1), F(j): 1, 2, 3, 5, ...
    let mut total = 0u64;
    let mut now = r.read_bit()?;
    loop {
        let next = r.read_bit()?;
        if now {
            total += term;
            if total > max {
                return Err(r.error(format!("RLBE run longer than the {max} values left")));
            }
            if next {
                return Ok(total);
            }
        }
        // Terms grow past `max` within ~30 steps, so this loop is bounded.
        if term > max {
            return Err(r.error("RLBE run length code does not end"));
        }
        (lower, term) = (term, lower + term);
        now = next;
    }
}

pub(crate) fn decode_i32(input: &[u8], n: usize) -> Result<Vec<i32>> {
    Ok(decode_bits::<32>(input, n)?.into_iter().map(|b| b as u32 as i32).collect())
}

pub(crate) fn decode_i64(input: &[u8], n: usize) -> Result<Vec<i64>> {
    Ok(decode_bits::<64>(input, n)?.into_iter().map(|b| b as i64).collect())
}

pub(crate) fn decode_f32(input: &[u8], n: usize) -> Result<Vec<f32>> {
    Ok(decode_bits::<32>(input, n)?.into_iter().map(|b| f32::from_bits(b as u32)).collect())
}

pub(crate) fn decode_f64(input: &[u8], n: usize) -> Result<Vec<f64>> {
    Ok(decode_bits::<64>(input, n)?.into_iter().map(f64::from_bits).collect())
}

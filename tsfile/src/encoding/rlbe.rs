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

#[cfg(test)]
mod tests {
    use super::super::bits::BitWriter;
    use super::super::test_util::{garbage, hex};
    use super::*;

    // Value sections of pages written by Apache tsfile 2.5.0 (PyPI, C++
    // core) through tests/interop/apache_tsfile.py, uncompressed.

    #[test]
    fn apache_int_pages() {
        let p = hex("0000000982c00000001fffffffc00000005fffffffc2e0f80980");
        assert_eq!(
            decode_i32(&p, 9).unwrap(),
            [i32::MIN, i32::MAX, 0, -1, 1, 5, 5, 5, 5]
        );
        let p = hex(
            "000000088160000000000000000fffffffffffffffe0000000000000002fffffffffffffffe0b94f8bc
             fe567ff14fe8fa0",
        );
        assert_eq!(
            decode_i64(&p, 8).unwrap(),
            [i64::MIN, i64::MAX, 0, -1, 1, 1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_000]
        );
        // -42 alone: width 32 (a negative), its sign bit left out
        assert_eq!(decode_i32(&hex("00000001837fffffd6"), 1).unwrap(), [-42]);
    }

    #[test]
    fn apache_float_pages_keep_every_bit() {
        let p = hex("000000087fff80000105bfe000000000000000400000000000003dff8000010680800002fffdfffff8");
        let want = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 1.5, 1e-45, f32::MAX];
        let got: Vec<u32> = decode_f32(&p, 8).unwrap().iter().map(|f| f.to_bits()).collect();
        let want: Vec<u32> = want.iter().map(|f| f.to_bits()).collect();
        assert_eq!(got, want);
        let p = hex(
            "000000087ffff8000000000000816fff000000000000000000000000000000020000000000000000
             0000000000000fbffe0000000000002068010000000000002ffffdffffffffffffc0",
        );
        let want = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, 1.5, 5e-324, f64::MAX];
        let got: Vec<u64> = decode_f64(&p, 8).unwrap().iter().map(|f| f.to_bits()).collect();
        let want: Vec<u64> = want.iter().map(|f| f.to_bits()).collect();
        assert_eq!(got, want);
        let got = decode_f32(&hex("000000018300000000"), 1).unwrap();
        assert_eq!(got[0].to_bits(), (-0.0f32).to_bits());
    }

    /// A block built field by field: `count`, then (width, run, fields).
    fn block(w: &mut BitWriter<'_>, length_bits: u32, count: u64, segments: &[(u64, &[u64], u64)]) {
        w.write(count, 32);
        for &(width, fib_code, field) in segments {
            w.write(width, length_bits);
            for &bit in fib_code {
                w.write(bit, 1);
            }
            let run: u64 = fib_run(fib_code);
            for _ in 0..run {
                w.write(field, width as u32);
            }
        }
    }

    fn fib_run(code: &[u64]) -> u64 {
        let (mut lower, mut term, mut total) = (1u64, 1u64, 0u64);
        for &bit in &code[..code.len() - 1] {
            total += bit * term;
            (lower, term) = (term, lower + term);
        }
        total
    }

    #[test]
    fn runs_blocks_and_padding() {
        // Block 1: 5 then four deltas of 0 (run 4 = 1 + 3: code 1,0,1,1).
        // Block 2 on the next byte: 3 values, -7 then deltas 2, 2
        // (run 1 = "11", run 2 = "011").
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        block(&mut w, 6, 5, &[(3, &[1, 1], 5), (1, &[1, 0, 1, 1], 0)]);
        let pad = (8 - w.bit_len() % 8) % 8;
        assert_eq!(pad, 7); // 57 bits in block 1
        w.write(0, pad as u32);
        w.write(3, 32);
        w.write(32, 6);
        w.write(0b11, 2);
        w.write((-7i32 as u32 & 0x7fff_ffff).into(), 32);
        w.write(2, 6);
        w.write(0b011, 3);
        w.write(2, 2);
        w.write(2, 2);
        w.finish();
        assert_eq!(decode_i32(&out, 8).unwrap(), [5, 5, 5, 5, 5, -7, -5, -3]);
        // Stopping inside a block is fine.
        assert_eq!(decode_i32(&out, 6).unwrap(), [5, 5, 5, 5, 5, -7]);
        assert_eq!(decode_i64(&[], 0).unwrap(), Vec::<i64>::new());
    }

    #[test]
    fn long_constant_run_in_one_segment() {
        // 10 000 zeros: first value, then a run of 9 999 one-bit deltas.
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.write(10_000, 32);
        w.write(1, 7);
        w.write(0b11, 2);
        w.write(0, 1);
        w.write(1, 7);
        // 9 999 = 6765 + 2584 + 610 + 34 + 5 + 1 (Zeckendorf, smallest first)
        let mut code = vec![0u64; 19];
        for term_index in [0, 3, 7, 13, 16, 18] {
            code[term_index] = 1; // F = 1,2,3,5,8,...: index 0 -> 1, 3 -> 5, 7 -> 34, ...
        }
        code.push(1);
        assert_eq!(fib_run(&code), 9_999);
        for &bit in &code {
            w.write(bit, 1);
        }
        w.write(0, 9_999 % 64);
        for _ in 0..9_999 / 64 {
            w.write(0, 64);
        }
        w.finish();
        let got = decode_i64(&out, 10_000).unwrap();
        assert_eq!(got.len(), 10_000);
        assert!(got.iter().all(|&v| v == 0));
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        let good = hex("0000000982c00000001fffffffc00000005fffffffc2e0f80980");
        for cut in 0..good.len() {
            assert!(decode_i32(&good[..cut], 9).is_err(), "cut {cut}");
        }
        let bad_pages: [&[u8]; 4] = [
            &[0, 0, 0, 0, 0x80],          // block of 0 values
            &[0, 0, 0x27, 0x11, 0x80],    // 10 001 values
            &[0, 0, 0, 1, 0x03, 0xff],    // width 0
            &[0, 0, 0, 2, 0x04, 0xc0],    // run of 3 in a block of 2 (code 0,0,1,1)
        ];
        for bad in bad_pages {
            assert!(matches!(decode_i32(bad, 1), Err(Error::Corrupt { .. })), "{bad:?}");
        }
        // width 33 for INT32
        assert!(matches!(decode_i32(&[0, 0, 0, 1, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff], 1), Err(Error::Corrupt { .. })));
        // a run-length code that never closes
        assert!(matches!(decode_i64(&[0, 0, 0, 5, 0x02, 0x55, 0x55, 0x55, 0x55], 5), Err(Error::Corrupt { .. })));
        for bytes in garbage(0xb1e5, 3000, 60) {
            let _ = decode_i32(&bytes, 40);
            let _ = decode_f64(&bytes, 40);
        }
    }
}

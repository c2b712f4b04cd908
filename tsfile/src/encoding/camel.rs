//! CAMEL (encoding 14) for DOUBLE: decoding only. Not in the spec's §11;
//! layout taken from Apache's decoders (Java `CamelDecoder`, C++
//! `camel_decoder.h`), which agree on everything below.
//!
//! A page is a run of blocks: a zigzag `varint` giving the block's length in
//! bits (> 0), then that many bits MSB-first, zero-padded to a byte. Within
//! a block, state starts afresh:
//! * first value: 64 raw bits;
//! * every later value: a sign bit, a type bit, then
//!   - type 1 ("camel"): the integer part as a varlong delta to the
//!     previous integer part, and the decimal part: 4 bits `count - 1`
//!     (decimal digits), a flag bit, if set `count` bits of an XOR mask for
//!     the mantissa, then a varlong `m`;
//!   - type 0: the absolute value Gorilla-coded against the previous
//!     value's bits (`0` repeat, `10` reuse window, `11` + 6 bits leading
//!     zeros + 6 bits `significant - 1` + significant bits).
//!
//! Varlongs here live in the bit stream: 7 payload bits, then a
//! continuation bit, low group first, zigzag-mapped.
//!
//! Apache's writer maps NaN (and infinities after a NaN) to other values;
//! this decoder reproduces exactly what Apache's reader returns for the
//! bytes. Arbor does not write CAMEL.

use super::bits::BitReader;
use super::MAX_PAGE_VALUES;
use crate::error::{Error, Result};
use crate::io::ByteReader;

/// Largest decimal count Apache's readers accept.
const MAX_DECIMALS: u32 = 15;
const MANTISSA_BITS: u32 = 52;

/// Java's `Double.doubleToLongBits`: every NaN becomes the canonical one.
fn java_bits(v: f64) -> u64 {
    if v.is_nan() {
        0x7FF8_0000_0000_0000
    } else {
        v.to_bits()
    }
}

/// Java's `(long) v`: truncating, saturating, NaN → 0 (Rust's `as` agrees).
fn java_to_long(v: f64) -> i64 {
    v as i64
}

/// Java's `Math.round(double)`: `floor(v + 0.5)` computed exactly.
fn java_round(v: f64) -> i64 {
    super::float::java_round_f64(v)
}

/// A bit reader limited to one block's declared length.
struct Block<'a> {
    r: BitReader<'a>,
    left: u64,
}

impl Block<'_> {
    fn take(&mut self, bits: u32) -> Result<()> {
        if u64::from(bits) > self.left {
            return Err(self.r.error(format!(
                "CAMEL value needs {bits} bits, the block has {} left",
                self.left
            )));
        }
        self.left -= u64::from(bits);
        Ok(())
    }

    fn read(&mut self, bits: u32) -> Result<u64> {
        self.take(bits)?;
        self.r.read_long(bits)
    }

    fn bit(&mut self) -> Result<bool> {
        Ok(self.read(1)? == 1)
    }

    fn varlong(&mut self) -> Result<i64> {
        let mut raw = 0u64;
        let mut shift = 0;
        loop {
            let chunk = self.read(7)?;
            let more = self.bit()?;
            raw |= chunk.wrapping_shl(shift);
            shift += 7;
            if !more {
                break;
            }
            if shift >= 64 {
                return Err(self.r.error("CAMEL varlong longer than 10 groups"));
            }
        }
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }
}

/// Per-block decoder state.
struct State {
    /// Integer part of the last camel-coded value.
    stored: i64,
    /// Bits of the previous value (Java canonical NaN).
    previous: u64,
    /// Gorilla window; `None` until the first `11` control.
    window: Option<(u32, u32)>,
}

impl State {
    fn next(&mut self, b: &mut Block<'_>) -> Result<f64> {
        let sign = if b.bit()? { -1.0 } else { 1.0 };
        let magnitude = if b.bit()? {
            self.camel(b)?
        } else {
            self.gorilla(b)?
        };
        Ok(sign * magnitude)
    }

    fn camel(&mut self, b: &mut Block<'_>) -> Result<f64> {
        self.stored = self.stored.wrapping_add(b.varlong()?);
        let int_part = self.stored;
        let count = b.read(4)? as u32 + 1;
        if count > MAX_DECIMALS {
            return Err(b.r.error(format!("CAMEL decimal count {count} above {MAX_DECIMALS}")));
        }
        let mask = if b.bit()? {
            Some(b.read(count)? << (MANTISSA_BITS - count))
        } else {
            None
        };
        let m = b.varlong()?;
        let pow = 10i64.pow(count) as f64;
        let frac = match mask {
            Some(mask) => f64::from_bits(mask ^ java_bits(m as f64 / pow + 1.0)) - 1.0,
            None => m as f64 / pow,
        };
        let decimals = java_round(frac * pow) as f64;
        let whole = int_part as f64 * pow + decimals;
        Ok(if int_part >= 0 { whole / pow } else { -whole / pow })
    }

    fn gorilla(&mut self, b: &mut Block<'_>) -> Result<f64> {
        if !b.bit()? {
            return Ok(f64::from_bits(self.previous));
        }
        let (lead, trail) = if b.bit()? {
            let lead = b.read(6)? as u32;
            let sig = b.read(6)? as u32 + 1;
            if lead + sig > 64 {
                return Err(b.r.error(format!(
                    "CAMEL gorilla window of {lead} leading and {sig} significant bits"
                )));
            }
            self.window = Some((lead, 64 - lead - sig));
            (lead, 64 - lead - sig)
        } else {
            self.window
                .ok_or_else(|| b.r.error("CAMEL gorilla reuses a window it never set"))?
        };
        let sig = 64 - lead - trail;
        if sig > 0 {
            self.previous ^= b.read(sig)? << trail;
        }
        Ok(f64::from_bits(self.previous))
    }
}

/// Decode the values of one block (at most `n - out.len()`) from `bits`.
fn decode_block(data: &[u8], bits: u64, n: usize, out: &mut Vec<f64>) -> Result<()> {
    let mut b = Block {
        r: BitReader::new(data),
        left: bits,
    };
    let first = f64::from_bits(b.read(64)?);
    out.push(first);
    let mut state = State {
        stored: java_to_long(first),
        previous: java_bits(first),
        window: None,
    };
    while b.left > 0 && out.len() < n {
        let v = state.next(&mut b)?;
        state.previous = java_bits(v);
        out.push(v);
    }
    Ok(())
}

pub(crate) fn decode_f64(input: &[u8], n: usize) -> Result<Vec<f64>> {
    if n > MAX_PAGE_VALUES {
        return Err(Error::corrupt(0, format!("{n} values requested")));
    }
    let mut out = Vec::with_capacity(n);
    let mut r = ByteReader::new(input);
    while out.len() < n {
        if r.is_empty() {
            return Err(r.error(format!("CAMEL data ends after {} of {n} values", out.len())));
        }
        let at = r.offset();
        let bits = r.varint()?;
        if bits <= 0 {
            return Err(Error::corrupt(at, format!("CAMEL block of {bits} bits")));
        }
        let bits = bits as u64;
        let data_at = r.offset();
        let data = r.bytes(bits.div_ceil(8) as usize)?;
        decode_block(data, bits, n, &mut out).map_err(|e| shift_offset(e, data_at))?;
    }
    Ok(out)
}

/// Errors from a block's bit reader count from the block's first byte.
fn shift_offset(e: Error, base: u64) -> Error {
    match e {
        Error::Corrupt { file, offset, what } => Error::Corrupt {
            file,
            offset: base + offset,
            what,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::bits::BitWriter;
    use super::super::test_util::{garbage, hex};
    use super::*;

    // Value sections of pages written by Apache tsfile 2.5.0 (PyPI, C++
    // core) through tests/interop/apache_tsfile.py, uncompressed; expected
    // values are what Apache's own reader returns for them.

    /// [1.5, 2.25, -3.125, 0.1, 123456.789, 0.0, -0.0, 1e300, -2.5e-12, 7.0, 7.0]
    const MIXED: &str = "c2073ff8000000000000410680608520085001101131e2e9c307e81fc48193f7ced930c0f7f8df
                         90f22001d67b07e87643286d2f22212f1888f00010000000";
    const MIXED_VALUES: [f64; 11] = [1.5, 2.25, -3.125, 0.1, 123456.789, 0.0, -0.0, 1e300, -2.5e-12, 7.0, 7.0];

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn apache_pages() {
        let got = decode_f64(&hex(MIXED), 11).unwrap();
        assert_eq!(bits(&got), bits(&MIXED_VALUES));
        assert_eq!(decode_f64(&hex("8001c045400000000000"), 1).unwrap(), [-42.5]);
        assert_eq!(bits(&decode_f64(&hex(MIXED), 3).unwrap()), bits(&MIXED_VALUES[..3]));
        assert_eq!(decode_f64(&[], 0).unwrap(), Vec::<f64>::new());
    }

    #[test]
    fn apache_writer_turns_nan_into_zero() {
        // Written as [1.0, NaN, inf, 2.5]. Apache's writer codes NaN as the
        // decimal 0.0 and then XORs inf against NaN's bits, so its reader
        // (and this one) returns 0.0 and 2^-1022 * 0.5 for those points.
        let got = decode_f64(&hex("80023ff00000000000004080006601420300"), 4).unwrap();
        assert_eq!(bits(&got), bits(&[1.0, 0.0, 1.112_536_929_253_600_7e-308, 2.5]));
    }

    #[test]
    fn blocks_restart_their_state() {
        // Two blocks of one value each: the second is raw bits again.
        let mut page = Vec::new();
        for v in [3.5f64, -0.25] {
            page.push(0x80); // varint 128 bits -> zigzag 64
            page.push(0x01);
            page.extend_from_slice(&v.to_bits().to_be_bytes());
        }
        assert_eq!(decode_f64(&page, 2).unwrap(), [3.5, -0.25]);
    }

    /// A one-block page from fields written with `build`.
    fn page(build: impl FnOnce(&mut BitWriter<'_>)) -> Vec<u8> {
        let mut body = Vec::new();
        let mut w = BitWriter::new(&mut body);
        build(&mut w);
        let used = w.bit_len();
        w.finish();
        let mut out = Vec::new();
        crate::io::ByteWriter::put_varint(&mut out, used as i32);
        out.extend(body);
        out
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        let good = hex(MIXED);
        for cut in 0..good.len() {
            assert!(decode_f64(&good[..cut], 11).is_err(), "cut {cut}");
        }
        // block of 0 or negative bits
        assert!(matches!(decode_f64(&[0x00], 1), Err(Error::Corrupt { .. })));
        assert!(matches!(decode_f64(&[0x01], 1), Err(Error::Corrupt { .. })));
        // decimal count 16
        let bad = page(|w| {
            w.write(1.0f64.to_bits(), 64);
            w.write(0b01, 2); // positive, camel
            w.write(0, 8); // varlong 0
            w.write(15, 4);
        });
        assert!(matches!(decode_f64(&bad, 2), Err(Error::Corrupt { .. })));
        // gorilla "reuse the window" before any window was set
        let bad = page(|w| {
            w.write(1.0f64.to_bits(), 64);
            w.write(0b00, 2); // positive, gorilla
            w.write(0b10, 2);
        });
        assert!(matches!(decode_f64(&bad, 2), Err(Error::Corrupt { .. })));
        // window wider than 64 bits
        let bad = page(|w| {
            w.write(1.0f64.to_bits(), 64);
            w.write(0b00, 2);
            w.write(0b11, 2);
            w.write(40, 6);
            w.write(39, 6);
            w.write(0, 40);
        });
        assert!(matches!(decode_f64(&bad, 2), Err(Error::Corrupt { .. })));
        // a value that runs past the block's declared bits
        let mut short = good.clone();
        short[0] = 0xc0; // 480 instead of 481 bits
        assert!(decode_f64(&short, 11).is_err());
        for bytes in garbage(0xca3e1, 3000, 80) {
            let _ = decode_f64(&bytes, 40);
        }
    }
}

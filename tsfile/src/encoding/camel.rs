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

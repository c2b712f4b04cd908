//! MSB-first bit streams shared by the GORILLA and CHIMP encodings (spec
//! §11.5, §11.8): a [`BitWriter`] appending to a `Vec<u8>` and a bounded
//! [`BitReader`] over a byte slice.
//!
//! Both keep a 64-bit accumulator so a field costs a few shifts rather than
//! a loop over its bits. The reader never reads past its slice: asking for
//! more bits than remain is a corruption error, never a panic.

use crate::error::{Error, Result};

/// Appends bit fields, most significant bit first, to a byte vector.
///
/// Pending bits sit left-aligned in `acc`; eight whole bytes are written
/// at once when it fills. Call [`finish`](Self::finish) or
/// [`finish_forced`](Self::finish_forced) to emit the remainder.
#[derive(Debug)]
pub(crate) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    /// Bits pending in `acc`; always below 64.
    used: u32,
}

impl<'a> BitWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            acc: 0,
            used: 0,
        }
    }

    /// Write the low `bits` bits of `value` (0..=64); higher bits are ignored.
    #[inline]
    pub(crate) fn write(&mut self, value: u64, bits: u32) {
        debug_assert!(bits <= 64);
        if bits == 0 {
            return;
        }
        let value = if bits < 64 {
            value & ((1u64 << bits) - 1)
        } else {
            value
        };
        let free = 64 - self.used;
        if bits < free {
            self.acc |= value << (free - bits);
            self.used += bits;
        } else {
            // Fill the accumulator, emit it, keep the `rest` low bits.
            let rest = bits - free;
            self.acc |= value >> rest;
            self.out.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = if rest == 0 { 0 } else { value << (64 - rest) };
            self.used = rest;
        }
    }

    /// Bits written so far, flushed or not.
    #[cfg(test)]
    pub(crate) fn bit_len(&self) -> u64 {
        // `out` may hold bytes from before this writer; callers only use
        // differences, so counting them too is harmless.
        self.out.len() as u64 * 8 + u64::from(self.used)
    }

    /// Emit pending bits, zero-padding the last partial byte. Both page
    /// encodings use [`finish_forced`](Self::finish_forced); tests build
    /// raw streams with this.
    #[cfg(test)]
    pub(crate) fn finish(self) {
        let bytes = self.used.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_be_bytes()[..bytes]);
    }

    /// Emit pending bits and then always one more (partial or empty) byte,
    /// as Java's GORILLA/CHIMP `flush` does: when the stream ends on a byte
    /// boundary it still writes a zero byte, and Java's reader expects it.
    pub(crate) fn finish_forced(self) {
        let bytes = (self.used / 8 + 1) as usize;
        self.out.extend_from_slice(&self.acc.to_be_bytes()[..bytes]);
    }
}

/// Reads MSB-first bit fields from a byte slice.
///
/// Unread bits sit left-aligned in `acc`; a refill loads up to eight bytes
/// at once. Bits below `avail` may already hold the following input bits
/// (a refill reads a whole word but only counts whole bytes); the next
/// refill ORs the same bits in again, so they stay correct.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    buf: &'a [u8],
    /// Next byte of `buf` not yet counted in `avail`.
    pos: usize,
    acc: u64,
    /// Valid bits at the top of `acc`.
    avail: u32,
}

/// Widest field [`BitReader::read`] takes in one step: after a refill at
/// least 56 bits are buffered unless the input is ending.
const MAX_READ: u32 = 56;

impl<'a> BitReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        BitReader {
            buf,
            pos: 0,
            acc: 0,
            avail: 0,
        }
    }

    /// Bits consumed so far.
    pub(crate) fn bit_position(&self) -> u64 {
        self.pos as u64 * 8 - u64::from(self.avail)
    }

    /// Bits not yet consumed.
    #[cfg(test)]
    pub(crate) fn bits_remaining(&self) -> u64 {
        self.buf.len() as u64 * 8 - self.bit_position()
    }

    /// A corruption error at the byte holding the next unread bit.
    pub(crate) fn error(&self, what: impl Into<String>) -> Error {
        Error::corrupt(self.bit_position() / 8, what)
    }

    #[inline]
    fn refill(&mut self) {
        if let Some(word) = self.buf.get(self.pos..self.pos + 8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            self.acc |= u64::from_be_bytes(bytes) >> self.avail;
            let whole = (63 - self.avail) / 8;
            self.pos += whole as usize;
            self.avail += whole * 8;
        } else {
            while self.avail <= MAX_READ {
                let Some(&b) = self.buf.get(self.pos) else {
                    break;
                };
                self.acc |= u64::from(b) << (MAX_READ - self.avail);
                self.pos += 1;
                self.avail += 8;
            }
        }
    }

    /// Read a field of `bits` bits (0..=56), returned in the low bits.
    #[inline]
    pub(crate) fn read(&mut self, bits: u32) -> Result<u64> {
        debug_assert!(bits <= MAX_READ);
        if bits == 0 {
            return Ok(0);
        }
        if self.avail < bits {
            self.refill();
            if self.avail < bits {
                return Err(self.error(format!(
                    "bit stream ends: need {bits} bits, {} remain",
                    self.avail
                )));
            }
        }
        let value = self.acc >> (64 - bits);
        self.acc <<= bits;
        self.avail -= bits;
        Ok(value)
    }

    /// Read a field of `bits` bits (0..=64), returned in the low bits.
    #[inline]
    pub(crate) fn read_long(&mut self, bits: u32) -> Result<u64> {
        if bits <= MAX_READ {
            self.read(bits)
        } else {
            let high = self.read(bits - 32)?;
            let low = self.read(32)?;
            Ok((high << 32) | low)
        }
    }

    #[inline]
    pub(crate) fn read_bit(&mut self) -> Result<bool> {
        Ok(self.read(1)? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn writer_packs_msb_first_and_pads() {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.write(0b101, 3);
        w.write(1, 1);
        w.write(0xff, 4); // only the low 4 bits count
        w.write(0b1, 2);
        w.finish();
        assert_eq!(out, vec![0b1011_1111, 0b0100_0000]);
    }

    #[test]
    fn forced_finish_adds_a_zero_byte_on_a_boundary() {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.write(0xabcd, 16);
        w.finish_forced();
        assert_eq!(out, vec![0xab, 0xcd, 0x00]);

        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.write(0b11, 2);
        w.finish_forced();
        assert_eq!(out, vec![0b1100_0000]);

        let mut out = Vec::new();
        BitWriter::new(&mut out).finish_forced();
        assert_eq!(out, vec![0x00]);
    }

    #[test]
    fn full_width_fields_cross_the_accumulator() {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.write(1, 1);
        w.write(u64::MAX, 64);
        w.write(0x0123_4567_89ab_cdef, 64);
        assert_eq!(w.bit_len(), 129);
        w.finish();
        let mut r = BitReader::new(&out);
        assert!(r.read_bit().unwrap());
        assert_eq!(r.read_long(64).unwrap(), u64::MAX);
        assert_eq!(r.read_long(64).unwrap(), 0x0123_4567_89ab_cdef);
        assert_eq!(r.bits_remaining(), 7);
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let mut r = BitReader::new(&[0xff, 0x00]);
        assert_eq!(r.read(12).unwrap(), 0xff0);
        let err = r.read(5).unwrap_err();
        assert!(matches!(err, Error::Corrupt { offset: 1, .. }), "{err}");
        let mut r = BitReader::new(&[]);
        assert!(r.read_bit().is_err());
        assert_eq!(r.read(0).unwrap(), 0);
        let mut r = BitReader::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert!(r.read_long(64).is_err());
    }

    proptest! {
        #[test]
        fn fields_round_trip(fields in prop::collection::vec((any::<u64>(), 0u32..=64), 0..200)) {
            let mut out = Vec::new();
            let mut w = BitWriter::new(&mut out);
            for &(v, bits) in &fields {
                w.write(v, bits);
            }
            let total: u64 = fields.iter().map(|&(_, b)| u64::from(b)).sum();
            prop_assert_eq!(w.bit_len(), total);
            w.finish();
            prop_assert_eq!(out.len() as u64, total.div_ceil(8));
            let mut r = BitReader::new(&out);
            for &(v, bits) in &fields {
                let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
                prop_assert_eq!(r.read_long(bits).unwrap(), v & mask);
            }
            prop_assert!(r.bits_remaining() < 8);
        }
    }
}

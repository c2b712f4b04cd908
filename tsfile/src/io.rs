//! Primitive serializations (spec §0): big-endian fixed-width numbers,
//! LEB128 `uvarint`, zigzag `varint`, and the three string forms.
//!
//! [`ByteReader`] never panics and never allocates more than the bytes it
//! has: every length field is checked against what remains before use.

use crate::error::{Error, Result};

/// A cursor over a byte slice that reports absolute file offsets in errors.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]` in the file, for error messages.
    base: u64,
}

impl<'a> ByteReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self::at(buf, 0)
    }

    /// A reader whose `buf[0]` sits at absolute file offset `base`.
    pub fn at(buf: &'a [u8], base: u64) -> Self {
        ByteReader { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn error(&self, what: impl Into<String>) -> Error {
        Error::corrupt(self.offset(), what)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "need {n} bytes but only {} remain",
                self.remaining()
            )));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.u8()? == 1)
    }

    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(u32::from_be_bytes(self.array()?)))
    }

    pub fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(u64::from_be_bytes(self.array()?)))
    }

    /// Unsigned LEB128 of a 32-bit value (at most 5 bytes).
    pub fn uvarint(&mut self) -> Result<u32> {
        let start = self.offset();
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7f).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::corrupt(start, "unsigned varint longer than 5 bytes"))
    }

    /// Unsigned LEB128 of a 64-bit value (at most 10 bytes).
    pub fn uvarint64(&mut self) -> Result<u64> {
        let start = self.offset();
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            value |= u64::from(b & 0x7f).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::corrupt(start, "unsigned varint longer than 10 bytes"))
    }

    /// A `uvarint` used as a length or count: must fit what remains when
    /// each element takes at least `min_element_bytes`.
    pub fn length(&mut self, min_element_bytes: usize) -> Result<usize> {
        let start = self.offset();
        let n = self.uvarint()? as usize;
        self.check_length(start, n, min_element_bytes)?;
        Ok(n)
    }

    fn check_length(&self, start: u64, n: usize, min_element_bytes: usize) -> Result<()> {
        if n.saturating_mul(min_element_bytes) > self.remaining() {
            return Err(Error::corrupt(
                start,
                format!("length {n} exceeds the {} bytes that remain", self.remaining()),
            ));
        }
        Ok(())
    }

    /// Zigzag varint (32-bit).
    pub fn varint(&mut self) -> Result<i32> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }

    /// `varstr`: zigzag length then bytes; `None` for length -1.
    pub fn varstr_bytes(&mut self) -> Result<Option<&'a [u8]>> {
        let start = self.offset();
        let n = self.varint()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(Error::corrupt(start, format!("negative string length {n}")));
        }
        self.check_length(start, n as usize, 1)?;
        Ok(Some(self.bytes(n as usize)?))
    }

    /// `varstr` as UTF-8 text; null becomes `None`.
    pub fn varstr(&mut self) -> Result<Option<String>> {
        let start = self.offset();
        match self.varstr_bytes()? {
            None => Ok(None),
            Some(b) => String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|_| Error::corrupt(start, "string is not valid UTF-8")),
        }
    }

    /// `varstr` where null is not expected; null reads as "".
    pub fn varstr_nonnull(&mut self) -> Result<String> {
        Ok(self.varstr()?.unwrap_or_default())
    }

    /// `i32str` / `binary`: i32 length then bytes; length <= 0 reads as empty.
    pub fn i32_bytes(&mut self) -> Result<&'a [u8]> {
        let start = self.offset();
        let n = self.i32()?;
        if n <= 0 {
            return Ok(&[]);
        }
        self.check_length(start, n as usize, 1)?;
        self.bytes(n as usize)
    }

    pub fn i32str(&mut self) -> Result<String> {
        let start = self.offset();
        let b = self.i32_bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::corrupt(start, "string is not valid UTF-8"))
    }
}

/// Writers of the same primitives, appending to a `Vec<u8>`.
pub trait ByteWriter {
    fn put_u8(&mut self, v: u8);
    fn put_bool(&mut self, v: bool);
    fn put_i32(&mut self, v: i32);
    fn put_i64(&mut self, v: i64);
    fn put_f32(&mut self, v: f32);
    fn put_f64(&mut self, v: f64);
    fn put_uvarint(&mut self, v: u32);
    fn put_uvarint64(&mut self, v: u64);
    fn put_varint(&mut self, v: i32);
    fn put_varstr(&mut self, v: Option<&[u8]>);
    fn put_i32_bytes(&mut self, v: &[u8]);
}

impl ByteWriter for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_bool(&mut self, v: bool) {
        self.push(u8::from(v));
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_f32(&mut self, v: f32) {
        self.extend_from_slice(&v.to_bits().to_be_bytes());
    }
    fn put_f64(&mut self, v: f64) {
        self.extend_from_slice(&v.to_bits().to_be_bytes());
    }
    fn put_uvarint(&mut self, v: u32) {
        self.put_uvarint64(u64::from(v));
    }
    fn put_uvarint64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.push(v as u8);
    }
    fn put_varint(&mut self, v: i32) {
        self.put_uvarint(((v << 1) ^ (v >> 31)) as u32);
    }
    fn put_varstr(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.put_varint(-1),
            Some(b) => {
                self.put_varint(b.len() as i32);
                self.extend_from_slice(b);
            }
        }
    }
    fn put_i32_bytes(&mut self, v: &[u8]) {
        self.put_i32(v.len() as i32);
        self.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_examples_from_the_spec() {
        for (v, bytes) in [
            (0, vec![0x00]),
            (-1, vec![0x01]),
            (1, vec![0x02]),
            (2, vec![0x04]),
            (3, vec![0x06]),
            (300, vec![0xd8, 0x04]),
        ] {
            let mut out = Vec::new();
            out.put_varint(v);
            assert_eq!(out, bytes, "varint {v}");
            assert_eq!(ByteReader::new(&bytes).varint().unwrap(), v);
        }
    }

    #[test]
    fn absurd_lengths_are_rejected_without_allocating() {
        let mut buf = Vec::new();
        buf.put_varint(i32::MAX);
        let err = ByteReader::new(&buf).varstr().unwrap_err();
        assert!(matches!(err, Error::Corrupt { offset: 0, .. }), "{err}");
        let err = ByteReader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
            .uvarint()
            .unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }));
    }
}

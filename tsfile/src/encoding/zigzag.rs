//! ZIGZAG (spec §11.7) for INT32/DATE and INT64/TIMESTAMP: one group per
//! page of `uvarint byteLength, uvarint valueCount, LEB128(zigzag(v))...`.
//! The reader also accepts several groups in a row.

use super::MAX_PAGE_VALUES;
use crate::error::{Error, Result};
use crate::io::{ByteReader, ByteWriter};

#[inline]
fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn leb_len(u: u64) -> usize {
    // 1 byte per started 7 bits, at least one byte for 0.
    (64 - (u | 1).leading_zeros()).div_ceil(7) as usize
}

#[inline]
fn put_leb(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8 & 0x7f) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

fn encode_with(n: usize, zz: impl Fn(usize) -> u64, out: &mut Vec<u8>) {
    // Groups stay far below u32 lengths; a page never comes close.
    let mut start = 0;
    while start < n {
        let end = n.min(start + MAX_PAGE_VALUES);
        let bytes: usize = (start..end).map(|i| leb_len(zz(i))).sum();
        out.reserve(bytes + 10);
        out.put_uvarint(bytes as u32);
        out.put_uvarint((end - start) as u32);
        for i in start..end {
            put_leb(out, zz(i));
        }
        start = end;
    }
}

pub(crate) fn encode_i32(v: &[i32], out: &mut Vec<u8>) {
    encode_with(v.len(), |i| zigzag32(v[i]), out);
}

pub(crate) fn encode_i64(v: &[i64], out: &mut Vec<u8>) {
    encode_with(v.len(), |i| zigzag64(v[i]), out);
}

/// One LEB128 number of at most `max_bytes` bytes from `body[*pos..]`;
/// bits past 64 are dropped like Java's shifts do. A slice walk rather than
/// `ByteReader` calls, as this is the inner loop of ZIGZAG and PLAIN INT32.
#[inline]
pub(crate) fn get_leb(body: &[u8], pos: &mut usize, max_bytes: usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let b = *body.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f).wrapping_shl(7 * i as u32);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn decode_with<T>(
    input: &[u8],
    n: usize,
    max_bytes: usize,
    unzigzag: impl Fn(u64) -> T,
) -> Result<Vec<T>> {
    if n > MAX_PAGE_VALUES {
        return Err(Error::corrupt(0, format!("{n} values requested")));
    }
    let mut out = Vec::with_capacity(n);
    let mut r = ByteReader::new(input);
    while out.len() < n {
        if r.is_empty() {
            return Err(r.error(format!(
                "ZIGZAG data ends after {} of {n} values",
                out.len()
            )));
        }
        let len = r.length(1)?;
        let count_at = r.offset();
        let count = r.uvarint()? as usize;
        let body_at = r.offset();
        let body = r.bytes(len)?;
        if count > len {
            return Err(Error::corrupt(
                count_at,
                format!("ZIGZAG group of {count} values in {len} bytes"),
            ));
        }
        let mut pos = 0;
        for _ in 0..count.min(n - out.len()) {
            let at = pos;
            match get_leb(body, &mut pos, max_bytes) {
                Some(u) => out.push(unzigzag(u)),
                None => {
                    return Err(Error::corrupt(
                        body_at + at as u64,
                        "ZIGZAG number truncated or too long",
                    ))
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn decode_i32(input: &[u8], n: usize) -> Result<Vec<i32>> {
    decode_with(input, n, 5, |u| {
        let u = u as u32;
        ((u >> 1) as i32) ^ -((u & 1) as i32)
    })
}

pub(crate) fn decode_i64(input: &[u8], n: usize) -> Result<Vec<i64>> {
    decode_with(input, n, 10, |u| ((u >> 1) as i64) ^ -((u & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_length_count_then_numbers() {
        let mut out = Vec::new();
        encode_i32(&[0, -1, 1, 300, i32::MIN], &mut out);
        // zigzag: 0, 1, 2, 600 (d8 04), u32::MAX (ff ff ff ff 0f)
        assert_eq!(
            out,
            [10, 5, 0x00, 0x01, 0x02, 0xd8, 0x04, 0xff, 0xff, 0xff, 0xff, 0x0f]
        );
        assert_eq!(decode_i32(&out, 5).unwrap(), [0, -1, 1, 300, i32::MIN]);
    }

    #[test]
    fn int64_extremes_and_repeated_groups() {
        let v = [i64::MIN, i64::MAX, 0, -1, 1 << 40];
        let mut out = Vec::new();
        encode_i64(&v, &mut out);
        encode_i64(&v[..2], &mut out);
        let got = decode_i64(&out, 7).unwrap();
        assert_eq!(&got[..5], &v);
        assert_eq!(&got[5..], &v[..2]);
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        let mut good = Vec::new();
        encode_i64(&[5, -300, i64::MAX], &mut good);
        for cut in 0..good.len() {
            assert!(decode_i64(&good[..cut], 3).is_err(), "cut {cut}");
        }
        for bad in [
            &[0x02, 0x05, 0x00, 0x00][..],               // more values than bytes
            &[0x05, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff], // 32-bit number too long
            &[0xff, 0xff, 0xff, 0xff, 0x0f, 0x01],
        ] {
            assert!(matches!(decode_i32(bad, 1), Err(Error::Corrupt { .. })));
        }
        let mut state = 0x1357_9bdfu32;
        for _ in 0..2000 {
            let len = (state % 30) as usize;
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = decode_i32(&garbage, 20);
            let _ = decode_i64(&garbage, 20);
        }
    }
}

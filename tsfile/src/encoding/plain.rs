//! PLAIN (spec §11.1) for every data type: BOOLEAN one byte, INT32/DATE
//! zigzag varint, INT64/TIMESTAMP and FLOAT/DOUBLE big-endian, and
//! TEXT/STRING/BLOB as zigzag varint length + bytes.

use super::zigzag::get_leb;
use super::MAX_PAGE_VALUES;
use crate::error::{Error, Result};
use crate::io::{ByteReader, ByteWriter};
use crate::types::{DataType, PhysicalType, Values};

pub(crate) fn encode(values: &Values, out: &mut Vec<u8>) {
    match values {
        Values::Boolean(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        Values::Int32(v) => {
            out.reserve(v.len() * 2);
            for &x in v {
                out.put_varint(x);
            }
        }
        Values::Int64(v) => {
            out.reserve(v.len() * 8);
            for &x in v {
                out.extend_from_slice(&x.to_be_bytes());
            }
        }
        Values::Float(v) => {
            out.reserve(v.len() * 4);
            for &x in v {
                out.extend_from_slice(&x.to_bits().to_be_bytes());
            }
        }
        Values::Double(v) => {
            out.reserve(v.len() * 8);
            for &x in v {
                out.extend_from_slice(&x.to_bits().to_be_bytes());
            }
        }
        Values::Binary(v) => {
            out.reserve(v.iter().map(|b| b.len() + 2).sum());
            for b in v {
                // The length is a Java int; a value of 2 GiB cannot be a page.
                out.put_varint(b.len() as i32);
                out.extend_from_slice(b);
            }
        }
    }
}

/// Split `input` into `n` fixed-size big-endian chunks, or fail.
fn fixed<const N: usize>(input: &[u8], n: usize) -> Result<impl Iterator<Item = [u8; N]> + '_> {
    let need = n.saturating_mul(N);
    if need > input.len() {
        return Err(Error::corrupt(
            input.len() as u64,
            format!(
                "PLAIN page needs {need} bytes for {n} values, has {}",
                input.len()
            ),
        ));
    }
    Ok(input[..need].chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    }))
}

pub(crate) fn decode(t: DataType, input: &[u8], n: usize) -> Result<Values> {
    if n > MAX_PAGE_VALUES {
        return Err(Error::corrupt(0, format!("{n} values requested")));
    }
    let values = match t.physical() {
        // Java reads any non-zero byte as true.
        PhysicalType::Boolean => Values::Boolean(fixed::<1>(input, n)?.map(|[b]| b != 0).collect()),
        PhysicalType::Int64 => {
            Values::Int64(fixed::<8>(input, n)?.map(i64::from_be_bytes).collect())
        }
        PhysicalType::Float => Values::Float(
            fixed::<4>(input, n)?
                .map(|b| f32::from_bits(u32::from_be_bytes(b)))
                .collect(),
        ),
        PhysicalType::Double => Values::Double(
            fixed::<8>(input, n)?
                .map(|b| f64::from_bits(u64::from_be_bytes(b)))
                .collect(),
        ),
        PhysicalType::Int32 => {
            if n > input.len() {
                return Err(Error::corrupt(
                    0,
                    format!("{n} varints cannot fit in {} bytes", input.len()),
                ));
            }
            let mut v = Vec::with_capacity(n);
            let mut pos = 0;
            for _ in 0..n {
                let at = pos;
                let u = get_leb(input, &mut pos, 5)
                    .ok_or_else(|| Error::corrupt(at as u64, "varint truncated or too long"))?
                    as u32;
                v.push(((u >> 1) as i32) ^ -((u & 1) as i32));
            }
            Values::Int32(v)
        }
        PhysicalType::Binary => {
            let mut r = ByteReader::new(input);
            if n > r.remaining() {
                return Err(r.error(format!("{n} strings cannot fit in {} bytes", input.len())));
            }
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let at = r.offset();
                let len = r.varint()?;
                if len < 0 {
                    return Err(Error::corrupt(at, format!("negative length {len}")));
                }
                v.push(r.bytes(len as usize)?.to_vec());
            }
            Values::Binary(v)
        }
    };
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_int32() {
        let mut out = Vec::new();
        encode(&Values::Int32(vec![10, -3, 300]), &mut out);
        assert_eq!(out, [0x14, 0x05, 0xd8, 0x04]);
        assert_eq!(
            decode(DataType::Int32, &out, 3).unwrap(),
            Values::Int32(vec![10, -3, 300])
        );
    }

    #[test]
    fn fixed_width_types_are_big_endian() {
        let mut out = Vec::new();
        encode(&Values::Int64(vec![1]), &mut out);
        encode(&Values::Float(vec![1.0]), &mut out);
        encode(&Values::Double(vec![-0.0]), &mut out);
        encode(&Values::Boolean(vec![true, false]), &mut out);
        encode(&Values::Binary(vec![b"yz".to_vec()]), &mut out);
        assert_eq!(
            out,
            [
                0, 0, 0, 0, 0, 0, 0, 1, 0x3f, 0x80, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0, 4, b'y',
                b'z'
            ]
        );
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        for t in DataType::ALL {
            assert!(decode(t, &[], 1).is_err(), "{t}");
            if t.physical() != PhysicalType::Boolean {
                assert!(decode(t, &[0x80], 1).is_err(), "{t}");
            }
        }
        // negative and oversized string lengths
        assert!(decode(DataType::Text, &[0x01], 1).is_err());
        assert!(decode(DataType::Blob, &[0xfe, 0xff, 0xff, 0xff, 0x0f], 1).is_err());
        assert!(decode(DataType::Int32, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 1).is_err());
        assert!(decode(DataType::Int64, &[0; 100], MAX_PAGE_VALUES + 1).is_err());
        assert!(decode(DataType::Double, &[0; 100], usize::MAX / 2).is_err());
    }
}

//! DICTIONARY (spec §11.6) for TEXT/STRING: the page's distinct values in
//! order of first appearance, then their indices as an INT32 RLE package.

use std::collections::HashMap;

use super::{rle, MAX_PAGE_VALUES};
use crate::error::{Error, Result};
use crate::io::{ByteReader, ByteWriter};

pub(crate) fn encode(v: &[Vec<u8>], out: &mut Vec<u8>) {
    if v.is_empty() {
        return;
    }
    let mut index: HashMap<&[u8], i32> = HashMap::new();
    let mut entries: Vec<&[u8]> = Vec::new();
    let ids: Vec<i32> = v
        .iter()
        .map(|value| {
            *index.entry(value.as_slice()).or_insert_with(|| {
                entries.push(value.as_slice());
                (entries.len() - 1) as i32
            })
        })
        .collect();
    out.reserve(entries.iter().map(|e| e.len() + 2).sum::<usize>() + ids.len() / 2 + 8);
    out.put_varint(entries.len() as i32);
    for e in &entries {
        out.put_varint(e.len() as i32);
        out.extend_from_slice(e);
    }
    rle::encode_i32(&ids, out);
}

pub(crate) fn decode(input: &[u8], n: usize) -> Result<Vec<Vec<u8>>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if n > MAX_PAGE_VALUES {
        return Err(Error::corrupt(0, format!("{n} values requested")));
    }
    let mut r = ByteReader::new(input);
    let count = r.varint()?;
    // Each entry takes at least its one-byte length.
    if count < 0 || count as usize > r.remaining() {
        return Err(Error::corrupt(0, format!("dictionary of {count} entries")));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let at = r.offset();
        let len = r.varint()?;
        if len < 0 {
            return Err(Error::corrupt(
                at,
                format!("dictionary entry of length {len}"),
            ));
        }
        entries.push(r.bytes(len as usize)?);
    }
    let ids_at = r.offset();
    let ids = rle::decode_i32_at(r.rest(), n, ids_at)?;
    ids.iter()
        .map(|&id| {
            entries
                .get(id as u32 as usize)
                .map(|e| e.to_vec())
                .ok_or_else(|| {
                    Error::corrupt(
                        ids_at,
                        format!("dictionary index {id} outside 0..{}", entries.len()),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn layout_is_entries_then_rle_indices() {
        let v = strings(&["on", "off", "on", ""]);
        let mut out = Vec::new();
        encode(&v, &mut out);
        let mut expect = vec![0x06, 0x04, b'o', b'n', 0x06, b'o', b'f', b'f', 0x00];
        rle::encode_i32(&[0, 1, 0, 2], &mut expect);
        assert_eq!(out, expect);
        assert_eq!(decode(&out, 4).unwrap(), v);
    }

    #[test]
    fn long_runs_of_one_value() {
        let mut v = strings(&["a"; 5000]);
        v.push(b"b".to_vec());
        let mut out = Vec::new();
        encode(&v, &mut out);
        assert!(out.len() < 40, "{}", out.len());
        assert_eq!(decode(&out, v.len()).unwrap(), v);
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        let mut good = Vec::new();
        encode(&strings(&["x", "yz", "x", "w"]), &mut good);
        for cut in 0..good.len() {
            assert!(decode(&good[..cut], 4).is_err(), "cut {cut}");
        }
        // index 5 with a one-entry dictionary
        let mut bad = vec![0x02, 0x02, b'x'];
        rle::encode_i32(&[5], &mut bad);
        assert!(matches!(decode(&bad, 1), Err(Error::Corrupt { .. })));
        // negative entry count and absurd entry count
        assert!(decode(&[0x01, 0x00], 1).is_err());
        assert!(decode(&[0xfe, 0xff, 0xff, 0xff, 0x0f], 1).is_err());
        let mut state = 0x0bad_f00du32;
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
            let _ = decode(&garbage, 10);
        }
    }
}

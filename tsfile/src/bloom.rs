//! The file-level bloom filter over series paths (spec §8.3), bit-compatible
//! with Apache TsFile's Java `BloomFilter` and its Murmur3 variant.

use crate::error::Result;
use crate::io::{ByteReader, ByteWriter};

const SEEDS: [u32; 8] = [5, 7, 11, 19, 31, 37, 43, 59];

/// A bloom filter as stored in TsFileMetadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BloomFilter {
    bits: Vec<u8>,
    size_in_bits: u32,
    hash_count: u32,
}

impl BloomFilter {
    /// Size a filter for `n` keys at error rate `p` (clamped to [0.01, 0.1]).
    pub fn with_capacity(n: usize, p: f64) -> Self {
        let p = p.clamp(0.01, 0.1);
        let ln2 = std::f64::consts::LN_2;
        let m = ((-(n as f64) * p.ln() / (ln2 * ln2)) as u32 + 1).max(256);
        let k = ((-p.ln() / ln2) as u32 + 1).min(8);
        BloomFilter {
            bits: vec![0; m.div_ceil(8) as usize],
            size_in_bits: m,
            hash_count: k,
        }
    }

    pub fn size_in_bits(&self) -> u32 {
        self.size_in_bits
    }

    pub fn hash_count(&self) -> u32 {
        self.hash_count
    }

    fn positions<'a>(&'a self, key: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        let m = self.size_in_bits.max(1);
        SEEDS[..self.hash_count as usize].iter().map(move |&seed| {
            let h = murmur_java(key, seed);
            let abs = if h == i32::MIN { 0 } else { h.unsigned_abs() };
            (abs % m) as usize
        })
    }

    pub fn add(&mut self, key: &[u8]) {
        let positions: Vec<usize> = self.positions(key).collect();
        for p in positions {
            self.bits[p / 8] |= 1 << (p % 8);
        }
    }

    /// False means the key is certainly absent.
    pub fn might_contain(&self, key: &[u8]) -> bool {
        self.positions(key)
            .all(|p| self.bits.get(p / 8).is_some_and(|b| b & (1 << (p % 8)) != 0))
    }

    /// Serialized form; trailing zero bytes are dropped as `BitSet.toByteArray` does.
    pub fn serialize(&self, out: &mut Vec<u8>) {
        let used = self.bits.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        out.put_uvarint(used as u32);
        out.extend_from_slice(&self.bits[..used]);
        out.put_uvarint(self.size_in_bits);
        out.put_uvarint(self.hash_count);
    }

    /// Returns `None` when the file stores no filter (length 0).
    pub fn deserialize(r: &mut ByteReader<'_>) -> Result<Option<Self>> {
        let len = r.length(1)?;
        if len == 0 {
            return Ok(None);
        }
        let stored = r.bytes(len)?;
        let size_in_bits = r.uvarint()?;
        let hash_count = r.uvarint()?.min(8);
        let needed = (size_in_bits as usize).div_ceil(8).max(len);
        if needed > 1 << 30 {
            return Err(r.error(format!("bloom filter of {size_in_bits} bits is absurd")));
        }
        let mut bits = stored.to_vec();
        bits.resize(needed, 0);
        Ok(Some(BloomFilter {
            bits,
            size_in_bits,
            hash_count,
        }))
    }
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ceb9fe1a85ec53);
    k ^ (k >> 33)
}

/// MurmurHash3 x64 128 with Java's quirks: tail bytes sign-extended,
/// result = low 32 bits of `h1 + h2` as a signed int.
fn murmur_java(key: &[u8], seed: u32) -> i32 {
    const C1: u64 = 0x87c37b91114253d5;
    const C2: u64 = 0x4cf5ad432745937f;
    let mut h1 = u64::from(seed);
    let mut h2 = u64::from(seed);
    let blocks = key.len() / 16;
    for i in 0..blocks {
        let b = &key[i * 16..i * 16 + 16];
        let mut k1 = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let mut k2 = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1.rotate_left(27).wrapping_add(h2).wrapping_mul(5).wrapping_add(0x52dce729);
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2.rotate_left(31).wrapping_add(h1).wrapping_mul(5).wrapping_add(0x38495ab5);
    }
    let tail = &key[blocks * 16..];
    let sx = |i: usize| tail[i] as i8 as i64 as u64;
    let mut k1: u64 = 0;
    let mut k2: u64 = 0;
    for i in (8..tail.len()).rev() {
        k2 ^= sx(i) << ((i - 8) * 8);
    }
    if tail.len() > 8 {
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
    }
    for i in (0..tail.len().min(8)).rev() {
        k1 ^= sx(i) << (i * 8);
    }
    if !tail.is_empty() {
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
    }
    let len = key.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1.wrapping_add(h2) as u32 as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_match_the_spec_example() {
        // Spec §8.3: key root.sg.d1.s1, m=256, seeds 5,7,11,19,31 → 17, 202, 201, 94, 190.
        let f = BloomFilter::with_capacity(1, 0.05);
        assert_eq!((f.size_in_bits(), f.hash_count()), (256, 5));
        let pos: Vec<usize> = f.positions(b"root.sg.d1.s1").collect();
        assert_eq!(pos, vec![17, 202, 201, 94, 190]);
    }

    #[test]
    fn added_keys_are_found() {
        let mut f = BloomFilter::with_capacity(100, 0.05);
        for i in 0..100 {
            f.add(format!("root.sg.d{i}.s\u{957f}").as_bytes());
        }
        for i in 0..100 {
            assert!(f.might_contain(format!("root.sg.d{i}.s\u{957f}").as_bytes()));
        }
        let mut out = Vec::new();
        f.serialize(&mut out);
        let back = BloomFilter::deserialize(&mut ByteReader::new(&out)).unwrap().unwrap();
        assert_eq!(back, f);
    }
}

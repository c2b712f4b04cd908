//! GORILLA (V2, encoding code 8; spec §11.5) for INT32/DATE, INT64/TIMESTAMP,
//! FLOAT and DOUBLE: XOR of each value with its predecessor, as a bit stream.
//!
//! All four types share one core over `W`-bit patterns held in a `u64`
//! (zero-extended for W = 32; floats as raw IEEE bits, so every NaN payload
//! survives). The writer reproduces Java's `GorillaEncoderV2` bit for bit,
//! including the END value and the forced final byte; the reader stops after
//! `n` values and never looks for END.

use super::bits::{BitReader, BitWriter};
use crate::error::{Error, Result};

/// END values Java appends after a page's last value (spec §11.5).
const END_I32: u32 = 0x8000_0000;
const END_I64: u64 = 0x8000_0000_0000_0000;
const END_F32: u32 = 0x7fc0_0000;
const END_F64: u64 = 0x7ff8_0000_0000_0000;

/// Width of the leading-zero and significant-bit-count fields.
const fn len_bits(w: u32) -> u32 {
    if w == 32 {
        5
    } else {
        6
    }
}

/// Encode `values` (W-bit patterns) followed by `end`.
fn encode_bits<const W: u32>(
    values: impl ExactSizeIterator<Item = u64>,
    end: u64,
    out: &mut Vec<u8>,
) {
    let l = len_bits(W);
    // Typical pages compress well; a small reservation avoids most regrowth.
    out.reserve(values.len() * (W as usize / 32) + 16);
    let mut w = BitWriter::new(out);
    let mut iter = values.chain(std::iter::once(end));
    // An empty page still carries END as its first value, like Java.
    let first = iter.next().unwrap_or(end);
    w.write(first, W);
    let mut prev = first;
    // "Infinite" stored lead: the first non-zero xor always takes '11'.
    let mut stored_lead = u32::MAX;
    let mut stored_trail = 0;
    for v in iter {
        let xor = prev ^ v;
        prev = v;
        if xor == 0 {
            w.write(0, 1);
            continue;
        }
        let lead = xor.leading_zeros() - (64 - W);
        let trail = xor.trailing_zeros();
        if lead >= stored_lead && trail >= stored_trail {
            w.write(0b10, 2);
            w.write(xor >> stored_trail, W - stored_lead - stored_trail);
        } else {
            let sig = W - lead - trail;
            // '11', lead, sig-1 in one field of 2 + 2L bits.
            let header = (0b11 << (2 * l)) | (u64::from(lead) << l) | u64::from(sig - 1);
            w.write(header, 2 + 2 * l);
            w.write(xor >> trail, sig);
            stored_lead = lead;
            stored_trail = trail;
        }
    }
    w.finish_forced();
}

/// Decode exactly `n` W-bit patterns, mapping each through `conv`.
#[inline]
fn decode_bits<const W: u32, T>(input: &[u8], n: usize, conv: impl Fn(u64) -> T) -> Result<Vec<T>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    // The first value takes W bits and every later one at least one bit.
    let min_bits = u64::from(W) + (n as u64 - 1);
    if min_bits > input.len() as u64 * 8 {
        return Err(Error::corrupt(
            input.len() as u64,
            format!(
                "GORILLA page of {} bytes cannot hold {n} values",
                input.len()
            ),
        ));
    }
    let l = len_bits(W);
    let mut out = Vec::with_capacity(n.min(input.len() * 8 + 1));
    let mut r = BitReader::new(input);
    let mut prev = r.read_long(W)?;
    out.push(conv(prev));
    // No '11' seen yet: a '10' now has no stored lead/trail to reuse.
    let mut sig = 0u32;
    let mut trail = 0u32;
    for _ in 1..n {
        if r.read_bit()? {
            if r.read_bit()? {
                let header = r.read(2 * l)?;
                let lead = (header >> l) as u32;
                let new_sig = (header & ((1 << l) - 1)) as u32 + 1;
                if lead + new_sig > W {
                    return Err(r.error(format!(
                        "GORILLA leading zeros {lead} + significant bits {new_sig} exceed {W}"
                    )));
                }
                sig = new_sig;
                trail = W - lead - sig;
            } else if sig == 0 {
                return Err(r.error("GORILLA '10' control before any '11'"));
            }
            prev ^= r.read_long(sig)? << trail;
        }
        out.push(conv(prev));
    }
    Ok(out)
}

pub(crate) fn encode_i32(v: &[i32], out: &mut Vec<u8>) {
    encode_bits::<32>(
        v.iter().map(|&x| u64::from(x as u32)),
        u64::from(END_I32),
        out,
    )
}

pub(crate) fn decode_i32(input: &[u8], n: usize) -> Result<Vec<i32>> {
    decode_bits::<32, _>(input, n, |b| b as u32 as i32)
}

pub(crate) fn encode_i64(v: &[i64], out: &mut Vec<u8>) {
    encode_bits::<64>(v.iter().map(|&x| x as u64), END_I64, out)
}

pub(crate) fn decode_i64(input: &[u8], n: usize) -> Result<Vec<i64>> {
    decode_bits::<64, _>(input, n, |b| b as i64)
}

pub(crate) fn encode_f32(v: &[f32], out: &mut Vec<u8>) {
    encode_bits::<32>(
        v.iter().map(|x| u64::from(x.to_bits())),
        u64::from(END_F32),
        out,
    )
}

pub(crate) fn decode_f32(input: &[u8], n: usize) -> Result<Vec<f32>> {
    decode_bits::<32, _>(input, n, |b| f32::from_bits(b as u32))
}

pub(crate) fn encode_f64(v: &[f64], out: &mut Vec<u8>) {
    encode_bits::<64>(v.iter().map(|x| x.to_bits()), END_F64, out)
}

pub(crate) fn decode_f64(input: &[u8], n: usize) -> Result<Vec<f64>> {
    decode_bits::<64, _>(input, n, f64::from_bits)
}

#[cfg(test)]
mod tests {
    use super::strategies::*;
    use super::*;
    use proptest::prelude::*;

    fn enc<T: ?Sized>(f: fn(&T, &mut Vec<u8>), v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        f(v, &mut out);
        out
    }

    /// [1, 1, 2] as INT32, worked out by hand from spec §11.5:
    /// first value 1 in 32 bits; then '0' (same value); then xor 3:
    /// '11' lead=30 (11110) sig-1=1 (00001) bits '11'; then END 0x80000000,
    /// xor 0x80000002: '11' lead=0 (00000) sig-1=30 (11110) and the 31 bits
    /// of 0x40000001. 90 bits: eleven whole bytes and a final byte '01'+pad.
    #[test]
    fn golden_int32_1_1_2() {
        let bytes = enc(encode_i32, &[1, 1, 2][..]);
        assert_eq!(
            bytes,
            vec![0x00, 0x00, 0x00, 0x01, 0x7e, 0x0f, 0x83, 0xd0, 0x00, 0x00, 0x00, 0x40]
        );
        assert_eq!(decode_i32(&bytes, 3).unwrap(), vec![1, 1, 2]);
    }

    /// One value 0 and END 0x80000000: 32 zero bits, then '11' lead 0
    /// (00000) sig-1 0 (00000) and the single bit '1': 45 bits in 6 bytes.
    #[test]
    fn golden_int32_single_zero() {
        let bytes = enc(encode_i32, &[0][..]);
        assert_eq!(bytes, vec![0, 0, 0, 0, 0b1100_0000, 0b0000_1000]);
    }

    /// [0, 0, 0, 0]: 32 + 3 repeat bits + 13 END bits = 48 bits, exactly
    /// six bytes, so Java's forced final byte is a whole zero byte.
    #[test]
    fn golden_int32_ends_on_byte_boundary() {
        let bytes = enc(encode_i32, &[0, 0, 0, 0][..]);
        assert_eq!(bytes, vec![0, 0, 0, 0, 0x18, 0x01, 0x00]);
        assert_eq!(decode_i32(&bytes, 4).unwrap(), vec![0; 4]);
    }

    #[test]
    fn empty_page_holds_only_end() {
        assert_eq!(enc(encode_i32, &[][..]), vec![0x80, 0, 0, 0, 0]);
        assert_eq!(
            enc(encode_f64, &[][..]),
            vec![0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(decode_i32(&[], 0).unwrap(), Vec::<i32>::new());
        assert_eq!(
            decode_i64(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0], 0).unwrap(),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn end_value_in_the_middle_is_data() {
        let v = [5, i32::MIN, i32::MIN, 7, i32::MIN];
        assert_eq!(decode_i32(&enc(encode_i32, &v[..]), 5).unwrap(), v);
        let v = [1.5f32, f32::from_bits(END_F32), 2.5];
        let got = decode_f32(&enc(encode_f32, &v[..]), 3).unwrap();
        assert_eq!(bits32(&got), bits32(&v));
        let v = [i64::MIN, 0, i64::MIN];
        assert_eq!(decode_i64(&enc(encode_i64, &v[..]), 3).unwrap(), v);
    }

    #[test]
    fn long_constant_run_costs_one_bit_per_value() {
        let v = vec![123_456_789_i64; 10_000];
        let bytes = enc(encode_i64, &v[..]);
        // 64 bits first + 9_999 one-bit repeats + END (~2+12+64 bits).
        assert!(bytes.len() < 8 + 10_000 / 8 + 16, "{}", bytes.len());
        assert_eq!(decode_i64(&bytes, v.len()).unwrap(), v);
    }

    #[test]
    fn damaged_input_is_an_error() {
        let bytes = enc(encode_i64, &[1, 1000, -5, 77][..]);
        // Too few bytes for the claimed count.
        assert!(matches!(
            decode_i64(&bytes[..3], 2),
            Err(Error::Corrupt { .. })
        ));
        // More values claimed than encoded: runs into the end.
        assert!(decode_i64(&bytes, 400).is_err());
        // '10' before any '11'.
        let mut bad = vec![0, 0, 0, 0, 0b1000_0000];
        assert!(matches!(
            decode_i32(&bad, 2),
            Err(Error::Corrupt { offset: 4, .. })
        ));
        // '11' with lead 31 and sig 32.
        bad[4] = 0b1111_1111;
        bad.push(0b1111_0000);
        assert!(decode_i32(&bad, 2).is_err());
    }

    proptest! {
        #[test]
        fn i32_round_trip(v in i32_values()) {
            let bytes = enc(encode_i32, &v[..]);
            prop_assert_eq!(decode_i32(&bytes, v.len()).unwrap(), v);
        }

        #[test]
        fn i64_round_trip(v in i64_values()) {
            let bytes = enc(encode_i64, &v[..]);
            prop_assert_eq!(decode_i64(&bytes, v.len()).unwrap(), v);
        }

        #[test]
        fn f32_round_trip_bits(v in f32_values()) {
            let bytes = enc(encode_f32, &v[..]);
            prop_assert_eq!(bits32(&decode_f32(&bytes, v.len()).unwrap()), bits32(&v));
        }

        #[test]
        fn f64_round_trip_bits(v in f64_values()) {
            let bytes = enc(encode_f64, &v[..]);
            prop_assert_eq!(bits64(&decode_f64(&bytes, v.len()).unwrap()), bits64(&v));
        }

        /// Every truncation either fails or (when only END/padding was cut)
        /// still yields the original values; never a panic.
        #[test]
        fn truncated_input_fails_cleanly(v in i64_values(), f in f32_values()) {
            let bytes = enc(encode_i64, &v[..]);
            for cut in 0..bytes.len() {
                match decode_i64(&bytes[..cut], v.len()) {
                    Ok(got) => prop_assert_eq!(&got, &v),
                    Err(e) => {
                        let in_range = matches!(e, Error::Corrupt { offset, .. } if offset <= cut as u64);
                        prop_assert!(in_range, "{}", e);
                    }
                }
            }
            let bytes = enc(encode_f32, &f[..]);
            for cut in 0..bytes.len() {
                if let Ok(got) = decode_f32(&bytes[..cut], f.len()) {
                    prop_assert_eq!(bits32(&got), bits32(&f));
                }
            }
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64), n in 0usize..600) {
            for r in [decode_i32(&bytes, n).map(|v| v.len()), decode_i64(&bytes, n).map(|v| v.len()),
                      decode_f32(&bytes, n).map(|v| v.len()), decode_f64(&bytes, n).map(|v| v.len())] {
                match r {
                    Ok(len) => prop_assert_eq!(len, n),
                    Err(e) => {
                        let in_range = matches!(e, Error::Corrupt { offset, .. } if offset <= bytes.len() as u64);
                        prop_assert!(in_range, "{}", e);
                    }
                }
            }
        }
    }

    #[test]
    fn huge_jumps_and_extremes() {
        let v = [0, i32::MAX, i32::MIN, 0, -1, 1, i32::MIN + 1, i32::MAX - 1];
        assert_eq!(decode_i32(&enc(encode_i32, &v[..]), v.len()).unwrap(), v);
        let v = [0, i64::MAX, i64::MIN, 0, -1, 1, i64::MIN + 1, i64::MAX - 1];
        assert_eq!(decode_i64(&enc(encode_i64, &v[..]), v.len()).unwrap(), v);
        let v = [
            f64::MAX,
            -f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            -f64::NAN,
            0.0,
            -0.0,
        ];
        assert_eq!(
            bits64(&decode_f64(&enc(encode_f64, &v[..]), v.len()).unwrap()),
            bits64(&v)
        );
    }
}

/// Value generators shared by the GORILLA and CHIMP tests: edge values,
/// NaN payloads, END values in mid-page, runs and random walks.
#[cfg(test)]
pub(super) mod strategies {
    use proptest::prelude::*;

    /// END values of both encodings (spec §11.5, §11.8).
    const END_F32: u32 = 0x7fc0_0000;
    const END_F64: u64 = 0x7ff8_0000_0000_0000;

    pub(crate) fn bits32(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    pub(crate) fn bits64(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    pub(crate) fn i32_values() -> impl Strategy<Value = Vec<i32>> {
        let elem = prop_oneof![
            any::<i32>(),
            Just(i32::MIN),
            Just(i32::MAX),
            Just(0),
            Just(-1),
            -50i32..50,
        ];
        prop_oneof![
            prop::collection::vec(elem, 0..200),
            // Random walks with repeats: the common shape of sensor data.
            prop::collection::vec((-3i32..4, 1usize..20), 0..50).prop_map(|steps| {
                let mut x = 1000i32;
                let mut v = Vec::new();
                for (d, r) in steps {
                    x = x.wrapping_add(d);
                    v.extend(std::iter::repeat_n(x, r));
                }
                v
            }),
        ]
    }

    pub(crate) fn i64_values() -> impl Strategy<Value = Vec<i64>> {
        let elem = prop_oneof![
            any::<i64>(),
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0),
            Just(-1),
            -50i64..50,
            (0i64..1000).prop_map(|k| 1_700_000_000_000 + k * 1000),
        ];
        prop::collection::vec(elem, 0..200)
    }

    pub(crate) fn f32_values() -> impl Strategy<Value = Vec<f32>> {
        let elem = prop_oneof![
            any::<u32>().prop_map(f32::from_bits),
            (0x7f80_0001u32..=0x7fff_ffff).prop_map(f32::from_bits), // NaN payloads
            (0xff80_0001u32..=0xffff_ffff).prop_map(f32::from_bits), // negative NaNs
            Just(f32::INFINITY),
            Just(f32::NEG_INFINITY),
            Just(-0.0f32),
            Just(0.0f32),
            Just(f32::from_bits(1)), // smallest subnormal
            Just(f32::from_bits(END_F32)),
            (-1000i32..1000).prop_map(|k| k as f32 * 0.25),
        ];
        prop::collection::vec(elem, 0..200)
    }

    pub(crate) fn f64_values() -> impl Strategy<Value = Vec<f64>> {
        let elem = prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            (0x7ff0_0000_0000_0001u64..=0x7fff_ffff_ffff_ffff).prop_map(f64::from_bits),
            (0xfff0_0000_0000_0001u64..=0xffff_ffff_ffff_ffff).prop_map(f64::from_bits),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0f64),
            Just(0.0f64),
            Just(f64::from_bits(1)),
            Just(f64::MIN_POSITIVE / 3.0),
            Just(f64::from_bits(END_F64)),
            (-1000i32..1000).prop_map(|k| f64::from(k) * 0.1),
        ];
        prop::collection::vec(elem, 0..200)
    }

    /// Values that recur within a short window with only their high bits
    /// changed: what CHIMP's ring search (case `01`) exists for.
    pub(crate) fn i64_pooled() -> impl Strategy<Value = Vec<i64>> {
        (
            prop::collection::vec(any::<i64>(), 1..8),
            prop::collection::vec((any::<prop::sample::Index>(), 0u64..4, 14u32..60), 0..300),
        )
            .prop_map(|(pool, picks)| {
                picks
                    .into_iter()
                    .map(|(i, k, shift)| pool[i.index(pool.len())] ^ (k << shift) as i64)
                    .collect()
            })
    }

    pub(crate) fn i32_pooled() -> impl Strategy<Value = Vec<i32>> {
        (
            prop::collection::vec(any::<i32>(), 1..8),
            prop::collection::vec((any::<prop::sample::Index>(), 0u32..4, 12u32..30), 0..300),
        )
            .prop_map(|(pool, picks)| {
                picks
                    .into_iter()
                    .map(|(i, k, shift)| pool[i.index(pool.len())] ^ (k << shift) as i32)
                    .collect()
            })
    }
}

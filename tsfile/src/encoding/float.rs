//! FLOAT/DOUBLE under TS_2DIFF or RLE (spec §11.3): values become an int32
//! (FLOAT) or int64 (DOUBLE) stream scaled by `10^mpn`, with page bitmaps
//! for values stored rounded (Form 2) or as raw IEEE bits (Form 3).
//!
//! Conversion follows Java's `FloatEncoder` step for step (same range
//! tests, `Math.round` semantics), except that NaN keeps its payload bits
//! as the C++ writer does. [`lossless_max_point_number_f64`] and
//! [`lossless_max_point_number_f32`] tell a writer which `mpn`, if any,
//! stores a page bit-exactly in Form 1.

use super::{rle, ts2diff, Ts2DiffLayout, MAX_PAGE_VALUES};
use crate::error::{Error, Result};
use crate::io::{ByteReader, ByteWriter};
use crate::types::Encoding;

/// Page tag of Form 2 (some values rounded instead of scaled).
const FORM_ROUNDED: u32 = 0x7FFF_FFFF;
/// Page tag of Form 3 (some values stored as raw bits).
const FORM_RAW: u32 = 0x7FFF_FFFE;
/// Every mpn from 309 up gives `10^mpn = +inf` (Java `Math.pow`), so larger
/// requests are written as 309; this also keeps mpn clear of the tags.
const MAX_WRITTEN_MPN: u32 = 309;
/// Largest mpn the lossless search tries: beyond these, TS_2DIFF deltas
/// get wide enough that GORILLA is the better choice anyway.
const MAX_LOSSLESS_MPN_F64: u32 = 9;
const MAX_LOSSLESS_MPN_F32: u32 = 6;

/// Exact powers of ten that a double holds.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `10^mpn` as Java computes it; mpn is a Java int, so values past
/// `i32::MAX` are negative and mean 1.
fn scale_for(mpn: u32) -> f64 {
    if mpn == 0 || mpn > i32::MAX as u32 {
        1.0
    } else if let Some(&p) = POW10.get(mpn as usize) {
        p
    } else if mpn >= MAX_WRITTEN_MPN {
        f64::INFINITY
    } else {
        // Correctly rounded; only reached for absurd precisions.
        format!("1e{mpn}").parse().unwrap_or(f64::INFINITY)
    }
}

/// Java `Math.round(double)`: floor(a + 0.5) computed exactly, saturating,
/// NaN → 0.
pub(super) fn java_round_f64(a: f64) -> i64 {
    let bits = a.to_bits() as i64;
    let biased_exp = (bits & 0x7FF0_0000_0000_0000) >> 52;
    let shift = (53 - 2 + 1023) - biased_exp;
    if (shift & -64) == 0 {
        let mut r = (bits & 0x000F_FFFF_FFFF_FFFF) | 0x0010_0000_0000_0000;
        if bits < 0 {
            r = -r;
        }
        ((r >> shift) + 1) >> 1
    } else {
        a as i64
    }
}

/// Java `Math.round(float)`.
fn java_round_f32(a: f32) -> i32 {
    let bits = a.to_bits() as i32;
    let biased_exp = (bits & 0x7F80_0000) >> 23;
    let shift = (24 - 2 + 127) - biased_exp;
    if (shift & -32) == 0 {
        let mut r = (bits & 0x007F_FFFF) | 0x0080_0000;
        if bits < 0 {
            r = -r;
        }
        ((r >> shift) + 1) >> 1
    } else {
        a as i32
    }
}

/// How one value is stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scaled,
    Rounded,
    Raw,
}

/// Java `convertDoubleToLong`. `Long.MAX_VALUE` compares as 2^63.
#[inline]
#[allow(
    clippy::manual_range_contains,
    reason = "NaN must fail both tests, as in Java"
)]
fn convert_f64(v: f64, scale: f64) -> (i64, Kind) {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let p = v * scale;
    if p > LIMIT || p < -LIMIT {
        if v > LIMIT || v < -LIMIT {
            (v.to_bits() as i64, Kind::Raw)
        } else {
            (java_round_f64(v), Kind::Rounded)
        }
    } else if v.is_nan() {
        (v.to_bits() as i64, Kind::Raw)
    } else {
        (java_round_f64(p), Kind::Scaled)
    }
}

/// Java `convertFloatToInt`: the product is a double; the value-range test
/// compares floats, where `Integer.MAX_VALUE` becomes 2^31.
#[inline]
#[allow(
    clippy::manual_range_contains,
    reason = "NaN must fail both tests, as in Java"
)]
fn convert_f32(v: f32, scale: f64) -> (i32, Kind) {
    let p = f64::from(v) * scale;
    if p > f64::from(i32::MAX) || p < f64::from(i32::MIN) {
        if v > 2_147_483_648.0f32 || v < -2_147_483_648.0f32 {
            (v.to_bits() as i32, Kind::Raw)
        } else {
            (java_round_f32(v), Kind::Rounded)
        }
    } else if v.is_nan() {
        (v.to_bits() as i32, Kind::Raw)
    } else {
        // |p| <= 2^31 - 1 here, so the rounded value fits.
        (java_round_f64(p) as i32, Kind::Scaled)
    }
}

#[inline]
fn decode_f64_value(i: i64, kind: Kind, scale: f64) -> f64 {
    match kind {
        Kind::Scaled => i as f64 / scale,
        Kind::Rounded => i as f64,
        Kind::Raw => f64::from_bits(i as u64),
    }
}

#[inline]
fn decode_f32_value(i: i32, kind: Kind, scale: f64) -> f32 {
    match kind {
        Kind::Scaled => (f64::from(i) / scale) as f32,
        Kind::Rounded => f64::from(i) as f32,
        Kind::Raw => f32::from_bits(i as u32),
    }
}

/// Page-wide bitmaps (Java `BitMap`: `count/8 + 1` bytes, LSB-first).
struct Bitmaps {
    scaled: Vec<u8>,
    raw: Vec<u8>,
    any_rounded: bool,
    any_raw: bool,
}

impl Bitmaps {
    fn new(count: usize) -> Self {
        Bitmaps {
            scaled: vec![0; count / 8 + 1],
            raw: vec![0; count / 8 + 1],
            any_rounded: false,
            any_raw: false,
        }
    }

    #[inline]
    fn mark(&mut self, p: usize, kind: Kind) {
        let bit = 1u8 << (p % 8);
        match kind {
            Kind::Scaled => self.scaled[p / 8] |= bit,
            Kind::Rounded => self.any_rounded = true,
            Kind::Raw => {
                self.raw[p / 8] |= bit;
                self.any_raw = true;
            }
        }
    }

    /// Write the page header: Form 1 when every value is scaled.
    fn write_header(&self, count: usize, mpn: u32, out: &mut Vec<u8>) {
        if self.any_raw || self.any_rounded {
            out.put_uvarint(if self.any_raw { FORM_RAW } else { FORM_ROUNDED });
            out.put_uvarint(count as u32);
            out.extend_from_slice(&self.scaled);
            if self.any_raw {
                out.extend_from_slice(&self.raw);
            }
        }
        out.put_uvarint(mpn);
    }
}

pub(crate) fn encode_f32(v: &[f32], inner: Encoding, mpn: u32, layout: Ts2DiffLayout, out: &mut Vec<u8>) {
    if v.is_empty() {
        return;
    }
    let mpn = mpn.min(MAX_WRITTEN_MPN);
    let scale = scale_for(mpn);
    let mut bitmaps = Bitmaps::new(v.len());
    let mut ints = Vec::with_capacity(v.len());
    for (p, &x) in v.iter().enumerate() {
        let (i, kind) = convert_f32(x, scale);
        bitmaps.mark(p, kind);
        ints.push(i);
    }
    bitmaps.write_header(v.len(), mpn, out);
    match inner {
        Encoding::Rle => rle::encode_i32(&ints, out),
        _ if layout == Ts2DiffLayout::BytePacked => ts2diff::encode_i32_byte_packed(&ints, out),
        _ => ts2diff::encode_i32(&ints, out),
    }
}

pub(crate) fn encode_f64(v: &[f64], inner: Encoding, mpn: u32, layout: Ts2DiffLayout, out: &mut Vec<u8>) {
    if v.is_empty() {
        return;
    }
    let mpn = mpn.min(MAX_WRITTEN_MPN);
    let scale = scale_for(mpn);
    let mut bitmaps = Bitmaps::new(v.len());
    let mut ints = Vec::with_capacity(v.len());
    for (p, &x) in v.iter().enumerate() {
        let (i, kind) = convert_f64(x, scale);
        bitmaps.mark(p, kind);
        ints.push(i);
    }
    bitmaps.write_header(v.len(), mpn, out);
    match inner {
        Encoding::Rle => rle::encode_i64(&ints, out),
        _ if layout == Ts2DiffLayout::BytePacked => ts2diff::encode_i64_byte_packed(&ints, out),
        _ => ts2diff::encode_i64(&ints, out),
    }
}

/// A parsed page header; the integer stream starts at `body`.
struct Header<'a> {
    scale: f64,
    scaled: Option<&'a [u8]>,
    raw: Option<&'a [u8]>,
    body: usize,
}

impl Header<'_> {
    fn read(input: &[u8], n: usize) -> Result<Header<'_>> {
        let mut r = ByteReader::new(input);
        let tag = r.uvarint()?;
        let (mut scaled, mut raw) = (None, None);
        let mpn = if tag == FORM_ROUNDED || tag == FORM_RAW {
            let count_at = r.offset();
            let count = r.uvarint()? as usize;
            if count < n {
                return Err(Error::corrupt(
                    count_at,
                    format!("float bitmaps cover {count} values, the page has {n}"),
                ));
            }
            scaled = Some(r.bytes(count / 8 + 1)?);
            if tag == FORM_RAW {
                raw = Some(r.bytes(count / 8 + 1)?);
            }
            r.uvarint()?
        } else {
            tag
        };
        Ok(Header {
            scale: scale_for(mpn),
            scaled,
            raw,
            body: r.position(),
        })
    }

    #[inline]
    fn kind(&self, p: usize) -> Kind {
        let marked = |bm: Option<&[u8]>| {
            bm.and_then(|b| b.get(p / 8))
                .is_some_and(|byte| byte & (1 << (p % 8)) != 0)
        };
        if marked(self.raw) {
            Kind::Raw
        } else if self.scaled.is_none() || marked(self.scaled) {
            Kind::Scaled
        } else {
            Kind::Rounded
        }
    }
}

fn check_inner(inner: Encoding) -> Result<()> {
    match inner {
        Encoding::Rle | Encoding::Ts2Diff => Ok(()),
        other => Err(Error::Unsupported(format!("FLOAT/DOUBLE over {other}"))),
    }
}

pub(crate) fn decode_f32(input: &[u8], inner: Encoding, n: usize) -> Result<Vec<f32>> {
    check_inner(inner)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    if n > MAX_PAGE_VALUES {
        return Err(Error::corrupt(0, format!("{n} values requested")));
    }
    let h = Header::read(input, n)?;
    let body = &input[h.body..];
    let ints = match inner {
        Encoding::Rle => rle::decode_i32_at(body, n, h.body as u64)?,
        _ => ts2diff::decode_i32_at(body, n, h.body as u64)?,
    };
    Ok(if h.scaled.is_none() {
        ints.into_iter()
            .map(|i| decode_f32_value(i, Kind::Scaled, h.scale))
            .collect()
    } else {
        ints.into_iter()
            .enumerate()
            .map(|(p, i)| decode_f32_value(i, h.kind(p), h.scale))
            .collect()
    })
}

pub(crate) fn decode_f64(input: &[u8], inner: Encoding, n: usize) -> Result<Vec<f64>> {
    check_inner(inner)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    if n > MAX_PAGE_VALUES {
        return Err(Error::corrupt(0, format!("{n} values requested")));
    }
    let h = Header::read(input, n)?;
    let body = &input[h.body..];
    let ints = match inner {
        Encoding::Rle => rle::decode_i64_at(body, n, h.body as u64)?,
        _ => ts2diff::decode_i64_at(body, n, h.body as u64)?,
    };
    Ok(if h.scaled.is_none() {
        ints.into_iter()
            .map(|i| decode_f64_value(i, Kind::Scaled, h.scale))
            .collect()
    } else {
        ints.into_iter()
            .enumerate()
            .map(|(p, i)| decode_f64_value(i, h.kind(p), h.scale))
            .collect()
    })
}

/// The smallest `mpn` in `0..=9` with which every value is stored scaled
/// (Form 1, readable by older Apache readers) and decodes to the identical
/// bits; `None` if there is none (e.g. -0.0, NaN, infinities, values too
/// large or with too many digits). An empty slice gives `Some(0)`.
pub(crate) fn lossless_max_point_number_f64(values: &[f64]) -> Option<u32> {
    (0..=MAX_LOSSLESS_MPN_F64).find(|&mpn| {
        let scale = scale_for(mpn);
        values.iter().all(|&v| match convert_f64(v, scale) {
            (i, Kind::Scaled) => decode_f64_value(i, Kind::Scaled, scale).to_bits() == v.to_bits(),
            _ => false,
        })
    })
}

/// [`lossless_max_point_number_f64`] for FLOAT, trying `0..=6`.
pub(crate) fn lossless_max_point_number_f32(values: &[f32]) -> Option<u32> {
    (0..=MAX_LOSSLESS_MPN_F32).find(|&mpn| {
        let scale = scale_for(mpn);
        values.iter().all(|&v| match convert_f32(v, scale) {
            (i, Kind::Scaled) => decode_f32_value(i, Kind::Scaled, scale).to_bits() == v.to_bits(),
            _ => false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc64(v: &[f64], inner: Encoding, mpn: u32) -> Vec<u8> {
        let mut out = Vec::new();
        encode_f64(v, inner, mpn, Ts2DiffLayout::Blocks, &mut out);
        out
    }

    fn enc32(v: &[f32], inner: Encoding, mpn: u32) -> Vec<u8> {
        let mut out = Vec::new();
        encode_f32(v, inner, mpn, Ts2DiffLayout::Blocks, &mut out);
        out
    }

    #[test]
    fn java_round_matches_floor_of_x_plus_half() {
        for (x, r) in [
            (0.5, 1),
            (-0.5, 0),
            (-2.5, -2),
            (2.5, 3),
            (0.49999999999999994, 0),
            (4503599627370497.0, 4503599627370497),
            (-1e300, i64::MIN),
            (f64::INFINITY, i64::MAX),
            (f64::NAN, 0),
            (1e-300, 0),
        ] {
            assert_eq!(java_round_f64(x), r, "{x}");
        }
        for (x, r) in [
            (0.5f32, 1),
            (-0.5, 0),
            (-2.5, -2),
            (0.49999997, 0),
            (8388609.0, 8388609),
            (3e9, i32::MAX),
            (f32::NAN, 0),
        ] {
            assert_eq!(java_round_f32(x), r, "{x}");
        }
    }

    #[test]
    fn form_1_is_mpn_then_the_integer_stream() {
        let bytes = enc64(&[1.0, 2.5, -0.25], Encoding::Ts2Diff, 2);
        let mut expect = vec![0x02];
        ts2diff::encode_i64(&[100, 250, -25], &mut expect);
        assert_eq!(bytes, expect);
        assert_eq!(
            decode_f64(&bytes, Encoding::Ts2Diff, 3).unwrap(),
            [1.0, 2.5, -0.25]
        );
        let bytes = enc32(&[0.1, 0.2], Encoding::Rle, 1);
        let mut expect = vec![0x01];
        rle::encode_i32(&[1, 2], &mut expect);
        assert_eq!(bytes, expect);
        assert_eq!(decode_f32(&bytes, Encoding::Rle, 2).unwrap(), [0.1, 0.2]);
    }

    #[test]
    fn form_2_marks_scaled_values() {
        // 3e7 * 100 overflows int32 but 3e7 itself fits: stored rounded.
        let bytes = enc32(&[1.25, 3e7], Encoding::Ts2Diff, 2);
        let mut expect = vec![0xff, 0xff, 0xff, 0xff, 0x07, 0x02, 0b01, 0x02];
        ts2diff::encode_i32(&[125, 30_000_000], &mut expect);
        assert_eq!(bytes, expect);
        assert_eq!(
            decode_f32(&bytes, Encoding::Ts2Diff, 2).unwrap(),
            [1.25, 3e7]
        );
    }

    #[test]
    fn form_3_marks_raw_values() {
        let nan = f64::from_bits(0x7ff8_0000_0000_0001);
        let v = [1.5, 1e17, nan, f64::NEG_INFINITY, 1e300];
        let bytes = enc64(&v, Encoding::Rle, 2);
        let mut expect = vec![
            0xfe,
            0xff,
            0xff,
            0xff,
            0x07,
            0x05,
            0b0000_0001,
            0b0001_1100,
            0x02,
        ];
        rle::encode_i64(
            &[
                150,
                100_000_000_000_000_000,
                nan.to_bits() as i64,
                f64::NEG_INFINITY.to_bits() as i64,
                1e300f64.to_bits() as i64,
            ],
            &mut expect,
        );
        assert_eq!(bytes, expect);
        let got = decode_f64(&bytes, Encoding::Rle, 5).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&v));
    }

    #[test]
    fn bitmaps_have_count_over_8_plus_1_bytes() {
        let v = vec![f32::INFINITY; 8];
        let bytes = enc32(&v, Encoding::Ts2Diff, 2);
        // tag (5) + count (1) + 2 bitmaps of 8/8+1 = 2 bytes + mpn
        assert_eq!(&bytes[5..11], &[0x08, 0, 0, 0xff, 0, 0x02]);
        assert_eq!(decode_f32(&bytes, Encoding::Ts2Diff, 8).unwrap(), v);
    }

    #[test]
    fn large_mpn_is_capped_and_decodes_like_java() {
        // scale = +inf: 0 * inf is NaN and stored scaled as round(NaN) = 0;
        // 1 * inf overflows, so 1 is stored rounded (Form 2). mpn 309 = b5 02.
        let bytes = enc64(&[0.0, 1.0], Encoding::Ts2Diff, u32::MAX);
        assert_eq!(
            &bytes[..9],
            &[0xff, 0xff, 0xff, 0xff, 0x07, 0x02, 0b01, 0xb5, 0x02]
        );
        let got = decode_f64(&bytes, Encoding::Ts2Diff, 2).unwrap();
        assert_eq!(got, [0.0, 1.0]);
    }

    #[test]
    fn lossless_search() {
        assert_eq!(lossless_max_point_number_f64(&[1.0, 2.0, -3.0]), Some(0));
        assert_eq!(lossless_max_point_number_f64(&[1.5, 2.25, 0.1]), Some(2));
        assert_eq!(lossless_max_point_number_f64(&[20.123456789]), Some(9));
        assert_eq!(lossless_max_point_number_f64(&[0.1 + 0.2]), None);
        assert_eq!(lossless_max_point_number_f64(&[-0.0]), None);
        assert_eq!(lossless_max_point_number_f64(&[1.0, f64::NAN]), None);
        assert_eq!(lossless_max_point_number_f64(&[f64::INFINITY]), None);
        assert_eq!(lossless_max_point_number_f64(&[1e300]), None);
        assert_eq!(lossless_max_point_number_f64(&[5e-324]), None);
        assert_eq!(lossless_max_point_number_f32(&[0.1, 25.5]), Some(1));
        assert_eq!(lossless_max_point_number_f32(&[-0.0]), None);
        assert_eq!(lossless_max_point_number_f32(&[3e9]), None);
        assert_eq!(lossless_max_point_number_f32(&[1.0e-7]), None);
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        let good = enc64(&[1.5, 1e17, f64::NAN, 7.0], Encoding::Ts2Diff, 2);
        for cut in 0..good.len() {
            assert!(
                decode_f64(&good[..cut], Encoding::Ts2Diff, 4).is_err(),
                "cut {cut}"
            );
        }
        // bitmap count smaller than the page
        let short = [0xff, 0xff, 0xff, 0xff, 0x07, 0x01, 0x00, 0x02];
        assert!(matches!(
            decode_f64(&short, Encoding::Ts2Diff, 4),
            Err(Error::Corrupt { offset: 5, .. })
        ));
        // bitmap count far beyond the input
        let huge = [0xfe, 0xff, 0xff, 0xff, 0x07, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode_f32(&huge, Encoding::Rle, 4).is_err());
        assert!(decode_f32(&[], Encoding::Gorilla, 1).is_err());
        let mut state = 0x2468_ace1u32;
        for _ in 0..2000 {
            let len = (state % 40) as usize;
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = decode_f32(&garbage, Encoding::Ts2Diff, 20);
            let _ = decode_f64(&garbage, Encoding::Rle, 20);
        }
    }

    /// Encode with `mpn`, and say whether the page is Form 1 and decodes
    /// to the identical bits under both inner encodings.
    fn exact_in_form_1_f64(v: &[f64], mpn: u32) -> bool {
        [Encoding::Ts2Diff, Encoding::Rle].into_iter().all(|inner| {
            let bytes = enc64(v, inner, mpn);
            let form_1 = v.is_empty() || u32::from(bytes[0]) == mpn;
            let got = decode_f64(&bytes, inner, v.len()).unwrap();
            form_1 && got.iter().zip(v).all(|(a, b)| a.to_bits() == b.to_bits())
        })
    }

    fn exact_in_form_1_f32(v: &[f32], mpn: u32) -> bool {
        [Encoding::Ts2Diff, Encoding::Rle].into_iter().all(|inner| {
            let bytes = enc32(v, inner, mpn);
            let form_1 = v.is_empty() || u32::from(bytes[0]) == mpn;
            let got = decode_f32(&bytes, inner, v.len()).unwrap();
            form_1 && got.iter().zip(v).all(|(a, b)| a.to_bits() == b.to_bits())
        })
    }

    fn decimals_f64() -> impl Strategy<Value = Vec<f64>> {
        let decimal = (0u32..=10, -(1i64 << 45)..(1i64 << 45))
            .prop_map(|(m, k)| k as f64 / 10f64.powi(m as i32));
        prop_oneof![
            3 => prop::collection::vec(decimal, 0..40),
            1 => prop::collection::vec(any::<f64>(), 0..4),
            1 => (prop::collection::vec(-1000i64..1000, 1..40), any::<f64>())
                .prop_map(|(ks, x)| ks.into_iter().map(|k| k as f64 / 8.0).chain([x]).collect()),
        ]
    }

    fn decimals_f32() -> impl Strategy<Value = Vec<f32>> {
        let decimal = (0u32..=7, -(1i32 << 20)..(1i32 << 20))
            .prop_map(|(m, k)| (f64::from(k) / 10f64.powi(m as i32)) as f32);
        prop_oneof![
            3 => prop::collection::vec(decimal, 0..40),
            1 => prop::collection::vec(any::<f32>(), 0..4),
        ]
    }

    proptest! {
        #[test]
        fn lossless_f64_is_exact_and_smallest(v in decimals_f64()) {
            let found = lossless_max_point_number_f64(&v);
            let end = found.unwrap_or(MAX_LOSSLESS_MPN_F64 + 1);
            for smaller in 0..end {
                prop_assert!(!exact_in_form_1_f64(&v, smaller), "mpn {smaller} works too");
            }
            if let Some(mpn) = found {
                prop_assert!(exact_in_form_1_f64(&v, mpn), "mpn {mpn} is not exact");
            }
        }

        #[test]
        fn lossless_f32_is_exact_and_smallest(v in decimals_f32()) {
            let found = lossless_max_point_number_f32(&v);
            let end = found.unwrap_or(MAX_LOSSLESS_MPN_F32 + 1);
            for smaller in 0..end {
                prop_assert!(!exact_in_form_1_f32(&v, smaller), "mpn {smaller} works too");
            }
            if let Some(mpn) = found {
                prop_assert!(exact_in_form_1_f32(&v, mpn), "mpn {mpn} is not exact");
            }
        }
    }
}

//! Round trips through the public encoding API for every data type and
//! every encoding it may be written with (`DataType::writable_encodings`).
//!
//! Lossless encodings must give back the identical values (floats compared
//! by bits, so NaN payloads and -0.0 count). FLOAT/DOUBLE under TS_2DIFF and
//! RLE round to `max_point_number` decimals by design: values with at most
//! that many decimals must come back bit-exact, others within the rounding.

#![allow(clippy::unwrap_used)] // tests may unwrap

use proptest::prelude::*;
use tsfile::encoding::{decode, decode_times, encode, encode_times, EncodeOptions, Ts2DiffLayout};
use tsfile::{DataType, Encoding, PhysicalType, Values};

fn types_of(physical: PhysicalType) -> Vec<DataType> {
    DataType::ALL
        .into_iter()
        .filter(|t| t.physical() == physical)
        .collect()
}

fn is_lossy(data_type: DataType, encoding: Encoding) -> bool {
    matches!(
        data_type.physical(),
        PhysicalType::Float | PhysicalType::Double
    ) && matches!(encoding, Encoding::Ts2Diff | Encoding::Rle)
}

fn round_trip(
    data_type: DataType,
    encoding: Encoding,
    values: &Values,
    options: &EncodeOptions,
) -> Values {
    let mut bytes = vec![0xAA]; // encoders append; keep a foreign prefix
    encode(encoding, data_type, values, options, &mut bytes)
        .unwrap_or_else(|e| panic!("encode {data_type} {encoding}: {e}"));
    assert_eq!(
        bytes[0], 0xAA,
        "{data_type} {encoding} overwrote the buffer"
    );
    decode(encoding, data_type, &bytes[1..], values.len())
        .unwrap_or_else(|e| panic!("decode {data_type} {encoding}: {e}"))
}

/// Float columns compared by bits; everything else by value.
fn same(a: &Values, b: &Values) -> bool {
    match (a, b) {
        (Values::Float(x), Values::Float(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
        }
        (Values::Double(x), Values::Double(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
        }
        _ => a == b,
    }
}

/// Both TS_2DIFF layouts, with the other options at their defaults.
const LAYOUTS: [Ts2DiffLayout; 2] = [Ts2DiffLayout::Blocks, Ts2DiffLayout::BytePacked];

/// Every lossless (type, encoding) pair of `physical` gives back `values`,
/// TS_2DIFF in both layouts.
fn check_lossless(physical: PhysicalType, values: &Values) {
    for ts2diff_layout in LAYOUTS {
        let options = EncodeOptions { ts2diff_layout, ..EncodeOptions::default() };
        for data_type in types_of(physical) {
            for &encoding in data_type.writable_encodings() {
                if is_lossy(data_type, encoding) {
                    continue;
                }
                let got = round_trip(data_type, encoding, values, &options);
                assert!(
                    same(&got, values),
                    "{data_type} {encoding} {ts2diff_layout:?}: {} values differ",
                    values.len()
                );
            }
        }
    }
}

/// A lossy FLOAT/DOUBLE round trip stays within the decimal rounding:
/// non-finite values keep their bits, finite ones move by at most half a
/// unit (values too large to scale are rounded to integers) plus float error.
fn check_lossy_f64(values: &[f64], mpn: u32) {
    for (encoding, ts2diff_layout) in [
        (Encoding::Ts2Diff, Ts2DiffLayout::Blocks),
        (Encoding::Ts2Diff, Ts2DiffLayout::BytePacked),
        (Encoding::Rle, Ts2DiffLayout::Blocks),
    ] {
        let options = EncodeOptions { max_point_number: mpn, ts2diff_layout };
        let input = Values::Double(values.to_vec());
        let Values::Double(got) = round_trip(DataType::Double, encoding, &input, &options) else {
            panic!("DOUBLE decoded to another type");
        };
        assert_eq!(got.len(), values.len());
        for (v, d) in values.iter().zip(&got) {
            if v.is_finite() {
                let bound = 0.5 + v.abs() * 2f64.powi(-50);
                assert!(
                    (d - v).abs() <= bound,
                    "{encoding} mpn {mpn}: {v:e} -> {d:e}"
                );
            } else {
                assert_eq!(v.to_bits(), d.to_bits(), "{encoding}: {v} -> {d}");
            }
        }
    }
}

fn check_lossy_f32(values: &[f32], mpn: u32) {
    for (encoding, ts2diff_layout) in [
        (Encoding::Ts2Diff, Ts2DiffLayout::Blocks),
        (Encoding::Ts2Diff, Ts2DiffLayout::BytePacked),
        (Encoding::Rle, Ts2DiffLayout::Blocks),
    ] {
        let options = EncodeOptions { max_point_number: mpn, ts2diff_layout };
        let input = Values::Float(values.to_vec());
        let Values::Float(got) = round_trip(DataType::Float, encoding, &input, &options) else {
            panic!("FLOAT decoded to another type");
        };
        assert_eq!(got.len(), values.len());
        for (v, d) in values.iter().zip(&got) {
            if v.is_finite() {
                let bound = 0.5 + f64::from(v.abs()) * 2f64.powi(-22);
                let diff = (f64::from(*d) - f64::from(*v)).abs();
                assert!(diff <= bound, "{encoding} mpn {mpn}: {v:e} -> {d:e}");
            } else {
                assert_eq!(v.to_bits(), d.to_bits(), "{encoding}: {v} -> {d}");
            }
        }
    }
}

/// Values with at most `mpn` decimals come back bit-exact under TS_2DIFF/RLE.
fn check_decimals_exact(data_type: DataType, values: &Values, mpn: u32) {
    for (encoding, ts2diff_layout) in [
        (Encoding::Ts2Diff, Ts2DiffLayout::Blocks),
        (Encoding::Ts2Diff, Ts2DiffLayout::BytePacked),
        (Encoding::Rle, Ts2DiffLayout::Blocks),
    ] {
        let options = EncodeOptions { max_point_number: mpn, ts2diff_layout };
        let got = round_trip(data_type, encoding, values, &options);
        assert!(same(&got, values), "{data_type} {encoding} mpn {mpn}");
    }
}

// ---- strategies: segments that mimic real series and stress the encoders

/// Runs, ramps, random values and extremes, concatenated.
fn int_series<T: Copy + std::fmt::Debug + 'static>(
    any_value: impl Strategy<Value = T> + Clone + 'static,
    extremes: Vec<T>,
    ramp: fn(T, i64, usize) -> Vec<T>,
) -> impl Strategy<Value = Vec<T>> {
    let segment = prop_oneof![
        3 => prop::collection::vec(any_value.clone(), 1..40),
        2 => (any_value.clone(), 1usize..300).prop_map(|(v, n)| vec![v; n]),
        2 => (any_value.clone(), -1000i64..1000, 1usize..300).prop_map(move |(v, s, n)| ramp(v, s, n)),
        1 => prop::sample::subsequence(extremes.clone(), 1..=extremes.len()),
    ];
    prop::collection::vec(segment, 0..6).prop_map(|segs| segs.concat())
}

fn i32_series() -> impl Strategy<Value = Vec<i32>> {
    int_series(
        any::<i32>(),
        vec![i32::MIN, i32::MAX, 0, -1, 1, i32::MIN, i32::MAX],
        |v, s, n| {
            (0..n)
                .map(|i| v.wrapping_add((s as i32).wrapping_mul(i as i32)))
                .collect()
        },
    )
}

fn i64_series() -> impl Strategy<Value = Vec<i64>> {
    int_series(
        any::<i64>(),
        vec![i64::MIN, i64::MAX, 0, -1, 1, i64::MIN, i64::MAX],
        |v, s, n| {
            (0..n)
                .map(|i| v.wrapping_add(s.wrapping_mul(i as i64)))
                .collect()
        },
    )
}

const F64_SPECIALS: [f64; 14] = [
    0.0,
    -0.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
    5e-324,
    -2.5e-320,
    f64::MAX,
    f64::MIN,
    1.0,
    -1.0,
    1e300,
    9_223_372_036_854_775_808.0,
];

fn f64_series() -> impl Strategy<Value = Vec<f64>> {
    let segment = prop_oneof![
        3 => prop::collection::vec(any::<f64>(), 1..40),
        2 => (any::<f64>(), 1usize..300).prop_map(|(v, n)| vec![v; n]),
        2 => prop::collection::vec((-1_000_000i64..1_000_000).prop_map(|k| k as f64 / 100.0), 1..200),
        1 => prop::collection::vec(any::<u64>().prop_map(f64::from_bits), 1..20),
        1 => prop::sample::subsequence(F64_SPECIALS.to_vec(), 1..=F64_SPECIALS.len()),
    ];
    prop::collection::vec(segment, 0..6).prop_map(|segs| segs.concat())
}

const F32_SPECIALS: [f32; 13] = [
    0.0,
    -0.0,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::MIN_POSITIVE,
    1e-45,
    -3e-40,
    f32::MAX,
    f32::MIN,
    2147483648.0,
    -2147483648.0,
    3e9,
];

fn f32_series() -> impl Strategy<Value = Vec<f32>> {
    let segment = prop_oneof![
        3 => prop::collection::vec(any::<f32>(), 1..40),
        2 => (any::<f32>(), 1usize..300).prop_map(|(v, n)| vec![v; n]),
        2 => prop::collection::vec((-100_000i32..100_000).prop_map(|k| (f64::from(k) / 10.0) as f32), 1..200),
        1 => prop::collection::vec(any::<u32>().prop_map(f32::from_bits), 1..20),
        1 => prop::sample::subsequence(F32_SPECIALS.to_vec(), 1..=F32_SPECIALS.len()),
    ];
    prop::collection::vec(segment, 0..6).prop_map(|segs| segs.concat())
}

fn bool_series() -> impl Strategy<Value = Vec<bool>> {
    let segment = prop_oneof![
        prop::collection::vec(any::<bool>(), 1..50),
        (any::<bool>(), 1usize..400).prop_map(|(v, n)| vec![v; n]),
    ];
    prop::collection::vec(segment, 0..6).prop_map(|segs| segs.concat())
}

fn binary_series() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let word = prop_oneof![
        3 => prop::sample::select(vec!["", "on", "off", "ü-ñ", "a much longer status text"])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ];
    let segment = prop_oneof![
        prop::collection::vec(word.clone(), 1..30),
        (word, 1usize..200).prop_map(|(w, n)| vec![w; n]),
    ];
    prop::collection::vec(segment, 0..5).prop_map(|segs| segs.concat())
}

/// Decimal values that FLOAT/DOUBLE TS_2DIFF/RLE must keep exactly: `k /
/// 10^mpn` with `|k|` small enough that scaling back is exact.
fn f64_decimals() -> impl Strategy<Value = (u32, Vec<f64>)> {
    (0u32..=9).prop_flat_map(|mpn| {
        let scale = 10f64.powi(mpn as i32);
        let k = prop_oneof![-(1i64 << 50)..(1i64 << 50), -10_000i64..10_000, Just(0i64),];
        (
            Just(mpn),
            prop::collection::vec(k.prop_map(move |k| k as f64 / scale), 0..300),
        )
    })
}

fn f32_decimals() -> impl Strategy<Value = (u32, Vec<f32>)> {
    (0u32..=6).prop_flat_map(|mpn| {
        let scale = 10f64.powi(mpn as i32);
        let k = prop_oneof![-(1i32 << 22)..(1i32 << 22), -1000i32..1000];
        (
            Just(mpn),
            prop::collection::vec(k.prop_map(move |k| (f64::from(k) / scale) as f32), 0..300),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn booleans(v in bool_series()) {
        check_lossless(PhysicalType::Boolean, &Values::Boolean(v));
    }

    #[test]
    fn int32_and_date(v in i32_series()) {
        check_lossless(PhysicalType::Int32, &Values::Int32(v));
    }

    #[test]
    fn int64_and_timestamp(v in i64_series()) {
        check_lossless(PhysicalType::Int64, &Values::Int64(v));
    }

    #[test]
    fn float_lossless_encodings(v in f32_series()) {
        check_lossless(PhysicalType::Float, &Values::Float(v));
    }

    #[test]
    fn double_lossless_encodings(v in f64_series()) {
        check_lossless(PhysicalType::Double, &Values::Double(v));
    }

    #[test]
    fn text_string_blob(v in binary_series()) {
        check_lossless(PhysicalType::Binary, &Values::Binary(v));
    }

    #[test]
    fn double_ts2diff_rle_stay_within_rounding(v in f64_series(), mpn in 0u32..=12) {
        check_lossy_f64(&v, mpn);
    }

    #[test]
    fn float_ts2diff_rle_stay_within_rounding(v in f32_series(), mpn in 0u32..=8) {
        check_lossy_f32(&v, mpn);
    }

    #[test]
    fn double_decimals_are_exact((mpn, v) in f64_decimals()) {
        check_decimals_exact(DataType::Double, &Values::Double(v), mpn);
    }

    #[test]
    fn float_decimals_are_exact((mpn, v) in f32_decimals()) {
        check_decimals_exact(DataType::Float, &Values::Float(v), mpn);
    }

    #[test]
    fn time_columns(v in i64_series()) {
        let mut bytes = Vec::new();
        encode_times(&v, &mut bytes);
        prop_assert_eq!(decode_times(&bytes).unwrap(), v);
    }
}

#[test]
fn empty_and_single_value_pages() {
    let cases: Vec<(PhysicalType, Values, Values)> = vec![
        (
            PhysicalType::Boolean,
            Values::Boolean(vec![]),
            Values::Boolean(vec![true]),
        ),
        (
            PhysicalType::Int32,
            Values::Int32(vec![]),
            Values::Int32(vec![i32::MIN]),
        ),
        (
            PhysicalType::Int64,
            Values::Int64(vec![]),
            Values::Int64(vec![i64::MAX]),
        ),
        (
            PhysicalType::Float,
            Values::Float(vec![]),
            Values::Float(vec![-0.0]),
        ),
        (
            PhysicalType::Double,
            Values::Double(vec![]),
            Values::Double(vec![f64::NAN]),
        ),
        (
            PhysicalType::Binary,
            Values::Binary(vec![]),
            Values::Binary(vec![vec![]]),
        ),
    ];
    for (physical, empty, single) in cases {
        check_lossless(physical, &empty);
        check_lossless(physical, &single);
    }
    for data_type in [DataType::Float, DataType::Double] {
        let empty = Values::empty(data_type);
        check_decimals_exact(data_type, &empty, 2);
    }
    check_decimals_exact(DataType::Double, &Values::Double(vec![12.34]), 2);
    check_decimals_exact(DataType::Float, &Values::Float(vec![12.5]), 2);
    assert!(decode_times(&[]).unwrap().is_empty());
}

#[test]
fn long_constant_runs_and_huge_jumps() {
    let n = 100_000;
    let mut jumps: Vec<i64> = (0..n as i64)
        .map(|i| {
            if i % 2 == 0 {
                i64::MIN + i
            } else {
                i64::MAX - i
            }
        })
        .collect();
    check_lossless(PhysicalType::Int64, &Values::Int64(vec![42; n]));
    check_lossless(PhysicalType::Int64, &Values::Int64(jumps.clone()));
    jumps.truncate(5000);
    let jumps32: Vec<i32> = jumps.iter().map(|&x| (x >> 32) as i32).collect();
    check_lossless(PhysicalType::Int32, &Values::Int32(vec![-7; n]));
    check_lossless(PhysicalType::Int32, &Values::Int32(jumps32));
    check_lossless(PhysicalType::Boolean, &Values::Boolean(vec![true; n]));
    check_lossless(PhysicalType::Double, &Values::Double(vec![-0.0; n]));
    check_lossless(PhysicalType::Float, &Values::Float(vec![f32::NAN; n]));
    check_lossless(
        PhysicalType::Binary,
        &Values::Binary(vec![b"steady".to_vec(); n]),
    );
    check_decimals_exact(DataType::Double, &Values::Double(vec![21.5; n]), 1);
    check_lossy_f64(&[1e300, -1e300, 1.0, f64::MAX, f64::MIN, 0.5, -0.5], 2);
    check_lossy_f32(&[3e38, -3e38, 1.0, 2147483648.0, -0.5, 0.5], 2);
}

#[test]
fn regular_timestamps_are_tiny() {
    let times: Vec<i64> = (0..10_000).map(|i| 1_700_000_000_000 + i * 1000).collect();
    let mut bytes = Vec::new();
    encode_times(&times, &mut bytes);
    // 78 blocks of 24 header bytes, no packed bits at all
    assert_eq!(bytes.len(), 10_000usize.div_ceil(129) * 24);
    assert_eq!(decode_times(&bytes).unwrap(), times);
}

#[test]
fn decoding_more_values_than_encoded_is_an_error() {
    let options = EncodeOptions::default();
    for data_type in DataType::ALL {
        let values = match data_type.physical() {
            PhysicalType::Boolean => Values::Boolean(vec![true, false, true]),
            PhysicalType::Int32 => Values::Int32(vec![1, 2, 3]),
            PhysicalType::Int64 => Values::Int64(vec![1, 2, 3]),
            PhysicalType::Float => Values::Float(vec![1.0, 2.0, 3.0]),
            PhysicalType::Double => Values::Double(vec![1.0, 2.0, 3.0]),
            PhysicalType::Binary => {
                Values::Binary(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
            }
        };
        for &encoding in data_type.writable_encodings() {
            let mut bytes = Vec::new();
            encode(encoding, data_type, &values, &options, &mut bytes).unwrap();
            let more = decode(encoding, data_type, &bytes, 4 * 64);
            assert!(more.is_err(), "{data_type} {encoding} invented values");
        }
    }
}

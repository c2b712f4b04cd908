//! Files written by our writer: byte-identical to Apache's for the worked
//! example, and read back value for value for every shape the writer makes.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;

use proptest::prelude::*;
use tsfile::writer::{AlignedColumn, SeriesChunk, SeriesSchema, TsFileWriter, WriterOptions};
use tsfile::{Compression, DataType, DeviceId, Encoding, TimeRange, TsFileReader, Values};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

#[test]
fn tiny_tree_file_is_byte_identical_to_apaches() {
    let schema = SeriesSchema::new("s1", DataType::Int32)
        .with_encoding(Encoding::Plain)
        .with_compression(Compression::Uncompressed);
    let mut w = TsFileWriter::new(Vec::new(), WriterOptions::default()).unwrap();
    w.write_chunk_group(
        &DeviceId::from_tree_path("root.sg.d1"),
        &[SeriesChunk { schema: &schema, times: &[1, 2, 3], values: &Values::Int32(vec![10, -3, 300]) }],
    )
    .unwrap();
    let bytes = w.finish().unwrap();
    assert_eq!(bytes, fixture("00_tiny_tree.tsfile"));
}

fn reader_of(bytes: Vec<u8>) -> TsFileReader<Vec<u8>> {
    TsFileReader::new(bytes, "memory").unwrap()
}

fn sample_values(data_type: DataType, n: usize, seed: u64) -> Values {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut v = Values::with_capacity(data_type, n);
    for i in 0..n {
        let r = next();
        let value = match data_type {
            DataType::Boolean => tsfile::Value::Boolean(r % 3 == 0),
            DataType::Int32 => tsfile::Value::Int32((r % 2000) as i32 - 1000),
            DataType::Date => tsfile::Value::Int32(20240101 + (i % 28) as i32),
            DataType::Int64 | DataType::Timestamp => tsfile::Value::Int64(i as i64 * 1000 + (r % 7) as i64),
            DataType::Float => tsfile::Value::Float((r % 10_000) as f32 / 100.0),
            DataType::Double => tsfile::Value::Double(((r % 1_000_000) as i64 - 500_000) as f64 / 100.0),
            DataType::Text | DataType::String => tsfile::Value::Binary(format!("state-{}", r % 5).into_bytes()),
            DataType::Blob => tsfile::Value::Binary((r % 251).to_be_bytes()[..(r % 8) as usize].to_vec()),
            DataType::Vector => unreachable!(),
        };
        v.push(value).unwrap();
    }
    v
}

#[test]
fn many_devices_multi_page_multi_chunk_group_round_trip() {
    // A small index degree forces internal measurement and device nodes.
    let options = WriterOptions { page_max_points: 100, max_degree: 3, ..Default::default() };
    let mut w = TsFileWriter::new(Vec::new(), options).unwrap();
    let schemas: Vec<SeriesSchema> = DataType::ALL.iter().map(|t| SeriesSchema::new(format!("s_{}", t.name().to_lowercase()), *t)).collect();
    let devices: Vec<DeviceId> = (0..10).map(|i| DeviceId::from_tree_path(&format!("root.sg{}.d{i}", i % 2))).collect();
    let mut expected = Vec::new();
    for group in 0..2i64 {
        for (di, device) in devices.iter().enumerate() {
            let times: Vec<i64> = (0..250).map(|i| group * 10_000 + i * 10).collect();
            let data: Vec<Values> = schemas.iter().enumerate().map(|(si, s)| sample_values(s.data_type, times.len(), (di * 100 + si) as u64 + group as u64)).collect();
            let chunks: Vec<SeriesChunk<'_>> = schemas.iter().zip(&data).map(|(schema, values)| SeriesChunk { schema, times: &times, values }).collect();
            w.write_chunk_group(device, &chunks).unwrap();
            expected.push((device.clone(), times.clone(), data));
        }
    }
    let r = reader_of(w.finish().unwrap());
    let mut listed = r.devices().unwrap();
    listed.sort();
    let mut want = devices.clone();
    want.sort();
    assert_eq!(listed, want);
    for device in &devices {
        let meta = r.device_metadata(device).unwrap().unwrap();
        assert!(!meta.aligned);
        assert_eq!(meta.series.len(), schemas.len());
        for (si, schema) in schemas.iter().enumerate() {
            let ts = meta.series(&schema.measurement).unwrap();
            assert_eq!(ts.chunks.len(), 2);
            assert_eq!(ts.statistics.count, 500);
            let batches = r.read_series(device, &schema.measurement, TimeRange::ALL).unwrap();
            assert_eq!(batches.len(), 6, "3 pages per chunk, 2 chunks");
            let mut values = Values::empty(schema.data_type);
            let mut times = Vec::new();
            for b in &batches {
                times.extend_from_slice(&b.times);
                values.extend_from(&b.values).unwrap();
            }
            let mut want_values = Values::empty(schema.data_type);
            let mut want_times = Vec::new();
            for (d, t, data) in &expected {
                if d == device {
                    want_times.extend_from_slice(t);
                    want_values.extend_from(&data[si]).unwrap();
                }
            }
            assert_eq!(times, want_times);
            assert_eq!(values, want_values, "{device}.{}", schema.measurement);
            // A narrow range reads only the pages it needs and trims them.
            let part = r.read_series(device, &schema.measurement, TimeRange::new(10_005, 10_995)).unwrap();
            assert_eq!(part.len(), 1);
            assert_eq!(part[0].times.first(), Some(&10_010));
            assert_eq!(part[0].times.last(), Some(&10_990));
        }
    }
}

#[test]
fn aligned_device_with_nulls_round_trips() {
    let options = WriterOptions { page_max_points: 64, ..Default::default() };
    let mut w = TsFileWriter::new(Vec::new(), options).unwrap();
    let device = DeviceId::from_tree_path("root.sg.aligned");
    let times: Vec<i64> = (0..300).map(|i| i * 3).collect();
    let a = SeriesSchema::new("a", DataType::Double).with_compression(Compression::Snappy);
    let b = SeriesSchema::new("b", DataType::Text).with_compression(Compression::Zstd);
    let c = SeriesSchema::new("c", DataType::Int32).with_compression(Compression::Gzip);
    let va: Vec<bool> = (0..300).map(|i| i % 3 != 0).collect();
    let vb: Vec<bool> = (0..300).map(|i| (64..128).contains(&i) || i % 7 == 0).collect();
    let vc = vec![false; 300];
    let da = sample_values(DataType::Double, va.iter().filter(|x| **x).count(), 1);
    let db = sample_values(DataType::Text, vb.iter().filter(|x| **x).count(), 2);
    let dc = Values::Int32(vec![]);
    w.write_aligned_chunk_group(
        &device,
        &times,
        &[
            AlignedColumn { schema: &a, values: &da, validity: Some(&va) },
            AlignedColumn { schema: &b, values: &db, validity: Some(&vb) },
            AlignedColumn { schema: &c, values: &dc, validity: Some(&vc) },
        ],
    )
    .unwrap();
    let r = reader_of(w.finish().unwrap());
    let meta = r.device_metadata(&device).unwrap().unwrap();
    assert!(meta.aligned);
    assert_eq!(meta.series[0].data_type, DataType::Vector);
    let batches = r.read_aligned(&device, &["a", "b", "c", "missing"], TimeRange::ALL).unwrap();
    assert_eq!(batches.len(), 5);
    let mut all_times = Vec::new();
    let mut validity = vec![Vec::new(); 4];
    let mut values = [Values::empty(DataType::Double), Values::empty(DataType::Text), Values::empty(DataType::Int32)];
    for batch in &batches {
        all_times.extend_from_slice(&batch.times);
        for (i, col) in batch.columns.iter().enumerate() {
            validity[i].extend_from_slice(&col.validity);
            if i < 3 {
                values[i].extend_from(&col.values).unwrap();
            }
        }
    }
    assert_eq!(all_times, times);
    assert_eq!(validity[0], va);
    assert_eq!(validity[1], vb);
    assert_eq!(validity[2], vc);
    assert!(validity[3].iter().all(|v| !v));
    assert_eq!(values[0], da);
    assert_eq!(values[1], db);
    // One aligned column read as a series yields its present points only.
    let b_series = r.read_series(&device, "b", TimeRange::new(100, 400)).unwrap();
    let n: usize = b_series.iter().map(|s| s.times.len()).sum();
    let want = (0..300).filter(|&i| vb[i] && (100..=400).contains(&(i as i64 * 3))).count();
    assert_eq!(n, want);
    assert_eq!(meta.series("c").unwrap().statistics.count, 0);
}

#[test]
fn unsorted_times_are_refused() {
    let schema = SeriesSchema::new("s", DataType::Int64);
    let mut w = TsFileWriter::new(Vec::new(), WriterOptions::default()).unwrap();
    let err = w
        .write_chunk_group(&DeviceId::from_tree_path("root.a.b"), &[SeriesChunk { schema: &schema, times: &[1, 1], values: &Values::Int64(vec![1, 2]) }])
        .unwrap_err();
    assert!(matches!(err, tsfile::Error::InvalidWrite(_)), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Any encoding × compression the writer accepts reads back identically.
    #[test]
    fn every_encoding_and_compression_round_trips(
        type_idx in 0usize..10, enc_idx in 0usize..8, comp_idx in 0usize..5, n in 1usize..400, seed in any::<u64>()
    ) {
        let data_type = DataType::ALL[type_idx];
        let encodings = data_type.writable_encodings();
        let encoding = encodings[enc_idx % encodings.len()];
        let compression = Compression::WRITABLE[comp_idx];
        let mut values = sample_values(data_type, n, seed);
        if matches!(encoding, Encoding::Ts2Diff | Encoding::Rle) {
            // FLOAT/DOUBLE under TS_2DIFF/RLE keep 2 decimals; our samples have at most 2.
            if let Values::Float(v) = &mut values { for x in v.iter_mut() { *x = (*x * 100.0).round() / 100.0; } }
        }
        let schema = SeriesSchema::new("s", data_type).with_encoding(encoding).with_compression(compression);
        let times: Vec<i64> = (0..n as i64).map(|i| i * 1000 + (seed % 7) as i64).collect();
        let options = WriterOptions { page_max_points: 97, ..Default::default() };
        let mut w = TsFileWriter::new(Vec::new(), options).unwrap();
        let device = DeviceId::from_tree_path("root.p.d");
        w.write_chunk_group(&device, &[SeriesChunk { schema: &schema, times: &times, values: &values }]).unwrap();
        let r = reader_of(w.finish().unwrap());
        let batches = r.read_series(&device, "s", TimeRange::ALL).unwrap();
        let mut got = Values::empty(data_type);
        for b in &batches { got.extend_from(&b.values).unwrap(); }
        if let (Values::Float(a), Values::Float(b)) = (&got, &values) {
            for (x, y) in a.iter().zip(b) { prop_assert!((x - y).abs() <= 0.006, "{} vs {}", x, y); }
        } else {
            prop_assert_eq!(got, values);
        }
    }
}

/// Encoding and compression of every chunk of `measurement` on `device`.
fn chunk_codecs(r: &TsFileReader<Vec<u8>>, device: &DeviceId, measurement: &str) -> Vec<(Encoding, Compression)> {
    let meta = r.device_metadata(device).unwrap().unwrap();
    meta.series(measurement)
        .unwrap()
        .chunks
        .iter()
        .map(|c| {
            let h = r.read_chunk(c.offset_of_chunk_header).unwrap().header;
            (h.encoding, h.compression)
        })
        .collect()
}

#[test]
fn automatic_choice_picks_byte_packed_ts2diff_under_zstd_for_decimal_walks() {
    // A bell-shaped random walk in cents, like the paper workload's sensors.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut cents: i64 = 5_000;
    let values: Vec<f64> = (0..5_000)
        .map(|_| {
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                cents += (x % 7) as i64 - 3;
            }
            cents as f64 / 100.0
        })
        .collect();
    let times: Vec<i64> = (0..values.len() as i64).map(|i| i * 1000).collect();
    let device = DeviceId::from_tree_path("root.sg.d1");
    let schema = SeriesSchema::new("s", DataType::Double);
    let vals = Values::Double(values.clone());
    let mut w = TsFileWriter::new(Vec::new(), WriterOptions { page_max_points: 1_000, ..Default::default() }).unwrap();
    w.write_chunk_group(&device, &[SeriesChunk { schema: &schema, times: &times, values: &vals }]).unwrap();
    let r = reader_of(w.finish().unwrap());
    assert_eq!(chunk_codecs(&r, &device, "s"), [(Encoding::Ts2Diff, Compression::Zstd)]);
    let chunk = r.read_chunk(r.device_metadata(&device).unwrap().unwrap().series("s").unwrap().chunks[0].offset_of_chunk_header).unwrap();
    // Page 0 after the float header (mpn 2): one block of 999 deltas, 8 bits wide.
    let body = chunk.page_bytes(&chunk.pages[0]).unwrap();
    let time_len = body[0] as usize | ((body[1] as usize & 0x7f) << 7);
    let values_at = 2 + time_len;
    assert_eq!(body[values_at], 2, "max point number");
    assert_eq!(&body[values_at + 1..values_at + 9], &[0, 0, 0x03, 0xe7, 0, 0, 0, 8]);
    let got: Vec<f64> = r.read_series(&device, "s", TimeRange::new(i64::MIN, i64::MAX)).unwrap().into_iter().flat_map(|b| match b.values {
        Values::Double(v) => v,
        _ => unreachable!(),
    }).collect();
    assert!(got.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()) && got.len() == values.len());
}

#[test]
fn later_chunks_of_a_series_keep_the_first_chunks_encoding_and_compression() {
    // Chunk group 1 (a slow ramp) takes one codec, chunk group 2 (random
    // full-range values) alone would take another; Apache's C++ reader needs
    // every chunk of a series in a file to use the same ones.
    let device = DeviceId::from_tree_path("root.sg.d1");
    let schema = SeriesSchema::new("s", DataType::Int64);
    let times: Vec<i64> = (0..3_000).collect();
    let first = Values::Int64((0..3_000i64).map(|i| i / 10).collect());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let second = Values::Int64(
        (0..3_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as i64
            })
            .collect(),
    );
    let later: Vec<i64> = (10_000..13_000).collect();
    let alone = {
        let mut w = TsFileWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.write_chunk_group(&device, &[SeriesChunk { schema: &schema, times: &later, values: &second }]).unwrap();
        chunk_codecs(&reader_of(w.finish().unwrap()), &device, "s")[0]
    };
    let mut w = TsFileWriter::new(Vec::new(), WriterOptions::default()).unwrap();
    w.write_chunk_group(&device, &[SeriesChunk { schema: &schema, times: &times, values: &first }]).unwrap();
    w.write_chunk_group(&device, &[SeriesChunk { schema: &schema, times: &later, values: &second }]).unwrap();
    let r = reader_of(w.finish().unwrap());
    let codecs = chunk_codecs(&r, &device, "s");
    assert_ne!(codecs[0], alone, "the test needs chunks that would differ");
    assert_eq!(codecs, [codecs[0], codecs[0]]);
    let got: Vec<i64> = r
        .read_series(&device, "s", TimeRange::new(i64::MIN, i64::MAX))
        .unwrap()
        .into_iter()
        .flat_map(|b| match b.values {
            Values::Int64(v) => v,
            _ => unreachable!(),
        })
        .collect();
    let (Values::Int64(a), Values::Int64(b)) = (&first, &second) else { unreachable!() };
    assert_eq!(got, [a.as_slice(), b.as_slice()].concat());
}

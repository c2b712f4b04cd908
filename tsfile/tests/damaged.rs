//! Damaged input — truncated files, flipped bytes, wrong magic, absurd
//! lengths — yields a named error with file and offset, never a panic and
//! never an allocation sized by a lying length field.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;

use tsfile::writer::{AlignedColumn, SeriesChunk, SeriesSchema, TsFileWriter, WriterOptions};
use tsfile::{Compression, DataType, DeviceId, Error, TimeRange, TsFileReader, Values};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

/// A file with several devices, encodings, compressions and an aligned device.
fn sample_file() -> Vec<u8> {
    let mut w = TsFileWriter::new(Vec::new(), WriterOptions { page_max_points: 20, ..Default::default() }).unwrap();
    let times: Vec<i64> = (0..50).map(|i| i * 7).collect();
    let a = SeriesSchema::new("a", DataType::Double).with_compression(Compression::Snappy);
    let b = SeriesSchema::new("b", DataType::Text).with_compression(Compression::Gzip);
    let c = SeriesSchema::new("c", DataType::Int64).with_compression(Compression::Zstd);
    let va = Values::Double((0..50).map(|i| i as f64 * 0.25).collect());
    let vb = Values::Binary((0..50).map(|i| format!("s{}", i % 3).into_bytes()).collect());
    let vc = Values::Int64((0..50).map(|i| i * i).collect());
    w.write_chunk_group(
        &DeviceId::from_tree_path("root.x.d1"),
        &[
            SeriesChunk { schema: &a, times: &times, values: &va },
            SeriesChunk { schema: &b, times: &times, values: &vb },
            SeriesChunk { schema: &c, times: &times, values: &vc },
        ],
    )
    .unwrap();
    let validity: Vec<bool> = (0..50).map(|i| i % 4 != 0).collect();
    let present = Values::Int64((0..50).filter(|i| i % 4 != 0).collect());
    w.write_aligned_chunk_group(
        &DeviceId::from_tree_path("root.x.d2"),
        &times,
        &[AlignedColumn { schema: &c, values: &present, validity: Some(&validity) }],
    )
    .unwrap();
    w.finish().unwrap()
}

/// Open and read everything; returns the first error. Must never panic.
fn read_everything(bytes: Vec<u8>) -> Result<usize, Error> {
    let r = TsFileReader::new(bytes, "damaged.tsfile")?;
    let mut points = 0;
    for d in r.all_device_metadata()? {
        for s in d.value_series() {
            for b in r.read_series_of(&d, &s.measurement, TimeRange::ALL)? {
                points += b.times.len();
            }
        }
    }
    r.chunk_groups()?;
    Ok(points)
}

fn assert_named(err: &Error) {
    match err {
        Error::Corrupt { file, .. } => assert_eq!(file, "damaged.tsfile", "{err}"),
        Error::Unsupported(_) | Error::SeriesNotFound(_) | Error::EncodingNotSupported { .. } => {}
        other => panic!("unexpected error kind: {other}"),
    }
}

#[test]
fn the_undamaged_sample_reads_fully() {
    assert_eq!(read_everything(sample_file()).unwrap(), 3 * 50 + 37);
}

#[test]
fn every_truncation_is_a_named_error() {
    for bytes in [sample_file(), fixture("02_tree_all_types_plain.tsfile")] {
        for len in 0..bytes.len() {
            let err = read_everything(bytes[..len].to_vec()).expect_err("a truncated file cannot be read");
            assert_named(&err);
            let text = err.to_string();
            assert!(text.contains("damaged.tsfile") && text.contains("offset"), "{text}");
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    for bytes in [sample_file(), fixture("00_tiny_tree.tsfile"), fixture("01_tiny_table.tsfile")] {
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[i] ^= flip;
                if let Err(e) = read_everything(damaged) {
                    assert_named(&e);
                }
            }
        }
    }
}

#[test]
fn wrong_magic_and_version_are_named() {
    let mut bytes = fixture("00_tiny_tree.tsfile");
    bytes[0] = b'X';
    let err = read_everything(bytes).unwrap_err();
    assert!(matches!(err, Error::Corrupt { offset: 0, .. }), "{err}");
    assert!(err.to_string().contains("magic"));
    let mut bytes = fixture("00_tiny_tree.tsfile");
    bytes[6] = 9;
    let err = read_everything(bytes).unwrap_err();
    assert!(matches!(err, Error::Corrupt { offset: 6, .. }), "{err}");
}

#[test]
fn absurd_lengths_are_refused_without_allocating() {
    // TsFileMetadata size in the tail.
    let mut bytes = fixture("00_tiny_tree.tsfile");
    let n = bytes.len();
    bytes[n - 10..n - 6].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(read_everything(bytes).unwrap_err(), Error::Corrupt { .. }));
    // Chunk dataSize (offset 24 in the worked example) → a 5-byte varint of ~2^32.
    let mut bytes = fixture("00_tiny_tree.tsfile");
    bytes.splice(24..25, [0xff, 0xff, 0xff, 0xff, 0x0f]);
    let err = TsFileReader::new(bytes, "damaged.tsfile").map(|_| ()).unwrap_err();
    assert_named(&err);
    // Page uncompressed size (offset 28) claiming 2 GiB.
    let mut bytes = fixture("00_tiny_tree.tsfile");
    bytes.splice(28..29, [0xff, 0xff, 0xff, 0xff, 0x07]);
    bytes[24] += 4;
    let err = read_everything(bytes).unwrap_err();
    assert_named(&err);
}

//! Files written by Apache TsFile (PyPI tsfile 2.5.0) are read value for
//! value as their manifest says, and the statistics Apache stored equal the
//! statistics we compute from the decoded points.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;

use serde_json::Value as Json;
use tsfile::csv_io::read_series_points;
use tsfile::text::format_value;
use tsfile::{DataType, DeviceId, Statistics, TsFileReader, Value, ValueStatistics};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn expected_text(data_type: DataType, v: &Json) -> String {
    match (data_type, v) {
        (DataType::Blob, Json::Object(o)) => format!("\\x{}", o["hex"].as_str().unwrap()),
        (DataType::Float, Json::Number(n)) => format_value(data_type, &Value::Float(n.as_f64().unwrap() as f32)),
        (DataType::Double, Json::Number(n)) => format_value(data_type, &Value::Double(n.as_f64().unwrap())),
        (_, Json::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

fn float_sum(s: &Statistics) -> Option<f64> {
    match s.values {
        ValueStatistics::Int64 { sum, .. } | ValueStatistics::Float { sum, .. } | ValueStatistics::Double { sum, .. } => Some(sum),
        _ => None,
    }
}

/// Statistics must be equal, except that floating-point sums may differ in
/// the last bits (Apache adds page by page, in another order).
fn assert_stats_equal(actual: &Statistics, expected: &Statistics, what: &str) {
    let without_sum = |s: &Statistics| {
        let mut s = s.clone();
        match &mut s.values {
            ValueStatistics::Int64 { sum, .. } | ValueStatistics::Float { sum, .. } | ValueStatistics::Double { sum, .. } => *sum = 0.0,
            _ => {}
        }
        s
    };
    assert_eq!(without_sum(actual), without_sum(expected), "{what}: statistics");
    if let (Some(a), Some(b)) = (float_sum(actual), float_sum(expected)) {
        assert!((a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0), "{what}: sum {a} vs {b}");
    }
}

#[test]
fn every_fixture_matches_its_manifest() {
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(fixtures_dir().join("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_object().unwrap();
    assert_eq!(files.len(), 5);
    let mut checked_points = 0;
    for (file, spec) in files {
        let reader = TsFileReader::open(fixtures_dir().join(file)).unwrap();
        let devices = reader.all_device_metadata().unwrap();
        for series in spec["series"].as_array().unwrap() {
            let device = match &series["device"] {
                Json::String(s) => DeviceId::from_tree_path(s),
                Json::Array(a) => DeviceId::from_segments(a.iter().map(|s| s.as_str().map(String::from)).collect()),
                other => panic!("bad device {other}"),
            };
            let measurement = series["measurement"].as_str().unwrap();
            let data_type: DataType = series["dtype"].as_str().unwrap().parse().unwrap();
            let what = format!("{file} {device}.{measurement}");
            let meta = devices.iter().find(|d| d.device == device).unwrap_or_else(|| panic!("{what}: device missing"));
            assert_eq!(meta.aligned, series["aligned"].as_bool().unwrap(), "{what}: aligned");
            let ts = meta.series(measurement).unwrap_or_else(|| panic!("{what}: series missing"));
            assert_eq!(ts.data_type, data_type, "{what}");
            let chunk = reader.read_chunk(ts.chunks[0].offset_of_chunk_header).unwrap();
            assert_eq!(chunk.header.encoding.name(), series["encoding"].as_str().unwrap(), "{what}: encoding");
            assert_eq!(chunk.header.compression.name(), series["compression"].as_str().unwrap(), "{what}: compression");

            let (times, values) = read_series_points(&reader, meta, measurement).unwrap();
            let expected = series["points"].as_array().unwrap();
            assert_eq!(times.len(), expected.len(), "{what}: point count");
            for (i, point) in expected.iter().enumerate() {
                assert_eq!(times[i], point[0].as_i64().unwrap(), "{what}: time {i}");
                let got = format_value(data_type, &values.get(i));
                assert_eq!(got, expected_text(data_type, &point[1]), "{what}: value at {}", times[i]);
            }
            checked_points += times.len();

            let ours = Statistics::from_points(data_type, &times, Some(&values));
            assert_stats_equal(&ours, &ts.statistics, &what);
            // Page statistics of multi-page chunks agree with their pages.
            for cm in &ts.chunks {
                let chunk = reader.read_chunk(cm.offset_of_chunk_header).unwrap();
                if chunk.header.multi_page && !meta.aligned {
                    let batches = reader.decode_chunk(&chunk).unwrap();
                    for (page, batch) in chunk.pages.iter().zip(&batches) {
                        let stats = Statistics::from_points(data_type, &batch.times, Some(&batch.values));
                        assert_stats_equal(&stats, page.header.statistics.as_ref().unwrap(), &format!("{what} page"));
                    }
                }
            }
        }
    }
    assert!(checked_points > 10_000, "{checked_points}");
}

#[test]
fn bloom_filters_know_every_series() {
    for file in ["00_tiny_tree.tsfile", "02_tree_all_types_plain.tsfile", "04_tree_compression_lz4.tsfile"] {
        let reader = TsFileReader::open(fixtures_dir().join(file)).unwrap();
        let bloom = reader.metadata().bloom_filter.as_ref().unwrap();
        for d in reader.all_device_metadata().unwrap() {
            for s in &d.series {
                assert!(bloom.might_contain(format!("{}.{}", d.device, s.measurement).as_bytes()), "{file}");
            }
        }
    }
}

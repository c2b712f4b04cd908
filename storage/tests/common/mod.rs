//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use storage::{Column, DataType, EngineConfig, FsyncPolicy, SeriesKey, StorageEngine, TimeRange, Value, Values, WriteBatch};

/// A deterministic configuration: no background threads, small pages.
pub(crate) fn test_config() -> EngineConfig {
    EngineConfig {
        background: false,
        wal_fsync: FsyncPolicy::IntervalMs(1000),
        page_max_points: 16,
        memtable_bytes_max: 1 << 20,
        ..EngineConfig::default()
    }
}

pub(crate) fn open(dir: &Path, config: EngineConfig) -> Arc<StorageEngine> {
    StorageEngine::open(dir, config).expect("open engine")
}

/// A non-aligned INT64 batch with one measurement.
pub(crate) fn ints(device: &str, measurement: &str, points: &[(i64, i64)]) -> WriteBatch {
    WriteBatch::new(device, false, points.iter().map(|p| p.0).collect())
        .with_column(Column::full(measurement, DataType::Int64, Values::Int64(points.iter().map(|p| p.1).collect())))
}

/// A DOUBLE batch with one measurement.
pub(crate) fn doubles(device: &str, measurement: &str, points: &[(i64, f64)]) -> WriteBatch {
    WriteBatch::new(device, false, points.iter().map(|p| p.0).collect())
        .with_column(Column::full(measurement, DataType::Double, Values::Double(points.iter().map(|p| p.1).collect())))
}

/// All points of a series as (time, value) pairs.
pub(crate) fn points(engine: &StorageEngine, key: &SeriesKey, range: TimeRange) -> Vec<(i64, Value)> {
    let mut out = Vec::new();
    let mut last = i64::MIN;
    for b in engine.scan(key, range).expect("scan") {
        for (i, t) in b.times.iter().enumerate() {
            assert!(*t > last || out.is_empty(), "scan out of time order: {t} after {last}");
            last = *t;
            out.push((*t, b.values.get(i)));
        }
    }
    out
}

pub(crate) fn int_points(engine: &StorageEngine, key: &SeriesKey) -> Vec<(i64, i64)> {
    points(engine, key, TimeRange::ALL)
        .into_iter()
        .map(|(t, v)| match v {
            Value::Int64(x) => (t, x),
            other => panic!("not an INT64: {other:?}"),
        })
        .collect()
}

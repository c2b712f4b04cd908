//! Model-based test: random sequences of in-order and late inserts,
//! overwrites, NULL writes, deletes, flushes, compactions and restarts are
//! applied to the engine and to a `BTreeMap<(series, time), value>`; every
//! scan, aggregate and last value must agree with the model.
//!
//! `ARBOR_MODEL_CASES` sets the number of cases (default 24).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use storage::{Column, DataType, EngineConfig, ScanOrder, ScanRequest, SeriesKey, StorageEngine, TimeRange, Value, WriteBatch};

/// A device of the model: path, aligned, and its measurements with types.
type DeviceSpec = (&'static str, bool, [(&'static str, DataType); 2]);

const DEVICES: [DeviceSpec; 2] = [
    ("root.m.d0", false, [("a", DataType::Int64), ("b", DataType::Double)]),
    ("root.m.d1", true, [("c", DataType::Int32), ("s", DataType::String)]),
];

fn series_list() -> Vec<(SeriesKey, DataType)> {
    DEVICES
        .iter()
        .flat_map(|(d, _, ms)| ms.iter().map(move |(m, t)| (SeriesKey::new(*d, *m), *t)))
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    /// Rows of one device; `late` rows land before the current clock.
    Write { device: usize, late: bool, rows: Vec<(u8, Option<i8>, Option<i8>)> },
    Delete { series_mask: u8, start: u16, len: u16 },
    Flush,
    Compact,
    Restart,
    Check { series: usize, start: u16, len: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    let row = (any::<u8>(), proptest::option::weighted(0.8, any::<i8>()), proptest::option::weighted(0.8, any::<i8>()));
    prop_oneof![
        8 => (0..2usize, proptest::bool::weighted(0.3), proptest::collection::vec(row, 1..12))
            .prop_map(|(device, late, rows)| Op::Write { device, late, rows }),
        2 => (1..16u8, 0..400u16, 0..120u16).prop_map(|(series_mask, start, len)| Op::Delete { series_mask, start, len }),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Restart),
        3 => (0..4usize, 0..400u16, 0..200u16).prop_map(|(series, start, len)| Op::Check { series, start, len }),
    ]
}

fn value_of(dt: DataType, x: i8) -> Value {
    match dt {
        DataType::Int64 => Value::Int64(i64::from(x) * 1000),
        DataType::Double => Value::Double(f64::from(x) / 4.0),
        DataType::Int32 => Value::Int32(i32::from(x)),
        DataType::String => Value::Binary(format!("v{}", x.rem_euclid(17)).into_bytes()),
        other => unreachable!("no {other} in the model"),
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        memtable_bytes_max: 3_000,
        time_partition_ms: 128,
        seq_file_target_bytes: 1_500,
        page_max_points: 4,
        // Fewer cache entries than series: evictions happen.
        last_cache_entries_max: 2,
        ..common::test_config()
    }
}

type Model = BTreeMap<(usize, i64), Value>;

fn less(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int64(x), Value::Int64(y)) => x < y,
        (Value::Int32(x), Value::Int32(y)) => x < y,
        (Value::Double(x), Value::Double(y)) => x < y,
        (Value::Binary(x), Value::Binary(y)) => x < y,
        _ => false,
    }
}

fn check(engine: &StorageEngine, model: &Model, series: usize, range: TimeRange) -> Result<(), TestCaseError> {
    let (key, dt) = &series_list()[series];
    let expected: Vec<(i64, Value)> = model
        .range((series, range.start)..=(series, range.end))
        .map(|((_, t), v)| (*t, v.clone()))
        .collect();
    let got = common::points(engine, key, range);
    prop_assert_eq!(&got, &expected, "scan of {} in {:?}", key, range);

    let agg = engine.aggregate(key, range).map_err(|e| TestCaseError::fail(e.to_string()))?;
    check_aggregates(&agg, &expected, *dt, &format!("{key} in {range:?}"))?;

    // Windows over the range: as long as, shorter than (overlapping) and
    // longer than (gaps) the interval, every window's aggregates equal the
    // model's over the points inside it.
    // (The model's times are small: an open range is windowed over them.)
    let range = TimeRange::new(range.start.max(-3), range.end.min(4_000));
    let width = range.end - range.start + 1;
    let interval = 1 + width % 37;
    let step = match width % 3 {
        0 => interval,
        1 => (interval / 2).max(1),
        _ => interval * 2,
    };
    let windows: Vec<TimeRange> = (0..)
        .map(|k: i64| range.start + k * step)
        .take_while(|s| *s <= range.end)
        .map(|s| TimeRange::new(s, (s + interval - 1).min(range.end)))
        .collect();
    let got = engine.aggregate_windows(key, &windows).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(got.len(), windows.len());
    for (w, agg) in windows.iter().zip(&got) {
        let inside: Vec<(i64, Value)> = expected.iter().filter(|(t, _)| w.contains(*t)).cloned().collect();
        check_aggregates(agg, &inside, *dt, &format!("{key} in window {w:?} of {range:?}"))?;
    }
    Ok(())
}

/// Aggregates as the engine reports them against the model's points.
fn check_aggregates(agg: &storage::Aggregates, expected: &[(i64, Value)], dt: DataType, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(agg.count, expected.len() as u64, "count of {}", what);
    prop_assert_eq!(agg.first.clone(), expected.first().cloned(), "first of {}", what);
    prop_assert_eq!(agg.last.clone(), expected.last().cloned(), "last of {}", what);
    prop_assert_eq!(agg.min_time, expected.first().map(|p| p.0), "min_time of {}", what);
    prop_assert_eq!(agg.max_time, expected.last().map(|p| p.0), "max_time of {}", what);
    let mut min: Option<Value> = None;
    let mut max: Option<Value> = None;
    let mut sum = 0f64;
    for (_, v) in expected {
        if min.as_ref().is_none_or(|m| less(v, m)) {
            min = Some(v.clone());
        }
        if max.as_ref().is_none_or(|m| less(m, v)) {
            max = Some(v.clone());
        }
        sum += match v {
            Value::Int64(x) => *x as f64,
            Value::Int32(x) => f64::from(*x),
            Value::Double(x) => *x,
            _ => 0.0,
        };
    }
    prop_assert_eq!(agg.min.clone(), min, "min of {}", what);
    prop_assert_eq!(agg.max.clone(), max, "max of {}", what);
    if dt == DataType::String || expected.is_empty() {
        prop_assert_eq!(agg.sum, None, "sum of {}", what);
    } else {
        prop_assert_eq!(agg.sum, Some(sum), "sum of {}", what);
    }
    Ok(())
}

/// The device of `series` scanned as a stream (both orders, tiny batches,
/// a limit): rows where either measurement has a point, with the model's
/// values and NULLs elsewhere.
fn check_device_scan(engine: &StorageEngine, model: &Model, series: usize, range: TimeRange, limit: usize) -> Result<(), TestCaseError> {
    let device = series / 2;
    let (path, _, ms) = DEVICES[device];
    let mut rows: BTreeMap<i64, [Option<Value>; 2]> = BTreeMap::new();
    for c in 0..2 {
        for ((_, t), v) in model.range((device * 2 + c, range.start)..=(device * 2 + c, range.end)) {
            rows.entry(*t).or_default()[c] = Some(v.clone());
        }
    }
    // Both measurements as columns; then the second only making rows (a
    // device table's rows when just the first is selected).
    for (order, row_only) in [(ScanOrder::Ascending, false), (ScanOrder::Descending, false), (ScanOrder::Ascending, true), (ScanOrder::Descending, true)] {
        let columns = if row_only { 1 } else { 2 };
        let mut expected: Vec<(i64, [Option<Value>; 2])> = rows
            .iter()
            .map(|(t, v)| (*t, if row_only { [v[0].clone(), None] } else { v.clone() }))
            .collect();
        if order == ScanOrder::Descending {
            expected.reverse();
        }
        expected.truncate(limit);
        let names: Vec<String> = ms.iter().map(|(m, _)| m.to_string()).collect();
        let request = ScanRequest {
            order,
            limit: Some(limit),
            batch_rows: 3,
            row_only: if row_only { names[1..].to_vec() } else { Vec::new() },
            ..ScanRequest::new(path, names[..columns].to_vec(), range)
        };
        let mut got = Vec::new();
        for batch in engine.scan_device(request).map_err(|e| TestCaseError::fail(e.to_string()))? {
            let batch = batch.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(batch.times.len() <= 3, "batch of {} rows", batch.times.len());
            prop_assert_eq!(batch.columns.len(), columns);
            let mut next = [0usize; 2];
            for (r, t) in batch.times.iter().enumerate() {
                let mut row: [Option<Value>; 2] = Default::default();
                for c in 0..columns {
                    if batch.columns[c].validity[r] {
                        row[c] = Some(batch.columns[c].values.get(next[c]));
                        next[c] += 1;
                    }
                }
                got.push((*t, row));
            }
        }
        prop_assert_eq!(&got, &expected, "device scan of {} in {:?} {:?} limit {} row-only {}", path, range, order, limit, row_only);
    }
    Ok(())
}

fn check_last(engine: &StorageEngine, model: &Model) -> Result<(), TestCaseError> {
    for (i, (key, _)) in series_list().iter().enumerate() {
        let expected = model.range((i, i64::MIN)..=(i, i64::MAX)).next_back().map(|((_, t), v)| (*t, v.clone()));
        let got = engine.last(key).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, expected, "last of {}", key);
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut engine: Arc<StorageEngine> = common::open(dir.path(), config());
    let mut model: Model = BTreeMap::new();
    let mut clock: i64 = 0;
    let fail = |e: storage::Error| TestCaseError::fail(e.to_string());
    for op in ops {
        match op {
            Op::Write { device, late, rows } => {
                let (name, aligned, ms) = DEVICES[device];
                let times: Vec<i64> = rows
                    .iter()
                    .map(|(off, _, _)| if late { i64::from(*off) % (clock + 1) } else { clock + i64::from(*off % 16) })
                    .collect();
                if !late {
                    clock += 16;
                }
                let mut batch = WriteBatch::new(name, aligned, times.clone());
                for (k, (m, dt)) in ms.iter().enumerate() {
                    let vals: Vec<Option<Value>> = rows.iter().map(|r| if k == 0 { r.1 } else { r.2 }.map(|x| value_of(*dt, x))).collect();
                    batch = batch.with_column(Column::from_options(*m, *dt, &vals).map_err(fail)?);
                }
                engine.write(&batch).map_err(fail)?;
                for (r, t) in times.iter().enumerate() {
                    for (k, (_, dt)) in ms.iter().enumerate() {
                        let x = if k == 0 { rows[r].1 } else { rows[r].2 };
                        if let Some(x) = x {
                            model.insert((device * 2 + k, *t), value_of(*dt, x));
                        }
                    }
                }
            }
            Op::Delete { series_mask, start, len } => {
                let list = series_list();
                let chosen: Vec<SeriesKey> = (0..4).filter(|i| series_mask & (1 << i) != 0).map(|i| list[i].0.clone()).collect();
                let range = TimeRange::new(i64::from(start), i64::from(start) + i64::from(len));
                engine.delete(&chosen, range).map_err(fail)?;
                for i in (0..4).filter(|i| series_mask & (1 << i) != 0) {
                    let doomed: Vec<(usize, i64)> = model.range((i, range.start)..=(i, range.end)).map(|(k, _)| *k).collect();
                    for k in doomed {
                        model.remove(&k);
                    }
                }
            }
            Op::Flush => engine.flush().map_err(fail)?,
            Op::Compact => {
                engine.compact().map_err(fail)?;
                let files = engine.files();
                prop_assert!(files.iter().all(|f| f.seq && f.tombstones == 0), "compaction leaves clean sequence files");
            }
            Op::Restart => {
                drop(engine);
                engine = common::open(dir.path(), config());
            }
            Op::Check { series, start, len } => {
                let range = TimeRange::new(i64::from(start), i64::from(start) + i64::from(len));
                check(&engine, &model, series, range)?;
                check_device_scan(&engine, &model, series, range, usize::from(len % 50))?;
            }
        }
        // Sequence files never overlap per device.
        let mut spans: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
        for f in engine.files().into_iter().filter(|f| f.seq) {
            for (d, s, e) in f.devices {
                spans.entry(d).or_default().push((s, e));
            }
        }
        for (d, mut v) in spans {
            v.sort();
            for w in v.windows(2) {
                prop_assert!(w[0].1 < w[1].0, "sequence files of {} overlap: {:?}", d, v);
            }
        }
    }
    for s in 0..4 {
        check(&engine, &model, s, TimeRange::ALL)?;
        check_device_scan(&engine, &model, s, TimeRange::ALL, usize::MAX)?;
    }
    check_last(&engine, &model)?;
    if std::env::var("ARBOR_MODEL_DEBUG").is_ok() {
        let f = engine.files();
        eprintln!("{:?} files={} unseq={} tomb={} points={}", engine.read_counters(), f.len(), f.iter().filter(|f| !f.seq).count(), f.iter().map(|f| f.tombstones).sum::<usize>(), model.len());
    }
    drop(engine);
    let engine = common::open(dir.path(), config());
    for s in 0..4 {
        check(&engine, &model, s, TimeRange::ALL)?;
        check_device_scan(&engine, &model, s, TimeRange::ALL, usize::MAX)?;
    }
    check_last(&engine, &model)
}

fn cases() -> u32 {
    std::env::var("ARBOR_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_agrees_with_a_btreemap(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}

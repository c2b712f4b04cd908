//! Cross-surface property test: random devices get in-order and late
//! points, overwrites, deletions and flushes (through TSQL statements);
//! then the same question — raw rows of a time range, aggregates of a time
//! range — is asked in TSQL and in SQL over the device table. Both answers
//! must agree with each other and with a `BTreeMap` model. `GROUP BY` time
//! windows answered from statistics and from the rows agree with it too, for
//! the aggregates statistics can answer (count, sum, min/max_value, extreme,
//! first/last_value, avg, min/max_time, time_duration) and two they cannot
//! (stddev_pop, var_pop).
//!
//! `ARBOR_CROSS_CASES` sets the number of cases (default 12).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use futures::TryStreamExt;
use proptest::prelude::*;
use sql::{Instance, InstanceConfig, QueryOutput, Session};

const DEVICES: [&str; 2] = ["root.x.d0", "root.x.d1"];

#[derive(Debug, Clone)]
enum Op {
    /// Rows of one device: (time, a, b); `a` INT64, `b` DOUBLE.
    Write { device: usize, rows: Vec<(u8, Option<i8>, Option<i8>)> },
    Delete { device: usize, measurement: bool, start: u8, len: u8 },
    Flush,
    Check { device: usize, start: u8, len: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let row = (any::<u8>(), proptest::option::weighted(0.7, any::<i8>()), proptest::option::weighted(0.7, any::<i8>()));
    prop_oneof![
        6 => (0..2usize, proptest::collection::vec(row, 1..10)).prop_map(|(device, rows)| Op::Write { device, rows }),
        1 => (0..2usize, any::<bool>(), any::<u8>(), 0..60u8).prop_map(|(device, measurement, start, len)| Op::Delete { device, measurement, start, len }),
        1 => Just(Op::Flush),
        2 => (0..2usize, any::<u8>(), 0..255u8).prop_map(|(device, start, len)| Op::Check { device, start, len }),
    ]
}

/// (device, measurement 0 = a / 1 = b, time) → value.
type Model = BTreeMap<(usize, usize, i64), f64>;


/// Column `c` of every row as f64 (times as epoch ms).
fn column(batches: &[RecordBatch], c: usize) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for b in batches {
        let col = b.column(c);
        let col = if matches!(col.data_type(), DataType::Timestamp(..)) { cast(&cast(col, &DataType::Int64).unwrap(), &DataType::Float64).unwrap() } else { cast(col, &DataType::Float64).unwrap() };
        let a = col.as_primitive::<Float64Type>();
        out.extend((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))));
    }
    out
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    session: Session,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = InstanceConfig::new(dir.path());
        config.engine.memtable_bytes_max = 2_000;
        config.engine.time_partition_ms = 64;
        config.engine.page_max_points = 4;
        config.engine.seq_file_target_bytes = 1_000;
        let instance: Arc<Instance> = Instance::open(config).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let session = Session::new(instance).unwrap();
        Harness { runtime, session, _dir: dir }
    }

    fn run(&mut self, sql: &str) -> Vec<QueryOutput> {
        let session = &mut self.session;
        self.runtime.block_on(session.execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn rows(&mut self, sql: &str) -> Vec<RecordBatch> {
        let out = self.run(sql).pop().unwrap();
        let QueryOutput::Rows { stream, .. } = out else { panic!("expected rows from {sql}, got {out:?}") };
        self.runtime.block_on(stream.try_collect::<Vec<_>>()).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

fn check(h: &mut Harness, model: &Model, device: usize, lo: i64, hi: i64) -> Result<(), TestCaseError> {
    let path = DEVICES[device];
    // The model's rows: a time appears where a or b has a point.
    let mut rows: BTreeMap<i64, [Option<f64>; 2]> = BTreeMap::new();
    for m in 0..2 {
        for ((_, _, t), v) in model.range((device, m, lo)..=(device, m, hi)) {
            rows.entry(*t).or_default()[m] = Some(*v);
        }
    }
    let expected_times: Vec<Option<f64>> = rows.keys().map(|t| Some(*t as f64)).collect();
    let expected_a: Vec<Option<f64>> = rows.values().map(|r| r[0]).collect();
    let expected_b: Vec<Option<f64>> = rows.values().map(|r| r[1]).collect();

    let tsql = h.rows(&format!("SELECT a, b FROM {path} WHERE time >= {lo} AND time <= {hi}"));
    let sql = h.rows(&format!("SELECT time, a, b FROM \"{path}\" WHERE time >= {lo} AND time <= {hi} ORDER BY time"));
    for (surface, got) in [("TSQL", &tsql), ("SQL", &sql)] {
        prop_assert_eq!(&column(got, 0), &expected_times, "{} times of {} in {}..={}", surface, path, lo, hi);
        prop_assert_eq!(&column(got, 1), &expected_a, "{} a of {} in {}..={}", surface, path, lo, hi);
        prop_assert_eq!(&column(got, 2), &expected_b, "{} b of {} in {}..={}", surface, path, lo, hi);
    }

    // Aggregates: count, sum, min, max of a; first/last of b; count(*) rows in SQL.
    let a: Vec<f64> = model.range((device, 0, lo)..=(device, 0, hi)).map(|(_, v)| *v).collect();
    let b: Vec<(i64, f64)> = model.range((device, 1, lo)..=(device, 1, hi)).map(|((_, _, t), v)| (*t, *v)).collect();
    let count = a.len() as f64;
    let sum = (!a.is_empty()).then(|| a.iter().sum::<f64>());
    let min = a.iter().copied().reduce(f64::min);
    let max = a.iter().copied().reduce(f64::max);
    let expected = vec![Some(count), sum, min, max, b.first().map(|x| x.1), b.last().map(|x| x.1), b.first().map(|x| x.0 as f64)];
    let tsql = h.rows(&format!(
        "SELECT count(a), sum(a), min_value(a), max_value(a), first_value(b), last_value(b), min_time(b) FROM {path} WHERE time >= {lo} AND time <= {hi}"
    ));
    let sql = h.rows(&format!(
        "SELECT count(a), sum(CAST(a AS DOUBLE)), min(a), max(a), first_value(b ORDER BY time) IGNORE NULLS, last_value(b ORDER BY time) IGNORE NULLS, CAST(min(time) FILTER (WHERE b IS NOT NULL) AS BIGINT) FROM \"{path}\" WHERE time >= {lo} AND time <= {hi}"
    ));
    for (surface, got) in [("TSQL", &tsql), ("SQL", &sql)] {
        let values: Vec<Option<f64>> = (0..expected.len()).map(|c| column(got, c).first().copied().flatten()).collect();
        prop_assert_eq!(&values, &expected, "{} aggregates of {} in {}..={}", surface, path, lo, hi);
    }
    // GROUP BY time windows: from statistics (no value filter) and from the
    // rows (a value filter that keeps every row), each window against the model.
    let width = 1 + (hi - lo) % 13;
    let mut expected_windows: Vec<Vec<Option<f64>>> = Vec::new();
    let mut start = lo;
    while start <= hi {
        let end = (start + width - 1).min(hi);
        let a: Vec<(i64, f64)> = model.range((device, 0, start)..=(device, 0, end)).map(|((_, _, t), v)| (*t, *v)).collect();
        let b: Vec<(i64, f64)> = model.range((device, 1, start)..=(device, 1, end)).map(|((_, _, t), v)| (*t, *v)).collect();
        let avg_b = (!b.is_empty()).then(|| b.iter().map(|x| x.1).sum::<f64>() / b.len() as f64);
        let var_pop_b = avg_b.map(|m| b.iter().map(|x| (x.1 - m).powi(2)).sum::<f64>() / b.len() as f64);
        expected_windows.push(vec![
            Some(start as f64),
            Some(a.len() as f64),
            (!a.is_empty()).then(|| a.iter().map(|x| x.1).sum::<f64>()),
            a.iter().map(|x| x.1).reduce(f64::min),
            a.iter().map(|x| x.1).reduce(f64::max),
            b.first().map(|x| x.1),
            b.last().map(|x| x.1),
            avg_b,
            a.last().map(|x| x.0 as f64),
            b.first().map(|x| x.0 as f64),
            // extreme: the value of largest magnitude, the positive one on a tie.
            a.iter().map(|x| x.1).reduce(|m, v| if v.abs() > m.abs() || (v.abs() == m.abs() && v > m) { v } else { m }),
            a.first().zip(a.last()).map(|(f, l)| (l.0 - f.0) as f64),
            var_pop_b.map(f64::sqrt),
            var_pop_b,
        ]);
        start += width;
    }
    let items = "count(a), sum(a), min_value(a), max_value(a), first_value(b), last_value(b), avg(b), max_time(a), min_time(b), extreme(a), time_duration(a), stddev_pop(b), var_pop(b)";
    let group = format!("GROUP BY ([{lo}, {}), {width}ms)", hi + 1);
    for (how, filter) in [("statistics", String::new()), ("rows", "WHERE a IS NOT NULL OR b IS NOT NULL ".to_string())] {
        let got = h.rows(&format!("SELECT {items} FROM {path} {filter}{group}"));
        let windows: Vec<Vec<Option<f64>>> = {
            let cols: Vec<Vec<Option<f64>>> = (0..14).map(|c| column(&got, c)).collect();
            (0..cols[0].len()).map(|r| cols.iter().map(|c| c[r]).collect()).collect()
        };
        prop_assert_eq!(windows.len(), expected_windows.len(), "{} windows of {} in {}..={}", how, path, lo, hi);
        for (w, e) in windows.iter().zip(&expected_windows) {
            for (x, y) in w.iter().zip(e) {
                let close = match (x, y) {
                    (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                    (None, None) => true,
                    _ => false,
                };
                prop_assert!(close, "{} window {:?} of {} {}: got {:?}, model {:?}", how, e[0], path, group, w, e);
            }
        }
    }

    let rows_sql = h.rows(&format!("SELECT count(*) FROM \"{path}\" WHERE time >= {lo} AND time <= {hi}"));
    prop_assert_eq!(column(&rows_sql, 0), vec![Some(rows.len() as f64)], "SQL count(*) of {}", path);
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    h.run("CREATE DATABASE root.x");
    for d in DEVICES {
        h.run(&format!("CREATE TIMESERIES {d}.a WITH DATATYPE=INT64"));
        h.run(&format!("CREATE TIMESERIES {d}.b WITH DATATYPE=DOUBLE"));
    }
    let mut model: Model = BTreeMap::new();
    for op in ops {
        match op {
            Op::Write { device, rows } => {
                let mut values = Vec::new();
                for (t, a, b) in &rows {
                    let cell = |v: &Option<i8>, scale: f64| v.map_or("NULL".to_string(), |x| format!("{}", f64::from(x) * scale));
                    values.push(format!("({t}, {}, {})", cell(a, 1.0), cell(b, 0.25)));
                }
                h.run(&format!("INSERT INTO {}(timestamp, a, b) VALUES {}", DEVICES[device], values.join(", ")));
                // Within one statement the last row for a time wins; NULL never overwrites.
                for (t, a, b) in rows {
                    if let Some(a) = a {
                        model.insert((device, 0, i64::from(t)), f64::from(a));
                    }
                    if let Some(b) = b {
                        model.insert((device, 1, i64::from(t)), f64::from(b) * 0.25);
                    }
                }
            }
            Op::Delete { device, measurement, start, len } => {
                let (lo, hi) = (i64::from(start), i64::from(start) + i64::from(len));
                let m = usize::from(measurement);
                h.run(&format!("DELETE FROM {}.{} WHERE time >= {lo} AND time <= {hi}", DEVICES[device], ["a", "b"][m]));
                let doomed: Vec<_> = model.range((device, m, lo)..=(device, m, hi)).map(|(k, _)| *k).collect();
                for k in doomed {
                    model.remove(&k);
                }
            }
            Op::Flush => {
                h.run("FLUSH");
            }
            Op::Check { device, start, len } => {
                let lo = i64::from(start);
                check(&mut h, &model, device, lo, lo + i64::from(len))?;
                // The same texts each time: the session keeps their plans,
                // which must see every write, delete and flush since.
                check(&mut h, &model, device, 0, 600)?;
            }
        }
    }
    for d in 0..2 {
        check(&mut h, &model, d, 0, 600)?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("ARBOR_CROSS_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn tsql_and_sql_agree_with_a_btreemap(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}

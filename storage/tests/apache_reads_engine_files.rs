//! Files written by the engine are valid TsFiles: the Apache TsFile reader
//! (PyPI `tsfile==2.5.0`, via `tsfile/tests/interop/apache_tsfile.py`) reads
//! every flushed and compacted file with the values the engine returns.
//! Needs `scripts/install-test-deps.sh`.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use storage::{Column, EngineConfig, SeriesKey, StorageEngine, TimeRange, WriteBatch};
use tsfile::{DataType, Value, Values};

fn apache_read(file: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tsfile/tests/interop/apache_tsfile.py");
    let out = Command::new(std::env::var("ARBOR_PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(script)
        .arg("read")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Apache reader failed on {} (is tsfile==2.5.0 installed? scripts/install-test-deps.sh): {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn apache_reads_every_engine_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig { background: false, ..EngineConfig::default() };
    let engine = StorageEngine::open(dir.path(), config).unwrap();
    // In-order data, late data (→ unsequence files), an aligned device with nulls.
    for (start, late) in [(1_000i64, false), (500_000, false), (2_000, true)] {
        let times: Vec<i64> = (0..300).map(|i| start + i * 7 + i64::from(late)).collect();
        let temps = Values::Double(times.iter().map(|t| (*t % 1000) as f64 / 8.0).collect());
        let status = Values::Boolean(times.iter().map(|t| t % 3 == 0).collect());
        engine
            .write(
                &WriteBatch::new("root.ln.wf01.wt01", false, times.clone())
                    .with_column(Column::full("temperature", DataType::Double, temps))
                    .with_column(Column::full("status", DataType::Boolean, status)),
            )
            .unwrap();
        let rows: Vec<Option<Value>> = times.iter().map(|t| (t % 5 != 0).then(|| Value::Int64(*t * 10))).collect();
        engine
            .write(&WriteBatch::new("root.ln.wf02.gps", true, times.clone()).with_column(Column::from_options("speed", DataType::Int64, &rows).unwrap()))
            .unwrap();
        engine.flush().unwrap();
    }
    engine.delete(&[SeriesKey::new("root.ln.wf01.wt01", "status")], TimeRange::new(1_000, 1_500)).unwrap();
    let before_compaction: Vec<_> = engine.files().into_iter().map(|f| f.path).collect();
    assert!(before_compaction.len() >= 3, "{before_compaction:?}");
    let mut read_by_apache = 0;
    for file in &before_compaction {
        read_by_apache += apache_read(file).lines().count() - 1;
    }
    assert!(read_by_apache >= 900 * 2, "{read_by_apache}");

    // After compaction one set of sequence files holds everything; Apache's
    // reading of them equals the engine's answer (tombstones applied).
    engine.compact().unwrap();
    let mut apache: BTreeMap<(String, String, i64), String> = BTreeMap::new();
    for f in engine.files() {
        for line in apache_read(&f.path).lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            apache.insert((fields[0].into(), fields[1].into(), fields[3].parse().unwrap()), fields[4].into());
        }
    }
    let mut ours: BTreeMap<(String, String, i64), String> = BTreeMap::new();
    for (device, m, t) in [("root.ln.wf01.wt01", "temperature", DataType::Double), ("root.ln.wf01.wt01", "status", DataType::Boolean), ("root.ln.wf02.gps", "speed", DataType::Int64)] {
        for b in engine.scan(&SeriesKey::new(device, m), TimeRange::ALL).unwrap() {
            for (i, time) in b.times.iter().enumerate() {
                ours.insert((device.into(), m.into(), *time), tsfile::text::format_value(t, &b.values.get(i)));
            }
        }
    }
    assert!(!ours.is_empty());
    assert_eq!(apache.len(), ours.len());
    for (k, v) in &ours {
        let theirs = apache.get(k).unwrap_or_else(|| panic!("Apache misses {k:?}"));
        let same = match (theirs.parse::<f64>(), v.parse::<f64>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => theirs == v,
        };
        assert!(same, "{k:?}: Apache {theirs}, engine {v}");
    }
}

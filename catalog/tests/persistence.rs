//! Schema persistence: reopen gives the same tree and ids; snapshots plus
//! log replay; torn tails are cut; damage elsewhere refuses to open.

// Helpers outside #[test] fns unwrap too: in tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path as FsPath, PathBuf};

use catalog::{
    Catalog, CatalogConfig, DataType, Error, Page, Path, PathPattern, SeriesInfo, SeriesSpec,
};

fn p(s: &str) -> Path {
    Path::parse(s).unwrap()
}

fn pat(s: &str) -> PathPattern {
    PathPattern::parse(s).unwrap()
}

fn config(snapshot_every_records: u64) -> CatalogConfig {
    CatalogConfig {
        snapshot_every_records,
        ..CatalogConfig::default()
    }
}

/// Everything observable about the tree, ids included.
fn state(
    c: &Catalog,
) -> (
    Vec<SeriesInfo>,
    Vec<catalog::DeviceInfo>,
    Vec<catalog::DatabaseInfo>,
) {
    (
        c.list_series(&PathPattern::all(), Page::all()),
        c.list_devices(&PathPattern::all(), Page::all()),
        c.list_databases(&PathPattern::all()),
    )
}

fn log_files(dir: &FsPath) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

fn populate(c: &Catalog) {
    c.create_database(&p("root.ln")).unwrap();
    c.create_database(&p("root.x.y")).unwrap();
    c.create_series(
        &p("root.ln.wf01.wt01.status"),
        SeriesSpec::new(DataType::Boolean)
            .alias("st")
            .tag("unit", "none")
            .attribute("owner", "ops"),
    )
    .unwrap();
    c.create_aligned_series(
        &p("root.ln.`gps 1`"),
        vec![
            ("lat".into(), SeriesSpec::new(DataType::Float)),
            ("lon".into(), SeriesSpec::new(DataType::Float)),
        ],
    )
    .unwrap();
    for d in 0..5 {
        c.ensure_series(
            &format!("root.auto.d{d}"),
            &[("a", DataType::Int64), ("b", DataType::Text)],
            false,
        )
        .unwrap();
    }
    c.delete_series(&pat("root.auto.d1.*")).unwrap();
    c.delete_series(&pat("root.auto.d2.a")).unwrap();
    c.drop_database(&p("root.x.y")).unwrap();
}

#[test]
fn reopen_restores_tree_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (before, newest) = {
        let c = Catalog::open(dir.path(), config(1_000)).unwrap();
        populate(&c);
        // Delete the newest series: its id must still never come back.
        let newest = c.lookup_series("root.auto.d4", "b").unwrap();
        c.delete_series(&pat("root.auto.d4.b")).unwrap();
        (state(&c), newest)
    };
    let c = Catalog::open(dir.path(), config(1_000)).unwrap();
    assert_eq!(state(&c), before);
    let report = c.recovery_report();
    assert_eq!(report.snapshot_generation, None);
    assert!(report.log_records > 10);
    assert_eq!(report.torn_tail_bytes, 0);
    let st = c.series(&p("root.ln.wf01.wt01.st")).unwrap();
    assert_eq!(st.tags["unit"], "none");
    assert!(c.device(&p("root.ln.`gps 1`")).unwrap().aligned);
    // Ids keep increasing past everything ever handed out, deleted ones too.
    assert!(before.0.iter().all(|s| s.handle.id < newest.id));
    let h = c
        .ensure_series("root.auto.d1", &[("a", DataType::Int64)], false)
        .unwrap()[0];
    assert!(h.id > newest.id, "deleted ids are not reused");
    // root.auto.d1 lost all its series, so it comes back as a new device.
    assert!(h.device.0 > newest.device.0);
    assert!(before.1.iter().all(|d| d.id != h.device));
}

#[test]
fn snapshot_then_log_replay() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let c = Catalog::open(dir.path(), config(4)).unwrap();
        populate(&c);
        // Some records after the last snapshot.
        c.ensure_series("root.ln.tail", &[("z", DataType::Double)], false)
            .unwrap();
        let stats = c.stats();
        assert!(stats.log_generation >= 2, "{stats:?}");
        assert!(stats.log_records > 0 && stats.log_records < 4);
        assert_eq!(stats.last_snapshot_error, None);
        state(&c)
    };
    assert!(dir.path().join("schema.snapshot").exists());
    // Only the current generation's log is kept.
    assert_eq!(log_files(dir.path()).len(), 1);
    let c = Catalog::open(dir.path(), config(4)).unwrap();
    assert_eq!(state(&c), before);
    let report = c.recovery_report();
    assert!(report.snapshot_generation.unwrap() >= 2);
    assert!(report.snapshot_records > 0);
    assert!(report.log_records > 0);

    // An explicit snapshot leaves an empty log; reopening still agrees.
    c.snapshot().unwrap();
    assert_eq!(c.stats().log_records, 0);
    drop(c);
    let c = Catalog::open(dir.path(), config(4)).unwrap();
    assert_eq!(state(&c), before);
    assert_eq!(c.recovery_report().log_records, 0);
}

#[test]
fn leftovers_of_an_interrupted_snapshot_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let c = Catalog::open(dir.path(), config(1_000)).unwrap();
        populate(&c);
        state(&c)
    };
    fs::write(dir.path().join("schema.snapshot.tmp"), b"half a snapshot").unwrap();
    let c = Catalog::open(dir.path(), config(1_000)).unwrap();
    assert_eq!(state(&c), before);
    assert!(!dir.path().join("schema.snapshot.tmp").exists());
}

fn torn_case(damage: impl Fn(&mut Vec<u8>, usize)) {
    let dir = tempfile::tempdir().unwrap();
    let (kept, len_before_last) = {
        let c = Catalog::open(dir.path(), config(1_000)).unwrap();
        populate(&c);
        let kept = state(&c);
        let log = &log_files(dir.path())[0];
        let len = fs::metadata(log).unwrap().len() as usize;
        c.ensure_series("root.ln.last", &[("s", DataType::Int64)], false)
            .unwrap();
        (kept, len)
    };
    let log = log_files(dir.path())[0].clone();
    let mut bytes = fs::read(&log).unwrap();
    damage(&mut bytes, len_before_last);
    fs::write(&log, &bytes).unwrap();

    let c = Catalog::open(dir.path(), config(1_000)).unwrap();
    assert_eq!(state(&c), kept, "the torn record is dropped, the rest kept");
    assert!(c.recovery_report().torn_tail_bytes > 0);
    assert_eq!(fs::metadata(&log).unwrap().len() as usize, len_before_last);
    // The log is usable again and the next open is clean.
    c.ensure_series("root.ln.after", &[("s", DataType::Int64)], false)
        .unwrap();
    let after = state(&c);
    drop(c);
    let c = Catalog::open(dir.path(), config(1_000)).unwrap();
    assert_eq!(state(&c), after);
    assert_eq!(c.recovery_report().torn_tail_bytes, 0);
}

#[test]
fn torn_tail_cut_short_is_truncated() {
    torn_case(|bytes, last_start| bytes.truncate(last_start + (bytes.len() - last_start) / 2));
    torn_case(|bytes, last_start| bytes.truncate(last_start + 3));
}

#[test]
fn torn_tail_with_bad_checksum_at_eof_is_truncated() {
    torn_case(|bytes, _| {
        let n = bytes.len();
        bytes[n - 1] ^= 0x55;
    });
}

#[test]
fn torn_tail_followed_by_zeros_is_truncated() {
    torn_case(|bytes, last_start| {
        let n = bytes.len();
        bytes[last_start + 9..n].fill(0);
        bytes.extend_from_slice(&[0; 512]);
    });
}

#[test]
fn mid_file_corruption_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Catalog::open(dir.path(), config(1_000)).unwrap();
        populate(&c);
    }
    let log = log_files(dir.path())[0].clone();
    let mut bytes = fs::read(&log).unwrap();
    // Flip a payload byte of the first record (frame header is 8 bytes).
    bytes[10] ^= 0xFF;
    fs::write(&log, &bytes).unwrap();
    let err = Catalog::open(dir.path(), config(1_000)).err().unwrap();
    assert!(
        matches!(&err, Error::Corrupt { file, offset: 0, .. } if *file == log),
        "{err}"
    );
    assert!(err.to_string().contains("checksum"));
    // The file is left as it was for inspection.
    assert_eq!(fs::read(&log).unwrap(), bytes);
}

#[test]
fn corrupt_snapshot_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Catalog::open(dir.path(), config(1_000)).unwrap();
        populate(&c);
        c.snapshot().unwrap();
    }
    let snap = dir.path().join("schema.snapshot");
    let good = fs::read(&snap).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    fs::write(&snap, &bad).unwrap();
    assert!(matches!(
        Catalog::open(dir.path(), config(1_000)),
        Err(Error::Corrupt { file, .. }) if file == snap
    ));
    // A snapshot cut short is corruption too: snapshots are never torn.
    fs::write(&snap, &good[..good.len() - 4]).unwrap();
    assert!(matches!(
        Catalog::open(dir.path(), config(1_000)),
        Err(Error::Corrupt { .. })
    ));
    fs::write(&snap, &good).unwrap();
    Catalog::open(dir.path(), config(1_000)).unwrap();
}

#[test]
fn log_newer_than_snapshot_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Catalog::open(dir.path(), config(1_000)).unwrap();
        populate(&c);
        c.snapshot().unwrap();
        c.snapshot().unwrap();
    }
    // Losing the snapshot would silently drop schema: refuse instead.
    fs::remove_file(dir.path().join("schema.snapshot")).unwrap();
    assert!(matches!(
        Catalog::open(dir.path(), config(1_000)),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn replayed_record_that_does_not_apply_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Catalog::open(dir.path(), config(1_000)).unwrap();
        c.create_database(&p("root.ln")).unwrap();
    }
    // Append a well-framed copy of the same record: CRC fine, but it
    // creates a database that exists, so the files disagree.
    let log = log_files(dir.path())[0].clone();
    let bytes = fs::read(&log).unwrap();
    let mut doubled = bytes.clone();
    doubled.extend_from_slice(&bytes);
    fs::write(&log, &doubled).unwrap();
    let err = Catalog::open(dir.path(), config(1_000)).err().unwrap();
    assert!(
        matches!(&err, Error::Corrupt { offset, .. } if *offset == bytes.len() as u64),
        "{err}"
    );
}

#[test]
fn a_databases_ttl_survives_reopen_through_the_log_and_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let ttl_of = |c: &Catalog, db: &str| c.database(&p(db)).unwrap().ttl_ms;
    {
        let c = Catalog::open(dir.path(), config(1_000)).unwrap();
        c.create_database(&p("root.ttl1")).unwrap();
        c.create_database(&p("root.ttl2")).unwrap();
        let set = c.set_ttl(&pat("root.ttl*"), Some(3_600_000)).unwrap();
        assert_eq!(set.len(), 2);
        c.set_ttl(&pat("root.ttl2"), None).unwrap();
        assert!(matches!(
            c.set_ttl(&pat("root.nope"), Some(1)),
            Err(Error::DatabaseNotFound { .. })
        ));
    }
    // From the log.
    let c = Catalog::open(dir.path(), config(1_000)).unwrap();
    assert_eq!(ttl_of(&c, "root.ttl1"), Some(3_600_000));
    assert_eq!(ttl_of(&c, "root.ttl2"), None);
    // From the snapshot.
    c.snapshot().unwrap();
    drop(c);
    let c = Catalog::open(dir.path(), config(1_000)).unwrap();
    assert_eq!(ttl_of(&c, "root.ttl1"), Some(3_600_000));
    assert_eq!(ttl_of(&c, "root.ttl2"), None);
    // A dropped and recreated database starts without one.
    c.drop_database(&p("root.ttl1")).unwrap();
    c.create_database(&p("root.ttl1")).unwrap();
    assert_eq!(ttl_of(&c, "root.ttl1"), None);
}

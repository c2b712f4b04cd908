//! Adopting a TsFile written by Apache TsFile as a sequence file: taken as
//! is when every device's points are later than the stored ones and in one
//! time partition, refused (nothing done) otherwise; adopted files are read
//! like the engine's own and survive a reopen.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::path::PathBuf;

use common::*;
use storage::{SeriesKey, TimeRange, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tsfile/tests/fixtures").join(name)
}

fn int32_points(e: &storage::StorageEngine, key: &SeriesKey) -> Vec<(i64, i32)> {
    points(e, key, TimeRange::ALL)
        .into_iter()
        .map(|(t, v)| match v {
            Value::Int32(x) => (t, x),
            other => panic!("not an INT32: {other:?}"),
        })
        .collect()
}

#[test]
fn a_later_file_is_adopted_as_is_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = fixture("00_tiny_tree.tsfile");
    let key = SeriesKey::new("root.sg.d1", "s1");
    {
        let e = open(dir.path(), test_config());
        assert!(e.adopt_file(&tiny).unwrap());
        let files = e.files();
        assert_eq!(files.len(), 1);
        assert!(files[0].seq);
        assert_eq!(std::fs::read(&files[0].path).unwrap(), std::fs::read(&tiny).unwrap(), "the file was rewritten");
        assert_eq!(files[0].devices, vec![("root.sg.d1".to_string(), 1, 3)]);
        assert_eq!(int32_points(&e, &key), vec![(1, 10), (2, -3), (3, 300)]);
        // The same file again overlaps what is now stored: refused, nothing done.
        assert!(!e.adopt_file(&tiny).unwrap());
        assert_eq!(e.files().len(), 1);
        // Later writes land after the adopted points; a late one is unsequence data.
        let mut b = ints("root.sg.d1", "s1", &[(2, 7), (10, 8)]);
        b.columns[0].data_type = storage::DataType::Int32;
        b.columns[0].values = storage::Values::Int32(vec![7, 8]);
        e.write(&b).unwrap();
        assert_eq!(int32_points(&e, &key), vec![(1, 10), (2, 7), (3, 300), (10, 8)]);
        e.close().unwrap();
    }
    let e = open(dir.path(), test_config());
    assert_eq!(int32_points(&e, &key), vec![(1, 10), (2, 7), (3, 300), (10, 8)]);
    assert!(e.files().iter().any(|f| std::fs::read(&f.path).unwrap() == std::fs::read(&tiny).unwrap()), "the adopted file is gone after a reopen");
}

#[test]
fn files_overlapping_memtables_or_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    // A point in the memtable after the file's first time.
    let mut b = ints("root.sg.d1", "s1", &[(3, 1)]);
    b.columns[0].data_type = storage::DataType::Int32;
    b.columns[0].values = storage::Values::Int32(vec![1]);
    e.write(&b).unwrap();
    assert!(!e.adopt_file(&fixture("00_tiny_tree.tsfile")).unwrap());
    // Flushed into a file: still refused.
    e.flush().unwrap();
    assert!(!e.adopt_file(&fixture("00_tiny_tree.tsfile")).unwrap());
    assert_eq!(e.files().len(), 1);
    // Another device's data does not matter.
    assert!(e.adopt_file(&fixture("02_tree_all_types_plain.tsfile")).unwrap());
    assert_eq!(e.files().len(), 2);
    // No temporary copy is left behind.
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_damaged_file_is_an_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), test_config());
    let whole = std::fs::read(fixture("02_tree_all_types_plain.tsfile")).unwrap();
    let cut = dir.path().join("cut.tsfile");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    assert!(e.adopt_file(&cut).is_err());
    assert!(e.files().is_empty());
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

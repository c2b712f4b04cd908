//! Streamed WAL groups (`OpenGroup`, what a big COPY writes): parts logged
//! as they come, applied only by the commit, replayed after a crash only when
//! committed — and whole, even when the commit's apply sealed and flushed
//! memtables half way and the checkpoint passed the commit record, or when
//! flushes of other writers moved the checkpoint past the group's parts
//! while it was open.
//!
//! A crash is the engine dropped without a flush (its WAL synced, as the
//! page cache keeps it across `kill -9`), then opened again.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::path::Path;

use common::{int_points, ints, open, test_config};
use storage::{EngineConfig, SeriesKey, WriteBatch};

/// Memtables so small that every few writes seal and flush (no background
/// threads: a seal flushes at once), so checkpoints keep moving.
fn tiny() -> EngineConfig {
    EngineConfig { memtable_bytes_max: 8 << 10, ..test_config() }
}

/// Part `p` of the group: `rows` points of root.g.d.v from time p * rows, value 10 * time + 1.
fn part(p: i64, rows: i64) -> WriteBatch {
    let points: Vec<(i64, i64)> = (p * rows..(p + 1) * rows).map(|t| (t, 10 * t + 1)).collect();
    ints("root.g.d", "v", &points)
}

fn expected(parts: i64, rows: i64) -> Vec<(i64, i64)> {
    (0..parts * rows).map(|t| (t, 10 * t + 1)).collect()
}

/// Writes of another device that fill memtables: seals, flushes, checkpoints.
fn other_writes(engine: &storage::StorageEngine, from: i64, n: i64) {
    for i in from..from + n {
        let points: Vec<(i64, i64)> = (i * 200..(i + 1) * 200).map(|t| (t, t)).collect();
        engine.write(&ints("root.o.d", "w", &points)).unwrap();
    }
}

fn g() -> SeriesKey {
    SeriesKey::new("root.g.d", "v")
}

fn wal_segments(db: &Path) -> usize {
    std::fs::read_dir(db.join("wal")).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "wal")).count()
}

#[test]
fn an_open_group_is_absent_after_a_crash_and_a_committed_one_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), test_config());
    let mut open_group = engine.begin_group();
    for p in 0..3 {
        open_group.write_part(vec![part(p, 100)]).unwrap();
    }
    assert_eq!(open_group.parts(), 3);
    assert!(int_points(&engine, &g()).is_empty(), "parts are not visible before the commit");
    drop(engine);
    drop(open_group);
    let engine = open(dir.path(), test_config());
    assert!(int_points(&engine, &g()).is_empty(), "an uncommitted group was replayed");

    // The final part comes with the commit (logged by it, applied from memory).
    let mut group = engine.begin_group();
    for p in 0..2 {
        group.write_part(vec![part(p, 100)]).unwrap();
    }
    group.commit(vec![part(2, 100)]).unwrap();
    assert_eq!(int_points(&engine, &g()), expected(3, 100));
    drop(engine);
    let engine = open(dir.path(), test_config());
    assert_eq!(int_points(&engine, &g()), expected(3, 100), "a committed group is not whole after a crash");
}

#[test]
fn an_aborted_group_is_never_replayed_and_its_segments_go() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), tiny());
    let mut group = engine.begin_group();
    for p in 0..4 {
        group.write_part(vec![part(p, 500)]).unwrap();
    }
    drop(group);
    other_writes(&engine, 0, 20);
    drop(engine);
    let engine = open(dir.path(), tiny());
    assert!(int_points(&engine, &g()).is_empty(), "an aborted group was replayed");
    engine.flush().unwrap();
    assert!(wal_segments(dir.path()) <= 1, "{} WAL segments left after a flush with no group open", wal_segments(dir.path()));
}

#[test]
fn parts_outlive_checkpoints_while_their_group_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), tiny());
    let mut group = engine.begin_group();
    // Other writers flush (and checkpoint) between every part.
    for p in 0..4 {
        group.write_part(vec![part(p, 500)]).unwrap();
        other_writes(&engine, p * 10, 10);
    }
    assert!(wal_segments(dir.path()) > 4, "the open group's segments were removed");
    // The commit's apply seals and flushes after every part (each is larger
    // than a memtable): the checkpoint passes the commit record itself.
    group.commit(vec![]).unwrap();
    assert_eq!(int_points(&engine, &g()), expected(4, 500));
    drop(engine);
    let engine = open(dir.path(), tiny());
    assert_eq!(int_points(&engine, &g()), expected(4, 500), "group not whole after a crash");
    let others = int_points(&engine, &SeriesKey::new("root.o.d", "w"));
    assert_eq!(others.len(), 40 * 200);
    // Once its data is flushed the group pins nothing.
    other_writes(&engine, 40, 10);
    engine.flush().unwrap();
    assert!(wal_segments(dir.path()) <= 1, "{} WAL segments left after everything was flushed", wal_segments(dir.path()));
    drop(engine);
    let engine = open(dir.path(), tiny());
    assert_eq!(int_points(&engine, &g()), expected(4, 500));
}

#[test]
fn a_crash_after_the_commit_sealed_half_way_replays_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    // Parts read back from the log and applied one by one (parts kept in
    // memory are applied at once, with no seal among them).
    let config = || EngineConfig { group_resident_bytes_max: 0, ..tiny() };
    let engine = open(dir.path(), config());
    let mut group = engine.begin_group();
    // Two parts fill a memtable: the apply seals (and flushes) after every
    // second part, and the last part stays in memory.
    for p in 0..4 {
        group.write_part(vec![part(p, 300)]).unwrap();
    }
    group.commit(vec![part(4, 300)]).unwrap();
    assert!(!engine.files().is_empty(), "the apply flushed nothing: the test does not test resuming");
    assert!(engine.memtable_bytes() > 0, "the apply flushed everything: the test does not test resuming");
    drop(engine);
    let engine = open(dir.path(), config());
    assert_eq!(int_points(&engine, &g()), expected(5, 300));
    // And once more, after the replay's own pins.
    drop(engine);
    let engine = open(dir.path(), config());
    assert_eq!(int_points(&engine, &g()), expected(5, 300));
}

#[test]
fn the_rest_of_a_commit_larger_than_the_memtables_is_replayed_in_flushed_pieces() {
    let dir = tempfile::tempdir().unwrap();
    // The live run's memtables hold the whole group: its commit seals
    // nowhere, so one apply record covers all of it.
    let roomy = EngineConfig { memtable_bytes_max: 1 << 20, group_resident_bytes_max: 0, ..test_config() };
    let engine = open(dir.path(), roomy.clone());
    let mut group = engine.begin_group();
    for p in 0..6 {
        group.write_part(vec![part(p, 300)]).unwrap();
    }
    group.commit(vec![part(6, 300)]).unwrap();
    assert!(engine.files().is_empty());
    drop(engine);
    // Reopened with memtables a quarter of the group's size (as a crash in
    // the apply of a group larger than memory leaves it): the replay seals
    // and flushes as it goes instead of holding the group in memory.
    let engine = open(dir.path(), tiny());
    assert!(!engine.files().is_empty(), "the replay flushed nothing");
    assert!(engine.memtable_bytes() < tiny().memtable_bytes_max, "the replay holds {} bytes", engine.memtable_bytes());
    assert_eq!(int_points(&engine, &g()), expected(7, 300));
    // A crash after those flushes replays the generation again over its files.
    drop(engine);
    let engine = open(dir.path(), tiny());
    assert_eq!(int_points(&engine, &g()), expected(7, 300));
    drop(engine);
    let engine = open(dir.path(), roomy);
    assert_eq!(int_points(&engine, &g()), expected(7, 300));
}

#[test]
fn a_group_is_applied_where_it_commits_before_and_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), test_config());
    engine.write(&ints("root.g.d", "v", &[(5, 1)])).unwrap();
    let mut group = engine.begin_group();
    group.write_part(vec![ints("root.g.d", "v", &[(5, 2), (6, 2)])]).unwrap();
    // Written after the part but before the commit: the group, applied at
    // its commit, overwrites it.
    engine.write(&ints("root.g.d", "v", &[(5, 3), (7, 3)])).unwrap();
    group.commit(vec![]).unwrap();
    engine.write(&ints("root.g.d", "v", &[(6, 4)])).unwrap();
    let want = vec![(5, 2), (6, 4), (7, 3)];
    assert_eq!(int_points(&engine, &g()), want);
    drop(engine);
    let engine = open(dir.path(), test_config());
    assert_eq!(int_points(&engine, &g()), want, "the replay applied the group elsewhere than the live run");
}

#[test]
fn a_part_of_another_type_is_refused_and_the_group_still_commits() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), test_config());
    let mut group = engine.begin_group();
    group.write_part(vec![part(0, 10)]).unwrap();
    let doubles = common::doubles("root.g.d", "v", &[(100, 1.5)]);
    let err = group.write_part(vec![doubles]).unwrap_err();
    assert!(matches!(err, storage::Error::TypeMismatch { .. }), "{err}");
    group.write_part(vec![part(1, 10)]).unwrap();
    group.commit(vec![]).unwrap();
    assert_eq!(int_points(&engine, &g()), expected(2, 10));
}

#[test]
fn a_final_part_refused_at_the_commit_aborts_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), test_config());
    let mut group = engine.begin_group();
    group.write_part(vec![part(0, 10)]).unwrap();
    let doubles = common::doubles("root.g.d", "v", &[(100, 1.5)]);
    let err = group.commit(vec![doubles]).unwrap_err();
    assert!(matches!(err, storage::Error::TypeMismatch { .. }), "{err}");
    assert!(int_points(&engine, &g()).is_empty(), "a group whose commit failed was applied");
    drop(engine);
    let engine = open(dir.path(), test_config());
    assert!(int_points(&engine, &g()).is_empty(), "a group whose commit failed was replayed");
}

/// A deterministic pseudo-random source (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const MODEL_SERIES: [(&str, &str); 3] = [("root.m.d0", "a"), ("root.m.d0", "b"), ("root.m.d1", "a")];

type Model = std::collections::BTreeMap<(usize, i64), i64>;

/// A batch of the model test: series index and (time, value) points.
type ModelBatch = (usize, Vec<(i64, i64)>);

fn check(engine: &storage::StorageEngine, model: &Model, seed: u64, step: usize) {
    for (s, (d, m)) in MODEL_SERIES.iter().enumerate() {
        let got = int_points(engine, &SeriesKey::new(*d, *m));
        let want: Vec<(i64, i64)> = model.range((s, i64::MIN)..=(s, i64::MAX)).map(|((_, t), v)| (*t, *v)).collect();
        assert!(got == want, "seed {seed}, step {step}: {d}.{m} has {} points, the model {} (first difference at {:?})", got.len(), want.len(), got.iter().zip(&want).position(|(a, b)| a != b));
    }
}

/// Random interleavings of plain writes, deletes, streamed groups (parts,
/// commits, aborts, two open at once; parts applied from memory or read
/// back from the log), flushes and crashes, with memtables
/// small enough that seals and flushes happen inside commits; the engine
/// must agree with a `BTreeMap` model after every crash and at the end.
/// `ARBOR_MODEL_CASES` sets the number of seeds (default 12).
#[test]
fn groups_agree_with_a_model_across_crashes() {
    let cases: u64 = std::env::var("ARBOR_MODEL_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    for seed in 1..=cases {
        let dir = tempfile::tempdir().unwrap();
        // Parts kept in memory for the commit, read back from the log, or a mix.
        let resident = match seed % 3 {
            0 => 0,
            1 => 2 << 10,
            _ => test_config().group_resident_bytes_max,
        };
        let config = || EngineConfig { memtable_bytes_max: 4 << 10, group_resident_bytes_max: resident, ..test_config() };
        let mut engine = open(dir.path(), config());
        let mut rng = Rng(seed);
        let mut model = Model::new();
        // Open groups: the group and the batches it would write, by series.
        let mut groups: Vec<(storage::OpenGroup, Vec<ModelBatch>)> = Vec::new();
        let mut clock = 0i64;
        for step in 0..300 {
            let batch = |rng: &mut Rng, clock: &mut i64, value: i64| -> ModelBatch {
                let s = rng.below(MODEL_SERIES.len() as u64) as usize;
                let n = 1 + rng.below(40) as i64;
                // Mostly in order, sometimes late (overwrites and unsequence data).
                let start = if rng.below(4) == 0 { (*clock - rng.below(300) as i64).max(0) } else { *clock };
                *clock = (*clock).max(start + n);
                (s, (start..start + n).map(|t| (t, value * 1000 + t % 7)).collect())
            };
            let to_batch = |(s, points): &ModelBatch| ints(MODEL_SERIES[*s].0, MODEL_SERIES[*s].1, points);
            match rng.below(20) {
                0..=6 => {
                    let b = batch(&mut rng, &mut clock, step as i64);
                    engine.write(&to_batch(&b)).unwrap();
                    for (t, v) in &b.1 {
                        model.insert((b.0, *t), *v);
                    }
                }
                7 if groups.len() < 2 => groups.push((engine.begin_group(), Vec::new())),
                8..=11 if !groups.is_empty() => {
                    let k = rng.below(groups.len() as u64) as usize;
                    let parts: Vec<_> = (0..1 + rng.below(3)).map(|_| batch(&mut rng, &mut clock, step as i64)).collect();
                    groups[k].0.write_part(parts.iter().map(to_batch).collect::<Vec<_>>()).unwrap();
                    groups[k].1.extend(parts);
                }
                12 | 13 if !groups.is_empty() => {
                    let (group, batches) = groups.remove(rng.below(groups.len() as u64) as usize);
                    group.commit(vec![]).unwrap();
                    for (s, points) in batches {
                        for (t, v) in points {
                            model.insert((s, t), v);
                        }
                    }
                }
                14 if !groups.is_empty() => drop(groups.remove(rng.below(groups.len() as u64) as usize)),
                15 => {
                    let s = rng.below(MODEL_SERIES.len() as u64) as usize;
                    let start = rng.below(clock.max(1) as u64) as i64;
                    let end = start + rng.below(50) as i64;
                    engine.delete(&[SeriesKey::new(MODEL_SERIES[s].0, MODEL_SERIES[s].1)], storage::TimeRange::new(start, end)).unwrap();
                    let doomed: Vec<_> = model.range((s, start)..=(s, end)).map(|(k, _)| *k).collect();
                    for k in doomed {
                        model.remove(&k);
                    }
                }
                16 => engine.flush().unwrap(),
                17 => {
                    // A crash: open groups die with the process.
                    drop(engine);
                    groups.clear();
                    if rng.below(2) == 0 {
                        // Replayed into smaller memtables, which a replayed
                        // commit fills and flushes on the way; then a crash
                        // right after that replay.
                        engine = open(dir.path(), EngineConfig { memtable_bytes_max: 1 << 10, ..config() });
                        check(&engine, &model, seed, step);
                        drop(engine);
                    }
                    engine = open(dir.path(), config());
                    check(&engine, &model, seed, step);
                }
                _ => {}
            }
        }
        groups.clear();
        check(&engine, &model, seed, 300);
        drop(engine);
        let engine = open(dir.path(), config());
        check(&engine, &model, seed, 301);
    }
}

/// A writer racing a group's commit on the same points: whatever order the
/// live run applied them in, the replay after a crash applies them in the
/// same order (the commit keeps other writes out while it applies; with
/// memtables this large nothing seals, so no resume record marks the order).
#[test]
fn writes_racing_a_commit_replay_as_they_were_applied() {
    const TIMES: i64 = 40_000;
    let config = || EngineConfig { memtable_bytes_max: 256 << 20, ..test_config() };
    for round in 0..4u64 {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path(), config());
        let mut group = engine.begin_group();
        for p in 0..20 {
            let points: Vec<(i64, i64)> = (p * 2000..(p + 1) * 2000).map(|t| (t, 1)).collect();
            group.write_part(vec![ints("root.g.d", "v", &points)]).unwrap();
        }
        let racer = {
            let engine = std::sync::Arc::clone(&engine);
            std::thread::spawn(move || {
                // While the commit runs: writes over the whole range, each
                // on times no other write touches (a later one would hide
                // an earlier one's order).
                for k in 0..100i64 {
                    let points: Vec<(i64, i64)> = (0..TIMES).filter(|t| t % 100 == k).map(|t| (t, 2 + k)).collect();
                    engine.write(&ints("root.g.d", "v", &points)).unwrap();
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(round * 5));
        group.commit(vec![]).unwrap();
        racer.join().unwrap();
        let live = int_points(&engine, &g());
        assert_eq!(live.len(), TIMES as usize);
        drop(engine);
        let engine = open(dir.path(), config());
        let replayed = int_points(&engine, &g());
        assert!(live == replayed, "round {round}: the replay applied the group and the racing writes in another order");
    }
}

/// The merged parts of a group no longer fit the working memtables at the
/// commit (the series emptied and written with another type since the part
/// was logged): the parts are applied one by one instead, sealing first,
/// as the replay does.
#[test]
fn merged_parts_that_no_longer_fit_the_memtables_are_applied_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), test_config());
    let mut group = engine.begin_group();
    group.write_part(vec![part(0, 10)]).unwrap();
    engine.delete(&[g()], storage::TimeRange::ALL).unwrap();
    engine.write(&common::doubles("root.g.d", "v", &[(100, 1.5)])).unwrap();
    group.commit(vec![]).unwrap();
    engine.flush().unwrap();
    assert_eq!(engine.files().len(), 2, "the DOUBLE point and the group's points are in separate files");
}

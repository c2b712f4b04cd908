//! Schema persistence: the append-only schema log, snapshots, and recovery.
//!
//! Files in the catalog directory:
//!
//! ```text
//! schema.snapshot          "ARBORCS1", then frames: SnapshotHeader, records..., SnapshotEnd
//! schema-<generation>.log  frames, appended and fsynced on every schema change
//! ```
//!
//! A frame is `payload length u32 LE | CRC32 of payload u32 LE | payload`
//! (payload: `record.rs`). A snapshot of generation `g+1` holds everything
//! up to the end of log `g`; once it is renamed into place, log `g+1` starts
//! empty and log `g` is deleted. Recovery loads the snapshot (generation 0
//! if none), replays the log of the same generation, and deletes older logs.
//!
//! A torn log tail — a last frame cut short (with no whole frame inside the
//! bytes it claims), or a last frame whose CRC fails and that ends at end of
//! file (or is followed only by zeros) — is
//! what a crash during an append leaves; it was never acknowledged, so it
//! is truncated. Any other damage refuses to open with [`Error::Corrupt`].
//! Snapshots are written whole before being renamed into place, so any
//! damage to one is corruption.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};

use crate::error::{Error, Result};
use crate::record::Record;
use crate::tree::Tree;

/// Largest payload accepted; a larger length field is damage.
pub(crate) const MAX_RECORD_BYTES: usize = 64 << 20;
const FRAME_HEADER_BYTES: usize = 8;
const SNAPSHOT_MAGIC: &[u8; 8] = b"ARBORCS1";
const SNAPSHOT_FILE: &str = "schema.snapshot";
const SNAPSHOT_TMP_FILE: &str = "schema.snapshot.tmp";

fn log_file_name(generation: u64) -> String {
    format!("schema-{generation}.log")
}

fn parse_log_file_name(name: &str) -> Option<u64> {
    name.strip_prefix("schema-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// The next ids to hand out. Persisted in snapshots and advanced past every
/// id seen in the log, so ids are never reused, even after deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdCounters {
    pub(crate) next_database: u64,
    pub(crate) next_device: u64,
    pub(crate) next_series: u64,
}

impl Default for IdCounters {
    fn default() -> Self {
        // Ids start at 1 so 0 can never be mistaken for a real id.
        IdCounters {
            next_database: 1,
            next_device: 1,
            next_series: 1,
        }
    }
}

impl IdCounters {
    pub(crate) fn observe(&mut self, record: &Record) {
        match record {
            Record::CreateDatabase { id, .. } => {
                self.next_database = self.next_database.max(id.saturating_add(1))
            }
            Record::CreateSeries {
                device_id, series, ..
            } => {
                self.next_device = self.next_device.max(device_id.saturating_add(1));
                for s in series {
                    self.next_series = self.next_series.max(s.id.saturating_add(1));
                }
            }
            Record::SnapshotHeader {
                next_database_id,
                next_device_id,
                next_series_id,
                ..
            } => {
                self.next_database = self.next_database.max(*next_database_id);
                self.next_device = self.next_device.max(*next_device_id);
                self.next_series = self.next_series.max(*next_series_id);
            }
            Record::DropDatabase { .. }
            | Record::DeleteSeries { .. }
            | Record::SetTtl { .. }
            | Record::SnapshotEnd { .. } => {}
        }
    }
}

/// What recovery found; the server logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Generation of the snapshot loaded, if there was one.
    pub snapshot_generation: Option<u64>,
    /// Records loaded from the snapshot.
    pub snapshot_records: u64,
    /// Records replayed from the log.
    pub log_records: u64,
    /// Bytes of torn tail cut from the log.
    pub torn_tail_bytes: u64,
}

/// Append one framed record to `out`.
pub(crate) fn frame(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    record.encode(out);
    let payload = &out[start + FRAME_HEADER_BYTES..];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Frames read from a file: (offset, payload), and where a torn tail begins.
pub(crate) struct Frames<'a> {
    pub(crate) frames: Vec<(u64, &'a [u8])>,
    pub(crate) torn_at: Option<u64>,
}

/// Split `buf` (which starts at file offset `base`) into frames.
pub(crate) fn read_frames<'a>(
    buf: &'a [u8],
    base: u64,
    file: &FsPath,
    tolerate_torn_tail: bool,
) -> Result<Frames<'a>> {
    let mut frames = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let offset = base + pos as u64;
        let rest = &buf[pos..];
        // Only zeros from here on: a tail the file system extended but
        // never filled, i.e. a torn append.
        let zeros_only = rest.iter().all(|&b| b == 0);
        let corrupt = |what: &str| -> Result<Frames<'a>> {
            Err(Error::Corrupt {
                file: file.to_path_buf(),
                offset,
                what: what.to_string(),
            })
        };
        if rest.len() < FRAME_HEADER_BYTES {
            if tolerate_torn_tail {
                return Ok(Frames {
                    frames,
                    torn_at: Some(offset),
                });
            }
            return corrupt("incomplete frame header");
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 || len > MAX_RECORD_BYTES {
            if tolerate_torn_tail && zeros_only {
                return Ok(Frames {
                    frames,
                    torn_at: Some(offset),
                });
            }
            return corrupt(&format!("invalid record length {len}"));
        }
        let end = FRAME_HEADER_BYTES + len;
        if end > rest.len() {
            // A torn append leaves a frame cut short at EOF. A damaged length
            // mid-file looks the same, except that whole records follow it.
            if tolerate_torn_tail && !holds_a_frame(&rest[FRAME_HEADER_BYTES..]) {
                return Ok(Frames {
                    frames,
                    torn_at: Some(offset),
                });
            }
            return corrupt("record extends past end of file");
        }
        let payload = &rest[FRAME_HEADER_BYTES..end];
        if crc32fast::hash(payload) != crc {
            let last = end == rest.len() || rest[end..].iter().all(|&b| b == 0);
            if tolerate_torn_tail && last {
                return Ok(Frames {
                    frames,
                    torn_at: Some(offset),
                });
            }
            return corrupt("checksum mismatch");
        }
        frames.push((offset, payload));
        pos += end;
    }
    Ok(Frames {
        frames,
        torn_at: None,
    })
}

/// Does a CRC-valid frame start anywhere in `buf`? (A random match needs
/// a 32-bit CRC collision, so this does not misread a torn payload.)
fn holds_a_frame(buf: &[u8]) -> bool {
    (0..buf.len().saturating_sub(FRAME_HEADER_BYTES)).any(|i| {
        let h = &buf[i..];
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        len > 0
            && len <= MAX_RECORD_BYTES
            && FRAME_HEADER_BYTES + len <= h.len()
            && crc32fast::hash(&h[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len]) == crc
    })
}

fn decode_at(file: &FsPath, offset: u64, payload: &[u8]) -> Result<Record> {
    Record::decode(payload).map_err(|what| Error::Corrupt {
        file: file.to_path_buf(),
        offset,
        what,
    })
}

/// Validate and apply one recovered record; a record that does not apply
/// means the files disagree with each other: corruption.
fn replay(
    tree: &mut Tree,
    ids: &mut IdCounters,
    file: &FsPath,
    offset: u64,
    record: &Record,
) -> Result<()> {
    let records = std::slice::from_ref(record);
    tree.validate(records).map_err(|e| Error::Corrupt {
        file: file.to_path_buf(),
        offset,
        what: format!("record does not apply: {e}"),
    })?;
    tree.apply(record);
    ids.observe(record);
    Ok(())
}

fn sync_dir(dir: &FsPath) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Serialize `tree` as a snapshot of `generation`.
pub(crate) fn encode_snapshot(tree: &Tree, ids: IdCounters, generation: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + tree.series_count() * 48);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    frame(
        &Record::SnapshotHeader {
            generation,
            next_database_id: ids.next_database,
            next_device_id: ids.next_device,
            next_series_id: ids.next_series,
        },
        &mut out,
    );
    let mut count = 0u64;
    tree.snapshot_records(&mut |r| {
        frame(r, &mut out);
        count += 1;
    });
    frame(&Record::SnapshotEnd { records: count }, &mut out);
    out
}

/// Load a snapshot file into a fresh tree.
fn load_snapshot(file: &FsPath, buf: &[u8]) -> Result<(Tree, IdCounters, u64, u64)> {
    let corrupt = |offset: u64, what: &str| Error::Corrupt {
        file: file.to_path_buf(),
        offset,
        what: what.to_string(),
    };
    if buf.len() < SNAPSHOT_MAGIC.len() || &buf[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, "not an Arbor schema snapshot (bad magic)"));
    }
    let frames = read_frames(
        &buf[SNAPSHOT_MAGIC.len()..],
        SNAPSHOT_MAGIC.len() as u64,
        file,
        false,
    )?
    .frames;
    let Some((&(first_off, first), rest)) = frames.split_first() else {
        return Err(corrupt(
            SNAPSHOT_MAGIC.len() as u64,
            "snapshot has no header",
        ));
    };
    let Some((&(last_off, last), body)) = rest.split_last() else {
        return Err(corrupt(first_off, "snapshot has no end record"));
    };
    let mut ids = IdCounters::default();
    let header = decode_at(file, first_off, first)?;
    let Record::SnapshotHeader { generation, .. } = header else {
        return Err(corrupt(first_off, "snapshot does not start with a header"));
    };
    ids.observe(&header);
    match decode_at(file, last_off, last)? {
        Record::SnapshotEnd { records } if records == body.len() as u64 => {}
        Record::SnapshotEnd { records } => {
            return Err(corrupt(
                last_off,
                &format!("snapshot end says {records} records, found {}", body.len()),
            ))
        }
        _ => {
            return Err(corrupt(
                last_off,
                "snapshot does not end with an end record",
            ))
        }
    }
    let mut tree = Tree::new();
    for &(offset, payload) in body {
        let record = decode_at(file, offset, payload)?;
        if matches!(
            record,
            Record::SnapshotHeader { .. } | Record::SnapshotEnd { .. }
        ) {
            return Err(corrupt(offset, "snapshot framing record inside a snapshot"));
        }
        replay(&mut tree, &mut ids, file, offset, &record)?;
    }
    Ok((tree, ids, generation, body.len() as u64))
}

/// The open schema log of the current generation.
pub(crate) struct SchemaLog {
    dir: PathBuf,
    generation: u64,
    path: PathBuf,
    file: File,
    len: u64,
    records: u64,
    /// A failed write could not be undone: refuse further appends, since
    /// appending after garbage would turn a torn tail into mid-file damage.
    poisoned: bool,
}

/// Everything [`open`] recovers.
pub(crate) struct Recovered {
    pub(crate) tree: Tree,
    pub(crate) ids: IdCounters,
    pub(crate) log: SchemaLog,
    pub(crate) report: RecoveryReport,
}

/// Open (or create) the catalog directory and rebuild the tree.
pub(crate) fn open(dir: &FsPath) -> Result<Recovered> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(SNAPSHOT_TMP_FILE);
    match fs::remove_file(&tmp) {
        // A snapshot that was being written when we stopped: never installed.
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&tmp, e)),
    }

    let mut report = RecoveryReport::default();
    let snapshot_path = dir.join(SNAPSHOT_FILE);
    let (mut tree, mut ids, generation) = match fs::read(&snapshot_path) {
        Ok(buf) => {
            let (tree, ids, generation, records) = load_snapshot(&snapshot_path, &buf)?;
            report.snapshot_generation = Some(generation);
            report.snapshot_records = records;
            (tree, ids, generation)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (Tree::new(), IdCounters::default(), 0)
        }
        Err(e) => return Err(Error::io(&snapshot_path, e)),
    };

    // Logs older than the snapshot are already inside it; a newer one means
    // the snapshot it belongs to is missing.
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(g) = name.to_str().and_then(parse_log_file_name) else {
            continue;
        };
        if g < generation {
            fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        } else if g > generation {
            return Err(Error::Corrupt {
                file: entry.path(),
                offset: 0,
                what: format!(
                    "schema log of generation {g} but the snapshot is of generation {generation}"
                ),
            });
        }
    }

    let log_path = dir.join(log_file_name(generation));
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&log_path)
        .map_err(|e| Error::io(&log_path, e))?;
    let buf = fs::read(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let frames = read_frames(&buf, 0, &log_path, true)?;
    for &(offset, payload) in &frames.frames {
        let record = decode_at(&log_path, offset, payload)?;
        if matches!(
            record,
            Record::SnapshotHeader { .. } | Record::SnapshotEnd { .. }
        ) {
            return Err(Error::Corrupt {
                file: log_path.clone(),
                offset,
                what: "snapshot framing record inside the log".into(),
            });
        }
        replay(&mut tree, &mut ids, &log_path, offset, &record)?;
    }
    report.log_records = frames.frames.len() as u64;
    let mut len = buf.len() as u64;
    if let Some(at) = frames.torn_at {
        report.torn_tail_bytes = len - at;
        file.set_len(at)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&log_path, e))?;
        len = at;
    }
    file.flush().map_err(|e| Error::io(&log_path, e))?;
    sync_dir(dir)?;
    Ok(Recovered {
        tree,
        ids,
        log: SchemaLog {
            dir: dir.to_path_buf(),
            generation,
            path: log_path,
            file,
            len,
            records: report.log_records,
            poisoned: false,
        },
        report,
    })
}

impl SchemaLog {
    /// Records in the current log (since the last snapshot).
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Append `records` as one write and fsync. On failure the file is cut
    /// back to its previous length, so a failed change leaves no trace.
    pub(crate) fn append(&mut self, records: &[Record]) -> Result<()> {
        if self.poisoned {
            return Err(Error::LogPoisoned {
                file: self.path.clone(),
            });
        }
        let mut buf = Vec::new();
        for r in records {
            let start = buf.len();
            frame(r, &mut buf);
            let payload = buf.len() - start - FRAME_HEADER_BYTES;
            if payload > MAX_RECORD_BYTES {
                // Recovery would refuse such a frame: do not write it.
                return Err(Error::Internal(format!(
                    "schema record of {payload} bytes exceeds the {MAX_RECORD_BYTES}-byte limit"
                )));
            }
        }
        let result = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = result {
            if self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.sync_data())
                .is_err()
            {
                self.poisoned = true;
            }
            return Err(Error::io(&self.path, e));
        }
        self.len += buf.len() as u64;
        self.records += records.len() as u64;
        Ok(())
    }

    /// Install `snapshot` (encoded for generation + 1) and start its log.
    pub(crate) fn install_snapshot(&mut self, snapshot: &[u8]) -> Result<()> {
        if self.poisoned {
            return Err(Error::LogPoisoned {
                file: self.path.clone(),
            });
        }
        let tmp = self.dir.join(SNAPSHOT_TMP_FILE);
        let target = self.dir.join(SNAPSHOT_FILE);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(snapshot)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            // Nothing was installed; the old snapshot and log still hold everything.
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(&tmp, e));
        }
        fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
        // From here the new snapshot is (or may be) in force: the old log is
        // superseded, so appending to it would lose data. Any failure until
        // the new log exists poisons the log.
        let next = self.generation + 1;
        let new_path = self.dir.join(log_file_name(next));
        let opened = sync_dir(&self.dir).and_then(|()| {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .truncate(false)
                .open(&new_path)
                .and_then(|f| f.set_len(0).and_then(|()| f.sync_all()).map(|()| f))
                .map_err(|e| Error::io(&new_path, e))?;
            sync_dir(&self.dir)?;
            Ok(file)
        });
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                self.poisoned = true;
                return Err(e);
            }
        };
        let old = std::mem::replace(&mut self.path, new_path);
        self.file = file;
        self.generation = next;
        self.len = 0;
        self.records = 0;
        // Recovery deletes logs older than the snapshot, so a failure here
        // only leaves a stale file behind.
        let _ = fs::remove_file(old);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(records: &[Record]) -> Vec<u8> {
        let mut buf = Vec::new();
        for r in records {
            frame(r, &mut buf);
        }
        buf
    }

    fn sample() -> Vec<Record> {
        (1..=3)
            .map(|id| Record::CreateDatabase {
                id,
                path: vec!["root".into(), format!("db{id}")],
            })
            .collect()
    }

    #[test]
    fn reads_back_frames() {
        let buf = framed(&sample());
        let f = read_frames(&buf, 0, FsPath::new("x"), true).unwrap();
        assert_eq!(f.frames.len(), 3);
        assert_eq!(f.torn_at, None);
        assert_eq!(f.frames[0].0, 0);
    }

    #[test]
    fn torn_tails_are_detected() {
        let buf = framed(&sample());
        let whole = framed(&sample()[..2]).len();
        // Cut anywhere inside the last frame.
        for cut in whole + 1..buf.len() {
            let f = read_frames(&buf[..cut], 0, FsPath::new("x"), true).unwrap();
            assert_eq!(f.frames.len(), 2);
            assert_eq!(f.torn_at, Some(whole as u64));
        }
        // Last frame garbled but complete.
        let mut bad = buf.clone();
        let n = bad.len();
        bad[n - 1] ^= 0xFF;
        let f = read_frames(&bad, 0, FsPath::new("x"), true).unwrap();
        assert_eq!(f.torn_at, Some(whole as u64));
        // Zeros after the last good frame.
        let mut zeros = framed(&sample()[..2]);
        zeros.extend_from_slice(&[0; 100]);
        let f = read_frames(&zeros, 0, FsPath::new("x"), true).unwrap();
        assert_eq!(f.frames.len(), 2);
        assert_eq!(f.torn_at, Some(whole as u64));
    }

    #[test]
    fn damage_in_the_middle_is_corruption() {
        let mut buf = framed(&sample());
        buf[FRAME_HEADER_BYTES + 2] ^= 0xFF;
        let err = read_frames(&buf, 0, FsPath::new("x"), true).err().unwrap();
        assert!(matches!(err, Error::Corrupt { offset: 0, .. }), "{err}");
        // Without tolerance even a torn tail is corruption (snapshots).
        let buf = framed(&sample());
        let err = read_frames(&buf[..buf.len() - 1], 0, FsPath::new("x"), false)
            .err()
            .unwrap();
        assert!(matches!(err, Error::Corrupt { .. }));
    }

    #[test]
    fn damaged_length_mid_file_is_corruption() {
        // The first frame's length now reaches past EOF, but whole frames
        // follow it: not a torn tail.
        let mut buf = framed(&sample());
        buf[2] = 0x10;
        let err = read_frames(&buf, 0, FsPath::new("x"), true).err().unwrap();
        assert!(matches!(err, Error::Corrupt { offset: 0, .. }), "{err}");
    }

    #[test]
    fn log_file_names_round_trip() {
        assert_eq!(parse_log_file_name(&log_file_name(42)), Some(42));
        assert_eq!(parse_log_file_name("schema.snapshot"), None);
        assert_eq!(parse_log_file_name("schema-x.log"), None);
    }
}

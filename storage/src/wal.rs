//! The write-ahead log: every write batch and delete is appended here before
//! it touches a memtable, so an acknowledged write survives `kill -9`.
//!
//! Layout (`wal/` under the database directory):
//!
//! ```text
//! {generation:016}-{index:06}.wal   segment: header, then records
//!   header  = "ARBORWAL" | generation u64 LE | crc32 of the previous 16 bytes (u32 LE)
//!   record  = payload length u32 LE | crc32(payload) u32 LE | payload
//! CHECKPOINT                        "ARBORCKP" | flushed generation u64 LE | crc32 (u32 LE)
//! ```
//!
//! A *generation* is the life of one pair of working memtables: sealing them
//! starts a new generation (and segment). Once a generation's memtables are
//! flushed, CHECKPOINT records it and its segments are deleted; recovery
//! replays the segments of later generations only.
//!
//! A record is one of: a write batch, a delete, or a *group* — several write
//! batches in one record (a small `COPY`), so a group is replayed whole or
//! not at all: its one checksum is its commit mark.
//!
//! A group too large to hold in memory (a big `COPY`) is *streamed*
//! ([`crate::engine::OpenGroup`]): its batches are logged as *part* records
//! (`id`, part index, batches) as they are produced, interleaved with other
//! writers' records and not applied; then one *apply* record (`id`, from
//! part/batch, part count) commits it and the parts are applied (from
//! memory while the group kept them, else read back from the log). A seal in the middle of that apply logs another apply
//! record (resuming at the next batch) at the head of the new generation, so
//! every generation says which of the group's batches its memtables hold.
//! Recovery replays a group only from its apply records: parts without one
//! (a COPY that failed, was cancelled, or was cut off by a crash) are never
//! replayed. Segments holding parts of a group that is open, or committed but
//! not yet wholly flushed, are kept past the checkpoint (see
//! [`crate::engine`]'s group pins).
//!
//! Appends do not sync. Every append gets a log sequence number (LSN); a
//! writer that needs durability waits for the group commit
//! ([`crate::commit`]) to sync past its LSN, so concurrent writers share
//! one `fsync`.
//!
//! A record that runs past the end of its segment, or a last record whose
//! checksum fails, is a torn tail from a crash: it is cut off and recovery
//! goes on. A bad record with intact records after it is corruption, and
//! recovery stops with [`Error::Corrupt`] rather than drop what follows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tsfile::{DataType, TimeRange, Values};

use crate::batch::{Column, SeriesKey, WriteBatch};
use crate::config::FsyncPolicy;
use crate::error::{Error, Result};
use crate::fs::{FileSystem, FsFile};

const SEGMENT_MAGIC: &[u8; 8] = b"ARBORWAL";
const SEGMENT_HEADER_LEN: u64 = 20;
pub(crate) const RECORD_HEADER_LEN: u64 = 8;
/// No record is larger; a length above this is damage, not data.
const MAX_RECORD_BYTES: u64 = 1 << 30;
const CHECKPOINT_MAGIC: &[u8; 8] = b"ARBORCKP";
const CHECKPOINT_FILE: &str = "CHECKPOINT";

const KIND_WRITE: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_GROUP: u8 = 3;
const KIND_PART: u8 = 4;
const KIND_APPLY: u8 = 5;

/// One logged operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WalRecord {
    Write(WriteBatch),
    /// Several batches logged as one record: all of them or none.
    Group(Vec<WriteBatch>),
    Delete { series: Vec<SeriesKey>, range: TimeRange },
    /// Part `index` of the streamed group `id`: logged, not applied.
    Part { id: u64, index: u32, batches: Vec<WriteBatch> },
    /// Commit (or, after a seal, resume) of the streamed group `id`: its
    /// batches from part `part`, batch `batch` on are applied here, up to the
    /// group's next apply record or, without one, to the end of its `parts`.
    Apply(GroupApply),
}

/// The body of an apply record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupApply {
    pub(crate) id: u64,
    pub(crate) part: u32,
    pub(crate) batch: u32,
    /// How many parts the group has.
    pub(crate) parts: u32,
}

pub(crate) fn segment_name(generation: u64, index: u32) -> String {
    format!("{generation:016}-{index:06}.wal")
}

/// `(generation, index)` of a segment file name.
pub(crate) fn parse_segment_name(name: &str) -> Option<(u64, u32)> {
    let stem = name.strip_suffix(".wal")?;
    let (g, i) = stem.split_once('-')?;
    Some((g.parse().ok()?, i.parse().ok()?))
}

fn segment_header(generation: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    h.extend_from_slice(SEGMENT_MAGIC);
    h.extend_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

// ---------------------------------------------------------------- encoding

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Fixed-width little-endian values appended in one resize and a loop the
/// compiler vectorises (a push per value checks the capacity each time).
macro_rules! put_fixed {
    ($out:expr, $v:expr, $w:expr) => {{
        let at = $out.len();
        $out.resize(at + $v.len() * $w, 0);
        for (slot, x) in $out[at..].chunks_exact_mut($w).zip($v.iter()) {
            slot.copy_from_slice(&x.to_le_bytes());
        }
    }};
}

fn put_values(out: &mut Vec<u8>, values: &Values) {
    match values {
        Values::Boolean(v) => out.extend(v.iter().map(|b| u8::from(*b))),
        Values::Int32(v) => put_fixed!(out, v, 4),
        Values::Int64(v) => put_fixed!(out, v, 8),
        Values::Float(v) => put_fixed!(out, v, 4),
        Values::Double(v) => put_fixed!(out, v, 8),
        Values::Binary(v) => v.iter().for_each(|b| {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }),
    }
}

/// About the bytes [`encode_group`] takes for `batches`.
fn group_len(batches: &[&WriteBatch]) -> usize {
    5 + batches.iter().map(|b| 4 + encoded_len(b)).sum::<usize>()
}

/// About the bytes [`encode_write`] takes for `batch` (for reserving).
fn encoded_len(batch: &WriteBatch) -> usize {
    let rows = batch.times.len();
    let columns: usize = batch
        .columns
        .iter()
        .map(|c| {
            c.measurement.len() + 10 + rows.div_ceil(8) + crate::batch::values_bytes(&c.values)
        })
        .sum();
    batch.device.len() + 16 + rows * 8 + columns
}

pub(crate) fn encode_write(batch: &WriteBatch, out: &mut Vec<u8>) {
    out.push(KIND_WRITE);
    put_str(out, &batch.device);
    out.push(u8::from(batch.aligned));
    out.extend_from_slice(&(batch.times.len() as u32).to_le_bytes());
    put_fixed!(out, batch.times, 8);
    out.extend_from_slice(&(batch.columns.len() as u32).to_le_bytes());
    for c in &batch.columns {
        put_str(out, &c.measurement);
        out.push(c.data_type.code());
        match &c.validity {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                let mut bitmap = vec![0u8; v.len().div_ceil(8)];
                for (i, b) in v.iter().enumerate() {
                    if *b {
                        bitmap[i / 8] |= 1 << (i % 8);
                    }
                }
                out.extend_from_slice(&bitmap);
            }
        }
        out.extend_from_slice(&(c.values.len() as u32).to_le_bytes());
        put_values(out, &c.values);
    }
}

/// A group: the batch count, then each batch as a length-prefixed write record.
pub(crate) fn encode_group(batches: &[&WriteBatch], out: &mut Vec<u8>) {
    out.push(KIND_GROUP);
    encode_batches(batches, out);
}

/// The body of a group: the batch count, then each batch as a length-prefixed write record.
fn encode_batches(batches: &[&WriteBatch], out: &mut Vec<u8>) {
    out.extend_from_slice(&(batches.len() as u32).to_le_bytes());
    for b in batches {
        let at = out.len();
        out.extend_from_slice(&[0u8; 4]);
        encode_write(b, out);
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Part of a streamed group: id, index, then the batches as a group holds them.
pub(crate) fn encode_part(id: u64, index: u32, batches: &[&WriteBatch], out: &mut Vec<u8>) {
    out.push(KIND_PART);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    encode_batches(batches, out);
}

pub(crate) fn encode_apply(a: GroupApply, out: &mut Vec<u8>) {
    out.push(KIND_APPLY);
    out.extend_from_slice(&a.id.to_le_bytes());
    out.extend_from_slice(&a.part.to_le_bytes());
    out.extend_from_slice(&a.batch.to_le_bytes());
    out.extend_from_slice(&a.parts.to_le_bytes());
}

/// What a streamed-group record is about, without decoding its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupRecord {
    Part { id: u64, index: u32 },
    Apply(GroupApply),
}

/// The group header of a payload, if it is a part or apply record.
pub(crate) fn peek_group(payload: &[u8]) -> std::result::Result<Option<GroupRecord>, String> {
    let mut c = Cursor::new(payload);
    match c.u8()? {
        KIND_PART => Ok(Some(GroupRecord::Part { id: c.u64()?, index: c.u32()? })),
        KIND_APPLY => Ok(Some(GroupRecord::Apply(GroupApply { id: c.u64()?, part: c.u32()?, batch: c.u32()?, parts: c.u32()? }))),
        _ => Ok(None),
    }
}

fn decode_batches(c: &mut Cursor<'_>) -> std::result::Result<Vec<WriteBatch>, String> {
    let n = c.count(5)?;
    let mut batches = Vec::with_capacity(n);
    for _ in 0..n {
        let len = c.count(1)?;
        match decode_record(c.bytes(len)?)? {
            WalRecord::Write(b) => batches.push(b),
            _ => return Err("a group holds something other than write batches".into()),
        }
    }
    if !c.is_empty() {
        return Err("trailing bytes after a group record".into());
    }
    Ok(batches)
}

pub(crate) fn encode_delete(series: &[SeriesKey], range: TimeRange, out: &mut Vec<u8>) {
    out.push(KIND_DELETE);
    out.extend_from_slice(&range.start.to_le_bytes());
    out.extend_from_slice(&range.end.to_le_bytes());
    out.extend_from_slice(&(series.len() as u32).to_le_bytes());
    for s in series {
        put_str(out, &s.device);
        put_str(out, &s.measurement);
    }
}

/// A bounds-checked little-endian reader over a record payload.
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        let end = end.ok_or_else(|| format!("{n} bytes wanted at byte {} of a {}-byte record", self.pos, self.data.len()))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> std::result::Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count of items that each take at least `min_item_bytes`: checked
    /// against the bytes left so damage cannot ask for a huge allocation.
    pub(crate) fn count(&mut self, min_item_bytes: usize) -> std::result::Result<usize, String> {
        let n = self.u32()? as usize;
        let left = self.data.len() - self.pos;
        if n.saturating_mul(min_item_bytes.max(1)) > left {
            return Err(format!("count {n} exceeds the {left} bytes left"));
        }
        Ok(n)
    }

    pub(crate) fn string(&mut self) -> std::result::Result<String, String> {
        let n = self.count(1)?;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
}

fn get_values(c: &mut Cursor<'_>, data_type: DataType, n: usize) -> std::result::Result<Values, String> {
    macro_rules! fixed {
        ($variant:ident, $t:ty, $w:expr) => {{
            let raw = c.bytes(n.checked_mul($w).ok_or("value count overflows")?)?;
            Values::$variant(raw.chunks_exact($w).map(|b| <$t>::from_le_bytes(b.try_into().unwrap_or([0; $w]))).collect())
        }};
    }
    Ok(match Values::empty(data_type) {
        Values::Boolean(_) => Values::Boolean(c.bytes(n)?.iter().map(|b| *b != 0).collect()),
        Values::Int32(_) => fixed!(Int32, i32, 4),
        Values::Int64(_) => fixed!(Int64, i64, 8),
        Values::Float(_) => fixed!(Float, f32, 4),
        Values::Double(_) => fixed!(Double, f64, 8),
        Values::Binary(_) => {
            let mut v = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let len = c.count(1)?;
                v.push(c.bytes(len)?.to_vec());
            }
            Values::Binary(v)
        }
    })
}

pub(crate) fn decode_record(payload: &[u8]) -> std::result::Result<WalRecord, String> {
    let mut c = Cursor::new(payload);
    match c.u8()? {
        KIND_GROUP => Ok(WalRecord::Group(decode_batches(&mut c)?)),
        KIND_PART => {
            let id = c.u64()?;
            let index = c.u32()?;
            Ok(WalRecord::Part { id, index, batches: decode_batches(&mut c)? })
        }
        KIND_APPLY => {
            let a = GroupApply { id: c.u64()?, part: c.u32()?, batch: c.u32()?, parts: c.u32()? };
            if !c.is_empty() {
                return Err("trailing bytes after an apply record".into());
            }
            if a.part > a.parts {
                return Err(format!("apply record resumes at part {} of {}", a.part, a.parts));
            }
            Ok(WalRecord::Apply(a))
        }
        KIND_WRITE => {
            let device = c.string()?;
            let aligned = c.u8()? != 0;
            let rows = c.count(8)?;
            let times: Vec<i64> = c.bytes(rows * 8)?.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect();
            let ncols = c.count(6)?;
            let mut columns = Vec::with_capacity(ncols);
            for _ in 0..ncols {
                let measurement = c.string()?;
                let code = c.u8()?;
                let data_type = DataType::from_code(code).ok_or_else(|| format!("unknown data type code {code}"))?;
                let validity = match c.u8()? {
                    0 => None,
                    _ => {
                        let bitmap = c.bytes(rows.div_ceil(8))?;
                        Some((0..rows).map(|i| bitmap[i / 8] & (1 << (i % 8)) != 0).collect::<Vec<bool>>())
                    }
                };
                let present = c.u32()? as usize;
                if present > rows {
                    return Err(format!("{present} values for {rows} rows"));
                }
                let values = get_values(&mut c, data_type, present)?;
                columns.push(Column { measurement, data_type, values, validity });
            }
            if !c.is_empty() {
                return Err("trailing bytes after a write record".into());
            }
            let batch = WriteBatch { device, aligned, times, columns };
            batch.validate().map_err(|e| e.to_string())?;
            Ok(WalRecord::Write(batch))
        }
        KIND_DELETE => {
            let range = TimeRange::new(c.i64()?, c.i64()?);
            let n = c.count(8)?;
            let mut series = Vec::with_capacity(n);
            for _ in 0..n {
                series.push(SeriesKey { device: c.string()?, measurement: c.string()? });
            }
            Ok(WalRecord::Delete { series, range })
        }
        k => Err(format!("unknown record kind {k}")),
    }
}

// ---------------------------------------------------------------- writing

/// The open segment that records are appended to.
pub(crate) struct Wal {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    policy: FsyncPolicy,
    segment_bytes: u64,
    generation: u64,
    index: u32,
    path: PathBuf,
    file: Option<Arc<dyn FsFile>>,
    pos: u64,
    /// Segments written since their last sync (interval policy).
    unsynced: Vec<Arc<dyn FsFile>>,
    last_sync: Instant,
    /// LSN of the last record appended (records are numbered from 1 per run).
    appended: u64,
}

/// A record framed for the log (header + payload), built outside the
/// engine lock so the lock is held only for the write itself.
pub(crate) struct Frame(Vec<u8>);

impl Frame {
    pub(crate) fn new(encode: impl FnOnce(&mut Vec<u8>)) -> Frame {
        Frame::with_capacity(0, encode)
    }

    /// [`Frame::new`] with room for about `payload` bytes reserved (a large
    /// record grown by doubling would be copied several times over).
    fn with_capacity(payload: usize, encode: impl FnOnce(&mut Vec<u8>)) -> Frame {
        let mut frame = Vec::with_capacity(RECORD_HEADER_LEN as usize + payload);
        frame.extend_from_slice(&[0u8; RECORD_HEADER_LEN as usize]);
        encode(&mut frame);
        let payload_len = (frame.len() - RECORD_HEADER_LEN as usize) as u32;
        let crc = crc32fast::hash(&frame[RECORD_HEADER_LEN as usize..]);
        frame[..4].copy_from_slice(&payload_len.to_le_bytes());
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        Frame(frame)
    }

    pub(crate) fn write(batch: &WriteBatch) -> Frame {
        Frame::with_capacity(encoded_len(batch), |out| encode_write(batch, out))
    }

    pub(crate) fn group(batches: &[&WriteBatch]) -> Frame {
        Frame::with_capacity(group_len(batches), |out| encode_group(batches, out))
    }

    pub(crate) fn part(id: u64, index: u32, batches: &[&WriteBatch]) -> Frame {
        Frame::with_capacity(group_len(batches) + 12, |out| encode_part(id, index, batches, out))
    }

    pub(crate) fn apply(a: GroupApply) -> Frame {
        Frame::new(|out| encode_apply(a, out))
    }

    pub(crate) fn delete(series: &[SeriesKey], range: TimeRange) -> Frame {
        Frame::new(|out| encode_delete(series, range, out))
    }

    /// Whether the payload is small enough to be a record.
    pub(crate) fn check_size(&self) -> Result<()> {
        let payload = self.0.len() as u64 - RECORD_HEADER_LEN;
        if payload > MAX_RECORD_BYTES {
            return Err(Error::batch("?", format!("a WAL record of {payload} bytes is larger than the {MAX_RECORD_BYTES}-byte limit; write less at once")));
        }
        Ok(())
    }
}

impl Wal {
    /// Start generation `generation` with a fresh segment.
    pub(crate) fn create(fs: Arc<dyn FileSystem>, dir: &Path, policy: FsyncPolicy, segment_bytes: u64, generation: u64) -> Result<Wal> {
        let mut wal = Wal {
            fs,
            dir: dir.to_path_buf(),
            policy,
            segment_bytes: segment_bytes.max(SEGMENT_HEADER_LEN + 1),
            generation,
            index: 0,
            path: PathBuf::new(),
            file: None,
            pos: 0,
            unsynced: Vec::new(),
            last_sync: Instant::now(),
            appended: 0,
        };
        wal.open_segment(generation, 0)?;
        Ok(wal)
    }

    fn open_segment(&mut self, generation: u64, index: u32) -> Result<()> {
        if let Some(old) = self.file.take() {
            self.unsynced.push(old);
        }
        let path = self.dir.join(segment_name(generation, index));
        let file = self.fs.create(&path).map_err(|e| Error::io(&path, e))?;
        let header = segment_header(generation);
        file.write_at(0, &header).map_err(|e| Error::io(&path, e))?;
        if self.policy == FsyncPolicy::EveryBatch {
            file.sync().map_err(|e| Error::io(&path, e))?;
            self.fs.sync_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        }
        self.generation = generation;
        self.index = index;
        self.path = path;
        self.pos = header.len() as u64;
        self.file = Some(file);
        Ok(())
    }

    /// Start a new generation (its own segment).
    pub(crate) fn start_generation(&mut self, generation: u64) -> Result<()> {
        self.open_segment(generation, 0)
    }

    /// LSN of the last record appended.
    pub(crate) fn appended(&self) -> u64 {
        self.appended
    }

    /// Append one framed record with a single write (not synced: see
    /// [`crate::commit`]); returns its LSN. On failure the segment is cut
    /// back (or abandoned) so no half record sits before later ones.
    pub(crate) fn append(&mut self, frame: &Frame) -> Result<u64> {
        frame.check_size()?;
        if self.file.is_none() || self.pos >= self.segment_bytes {
            self.open_segment(self.generation, self.index + 1)?;
        }
        let Some(file) = self.file.clone() else {
            return Err(Error::io(&self.path, std::io::Error::other("no open WAL segment")));
        };
        match file.write_at(self.pos, &frame.0) {
            Ok(()) => {
                self.pos += frame.0.len() as u64;
                self.appended += 1;
                Ok(self.appended)
            }
            Err(e) => {
                // The record was not acknowledged; remove whatever part of it
                // reached the file. If even that fails, leave this segment
                // (its tail will read as torn) and use a new one next time.
                if file.set_len(self.pos).and_then(|()| file.sync()).is_err() {
                    self.unsynced.push(file);
                    self.file = None;
                }
                Err(Error::io(&self.path, e))
            }
        }
    }

    /// [`Wal::append`], also returning where the record lies, so it can be
    /// read back ([`read_record`]).
    pub(crate) fn append_located(&mut self, frame: &Frame) -> Result<(u64, RecordLocation)> {
        frame.check_size()?;
        if self.file.is_none() || self.pos >= self.segment_bytes {
            self.open_segment(self.generation, self.index + 1)?;
        }
        let offset = self.pos;
        let lsn = self.append(frame)?;
        let file = self.file.clone().ok_or_else(|| Error::io(&self.path, std::io::Error::other("no open WAL segment")))?;
        Ok((lsn, RecordLocation { file, path: self.path.clone(), generation: self.generation, offset, len: frame.0.len() as u64 }))
    }

    /// Sync if the interval policy's time has come (inline mode).
    pub(crate) fn sync_if_due(&mut self) -> Result<()> {
        if let FsyncPolicy::IntervalMs(ms) = self.policy {
            if self.last_sync.elapsed().as_millis() as u64 >= ms {
                self.sync()?;
            }
        }
        Ok(())
    }

    /// Files to sync now (the current segment and any left unsynced).
    /// Syncing them makes every record up to [`Wal::appended`] durable.
    pub(crate) fn take_sync_targets(&mut self) -> Vec<Arc<dyn FsFile>> {
        self.last_sync = Instant::now();
        let mut files = std::mem::take(&mut self.unsynced);
        files.extend(self.file.clone());
        files
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn sync(&mut self) -> Result<()> {
        let path = self.path.clone();
        for f in self.take_sync_targets() {
            f.sync().map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- reading

/// Where one record lies in the log (a streamed group's part).
#[derive(Debug, Clone)]
pub(crate) struct RecordLocation {
    pub(crate) file: Arc<dyn FsFile>,
    pub(crate) path: PathBuf,
    pub(crate) generation: u64,
    /// Offset of the record header in the segment.
    pub(crate) offset: u64,
    /// Header and payload.
    pub(crate) len: u64,
}

/// Read one record back from where it was logged, checking its frame and
/// checksum again (what recovery checks, for a record read out of order).
pub(crate) fn read_record(loc: &RecordLocation) -> Result<WalRecord> {
    let path = &loc.path;
    if loc.len < RECORD_HEADER_LEN || loc.len - RECORD_HEADER_LEN > MAX_RECORD_BYTES {
        return Err(Error::corrupt(path, loc.offset, format!("a WAL record of {} bytes", loc.len)));
    }
    let mut data = vec![0u8; loc.len as usize];
    loc.file.read_at(loc.offset, &mut data).map_err(|e| Error::io(path, e))?;
    let rec_len = u64::from(u32::from_le_bytes([data[0], data[1], data[2], data[3]]));
    let crc = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    let payload = &data[RECORD_HEADER_LEN as usize..];
    if rec_len != payload.len() as u64 || crc32fast::hash(payload) != crc {
        return Err(Error::corrupt(path, loc.offset, "a WAL record read back does not match its frame"));
    }
    decode_record(payload).map_err(|what| Error::corrupt(path, loc.offset, format!("undecodable WAL record: {what}")))
}

/// A WAL segment found on disk.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) generation: u64,
    pub(crate) index: u32,
}

/// Segments in `dir`, in log order.
pub(crate) fn list_segments(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<Segment>> {
    let mut out = Vec::new();
    for path in fs.list(dir).map_err(|e| Error::io(dir, e))? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if let Some((generation, index)) = parse_segment_name(name) {
            out.push(Segment { path, generation, index });
        }
    }
    out.sort_by_key(|s| (s.generation, s.index));
    Ok(out)
}

/// Replay one segment: call `apply` for every intact record in order. A torn
/// tail is cut off the file; corruption before the tail is an error.
#[cfg(test)]
pub(crate) fn replay_segment(
    fs: &dyn FileSystem,
    segment: &Segment,
    mut apply: impl FnMut(WalRecord) -> Result<()>,
) -> Result<()> {
    let path = segment.path.clone();
    scan_segment(fs, segment, |pos, payload| {
        let record = decode_record(payload).map_err(|what| Error::corrupt(&path, pos, format!("undecodable WAL record: {what}")))?;
        apply(record)
    })
}

/// Call `visit` with the offset and payload of every intact record of a
/// segment, in order. A torn tail is cut off the file; corruption before
/// the tail is an error.
pub(crate) fn scan_segment(fs: &dyn FileSystem, segment: &Segment, mut visit: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
    let path = &segment.path;
    let file = fs.open(path).map_err(|e| Error::io(path, e))?;
    let len = file.len().map_err(|e| Error::io(path, e))?;
    if len < SEGMENT_HEADER_LEN {
        // Empty or a header cut short: the segment never held a record.
        if len > 0 {
            tracing::warn!(path = %path.display(), len, "WAL segment shorter than its header; ignoring it");
        }
        return Ok(());
    }
    let mut data = vec![0u8; len as usize];
    file.read_at(0, &mut data).map_err(|e| Error::io(path, e))?;
    if data[..SEGMENT_HEADER_LEN as usize] != segment_header(segment.generation)[..] {
        return Err(Error::corrupt(path, 0, "bad WAL segment header"));
    }
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < len {
        let torn = |why: &str| {
            tracing::warn!(path = %path.display(), offset = pos, why, "cutting off a torn WAL tail");
            file.set_len(pos).and_then(|()| file.sync()).map_err(|e| Error::io(path, e))
        };
        let at = pos as usize;
        if len - pos < RECORD_HEADER_LEN {
            return torn("record header runs past the end");
        }
        let rec_len = u64::from(u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]));
        let crc = u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
        let end = pos + RECORD_HEADER_LEN + rec_len;
        if rec_len == 0 || rec_len > MAX_RECORD_BYTES {
            if data[at..].iter().all(|b| *b == 0) {
                return torn("zero-filled tail");
            }
            if end > len {
                return torn("record length runs past the end");
            }
            return Err(Error::corrupt(path, pos, format!("absurd WAL record length {rec_len}")));
        }
        if end > len {
            return torn("record runs past the end");
        }
        let payload = &data[at + RECORD_HEADER_LEN as usize..end as usize];
        if crc32fast::hash(payload) != crc {
            if end == len {
                return torn("checksum of the last record fails");
            }
            return Err(Error::corrupt(path, pos, "WAL record checksum mismatch with intact records after it"));
        }
        visit(pos, payload)?;
        pos = end;
    }
    Ok(())
}

// ---------------------------------------------------------------- checkpoint

/// The last generation whose memtables are flushed (0: none).
pub(crate) fn read_checkpoint(fs: &dyn FileSystem, dir: &Path) -> Result<u64> {
    let path = dir.join(CHECKPOINT_FILE);
    if !fs.exists(&path) {
        return Ok(0);
    }
    let file = fs.open(&path).map_err(|e| Error::io(&path, e))?;
    let mut data = [0u8; 20];
    let len = file.len().map_err(|e| Error::io(&path, e))?;
    if len != 20 {
        return Err(Error::corrupt(&path, 0, format!("checkpoint is {len} bytes, not 20")));
    }
    file.read_at(0, &mut data).map_err(|e| Error::io(&path, e))?;
    let crc = u32::from_le_bytes([data[16], data[17], data[18], data[19]]);
    if &data[..8] != CHECKPOINT_MAGIC || crc32fast::hash(&data[..16]) != crc {
        return Err(Error::corrupt(&path, 0, "bad checkpoint"));
    }
    let mut g = [0u8; 8];
    g.copy_from_slice(&data[8..16]);
    Ok(u64::from_le_bytes(g))
}

/// Record that every generation up to `generation` is flushed (atomically:
/// write a temporary file, then rename it over the old checkpoint).
pub(crate) fn write_checkpoint(fs: &dyn FileSystem, dir: &Path, generation: u64) -> Result<()> {
    let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
    let path = dir.join(CHECKPOINT_FILE);
    let mut data = Vec::with_capacity(20);
    data.extend_from_slice(CHECKPOINT_MAGIC);
    data.extend_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&data);
    data.extend_from_slice(&crc.to_le_bytes());
    let file = fs.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_at(0, &data).and_then(|()| file.sync()).map_err(|e| Error::io(&tmp, e))?;
    fs.rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    fs.sync_dir(dir).map_err(|e| Error::io(dir, e))
}

/// Delete the segments of generations up to `generation`.
pub(crate) fn remove_flushed_segments(fs: &dyn FileSystem, dir: &Path, generation: u64) -> Result<()> {
    let mut removed = false;
    for s in list_segments(fs, dir)? {
        if s.generation <= generation {
            fs.remove_file(&s.path).map_err(|e| Error::io(&s.path, e))?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;
    use tsfile::Value;

    fn batch() -> WriteBatch {
        WriteBatch::new("root.sg.d1", false, vec![3, 1, 2])
            .with_column(Column::full("s1", DataType::Double, Values::Double(vec![0.5, 1.5, 2.5])))
            .with_column(Column::from_options("s2", DataType::Text, &[Some(Value::Binary(b"a".to_vec())), None, Some(Value::Binary(vec![]))]).unwrap())
            .with_column(Column::from_options("s3", DataType::Boolean, &[None, Some(Value::Boolean(true)), None]).unwrap())
    }

    #[test]
    fn records_round_trip() {
        let b = batch();
        let mut out = Vec::new();
        encode_write(&b, &mut out);
        assert_eq!(decode_record(&out).unwrap(), WalRecord::Write(b));
        let series = vec![SeriesKey::new("root.sg.d1", "s1")];
        let mut out = Vec::new();
        encode_delete(&series, TimeRange::new(-5, 7), &mut out);
        assert_eq!(decode_record(&out).unwrap(), WalRecord::Delete { series, range: TimeRange::new(-5, 7) });
        let group = vec![batch(), WriteBatch::new("root.sg.d2", true, vec![9]).with_column(Column::full("x", DataType::Int32, Values::Int32(vec![4])))];
        let mut out = Vec::new();
        encode_group(&group.iter().collect::<Vec<_>>(), &mut out);
        assert_eq!(decode_record(&out).unwrap(), WalRecord::Group(group.clone()));
        for cut in 0..out.len() {
            assert!(decode_record(&out[..cut]).is_err(), "a group cut at {cut} must not decode");
        }
        let mut out = Vec::new();
        encode_part(7, 2, &group.iter().collect::<Vec<_>>(), &mut out);
        assert_eq!(peek_group(&out).unwrap(), Some(GroupRecord::Part { id: 7, index: 2 }));
        assert_eq!(decode_record(&out).unwrap(), WalRecord::Part { id: 7, index: 2, batches: group });
        let a = GroupApply { id: 7, part: 1, batch: 3, parts: 4 };
        let mut out = Vec::new();
        encode_apply(a, &mut out);
        assert_eq!(peek_group(&out).unwrap(), Some(GroupRecord::Apply(a)));
        assert_eq!(decode_record(&out).unwrap(), WalRecord::Apply(a));
        for cut in 0..out.len() {
            assert!(decode_record(&out[..cut]).is_err(), "an apply record cut at {cut} must not decode");
        }
        let mut out = Vec::new();
        encode_apply(GroupApply { part: 5, ..a }, &mut out);
        assert!(decode_record(&out).is_err(), "an apply record past the group's last part");
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let mut out = Vec::new();
        encode_write(&batch(), &mut out);
        for cut in 0..out.len() {
            assert!(decode_record(&out[..cut]).is_err());
        }
        let mut bad = out.clone();
        bad[6] = 0xFF; // device length high byte
        assert!(decode_record(&bad).is_err());
    }

    fn replay_all(dir: &Path) -> Result<Vec<WalRecord>> {
        let mut out = Vec::new();
        for s in list_segments(&RealFs, dir)? {
            replay_segment(&RealFs, &s, |r| {
                out.push(r);
                Ok(())
            })?;
        }
        Ok(out)
    }

    #[test]
    fn torn_tails_are_cut_and_middle_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(Arc::new(RealFs), dir.path(), FsyncPolicy::EveryBatch, 1 << 20, 1).unwrap();
        for _ in 0..3 {
            wal.append(&Frame::write(&batch())).unwrap();
        }
        wal.sync().unwrap();
        drop(wal);
        let seg = dir.path().join(segment_name(1, 0));
        let full = std::fs::read(&seg).unwrap();
        let rec = (full.len() - SEGMENT_HEADER_LEN as usize) / 3;

        // Cut in the middle of the last record: two survive, file is cut.
        std::fs::write(&seg, &full[..full.len() - 5]).unwrap();
        assert_eq!(replay_all(dir.path()).unwrap().len(), 2);
        assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, full.len() - rec);

        // A flipped byte in the first record with intact records after it.
        let mut bad = full.clone();
        bad[SEGMENT_HEADER_LEN as usize + 20] ^= 0x40;
        std::fs::write(&seg, &bad).unwrap();
        match replay_all(dir.path()) {
            Err(Error::Corrupt { offset, .. }) => assert_eq!(offset, SEGMENT_HEADER_LEN),
            other => panic!("expected Corrupt, got {other:?}"),
        }

        // Zeros after the last record (a preallocated or unflushed tail).
        let mut zeros = full.clone();
        zeros.extend_from_slice(&[0u8; 100]);
        std::fs::write(&seg, &zeros).unwrap();
        assert_eq!(replay_all(dir.path()).unwrap().len(), 3);

        // An empty segment is ignored.
        std::fs::write(dir.path().join(segment_name(2, 0)), b"").unwrap();
        assert_eq!(replay_all(dir.path()).unwrap().len(), 3);
    }

    #[test]
    fn checkpoint_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_checkpoint(&RealFs, dir.path()).unwrap(), 0);
        write_checkpoint(&RealFs, dir.path(), 42).unwrap();
        assert_eq!(read_checkpoint(&RealFs, dir.path()).unwrap(), 42);
    }
}

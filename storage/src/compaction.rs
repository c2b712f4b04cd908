//! Compaction: merge unsequence files and tombstones into sequence files,
//! and small sequence files into larger ones, one time partition at a time.
//!
//! A task takes every unsequence file of a partition (oldest first, so no
//! newer unsequence data is left behind an older one) and the sequence files
//! whose device time spans overlap what it takes, closed under overlap, so
//! its output (sequence files, split at the target size) never overlaps a
//! sequence file it leaves alone.
//!
//! Crash safety comes from a log (`compaction/{id:016}.log`, records framed
//! like the WAL's):
//!
//! ```text
//! "ARBORCMP" | input* | output* | done?
//!   input  = 1 | seq u8 | tombstones seen u32 LE | relative path
//!   output = 2 | relative path          (logged before the file is created)
//!   done   = 3                          (every output is complete and synced)
//! ```
//!
//! On start, a log without `done` means the inputs are still the truth: the
//! outputs are deleted. A log with `done` means the outputs are: tombstones
//! added to the inputs after the merge read them are copied onto the
//! outputs, then the inputs are deleted. Either way exactly one set survives.
//!
//! So while a log that may say `done` is on disk, its outputs must stay: a
//! compaction abandoned after writing `done` was attempted (its sync failed,
//! an output would not open, a tombstone could not be copied) first cuts
//! the `done` record off the log durably, and only then deletes the
//! outputs; the log goes last, and only once every output is gone (an
//! output left behind by a removed log would be taken for a live file).
//! If `done` cannot be taken back, nothing is deleted and compaction stops
//! until the next start, which finishes the compaction from the log.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tsfile::{DataType, SeriesBatch, TimeRange};

use crate::batch::SeriesKey;
use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::files::{partition_dir, tsfile_name, FileSet, MetaCache, Origin, Span, TsFileResource};
use crate::flush::{OutputFile, SeriesData};
use crate::fs::{FileSystem, FsFile};
use crate::mods::{deleted_ranges, mods_path, Deletion, ModsFile};
use crate::run::{concat, merge, remove_ranges, RankedRun};
use crate::wal::Cursor;

pub(crate) const COMPACTION_DIR: &str = "compaction";
const LOG_MAGIC: &[u8; 8] = b"ARBORCMP";
/// Points of one device merged at a time, in pages: bounds compaction
/// memory (2 M points with Apache's 10 000-point pages).
const WINDOW_PAGES: u64 = 200;
/// Most small sequence files merged by one task.
const MAX_SMALL_FILES: usize = 32;

/// One merge: inputs of one partition.
#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) partition: i64,
    pub(crate) seq: Vec<Arc<TsFileResource>>,
    /// Oldest first.
    pub(crate) unseq: Vec<Arc<TsFileResource>>,
}

/// Add to `chosen` every sequence file whose device spans overlap those of
/// the chosen files, until nothing more is added.
fn close_over(all_seq: &[Arc<TsFileResource>], chosen: &mut Vec<Arc<TsFileResource>>, unseq: &[Arc<TsFileResource>]) {
    loop {
        let mut spans: HashMap<&str, Span> = HashMap::new();
        for f in chosen.iter().chain(unseq) {
            for (d, s) in &f.devices {
                spans
                    .entry(d.as_str())
                    .and_modify(|x| {
                        x.start = x.start.min(s.start);
                        x.end = x.end.max(s.end);
                    })
                    .or_insert(*s);
            }
        }
        let mut add = Vec::new();
        for f in all_seq {
            if chosen.iter().any(|c| c.version == f.version) {
                continue;
            }
            if f.devices.iter().any(|(d, s)| spans.get(d.as_str()).is_some_and(|x| x.overlaps(s.start, s.end))) {
                add.push(Arc::clone(f));
            }
        }
        if add.is_empty() {
            return;
        }
        chosen.extend(add);
    }
}

/// Files wholly older than the TTL bound (to delete without merging).
pub(crate) fn expired(files: &FileSet, ttl_bound: i64) -> Vec<Arc<TsFileResource>> {
    files.all().filter(|f| f.max_time() < ttl_bound).cloned().collect()
}

/// Tasks to run. `force` (an explicit `compact()`) merges every partition
/// that is not already a clean set of sequence files; otherwise the
/// configured triggers decide.
pub(crate) fn select(files: &FileSet, config: &EngineConfig, force: bool, ttl_bound: i64) -> Vec<Task> {
    let partitions: BTreeSet<i64> = files.seq.keys().chain(files.unseq.keys()).copied().collect();
    let mut tasks = Vec::new();
    for p in partitions {
        let live = |v: Option<&Vec<Arc<TsFileResource>>>| -> Vec<Arc<TsFileResource>> {
            v.map(|v| v.iter().filter(|f| f.max_time() >= ttl_bound).cloned().collect()).unwrap_or_default()
        };
        let seq = live(files.seq.get(&p));
        let unseq = live(files.unseq.get(&p));
        if force {
            let dirty = |f: &Arc<TsFileResource>| f.mods.len() > 0 || f.min_time() < ttl_bound;
            if seq.len() + unseq.len() > 1 || !unseq.is_empty() || seq.iter().any(dirty) {
                tasks.push(Task { partition: p, seq, unseq });
            }
            continue;
        }
        let mut chosen: Vec<Arc<TsFileResource>>;
        let mut task_unseq = Vec::new();
        if !unseq.is_empty() && unseq.len() >= config.compaction_unseq_files_trigger.max(1) {
            chosen = Vec::new();
            task_unseq = unseq;
        } else {
            let small_limit = config.seq_file_target_bytes / 2;
            let small: Vec<Arc<TsFileResource>> = seq.iter().filter(|f| f.size < small_limit).cloned().collect();
            if small.len() >= config.compaction_small_seq_files_trigger.max(2) {
                chosen = small.into_iter().take(MAX_SMALL_FILES).collect();
            } else {
                // Rewrite files carrying tombstones. (Files partly past the
                // TTL are left alone: rewriting them would never end as time
                // moves on; they go whole once wholly expired.)
                chosen = seq.iter().filter(|f| f.mods.len() > 0).cloned().collect();
                if chosen.is_empty() {
                    continue;
                }
            }
        }
        close_over(&seq, &mut chosen, &task_unseq);
        tasks.push(Task { partition: p, seq: chosen, unseq: task_unseq });
    }
    tasks
}

// ---------------------------------------------------------------- the log

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 8);
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

fn relative(db: &Path, path: &Path) -> String {
    path.strip_prefix(db).unwrap_or(path).to_string_lossy().into_owned()
}

/// An open compaction log.
pub(crate) struct CompactionLog {
    path: PathBuf,
    file: Arc<dyn FsFile>,
    len: u64,
    /// Where the `done` record starts, once writing it was attempted
    /// (whether or not that reported success, it may be on disk).
    done_at: Option<u64>,
}

impl CompactionLog {
    pub(crate) fn create(fs: &dyn FileSystem, db: &Path, id: u64, inputs: &[(Arc<TsFileResource>, usize)]) -> Result<CompactionLog> {
        let dir = db.join(COMPACTION_DIR);
        let path = dir.join(format!("{id:016}.log"));
        let file = fs.create(&path).map_err(|e| Error::io(&path, e))?;
        let mut data = LOG_MAGIC.to_vec();
        for (f, seen) in inputs {
            let mut p = vec![1u8, u8::from(f.seq)];
            p.extend_from_slice(&(*seen as u32).to_le_bytes());
            let rel = relative(db, &f.path);
            p.extend_from_slice(&(rel.len() as u32).to_le_bytes());
            p.extend_from_slice(rel.as_bytes());
            data.extend_from_slice(&frame(&p));
        }
        file.write_at(0, &data).and_then(|()| file.sync()).map_err(|e| Error::io(&path, e))?;
        fs.sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(CompactionLog { path, file, len: data.len() as u64, done_at: None })
    }

    fn append(&mut self, payload: &[u8]) -> Result<()> {
        let f = frame(payload);
        self.file.write_at(self.len, &f).and_then(|()| self.file.sync()).map_err(|e| Error::io(&self.path, e))?;
        self.len += f.len() as u64;
        Ok(())
    }

    pub(crate) fn output(&mut self, db: &Path, path: &Path) -> Result<()> {
        let rel = relative(db, path);
        let mut p = vec![2u8];
        p.extend_from_slice(&(rel.len() as u32).to_le_bytes());
        p.extend_from_slice(rel.as_bytes());
        self.append(&p)
    }

    pub(crate) fn done(&mut self) -> Result<()> {
        self.done_at = Some(self.len);
        self.append(&[3u8])
    }

    /// Take back a `done` record that may have reached the disk: cut the
    /// log before it and sync, so the log durably says "not done" (the
    /// inputs are the truth) before any output is deleted. A no-op when
    /// writing `done` was never attempted.
    pub(crate) fn undo_done(&mut self) -> Result<()> {
        let Some(at) = self.done_at else { return Ok(()) };
        self.file.set_len(at).and_then(|()| self.file.sync()).map_err(|e| Error::io(&self.path, e))?;
        self.len = at;
        self.done_at = None;
        Ok(())
    }

    pub(crate) fn remove(self, fs: &dyn FileSystem) -> Result<()> {
        fs.remove_file(&self.path).map_err(|e| Error::io(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        }
        Ok(())
    }
}

/// What a log on disk says.
#[derive(Debug, Default)]
struct LogContents {
    inputs: Vec<(PathBuf, usize)>,
    outputs: Vec<PathBuf>,
    done: bool,
}

fn parse_log(db: &Path, path: &Path, data: &[u8]) -> Result<LogContents> {
    let mut out = LogContents::default();
    if data.len() < LOG_MAGIC.len() {
        return Ok(out);
    }
    if &data[..LOG_MAGIC.len()] != LOG_MAGIC {
        return Err(Error::corrupt(path, 0, "not a compaction log"));
    }
    let mut pos = LOG_MAGIC.len();
    while data.len() - pos >= 8 {
        let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        let end = pos + 8 + len;
        if end > data.len() {
            break; // torn tail: the step it describes did not happen
        }
        let payload = &data[pos + 8..end];
        if crc32fast::hash(payload) != crc {
            if end == data.len() {
                break;
            }
            return Err(Error::corrupt(path, pos as u64, "compaction log record checksum mismatch"));
        }
        let bad = |what: String| Error::corrupt(path, pos as u64, what);
        let mut c = Cursor::new(payload);
        match c.u8().map_err(bad)? {
            1 => {
                let _seq = c.u8().map_err(bad)?;
                let seen = c.u32().map_err(bad)? as usize;
                let rel = c.string().map_err(bad)?;
                out.inputs.push((db.join(rel), seen));
            }
            2 => out.outputs.push(db.join(c.string().map_err(bad)?)),
            3 => out.done = true,
            k => return Err(bad(format!("unknown compaction log record {k}"))),
        }
        pos = end;
    }
    Ok(out)
}

/// Finish or undo every compaction a crash interrupted.
pub(crate) fn recover_logs(fs: &Arc<dyn FileSystem>, db: &Path) -> Result<()> {
    let dir = db.join(COMPACTION_DIR);
    let mut logs: Vec<PathBuf> = fs
        .list(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    for log in logs {
        let file = fs.open(&log).map_err(|e| Error::io(&log, e))?;
        let len = file.len().map_err(|e| Error::io(&log, e))?;
        let mut data = vec![0u8; len as usize];
        file.read_at(0, &mut data).map_err(|e| Error::io(&log, e))?;
        let contents = parse_log(db, &log, &data)?;
        let remove = |p: &Path| -> Result<()> {
            for q in [p.to_path_buf(), mods_path(p)] {
                match fs.remove_file(&q) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&q, e)),
                    _ => {}
                }
            }
            Ok(())
        };
        if contents.done {
            tracing::info!(log = %log.display(), "finishing an interrupted compaction");
            for (input, seen) in &contents.inputs {
                if !fs.exists(input) && !fs.exists(&mods_path(input)) {
                    continue;
                }
                let late: Vec<Arc<Deletion>> = ModsFile::load(Arc::clone(fs), input)?.entries().iter().skip(*seen).cloned().collect();
                for output in &contents.outputs {
                    let mods = ModsFile::load(Arc::clone(fs), output)?;
                    for d in &late {
                        mods.append(Arc::clone(d))?;
                    }
                }
                remove(input)?;
            }
        } else {
            tracing::info!(log = %log.display(), "undoing an interrupted compaction");
            for output in &contents.outputs {
                remove(output)?;
            }
        }
        for d in contents.inputs.iter().map(|(p, _)| p).chain(&contents.outputs).filter_map(|p| p.parent()).collect::<BTreeSet<_>>() {
            if fs.exists(d) {
                fs.sync_dir(d).map_err(|e| Error::io(d, e))?;
            }
        }
        fs.remove_file(&log).map_err(|e| Error::io(&log, e))?;
        fs.sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- merging

/// What the merge needs besides the task.
pub(crate) struct MergeEnv<'a> {
    pub(crate) fs: &'a dyn FileSystem,
    pub(crate) db: &'a Path,
    pub(crate) cache: &'a MetaCache,
    pub(crate) versions: &'a Arc<AtomicU64>,
    pub(crate) config: &'a EngineConfig,
    pub(crate) ttl_bound: i64,
    pub(crate) shutdown: &'a AtomicBool,
}

/// An input with the tombstones the merge honours.
pub(crate) struct Input {
    pub(crate) file: Arc<TsFileResource>,
    pub(crate) rank: u64,
    pub(crate) deletions: Arc<Vec<Arc<Deletion>>>,
}

/// Merge the inputs into new sequence files; returns their paths. The
/// caller owns the log and deletes `outputs` if this fails.
pub(crate) fn write_outputs(env: &MergeEnv<'_>, partition: i64, inputs: &[Input], log: &mut CompactionLog, outputs: &mut Vec<PathBuf>) -> Result<()> {
    let devices: BTreeSet<&str> = inputs.iter().flat_map(|i| i.file.devices.keys().map(String::as_str)).collect();
    let mut out: Option<OutputFile> = None;
    let target = env.config.seq_file_target_bytes.max(1);
    for device in devices {
        if env.shutdown.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let mut metas = Vec::new();
        let mut span: Option<Span> = None;
        for (k, i) in inputs.iter().enumerate() {
            if let Some(meta) = i.file.device_metadata(env.cache, device)? {
                if let Some(s) = i.file.span(device) {
                    span = Some(span.map_or(s, |x| Span { start: x.start.min(s.start), end: x.end.max(s.end) }));
                }
                metas.push((k, meta));
            }
        }
        let Some(span) = span else { continue };
        let start = span.start.max(env.ttl_bound);
        if start > span.end {
            continue;
        }
        // The newest input decides the device's layout and each series' type.
        metas.sort_by_key(|(k, _)| std::cmp::Reverse(inputs[*k].rank));
        let aligned = metas.first().is_some_and(|(_, m)| m.aligned);
        let mut types: BTreeMap<String, DataType> = BTreeMap::new();
        let mut total: u64 = 0;
        for (_, m) in &metas {
            for s in m.value_series() {
                types.entry(s.measurement.clone()).or_insert(s.data_type);
                total += s.statistics.count;
            }
        }
        let window_points = (env.config.page_max_points as u64).max(1) * WINDOW_PAGES;
        let windows = total.div_ceil(window_points).max(1) as i128;
        let width = ((i128::from(span.end) - i128::from(start)) / windows + 1).max(1);
        let mut ws = i128::from(start);
        while ws <= i128::from(span.end) {
            let we = (ws + width - 1).min(i128::from(span.end));
            let window = TimeRange::new(ws as i64, we as i64);
            ws = we + 1;
            let mut series = Vec::with_capacity(types.len());
            for (measurement, &dt) in &types {
                let key = SeriesKey::new(device, measurement.as_str());
                let mut runs = Vec::new();
                for (k, meta) in &metas {
                    let input = &inputs[*k];
                    let Some(ts) = meta.series(measurement) else { continue };
                    if !window.overlaps(&ts.statistics) {
                        continue;
                    }
                    if ts.data_type.physical() != dt.physical() {
                        // Older data of a series since re-created with another type.
                        tracing::warn!(series = %key, file = %input.file.path.display(), "dropping data of a superseded type");
                        continue;
                    }
                    let deleted = deleted_ranges(&input.deletions, &key);
                    for b in input.file.reader.read_series_of(meta, measurement, window)? {
                        runs.push(RankedRun { rank: input.rank, run: remove_ranges(b, &deleted) });
                    }
                }
                let run: SeriesBatch = concat(merge(&key.to_string(), runs)?, dt);
                if !run.times.is_empty() {
                    series.push(SeriesData { measurement: measurement.clone(), data_type: dt, run });
                }
            }
            if series.is_empty() {
                continue;
            }
            if out.is_none() {
                let version = env.versions.fetch_add(1, Ordering::SeqCst);
                let path = partition_dir(env.db, true, partition).join(tsfile_name(version, Origin::Compaction));
                log.output(env.db, &path)?;
                outputs.push(path.clone());
                out = Some(OutputFile::create(env.fs, path, env.config.page_max_points)?);
            }
            if let Some(o) = out.as_mut() {
                o.write_device(device, aligned, &series)?;
                if o.position() >= target {
                    if let Some(o) = out.take() {
                        o.finish(env.fs)?;
                    }
                }
            }
        }
    }
    if let Some(o) = out.take() {
        o.finish(env.fs)?;
    }
    Ok(())
}

//! Recovery of the file side on start: finish or undo interrupted
//! compactions, discard flush files whose generation the WAL still holds
//! (the replay rebuilds them), salvage the intact prefix of a damaged TsFile
//! no WAL covers, and rebuild the in-memory file index. WAL replay itself
//! lives with the engine, which owns the memtables.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tsfile::metadata::ChunkKind;
use tsfile::reader::scan_chunk_groups;
use tsfile::{DataType, SeriesBatch, TsFileReader};

use crate::compaction::{recover_logs, COMPACTION_DIR};
use crate::error::{Error, Result};
use crate::files::{parse_tsfile_name, FileSet, MetaCache, Origin, TsFileResource, SEQ_DIR, UNSEQ_DIR};
use crate::flush::{OutputFile, SeriesData};
use crate::fs::{FileSystem, FsReadAt};
use crate::mods::mods_path;
use crate::run::{concat, sort_dedup};
use crate::wal;

pub(crate) const WAL_DIR: &str = "wal";

/// The file side of a database after recovery.
pub(crate) struct Recovered {
    pub(crate) files: FileSet,
    pub(crate) checkpoint: u64,
    /// Segments to replay, in order (those of generations after the checkpoint).
    pub(crate) segments: Vec<wal::Segment>,
    /// Segments of flushed generations still on disk: not replayed, but
    /// they may hold parts of a streamed group committed later (the engine
    /// reads them, then removes those no group needs).
    pub(crate) retained: Vec<wal::Segment>,
    pub(crate) next_version: u64,
    /// Latest time of every device in any file.
    pub(crate) stable: HashMap<String, i64>,
}

const PARTITION_FILE: &str = "PARTITION_WIDTH";

/// The database's partition width: the one it was created with (files are
/// placed by it), or `configured` for a new database.
pub(crate) fn partition_width(fs: &Arc<dyn FileSystem>, db: &Path, configured: i64) -> Result<i64> {
    let path = db.join(PARTITION_FILE);
    if fs.exists(&path) {
        let file = fs.open(&path).map_err(|e| Error::io(&path, e))?;
        let len = file.len().map_err(|e| Error::io(&path, e))?.min(64);
        let mut buf = vec![0u8; len as usize];
        file.read_at(0, &mut buf).map_err(|e| Error::io(&path, e))?;
        let width = std::str::from_utf8(&buf)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|w| *w > 0)
            .ok_or_else(|| Error::corrupt(&path, 0, "not a partition width"))?;
        if width != configured {
            tracing::warn!(stored = width, configured, "keeping the time partition width the database was created with");
        }
        return Ok(width);
    }
    let tmp = db.join(format!("{PARTITION_FILE}.tmp"));
    let file = fs.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_at(0, format!("{configured}\n").as_bytes())
        .and_then(|()| file.sync())
        .map_err(|e| Error::io(&tmp, e))?;
    fs.rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    fs.sync_dir(db).map_err(|e| Error::io(db, e))?;
    Ok(configured)
}

fn remove_if_present(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    match fs.remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

pub(crate) fn recover_files(fs: &Arc<dyn FileSystem>, db: &Path, cache: &MetaCache, page_max_points: usize) -> Result<Recovered> {
    for d in [WAL_DIR, SEQ_DIR, UNSEQ_DIR, COMPACTION_DIR] {
        let dir = db.join(d);
        fs.create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    recover_logs(fs, db)?;
    let wal_dir = db.join(WAL_DIR);
    let checkpoint = wal::read_checkpoint(fs.as_ref(), &wal_dir)?;
    let tmp = wal_dir.join("CHECKPOINT.tmp");
    remove_if_present(fs.as_ref(), &tmp)?;

    let mut files = FileSet::default();
    let mut next_version = 1;
    for (kind, seq) in [(SEQ_DIR, true), (UNSEQ_DIR, false)] {
        let kind_dir = db.join(kind);
        for part_dir in fs.list(&kind_dir).map_err(|e| Error::io(&kind_dir, e))? {
            let Some(partition) = part_dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<i64>().ok()) else {
                continue;
            };
            if !fs.is_dir(&part_dir) {
                continue;
            }
            let mut entries = fs.list(&part_dir).map_err(|e| Error::io(&part_dir, e))?;
            entries.sort();
            for path in &entries {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
                if name.ends_with(".tmp") {
                    remove_if_present(fs.as_ref(), path)?;
                    continue;
                }
                if let Some(ts) = name.strip_suffix(".mods") {
                    if !entries.iter().any(|p| p.file_name().and_then(|n| n.to_str()) == Some(ts)) {
                        remove_if_present(fs.as_ref(), path)?;
                    }
                    continue;
                }
                let Some((version, origin)) = parse_tsfile_name(&name) else { continue };
                next_version = next_version.max(version + 1);
                if let Origin::Flush(g) = origin {
                    if g > checkpoint {
                        // An unfinished (or unrecorded) flush: its WAL is still
                        // there and the replay writes the data again.
                        tracing::info!(path = %path.display(), "discarding a flush file whose WAL is still present");
                        remove_if_present(fs.as_ref(), path)?;
                        remove_if_present(fs.as_ref(), &mods_path(path))?;
                        continue;
                    }
                }
                let file = match TsFileResource::open(fs, path, seq, partition, cache) {
                    Ok(f) => f,
                    Err(Error::Tsfile(tsfile::Error::Corrupt { what, offset, .. })) => {
                        tracing::warn!(path = %path.display(), offset, what, "damaged TsFile; salvaging its intact chunk groups");
                        if !salvage(fs, path, page_max_points)? {
                            remove_if_present(fs.as_ref(), path)?;
                            remove_if_present(fs.as_ref(), &mods_path(path))?;
                            continue;
                        }
                        TsFileResource::open(fs, path, seq, partition, cache)?
                    }
                    Err(e) => return Err(e),
                };
                files.add(Arc::new(file));
            }
        }
    }

    // Stable times cover unsequence files too: a point at or before the
    // latest time of any file must stay unsequence data, or a new sequence
    // file could hold a time that an (older-ranked) unsequence file also
    // holds after deletes and compactions emptied the later sequence files.
    let mut stable: HashMap<String, i64> = HashMap::new();
    for f in files.all() {
        for (d, s) in &f.devices {
            let e = stable.entry(d.clone()).or_insert(s.end);
            *e = (*e).max(s.end);
        }
    }

    let (retained, segments) = wal::list_segments(fs.as_ref(), &wal_dir)?.into_iter().partition(|s| s.generation <= checkpoint);
    Ok(Recovered { files, checkpoint, segments, retained, next_version, stable })
}

/// A device found in a damaged file: aligned, and per measurement its type
/// and the runs decoded from its chunks.
type SalvagedDevice = (bool, BTreeMap<String, (DataType, Vec<SeriesBatch>)>);

/// Rewrite the intact chunk groups of a TsFile without a valid tail as a
/// complete file in its place. Returns false when nothing was intact.
pub(crate) fn salvage(fs: &Arc<dyn FileSystem>, path: &Path, page_max_points: usize) -> Result<bool> {
    let file = fs.open(path).map_err(|e| Error::io(path, e))?;
    let source = FsReadAt::new(file).map_err(|e| Error::io(path, e))?;
    let (groups, end, _) = scan_chunk_groups(&source, u64::MAX);
    let reader = match TsFileReader::unsealed(source, path.display().to_string(), end) {
        Ok(r) => r,
        Err(_) => return Ok(false),
    };
    let mut devices: BTreeMap<String, SalvagedDevice> = BTreeMap::new();
    'groups: for g in &groups {
        let device = g.device.to_string();
        let time = g.chunks.iter().find(|(_, h)| h.kind == ChunkKind::AlignedTime);
        let aligned = time.is_some();
        let time_chunk = match time.map(|(off, _)| reader.read_chunk(*off)).transpose() {
            Ok(t) => t,
            Err(_) => break 'groups,
        };
        let mut found = Vec::new();
        for (off, header) in g.chunks.iter().filter(|(_, h)| h.kind != ChunkKind::AlignedTime) {
            let decoded = (|| -> Result<Vec<SeriesBatch>> {
                let chunk = reader.read_chunk(*off)?;
                let mut out = Vec::with_capacity(chunk.pages.len());
                for p in 0..chunk.pages.len() {
                    out.push(match &time_chunk {
                        Some(tc) => reader.decode_aligned_page(tc, &chunk, p)?,
                        None => reader.decode_page(&chunk, p)?,
                    });
                }
                Ok(out)
            })();
            match decoded {
                Ok(runs) => found.push((header.measurement.clone(), header.data_type, runs)),
                Err(_) => break,
            }
        }
        let entry = devices.entry(device).or_insert_with(|| (aligned, BTreeMap::new()));
        for (m, dt, runs) in found {
            entry.1.entry(m).or_insert_with(|| (dt, Vec::new())).1.extend(runs);
        }
    }
    if devices.values().all(|(_, s)| s.is_empty()) {
        return Ok(false);
    }
    let tmp = PathBuf::from(format!("{}.salvage.tmp", path.display()));
    let mut out = OutputFile::create(fs.as_ref(), tmp.clone(), page_max_points)?;
    for (device, (aligned, series)) in devices {
        let data: Vec<SeriesData> = series
            .into_iter()
            .map(|(measurement, (data_type, runs))| {
                let all = concat(runs, data_type);
                SeriesData { measurement, data_type, run: sort_dedup(&all.times, &all.values) }
            })
            .collect();
        out.write_device(&device, aligned, &data)?;
    }
    out.finish(fs.as_ref())?;
    fs.rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(true)
}

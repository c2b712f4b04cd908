//! The in-memory index of the database's TsFiles: where each file lives,
//! whether it is sequence or unsequence, its version (age), the time span of
//! every device in it, its open reader and its tombstones.
//!
//! Layout under the database directory:
//!
//! ```text
//! seq/{partition}/{version:016}-f{generation:016}.tsfile   flushed from a memtable
//! seq/{partition}/{version:016}-c.tsfile                   written by compaction
//! unseq/{partition}/{version:016}-f{generation:016}.tsfile
//! <any of the above>.mods                                  its tombstones
//! ```
//!
//! Versions grow with every file written, so among unsequence files a higher
//! version holds newer data. Sequence files never overlap per device.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tsfile::reader::DeviceMetadata;
use tsfile::{DeviceId, TsFileReader};

use crate::error::{Error, Result};
use crate::fs::{FileSystem, FsReadAt};
use crate::mods::ModsFile;

pub(crate) const SEQ_DIR: &str = "seq";
pub(crate) const UNSEQ_DIR: &str = "unseq";

/// Device metadata of open files, keyed by (file version, device path).
pub(crate) type MetaCache = moka::sync::Cache<(u64, String), Arc<DeviceMetadata>>;

pub(crate) fn new_meta_cache() -> MetaCache {
    moka::sync::Cache::builder()
        // Weighed in series + chunks, so the cache bounds chunk metadata.
        .weigher(|_k: &(u64, String), v: &Arc<DeviceMetadata>| {
            let chunks: usize = v.series.iter().map(|s| s.chunks.len()).sum();
            (v.series.len() + chunks).min(u32::MAX as usize) as u32
        })
        .max_capacity(4_000_000)
        .build()
}

/// Where a file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Flushed from the memtables of this WAL generation.
    Flush(u64),
    Compaction,
}

pub(crate) fn tsfile_name(version: u64, origin: Origin) -> String {
    match origin {
        Origin::Flush(g) => format!("{version:016}-f{g:016}.tsfile"),
        Origin::Compaction => format!("{version:016}-c.tsfile"),
    }
}

pub(crate) fn parse_tsfile_name(name: &str) -> Option<(u64, Origin)> {
    let stem = name.strip_suffix(".tsfile")?;
    let (v, rest) = stem.split_once('-')?;
    let version = v.parse().ok()?;
    let origin = match rest {
        "c" => Origin::Compaction,
        r => Origin::Flush(r.strip_prefix('f')?.parse().ok()?),
    };
    Some((version, origin))
}

/// The directory of a partition's files.
pub(crate) fn partition_dir(db: &Path, seq: bool, partition: i64) -> PathBuf {
    db.join(if seq { SEQ_DIR } else { UNSEQ_DIR }).join(partition.to_string())
}

/// Earliest and latest time of one device's points in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: i64,
    pub(crate) end: i64,
}

impl Span {
    pub(crate) fn overlaps(&self, start: i64, end: i64) -> bool {
        self.start <= end && start <= self.end
    }
}

/// One TsFile known to the engine.
pub(crate) struct TsFileResource {
    pub(crate) path: PathBuf,
    pub(crate) version: u64,
    pub(crate) seq: bool,
    pub(crate) partition: i64,
    pub(crate) size: u64,
    pub(crate) reader: TsFileReader<FsReadAt>,
    pub(crate) devices: HashMap<String, Span>,
    pub(crate) mods: ModsFile,
}

impl std::fmt::Debug for TsFileResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsFileResource")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("seq", &self.seq)
            .field("partition", &self.partition)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl TsFileResource {
    /// Open a complete TsFile, index its devices and load its tombstones.
    /// Damage comes back as [`Error::Tsfile`] with a `Corrupt` inside.
    pub(crate) fn open(
        fs: &Arc<dyn FileSystem>,
        path: &Path,
        seq: bool,
        partition: i64,
        cache: &MetaCache,
    ) -> Result<TsFileResource> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let (version, _) = parse_tsfile_name(name)
            .ok_or_else(|| Error::corrupt(path, 0, "not a TsFile name the engine writes"))?;
        let file = fs.open(path).map_err(|e| Error::io(path, e))?;
        let source = FsReadAt::new(file).map_err(|e| Error::io(path, e))?;
        let size = tsfile::reader::ReadAt::len(&source);
        let reader = TsFileReader::new(source, path.display().to_string())?;
        let mut devices = HashMap::new();
        for meta in reader.all_device_metadata()? {
            let device = meta.device.to_string();
            let mut span: Option<Span> = None;
            for s in meta.value_series().filter(|s| s.statistics.count > 0) {
                let (a, b) = (s.statistics.start_time, s.statistics.end_time);
                span = Some(span.map_or(Span { start: a, end: b }, |sp| Span { start: sp.start.min(a), end: sp.end.max(b) }));
            }
            if let Some(span) = span {
                cache.insert((version, device.clone()), Arc::new(meta));
                devices.insert(device, span);
            }
        }
        let mods = ModsFile::load(Arc::clone(fs), path)?;
        Ok(TsFileResource { path: path.to_path_buf(), version, seq, partition, size, reader, devices, mods })
    }

    /// Metadata of `device` in this file (cached), `None` if absent.
    pub(crate) fn device_metadata(&self, cache: &MetaCache, device: &str) -> Result<Option<Arc<DeviceMetadata>>> {
        if !self.devices.contains_key(device) {
            return Ok(None);
        }
        let key = (self.version, device.to_string());
        if let Some(m) = cache.get(&key) {
            return Ok(Some(m));
        }
        let Some(meta) = self.reader.device_metadata(&DeviceId::from_tree_path(device))? else {
            return Ok(None);
        };
        let meta = Arc::new(meta);
        cache.insert(key, Arc::clone(&meta));
        Ok(Some(meta))
    }

    pub(crate) fn span(&self, device: &str) -> Option<Span> {
        self.devices.get(device).copied()
    }

    /// Latest time of any point in the file.
    pub(crate) fn max_time(&self) -> i64 {
        self.devices.values().map(|s| s.end).max().unwrap_or(i64::MIN)
    }

    /// Earliest time of any point in the file.
    pub(crate) fn min_time(&self) -> i64 {
        self.devices.values().map(|s| s.start).min().unwrap_or(i64::MAX)
    }

    /// Delete the file and its tombstones from disk.
    pub(crate) fn remove_from_disk(&self, fs: &dyn FileSystem, cache: &MetaCache) -> Result<()> {
        for device in self.devices.keys() {
            cache.invalidate(&(self.version, device.clone()));
        }
        self.mods.remove()?;
        match fs.remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&self.path, e)),
            _ => Ok(()),
        }
    }
}

/// The files of the database, by kind and partition. Sequence lists are
/// kept in time order; unsequence lists in version order (oldest first).
#[derive(Debug, Default, Clone)]
pub(crate) struct FileSet {
    pub(crate) seq: std::collections::BTreeMap<i64, Vec<Arc<TsFileResource>>>,
    pub(crate) unseq: std::collections::BTreeMap<i64, Vec<Arc<TsFileResource>>>,
}

impl FileSet {
    pub(crate) fn add(&mut self, file: Arc<TsFileResource>) {
        let list = if file.seq { &mut self.seq } else { &mut self.unseq }.entry(file.partition).or_default();
        list.push(file);
        if list[0].seq {
            list.sort_by_key(|f| (f.min_time(), f.version));
        } else {
            list.sort_by_key(|f| f.version);
        }
    }

    pub(crate) fn remove(&mut self, file: &TsFileResource) {
        let map = if file.seq { &mut self.seq } else { &mut self.unseq };
        if let Some(list) = map.get_mut(&file.partition) {
            list.retain(|f| f.version != file.version);
            if list.is_empty() {
                map.remove(&file.partition);
            }
        }
    }

    /// Every file, sequence first.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<TsFileResource>> {
        self.seq.values().flatten().chain(self.unseq.values().flatten())
    }

    /// Files of partitions that may hold times in `[start, end]`.
    pub(crate) fn in_partitions(&self, seq: bool, first: i64, last: i64) -> impl Iterator<Item = &Arc<TsFileResource>> {
        let map = if seq { &self.seq } else { &self.unseq };
        map.range(first..=last).flat_map(|(_, v)| v.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for origin in [Origin::Flush(7), Origin::Compaction] {
            let n = tsfile_name(42, origin);
            assert_eq!(parse_tsfile_name(&n), Some((42, origin)));
        }
        assert_eq!(parse_tsfile_name("x.tsfile"), None);
        assert_eq!(parse_tsfile_name("1-q.tsfile"), None);
    }
}

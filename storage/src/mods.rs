//! Tombstones: a deletion (series list + time range) recorded in a `.mods`
//! file beside each TsFile whose data it touches. A deletion in a file's
//! `.mods` applies to all of that file's data (every point in the file was
//! written before the deletion); compaction drops deleted points and the
//! `.mods` with them.
//!
//! Format: `"ARBORMOD"`, then records framed like WAL records
//! (`length u32 LE | crc32 u32 LE | payload`), the payload being a WAL
//! delete record. A torn last record is cut off; damage before it is
//! [`Error::Corrupt`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tsfile::TimeRange;

use crate::batch::SeriesKey;
use crate::error::{Error, Result};
use crate::fs::{FileSystem, FsFile};
use crate::wal::{decode_record, encode_delete, WalRecord};

const MODS_MAGIC: &[u8; 8] = b"ARBORMOD";

/// One deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deletion {
    pub(crate) range: TimeRange,
    pub(crate) series: BTreeSet<SeriesKey>,
}

impl Deletion {
    pub(crate) fn new(series: &[SeriesKey], range: TimeRange) -> Self {
        Deletion { range, series: series.iter().cloned().collect() }
    }
}

/// The `.mods` path of a TsFile.
pub(crate) fn mods_path(tsfile: &Path) -> PathBuf {
    let mut s = tsfile.as_os_str().to_os_string();
    s.push(".mods");
    PathBuf::from(s)
}

/// The deletions of one TsFile: in memory for reads, on disk for recovery.
#[derive(Debug)]
pub(crate) struct ModsFile {
    fs: Arc<dyn FileSystem>,
    path: PathBuf,
    entries: RwLock<Arc<Vec<Arc<Deletion>>>>,
    /// Open file and its length; `None` until the first deletion.
    file: Mutex<Option<(Arc<dyn FsFile>, u64)>>,
    /// Some entry is in memory but maybe not on disk (a failed append).
    dirty: AtomicBool,
}

impl ModsFile {
    /// Load the `.mods` of `tsfile` (an absent file means no deletions).
    pub(crate) fn load(fs: Arc<dyn FileSystem>, tsfile: &Path) -> Result<ModsFile> {
        let path = mods_path(tsfile);
        let mut entries = Vec::new();
        let mut open = None;
        if fs.exists(&path) {
            let file = fs.open(&path).map_err(|e| Error::io(&path, e))?;
            let len = file.len().map_err(|e| Error::io(&path, e))?;
            let mut data = vec![0u8; len as usize];
            file.read_at(0, &mut data).map_err(|e| Error::io(&path, e))?;
            let (list, intact) = parse(&path, &data)?;
            entries = list;
            if intact < len {
                tracing::warn!(path = %path.display(), offset = intact, "cutting off a torn .mods tail");
                file.set_len(intact).and_then(|()| file.sync()).map_err(|e| Error::io(&path, e))?;
            }
            if intact == 0 {
                file.write_at(0, MODS_MAGIC).map_err(|e| Error::io(&path, e))?;
            }
            open = Some((file, intact.max(MODS_MAGIC.len() as u64)));
        }
        Ok(ModsFile {
            fs,
            path,
            entries: RwLock::new(Arc::new(entries.into_iter().map(Arc::new).collect())),
            file: Mutex::new(open),
            dirty: AtomicBool::new(false),
        })
    }

    /// A file with no deletions yet (nothing on disk).
    #[cfg(test)]
    fn empty(fs: Arc<dyn FileSystem>, tsfile: &Path) -> ModsFile {
        ModsFile { fs, path: mods_path(tsfile), entries: RwLock::default(), file: Mutex::new(None), dirty: AtomicBool::new(false) }
    }

    pub(crate) fn entries(&self) -> Arc<Vec<Arc<Deletion>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries().len()
    }

    /// Record a deletion durably (skipped when an identical one is there:
    /// applying a deletion twice deletes nothing more). On failure the
    /// deletion still counts in memory and the file is dirty (see
    /// [`ModsFile::repair`]).
    pub(crate) fn append(&self, deletion: Arc<Deletion>) -> Result<()> {
        if self.entries().iter().any(|d| **d == *deletion) {
            return Ok(());
        }
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let written = self.write_record(&mut guard, &deletion);
        if written.is_err() {
            self.dirty.store(true, Ordering::SeqCst);
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let mut list = (**entries).clone();
        list.push(deletion);
        *entries = Arc::new(list);
        written
    }

    fn write_record(&self, guard: &mut Option<(Arc<dyn FsFile>, u64)>, deletion: &Deletion) -> Result<()> {
        if guard.is_none() {
            let file = self.fs.create(&self.path).map_err(|e| Error::io(&self.path, e))?;
            file.write_at(0, MODS_MAGIC).map_err(|e| Error::io(&self.path, e))?;
            *guard = Some((file, MODS_MAGIC.len() as u64));
            if let Some(dir) = self.path.parent() {
                self.fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
            }
        }
        let Some((file, len)) = guard.as_mut() else {
            return Err(Error::io(&self.path, std::io::Error::other(".mods file not open")));
        };
        let frame = encode_frame(deletion);
        if let Err(e) = file.write_at(*len, &frame).and_then(|()| file.sync()) {
            // Keep the file free of half records (best effort).
            let _ = file.set_len(*len);
            return Err(Error::io(&self.path, e));
        }
        *len += frame.len() as u64;
        Ok(())
    }

    /// Whether some deletion may be missing on disk.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::SeqCst)
    }

    /// Make the file on disk hold exactly the in-memory deletions again
    /// after a failed append: written whole to a temporary file, synced and
    /// renamed over it. A no-op when not dirty.
    pub(crate) fn repair(&self) -> Result<()> {
        if !self.is_dirty() {
            return Ok(());
        }
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let mut data = MODS_MAGIC.to_vec();
        for d in self.entries().iter() {
            data.extend_from_slice(&encode_frame(d));
        }
        let tmp = PathBuf::from(format!("{}.tmp", self.path.display()));
        let io = |e| Error::io(&self.path, e);
        let file = self.fs.create(&tmp).map_err(io)?;
        let written = file.write_at(0, &data).and_then(|()| file.sync()).and_then(|()| self.fs.rename(&tmp, &self.path));
        if let Err(e) = written {
            let _ = self.fs.remove_file(&tmp);
            return Err(io(e));
        }
        if let Some(dir) = self.path.parent() {
            self.fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        }
        *guard = Some((file, data.len() as u64));
        self.dirty.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Delete the file from disk (the TsFile is gone).
    pub(crate) fn remove(&self) -> Result<()> {
        let guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() || self.fs.exists(&self.path) {
            match self.fs.remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&self.path, e)),
                _ => {}
            }
        }
        Ok(())
    }
}

/// One deletion as a framed record.
fn encode_frame(deletion: &Deletion) -> Vec<u8> {
    let series: Vec<SeriesKey> = deletion.series.iter().cloned().collect();
    let mut payload = Vec::new();
    encode_delete(&series, deletion.range, &mut payload);
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// Parse a `.mods` image: the deletions and where the intact prefix ends.
fn parse(path: &Path, data: &[u8]) -> Result<(Vec<Deletion>, u64)> {
    let magic = MODS_MAGIC.len();
    if data.len() < magic {
        return Ok((Vec::new(), 0));
    }
    if &data[..magic] != MODS_MAGIC {
        return Err(Error::corrupt(path, 0, "not a .mods file"));
    }
    let mut out = Vec::new();
    let mut pos = magic;
    while pos < data.len() {
        if data.len() - pos < 8 {
            break;
        }
        let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        let end = pos + 8 + len;
        if end > data.len() {
            break;
        }
        let payload = &data[pos + 8..end];
        if crc32fast::hash(payload) != crc {
            if end == data.len() {
                break;
            }
            return Err(Error::corrupt(path, pos as u64, ".mods record checksum mismatch"));
        }
        match decode_record(payload) {
            Ok(WalRecord::Delete { series, range }) => out.push(Deletion::new(&series, range)),
            Ok(_) => return Err(Error::corrupt(path, pos as u64, "a .mods record that is not a deletion")),
            Err(what) => return Err(Error::corrupt(path, pos as u64, what)),
        }
        pos = end;
    }
    Ok((out, pos as u64))
}

/// The ranges deleted from `series` by any of `deletions`.
pub(crate) fn deleted_ranges(deletions: &[Arc<Deletion>], series: &SeriesKey) -> Vec<TimeRange> {
    deletions.iter().filter(|d| d.series.contains(series)).map(|d| d.range).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    #[test]
    fn deletions_persist_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let ts = dir.path().join("1.tsfile");
        let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
        let m = ModsFile::empty(fs.clone(), &ts);
        let d1 = Arc::new(Deletion::new(&[SeriesKey::new("root.a", "s")], TimeRange::new(1, 5)));
        let d2 = Arc::new(Deletion::new(&[SeriesKey::new("root.b", "s")], TimeRange::new(7, 9)));
        m.append(d1.clone()).unwrap();
        m.append(d1.clone()).unwrap();
        m.append(d2.clone()).unwrap();
        assert_eq!(m.len(), 2);
        drop(m);
        let again = ModsFile::load(fs.clone(), &ts).unwrap();
        assert_eq!(*again.entries(), vec![d1.clone(), d2]);
        drop(again);

        let bytes = std::fs::read(mods_path(&ts)).unwrap();
        std::fs::write(mods_path(&ts), &bytes[..bytes.len() - 3]).unwrap();
        let cut = ModsFile::load(fs.clone(), &ts).unwrap();
        assert_eq!(*cut.entries(), vec![d1.clone()]);
        cut.append(Arc::new(Deletion::new(&[SeriesKey::new("root.c", "s")], TimeRange::new(0, 0)))).unwrap();
        drop(cut);
        assert_eq!(ModsFile::load(fs.clone(), &ts).unwrap().len(), 2);

        let mut bad = std::fs::read(mods_path(&ts)).unwrap();
        bad[12] ^= 1;
        std::fs::write(mods_path(&ts), &bad).unwrap();
        assert!(matches!(ModsFile::load(fs, &ts), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn a_failed_append_counts_in_memory_and_repair_writes_it() {
        use crate::fs::{FaultInjectingFs, FaultPlan};
        let dir = tempfile::tempdir().unwrap();
        let ts = dir.path().join("2.tsfile");
        let faulty = Arc::new(FaultInjectingFs::new(Arc::new(RealFs)));
        let fs: Arc<dyn FileSystem> = faulty.clone();
        let m = ModsFile::empty(fs.clone(), &ts);
        let d1 = Arc::new(Deletion::new(&[SeriesKey::new("root.a", "s")], TimeRange::new(1, 5)));
        let d2 = Arc::new(Deletion::new(&[SeriesKey::new("root.b", "s")], TimeRange::new(7, 9)));
        m.append(d1.clone()).unwrap();
        faulty.set_plan(FaultPlan { fail_write_after: Some(0), torn: true, ..FaultPlan::default() });
        assert!(m.append(d2.clone()).is_err());
        assert_eq!(*m.entries(), vec![d1.clone(), d2.clone()], "the deletion counts in memory");
        assert!(m.is_dirty());
        assert_eq!(ModsFile::load(fs.clone(), &ts).unwrap().len(), 1, "but is not on disk");
        faulty.clear();
        m.append(d2.clone()).unwrap();
        assert!(m.is_dirty(), "an identical deletion is skipped: the disk still lacks it");
        m.repair().unwrap();
        assert!(!m.is_dirty());
        assert_eq!(*ModsFile::load(fs.clone(), &ts).unwrap().entries(), vec![d1.clone(), d2.clone()]);
        let d3 = Arc::new(Deletion::new(&[SeriesKey::new("root.c", "s")], TimeRange::new(0, 0)));
        m.append(d3.clone()).unwrap();
        assert_eq!(*ModsFile::load(fs, &ts).unwrap().entries(), vec![d1, d2, d3], "appends go on after the repair");
    }
}

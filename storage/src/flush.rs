//! Flush: turn a sealed memtable into TsFiles, one per time partition it
//! touches. Each series is sorted (last write wins on equal time) and
//! written with the `tsfile` crate's writer; aligned devices are written as
//! aligned chunk groups with a validity bitmap per column.
//!
//! Files are written, synced and their directory synced before the caller
//! records the flush in the WAL checkpoint, so a flushed file is complete
//! whenever its WAL is gone.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tsfile::writer::{AlignedColumn, SeriesChunk, SeriesSchema, TsFileWriter, WriterOptions};
use tsfile::{DataType, DeviceId, SeriesBatch, Values};

use crate::error::{Error, Result};
use crate::files::{partition_dir, tsfile_name, Origin};
use crate::fs::{FileSystem, FsWriter};
use crate::memtable::{AlignedBuf, DeviceBuf, MemTable};
use crate::run::take;

/// One series' sorted points, ready to write.
pub(crate) struct SeriesData {
    pub(crate) measurement: String,
    pub(crate) data_type: DataType,
    pub(crate) run: SeriesBatch,
}

/// A TsFile being written, with its path for cleanup on failure.
pub(crate) struct OutputFile {
    pub(crate) path: PathBuf,
    writer: TsFileWriter<FsWriter>,
}

impl OutputFile {
    pub(crate) fn create(fs: &dyn FileSystem, path: PathBuf, page_max_points: usize) -> Result<OutputFile> {
        if let Some(dir) = path.parent() {
            if !fs.exists(dir) {
                fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                // The new partition directory's own entry must survive a crash too.
                if let Some(parent) = dir.parent() {
                    fs.sync_dir(parent).map_err(|e| Error::io(parent, e))?;
                }
            }
        }
        let file = fs.create(&path).map_err(|e| Error::io(&path, e))?;
        let options = WriterOptions { page_max_points: page_max_points.max(1), ..WriterOptions::default() };
        let writer = TsFileWriter::new(FsWriter::new(file), options).map_err(|e| at_path(e, &path))?;
        Ok(OutputFile { path, writer })
    }

    pub(crate) fn position(&self) -> u64 {
        self.writer.position()
    }

    /// Write one device's series as one chunk group.
    pub(crate) fn write_device(&mut self, device: &str, aligned: bool, series: &[SeriesData]) -> Result<()> {
        let series: Vec<&SeriesData> = series.iter().filter(|s| !s.run.times.is_empty()).collect();
        if series.is_empty() {
            return Ok(());
        }
        if aligned {
            let (times, columns) = align(&series);
            return self.write_aligned(device, &times, &columns);
        }
        let id = DeviceId::from_tree_path(device);
        let schemas: Vec<SeriesSchema> = series.iter().map(|s| SeriesSchema::new(s.measurement.clone(), s.data_type)).collect();
        let chunks: Vec<SeriesChunk<'_>> = schemas
            .iter()
            .zip(&series)
            .map(|(schema, s)| SeriesChunk { schema, times: &s.run.times, values: &s.run.values })
            .collect();
        self.writer.write_chunk_group(&id, &chunks).map_err(|e| at_path(e, &self.path))
    }

    /// Write an aligned device's rows (sorted, distinct times) as one
    /// chunk group; columns without a value are left out.
    pub(crate) fn write_aligned(&mut self, device: &str, times: &[i64], columns: &[AlignedData<'_>]) -> Result<()> {
        let columns: Vec<&AlignedData<'_>> = columns.iter().filter(|c| !c.values.is_empty()).collect();
        if columns.is_empty() {
            return Ok(());
        }
        let id = DeviceId::from_tree_path(device);
        let schemas: Vec<SeriesSchema> = columns.iter().map(|c| SeriesSchema::new(c.measurement.to_string(), c.data_type)).collect();
        let cols: Vec<AlignedColumn<'_>> = schemas
            .iter()
            .zip(&columns)
            .map(|(schema, c)| AlignedColumn { schema, values: &c.values, validity: c.validity.as_deref() })
            .collect();
        self.writer.write_aligned_chunk_group(&id, times, &cols).map_err(|e| at_path(e, &self.path))
    }

    /// Write the index and tail, and make the file durable.
    pub(crate) fn finish(self, fs: &dyn FileSystem) -> Result<PathBuf> {
        let path = self.path;
        let mut out = self.writer.finish().map_err(|e| at_path(e, &path))?;
        std::io::Write::flush(&mut out).map_err(|e| Error::io(&path, e))?;
        out.file().sync().map_err(|e| Error::io(&path, e))?;
        if let Some(dir) = path.parent() {
            fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        }
        Ok(path)
    }
}

/// The writer reports I/O errors without a path; name the file.
fn at_path(e: tsfile::Error, path: &Path) -> Error {
    match e {
        tsfile::Error::Io { source, .. } => Error::io(path, source),
        other => Error::Tsfile(other),
    }
}

/// One column of an aligned chunk group: a measurement's values and its
/// validity bitmap (`None`: a value in every row), borrowed where they
/// can be (a memtable's sorted rows are written without a copy).
pub(crate) struct AlignedData<'a> {
    pub(crate) measurement: &'a str,
    pub(crate) data_type: DataType,
    pub(crate) values: Cow<'a, Values>,
    pub(crate) validity: Option<Cow<'a, [bool]>>,
}

/// The union of the series' times, and per series its column.
fn align<'a>(series: &[&'a SeriesData]) -> (Vec<i64>, Vec<AlignedData<'a>>) {
    let column = |s: &'a SeriesData, validity: Option<Vec<bool>>| AlignedData {
        measurement: &s.measurement,
        data_type: s.data_type,
        values: Cow::Borrowed(&s.run.values),
        validity: validity.map(Cow::Owned),
    };
    let first = &series[0].run.times;
    if series.iter().all(|s| s.run.times == *first) {
        return (first.clone(), series.iter().map(|s| column(s, None)).collect());
    }
    let mut times: Vec<i64> = series.iter().flat_map(|s| s.run.times.iter().copied()).collect();
    times.sort_unstable();
    times.dedup();
    let columns = series
        .iter()
        .map(|s| {
            let mut validity = vec![false; times.len()];
            let mut j = 0;
            for t in &s.run.times {
                while times[j] < *t {
                    j += 1;
                }
                validity[j] = true;
            }
            column(s, Some(validity))
        })
        .collect();
    (times, columns)
}

/// An aligned device's sorted rows in one partition: times and columns.
type AlignedSlice<'a> = (&'a [i64], Vec<AlignedData<'a>>);

/// Split an aligned device's sorted rows at partition boundaries.
fn split_aligned<'a>(times: &'a [i64], columns: Vec<AlignedData<'a>>, width: i64) -> Vec<(i64, AlignedSlice<'a>)> {
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return Vec::new();
    };
    if first.div_euclid(width) == last.div_euclid(width) {
        return vec![(first.div_euclid(width), (times, columns))];
    }
    let mut out = Vec::new();
    // Per column, its values before the current slice.
    let mut offsets = vec![0; columns.len()];
    let mut start = 0;
    while start < times.len() {
        let p = times[start].div_euclid(width);
        let end = times.partition_point(|t| t.div_euclid(width) <= p);
        let slice = columns
            .iter()
            .zip(offsets.iter_mut())
            .map(|(c, offset)| {
                let (n, validity) = match &c.validity {
                    None => (end - start, None),
                    Some(v) => {
                        let v = &v[start..end];
                        let n = v.iter().filter(|b| **b).count();
                        (n, (n < v.len()).then(|| Cow::Owned(v.to_vec())))
                    }
                };
                let values = Cow::Owned(c.values.slice(*offset..*offset + n));
                *offset += n;
                AlignedData { measurement: c.measurement, data_type: c.data_type, values, validity }
            })
            .collect();
        out.push((p, (&times[start..end], slice)));
        start = end;
    }
    out
}

/// Split a sorted run at partition boundaries.
fn split_by_partition(run: SeriesBatch, width: i64) -> Vec<(i64, SeriesBatch)> {
    let (Some(&first), Some(&last)) = (run.times.first(), run.times.last()) else {
        return Vec::new();
    };
    if first.div_euclid(width) == last.div_euclid(width) {
        return vec![(first.div_euclid(width), run)];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < run.times.len() {
        let p = run.times[start].div_euclid(width);
        let end = run.times.partition_point(|t| t.div_euclid(width) <= p);
        let idx: Vec<usize> = (start..end).collect();
        out.push((p, SeriesBatch { times: run.times[start..end].to_vec(), values: take(&run.values, &idx) }));
        start = end;
    }
    out
}

/// A device's points in one partition of a flushed memtable.
enum DeviceData<'a> {
    Plain(Vec<SeriesData>),
    /// Sorted rows and the columns, in measurement order.
    Aligned(AlignedSlice<'a>),
}

/// Where and how flushed files are written.
#[derive(Clone, Copy)]
pub(crate) struct FlushEnv<'a> {
    pub(crate) fs: &'a dyn FileSystem,
    pub(crate) db: &'a Path,
    pub(crate) versions: &'a Arc<AtomicU64>,
    pub(crate) partition_width: i64,
    pub(crate) page_max_points: usize,
}

/// Write `mem` as TsFiles (one per partition) of the given kind. Returns
/// the files written; on error the partial files are removed.
pub(crate) fn write_memtable(env: &FlushEnv<'_>, mem: &MemTable, seq: bool, generation: u64) -> Result<Vec<(i64, PathBuf)>> {
    let FlushEnv { fs, db, versions, partition_width, page_max_points } = *env;
    // Aligned devices' rows sorted first: written from there without a copy
    // (a sorted buffer is borrowed as it is).
    let sorted: Vec<(&str, Cow<'_, AlignedBuf>)> = mem
        .devices
        .iter()
        .filter_map(|(device, dev)| match dev {
            DeviceBuf::Aligned(rows) => Some((device.as_str(), rows.sorted())),
            DeviceBuf::Plain(_) => None,
        })
        .collect();
    // partition -> device -> its data there
    let mut parts: BTreeMap<i64, BTreeMap<&str, DeviceData<'_>>> = BTreeMap::new();
    for (device, rows) in &sorted {
        let columns = rows
            .columns()
            .map(|(measurement, c)| AlignedData {
                measurement,
                data_type: c.data_type,
                values: Cow::Borrowed(&c.values),
                validity: c.present.as_deref().map(Cow::Borrowed),
            })
            .collect();
        for (p, (times, mut columns)) in split_aligned(rows.times(), columns, partition_width) {
            columns.sort_by(|a, b| a.measurement.cmp(b.measurement));
            parts.entry(p).or_default().insert(device, DeviceData::Aligned((times, columns)));
        }
    }
    for (device, dev) in &mem.devices {
        match dev {
            DeviceBuf::Plain(series) => {
                for (measurement, s) in series {
                    if s.len() == 0 {
                        continue;
                    }
                    for (p, run) in split_by_partition(s.sorted_all(), partition_width) {
                        let entry = parts.entry(p).or_default().entry(device.as_str()).or_insert_with(|| DeviceData::Plain(Vec::new()));
                        if let DeviceData::Plain(list) = entry {
                            list.push(SeriesData { measurement: measurement.clone(), data_type: s.data_type, run });
                        }
                    }
                }
            }
            DeviceBuf::Aligned(_) => {}
        }
    }
    let mut written = Vec::new();
    for (p, devices) in parts {
        let version = versions.fetch_add(1, Ordering::SeqCst);
        let path = partition_dir(db, seq, p).join(tsfile_name(version, Origin::Flush(generation)));
        let result = (|| -> Result<PathBuf> {
            let mut out = OutputFile::create(fs, path.clone(), page_max_points)?;
            for (device, data) in devices {
                match data {
                    DeviceData::Plain(mut series) => {
                        series.sort_by(|a, b| a.measurement.cmp(&b.measurement));
                        out.write_device(device, false, &series)?;
                    }
                    DeviceData::Aligned((times, columns)) => out.write_aligned(device, times, &columns)?,
                }
            }
            out.finish(fs)
        })();
        match result {
            Ok(path) => written.push((p, path)),
            Err(e) => {
                let _ = fs.remove_file(&path);
                for (_, w) in &written {
                    let _ = fs.remove_file(w);
                }
                return Err(e);
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_at_partition_boundaries() {
        let run = SeriesBatch { times: vec![-3, -1, 0, 5, 10, 25], values: Values::Int64(vec![1, 2, 3, 4, 5, 6]) };
        let parts = split_by_partition(run, 10);
        let shape: Vec<(i64, Vec<i64>)> = parts.into_iter().map(|(p, r)| (p, r.times)).collect();
        assert_eq!(shape, vec![(-1, vec![-3, -1]), (0, vec![0, 5]), (1, vec![10]), (2, vec![25])]);
    }
}

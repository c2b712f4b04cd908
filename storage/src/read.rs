//! Reads: a series' sources (sequence files, unsequence files by version,
//! sealed memtables, working memtables) merged so the newest value of a
//! time wins, with tombstones applied per file.
//!
//! Aggregates use statistics wherever they are exact: a chunk (or a whole
//! file's series, or a page) whose points overlap no other source's, that no
//! tombstone touches and that lies wholly inside the range is answered from
//! its statistics; pages straddling the range's edge are decoded on their
//! own; everything that overlaps another source is decoded and merged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tsfile::metadata::TimeseriesMetadata;
use tsfile::reader::DeviceMetadata;
use tsfile::statistics::ValueStatistics;
use tsfile::{AlignedBatch, ColumnBatch, DataType, SeriesBatch, Statistics, TimeRange, Value, Values};

use crate::batch::{value_less, Aggregates, ReadCounters, SeriesKey};
use crate::error::{Error, Result};
use crate::files::{MetaCache, TsFileResource};
use crate::run::{concat, merge, remove_ranges, trim, RankedRun};

/// Counters behind [`ReadCounters`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    files_from_statistics: AtomicU64,
    chunks_from_statistics: AtomicU64,
    pages_from_statistics: AtomicU64,
    chunks_decoded: AtomicU64,
    pages_decoded: AtomicU64,
    memtable_points: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ReadCounters {
        ReadCounters {
            files_from_statistics: self.files_from_statistics.load(Ordering::Relaxed),
            chunks_from_statistics: self.chunks_from_statistics.load(Ordering::Relaxed),
            pages_from_statistics: self.pages_from_statistics.load(Ordering::Relaxed),
            chunks_decoded: self.chunks_decoded.load(Ordering::Relaxed),
            pages_decoded: self.pages_decoded.load(Ordering::Relaxed),
            memtable_points: self.memtable_points.load(Ordering::Relaxed),
        }
    }
}

/// A file that may hold points of the series.
pub(crate) struct FileSource {
    pub(crate) file: Arc<TsFileResource>,
    /// Age: 0 for sequence files (they never overlap), the version for
    /// unsequence files.
    pub(crate) rank: u64,
    /// Ranges of the series deleted by the file's tombstones.
    pub(crate) deleted: Vec<TimeRange>,
}

/// A memtable's sorted points of the series in range, deletions applied.
pub(crate) struct MemSource {
    pub(crate) rank: u64,
    pub(crate) data_type: DataType,
    pub(crate) run: SeriesBatch,
}

/// Everything needed to read one series, taken under the engine lock.
pub(crate) struct SeriesView {
    pub(crate) key: SeriesKey,
    /// The requested range clipped by TTL.
    pub(crate) range: TimeRange,
    pub(crate) files: Vec<FileSource>,
    pub(crate) mem: Vec<MemSource>,
}

impl SeriesView {
    pub(crate) fn is_empty_range(&self) -> bool {
        self.range.start > self.range.end
    }
}

fn series_of<'a>(meta: &'a DeviceMetadata, measurement: &str) -> Option<&'a TimeseriesMetadata> {
    meta.series(measurement)
}

/// The series' points in time order, as batches.
pub(crate) fn scan(view: &SeriesView, cache: &MetaCache, counters: &Counters) -> Result<Vec<SeriesBatch>> {
    if view.is_empty_range() {
        return Ok(Vec::new());
    }
    let mut runs = Vec::new();
    for m in &view.mem {
        bump(&counters.memtable_points, m.run.times.len() as u64);
        runs.push(RankedRun { rank: m.rank, run: m.run.clone() });
    }
    for f in &view.files {
        let Some(meta) = f.file.device_metadata(cache, &view.key.device)? else { continue };
        let Some(ts) = series_of(&meta, &view.key.measurement) else { continue };
        if !view.range.overlaps(&ts.statistics) {
            continue;
        }
        for batch in f.file.reader.read_series_of(&meta, &view.key.measurement, view.range)? {
            runs.push(RankedRun { rank: f.rank, run: remove_ranges(batch, &f.deleted) });
        }
    }
    merge(&view.key.to_string(), runs)
}

/// Where a series' points in the view's range lie (earliest, latest) and
/// about how many there are, from file statistics and memtable runs alone:
/// the count may include overwritten or deleted points.
pub(crate) fn extent(view: &SeriesView, cache: &MetaCache) -> Result<(Option<(i64, i64)>, u64)> {
    if view.is_empty_range() {
        return Ok((None, 0));
    }
    let (mut span, mut count): (Option<(i64, i64)>, u64) = (None, 0);
    let mut widen = |lo: i64, hi: i64| {
        let (lo, hi) = (lo.max(view.range.start), hi.min(view.range.end));
        if lo <= hi {
            span = Some(span.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
    };
    for m in &view.mem {
        if let (Some(first), Some(last)) = (m.run.times.first(), m.run.times.last()) {
            widen(*first, *last);
            count += m.run.times.len() as u64;
        }
    }
    for f in &view.files {
        let Some(meta) = f.file.device_metadata(cache, &view.key.device)? else { continue };
        let Some(ts) = series_of(&meta, &view.key.measurement) else { continue };
        if view.range.overlaps(&ts.statistics) {
            widen(ts.statistics.start_time, ts.statistics.end_time);
            count += ts.statistics.count;
        }
    }
    Ok((span, count))
}

/// The data type of the series as its sources hold it.
pub(crate) fn data_type(view: &SeriesView, cache: &MetaCache) -> Result<Option<DataType>> {
    if let Some(m) = view.mem.first() {
        return Ok(Some(m.data_type));
    }
    for f in &view.files {
        if let Some(meta) = f.file.device_metadata(cache, &view.key.device)? {
            if let Some(ts) = series_of(&meta, &view.key.measurement) {
                return Ok(Some(ts.data_type));
            }
        }
    }
    Ok(None)
}

/// The rows of an aligned device's columns when only sequence files hold
/// them, untouched by tombstones: each file's aligned chunks are read once
/// for all columns (one time-column decode), files in time order (sequence
/// files never overlap). Only the first `decoded` columns' values are
/// decoded; the others' are placeholders (they only make rows). `None`
/// when the general merge is needed.
pub(crate) fn scan_aligned_files(views: &[SeriesView], decoded: usize, cache: &MetaCache) -> Result<Option<Vec<AlignedBatch>>> {
    let Some(first) = views.first() else { return Ok(None) };
    let same_files = |v: &SeriesView| {
        v.files.len() == first.files.len() && v.files.iter().zip(&first.files).all(|(a, b)| Arc::ptr_eq(&a.file, &b.file))
    };
    let plain = |v: &SeriesView| v.mem.is_empty() && v.files.iter().all(|f| f.rank == 0 && f.deleted.is_empty());
    if first.is_empty_range() || !views.iter().all(|v| plain(v) && same_files(v) && v.range == first.range) {
        return Ok(None);
    }
    let device = &first.key.device;
    let mut files: Vec<&FileSource> = first.files.iter().collect();
    files.sort_by_key(|f| f.file.span(device).map_or(i64::MAX, |s| s.start));
    let measurements: Vec<&str> = views.iter().map(|v| v.key.measurement.as_str()).collect();
    let mut out = Vec::new();
    for f in files {
        let Some(meta) = f.file.device_metadata(cache, device)? else { continue };
        if !meta.aligned {
            return Ok(None);
        }
        for batch in f.file.reader.read_aligned_rows_of(&meta, &measurements, decoded, first.range)? {
            // A time at which none of these columns has a value is no row.
            let keep: Vec<bool> = (0..batch.times.len()).map(|r| batch.columns.iter().any(|c| c.validity[r])).collect();
            let batch = if keep.iter().all(|k| *k) { batch } else { keep_rows(batch, &keep) };
            if !batch.times.is_empty() {
                out.push(batch);
            }
        }
    }
    Ok(Some(out))
}

/// The rows of `b` whose `keep` is set.
fn keep_rows(b: AlignedBatch, keep: &[bool]) -> AlignedBatch {
    let times = b.times.iter().zip(keep).filter(|(_, k)| **k).map(|(t, _)| *t).collect();
    let columns = b
        .columns
        .into_iter()
        .map(|c| {
            // Dropped rows have no value in any column: values stay as they are.
            let validity = c.validity.iter().zip(keep).filter(|(_, k)| **k).map(|(v, _)| *v).collect();
            ColumnBatch { values: c.values, validity }
        })
        .collect();
    AlignedBatch { times, columns }
}

/// Rows of several series of one device, aligned by time. A row appears
/// when at least one of the columns has a value at its time.
pub(crate) fn scan_aligned(views: &[SeriesView], cache: &MetaCache, counters: &Counters) -> Result<Vec<AlignedBatch>> {
    let mut columns = Vec::with_capacity(views.len());
    for v in views {
        let dt = data_type(v, cache)?.unwrap_or(DataType::Int32);
        columns.push(concat(scan(v, cache, counters)?, dt));
    }
    // One column, or columns with the very same times (an aligned device's
    // usual case): the rows are those times, every value present.
    if let Some(first) = columns.first() {
        if columns.iter().all(|c| c.times == first.times) {
            if first.times.is_empty() {
                return Ok(Vec::new());
            }
            let times = first.times.clone();
            let cols = columns.into_iter().map(|c| ColumnBatch { validity: vec![true; c.times.len()], values: c.values }).collect();
            return Ok(vec![AlignedBatch { times, columns: cols }]);
        }
    }
    let mut times: Vec<i64> = columns.iter().flat_map(|c| c.times.iter().copied()).collect();
    if times.is_empty() {
        return Ok(Vec::new());
    }
    times.sort_unstable();
    times.dedup();
    let cols = columns
        .into_iter()
        .map(|c| {
            let mut validity = vec![false; times.len()];
            let mut j = 0;
            for t in &c.times {
                while times[j] < *t {
                    j += 1;
                }
                validity[j] = true;
            }
            ColumnBatch { values: c.values, validity }
        })
        .collect();
    Ok(vec![AlignedBatch { times, columns: cols }])
}

// ---------------------------------------------------------------- aggregation

fn has_sum(dt: DataType) -> bool {
    matches!(dt, DataType::Int32 | DataType::Int64 | DataType::Float | DataType::Double | DataType::Date | DataType::Timestamp)
}

fn has_min_max(dt: DataType) -> bool {
    has_sum(dt) || dt == DataType::String
}

/// Whether statistics of this type carry everything an aggregate needs.
fn statistics_usable(dt: DataType) -> bool {
    !matches!(dt, DataType::Blob | DataType::Vector)
}

/// Running aggregates over disjoint pieces of a series.
pub(crate) struct Acc {
    dt: DataType,
    a: Aggregates,
}

impl Acc {
    pub(crate) fn new(dt: DataType) -> Acc {
        Acc { dt, a: Aggregates { sum: has_sum(dt).then_some(0.0), ..Aggregates::default() } }
    }

    pub(crate) fn data_type(&self) -> DataType {
        self.dt
    }

    pub(crate) fn finish(self) -> Aggregates {
        self.a
    }

    fn first(&mut self, t: i64, v: Value) {
        if self.a.first.as_ref().is_none_or(|(ft, _)| t < *ft) {
            self.a.first = Some((t, v));
        }
    }

    fn last(&mut self, t: i64, v: Value) {
        if self.a.last.as_ref().is_none_or(|(lt, _)| t > *lt) {
            self.a.last = Some((t, v));
        }
    }

    fn min_max(&mut self, min: Value, max: Value) {
        if !has_min_max(self.dt) {
            return;
        }
        if self.a.min.as_ref().is_none_or(|m| value_less(&min, m)) {
            self.a.min = Some(min);
        }
        if self.a.max.as_ref().is_none_or(|m| value_less(m, &max)) {
            self.a.max = Some(max);
        }
    }

    fn sum(&mut self, s: f64) {
        if let Some(sum) = self.a.sum.as_mut() {
            *sum += s;
        }
    }

    fn times(&mut self, start: i64, end: i64, count: u64) {
        self.a.count += count;
        self.a.min_time = Some(self.a.min_time.map_or(start, |m| m.min(start)));
        self.a.max_time = Some(self.a.max_time.map_or(end, |m| m.max(end)));
    }

    pub(crate) fn add_stats(&mut self, s: &Statistics) {
        if s.count == 0 {
            return;
        }
        self.times(s.start_time, s.end_time, s.count);
        let (st, et) = (s.start_time, s.end_time);
        match &s.values {
            ValueStatistics::Boolean { first, last, .. } => {
                self.first(st, Value::Boolean(*first));
                self.last(et, Value::Boolean(*last));
            }
            ValueStatistics::Int32 { min, max, first, last, sum } => {
                self.first(st, Value::Int32(*first));
                self.last(et, Value::Int32(*last));
                self.min_max(Value::Int32(*min), Value::Int32(*max));
                self.sum(*sum as f64);
            }
            ValueStatistics::Int64 { min, max, first, last, sum } => {
                self.first(st, Value::Int64(*first));
                self.last(et, Value::Int64(*last));
                self.min_max(Value::Int64(*min), Value::Int64(*max));
                self.sum(*sum);
            }
            ValueStatistics::Float { min, max, first, last, sum } => {
                self.first(st, Value::Float(*first));
                self.last(et, Value::Float(*last));
                self.min_max(Value::Float(*min), Value::Float(*max));
                self.sum(*sum);
            }
            ValueStatistics::Double { min, max, first, last, sum } => {
                self.first(st, Value::Double(*first));
                self.last(et, Value::Double(*last));
                self.min_max(Value::Double(*min), Value::Double(*max));
                self.sum(*sum);
            }
            ValueStatistics::Text { first, last } => {
                self.first(st, Value::Binary(first.clone()));
                self.last(et, Value::Binary(last.clone()));
            }
            ValueStatistics::String { first, last, min, max } => {
                self.first(st, Value::Binary(first.clone()));
                self.last(et, Value::Binary(last.clone()));
                self.min_max(Value::Binary(min.clone()), Value::Binary(max.clone()));
            }
            ValueStatistics::Blob | ValueStatistics::Time => {}
        }
    }

    /// The points of a sorted run that lie in `window`.
    fn add_window(&mut self, run: &SeriesBatch, window: TimeRange) {
        let a = run.times.partition_point(|t| *t < window.start);
        let b = run.times.partition_point(|t| *t <= window.end);
        self.add_slice(run, a, b);
    }

    /// Points `a..b` of a sorted run.
    fn add_slice(&mut self, run: &SeriesBatch, a: usize, b: usize) {
        if a >= b {
            return;
        }
        self.times(run.times[a], run.times[b - 1], (b - a) as u64);
        self.first(run.times[a], run.values.get(a));
        self.last(run.times[b - 1], run.values.get(b - 1));
        macro_rules! numeric {
            ($v:expr, $variant:ident, $to_f64:expr) => {{
                let v = $v;
                let (mut min, mut max) = (v[0], v[0]);
                let mut sum = 0f64;
                for &x in v.iter() {
                    if x < min {
                        min = x;
                    }
                    if x > max {
                        max = x;
                    }
                    sum += $to_f64(x);
                }
                self.min_max(Value::$variant(min), Value::$variant(max));
                self.sum(sum);
            }};
        }
        match &run.values {
            Values::Int32(v) => numeric!(&v[a..b], Int32, f64::from),
            Values::Int64(v) => numeric!(&v[a..b], Int64, |x: i64| x as f64),
            Values::Float(v) => numeric!(&v[a..b], Float, f64::from),
            Values::Double(v) => numeric!(&v[a..b], Double, |x: f64| x),
            Values::Binary(v) if self.dt == DataType::String => {
                let min = v[a..b].iter().min().cloned().unwrap_or_default();
                let max = v[a..b].iter().max().cloned().unwrap_or_default();
                self.min_max(Value::Binary(min), Value::Binary(max));
            }
            Values::Binary(_) | Values::Boolean(_) => {}
        }
    }
}

/// One chunk of one file source, or one memtable source, clipped to the range.
struct Unit {
    start: i64,
    end: i64,
    what: UnitKind,
}

#[derive(Clone, Copy)]
enum UnitKind {
    /// (file source, chunk index in its series metadata)
    Chunk(usize, usize),
    Mem(usize),
}

/// A file source with its device metadata and series entry.
struct Opened {
    meta: Arc<DeviceMetadata>,
    series: usize,
}

impl Opened {
    fn ts(&self) -> &TimeseriesMetadata {
        &self.meta.series[self.series]
    }
}

fn clip(range: TimeRange, s: &Statistics) -> Option<(i64, i64)> {
    (s.count > 0 && range.overlaps(s)).then(|| (s.start_time.max(range.start), s.end_time.min(range.end)))
}

/// Aggregates of the series over the view's range.
pub(crate) fn aggregate(view: &SeriesView, cache: &MetaCache, counters: &Counters) -> Result<Aggregates> {
    Ok(aggregate_windows(view, &[view.range], cache, counters)?.pop().unwrap_or_default())
}

/// The windows (sorted by start, and so by end; they may overlap) that
/// overlap `[start, end]`.
fn windows_over(windows: &[TimeRange], start: i64, end: i64) -> std::ops::Range<usize> {
    let first = windows.partition_point(|w| w.end < start);
    let last = first + windows[first..].partition_point(|w| w.start <= end);
    first..last
}

/// Aggregates of the series over each of `windows` (inclusive ranges sorted
/// by start and end, inside the view's range; they may overlap or leave
/// gaps). Every unit is read at most once: a chunk, file or page inside a
/// window adds its statistics there; a page straddling a window edge is
/// decoded once and split; overlapping sources are merged once and split.
pub(crate) fn aggregate_windows(view: &SeriesView, windows: &[TimeRange], cache: &MetaCache, counters: &Counters) -> Result<Vec<Aggregates>> {
    let windows: Vec<TimeRange> = windows
        .iter()
        .map(|w| TimeRange::new(w.start.max(view.range.start), w.end.min(view.range.end)))
        .collect();
    let mut out: Vec<Aggregates> = vec![Aggregates::default(); windows.len()];
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        return Ok(out);
    };
    if view.is_empty_range() {
        return Ok(out);
    }
    let range = TimeRange::new(first.start, windows.iter().map(|w| w.end).max().unwrap_or(last.end));
    if range.start > range.end {
        return Ok(out);
    }
    let name = view.key.to_string();
    let mut dt: Option<DataType> = None;
    let mut check_type = |t: DataType| -> Result<()> {
        match dt {
            Some(d) if d != t => Err(Error::TypeMismatch { series: name.clone(), expected: d, got: t }),
            _ => {
                dt = Some(t);
                Ok(())
            }
        }
    };

    // 1. Units: chunks and memtable runs, clipped to the range.
    let mut opened: Vec<Option<Opened>> = Vec::with_capacity(view.files.len());
    let mut units = Vec::new();
    for (i, f) in view.files.iter().enumerate() {
        let o = f.file.device_metadata(cache, &view.key.device)?.and_then(|meta| {
            let series = meta.series.iter().position(|s| s.measurement == view.key.measurement && s.data_type != DataType::Vector)?;
            Some(Opened { meta, series })
        });
        if let Some(o) = &o {
            let ts = o.ts();
            if clip(range, &ts.statistics).is_some() {
                check_type(ts.data_type)?;
                for (j, c) in ts.chunks.iter().enumerate() {
                    if let Some((start, end)) = clip(range, &c.statistics) {
                        units.push(Unit { start, end, what: UnitKind::Chunk(i, j) });
                    }
                }
            }
        }
        opened.push(o);
    }
    for (k, m) in view.mem.iter().enumerate() {
        let from = m.run.times.partition_point(|t| *t < range.start);
        let to = m.run.times.partition_point(|t| *t <= range.end);
        if from < to {
            check_type(m.data_type)?;
            units.push(Unit { start: m.run.times[from], end: m.run.times[to - 1], what: UnitKind::Mem(k) });
        }
    }
    let Some(dt) = dt else {
        return Ok(out);
    };

    // 2. Which units overlap another (sweep over intervals sorted by start).
    units.sort_by_key(|u| (u.start, u.end));
    let mut overlapped = vec![false; units.len()];
    let mut max_end = i64::MIN;
    for i in 0..units.len() {
        if i > 0 && max_end >= units[i].start {
            overlapped[i] = true;
        }
        if units.get(i + 1).is_some_and(|n| n.start <= units[i].end) {
            overlapped[i] = true;
        }
        max_end = max_end.max(units[i].end);
    }

    // 3. Exact units from statistics; the rest decoded, merged and split.
    let mut accs: Vec<Acc> = (0..windows.len()).map(|_| Acc::new(dt)).collect();
    let usable = statistics_usable(dt);
    let mut exact = vec![false; units.len()];
    for (u, unit) in units.iter().enumerate() {
        if let UnitKind::Chunk(i, _) = unit.what {
            let clean = !view.files[i].deleted.iter().any(|r| r.start <= unit.end && unit.start <= r.end);
            exact[u] = usable && clean && !overlapped[u];
        }
    }
    // A file whose every chunk is exact and inside a window: one series-level
    // statistic for that window.
    let mut file_done: std::collections::HashSet<(usize, usize)> = std::collections::HashSet::new();
    for (i, o) in opened.iter().enumerate() {
        let Some(o) = o else { continue };
        let ts = o.ts();
        if ts.statistics.count == 0 {
            continue;
        }
        let mine: Vec<usize> = (0..units.len()).filter(|&u| matches!(units[u].what, UnitKind::Chunk(f, _) if f == i)).collect();
        let nonempty = ts.chunks.iter().filter(|c| c.statistics.count > 0).count();
        if mine.is_empty() || mine.len() != nonempty || !mine.iter().all(|&u| exact[u]) {
            continue;
        }
        for w in windows_over(&windows, ts.statistics.start_time, ts.statistics.end_time) {
            if windows[w].covers(&ts.statistics) {
                accs[w].add_stats(&ts.statistics);
                bump(&counters.files_from_statistics, 1);
                file_done.insert((w, i));
            }
        }
    }
    let mut runs = Vec::new();
    for (u, unit) in units.iter().enumerate() {
        match unit.what {
            UnitKind::Chunk(i, j) => {
                let Some(o) = &opened[i] else { continue };
                let f = &view.files[i];
                let cm = &o.ts().chunks[j];
                if !exact[u] {
                    bump(&counters.chunks_decoded, 1);
                    for run in decode_chunk(f, o, j, range)? {
                        runs.push(RankedRun { rank: f.rank, run: remove_ranges(run, &f.deleted) });
                    }
                    continue;
                }
                let mut partial = Vec::new();
                for w in windows_over(&windows, unit.start, unit.end) {
                    if file_done.contains(&(w, i)) {
                        continue;
                    }
                    if windows[w].covers(&cm.statistics) {
                        accs[w].add_stats(&cm.statistics);
                        bump(&counters.chunks_from_statistics, 1);
                    } else {
                        partial.push(w);
                    }
                }
                if !partial.is_empty() {
                    chunk_by_pages(f, o, j, &windows, &partial, &mut accs, counters)?;
                }
            }
            UnitKind::Mem(k) => {
                let m = &view.mem[k];
                bump(&counters.memtable_points, m.run.times.len() as u64);
                runs.push(RankedRun { rank: m.rank, run: m.run.clone() });
            }
        }
    }
    for run in merge(&view.key.to_string(), runs)? {
        let (Some(&s), Some(&e)) = (run.times.first(), run.times.last()) else { continue };
        for w in windows_over(&windows, s, e) {
            accs[w].add_window(&run, windows[w]);
        }
    }
    for (a, acc) in out.iter_mut().zip(accs) {
        *a = acc.a;
        if a.count == 0 {
            // SQL semantics: the sum of no values is NULL.
            a.sum = None;
        }
    }
    Ok(out)
}

/// The time chunk of the chunk group holding the aligned value chunk at `offset`.
fn time_chunk_offset(meta: &DeviceMetadata, offset: u64) -> Option<u64> {
    meta.time_column()?
        .chunks
        .iter()
        .map(|c| c.offset_of_chunk_header)
        .filter(|o| *o < offset)
        .max()
}

/// Read chunk `j` of the source's series and its time chunk when aligned.
fn read_chunk_pair(f: &FileSource, o: &Opened, j: usize) -> Result<(tsfile::reader::Chunk, Option<tsfile::reader::Chunk>)> {
    let offset = o.ts().chunks[j].offset_of_chunk_header;
    let chunk = f.file.reader.read_chunk(offset)?;
    if !o.meta.aligned {
        return Ok((chunk, None));
    }
    let time_offset = time_chunk_offset(&o.meta, offset)
        .ok_or_else(|| Error::corrupt(&f.file.path, offset, "aligned value chunk without a time chunk before it"))?;
    Ok((chunk, Some(f.file.reader.read_chunk(time_offset)?)))
}

fn decode_one(f: &FileSource, chunk: &tsfile::reader::Chunk, time: Option<&tsfile::reader::Chunk>, page: usize) -> Result<SeriesBatch> {
    Ok(match time {
        Some(tc) => f.file.reader.decode_aligned_page(tc, chunk, page)?,
        None => f.file.reader.decode_page(chunk, page)?,
    })
}

/// An exact chunk partly inside each of the windows `partial`: pages inside
/// a window from their statistics, pages straddling a window edge decoded
/// once and split.
fn chunk_by_pages(f: &FileSource, o: &Opened, j: usize, windows: &[TimeRange], partial: &[usize], accs: &mut [Acc], counters: &Counters) -> Result<()> {
    let chunk_stats = &o.ts().chunks[j].statistics;
    let (chunk, time) = read_chunk_pair(f, o, j)?;
    for (p, page) in chunk.pages.iter().enumerate() {
        if page.header.is_empty_page() {
            continue;
        }
        let stats = page.header.statistics.as_ref().unwrap_or(chunk_stats);
        let mut decoded: Option<SeriesBatch> = None;
        for &w in partial {
            let window = windows[w];
            if !window.overlaps(stats) {
                continue;
            }
            if window.covers(stats) {
                accs[w].add_stats(stats);
                bump(&counters.pages_from_statistics, 1);
                continue;
            }
            if decoded.is_none() {
                decoded = Some(decode_one(f, &chunk, time.as_ref(), p)?);
                bump(&counters.pages_decoded, 1);
            }
            if let Some(run) = &decoded {
                accs[w].add_window(run, window);
            }
        }
    }
    Ok(())
}

/// The points of chunk `j` inside the range (pages outside it skipped).
fn decode_chunk(f: &FileSource, o: &Opened, j: usize, range: TimeRange) -> Result<Vec<SeriesBatch>> {
    let chunk_stats = &o.ts().chunks[j].statistics;
    let (chunk, time) = read_chunk_pair(f, o, j)?;
    let mut out = Vec::new();
    for (p, page) in chunk.pages.iter().enumerate() {
        if page.header.is_empty_page() {
            continue;
        }
        let stats = page.header.statistics.as_ref().unwrap_or(chunk_stats);
        if range.overlaps(stats) {
            out.push(trim(decode_one(f, &chunk, time.as_ref(), p)?, range));
        }
    }
    Ok(out)
}

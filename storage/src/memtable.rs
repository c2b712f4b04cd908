//! Memtables: the points of one generation not yet flushed, per device and
//! series, appended in write order. Sorting (last write wins on equal time)
//! happens when a series is read or flushed, so appends stay cheap.
//! A NULL is never stored: it leaves whatever value the series has.

use std::borrow::Cow;
use std::collections::HashMap;

use tsfile::{DataType, SeriesBatch, TimeRange, Values};

use crate::batch::{values_bytes, Column, WriteBatch};
use crate::error::{Error, Result};
use crate::run::{concat, merge, sort_dedup, take, RankedRun};

/// Fixed cost charged per series for its buffers and map entry.
const SERIES_OVERHEAD_BYTES: usize = 128;

/// One series' unflushed points, in write order.
#[derive(Debug, Clone)]
pub(crate) struct SeriesBuf {
    pub(crate) data_type: DataType,
    times: Vec<i64>,
    values: Values,
    /// `times[..sorted_len]` strictly increase; later appends that break
    /// the order are sorted and merged in when the series is read.
    sorted_len: usize,
}

impl SeriesBuf {
    fn new(data_type: DataType) -> Self {
        SeriesBuf { data_type, times: Vec::new(), values: Values::empty(data_type), sorted_len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.times.len()
    }

    fn is_sorted(&self) -> bool {
        self.sorted_len == self.times.len()
    }

    /// Earliest and latest time held, when known without a scan.
    fn known_span(&self) -> Option<(i64, i64)> {
        sorted_span(&self.times, self.sorted_len)
    }

    /// Take `times` and `values` as this (empty) series' vectors.
    /// Returns the bytes added.
    fn adopt(&mut self, times: Vec<i64>, values: Values) -> usize {
        debug_assert!(self.times.is_empty());
        let bytes = times.len() * 8 + values_bytes(&values);
        self.sorted_len = if times.windows(2).all(|w| w[0] < w[1]) { times.len() } else { 0 };
        self.times = fitted(times);
        self.values = fitted_values(values);
        bytes
    }

    fn append(&mut self, times: &[i64], values: &Values) -> usize {
        if times.is_empty() {
            return 0;
        }
        let bytes = times.len() * 8 + values_bytes(values);
        let still_sorted = self.is_sorted()
            && self.times.last().is_none_or(|last| *last < times[0])
            && times.windows(2).all(|w| w[0] < w[1]);
        self.times.extend_from_slice(times);
        if still_sorted {
            self.sorted_len = self.times.len();
        }
        // Same physical type: the engine checks types before appending.
        let _ = self.values.extend_from(values);
        bytes
    }

    /// Sort and de-duplicate in place (for a working memtable being read):
    /// only the unsorted tail is sorted, then merged into the sorted prefix
    /// with the tail's (newer) values winning.
    fn normalize(&mut self) {
        if self.is_sorted() {
            return;
        }
        let n = self.sorted_len;
        let tail = sort_dedup(&self.times[n..], &self.values.slice(n..self.times.len()));
        let head = SeriesBatch { times: self.times[..n].to_vec(), values: self.values.slice(0..n) };
        let merged = merge(
            "",
            vec![RankedRun { rank: 0, run: head }, RankedRun { rank: 1, run: tail }],
        )
        .map(|runs| concat(runs, self.data_type));
        // Both halves come from this buffer, so their types always agree.
        if let Ok(run) = merged {
            self.times = run.times;
            self.values = run.values;
            self.sorted_len = self.times.len();
        }
    }

    /// Sorted, de-duplicated points in `range`, without touching `self`.
    pub(crate) fn run(&self, range: TimeRange) -> SeriesBatch {
        if self.is_sorted() {
            let a = self.times.partition_point(|t| *t < range.start);
            let b = self.times.partition_point(|t| *t <= range.end);
            return SeriesBatch { times: self.times[a..b].to_vec(), values: self.values.slice(a..b) };
        }
        let idx: Vec<usize> = (0..self.times.len()).filter(|&i| range.contains(self.times[i])).collect();
        let times: Vec<i64> = idx.iter().map(|&i| self.times[i]).collect();
        sort_dedup(&times, &take(&self.values, &idx))
    }

    /// All points sorted and de-duplicated.
    pub(crate) fn sorted_all(&self) -> SeriesBatch {
        if self.is_sorted() {
            return SeriesBatch { times: self.times.clone(), values: self.values.clone() };
        }
        sort_dedup(&self.times, &self.values)
    }

    fn delete(&mut self, range: TimeRange) {
        if self.times.iter().any(|t| range.contains(*t)) {
            let keep: Vec<usize> = (0..self.times.len()).filter(|&i| !range.contains(self.times[i])).collect();
            self.values = take(&self.values, &keep);
            self.sorted_len = keep.iter().take_while(|&&i| i < self.sorted_len).count();
            self.times = keep.iter().map(|&i| self.times[i]).collect();
        }
    }
}

/// An aligned device's unflushed rows: one time column its measurements
/// share (IoTDB's aligned layout, and the shape its chunk groups are
/// written in), each measurement a column of present values with a
/// presence flag per row. Rows are in write order, like [`SeriesBuf`]'s
/// points; every row has a value in at least one column.
#[derive(Debug, Clone, Default)]
pub(crate) struct AlignedBuf {
    times: Vec<i64>,
    /// `times[..sorted_len]` strictly increase.
    sorted_len: usize,
    columns: HashMap<String, AlignedColumn>,
}

/// One measurement of an [`AlignedBuf`].
#[derive(Debug, Clone)]
pub(crate) struct AlignedColumn {
    pub(crate) data_type: DataType,
    /// The present values, in row order.
    pub(crate) values: Values,
    /// Whether each row has a value; `None`: every row has one.
    pub(crate) present: Option<Vec<bool>>,
}

impl AlignedColumn {
    fn new(data_type: DataType, rows: usize) -> Self {
        AlignedColumn { data_type, values: Values::empty(data_type), present: (rows > 0).then(|| vec![false; rows]) }
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    fn is_present(&self, row: usize) -> bool {
        self.present.as_ref().is_none_or(|p| p[row])
    }

    /// The presence flags, made explicit for `rows` rows.
    fn present_mut(&mut self, rows: usize) -> &mut Vec<bool> {
        self.present.get_or_insert_with(|| vec![true; rows])
    }
}

impl AlignedBuf {
    fn is_sorted(&self) -> bool {
        self.sorted_len == self.times.len()
    }

    /// Earliest and latest time of any row, when known without a scan.
    fn known_span(&self) -> Option<(i64, i64)> {
        sorted_span(&self.times, self.sorted_len)
    }

    pub(crate) fn column(&self, measurement: &str) -> Option<&AlignedColumn> {
        self.columns.get(measurement)
    }

    /// Take `batch`'s rows as this buffer's vectors when it holds no row
    /// and every row of the batch has a value (nothing to drop); `None`
    /// (the batch untouched) otherwise. Returns (bytes added, points added).
    fn adopt(&mut self, batch: &mut WriteBatch) -> Option<(usize, usize)> {
        let n = batch.times.len();
        if !self.times.is_empty() || n == 0 {
            return None;
        }
        if batch.columns.iter().any(|c| c.validity.is_some()) && !(0..n).all(|i| batch.columns.iter().any(|c| c.is_valid(i))) {
            return None;
        }
        self.times = fitted(std::mem::take(&mut batch.times));
        self.sorted_len = if self.times.windows(2).all(|w| w[0] < w[1]) { n } else { 0 };
        let mut bytes = n * 8;
        let mut points = 0;
        for c in &mut batch.columns {
            let values = std::mem::replace(&mut c.values, Values::empty(c.data_type));
            points += values.len();
            bytes += values_bytes(&values);
            let column = AlignedColumn { data_type: c.data_type, values: fitted_values(values), present: c.validity.take() };
            if self.columns.insert(c.measurement.clone(), column).is_none() {
                bytes += SERIES_OVERHEAD_BYTES + c.measurement.len();
            }
        }
        // Columns of earlier (deleted) rows the batch has no value for.
        if self.columns.len() > batch.columns.len() {
            for (m, col) in self.columns.iter_mut() {
                if !batch.columns.iter().any(|c| c.measurement == *m) {
                    *col = AlignedColumn::new(col.data_type, n);
                }
            }
        }
        Some((bytes, points))
    }

    /// Append the selected rows of `batch` that have a value in some
    /// column. Returns (bytes added, points added).
    fn append(&mut self, batch: &WriteBatch, rows: Rows<'_>) -> (usize, usize) {
        let n = batch.times.len();
        let any_null = batch.columns.iter().any(|c| c.validity.is_some());
        // The batch rows to keep: selected, and with a value somewhere.
        let keep: Option<Vec<bool>> = match (rows, any_null) {
            (Rows::All, false) => None,
            _ => Some(
                (0..n)
                    .map(|i| {
                        let wanted = match rows {
                            Rows::All => true,
                            Rows::Selected(sel) => sel[i],
                        };
                        wanted && batch.columns.iter().any(|c| c.is_valid(i))
                    })
                    .collect(),
            ),
        };
        let old = self.times.len();
        let was_sorted = self.is_sorted();
        match &keep {
            None => self.times.extend_from_slice(&batch.times),
            Some(k) => self.times.extend((0..n).filter(|&i| k[i]).map(|i| batch.times[i])),
        }
        let added_rows = self.times.len() - old;
        if added_rows == 0 {
            return (0, 0);
        }
        let new = &self.times[old..];
        if was_sorted && (old == 0 || self.times[old - 1] < new[0]) && new.windows(2).all(|w| w[0] < w[1]) {
            self.sorted_len = self.times.len();
        }
        let rows_now = self.times.len();
        let mut bytes = added_rows * 8;
        let mut points = 0;
        let mut in_batch = 0;
        for c in &batch.columns {
            let col = match self.columns.get_mut(c.measurement.as_str()) {
                Some(col) => col,
                None => {
                    bytes += SERIES_OVERHEAD_BYTES + c.measurement.len();
                    self.columns.entry(c.measurement.clone()).or_insert_with(|| AlignedColumn::new(c.data_type, old))
                }
            };
            if col.data_type != c.data_type {
                // Only an emptied column (all deleted) can change type.
                *col = AlignedColumn::new(c.data_type, old);
            }
            in_batch += 1;
            let before = col.values.len();
            match (&keep, &c.validity, &col.present) {
                // Every row, every value, a full column: a straight copy.
                (None, None, None) => {
                    // Same physical type: the engine checks types before appending.
                    let _ = col.values.extend_from(&c.values);
                }
                _ => {
                    let mut idx = Vec::with_capacity(added_rows);
                    let mut flags = Vec::with_capacity(added_rows);
                    let mut v = 0;
                    for i in 0..n {
                        let valid = c.is_valid(i);
                        if keep.as_ref().is_none_or(|k| k[i]) {
                            flags.push(valid);
                            if valid {
                                idx.push(v);
                            }
                        }
                        if valid {
                            v += 1;
                        }
                    }
                    let _ = col.values.extend_from(&take(&c.values, &idx));
                    if col.present.is_some() || flags.iter().any(|f| !f) {
                        col.present_mut(old).extend_from_slice(&flags);
                    }
                }
            }
            let added = col.values.len() - before;
            points += added;
            bytes += values_bytes(&c.values) * added / c.values.len().max(1);
        }
        // Columns the batch has no value for: absent in the new rows.
        if in_batch < self.columns.len() {
            for (m, col) in self.columns.iter_mut() {
                if !batch.columns.iter().any(|c| c.measurement == *m) {
                    col.present_mut(old).resize(rows_now, false);
                }
            }
        }
        (bytes, points)
    }

    /// Sorted, de-duplicated points of one column in `range`, without
    /// touching `self`: the column's present rows, last write winning.
    pub(crate) fn run(&self, measurement: &str, range: TimeRange) -> Option<SeriesBatch> {
        let col = self.columns.get(measurement)?;
        if self.is_sorted() {
            let a = self.times.partition_point(|t| *t < range.start);
            let b = self.times.partition_point(|t| *t <= range.end);
            let Some(present) = &col.present else {
                return Some(SeriesBatch { times: self.times[a..b].to_vec(), values: col.values.slice(a..b) });
            };
            let first = present[..a].iter().filter(|p| **p).count();
            let times: Vec<i64> = (a..b).filter(|&i| present[i]).map(|i| self.times[i]).collect();
            let values = col.values.slice(first..first + times.len());
            return Some(SeriesBatch { times, values });
        }
        let mut times = Vec::new();
        let mut idx = Vec::new();
        let mut v = 0;
        for (i, t) in self.times.iter().enumerate() {
            if col.is_present(i) {
                if range.contains(*t) {
                    times.push(*t);
                    idx.push(v);
                }
                v += 1;
            }
        }
        Some(sort_dedup(&times, &take(&col.values, &idx)))
    }

    /// The rows sorted by time and de-duplicated: on equal times each
    /// column keeps its last written value (a NULL never overwrites).
    pub(crate) fn sorted(&self) -> Cow<'_, AlignedBuf> {
        if self.is_sorted() {
            return Cow::Borrowed(self);
        }
        let n = self.times.len();
        let mut order: Vec<usize> = (0..n).collect();
        // Stable: equal times stay in write order, so the last one is the newest.
        order.sort_by_key(|&i| self.times[i]);
        // The groups of equal times, as ranges of `order`.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        for k in 1..=n {
            if k == n || self.times[order[k]] != self.times[order[start]] {
                groups.push((start, k));
                start = k;
            }
        }
        let times: Vec<i64> = groups.iter().map(|&(a, _)| self.times[order[a]]).collect();
        let columns = self
            .columns
            .iter()
            .map(|(m, col)| {
                // The value index of each present row.
                let mut value_of = vec![usize::MAX; n];
                let mut v = 0;
                for (i, slot) in value_of.iter_mut().enumerate() {
                    if col.is_present(i) {
                        *slot = v;
                        v += 1;
                    }
                }
                let mut idx = Vec::with_capacity(groups.len());
                let mut present = Vec::with_capacity(groups.len());
                for &(a, b) in &groups {
                    match order[a..b].iter().rev().find(|&&i| col.is_present(i)) {
                        Some(&i) => {
                            idx.push(value_of[i]);
                            present.push(true);
                        }
                        None => present.push(false),
                    }
                }
                let full = idx.len() == groups.len();
                let sorted = AlignedColumn { data_type: col.data_type, values: take(&col.values, &idx), present: (!full).then_some(present) };
                (m.clone(), sorted)
            })
            .collect();
        Cow::Owned(AlignedBuf { sorted_len: times.len(), times, columns })
    }

    /// Remove one column's points in `range`; rows left without any value go.
    /// Returns the points removed.
    fn delete(&mut self, measurement: &str, range: TimeRange) -> usize {
        let rows = self.times.len();
        let Some(col) = self.columns.get_mut(measurement) else { return 0 };
        let hit: Vec<usize> = (0..rows).filter(|&i| range.contains(self.times[i]) && col.is_present(i)).collect();
        if hit.is_empty() {
            return 0;
        }
        let mut keep_values = Vec::with_capacity(col.values.len());
        let mut v = 0;
        let mut h = hit.iter().peekable();
        for i in 0..rows {
            if col.is_present(i) {
                if h.peek() == Some(&&i) {
                    h.next();
                } else {
                    keep_values.push(v);
                }
                v += 1;
            }
        }
        col.values = take(&col.values, &keep_values);
        let present = col.present_mut(rows);
        for &i in &hit {
            present[i] = false;
        }
        // Rows no column has a value in any more.
        let live: Vec<usize> = (0..rows).filter(|&i| self.columns.values().any(|c| c.is_present(i))).collect();
        if live.len() < rows {
            self.sorted_len = live.iter().take_while(|&&i| i < self.sorted_len).count();
            self.times = live.iter().map(|&i| self.times[i]).collect();
            for c in self.columns.values_mut() {
                if let Some(p) = &c.present {
                    c.present = Some(live.iter().map(|&i| p[i]).collect());
                }
            }
        }
        hit.len()
    }

    /// Sort and de-duplicate in place (for a working memtable being read).
    fn normalize(&mut self) {
        if !self.is_sorted() {
            *self = self.sorted().into_owned();
        }
    }

    /// The time column (sorted once [`AlignedBuf::sorted`]).
    pub(crate) fn times(&self) -> &[i64] {
        &self.times
    }

    /// The measurements' columns.
    pub(crate) fn columns(&self) -> impl Iterator<Item = (&str, &AlignedColumn)> {
        self.columns.iter().map(|(m, c)| (m.as_str(), c))
    }
}

/// One device's unflushed points.
#[derive(Debug, Clone)]
pub(crate) enum DeviceBuf {
    /// Each measurement with its own times.
    Plain(HashMap<String, SeriesBuf>),
    /// Measurements sharing one time column.
    Aligned(AlignedBuf),
}

impl DeviceBuf {
    fn new(aligned: bool) -> Self {
        if aligned {
            DeviceBuf::Aligned(AlignedBuf::default())
        } else {
            DeviceBuf::Plain(HashMap::new())
        }
    }

    pub(crate) fn aligned(&self) -> bool {
        matches!(self, DeviceBuf::Aligned(_))
    }

    /// Whether no measurement holds a point.
    fn is_empty(&self) -> bool {
        match self {
            DeviceBuf::Plain(series) => series.values().all(|s| s.len() == 0),
            DeviceBuf::Aligned(rows) => rows.times.is_empty(),
        }
    }

    /// The type of a measurement and how many points it holds.
    fn series_state(&self, measurement: &str) -> Option<(DataType, usize)> {
        match self {
            DeviceBuf::Plain(series) => series.get(measurement).map(|s| (s.data_type, s.len())),
            DeviceBuf::Aligned(rows) => rows.columns.get(measurement).map(|c| (c.data_type, c.len())),
        }
    }

    /// Latest time held by any series.
    pub(crate) fn max_time(&self) -> Option<i64> {
        match self {
            DeviceBuf::Plain(series) => series.values().filter_map(|s| latest_time(&s.times, s.sorted_len)).max(),
            DeviceBuf::Aligned(rows) => latest_time(&rows.times, rows.sorted_len),
        }
    }
}

/// Points of one kind (sequence or unsequence) of one generation.
#[derive(Debug, Default, Clone)]
pub(crate) struct MemTable {
    pub(crate) devices: HashMap<String, DeviceBuf>,
    /// Bytes charged to the memory budget.
    pub(crate) bytes: usize,
    pub(crate) points: usize,
}

/// Which rows of a batch go to a memtable.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rows<'a> {
    All,
    Selected(&'a [bool]),
}

/// A batch handed to a memtable: shared (its rows are copied in) or lent
/// by a caller done with it, whose vectors the memtable takes as they are
/// where it can hold them so ([`AlignedBuf::adopt`], [`SeriesBuf::adopt`]):
/// a bulk load's batches then cost no copy and no fresh pages.
pub(crate) enum Incoming<'a> {
    Shared(&'a WriteBatch),
    /// Left empty of whatever vectors were taken.
    Owned(&'a mut WriteBatch),
}

impl Incoming<'_> {
    pub(crate) fn get(&self) -> &WriteBatch {
        match self {
            Incoming::Shared(b) => b,
            Incoming::Owned(b) => b,
        }
    }

    pub(crate) fn reborrow(&mut self) -> Incoming<'_> {
        match self {
            Incoming::Shared(b) => Incoming::Shared(b),
            Incoming::Owned(b) => Incoming::Owned(b),
        }
    }
}

impl MemTable {
    pub(crate) fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// Whether `batch` can be appended: series types and the aligned flag
    /// must agree with what this memtable already holds.
    pub(crate) fn check(&self, batch: &WriteBatch) -> Result<()> {
        let Some(dev) = self.devices.get(&batch.device) else {
            return Ok(());
        };
        if dev.aligned() != batch.aligned && !dev.is_empty() {
            return Err(Error::AlignmentMismatch { device: batch.device.clone(), aligned: dev.aligned() });
        }
        for c in &batch.columns {
            if let Some((data_type, len)) = dev.series_state(&c.measurement) {
                if data_type != c.data_type && len > 0 {
                    return Err(Error::TypeMismatch { series: format!("{}.{}", batch.device, c.measurement), expected: data_type, got: c.data_type });
                }
            }
        }
        Ok(())
    }

    /// Append the selected rows of `batch` (checked with [`Self::check`]);
    /// an owned batch's vectors are taken where they can be held as they
    /// are. Returns the bytes added.
    pub(crate) fn insert(&mut self, batch: Incoming<'_>, rows: Rows<'_>) -> usize {
        let b = batch.get();
        // Look up before inserting: the common case (a known device and
        // series) allocates no key.
        if !self.devices.contains_key(b.device.as_str()) {
            self.devices.insert(b.device.clone(), DeviceBuf::new(b.aligned));
        }
        let Some(dev) = self.devices.get_mut(b.device.as_str()) else { return 0 };
        if dev.aligned() != b.aligned && dev.is_empty() {
            // A device holding no point (all deleted) may change alignment;
            // one holding points cannot ([`Self::check`]).
            *dev = DeviceBuf::new(b.aligned);
        }
        let (added, points) = match (dev, batch, rows) {
            (DeviceBuf::Aligned(buf), Incoming::Owned(owned), Rows::All) => match buf.adopt(owned) {
                Some(added) => added,
                None => buf.append(owned, Rows::All),
            },
            (DeviceBuf::Aligned(buf), batch, rows) => buf.append(batch.get(), rows),
            (DeviceBuf::Plain(series), batch, rows) => insert_plain(series, batch, rows),
        };
        self.bytes += added;
        self.points += points;
        added
    }

    /// Remove the points of the listed series in `range`.
    pub(crate) fn delete(&mut self, device: &str, measurement: &str, range: TimeRange) {
        match self.devices.get_mut(device) {
            Some(DeviceBuf::Plain(series)) => {
                if let Some(s) = series.get_mut(measurement) {
                    let before = s.len();
                    s.delete(range);
                    self.points -= before - s.len();
                }
            }
            Some(DeviceBuf::Aligned(rows)) => self.points -= rows.delete(measurement, range),
            None => {}
        }
    }

    /// How many points a series holds (before de-duplication), and times
    /// that enclose them where a sorted buffer tells without a scan (the
    /// device's rows for an aligned column); `None`: anywhere. Cheap: the
    /// planner asks it under the engine's lock.
    pub(crate) fn series_extent(&self, device: &str, measurement: &str) -> Option<(usize, Option<(i64, i64)>)> {
        match self.devices.get(device)? {
            DeviceBuf::Plain(series) => series.get(measurement).map(|s| (s.len(), s.known_span())),
            DeviceBuf::Aligned(rows) => Some((rows.column(measurement)?.len(), rows.known_span())),
        }
    }

    /// The type of a series and its sorted, de-duplicated points in
    /// `range`, without touching `self`.
    pub(crate) fn run(&self, device: &str, measurement: &str, range: TimeRange) -> Option<(DataType, SeriesBatch)> {
        match self.devices.get(device)? {
            DeviceBuf::Plain(series) => series.get(measurement).map(|s| (s.data_type, s.run(range))),
            DeviceBuf::Aligned(rows) => Some((rows.column(measurement)?.data_type, rows.run(measurement, range)?)),
        }
    }

    /// Sort a series (an aligned device: all its rows) in place and return
    /// its type and points in `range`.
    pub(crate) fn read_normalized(&mut self, device: &str, measurement: &str, range: TimeRange) -> Option<(DataType, SeriesBatch)> {
        match self.devices.get_mut(device)? {
            DeviceBuf::Plain(series) => {
                let s = series.get_mut(measurement)?;
                s.normalize();
                Some((s.data_type, s.run(range)))
            }
            DeviceBuf::Aligned(rows) => {
                rows.column(measurement)?;
                rows.normalize();
                Some((rows.column(measurement)?.data_type, rows.run(measurement, range)?))
            }
        }
    }
}

/// Append the selected rows of `batch` to a plain device's series (an
/// owned batch's value vectors taken by series holding no point).
/// Returns (bytes added, points added).
fn insert_plain(series_map: &mut HashMap<String, SeriesBuf>, mut batch: Incoming<'_>, rows: Rows<'_>) -> (usize, usize) {
    let mut added = 0;
    let mut points = 0;
    let columns = batch.get().columns.len();
    for k in 0..columns {
        let adoptable = {
            let b = batch.get();
            let c = &b.columns[k];
            matches!(rows, Rows::All)
                && c.validity.is_none()
                && !b.times.is_empty()
                && series_map.get(c.measurement.as_str()).is_none_or(|s| s.len() == 0)
        };
        if let (true, Incoming::Owned(owned)) = (adoptable, &mut batch) {
            // Every row has a value and the series holds none: it takes
            // the values (the columns share the times: the last takes them).
            let times = if k + 1 == columns { std::mem::take(&mut owned.times) } else { owned.times.clone() };
            let c = &mut owned.columns[k];
            let values = std::mem::replace(&mut c.values, Values::empty(c.data_type));
            let n = times.len();
            let series = series_map.entry(c.measurement.clone()).or_insert_with(|| {
                added += SERIES_OVERHEAD_BYTES + c.measurement.len();
                SeriesBuf::new(c.data_type)
            });
            *series = SeriesBuf::new(c.data_type);
            added += series.adopt(times, values);
            points += n;
            continue;
        }
        let b = batch.get();
        let c = &b.columns[k];
        // The common case (every row, no NULL) appends straight from the batch.
        let selected;
        let (times, values) = match (rows, &c.validity) {
            (Rows::All, None) => (b.times.as_slice(), &c.values),
            _ => {
                selected = select(&b.times, c, rows);
                (selected.0.as_slice(), &selected.1)
            }
        };
        if times.is_empty() {
            continue;
        }
        points += times.len();
        // One lookup for a known series (the common case); a key is
        // allocated only for a new one.
        if let Some(series) = series_map.get_mut(c.measurement.as_str()) {
            if series.data_type != c.data_type {
                // Only an emptied series (all deleted) can change type.
                *series = SeriesBuf::new(c.data_type);
            }
            added += series.append(times, values);
        } else {
            let mut series = SeriesBuf::new(c.data_type);
            added += SERIES_OVERHEAD_BYTES + c.measurement.len() + series.append(times, values);
            series_map.insert(c.measurement.clone(), series);
        }
    }
    (added, points)
}

/// `v` without more than an eighth of spare capacity (a buffer adopted
/// from a bulk load may have been grown by doubling).
fn fitted<T>(mut v: Vec<T>) -> Vec<T> {
    if v.capacity() - v.len() > v.len() / 8 {
        v.shrink_to_fit();
    }
    v
}

fn fitted_values(values: Values) -> Values {
    match values {
        Values::Boolean(v) => Values::Boolean(fitted(v)),
        Values::Int32(v) => Values::Int32(fitted(v)),
        Values::Int64(v) => Values::Int64(fitted(v)),
        Values::Float(v) => Values::Float(fitted(v)),
        Values::Double(v) => Values::Double(fitted(v)),
        Values::Binary(v) => Values::Binary(fitted(v)),
    }
}

/// The times and present values of `column` in the selected rows.
fn select(times: &[i64], column: &Column, rows: Rows<'_>) -> (Vec<i64>, Values) {
    match (rows, &column.validity) {
        (Rows::All, None) => (times.to_vec(), column.values.clone()),
        (rows, validity) => {
            let mut ts = Vec::with_capacity(times.len());
            let mut idx = Vec::with_capacity(times.len());
            let mut v = 0;
            for (i, t) in times.iter().enumerate() {
                let present = validity.as_ref().is_none_or(|b| b[i]);
                let wanted = match rows {
                    Rows::All => true,
                    Rows::Selected(sel) => sel[i],
                };
                if present && wanted {
                    ts.push(*t);
                    idx.push(v);
                }
                if present {
                    v += 1;
                }
            }
            (ts, take(&column.values, &idx))
        }
    }
}


/// The latest of `times` (the last when all `sorted_len` are sorted).
fn latest_time(times: &[i64], sorted_len: usize) -> Option<i64> {
    if sorted_len == times.len() {
        times.last().copied()
    } else {
        times.iter().copied().max()
    }
}

/// The first and last of `times` when its first `sorted_len` are all of
/// it (sorted); `None` when empty or unsorted.
fn sorted_span(times: &[i64], sorted_len: usize) -> Option<(i64, i64)> {
    (sorted_len == times.len()).then(|| Some((*times.first()?, *times.last()?))).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsfile::Value;

    #[test]
    fn nulls_do_not_overwrite_and_last_write_wins() {
        let mut m = MemTable::default();
        let b1 = WriteBatch::new("root.d", true, vec![1, 2])
            .with_column(Column::full("a", DataType::Int64, Values::Int64(vec![10, 20])));
        let b2 = WriteBatch::new("root.d", true, vec![2, 1])
            .with_column(Column::from_options("a", DataType::Int64, &[Some(Value::Int64(21)), None]).unwrap());
        m.check(&b1).unwrap();
        m.insert(Incoming::Shared(&b1), Rows::All);
        m.insert(Incoming::Shared(&b2), Rows::All);
        let (_, run) = m.run("root.d", "a", TimeRange::ALL).unwrap();
        assert_eq!(run.times, vec![1, 2]);
        assert_eq!(run.values, Values::Int64(vec![10, 21]));
        let bad = WriteBatch::new("root.d", true, vec![3]).with_column(Column::full("a", DataType::Double, Values::Double(vec![1.0])));
        assert!(matches!(m.check(&bad), Err(Error::TypeMismatch { .. })));
    }

    #[test]
    fn an_aligned_device_keeps_one_time_column_and_each_columns_last_write() {
        let mut m = MemTable::default();
        let b1 = WriteBatch::new("root.a", true, vec![1, 2, 3])
            .with_column(Column::full("x", DataType::Int64, Values::Int64(vec![10, 20, 30])))
            .with_column(Column::full("y", DataType::Double, Values::Double(vec![1.0, 2.0, 3.0])));
        // Late rows: time 2 again (x NULL keeps 20, y overwritten), a row with
        // no value at all (not kept), and a new column z.
        let b2 = WriteBatch::new("root.a", true, vec![2, 0, 4])
            .with_column(Column::from_options("x", DataType::Int64, &[None, None, Some(Value::Int64(40))]).unwrap())
            .with_column(Column::from_options("y", DataType::Double, &[Some(Value::Double(2.5)), None, None]).unwrap())
            .with_column(Column::from_options("z", DataType::Int32, &[None, None, Some(Value::Int32(7))]).unwrap());
        m.insert(Incoming::Shared(&b1), Rows::All);
        m.insert(Incoming::Shared(&b2), Rows::All);
        let Some(DeviceBuf::Aligned(rows)) = m.devices.get("root.a") else { panic!("not aligned") };
        assert_eq!(rows.times, vec![1, 2, 3, 2, 4], "one time column; the row without values is not kept");
        assert_eq!(m.points, 6 + 3);
        let run = |m: &MemTable, c: &str| m.run("root.a", c, TimeRange::ALL).unwrap().1;
        assert_eq!(run(&m, "x"), SeriesBatch { times: vec![1, 2, 3, 4], values: Values::Int64(vec![10, 20, 30, 40]) });
        assert_eq!(run(&m, "y"), SeriesBatch { times: vec![1, 2, 3], values: Values::Double(vec![1.0, 2.5, 3.0]) });
        assert_eq!(run(&m, "z"), SeriesBatch { times: vec![4], values: Values::Int32(vec![7]) });
        // Sorted in place, the same points.
        let (_, y) = m.read_normalized("root.a", "y", TimeRange::new(2, 3)).unwrap();
        assert_eq!(y, SeriesBatch { times: vec![2, 3], values: Values::Double(vec![2.5, 3.0]) });
        let Some(DeviceBuf::Aligned(rows)) = m.devices.get("root.a") else { panic!("not aligned") };
        assert_eq!(rows.times, vec![1, 2, 3, 4]);
        assert_eq!(run(&m, "x").times, vec![1, 2, 3, 4]);
        // Deleting z's only point and x, y at 4 leaves no row at 4.
        m.delete("root.a", "z", TimeRange::ALL);
        m.delete("root.a", "x", TimeRange::new(4, 4));
        let Some(DeviceBuf::Aligned(rows)) = m.devices.get("root.a") else { panic!("not aligned") };
        assert_eq!(rows.times, vec![1, 2, 3]);
        assert_eq!(m.devices["root.a"].max_time(), Some(3));
        assert_eq!(run(&m, "z").times, Vec::<i64>::new());
        assert_eq!(run(&m, "x"), SeriesBatch { times: vec![1, 2, 3], values: Values::Int64(vec![10, 20, 30]) });
    }

    /// Every series' points and the memtable's byte and point counts, to
    /// compare two memtables.
    fn contents(m: &MemTable) -> (usize, usize, Vec<(String, String, SeriesBatch)>) {
        let mut out = Vec::new();
        for (d, dev) in &m.devices {
            let names: Vec<String> = match dev {
                DeviceBuf::Plain(series) => series.keys().cloned().collect(),
                DeviceBuf::Aligned(rows) => rows.columns.keys().cloned().collect(),
            };
            for n in names {
                let (_, run) = m.run(d, &n, TimeRange::ALL).unwrap();
                out.push((d.clone(), n, run));
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        (m.bytes, m.points, out)
    }

    #[test]
    fn batches_taken_as_they_are_hold_what_copied_ones_do() {
        let full = |times: Vec<i64>| Column::full("x", DataType::Int64, Values::Int64(times.iter().map(|t| t * 10).collect()));
        let batches = |aligned: bool| {
            vec![
                // Into an empty buffer: taken (unsorted, so not marked sorted).
                WriteBatch::new("root.d", aligned, vec![3, 1, 2]).with_column(full(vec![3, 1, 2])).with_column(
                    Column::from_options("y", DataType::Double, &[Some(Value::Double(0.5)), None, Some(Value::Double(2.5))]).unwrap(),
                ),
                // Into a buffer with rows: copied.
                WriteBatch::new("root.d", aligned, vec![4, 1]).with_column(full(vec![4, 1])),
                // Another device, sorted, every value: taken.
                WriteBatch::new("root.e", aligned, vec![7, 8, 9]).with_column(full(vec![7, 8, 9])),
                // A row without any value is not kept: copied.
                WriteBatch::new("root.f", aligned, vec![1, 2])
                    .with_column(Column::from_options("x", DataType::Int64, &[None, Some(Value::Int64(2))]).unwrap()),
            ]
        };
        for aligned in [true, false] {
            let mut shared = MemTable::default();
            let mut owned = MemTable::default();
            for (b, mut o) in batches(aligned).iter().zip(batches(aligned)) {
                shared.insert(Incoming::Shared(b), Rows::All);
                owned.insert(Incoming::Owned(&mut o), Rows::All);
            }
            assert_eq!(contents(&owned), contents(&shared), "aligned {aligned}");
            assert_eq!(owned.devices["root.d"].max_time(), Some(4));
            assert_eq!(owned.series_extent("root.e", "x"), Some((3, Some((7, 9)))));
            assert_eq!(owned.series_extent("root.d", "x").map(|e| e.1), Some(None), "unsorted rows have no known span");
        }
    }

    #[test]
    fn selected_rows_only_and_deletes() {
        let mut m = MemTable::default();
        let b = WriteBatch::new("root.d", false, vec![5, 6, 7])
            .with_column(Column::full("a", DataType::Int32, Values::Int32(vec![5, 6, 7])));
        m.insert(Incoming::Shared(&b), Rows::Selected(&[true, false, true]));
        m.delete("root.d", "a", TimeRange::new(7, 7));
        let (_, run) = m.read_normalized("root.d", "a", TimeRange::ALL).unwrap();
        assert_eq!(run.times, vec![5]);
        assert_eq!(m.points, 1);
    }
}

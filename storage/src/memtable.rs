//! Memtables: the points of one generation not yet flushed, per device and
//! series, appended in write order. Sorting (last write wins on equal time)
//! happens when a series is read or flushed, so appends stay cheap.
//! A NULL is never stored: it leaves whatever value the series has.

use std::collections::HashMap;

use tsfile::{DataType, SeriesBatch, TimeRange, Values};

use crate::batch::{values_bytes, Column, WriteBatch};
use crate::error::{Error, Result};
use crate::run::{concat, merge, remove_ranges, sort_dedup, take, trim, RankedRun};

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

    /// Earliest and latest time held (unsorted buffers are scanned).
    pub(crate) fn time_span(&self) -> Option<(i64, i64)> {
        if self.times.is_empty() {
            return None;
        }
        if self.is_sorted() {
            return Some((self.times[0], self.times[self.times.len() - 1]));
        }
        let min = self.times.iter().copied().min()?;
        let max = self.times.iter().copied().max()?;
        Some((min, max))
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

/// One device's series.
#[derive(Debug, Clone)]
pub(crate) struct DeviceBuf {
    pub(crate) aligned: bool,
    pub(crate) series: HashMap<String, SeriesBuf>,
}

impl DeviceBuf {
    /// Latest time held by any series.
    pub(crate) fn max_time(&self) -> Option<i64> {
        self.series.values().filter_map(|s| s.time_span().map(|(_, e)| e)).max()
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
        if dev.aligned != batch.aligned && !dev.series.values().all(|s| s.len() == 0) {
            return Err(Error::AlignmentMismatch { device: batch.device.clone(), aligned: dev.aligned });
        }
        for c in &batch.columns {
            if let Some(s) = dev.series.get(&c.measurement) {
                if s.data_type != c.data_type && s.len() > 0 {
                    return Err(Error::TypeMismatch {
                        series: format!("{}.{}", batch.device, c.measurement),
                        expected: s.data_type,
                        got: c.data_type,
                    });
                }
            }
        }
        Ok(())
    }

    /// Append the selected rows of `batch` (checked with [`Self::check`]).
    /// Returns the bytes added.
    pub(crate) fn insert(&mut self, batch: &WriteBatch, rows: Rows<'_>) -> usize {
        let mut added = 0;
        let mut points = 0;
        // Look up before inserting: the common case (a known device and
        // series) allocates no key.
        if !self.devices.contains_key(batch.device.as_str()) {
            self.devices.insert(batch.device.clone(), DeviceBuf { aligned: batch.aligned, series: HashMap::new() });
        }
        let Some(dev) = self.devices.get_mut(batch.device.as_str()) else { return 0 };
        dev.aligned = batch.aligned;
        for c in &batch.columns {
            // The common case (every row, no NULL) appends straight from the batch.
            let selected;
            let (times, values) = match (rows, &c.validity) {
                (Rows::All, None) => (batch.times.as_slice(), &c.values),
                _ => {
                    selected = select(&batch.times, c, rows);
                    (selected.0.as_slice(), &selected.1)
                }
            };
            if times.is_empty() {
                continue;
            }
            points += times.len();
            if !dev.series.contains_key(c.measurement.as_str()) {
                added += SERIES_OVERHEAD_BYTES + c.measurement.len();
                dev.series.insert(c.measurement.clone(), SeriesBuf::new(c.data_type));
            }
            let Some(series) = dev.series.get_mut(c.measurement.as_str()) else { continue };
            if series.data_type != c.data_type {
                // Only an emptied series (all deleted) can change type.
                *series = SeriesBuf::new(c.data_type);
            }
            added += series.append(times, values);
        }
        self.bytes += added;
        self.points += points;
        added
    }

    /// Remove the points of the listed series in `range`.
    pub(crate) fn delete(&mut self, device: &str, measurement: &str, range: TimeRange) {
        if let Some(s) = self.devices.get_mut(device).and_then(|d| d.series.get_mut(measurement)) {
            let before = s.len();
            s.delete(range);
            self.points -= before - s.len();
        }
    }

    pub(crate) fn series(&self, device: &str, measurement: &str) -> Option<&SeriesBuf> {
        self.devices.get(device)?.series.get(measurement)
    }

    /// Sort a series in place and return its points in `range`.
    pub(crate) fn read_normalized(&mut self, device: &str, measurement: &str, range: TimeRange) -> Option<SeriesBatch> {
        let s = self.devices.get_mut(device)?.series.get_mut(measurement)?;
        s.normalize();
        Some(s.run(range))
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

/// The points of a memtable series with deletions recorded after it was
/// sealed applied.
pub(crate) fn run_with_deletes(s: &SeriesBuf, range: TimeRange, deleted: &[TimeRange]) -> SeriesBatch {
    remove_ranges(trim(s.run(range), range), deleted)
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
        m.insert(&b1, Rows::All);
        m.insert(&b2, Rows::All);
        let run = m.series("root.d", "a").unwrap().run(TimeRange::ALL);
        assert_eq!(run.times, vec![1, 2]);
        assert_eq!(run.values, Values::Int64(vec![10, 21]));
        let bad = WriteBatch::new("root.d", true, vec![3]).with_column(Column::full("a", DataType::Double, Values::Double(vec![1.0])));
        assert!(matches!(m.check(&bad), Err(Error::TypeMismatch { .. })));
    }

    #[test]
    fn selected_rows_only_and_deletes() {
        let mut m = MemTable::default();
        let b = WriteBatch::new("root.d", false, vec![5, 6, 7])
            .with_column(Column::full("a", DataType::Int32, Values::Int32(vec![5, 6, 7])));
        m.insert(&b, Rows::Selected(&[true, false, true]));
        m.delete("root.d", "a", TimeRange::new(7, 7));
        let run = m.read_normalized("root.d", "a", TimeRange::ALL).unwrap();
        assert_eq!(run.times, vec![5]);
        assert_eq!(m.points, 1);
    }
}

//! Streaming reads of a device: rows of several measurements aligned by
//! time, produced one time slice at a time so memory is bounded by the
//! slice, not by the range asked for.
//!
//! Each slice is read with the same merge as every other read (sources by
//! version, newest wins, tombstones applied) from a view taken under the
//! engine lock, so every slice is consistent on its own. Slice widths adapt
//! to the data's density: they start from the sources' point counts and
//! halve or double to keep a slice near `batch_rows` rows. Files and pages
//! whose statistics lie outside a slice are skipped by the reader, so a
//! page is decoded once, or twice when it straddles a slice edge.

use std::collections::VecDeque;
use std::sync::Arc;

use tsfile::{AlignedBatch, ColumnBatch, TimeRange, Values};

use crate::batch::SeriesKey;
use crate::engine::Inner;
use crate::error::Result;
use crate::read;

/// Rows per batch when a request does not say.
pub const DEFAULT_BATCH_ROWS: usize = 8192;
/// The largest batch a scan produces, whatever the request says.
pub const MAX_BATCH_ROWS: usize = 1 << 20;

/// Which way a scan walks time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanOrder {
    #[default]
    Ascending,
    Descending,
}

/// What to read of one device.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub device: String,
    /// The columns of the output, in order. A row exists at every time at
    /// which at least one of them has a point.
    pub measurements: Vec<String>,
    /// Measurements whose points also make rows, though their values are
    /// not wanted: batches have columns for `measurements` only, and the
    /// values of these are not decoded where that can be avoided.
    pub row_only: Vec<String>,
    /// Disjoint inclusive ranges in ascending order; empty reads nothing.
    pub ranges: Vec<TimeRange>,
    pub order: ScanOrder,
    /// Stop after this many rows.
    pub limit: Option<usize>,
    /// Rows per batch at most (clamped to 1..=[`MAX_BATCH_ROWS`]).
    pub batch_rows: usize,
}

impl ScanRequest {
    pub fn new(device: impl Into<String>, measurements: Vec<String>, range: TimeRange) -> Self {
        ScanRequest {
            device: device.into(),
            measurements,
            row_only: Vec::new(),
            ranges: vec![range],
            order: ScanOrder::Ascending,
            limit: None,
            batch_rows: DEFAULT_BATCH_ROWS,
        }
    }
}

/// An iterator of [`AlignedBatch`]es (one column per requested measurement)
/// in the requested order. Blocking: run it off async workers.
pub struct DeviceScan {
    inner: Arc<Inner>,
    /// The requested measurements, then the row-only ones.
    keys: Vec<SeriesKey>,
    /// How many of `keys` are output columns.
    columns: usize,
    order: ScanOrder,
    remaining: Option<usize>,
    batch_rows: usize,
    /// Ranges still to read, in reading order, clipped to where data is.
    ranges: VecDeque<TimeRange>,
    /// Width of the next slice, in time units.
    width: i64,
    ready: VecDeque<AlignedBatch>,
}

impl std::fmt::Debug for DeviceScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceScan").field("keys", &self.keys).field("ranges", &self.ranges).finish_non_exhaustive()
    }
}

impl DeviceScan {
    pub(crate) fn new(inner: Arc<Inner>, request: ScanRequest) -> Result<DeviceScan> {
        let row_only = request.row_only.iter().filter(|m| !request.measurements.contains(m));
        let keys: Vec<SeriesKey> = request.measurements.iter().chain(row_only).map(|m| SeriesKey::new(request.device.clone(), m.clone())).collect();
        let batch_rows = request.batch_rows.clamp(1, MAX_BATCH_ROWS);
        let mut scan = DeviceScan {
            inner,
            keys,
            columns: request.measurements.len(),
            order: request.order,
            remaining: request.limit,
            batch_rows,
            ranges: VecDeque::new(),
            width: 1,
            ready: VecDeque::new(),
        };
        let Some(hull) = hull(&request.ranges) else { return Ok(scan) };
        if scan.keys.is_empty() || request.limit == Some(0) {
            return Ok(scan);
        }
        // Where the data is, and how dense: from file spans and statistics
        // and the memtables' runs; nothing is decoded.
        let mut extent: Option<(i64, i64)> = None;
        let mut densest = 0u64;
        for key in &scan.keys {
            let view = scan.inner.view(key, hull)?;
            let (span, count) = read::extent(&view, &scan.inner.cache)?;
            if let Some((lo, hi)) = span {
                extent = Some(extent.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
            densest = densest.max(count);
        }
        let Some((lo, hi)) = extent else { return Ok(scan) };
        let mut ranges: VecDeque<TimeRange> = request
            .ranges
            .iter()
            .map(|r| TimeRange::new(r.start.max(lo), r.end.min(hi)))
            .filter(|r| r.start <= r.end)
            .collect();
        if scan.order == ScanOrder::Descending {
            ranges = ranges.into_iter().rev().collect();
        }
        let span = (i128::from(hi) - i128::from(lo) + 1).max(1);
        let width = span * scan.batch_rows as i128 / i128::from(densest.max(1));
        scan.width = width.clamp(1, i128::from(i64::MAX)) as i64;
        scan.ranges = ranges;
        Ok(scan)
    }

    /// Read the next slice of the current range into `ready`.
    fn read_slice(&mut self) -> Result<bool> {
        let Some(range) = self.ranges.front().copied() else { return Ok(false) };
        let slice = match self.order {
            ScanOrder::Ascending => TimeRange::new(range.start, range.start.saturating_add(self.width - 1).min(range.end)),
            ScanOrder::Descending => TimeRange::new(range.end.saturating_sub(self.width - 1).max(range.start), range.end),
        };
        // The rest of the range after this slice.
        let rest = match self.order {
            ScanOrder::Ascending if slice.end < range.end => Some(TimeRange::new(slice.end + 1, range.end)),
            ScanOrder::Descending if slice.start > range.start => Some(TimeRange::new(range.start, slice.start - 1)),
            _ => None,
        };
        match rest {
            Some(r) => self.ranges[0] = r,
            None => {
                self.ranges.pop_front();
            }
        }
        let views = self.keys.iter().map(|k| self.inner.view(k, slice)).collect::<Result<Vec<_>>>()?;
        let mut batches = match read::scan_aligned_files(&views, self.columns, &self.inner.cache)? {
            Some(batches) => batches,
            None => read::scan_aligned(&views, &self.inner.cache, &self.inner.counters)?,
        };
        // The row-only columns have made their rows.
        for b in &mut batches {
            b.columns.truncate(self.columns);
        }
        let rows: usize = batches.iter().map(|b| b.times.len()).sum();
        // Keep slices near the batch size: the density varies over time.
        if rows > self.batch_rows * 2 && self.width > 1 {
            self.width = (self.width / 2).max(1);
        } else if rows < self.batch_rows / 2 {
            self.width = self.width.saturating_mul(2);
        }
        // Batches come in ascending time order; descending reads them backwards.
        let ordered: Box<dyn Iterator<Item = AlignedBatch>> =
            if self.order == ScanOrder::Descending { Box::new(batches.into_iter().rev().map(reverse)) } else { Box::new(batches.into_iter()) };
        for b in ordered {
            if b.times.len() <= self.batch_rows {
                self.ready.push_back(b);
                continue;
            }
            let mut start = 0;
            while start < b.times.len() {
                let len = self.batch_rows.min(b.times.len() - start);
                self.ready.push_back(slice_rows(&b, start, len));
                start += len;
            }
        }
        Ok(true)
    }
}

impl Iterator for DeviceScan {
    type Item = Result<AlignedBatch>;

    fn next(&mut self) -> Option<Result<AlignedBatch>> {
        if self.remaining == Some(0) {
            return None;
        }
        while self.ready.is_empty() {
            match self.read_slice() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.ranges.clear();
                    return Some(Err(e));
                }
            }
        }
        let mut batch = self.ready.pop_front()?;
        if let Some(left) = self.remaining.as_mut() {
            if batch.times.len() > *left {
                batch = slice_rows(&batch, 0, *left);
            }
            *left -= batch.times.len();
        }
        Some(Ok(batch))
    }
}

/// The smallest range covering all of `ranges`.
fn hull(ranges: &[TimeRange]) -> Option<TimeRange> {
    let start = ranges.iter().map(|r| r.start).min()?;
    let end = ranges.iter().map(|r| r.end).max()?;
    (start <= end).then(|| TimeRange::new(start, end))
}

/// Rows `start..start + len` of a batch.
pub(crate) fn slice_rows(b: &AlignedBatch, start: usize, len: usize) -> AlignedBatch {
    let columns = b
        .columns
        .iter()
        .map(|c| {
            let before = c.validity[..start].iter().filter(|v| **v).count();
            let inside = c.validity[start..start + len].iter().filter(|v| **v).count();
            ColumnBatch { values: c.values.slice(before..before + inside), validity: c.validity[start..start + len].to_vec() }
        })
        .collect();
    AlignedBatch { times: b.times[start..start + len].to_vec(), columns }
}

/// A batch with its rows in the opposite order.
fn reverse(mut b: AlignedBatch) -> AlignedBatch {
    b.times.reverse();
    for c in &mut b.columns {
        c.validity.reverse();
        match &mut c.values {
            Values::Boolean(v) => v.reverse(),
            Values::Int32(v) => v.reverse(),
            Values::Int64(v) => v.reverse(),
            Values::Float(v) => v.reverse(),
            Values::Double(v) => v.reverse(),
            Values::Binary(v) => v.reverse(),
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> AlignedBatch {
        AlignedBatch {
            times: vec![1, 2, 3, 4],
            columns: vec![ColumnBatch { values: Values::Int32(vec![10, 30, 40]), validity: vec![true, false, true, true] }],
        }
    }

    #[test]
    fn slicing_keeps_values_with_their_rows() {
        let s = slice_rows(&batch(), 1, 2);
        assert_eq!(s.times, vec![2, 3]);
        assert_eq!(s.columns[0].values, Values::Int32(vec![30]));
        assert_eq!(s.columns[0].validity, vec![false, true]);
    }

    #[test]
    fn reversing_keeps_values_with_their_rows() {
        let r = reverse(batch());
        assert_eq!(r.times, vec![4, 3, 2, 1]);
        assert_eq!(r.columns[0].values, Values::Int32(vec![40, 30, 10]));
        assert_eq!(r.columns[0].validity, vec![true, true, false, true]);
    }

    #[test]
    fn hull_of_ranges() {
        assert_eq!(hull(&[TimeRange::new(5, 9), TimeRange::new(1, 2)]), Some(TimeRange::new(1, 9)));
        assert_eq!(hull(&[]), None);
    }
}

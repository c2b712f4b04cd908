//! What file metadata alone says of a device's measurements in some time
//! ranges: point and row counts, and min/max where they are exact. Nothing
//! is decoded and no page is read, so a planner may ask at any time.
//!
//! An answer is exact only where every chunk in range lies wholly inside one
//! of the ranges, no two sources overlap (late data, memtables), no
//! tombstone touches a chunk, and no memtable holds points of the series;
//! otherwise the count is an upper bound and min/max are unknown.

use std::sync::Arc;

use tsfile::{DeviceMetadata, Statistics, TimeRange, Value};

use crate::batch::SeriesKey;
use crate::error::Result;
use crate::files::{MetaCache, TsFileResource};
use crate::mods::{deleted_ranges, Deletion};
use crate::read::Acc;

/// A count that is either known or bounded from above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Exact(u64),
    AtMost(u64),
}

impl Bound {
    pub fn value(self) -> u64 {
        match self {
            Bound::Exact(n) | Bound::AtMost(n) => n,
        }
    }

    pub fn is_exact(self) -> bool {
        matches!(self, Bound::Exact(_))
    }
}

/// One measurement's points in the ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnStatistics {
    pub count: Bound,
    /// Smallest and largest value (numbers and STRING), and the first and
    /// last time: set only when `count` is exact and not zero.
    pub min: Option<Value>,
    pub max: Option<Value>,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
}

impl ColumnStatistics {
    pub(crate) fn none() -> ColumnStatistics {
        ColumnStatistics { count: Bound::Exact(0), min: None, max: None, min_time: None, max_time: None }
    }
}

/// A device's rows (times at which any of the asked measurements has a
/// point) and each measurement's points, in the ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStatistics {
    pub rows: Bound,
    /// In the order the measurements were asked.
    pub columns: Vec<ColumnStatistics>,
}

/// The sources of one device, gathered under the engine's lock.
pub(crate) struct Sources {
    pub(crate) files: Vec<(Arc<TsFileResource>, Arc<Vec<Arc<Deletion>>>)>,
    /// Per asked measurement, memtable points that may lie in the ranges.
    pub(crate) mem_points: Vec<u64>,
}

fn touches(ranges: &[TimeRange], s: &Statistics) -> bool {
    ranges.iter().any(|r| r.overlaps(s))
}

fn covered(ranges: &[TimeRange], s: &Statistics) -> bool {
    ranges.iter().any(|r| r.covers(s))
}

fn deleted_in(deleted: &[TimeRange], s: &Statistics) -> bool {
    deleted.iter().any(|d| d.start <= s.end_time && s.start_time <= d.end)
}

/// Whether any two inclusive spans overlap.
fn any_overlap(mut spans: Vec<(i64, i64)>) -> bool {
    spans.sort_unstable();
    spans.windows(2).any(|w| w[1].0 <= w[0].1)
}

/// Statistics of `device`'s `measurements` in `ranges` (disjoint, inclusive,
/// already clipped by TTL) from the gathered sources' metadata.
pub(crate) fn device_statistics(device: &str, measurements: &[String], ranges: &[TimeRange], sources: &Sources, cache: &MetaCache) -> Result<DeviceStatistics> {
    let mut metas: Vec<(Arc<DeviceMetadata>, &[Arc<Deletion>])> = Vec::with_capacity(sources.files.len());
    for (file, mods) in &sources.files {
        if let Some(meta) = file.device_metadata(cache, device)? {
            metas.push((meta, mods.as_slice()));
        }
    }
    let columns: Vec<ColumnStatistics> =
        measurements.iter().zip(&sources.mem_points).map(|(m, &mem)| column(device, m, ranges, &metas, mem)).collect();
    let rows = rows(device, measurements, ranges, sources, &metas, &columns);
    Ok(DeviceStatistics { rows, columns })
}

fn column(device: &str, measurement: &str, ranges: &[TimeRange], metas: &[(Arc<DeviceMetadata>, &[Arc<Deletion>])], mem_points: u64) -> ColumnStatistics {
    let key = SeriesKey::new(device, measurement);
    let mut exact = mem_points == 0;
    let mut upper = mem_points;
    let mut spans = Vec::new();
    let mut acc: Option<Acc> = None;
    for (meta, mods) in metas {
        let Some(ts) = meta.series(measurement) else { continue };
        if !touches(ranges, &ts.statistics) {
            continue;
        }
        let deleted = deleted_ranges(mods, &key);
        let acc = acc.get_or_insert_with(|| Acc::new(ts.data_type));
        exact &= acc.data_type() == ts.data_type;
        for chunk in &ts.chunks {
            let s = &chunk.statistics;
            if s.count == 0 || !touches(ranges, s) {
                continue;
            }
            spans.push((s.start_time, s.end_time));
            upper += s.count;
            if covered(ranges, s) && !deleted_in(&deleted, s) {
                acc.add_stats(s);
            } else {
                exact = false;
            }
        }
    }
    exact &= !any_overlap(spans);
    match acc.map(Acc::finish).filter(|_| exact) {
        Some(a) if a.count > 0 => {
            ColumnStatistics { count: Bound::Exact(a.count), min: a.min, max: a.max, min_time: a.min_time, max_time: a.max_time }
        }
        Some(_) => ColumnStatistics::none(),
        None if exact => ColumnStatistics::none(),
        None => ColumnStatistics { count: Bound::AtMost(upper), ..ColumnStatistics::none() },
    }
}

/// Rows: exact when at most one measurement has points (and every count is
/// exact), or, on an aligned device held in files only, when each time chunk
/// in range has an asked measurement with a value in every row.
fn rows(device: &str, measurements: &[String], ranges: &[TimeRange], sources: &Sources, metas: &[(Arc<DeviceMetadata>, &[Arc<Deletion>])], columns: &[ColumnStatistics]) -> Bound {
    let total: u64 = columns.iter().map(|c| c.count.value()).sum();
    if columns.iter().all(|c| c.count.is_exact()) && columns.iter().filter(|c| c.count.value() > 0).count() <= 1 {
        return Bound::Exact(total);
    }
    if sources.mem_points.iter().any(|&n| n > 0) || !metas.iter().all(|(m, _)| m.aligned) {
        return Bound::AtMost(total);
    }
    aligned_rows(device, measurements, ranges, metas).unwrap_or(Bound::AtMost(total))
}

/// Rows of an aligned device from its time chunks; `None` when a file lacks
/// a time column.
fn aligned_rows(device: &str, measurements: &[String], ranges: &[TimeRange], metas: &[(Arc<DeviceMetadata>, &[Arc<Deletion>])]) -> Option<Bound> {
    let mut exact = true;
    let mut count = 0;
    let mut spans = Vec::new();
    for (meta, mods) in metas {
        let time = meta.time_column()?;
        let deleted: Vec<TimeRange> =
            measurements.iter().flat_map(|m| deleted_ranges(mods, &SeriesKey::new(device, m.as_str()))).collect();
        let asked: Vec<_> = measurements.iter().filter_map(|m| meta.series(m)).collect();
        for (i, tc) in time.chunks.iter().enumerate() {
            let s = &tc.statistics;
            if s.count == 0 || !touches(ranges, s) {
                continue;
            }
            // An asked column with a value in every row of this chunk group
            // (its value chunks sit between this time chunk and the next).
            let group_end = time.chunks.get(i + 1).map_or(u64::MAX, |n| n.offset_of_chunk_header);
            let in_group = |offset: u64| offset > tc.offset_of_chunk_header && offset < group_end;
            let dense = asked.iter().any(|ts| ts.chunks.iter().any(|c| in_group(c.offset_of_chunk_header) && c.statistics.count == s.count));
            spans.push((s.start_time, s.end_time));
            count += s.count;
            exact &= dense && covered(ranges, s) && !deleted_in(&deleted, s);
        }
    }
    Some(if exact && !any_overlap(spans) { Bound::Exact(count) } else { Bound::AtMost(count) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_spans_are_found_in_any_order() {
        assert!(!any_overlap(vec![(5, 9), (1, 4)]));
        assert!(any_overlap(vec![(5, 9), (1, 5)]));
        assert!(any_overlap(vec![(1, 10), (3, 4)]));
        assert!(!any_overlap(Vec::new()));
    }
}

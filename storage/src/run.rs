//! Sorted runs of one series' points (`SeriesBatch`: strictly increasing
//! times and their values) and the operations every read and compaction
//! builds on: sort with last-write-wins, trim to a range, cut out deleted
//! ranges, and merge runs of different ages so the newest value wins.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tsfile::{DataType, SeriesBatch, TimeRange, Values};

use crate::error::{Error, Result};

/// The values at the given positions.
pub(crate) fn take(values: &Values, idx: &[usize]) -> Values {
    match values {
        Values::Binary(v) => Values::Binary(idx.iter().map(|&i| v[i].clone()).collect()),
        Values::Boolean(v) => Values::Boolean(idx.iter().map(|&i| v[i]).collect()),
        Values::Int32(v) => Values::Int32(idx.iter().map(|&i| v[i]).collect()),
        Values::Int64(v) => Values::Int64(idx.iter().map(|&i| v[i]).collect()),
        Values::Float(v) => Values::Float(idx.iter().map(|&i| v[i]).collect()),
        Values::Double(v) => Values::Double(idx.iter().map(|&i| v[i]).collect()),
    }
}

/// Sort points by time, keeping the last-written value of equal times.
/// `times[i]` and row `i` of `values` belong together, in write order.
pub(crate) fn sort_dedup(times: &[i64], values: &Values) -> SeriesBatch {
    if times.windows(2).all(|w| w[0] < w[1]) {
        return SeriesBatch { times: times.to_vec(), values: values.clone() };
    }
    let mut idx: Vec<usize> = (0..times.len()).collect();
    // Stable: equal times stay in write order, so the last one is the newest.
    idx.sort_by_key(|&i| times[i]);
    let mut keep = Vec::with_capacity(idx.len());
    for (k, &i) in idx.iter().enumerate() {
        if idx.get(k + 1).is_none_or(|&j| times[j] != times[i]) {
            keep.push(i);
        }
    }
    SeriesBatch { times: keep.iter().map(|&i| times[i]).collect(), values: take(values, &keep) }
}

/// The points of a sorted run inside `range`.
pub(crate) fn trim(run: SeriesBatch, range: TimeRange) -> SeriesBatch {
    let a = run.times.partition_point(|t| *t < range.start);
    let b = run.times.partition_point(|t| *t <= range.end);
    if a == 0 && b == run.times.len() {
        return run;
    }
    SeriesBatch { times: run.times[a..b].to_vec(), values: run.values.slice(a..b) }
}

/// A sorted run without the points inside any of `deleted`.
pub(crate) fn remove_ranges(run: SeriesBatch, deleted: &[TimeRange]) -> SeriesBatch {
    let hit = |t: i64| deleted.iter().any(|r| r.contains(t));
    let (Some(&first), Some(&last)) = (run.times.first(), run.times.last()) else {
        return run;
    };
    if !deleted.iter().any(|r| r.start <= last && r.end >= first) {
        return run;
    }
    let keep: Vec<usize> = (0..run.times.len()).filter(|&i| !hit(run.times[i])).collect();
    if keep.len() == run.times.len() {
        return run;
    }
    SeriesBatch { times: keep.iter().map(|&i| run.times[i]).collect(), values: take(&run.values, &keep) }
}

/// The data type a column of values can hold, for error messages.
pub(crate) fn physical_name(values: &Values) -> DataType {
    match values {
        Values::Boolean(_) => DataType::Boolean,
        Values::Int32(_) => DataType::Int32,
        Values::Int64(_) => DataType::Int64,
        Values::Float(_) => DataType::Float,
        Values::Double(_) => DataType::Double,
        Values::Binary(_) => DataType::Text,
    }
}

/// A run with its age: a higher rank is newer and wins on equal times.
pub(crate) struct RankedRun {
    pub(crate) rank: u64,
    pub(crate) run: SeriesBatch,
}

/// Merge runs of one series into time order; where several hold the same
/// time, the highest rank wins. Runs that overlap no other pass through
/// untouched, so the common case (disjoint files) copies nothing.
pub(crate) fn merge(series: &str, mut runs: Vec<RankedRun>) -> Result<Vec<SeriesBatch>> {
    runs.retain(|r| !r.run.times.is_empty());
    if let Some(first) = runs.first() {
        let physical = first.run.values.physical();
        if let Some(bad) = runs.iter().find(|r| r.run.values.physical() != physical) {
            return Err(Error::TypeMismatch {
                series: series.to_string(),
                expected: physical_name(&first.run.values),
                got: physical_name(&bad.run.values),
            });
        }
    }
    runs.sort_by_key(|r| (r.run.times[0], r.rank));
    let mut out = Vec::with_capacity(runs.len());
    let mut group: Vec<RankedRun> = Vec::new();
    let mut group_end = i64::MIN;
    for r in runs {
        let (start, end) = (r.run.times[0], r.run.times[r.run.times.len() - 1]);
        if !group.is_empty() && start > group_end {
            out.push(merge_group(std::mem::take(&mut group)));
        }
        group_end = if group.is_empty() { end } else { group_end.max(end) };
        group.push(r);
    }
    if !group.is_empty() {
        out.push(merge_group(group));
    }
    Ok(out)
}

/// Merge overlapping runs (all of one physical type) with a heap.
fn merge_group(mut group: Vec<RankedRun>) -> SeriesBatch {
    if group.len() == 1 {
        return group.pop().map(|r| r.run).unwrap_or_else(|| SeriesBatch { times: Vec::new(), values: Values::Int32(Vec::new()) });
    }
    let total: usize = group.iter().map(|r| r.run.times.len()).sum();
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::with_capacity(group.len());
    let mut cursor = vec![0usize; group.len()];
    for (i, r) in group.iter().enumerate() {
        heap.push(Reverse((r.run.times[0], i)));
    }
    let mut times = Vec::with_capacity(total);
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(total);
    while let Some(Reverse((t, i))) = heap.pop() {
        let mut best = (group[i].rank, i, cursor[i]);
        let advance = |i: usize, heap: &mut BinaryHeap<Reverse<(i64, usize)>>, cursor: &mut Vec<usize>| {
            cursor[i] += 1;
            if let Some(&next) = group[i].run.times.get(cursor[i]) {
                heap.push(Reverse((next, i)));
            }
        };
        advance(i, &mut heap, &mut cursor);
        while let Some(&Reverse((t2, j))) = heap.peek() {
            if t2 != t {
                break;
            }
            heap.pop();
            if group[j].rank >= best.0 {
                best = (group[j].rank, j, cursor[j]);
            }
            advance(j, &mut heap, &mut cursor);
        }
        times.push(t);
        picks.push((best.1, best.2));
    }
    let sources: Vec<&Values> = group.iter().map(|r| &r.run.values).collect();
    SeriesBatch { times, values: gather(&sources, &picks) }
}

/// Build a column from (source, position) picks; all sources share a variant.
fn gather(sources: &[&Values], picks: &[(usize, usize)]) -> Values {
    macro_rules! pick {
        ($variant:ident) => {{
            let vecs: Vec<&[_]> = sources
                .iter()
                .map(|s| match s {
                    Values::$variant(v) => v.as_slice(),
                    _ => &[],
                })
                .collect();
            Values::$variant(picks.iter().filter_map(|&(s, p)| vecs[s].get(p).cloned()).collect())
        }};
    }
    match sources[0] {
        Values::Boolean(_) => pick!(Boolean),
        Values::Int32(_) => pick!(Int32),
        Values::Int64(_) => pick!(Int64),
        Values::Float(_) => pick!(Float),
        Values::Double(_) => pick!(Double),
        Values::Binary(_) => pick!(Binary),
    }
}

/// Concatenate sorted, non-overlapping runs (in time order) into one.
pub(crate) fn concat(runs: Vec<SeriesBatch>, data_type: DataType) -> SeriesBatch {
    let mut iter = runs.into_iter();
    let Some(mut first) = iter.next() else {
        return SeriesBatch { times: Vec::new(), values: Values::empty(data_type) };
    };
    for r in iter {
        first.times.extend_from_slice(&r.times);
        // Same physical type: checked by `merge` before runs get here.
        let _ = first.values.extend_from(&r.values);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(times: &[i64], vals: &[i64]) -> SeriesBatch {
        SeriesBatch { times: times.to_vec(), values: Values::Int64(vals.to_vec()) }
    }

    #[test]
    fn sorting_keeps_the_last_write_of_a_time() {
        let r = sort_dedup(&[5, 1, 5, 3, 1], &Values::Int64(vec![50, 10, 51, 30, 11]));
        assert_eq!(r, run(&[1, 3, 5], &[11, 30, 51]));
    }

    #[test]
    fn newer_runs_win_and_disjoint_runs_pass_through() {
        let out = merge(
            "s",
            vec![
                RankedRun { rank: 0, run: run(&[1, 2, 3], &[1, 2, 3]) },
                RankedRun { rank: 5, run: run(&[2, 4], &[20, 40]) },
                RankedRun { rank: 3, run: run(&[3, 4], &[30, 31]) },
                RankedRun { rank: 0, run: run(&[10, 11], &[10, 11]) },
            ],
        )
        .unwrap();
        assert_eq!(out, vec![run(&[1, 2, 3, 4], &[1, 20, 30, 40]), run(&[10, 11], &[10, 11])]);
    }

    #[test]
    fn deleted_ranges_are_cut_out() {
        let r = remove_ranges(run(&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5]), &[TimeRange::new(2, 3), TimeRange::new(5, 9)]);
        assert_eq!(r, run(&[1, 4], &[1, 4]));
        assert_eq!(trim(run(&[1, 2, 3], &[1, 2, 3]), TimeRange::new(2, 2)), run(&[2], &[2]));
    }
}

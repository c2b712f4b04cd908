//! What callers hand the engine and get back: series keys, write batches,
//! and aggregate results.

use std::collections::HashSet;
use std::fmt;

use tsfile::{DataType, Value, Values};

use crate::error::{Error, Result};

/// One time series: a device path and a measurement under it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The device path, e.g. `root.ln.wf01.wt01`.
    pub device: String,
    /// The measurement name, e.g. `temperature`.
    pub measurement: String,
}

impl SeriesKey {
    pub fn new(device: impl Into<String>, measurement: impl Into<String>) -> Self {
        SeriesKey {
            device: device.into(),
            measurement: measurement.into(),
        }
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.device, self.measurement)
    }
}

/// One measurement's values in a [`WriteBatch`]. `values` holds the present
/// values only, in row order; `validity[i]` says whether row `i` has one
/// (`None`: every row does). A NULL never overwrites a stored value.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub measurement: String,
    pub data_type: DataType,
    pub values: Values,
    pub validity: Option<Vec<bool>>,
}

impl Column {
    /// A column with a value in every row.
    pub fn full(measurement: impl Into<String>, data_type: DataType, values: Values) -> Self {
        Column {
            measurement: measurement.into(),
            data_type,
            values,
            validity: None,
        }
    }

    /// A column from per-row optional values (`None` = NULL).
    pub fn from_options(measurement: impl Into<String>, data_type: DataType, rows: &[Option<Value>]) -> Result<Self> {
        let measurement = measurement.into();
        let mut values = Values::with_capacity(data_type, rows.len());
        let mut validity = Vec::with_capacity(rows.len());
        for v in rows {
            validity.push(v.is_some());
            if let Some(v) = v {
                values
                    .push(v.clone())
                    .map_err(|e| Error::batch("?", format!("{measurement}: {e}")))?;
            }
        }
        let validity = (!validity.iter().all(|v| *v)).then_some(validity);
        Ok(Column {
            measurement,
            data_type,
            values,
            validity,
        })
    }

    pub(crate) fn is_valid(&self, row: usize) -> bool {
        self.validity.as_ref().is_none_or(|v| v[row])
    }
}

/// Rows of one device: a time per row and one column per measurement.
/// Rows need not be in time order; on equal times the later row wins.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBatch {
    pub device: String,
    /// Whether the device is aligned (its measurements share one time column on disk).
    pub aligned: bool,
    pub times: Vec<i64>,
    pub columns: Vec<Column>,
}

impl WriteBatch {
    pub fn new(device: impl Into<String>, aligned: bool, times: Vec<i64>) -> Self {
        WriteBatch {
            device: device.into(),
            aligned,
            times,
            columns: Vec::new(),
        }
    }

    pub fn with_column(mut self, column: Column) -> Self {
        self.columns.push(column);
        self
    }

    pub fn rows(&self) -> usize {
        self.times.len()
    }

    /// Append a copy of `other`'s rows (same device; one type per
    /// measurement, checked by the caller): a column only one side has is
    /// absent in the other side's rows.
    pub(crate) fn append(&mut self, other: &WriteBatch) {
        let (old, added) = (self.times.len(), other.times.len());
        self.times.extend_from_slice(&other.times);
        for c in &mut self.columns {
            if let Some(o) = other.columns.iter().find(|o| o.measurement == c.measurement) {
                match (&mut c.validity, &o.validity) {
                    (None, None) => {}
                    (mine, theirs) => {
                        let v = mine.get_or_insert_with(|| vec![true; old]);
                        match theirs {
                            Some(t) => v.extend_from_slice(t),
                            None => v.resize(old + added, true),
                        }
                    }
                }
                // Same physical type: checked by the caller.
                let _ = c.values.extend_from(&o.values);
            } else {
                c.validity.get_or_insert_with(|| vec![true; old]).resize(old + added, false);
            }
        }
        for o in &other.columns {
            if self.columns.iter().any(|c| c.measurement == o.measurement) {
                continue;
            }
            let mut v = vec![false; old];
            match &o.validity {
                Some(t) => v.extend_from_slice(t),
                None => v.resize(old + added, true),
            }
            self.columns.push(Column { measurement: o.measurement.clone(), data_type: o.data_type, values: o.values.clone(), validity: Some(v) });
        }
    }

    /// Check the batch's shape; a bad batch is rejected whole.
    pub(crate) fn validate(&self) -> Result<()> {
        let n = self.times.len();
        if self.device.is_empty() {
            return Err(Error::batch(&self.device, "empty device path"));
        }
        // Few columns (the usual batch) are compared pairwise, without a set.
        let mut seen = HashSet::with_capacity(if self.columns.len() > 16 { self.columns.len() } else { 0 });
        for (i, c) in self.columns.iter().enumerate() {
            if c.measurement.is_empty() {
                return Err(Error::batch(&self.device, "empty measurement name"));
            }
            let twice = if self.columns.len() > 16 {
                !seen.insert(c.measurement.as_str())
            } else {
                self.columns[..i].iter().any(|p| p.measurement == c.measurement)
            };
            if twice {
                return Err(Error::batch(&self.device, format!("measurement {} appears twice", c.measurement)));
            }
            if c.data_type == DataType::Vector {
                return Err(Error::batch(&self.device, format!("{}: VECTOR is not a series type", c.measurement)));
            }
            if c.values.physical() != c.data_type.physical() {
                return Err(Error::batch(
                    &self.device,
                    format!("{}: {:?} values for a {} column", c.measurement, c.values.physical(), c.data_type),
                ));
            }
            let present = match &c.validity {
                Some(v) if v.len() != n => {
                    return Err(Error::batch(
                        &self.device,
                        format!("{}: validity has {} rows, the batch {n}", c.measurement, v.len()),
                    ))
                }
                Some(v) => v.iter().filter(|b| **b).count(),
                None => n,
            };
            if present != c.values.len() {
                return Err(Error::batch(
                    &self.device,
                    format!("{}: {} values for {present} present rows", c.measurement, c.values.len()),
                ));
            }
        }
        Ok(())
    }

    /// Roughly the memtable bytes the batch will take.
    pub(crate) fn estimated_bytes(&self) -> usize {
        self.columns
            .iter()
            .map(|c| c.values.len() * 8 + values_bytes(&c.values))
            .sum()
    }
}

/// Memory taken by a column's values.
pub(crate) fn values_bytes(values: &Values) -> usize {
    match values {
        Values::Boolean(v) => v.len(),
        Values::Int32(v) => v.len() * 4,
        Values::Float(v) => v.len() * 4,
        Values::Int64(v) => v.len() * 8,
        Values::Double(v) => v.len() * 8,
        Values::Binary(v) => v.iter().map(|b| b.len() + 24).sum(),
    }
}

/// Aggregates of one series over a time range. Fields a type has no notion
/// of are `None` (`sum` of TEXT, `min` of BOOLEAN...).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Aggregates {
    pub count: u64,
    /// Sum as a double (INT32/INT64/FLOAT/DOUBLE/DATE/TIMESTAMP only; `None`
    /// when there is no point).
    pub sum: Option<f64>,
    /// Smallest value (numbers, and STRING in byte order).
    pub min: Option<Value>,
    pub max: Option<Value>,
    /// The value at the earliest time, with that time.
    pub first: Option<(i64, Value)>,
    /// The value at the latest time, with that time.
    pub last: Option<(i64, Value)>,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
}

impl Aggregates {
    /// The aggregates of two disjoint pieces of one series as one.
    pub fn merge(mut self, other: Aggregates) -> Aggregates {
        self.count += other.count;
        self.sum = match (self.sum, other.sum) {
            (Some(x), Some(y)) => Some(x + y),
            (x, y) => x.or(y),
        };
        if let Some(m) = other.min {
            if self.min.as_ref().is_none_or(|cur| value_less(&m, cur)) {
                self.min = Some(m);
            }
        }
        if let Some(m) = other.max {
            if self.max.as_ref().is_none_or(|cur| value_less(cur, &m)) {
                self.max = Some(m);
            }
        }
        if let Some(f) = other.first {
            if self.first.as_ref().is_none_or(|(t, _)| f.0 < *t) {
                self.first = Some(f);
            }
        }
        if let Some(l) = other.last {
            if self.last.as_ref().is_none_or(|(t, _)| l.0 > *t) {
                self.last = Some(l);
            }
        }
        self.min_time = match (self.min_time, other.min_time) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        self.max_time = match (self.max_time, other.max_time) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        self
    }
}

/// `a < b` for two values of one type (false across types).
pub(crate) fn value_less(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int32(x), Value::Int32(y)) => x < y,
        (Value::Int64(x), Value::Int64(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Double(x), Value::Double(y)) => x < y,
        (Value::Binary(x), Value::Binary(y)) => x < y,
        (Value::Boolean(x), Value::Boolean(y)) => x < y,
        _ => false,
    }
}

/// How an aggregate or scan was answered: statistics used vs data decoded.
/// Counters only grow; tests compare snapshots before and after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadCounters {
    /// A whole series of one file answered from its file-level statistics.
    pub files_from_statistics: u64,
    /// Chunks answered from chunk statistics.
    pub chunks_from_statistics: u64,
    /// Pages answered from page statistics.
    pub pages_from_statistics: u64,
    /// Chunks read and decoded (all their pages in range).
    pub chunks_decoded: u64,
    /// Pages decoded on their own (a page straddling the range's edge).
    pub pages_decoded: u64,
    /// Points taken from memtables.
    pub memtable_points: u64,
}

impl ReadCounters {
    /// Counters accumulated between `earlier` and `self`.
    pub fn since(&self, earlier: &ReadCounters) -> ReadCounters {
        ReadCounters {
            files_from_statistics: self.files_from_statistics - earlier.files_from_statistics,
            chunks_from_statistics: self.chunks_from_statistics - earlier.chunks_from_statistics,
            pages_from_statistics: self.pages_from_statistics - earlier.pages_from_statistics,
            chunks_decoded: self.chunks_decoded - earlier.chunks_decoded,
            pages_decoded: self.pages_decoded - earlier.pages_decoded,
            memtable_points: self.memtable_points - earlier.memtable_points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_batches_keep_each_rows_values_and_absences() {
        let opt = |m: &str, v: &[Option<i64>]| Column::from_options(m, DataType::Int64, &v.iter().map(|x| x.map(Value::Int64)).collect::<Vec<_>>()).unwrap();
        let mut a = WriteBatch::new("root.d", true, vec![1, 2]).with_column(opt("x", &[Some(1), Some(2)])).with_column(opt("y", &[None, Some(20)]));
        let b = WriteBatch::new("root.d", true, vec![3, 4]).with_column(opt("y", &[Some(30), Some(40)])).with_column(opt("z", &[None, Some(400)]));
        a.append(&b);
        a.validate().unwrap();
        let column = |m: &str| {
            let c = a.columns.iter().find(|c| c.measurement == m).unwrap();
            (0..a.rows()).map(|i| c.is_valid(i).then(|| c.values.get(c.validity.as_ref().map_or(i, |v| v[..i].iter().filter(|p| **p).count())))).collect::<Vec<_>>()
        };
        assert_eq!(a.times, vec![1, 2, 3, 4]);
        let ints = |v: &[Option<i64>]| v.iter().map(|x| x.map(Value::Int64)).collect::<Vec<_>>();
        assert_eq!(column("x"), ints(&[Some(1), Some(2), None, None]));
        assert_eq!(column("y"), ints(&[None, Some(20), Some(30), Some(40)]));
        assert_eq!(column("z"), ints(&[None, None, None, Some(400)]));
        // Onto an empty batch: the same rows.
        let mut e = WriteBatch::new("root.d", true, vec![]);
        e.append(&a);
        assert_eq!(e.times, a.times);
        assert_eq!(e.columns.iter().map(|c| &c.values).collect::<Vec<_>>(), a.columns.iter().map(|c| &c.values).collect::<Vec<_>>());
    }

    #[test]
    fn aggregates_of_disjoint_pieces_merge() {
        let a = Aggregates {
            count: 2,
            sum: Some(3.0),
            min: Some(Value::Int64(1)),
            max: Some(Value::Int64(2)),
            first: Some((10, Value::Int64(1))),
            last: Some((20, Value::Int64(2))),
            min_time: Some(10),
            max_time: Some(20),
        };
        let b = Aggregates {
            count: 1,
            sum: Some(-5.0),
            min: Some(Value::Int64(-5)),
            max: Some(Value::Int64(-5)),
            first: Some((5, Value::Int64(-5))),
            last: Some((5, Value::Int64(-5))),
            min_time: Some(5),
            max_time: Some(5),
        };
        let m = a.clone().merge(b);
        assert_eq!((m.count, m.sum), (3, Some(-2.0)));
        assert_eq!((m.min, m.max), (Some(Value::Int64(-5)), Some(Value::Int64(2))));
        assert_eq!((m.first, m.last), (Some((5, Value::Int64(-5))), Some((20, Value::Int64(2)))));
        assert_eq!((m.min_time, m.max_time), (Some(5), Some(20)));
        assert_eq!(a.clone().merge(Aggregates::default()), a);
    }
}

//! Statistics at page, chunk and series level (spec §5): count, time range
//! and a type-specific part. The engine answers count/sum/min/max/first/last
//! from these without decoding, so they must be exact.

use crate::error::{Error, Result};
use crate::io::{ByteReader, ByteWriter};
use crate::types::{DataType, Values};

/// Statistics of one page, chunk, or series in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistics {
    /// Number of non-null points.
    pub count: u64,
    pub start_time: i64,
    pub end_time: i64,
    pub values: ValueStatistics,
}

/// The type-specific part. `first`/`last` are the values at start/end time.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueStatistics {
    /// BOOLEAN; `sum` counts true values.
    Boolean { first: bool, last: bool, sum: i64 },
    /// INT32 and DATE.
    Int32 {
        min: i32,
        max: i32,
        first: i32,
        last: i32,
        sum: i64,
    },
    /// INT64 and TIMESTAMP (the sum is a double, as in Apache TsFile).
    Int64 {
        min: i64,
        max: i64,
        first: i64,
        last: i64,
        sum: f64,
    },
    Float {
        min: f32,
        max: f32,
        first: f32,
        last: f32,
        sum: f64,
    },
    Double {
        min: f64,
        max: f64,
        first: f64,
        last: f64,
        sum: f64,
    },
    /// TEXT keeps first and last only.
    Text { first: Vec<u8>, last: Vec<u8> },
    /// STRING; min/max in unsigned byte order.
    String {
        first: Vec<u8>,
        last: Vec<u8>,
        min: Vec<u8>,
        max: Vec<u8>,
    },
    /// BLOB has no value part.
    Blob,
    /// The time column of an aligned device (VECTOR) has no value part.
    Time,
}

impl Statistics {
    /// Statistics with no points for `data_type`.
    pub fn empty(data_type: DataType) -> Self {
        let values = match data_type {
            DataType::Boolean => ValueStatistics::Boolean {
                first: false,
                last: false,
                sum: 0,
            },
            DataType::Int32 | DataType::Date => ValueStatistics::Int32 {
                min: 0,
                max: 0,
                first: 0,
                last: 0,
                sum: 0,
            },
            DataType::Int64 | DataType::Timestamp => ValueStatistics::Int64 {
                min: 0,
                max: 0,
                first: 0,
                last: 0,
                sum: 0.0,
            },
            DataType::Float => ValueStatistics::Float {
                min: 0.0,
                max: 0.0,
                first: 0.0,
                last: 0.0,
                sum: 0.0,
            },
            DataType::Double => ValueStatistics::Double {
                min: 0.0,
                max: 0.0,
                first: 0.0,
                last: 0.0,
                sum: 0.0,
            },
            DataType::Text => ValueStatistics::Text {
                first: Vec::new(),
                last: Vec::new(),
            },
            DataType::String => ValueStatistics::String {
                first: Vec::new(),
                last: Vec::new(),
                min: Vec::new(),
                max: Vec::new(),
            },
            DataType::Blob => ValueStatistics::Blob,
            DataType::Vector => ValueStatistics::Time,
        };
        Statistics {
            count: 0,
            start_time: 0,
            end_time: 0,
            values,
        }
    }

    /// Statistics of points given in strictly increasing time order.
    /// `values` must hold one value per time, except for `Vector` (time only).
    pub fn from_points(data_type: DataType, times: &[i64], values: Option<&Values>) -> Self {
        let mut s = Statistics::empty(data_type);
        let (Some(&start), Some(&end)) = (times.first(), times.last()) else {
            return s;
        };
        s.count = times.len() as u64;
        s.start_time = start;
        s.end_time = end;
        s.values = match (data_type, values) {
            (DataType::Vector, _) | (DataType::Blob, _) | (_, None) => s.values,
            (_, Some(v)) => ValueStatistics::of_values(data_type, v),
        };
        s
    }

    /// Merge statistics of a range that does not overlap `self` in time.
    /// `first`/`last` follow the time order, whichever side comes first.
    pub fn merge(&mut self, other: &Statistics) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let other_is_earlier = other.start_time < self.start_time;
        let other_is_later = other.end_time > self.end_time;
        self.values.merge(&other.values, other_is_earlier, other_is_later);
        self.count += other.count;
        self.start_time = self.start_time.min(other.start_time);
        self.end_time = self.end_time.max(other.end_time);
    }

    pub fn serialize(&self, out: &mut Vec<u8>) {
        out.put_uvarint64(self.count);
        out.put_i64(self.start_time);
        out.put_i64(self.end_time);
        match &self.values {
            ValueStatistics::Boolean { first, last, sum } => {
                out.put_bool(*first);
                out.put_bool(*last);
                out.put_i64(*sum);
            }
            ValueStatistics::Int32 {
                min,
                max,
                first,
                last,
                sum,
            } => {
                for v in [min, max, first, last] {
                    out.put_i32(*v);
                }
                out.put_i64(*sum);
            }
            ValueStatistics::Int64 {
                min,
                max,
                first,
                last,
                sum,
            } => {
                for v in [min, max, first, last] {
                    out.put_i64(*v);
                }
                out.put_f64(*sum);
            }
            ValueStatistics::Float {
                min,
                max,
                first,
                last,
                sum,
            } => {
                for v in [min, max, first, last] {
                    out.put_f32(*v);
                }
                out.put_f64(*sum);
            }
            ValueStatistics::Double {
                min,
                max,
                first,
                last,
                sum,
            } => {
                for v in [min, max, first, last, sum] {
                    out.put_f64(*v);
                }
            }
            ValueStatistics::Text { first, last } => {
                out.put_i32_bytes(first);
                out.put_i32_bytes(last);
            }
            ValueStatistics::String {
                first,
                last,
                min,
                max,
            } => {
                for v in [first, last, min, max] {
                    out.put_i32_bytes(v);
                }
            }
            ValueStatistics::Blob | ValueStatistics::Time => {}
        }
    }

    pub fn deserialize(data_type: DataType, r: &mut ByteReader<'_>) -> Result<Self> {
        let start = r.offset();
        let count = u64::from(r.uvarint()?);
        let start_time = r.i64()?;
        let end_time = r.i64()?;
        let values = match data_type {
            DataType::Boolean => ValueStatistics::Boolean {
                first: r.bool()?,
                last: r.bool()?,
                sum: r.i64()?,
            },
            DataType::Int32 | DataType::Date => ValueStatistics::Int32 {
                min: r.i32()?,
                max: r.i32()?,
                first: r.i32()?,
                last: r.i32()?,
                sum: r.i64()?,
            },
            DataType::Int64 | DataType::Timestamp => ValueStatistics::Int64 {
                min: r.i64()?,
                max: r.i64()?,
                first: r.i64()?,
                last: r.i64()?,
                sum: r.f64()?,
            },
            DataType::Float => ValueStatistics::Float {
                min: r.f32()?,
                max: r.f32()?,
                first: r.f32()?,
                last: r.f32()?,
                sum: r.f64()?,
            },
            DataType::Double => ValueStatistics::Double {
                min: r.f64()?,
                max: r.f64()?,
                first: r.f64()?,
                last: r.f64()?,
                sum: r.f64()?,
            },
            DataType::Text => ValueStatistics::Text {
                first: r.i32_bytes()?.to_vec(),
                last: r.i32_bytes()?.to_vec(),
            },
            DataType::String => ValueStatistics::String {
                first: r.i32_bytes()?.to_vec(),
                last: r.i32_bytes()?.to_vec(),
                min: r.i32_bytes()?.to_vec(),
                max: r.i32_bytes()?.to_vec(),
            },
            DataType::Blob => ValueStatistics::Blob,
            DataType::Vector => ValueStatistics::Time,
        };
        if count > 0 && start_time > end_time {
            return Err(Error::corrupt(
                start,
                format!("statistics start time {start_time} after end time {end_time}"),
            ));
        }
        Ok(Statistics {
            count,
            start_time,
            end_time,
            values,
        })
    }
}

fn fold<T: Copy + PartialOrd>(v: &[T]) -> (T, T) {
    // Same rule as Apache's writers: start from the first value and replace
    // on strict comparison, so NaN never displaces an ordinary min/max.
    let mut min = v[0];
    let mut max = v[0];
    for &x in &v[1..] {
        if x < min {
            min = x;
        }
        if x > max {
            max = x;
        }
    }
    (min, max)
}

impl ValueStatistics {
    /// Statistics of a non-empty column in time order.
    fn of_values(data_type: DataType, values: &Values) -> Self {
        match values {
            Values::Boolean(v) if !v.is_empty() => ValueStatistics::Boolean {
                first: v[0],
                last: v[v.len() - 1],
                sum: v.iter().filter(|b| **b).count() as i64,
            },
            Values::Int32(v) if !v.is_empty() => {
                let (min, max) = fold(v);
                ValueStatistics::Int32 {
                    min,
                    max,
                    first: v[0],
                    last: v[v.len() - 1],
                    sum: v.iter().fold(0i64, |a, &x| a.wrapping_add(i64::from(x))),
                }
            }
            Values::Int64(v) if !v.is_empty() => {
                let (min, max) = fold(v);
                ValueStatistics::Int64 {
                    min,
                    max,
                    first: v[0],
                    last: v[v.len() - 1],
                    sum: v.iter().fold(0f64, |a, &x| a + x as f64),
                }
            }
            Values::Float(v) if !v.is_empty() => {
                let (min, max) = fold(v);
                ValueStatistics::Float {
                    min,
                    max,
                    first: v[0],
                    last: v[v.len() - 1],
                    sum: v.iter().fold(0f64, |a, &x| a + f64::from(x)),
                }
            }
            Values::Double(v) if !v.is_empty() => {
                let (min, max) = fold(v);
                ValueStatistics::Double {
                    min,
                    max,
                    first: v[0],
                    last: v[v.len() - 1],
                    sum: v.iter().sum(),
                }
            }
            Values::Binary(v) if !v.is_empty() => match data_type {
                DataType::Text => ValueStatistics::Text {
                    first: v[0].clone(),
                    last: v[v.len() - 1].clone(),
                },
                DataType::String => {
                    let min = v.iter().min().cloned().unwrap_or_default();
                    let max = v.iter().max().cloned().unwrap_or_default();
                    ValueStatistics::String {
                        first: v[0].clone(),
                        last: v[v.len() - 1].clone(),
                        min,
                        max,
                    }
                }
                _ => ValueStatistics::Blob,
            },
            _ => Statistics::empty(data_type).values,
        }
    }

    fn merge(&mut self, other: &ValueStatistics, other_first: bool, other_last: bool) {
        use ValueStatistics as V;
        macro_rules! numeric {
            ($min:ident, $max:ident, $first:ident, $last:ident, $sum:ident,
             $omin:ident, $omax:ident, $ofirst:ident, $olast:ident, $osum:ident, $add:expr) => {{
                if *$omin < *$min {
                    *$min = *$omin;
                }
                if *$omax > *$max {
                    *$max = *$omax;
                }
                if other_first {
                    *$first = *$ofirst;
                }
                if other_last {
                    *$last = *$olast;
                }
                *$sum = $add(*$sum, *$osum);
            }};
        }
        match (self, other) {
            (
                V::Boolean { first, last, sum },
                V::Boolean {
                    first: of,
                    last: ol,
                    sum: os,
                },
            ) => {
                if other_first {
                    *first = *of;
                }
                if other_last {
                    *last = *ol;
                }
                *sum += os;
            }
            (
                V::Int32 { min, max, first, last, sum },
                V::Int32 { min: a, max: b, first: c, last: d, sum: e },
            ) => numeric!(min, max, first, last, sum, a, b, c, d, e, i64::wrapping_add),
            (
                V::Int64 { min, max, first, last, sum },
                V::Int64 { min: a, max: b, first: c, last: d, sum: e },
            ) => numeric!(min, max, first, last, sum, a, b, c, d, e, |x: f64, y: f64| x + y),
            (
                V::Float { min, max, first, last, sum },
                V::Float { min: a, max: b, first: c, last: d, sum: e },
            ) => numeric!(min, max, first, last, sum, a, b, c, d, e, |x: f64, y: f64| x + y),
            (
                V::Double { min, max, first, last, sum },
                V::Double { min: a, max: b, first: c, last: d, sum: e },
            ) => numeric!(min, max, first, last, sum, a, b, c, d, e, |x: f64, y: f64| x + y),
            (V::Text { first, last }, V::Text { first: of, last: ol }) => {
                if other_first {
                    first.clone_from(of);
                }
                if other_last {
                    last.clone_from(ol);
                }
            }
            (
                V::String { first, last, min, max },
                V::String { first: of, last: ol, min: omin, max: omax },
            ) => {
                if other_first {
                    first.clone_from(of);
                }
                if other_last {
                    last.clone_from(ol);
                }
                if omin < min {
                    min.clone_from(omin);
                }
                if omax > max {
                    max.clone_from(omax);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int32_statistics_match_the_worked_example() {
        // Spec §17: count 3, start 1, end 3, min -3, max 300, first 10, last 300, sum 307.
        let s = Statistics::from_points(DataType::Int32, &[1, 2, 3], Some(&Values::Int32(vec![10, -3, 300])));
        let mut out = Vec::new();
        s.serialize(&mut out);
        let expected: Vec<u8> = [
            &[3u8][..],
            &1i64.to_be_bytes(),
            &3i64.to_be_bytes(),
            &(-3i32).to_be_bytes(),
            &300i32.to_be_bytes(),
            &10i32.to_be_bytes(),
            &300i32.to_be_bytes(),
            &307i64.to_be_bytes(),
        ]
        .concat();
        assert_eq!(out, expected);
        let back = Statistics::deserialize(DataType::Int32, &mut ByteReader::new(&out)).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn merging_pages_equals_statistics_of_the_whole() {
        let times: Vec<i64> = (0..100).collect();
        let vals: Vec<f64> = (0..100).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
        let whole = Statistics::from_points(DataType::Double, &times, Some(&Values::Double(vals.clone())));
        let mut merged = Statistics::from_points(DataType::Double, &times[50..], Some(&Values::Double(vals[50..].to_vec())));
        merged.merge(&Statistics::from_points(DataType::Double, &times[..50], Some(&Values::Double(vals[..50].to_vec()))));
        assert_eq!(merged, whole);
    }
}

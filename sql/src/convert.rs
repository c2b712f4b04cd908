//! Conversions between tsfile values and Arrow arrays, and from literal text
//! to typed values, shared by both surfaces.

use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, ArrayRef, BinaryBuilder, BooleanArray, Date32Array, Float32Array,
    Float64Array, Int32Array, Int64Array, StringBuilder,
    TimestampMillisecondArray, TimestampMillisecondBuilder,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::datatypes::{DataType as ArrowType, TimeUnit};
use tsfile::{ColumnBatch, DataType, Value, Values};

use crate::error::{Error, Result};

/// The time zone string of `timestamptz` columns.
pub(crate) const UTC: &str = "+00:00";

/// The Arrow type that carries a series of `t` on the wire (DESIGN §3).
pub(crate) fn arrow_type(t: DataType) -> ArrowType {
    match t {
        DataType::Boolean => ArrowType::Boolean,
        DataType::Int32 => ArrowType::Int32,
        DataType::Int64 => ArrowType::Int64,
        DataType::Float => ArrowType::Float32,
        DataType::Double => ArrowType::Float64,
        DataType::Text | DataType::String => ArrowType::Utf8,
        DataType::Blob => ArrowType::Binary,
        DataType::Timestamp | DataType::Vector => ArrowType::Timestamp(TimeUnit::Millisecond, Some(UTC.into())),
        DataType::Date => ArrowType::Date32,
    }
}

/// The Arrow type of the time column.
pub(crate) fn time_type() -> ArrowType {
    ArrowType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// Days since 1970-01-01 of a `yyyymmdd` date.
pub(crate) fn date_to_days(yyyymmdd: i32) -> i32 {
    let (y, m, d) = (yyyymmdd / 10000, (yyyymmdd / 100) % 100, yyyymmdd % 100);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A scanned column (present values in row order + per-row validity) as
/// an Arrow array of the series type `t`: the values are moved into place
/// in one pass, without per-cell `Value`s.
pub(crate) fn column_array(t: DataType, column: ColumnBatch) -> ArrayRef {
    let ColumnBatch { values, validity } = column;
    let rows = validity.len();
    let dense = values.len() == rows;
    let nulls = (!dense).then(|| NullBuffer::from(validity.as_slice()));
    /// Spread `present` values over the rows (default where NULL).
    fn spread<T: Copy + Default>(present: Vec<T>, validity: &[bool]) -> Vec<T> {
        if present.len() == validity.len() {
            return present;
        }
        let mut out = Vec::with_capacity(validity.len());
        let mut next = present.into_iter();
        for v in validity {
            out.push(if *v { next.next().unwrap_or_default() } else { T::default() });
        }
        out
    }
    match (t, values) {
        (DataType::Boolean, Values::Boolean(v)) => {
            let all = spread(v, &validity);
            Arc::new(BooleanArray::new(BooleanBuffer::from(all), nulls))
        }
        (DataType::Int32, Values::Int32(v)) => Arc::new(Int32Array::new(spread(v, &validity).into(), nulls)),
        (DataType::Date, Values::Int32(v)) => {
            let days: Vec<i32> = spread(v, &validity).into_iter().map(date_to_days).collect();
            Arc::new(Date32Array::new(days.into(), nulls))
        }
        (DataType::Int64, Values::Int64(v)) => Arc::new(Int64Array::new(spread(v, &validity).into(), nulls)),
        (DataType::Timestamp | DataType::Vector, Values::Int64(v)) => {
            Arc::new(TimestampMillisecondArray::new(spread(v, &validity).into(), nulls).with_timezone(UTC))
        }
        (DataType::Float, Values::Float(v)) => Arc::new(Float32Array::new(spread(v, &validity).into(), nulls)),
        (DataType::Double, Values::Double(v)) => Arc::new(Float64Array::new(spread(v, &validity).into(), nulls)),
        (DataType::Text | DataType::String, Values::Binary(v)) => {
            let mut b = StringBuilder::with_capacity(rows, v.iter().map(Vec::len).sum());
            let mut next = v.iter();
            for present in &validity {
                match present.then(|| next.next()).flatten() {
                    Some(bytes) => b.append_value(String::from_utf8_lossy(bytes)),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        (DataType::Blob, Values::Binary(v)) => {
            let mut b = BinaryBuilder::with_capacity(rows, v.iter().map(Vec::len).sum());
            let mut next = v.iter();
            for present in &validity {
                match present.then(|| next.next()).flatten() {
                    Some(bytes) => b.append_value(bytes),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        // No value of the series in these rows (its sources carried another
        // physical type, or none): all NULL.
        (t, _) => new_null_array(&arrow_type(t), rows),
    }
}

/// The time column as an Arrow array.
pub(crate) fn time_array(times: &[i64]) -> ArrayRef {
    let mut b = TimestampMillisecondBuilder::with_capacity(times.len()).with_timezone(UTC);
    b.append_slice(times);
    Arc::new(b.finish())
}

/// A literal as written in a statement, before it meets a series type.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// Integer text, e.g. `-12`.
    Integer(String),
    /// Floating text, e.g. `25.1`, `1e3`.
    Float(String),
    Boolean(bool),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

impl Literal {
    /// The same literal, borrowed: what inserts convert from.
    pub(crate) fn as_ref(&self) -> LiteralRef<'_> {
        match self {
            Literal::Integer(s) => LiteralRef::Integer(s),
            Literal::Float(s) => LiteralRef::Float(s),
            Literal::Boolean(b) => LiteralRef::Boolean(*b),
            Literal::Text(s) => LiteralRef::Text(s),
            Literal::Blob(b) => LiteralRef::Blob(b),
            Literal::Null => LiteralRef::Null,
        }
    }
}

/// A [`Literal`] borrowed from the statement text (or from a parsed
/// literal): the fast insert path converts these without allocating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LiteralRef<'a> {
    Integer(&'a str),
    Float(&'a str),
    Boolean(bool),
    Text(&'a str),
    Blob(&'a [u8]),
    Null,
}

impl LiteralRef<'_> {
    /// The kind used to infer a new series' type.
    pub(crate) fn kind(&self) -> Option<catalog::ValueKind> {
        Some(match self {
            LiteralRef::Integer(_) => catalog::ValueKind::Integer,
            LiteralRef::Float(_) => catalog::ValueKind::Floating,
            LiteralRef::Boolean(_) => catalog::ValueKind::Boolean,
            LiteralRef::Text(_) => catalog::ValueKind::Text,
            LiteralRef::Blob(_) | LiteralRef::Null => return None,
        })
    }

    fn describe(&self) -> String {
        match self {
            LiteralRef::Integer(s) | LiteralRef::Float(s) => s.to_string(),
            LiteralRef::Boolean(b) => b.to_string(),
            LiteralRef::Text(s) => format!("'{s}'"),
            LiteralRef::Blob(_) => "a blob".into(),
            LiteralRef::Null => "NULL".into(),
        }
    }

    /// The value of this literal for a series of type `t` (`None` for NULL).
    /// `path` names the series in errors.
    pub(crate) fn to_value(self, t: DataType, path: impl std::fmt::Display) -> Result<Option<Value>> {
        let mismatch = || Error::TypeMismatch(format!("{path} is {t}, cannot store {}", self.describe()));
        let invalid = |why: &str| Error::InvalidValue(format!("{} for {path} ({t}): {why}", self.describe()));
        Ok(Some(match (self, t) {
            (LiteralRef::Null, _) => return Ok(None),
            (LiteralRef::Boolean(b), DataType::Boolean) => Value::Boolean(b),
            (LiteralRef::Integer(s), DataType::Int32) => Value::Int32(s.parse().map_err(|_| invalid("out of range for INT32"))?),
            (LiteralRef::Integer(s), DataType::Int64 | DataType::Timestamp) => {
                Value::Int64(s.parse().map_err(|_| invalid("out of range for INT64"))?)
            }
            (LiteralRef::Integer(s) | LiteralRef::Float(s), DataType::Float) => {
                Value::Float(s.parse().map_err(|_| invalid("not a number"))?)
            }
            (LiteralRef::Integer(s) | LiteralRef::Float(s), DataType::Double) => match parse_decimal(s.as_bytes()) {
                Some(x) => Value::Double(x),
                None => Value::Double(s.parse().map_err(|_| invalid("not a number"))?),
            },
            (LiteralRef::Text(s), DataType::Text | DataType::String) => Value::Binary(s.as_bytes().to_vec()),
            (LiteralRef::Text(s), DataType::Timestamp) => Value::Int64(crate::time::parse_iso(s).map_err(|_| invalid("not an ISO 8601 time"))?),
            (LiteralRef::Text(s), DataType::Date) => {
                Value::Int32(tsfile::text::parse_date(s).ok_or_else(|| invalid("not a YYYY-MM-DD date"))?)
            }
            (LiteralRef::Blob(b), DataType::Blob) => Value::Binary(b.to_vec()),
            (LiteralRef::Text(s), DataType::Blob) => Value::Binary(s.as_bytes().to_vec()),
            _ => return Err(mismatch()),
        }))
    }
}

/// A plain decimal (`-12.34`: optional sign, digits, optional fraction, at
/// most 19 digits, no exponent, no spaces) by Clinger's fast path: the
/// digits as an integer below 2^53 divided by an exact power of ten is one
/// correctly rounded operation, so the result is what `str::parse` gives.
/// `None` for anything else (the general parser decides).
pub(crate) fn parse_decimal(b: &[u8]) -> Option<f64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut count = 0;
    let mut fraction: Option<usize> = None;
    for (i, &d) in digits.iter().enumerate() {
        match d {
            b'0'..=b'9' => {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                count += 1;
            }
            b'.' if fraction.is_none() => fraction = Some(digits.len() - i - 1),
            _ => return None,
        }
    }
    // At least one digit; at most 19 (no overflow).
    if count == 0 || count > 19 {
        return None;
    }
    exact_decimal(mantissa, fraction.unwrap_or(0), neg)
}

/// `±mantissa / 10^scale` as one correctly rounded division (Clinger's
/// fast path), when both are exact as doubles: `None` otherwise.
pub(crate) fn exact_decimal(mantissa: u64, scale: usize, neg: bool) -> Option<f64> {
    const POW10: [f64; 20] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19];
    if mantissa > 1 << 53 {
        return None;
    }
    let x = mantissa as f64 / POW10.get(scale)?;
    Some(if neg { -x } else { x })
}

/// IoTDB's rounding of FLOAT/DOUBLE values for a series whose creation
/// asked for RLE or TS_2DIFF: each value keeps `MAX_POINT_NUMBER` decimal
/// digits (default 2), rounded as Java's `Math.round` does. Other series
/// (and NaN, infinities) are left as they are.
pub(crate) fn round_for_series(handle: &catalog::SeriesHandle, values: &mut tsfile::Values) {
    let Some(digits) = handle.rounding() else { return };
    let scale = 10f64.powi(i32::from(digits));
    let round = |x: f64| if x.is_finite() { (x * scale + 0.5).floor() / scale } else { x };
    match values {
        tsfile::Values::Double(v) => v.iter_mut().for_each(|x| *x = round(*x)),
        tsfile::Values::Float(v) => v.iter_mut().for_each(|x| *x = round(f64::from(*x)) as f32),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_become_days_since_the_epoch() {
        assert_eq!(date_to_days(19700101), 0);
        assert_eq!(date_to_days(19700102), 1);
        assert_eq!(date_to_days(20240229), 19782);
        assert_eq!(date_to_days(19691231), -1);
    }

    #[test]
    fn plain_decimals_parse_as_the_general_parser_does() {
        for s in ["0", "-0", "-0.00", "12.34", "+7.5", "1.", ".5", "9007199254740992", "0.1", "1234567.12345678", "99.99", "-37.05", "0.000000000000000001"] {
            let fast = parse_decimal(s.as_bytes());
            let general: f64 = s.parse().unwrap();
            assert_eq!(fast.map(f64::to_bits), Some(general.to_bits()), "{s}");
        }
        // Outside the fast path: the general parser decides.
        for s in ["", ".", "-", "1e5", " 1", "1.2.3", "9007199254740993", "1234567890123456789", "12345678901234567890", "99999999999999999999", "0.12345678901234567890", "nan", "1_0"] {
            assert_eq!(parse_decimal(s.as_bytes()), None, "{s}");
        }
        // Every two-decimal value the benchmarks send, against the general parser.
        for i in -20_000i64..20_000 {
            let s = format!("{:.2}", i as f64 / 100.0 * 1.37);
            assert_eq!(parse_decimal(s.as_bytes()).map(f64::to_bits), s.parse::<f64>().ok().map(f64::to_bits), "{s}");
        }
    }

    #[test]
    fn literals_meet_series_types() {
        assert_eq!(Literal::Integer("26".into()).as_ref().to_value(DataType::Double, "p").unwrap(), Some(Value::Double(26.0)));
        assert!(matches!(Literal::Float("1.5".into()).as_ref().to_value(DataType::Int64, "p"), Err(Error::TypeMismatch(_))));
        assert!(matches!(Literal::Text("x".into()).as_ref().to_value(DataType::Int64, "p"), Err(Error::TypeMismatch(_))));
        assert!(matches!(Literal::Integer("99999999999".into()).as_ref().to_value(DataType::Int32, "p"), Err(Error::InvalidValue(_))));
        assert_eq!(Literal::Null.as_ref().to_value(DataType::Int32, "p").unwrap(), None);
    }
}

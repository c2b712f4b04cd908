//! From Arrow arrays and COPY text back to series values, and writing rows
//! of one device through its engine.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int32Array, Int64Array,
    StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::DataType as ArrowType;
use storage::{Column, WriteBatch};
use tsfile::{DataType, Value};

use crate::error::{Error, Result};
use crate::instance::{Instance, PendingCommits};
use crate::convert::{arrow_type, time_type};

/// The `yyyymmdd` date of a day count since 1970-01-01, for years 1..=9999.
pub(crate) fn days_to_date(days: i32) -> Result<i32> {
    // 0001-01-01 and 9999-12-31.
    if !(-719_162..=2_932_896).contains(&days) {
        return Err(Error::InvalidValue(format!("date {days} days from 1970-01-01 is outside years 1 to 9999")));
    }
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i32::from(m <= 2);
    Ok(y * 10_000 + m * 100 + d)
}

fn cast(array: &ArrayRef, to: &ArrowType, column: &str) -> Result<ArrayRef> {
    let options = CastOptions { safe: false, ..Default::default() };
    cast_with_options(array, to, &options).map_err(|e| Error::InvalidValue(format!("column \"{column}\": {e}")))
}

/// Milliseconds of a `time` column; a NULL time is a not-null violation.
pub(crate) fn times_of(array: &ArrayRef) -> Result<Vec<i64>> {
    let ms = cast(array, &time_type(), "time")?;
    let ms: &TimestampMillisecondArray = ms.as_primitive();
    if ms.null_count() > 0 {
        return Err(Error::NotNull("null value in column \"time\" violates not-null constraint".into()));
    }
    Ok(ms.values().to_vec())
}

/// The values of a column for a series of type `t`.
pub(crate) fn values_of(t: DataType, array: &ArrayRef, column: &str) -> Result<Vec<Option<Value>>> {
    let a = cast(array, &arrow_type(t), column)?;
    macro_rules! collect {
        ($ty:ty, $map:expr) => {{
            let typed = a.as_any().downcast_ref::<$ty>().ok_or_else(|| Error::Unsupported(format!("column \"{column}\" of type {t}")))?;
            typed.iter().map(|v| v.map($map)).collect()
        }};
    }
    Ok(match t {
        DataType::Boolean => collect!(BooleanArray, Value::Boolean),
        DataType::Int32 => collect!(Int32Array, Value::Int32),
        DataType::Int64 => collect!(Int64Array, Value::Int64),
        DataType::Float => collect!(Float32Array, Value::Float),
        DataType::Double => collect!(Float64Array, Value::Double),
        DataType::Text | DataType::String => collect!(StringArray, |s: &str| Value::Binary(s.as_bytes().to_vec())),
        DataType::Blob => collect!(BinaryArray, |b: &[u8]| Value::Binary(b.to_vec())),
        DataType::Date => {
            let typed = a.as_any().downcast_ref::<Date32Array>().ok_or_else(|| Error::Unsupported(format!("column \"{column}\" of type {t}")))?;
            typed.iter().map(|v| v.map(|d| days_to_date(d).map(Value::Int32)).transpose()).collect::<Result<Vec<_>>>()?
        }
        DataType::Timestamp | DataType::Vector => collect!(TimestampMillisecondArray, Value::Int64),
    })
}

/// Rows for one device: times and, per measurement, its type and values.
pub(crate) struct DeviceRows {
    pub device: String,
    pub times: Vec<i64>,
    pub columns: Vec<(String, DataType, Vec<Option<Value>>)>,
}

impl DeviceRows {
    /// The rows of several batches of one device as one.
    pub(crate) fn concat(parts: Vec<DeviceRows>) -> Option<DeviceRows> {
        let mut parts = parts.into_iter();
        let mut all = parts.next()?;
        for part in parts {
            all.times.extend(part.times);
            for ((_, _, values), (_, _, more)) in all.columns.iter_mut().zip(part.columns) {
                values.extend(more);
            }
        }
        Some(all)
    }
}

/// Write rows of an existing device through its database's engine.
/// Columns that hold only NULLs are left out (NULL never overwrites).
pub(crate) fn write_rows(instance: &Instance, rows: DeviceRows) -> Result<usize> {
    let n = rows.times.len();
    if let Some((database, batch)) = device_batch(instance, rows)? {
        instance.store(&database)?.write(&batch)?;
    }
    Ok(n)
}

/// [`write_rows`], logged and visible but not yet synced: `pending` gets
/// the ticket to wait for before the statement is acknowledged.
pub(crate) fn write_rows_deferred(instance: &Instance, rows: DeviceRows, pending: &mut PendingCommits) -> Result<usize> {
    let n = rows.times.len();
    if let Some((database, batch)) = device_batch(instance, rows)? {
        let store = instance.store(&database)?;
        let ticket = store.write_deferred(&batch)?;
        pending.add(store, ticket);
    }
    Ok(n)
}

/// The write batch of rows of an existing device, checked against the
/// catalog, with its database; `None` when there is nothing to write.
pub(crate) fn device_batch(instance: &Instance, rows: DeviceRows) -> Result<Option<(String, WriteBatch)>> {
    if rows.times.is_empty() {
        return Ok(None);
    }
    let path = catalog::Path::parse(&rows.device)?;
    let device = instance.catalog().device(&path).ok_or_else(|| Error::UnknownTable(format!("\"{}\"", rows.device)))?;
    let mut batch = WriteBatch::new(device.path.to_string(), device.aligned, rows.times);
    for (measurement, t, values) in &rows.columns {
        if values.iter().all(Option::is_none) {
            continue;
        }
        // The series may have been deleted or re-created since the statement was planned.
        let handle = match instance.catalog().lookup_series(&rows.device, measurement) {
            Some(h) if h.data_type == *t => h,
            Some(h) => return Err(Error::TypeMismatch(format!("{}.{measurement} is now {}, not {t}", rows.device, h.data_type))),
            None => return Err(Error::UnknownColumn(format!("\"{measurement}\" of relation \"{}\"", rows.device))),
        };
        let mut column = Column::from_options(measurement.clone(), *t, values)?;
        crate::convert::round_for_series(&handle, &mut column.values);
        batch = batch.with_column(column);
    }
    if batch.columns.is_empty() {
        return Ok(None);
    }
    Ok(Some((device.database.to_string(), batch)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::date_to_days;

    #[test]
    fn days_and_dates_round_trip() {
        for date in [19700101, 19691231, 20240229, 20000301, 19000101, 99991231, 15821015] {
            assert_eq!(days_to_date(date_to_days(date)).unwrap(), date);
        }
        // yyyymmdd only makes sense for years 1..=9999.
        assert!(days_to_date(-719_163).is_err() && days_to_date(2_932_897).is_err());
        for days in -719_162..2_932_897 {
            if days % 997 == 0 {
                assert_eq!(date_to_days(days_to_date(days).unwrap()), days);
            }
        }
    }
}

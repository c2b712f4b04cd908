//! Text forms of values used by the `arbor-tsfile` CSV format: BOOLEAN
//! `true`/`false`, floats in shortest round-trip form (`NaN`, `inf`,
//! `-inf`), BLOB as `\x` + lowercase hex, DATE as `YYYY-MM-DD`
//! (stored as the integer `yyyymmdd`), TIMESTAMP as an integer.

use crate::error::{Error, Result};
use crate::types::{DataType, Value};

fn f64_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        // Debug is the shortest string that parses back to the same bits.
        format!("{v:?}")
    }
}

fn f32_text(v: f32) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v:?}")
    }
}

/// `yyyymmdd` as `YYYY-MM-DD`; values that are no valid date print as the raw integer.
pub fn date_text(v: i32) -> String {
    let (y, m, d) = (v / 10000, (v / 100) % 100, v % 100);
    if v > 0 && (1..=12).contains(&m) && (1..=31).contains(&d) {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        v.to_string()
    }
}

/// Parse `YYYY-MM-DD` into `yyyymmdd`.
pub fn parse_date(s: &str) -> Option<i32> {
    let mut parts = s.trim().splitn(3, '-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: i32 = parts.next()?.parse().ok()?;
    let d: i32 = parts.next()?.parse().ok()?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    ((1..=9999).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days[(m - 1) as usize])
        .then_some(y * 10000 + m * 100 + d)
}

/// The text form of `value`, a value of `data_type`.
pub fn format_value(data_type: DataType, value: &Value) -> String {
    match (data_type, value) {
        (_, Value::Boolean(b)) => b.to_string(),
        (DataType::Date, Value::Int32(v)) => date_text(*v),
        (_, Value::Int32(v)) => v.to_string(),
        (_, Value::Int64(v)) => v.to_string(),
        (_, Value::Float(v)) => f32_text(*v),
        (_, Value::Double(v)) => f64_text(*v),
        (DataType::Blob, Value::Binary(b)) => {
            let mut s = String::with_capacity(2 + b.len() * 2);
            s.push_str("\\x");
            for byte in b {
                s.push_str(&format!("{byte:02x}"));
            }
            s
        }
        (_, Value::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s.trim() {
        "NaN" | "nan" => Some(f64::NAN),
        "inf" | "Infinity" | "+inf" => Some(f64::INFINITY),
        "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

/// Parse the text form of a value of `data_type`.
pub fn parse_value(data_type: DataType, s: &str) -> Result<Value> {
    let bad = || Error::InvalidWrite(format!("{s:?} is not a valid {data_type} value"));
    Ok(match data_type {
        DataType::Boolean => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Boolean(true),
            "false" | "0" => Value::Boolean(false),
            _ => return Err(bad()),
        },
        DataType::Int32 => Value::Int32(s.trim().parse().map_err(|_| bad())?),
        DataType::Int64 | DataType::Timestamp => Value::Int64(s.trim().parse().map_err(|_| bad())?),
        DataType::Float => {
            let v = parse_float(s).ok_or_else(bad)?;
            match s.trim() {
                "NaN" | "nan" => Value::Float(f32::NAN),
                t => Value::Float(if v.is_infinite() { v as f32 } else { t.parse::<f32>().map_err(|_| bad())? }),
            }
        }
        DataType::Double => Value::Double(parse_float(s).ok_or_else(bad)?),
        DataType::Date => Value::Int32(parse_date(s).ok_or_else(bad)?),
        DataType::Text | DataType::String => Value::Binary(s.as_bytes().to_vec()),
        DataType::Blob => {
            let hex = s.strip_prefix("\\x").ok_or_else(bad)?;
            if hex.len() % 2 != 0 {
                return Err(bad());
            }
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect();
            Value::Binary(bytes.ok_or_else(bad)?)
        }
        DataType::Vector => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_text() {
        let cases = [
            (DataType::Double, Value::Double(0.1)),
            (DataType::Double, Value::Double(-0.0)),
            (DataType::Double, Value::Double(f64::INFINITY)),
            (DataType::Double, Value::Double(5e-324)),
            (DataType::Float, Value::Float(0.1)),
            (DataType::Float, Value::Float(f32::NEG_INFINITY)),
            (DataType::Date, Value::Int32(20240201)),
            (DataType::Blob, Value::Binary(vec![0, 0xab, 0xff])),
            (DataType::Boolean, Value::Boolean(true)),
            (DataType::Text, Value::Binary("a,\"b\"".into())),
        ];
        for (t, v) in cases {
            let text = format_value(t, &v);
            assert_eq!(parse_value(t, &text).unwrap(), v, "{t} {text}");
        }
        assert_eq!(format_value(DataType::Date, &Value::Int32(20240201)), "2024-02-01");
        assert_eq!(format_value(DataType::Blob, &Value::Binary(vec![0x0d, 0xff])), "\\x0dff");
        assert_eq!(format_value(DataType::Double, &Value::Double(f64::NAN)), "NaN");
        assert!(parse_value(DataType::Date, "2023-02-29").is_err());
    }
}

//! Time literals shared by both surfaces: ISO-8601 date-times and IoTDB
//! durations (`1d2h`, `500ms`).

use crate::error::{Error, Result};

/// Milliseconds since the epoch of an ISO-8601 date or date-time (UTC unless a zone is given).
pub(crate) fn parse_iso(text: &str) -> Result<i64> {
    let bad = || Error::InvalidTime(format!("{text:?} is not a valid ISO 8601 time"));
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    // `%#z` also takes PostgreSQL's short offsets (`+00`, `+05:30`).
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(text, fmt) {
            return Ok(t.timestamp_millis());
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).ok_or_else(bad);
    }
    Err(bad())
}

/// `1d2h30m`, `500ms` … in milliseconds (IoTDB units y, mo, w, d, h, m, s, ms, us, ns).
pub(crate) fn parse_duration(text: &str) -> Result<i64> {
    let bad = || Error::InvalidTime(format!("{text:?} is not a duration"));
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let ms = match &rest[..unit_len].to_ascii_lowercase()[..] {
            "y" => 365 * 86_400_000,
            "mo" => 30 * 86_400_000,
            "w" => 7 * 86_400_000,
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1000,
            "ms" => 1,
            "us" | "ns" => 0,
            _ => return Err(bad()),
        };
        total = total.checked_add(n.checked_mul(ms).ok_or_else(bad)?).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_iso("2017-11-01T00:00:00").unwrap(), 1_509_494_400_000);
        assert_eq!(parse_iso("2017-11-01T08:00:00+08:00").unwrap(), 1_509_494_400_000);
        assert_eq!(parse_iso("1970-01-01T00:00:00.004").unwrap(), 4);
        assert!(matches!(parse_iso("2017-13-45T00:00:00"), Err(Error::InvalidTime(_))));
        assert_eq!(parse_duration("1d2h").unwrap(), 93_600_000);
        assert!(parse_duration("5x").is_err());
    }
}

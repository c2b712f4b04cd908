//! Time literals shared by both surfaces: ISO-8601 date-times and IoTDB
//! durations (`1d2h`, `500ms`).

use crate::error::{Error, Result};

/// Milliseconds since the epoch of an ISO-8601 date or date-time (UTC unless a zone is given).
pub fn parse_iso(text: &str) -> Result<i64> {
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
pub fn parse_duration(text: &str) -> Result<i64> {
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

/// A duration that may count calendar months (`1mo`, `1y`) besides fixed
/// milliseconds, as IoTDB's `GROUP BY` time windows take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CalendarDuration {
    pub months: i64,
    pub ms: i64,
}

impl CalendarDuration {
    /// `1mo`, `2y`, `1d12h` … (months and years are calendar units).
    pub fn parse(text: &str) -> Result<CalendarDuration> {
        let bad = || Error::InvalidTime(format!("{text:?} is not a duration"));
        let mut out = CalendarDuration::default();
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let unit_len = rest[digits..].find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len() - digits);
            let unit = rest[digits..digits + unit_len].to_ascii_lowercase();
            let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
            match unit.as_str() {
                "mo" => out.months = out.months.checked_add(n).ok_or_else(bad)?,
                "y" => out.months = out.months.checked_add(n.checked_mul(12).ok_or_else(bad)?).ok_or_else(bad)?,
                "us" | "ns" if n != 0 => {
                    return Err(Error::InvalidTime(format!("{text:?} is finer than the millisecond time precision")));
                }
                _ => out.ms = out.ms.checked_add(parse_duration(&rest[..digits + unit_len])?).ok_or_else(bad)?,
            }
            rest = &rest[digits + unit_len..];
        }
        if out.months < 0 || out.ms < 0 || (out.months == 0 && out.ms == 0) {
            return Err(Error::InvalidTime(format!("{text:?} is not a positive duration")));
        }
        Ok(out)
    }

    /// `self` × `k` added to `t` (months first, in UTC, the day clamped to
    /// the month's length; then milliseconds).
    pub fn add_times(&self, t: i64, k: i64) -> i64 {
        let mut out = t;
        if self.months != 0 {
            out = add_months(t, self.months.saturating_mul(k));
        }
        out.saturating_add(self.ms.saturating_mul(k))
    }
}

/// `t` plus `months` calendar months in UTC (31 Jan + 1 month = 28/29 Feb).
pub fn add_months(t: i64, months: i64) -> i64 {
    use chrono::Months;
    let Some(dt) = chrono::DateTime::from_timestamp_millis(t) else { return t };
    let shifted = match u32::try_from(months.unsigned_abs()) {
        Ok(m) if months >= 0 => dt.checked_add_months(Months::new(m)),
        Ok(m) => dt.checked_sub_months(Months::new(m)),
        Err(_) => None,
    };
    shifted.map_or(if months >= 0 { i64::MAX } else { i64::MIN }, |d| d.timestamp_millis())
}

/// IoTDB's `GROUP BY` time windows: window *k* is
/// `[start + k·step, start + k·step + interval)`, both computed from the
/// original start (month arithmetic does not accumulate), the last one
/// clipped to `end`. With `left_open` (`(start, end]`) every window is
/// `(a, b]` and is shown by its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Windows {
    pub start: i64,
    pub end: i64,
    pub interval: CalendarDuration,
    pub step: CalendarDuration,
    pub left_open: bool,
}

impl Windows {
    /// Window `k` as `[a, b)` (before the `left_open` shift), if it starts before the end.
    pub fn window(&self, k: i64) -> Option<(i64, i64)> {
        if k < 0 {
            return None;
        }
        let a = self.step.add_times(self.start, k);
        if a >= self.end {
            return None;
        }
        let reach = CalendarDuration {
            months: self.step.months.saturating_mul(k).saturating_add(self.interval.months),
            ms: self.step.ms.saturating_mul(k).saturating_add(self.interval.ms),
        };
        Some((a, reach.add_times(self.start, 1).min(self.end)))
    }

    /// Window `k` as an inclusive range of the times inside it.
    pub fn range(&self, k: i64) -> Option<storage::TimeRange> {
        let (a, b) = self.window(k)?;
        Some(if self.left_open { storage::TimeRange::new(a + 1, b) } else { storage::TimeRange::new(a, b - 1) })
    }

    /// The time a window is shown at: its start, or its end when left-open.
    pub fn label(&self, k: i64) -> Option<i64> {
        let (a, b) = self.window(k)?;
        Some(if self.left_open { b } else { a })
    }

    /// How many windows there are.
    pub fn count(&self) -> i64 {
        if self.end <= self.start {
            return 0;
        }
        // An estimate from the step's length, corrected by walking.
        let mut k = self.estimate(self.end);
        while k > 0 && self.window(k - 1).is_none() {
            k -= 1;
        }
        while self.window(k).is_some() {
            k += 1;
        }
        k
    }

    /// A window index near the one starting at `t`.
    fn estimate(&self, t: i64) -> i64 {
        let len = self.step.months.saturating_mul(28 * 86_400_000).saturating_add(self.step.ms).max(1);
        ((t.saturating_sub(self.start)) / len).max(0)
    }

    /// The largest `k` whose window starts at or before `t` (−1 when none).
    fn last_starting_by(&self, t: i64) -> i64 {
        let start_of = |k: i64| self.step.add_times(self.start, k);
        if t < self.start {
            return -1;
        }
        let mut k = self.estimate(t);
        while k > 0 && start_of(k) > t {
            k -= 1;
        }
        while start_of(k + 1) <= t {
            k += 1;
        }
        k
    }

    /// The windows containing time `t`, in increasing order.
    pub fn containing(&self, t: i64) -> impl Iterator<Item = i64> + '_ {
        // For a left-open window `(a, b]`, `t` is inside when a < t ≤ b.
        let probe = if self.left_open { t - 1 } else { t };
        let hi = self.last_starting_by(probe).min(self.count_hint());
        let mut lo = hi;
        while lo >= 0 && self.range(lo).is_some_and(|r| r.end >= t) {
            lo -= 1;
        }
        (lo + 1..=hi).filter(move |k| self.range(*k).is_some_and(|r| r.contains(t)))
    }

    /// The first time after `t` at which a window begins (for left-open
    /// windows, its first time inside).
    pub fn next_start_after(&self, t: i64) -> Option<i64> {
        let probe = if self.left_open { t - 1 } else { t };
        let k = self.last_starting_by(probe) + 1;
        self.range(k).map(|r| r.start)
    }

    fn count_hint(&self) -> i64 {
        self.last_starting_by(self.end - 1)
    }
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

    fn ms(text: &str) -> i64 {
        parse_iso(text).unwrap()
    }

    #[test]
    fn month_windows_count_from_the_original_start() {
        let month = CalendarDuration::parse("1mo").unwrap();
        let w = Windows { start: ms("2024-01-31"), end: ms("2024-05-01"), interval: month, step: month, left_open: false };
        let starts: Vec<i64> = (0..w.count()).map(|k| w.window(k).unwrap().0).collect();
        assert_eq!(starts, vec![ms("2024-01-31"), ms("2024-02-29"), ms("2024-03-31"), ms("2024-04-30")]);
        assert_eq!(w.window(3).unwrap().1, ms("2024-05-01"), "the last window is clipped to the end");
        assert_eq!(w.containing(ms("2024-03-30")).collect::<Vec<_>>(), vec![1]);
        assert_eq!(CalendarDuration::parse("1y").unwrap().months, 12);
        assert!(CalendarDuration::parse("1us").is_err());
    }

    #[test]
    fn sliding_windows_overlap_and_leave_gaps() {
        let d = |t| CalendarDuration::parse(t).unwrap();
        let overlap = Windows { start: 0, end: 100, interval: d("30ms"), step: d("10ms"), left_open: false };
        assert_eq!(overlap.count(), 10);
        assert_eq!(overlap.containing(35).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(overlap.window(9), Some((90, 100)));
        let gaps = Windows { start: 0, end: 100, interval: d("10ms"), step: d("30ms"), left_open: false };
        assert_eq!(gaps.count(), 4);
        assert_eq!(gaps.containing(15).count(), 0);
        assert_eq!(gaps.containing(31).collect::<Vec<_>>(), vec![1]);
        let open = Windows { start: 0, end: 30, interval: d("10ms"), step: d("10ms"), left_open: true };
        assert_eq!(open.containing(10).collect::<Vec<_>>(), vec![0]);
        assert_eq!(open.containing(0).count(), 0);
        assert_eq!(open.label(0), Some(10));
    }
}

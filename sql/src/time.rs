//! Time literals shared by both surfaces: ISO-8601 date-times and IoTDB
//! durations (`1d2h`, `500ms`).

use chrono::{NaiveDateTime, Offset, TimeZone};

use crate::error::{Error, Result};

/// A session's time zone (PostgreSQL's `TimeZone` setting): the zone a
/// time literal without an offset is read in, and the calendar that
/// month windows follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    Named(chrono_tz::Tz),
    Fixed(chrono::FixedOffset),
}

impl Zone {
    pub const UTC: Zone = Zone::Named(chrono_tz::UTC);

    /// `UTC`, `Europe/Berlin`, `+05:30` … (`None` for anything else).
    pub fn parse(name: &str) -> Option<Zone> {
        if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
            return Some(Zone::Named(tz));
        }
        let offset = |text: &str| -> Option<chrono::FixedOffset> {
            let (sign, rest) = match text.as_bytes().first()? {
                b'+' => (1, &text[1..]),
                b'-' => (-1, &text[1..]),
                _ => return None,
            };
            let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
            let seconds = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
            chrono::FixedOffset::east_opt(sign * seconds)
        };
        offset(name).map(Zone::Fixed)
    }

    /// The local wall-clock time at instant `t` (ms).
    fn local(&self, t: i64) -> Option<NaiveDateTime> {
        let utc = chrono::DateTime::from_timestamp_millis(t)?.naive_utc();
        Some(match self {
            Zone::Named(tz) => utc + tz.offset_from_utc_datetime(&utc).fix(),
            Zone::Fixed(offset) => utc + *offset,
        })
    }

    /// The instant (ms) of local time `local`: the earlier one where the
    /// clocks were turned back; in a gap where they were turned forward,
    /// read with the offset before the gap (as PostgreSQL does).
    fn instant(&self, local: NaiveDateTime) -> i64 {
        let offset = match self {
            Zone::Fixed(offset) => *offset,
            Zone::Named(tz) => match tz.offset_from_local_datetime(&local).earliest() {
                Some(o) => o.fix(),
                None => tz.offset_from_utc_datetime(&(local - chrono::Duration::days(1))).fix(),
            },
        };
        (local - offset).and_utc().timestamp_millis()
    }
}

/// Milliseconds since the epoch of an ISO-8601 date or date-time (UTC unless a zone is given).
pub fn parse_iso(text: &str) -> Result<i64> {
    parse_iso_in(text, Zone::UTC)
}

/// [`parse_iso`], a date-time without an offset read in `zone`.
pub fn parse_iso_in(text: &str, zone: Zone) -> Result<i64> {
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
            return Ok(zone.instant(t));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| zone.instant(t)).ok_or_else(bad);
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

    /// `self` × `k` added to `t` (months first, on `zone`'s calendar, the
    /// day clamped to the month's length; then milliseconds).
    pub fn add_times(&self, t: i64, k: i64, zone: Zone) -> i64 {
        let mut out = t;
        if self.months != 0 {
            out = add_months(t, self.months.saturating_mul(k), zone);
        }
        out.saturating_add(self.ms.saturating_mul(k))
    }
}

/// `t` plus `months` calendar months of `zone`'s wall clock (31 Jan +
/// 1 month = 28/29 Feb; midnight stays midnight across a change of
/// daylight saving time).
pub fn add_months(t: i64, months: i64, zone: Zone) -> i64 {
    use chrono::Months;
    let Some(local) = zone.local(t) else { return t };
    let shifted = match u32::try_from(months.unsigned_abs()) {
        Ok(m) if months >= 0 => local.checked_add_months(Months::new(m)),
        Ok(m) => local.checked_sub_months(Months::new(m)),
        Err(_) => None,
    };
    shifted.map_or(if months >= 0 { i64::MAX } else { i64::MIN }, |d| zone.instant(d))
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
    /// The calendar of month steps.
    pub zone: Zone,
}

impl Windows {
    /// Window `k` as `[a, b)` (before the `left_open` shift), if it starts before the end.
    pub fn window(&self, k: i64) -> Option<(i64, i64)> {
        if k < 0 {
            return None;
        }
        let a = self.step.add_times(self.start, k, self.zone);
        if a >= self.end {
            return None;
        }
        let reach = CalendarDuration {
            months: self.step.months.saturating_mul(k).saturating_add(self.interval.months),
            ms: self.step.ms.saturating_mul(k).saturating_add(self.interval.ms),
        };
        Some((a, reach.add_times(self.start, 1, self.zone).min(self.end)))
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
        let start_of = |k: i64| self.step.add_times(self.start, k, self.zone);
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
        let w = Windows { start: ms("2024-01-31"), end: ms("2024-05-01"), interval: month, step: month, left_open: false, zone: Zone::UTC };
        let starts: Vec<i64> = (0..w.count()).map(|k| w.window(k).unwrap().0).collect();
        assert_eq!(starts, vec![ms("2024-01-31"), ms("2024-02-29"), ms("2024-03-31"), ms("2024-04-30")]);
        assert_eq!(w.window(3).unwrap().1, ms("2024-05-01"), "the last window is clipped to the end");
        assert_eq!(w.containing(ms("2024-03-30")).collect::<Vec<_>>(), vec![1]);
        assert_eq!(CalendarDuration::parse("1y").unwrap().months, 12);
        assert!(CalendarDuration::parse("1us").is_err());
    }

    #[test]
    fn months_follow_the_session_zones_calendar() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        // Local midnights: +01:00 in winter, +02:00 in summer.
        let jan = parse_iso_in("2024-01-01T00:00:00", berlin).unwrap();
        assert_eq!(jan, ms("2023-12-31T23:00:00"));
        let month = CalendarDuration::parse("1mo").unwrap();
        let w = Windows { start: jan, end: parse_iso_in("2024-05-01", berlin).unwrap(), interval: month, step: month, left_open: false, zone: berlin };
        let starts: Vec<i64> = (0..w.count()).map(|k| w.window(k).unwrap().0).collect();
        assert_eq!(starts, vec![ms("2023-12-31T23:00:00"), ms("2024-01-31T23:00:00"), ms("2024-02-29T23:00:00"), ms("2024-03-31T22:00:00")]);
        assert_eq!(w.containing(ms("2024-03-31T22:30:00")).collect::<Vec<_>>(), vec![3], "1 April 00:30 local is in April");
        // Offsets given in the literal win; a fixed-offset zone; a local time
        // skipped by the clocks takes the offset before the change.
        assert_eq!(parse_iso_in("2024-01-01T00:00:00+00:00", berlin).unwrap(), ms("2024-01-01"));
        assert_eq!(parse_iso_in("2024-01-01", Zone::parse("+05:30").unwrap()).unwrap(), ms("2023-12-31T18:30:00"));
        assert_eq!(parse_iso_in("2024-03-31T02:30:00", berlin).unwrap(), ms("2024-03-31T01:30:00"));
        assert_eq!(Zone::parse("Mars/Olympus"), None);
    }

    #[test]
    fn sliding_windows_overlap_and_leave_gaps() {
        let d = |t| CalendarDuration::parse(t).unwrap();
        let overlap = Windows { start: 0, end: 100, interval: d("30ms"), step: d("10ms"), left_open: false, zone: Zone::UTC };
        assert_eq!(overlap.count(), 10);
        assert_eq!(overlap.containing(35).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(overlap.window(9), Some((90, 100)));
        let gaps = Windows { start: 0, end: 100, interval: d("10ms"), step: d("30ms"), left_open: false, zone: Zone::UTC };
        assert_eq!(gaps.count(), 4);
        assert_eq!(gaps.containing(15).count(), 0);
        assert_eq!(gaps.containing(31).collect::<Vec<_>>(), vec![1]);
        let open = Windows { start: 0, end: 30, interval: d("10ms"), step: d("10ms"), left_open: true, zone: Zone::UTC };
        assert_eq!(open.containing(10).collect::<Vec<_>>(), vec![0]);
        assert_eq!(open.containing(0).count(), 0);
        assert_eq!(open.label(0), Some(10));
    }
}

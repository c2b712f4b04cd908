//! The benchmark queries (TSQL and their SQL twins), how one is timed, and
//! how Q6's answer is checked against the generated data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, SimpleQueryMessage, SimpleQueryRow};

use crate::workload::SENSORS;
use crate::{Layout, Target};

/// Which surface a query is written in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    Tsql,
    Sql,
}

impl Surface {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Surface::Tsql => "TSQL",
            Surface::Sql => "SQL",
        }
    }
}

/// One query of the run.
pub(crate) struct Query {
    pub(crate) id: &'static str,
    pub(crate) surface: Surface,
    pub(crate) text: String,
    pub(crate) expected_rows: usize,
    pub(crate) target_ms: f64,
    /// For Q6: the exact answer (time → s0..s9).
    pub(crate) expected: Option<BTreeMap<i64, [f64; SENSORS]>>,
}

/// QY: daily windows over the year workload, from statistics.
pub(crate) fn year_query(start: i64, seconds: i64) -> Query {
    let end = start + seconds * 1000;
    let days = (seconds as usize).div_ceil(86_400);
    let text = format!("SELECT count(s), avg(s), max_value(s) FROM root.year.d1 GROUP BY ([{}, {}), 1d)", iso(start), iso(end));
    Query { id: "QY", surface: Surface::Tsql, text, expected_rows: days, target_ms: 20.0, expected: None }
}

/// The queries of the paper workload, for `target` (Arbor runs both
/// surfaces, PostgreSQL the SQL twins only).
pub(crate) fn paper_queries(target: Target, layout: &Layout) -> Vec<Query> {
    const DEVICE: usize = 3;
    const SENSOR: usize = 5;
    let day = layout.paper_start_ms;
    let day_end = day + 86_400_000;
    let secs = layout.paper_seconds as i64;
    // Q1's hour: noon when the data reaches it, else the first hour.
    let hour = if secs >= 13 * 3600 { day + 12 * 3_600_000 } else { day };
    let hour_rows = ((day + secs * 1000 - hour) / 1000).clamp(0, 3600) as usize;
    let day_rows = (secs as usize).min(86_400);
    let device = format!("root.bench.d{DEVICE}");
    let device_table = table(target, "bench", DEVICE);
    let all: Vec<String> = (0..SENSORS).map(|s| format!("s{s}")).collect();
    let all = all.join(", ");
    let mut out = Vec::new();
    let mut add = |id, surface, text: String, expected_rows, target_ms| {
        if surface == Surface::Tsql && target == Target::Postgres {
            return;
        }
        out.push(Query { id, surface, text, expected_rows, target_ms, expected: None });
    };
    let (h0, h1) = (hour, hour + 3_600_000);
    add("Q1", Surface::Tsql, format!("SELECT s{SENSOR} FROM {device} WHERE time >= {} AND time < {}", iso(h0), iso(h1)), hour_rows, 1.5);
    add("Q1", Surface::Sql, format!("SELECT time, s{SENSOR} FROM {device_table} WHERE {} ORDER BY time", sql_range(h0, h1)), hour_rows, 1.5);
    add("Q1b", Surface::Tsql, format!("SELECT s{SENSOR} FROM {device} WHERE time >= {} AND time < {}", iso(day), iso(day_end)), day_rows, 30.0);
    add("Q1b", Surface::Sql, format!("SELECT time, s{SENSOR} FROM {device_table} WHERE {} ORDER BY time", sql_range(day, day_end)), day_rows, 30.0);
    add("Q2", Surface::Tsql, format!("SELECT {all} FROM {device} WHERE time >= {} AND time < {}", iso(h0), iso(h1)), hour_rows, 4.0);
    add("Q2", Surface::Sql, format!("SELECT time, {all} FROM {device_table} WHERE {} ORDER BY time", sql_range(h0, h1)), hour_rows, 4.0);
    add("Q3", Surface::Tsql, format!("SELECT count(s{SENSOR}) FROM {device}"), 1, 0.3);
    add("Q3", Surface::Sql, format!("SELECT count(s{SENSOR}) FROM {device_table}"), 1, 0.3);
    let tsql_aggs: Vec<String> = (0..SENSORS).map(|s| format!("avg(s{s}), min_value(s{s}), max_value(s{s})")).collect();
    let sql_aggs: Vec<String> = (0..SENSORS).map(|s| format!("avg(s{s}), min(s{s}), max(s{s})")).collect();
    add("Q3b", Surface::Tsql, format!("SELECT {} FROM {device}", tsql_aggs.join(", ")), 1, 0.3);
    add("Q3b", Surface::Sql, format!("SELECT {} FROM {device_table}", sql_aggs.join(", ")), 1, 0.3);
    // GROUP BY ([s, e), 1m) emits every window of the day, empty ones too;
    // the SQL twin only the minutes that have data.
    add("Q4", Surface::Tsql, format!("SELECT avg(s{SENSOR}) FROM {device} GROUP BY ([{}, {}), 1m)", iso(day), iso(day_end)), 1440, 2.0);
    add(
        "Q4",
        Surface::Sql,
        format!(
            "SELECT date_bin(interval '1 minute', time, timestamptz '{}') AS minute, avg(s{SENSOR}) FROM {device_table} WHERE {} GROUP BY minute ORDER BY minute",
            iso_sql(day),
            sql_range(day, day_end)
        ),
        day_rows.div_ceil(60),
        2.0,
    );
    add("Q5", Surface::Tsql, "SELECT LAST * FROM root.bench.**".to_string(), layout.paper_devices * SENSORS, 0.3);
    // The latest row of every device table, which here (every row has all
    // ten values) holds the last value of each of its series.
    let latest: Vec<String> = (0..layout.paper_devices)
        .map(|d| format!("(SELECT 'root.bench.d{d}' AS device, time, {all} FROM {} ORDER BY time DESC LIMIT 1)", table(target, "bench", d)))
        .collect();
    add("Q5", Surface::Sql, latest.join(" UNION ALL "), layout.paper_devices, 0.3);
    out
}

/// Q6 on both surfaces, checked against `expected`.
pub(crate) fn late_queries(target: Target, layout: &Layout, device: usize, expected: &BTreeMap<i64, [f64; SENSORS]>) -> Vec<Query> {
    let (start, end) = (layout.late_start_ms, layout.late_start_ms + 3_600_000);
    let all: Vec<String> = (0..SENSORS).map(|s| format!("s{s}")).collect();
    let all = all.join(", ");
    let rows = expected.range(start..end).count();
    let mut out = Vec::new();
    if target == Target::Arbor {
        out.push(Query {
            id: "Q6",
            surface: Surface::Tsql,
            text: format!("SELECT {all} FROM root.late.d{device} WHERE time >= {} AND time < {}", iso(start), iso(end)),
            expected_rows: rows,
            target_ms: 5.0,
            expected: Some(expected.clone()),
        });
    }
    out.push(Query {
        id: "Q6",
        surface: Surface::Sql,
        text: format!("SELECT time, {all} FROM {} WHERE {} ORDER BY time", table(target, "late", device), sql_range(start, end)),
        expected_rows: rows,
        target_ms: 5.0,
        expected: Some(expected.clone()),
    });
    out
}

/// A device's table: quoted path on Arbor, `bench_dN`/`late_dN` on PostgreSQL.
pub(crate) fn table(target: Target, workload: &str, device: usize) -> String {
    match target {
        Target::Arbor => format!("\"root.{workload}.d{device}\""),
        Target::Postgres => format!("{workload}_d{device}"),
    }
}

fn sql_range(start: i64, end: i64) -> String {
    format!("time >= '{}' AND time < '{}'", iso(start), iso(end))
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

/// `2024-01-01T12:00:00Z`: a TSQL time literal, and a SQL timestamp string.
pub(crate) fn iso(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S%.fZ").to_string()
}

/// `2024-01-01 12:00:00.000+00`: PostgreSQL's own text form.
pub(crate) fn iso_sql(ms: i64) -> String {
    utc(ms).format("%Y-%m-%d %H:%M:%S%.3f+00").to_string()
}

/// The outcome of one query.
pub(crate) enum Outcome {
    Timed { rows: usize, runs: Vec<Duration>, problem: Option<String> },
    Failed(String),
}

/// A warm-up (whose answer is checked), then `runs` timed runs, each until
/// every row is received and every field decoded.
pub(crate) async fn run(client: &Client, query: &Query, runs: usize) -> Outcome {
    let rows = match client.simple_query(&query.text).await {
        Ok(messages) => rows_of(messages),
        Err(e) => return Outcome::Failed(describe_error(&e)),
    };
    let mut problem = None;
    if rows.len() != query.expected_rows {
        problem = Some(format!("expected {} rows", query.expected_rows));
    } else if let Some(expected) = &query.expected {
        if let Err(e) = check_rows(&rows, expected) {
            problem = Some(e);
        }
    }
    let count = rows.len();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let messages = match client.simple_query(&query.text).await {
            Ok(m) => m,
            Err(e) => return Outcome::Failed(describe_error(&e)),
        };
        let mut values = 0usize;
        for m in &messages {
            if let SimpleQueryMessage::Row(row) = m {
                for i in 0..row.len() {
                    if let Some(text) = row.get(i) {
                        values += std::hint::black_box(text).len().min(1);
                    }
                }
            }
        }
        times.push(start.elapsed());
        std::hint::black_box(values);
    }
    Outcome::Timed { rows: count, runs: times, problem }
}

fn rows_of(messages: Vec<SimpleQueryMessage>) -> Vec<SimpleQueryRow> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// `error: <SQLSTATE> <message>` for a server error, else the client's.
pub(crate) fn describe_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("error: {} {}", db.code().code(), db.message()),
        None => format!("error: {e}"),
    }
}

/// Rows (Time, then s0..s9 in any order, named `sK` or `<device>.sK`) in
/// ascending time, equal to `expected` value for value.
fn check_rows(rows: &[SimpleQueryRow], expected: &BTreeMap<i64, [f64; SENSORS]>) -> Result<(), String> {
    let Some(first) = rows.first() else { return Ok(()) };
    let mut sensor_of = Vec::new();
    for (i, c) in first.columns().iter().enumerate().skip(1) {
        let leaf = c.name().rsplit('.').next().unwrap_or_default();
        let s = leaf.strip_prefix('s').and_then(|n| n.parse::<usize>().ok()).filter(|s| *s < SENSORS);
        match s {
            Some(s) => sensor_of.push((i, s)),
            None => return Err(format!("unexpected column {}", c.name())),
        }
    }
    if sensor_of.len() != SENSORS {
        return Err(format!("{} value columns", sensor_of.len()));
    }
    let mut previous = i64::MIN;
    let mut wrong = 0usize;
    let mut first_wrong = String::new();
    for (n, (row, (time, values))) in rows.iter().zip(expected).enumerate() {
        let got = row.get(0).and_then(parse_time);
        if got != Some(*time) {
            return Err(format!("row {}: time {:?}, expected {}", n + 1, row.get(0), iso_sql(*time)));
        }
        if *time <= previous {
            return Err(format!("row {}: not in ascending time", n + 1));
        }
        previous = *time;
        for &(i, s) in &sensor_of {
            let v = row.get(i).and_then(|t| t.parse::<f64>().ok());
            if v != Some(values[s]) {
                if wrong == 0 {
                    let _ = write!(first_wrong, "row {} s{s}: {:?}, expected {}", n + 1, row.get(i), values[s]);
                }
                wrong += 1;
            }
        }
    }
    if wrong > 0 {
        return Err(format!("{wrong} wrong values, first {first_wrong}"));
    }
    Ok(())
}

/// A timestamptz in text (`2024-01-01 12:00:00+00`, fractions and other
/// offsets allowed) or epoch milliseconds.
fn parse_time(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let b = text.as_bytes();
    // PostgreSQL prints a whole-hour offset as `+00`; chrono wants `+00:00`.
    let short_offset = b.len() > 13 && matches!(b[b.len() - 3], b'+' | b'-') && b[b.len() - 2..].iter().all(u8::is_ascii_digit);
    let with_minutes = if short_offset { format!("{text}:00") } else { text.to_string() };
    DateTime::parse_from_str(&with_minutes, "%Y-%m-%d %H:%M:%S%.f%:z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_postgres_text_form() {
        assert_eq!(parse_time("2024-01-01 00:00:01+00"), Some(1_704_067_201_000));
        assert_eq!(parse_time("2024-01-01 00:00:01.5+00"), Some(1_704_067_201_500));
        assert_eq!(parse_time("2024-01-01 01:00:01+01"), Some(1_704_067_201_000));
        assert_eq!(parse_time("2024-01-01T00:00:01Z"), Some(1_704_067_201_000));
        assert_eq!(iso(1_704_067_201_000), "2024-01-01T00:00:01Z");
    }
}

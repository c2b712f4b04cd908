//! The query engine through the real server: EXPLAIN shows the lazy device
//! scan with its pushed-down ranges, and no scan where exact statistics
//! answer an aggregate; device tables have PostgreSQL row
//! semantics; epoch integers compare with `time`; Describe plans without
//! running; the query memory budget fails a query with 53200 and the server
//! keeps serving; `SELECT *` over 20 million points streams to the client
//! in bounded server memory.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::Path;

use futures::{pin_mut, TryStreamExt};
use sqllogictests::Server;
use tokio_postgres::{Client, SimpleQueryMessage};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_arbor"))
}

/// The text cells of every row of a simple query.
async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

#[tokio::test]
async fn explain_shows_the_device_scan_with_its_pushed_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(binary(), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client.batch_execute("INSERT INTO root.q.d1(timestamp, s1, s2) VALUES (100, 1, 2), (150, 3, 4), (2000, 5, 6)").await.unwrap();
    let plan = rows(&client, r#"EXPLAIN SELECT time, s1 FROM "root.q.d1" WHERE time >= 100 AND time < 200 OR time > 1000"#).await;
    let text: String = plan.iter().flatten().flatten().cloned().collect::<Vec<_>>().join("\n");
    assert!(text.contains("DeviceScanExec: device=root.q.d1, columns=[time, s1], time=[100..=199, 1001..]"), "{text}");
    assert!(!text.contains("DataSourceExec") && !text.contains("MemoryExec"), "no in-memory source: {text}");
    // TSQL plans onto the same scan; LIMIT and the time order go into it.
    let plan = rows(&client, "EXPLAIN SELECT s1 FROM root.q.d1 WHERE time > 120 ORDER BY TIME DESC LIMIT 1").await;
    let text: String = plan.iter().flatten().flatten().cloned().collect::<Vec<_>>().join("\n");
    assert!(text.contains("DeviceScanExec: device=root.q.d1, columns=[time, s1], time=[121..], order=desc, limit=1"), "{text}");
    // Aggregates without value filters come from statistics on both surfaces.
    for sql in [r#"EXPLAIN SELECT count(s1), max(s2) FROM "root.q.d1""#, "EXPLAIN SELECT count(s1), max_value(s2) FROM root.q.d1", r#"EXPLAIN SELECT max(time) FROM "root.q.d1""#] {
        let text: String = rows(&client, sql).await.iter().flatten().flatten().cloned().collect::<Vec<_>>().join("\n");
        assert!(text.contains("SeriesAggregateExec"), "{sql}: {text}");
    }
    // So are date_bin buckets of a device table bounded by WHERE.
    let sql = r#"EXPLAIN SELECT date_bin(interval '1 minute', time) AS m, avg(s1) FROM "root.q.d1" WHERE time >= 0 AND time < 3600000 GROUP BY 1 ORDER BY 1"#;
    let text: String = rows(&client, sql).await.iter().flatten().flatten().cloned().collect::<Vec<_>>().join("\n");
    assert!(text.contains("SeriesAggregateExec") && !text.contains("DeviceScanExec"), "{text}");
    assert_eq!(rows(&client, "SELECT s1 FROM root.q.d1 WHERE time > 120 ORDER BY TIME DESC LIMIT 1").await, vec![vec![Some("1970-01-01 00:00:02+00".into()), Some("5".into())]]);
    server.stop().unwrap();
}

#[tokio::test]
async fn show_is_planned_over_the_system_tables_with_the_pattern_walked_in_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(binary(), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client.batch_execute("INSERT INTO root.q.d1(timestamp, s1, s2) VALUES (1, 1, 2); INSERT INTO root.q.d2(timestamp, s1) VALUES (1, 1)").await.unwrap();
    let explain = |sql: &'static str| {
        let client = &client;
        async move { rows(client, sql).await.iter().flatten().flatten().cloned().collect::<Vec<_>>().join("\n") }
    };
    let text = explain("EXPLAIN SHOW TIMESERIES root.q.d1.* LIMIT 1").await;
    assert!(text.contains("SystemTableExec: arbor.timeseries matching root.q.d1.*, limit=1"), "{text}");
    let text = explain("EXPLAIN COUNT DEVICES root.q.**").await;
    assert!(text.contains("SystemTableExec: arbor.devices matching root.q.**"), "{text}");
    // Children of root.q are the nodes root.q.* matches.
    let text = explain("EXPLAIN SHOW CHILD PATHS root.q").await;
    assert!(text.contains("SystemTableExec: arbor.nodes matching root.q.*"), "{text}");
    // The same pushdown from SQL.
    let text = explain("EXPLAIN SELECT timeseries FROM arbor.timeseries WHERE path_matches(timeseries, 'root.q.*.s2')").await;
    assert!(text.contains("SystemTableExec: arbor.timeseries matching root.q.*.s2") && !text.contains("FilterExec"), "{text}");
    assert_eq!(rows(&client, "SELECT timeseries FROM arbor.timeseries WHERE path_matches(timeseries, 'root.q.*.s2')").await, vec![vec![Some("root.q.d1.s2".into())]]);
    // Describe answers from the plan (extended protocol), with IoTDB's headers.
    let statement = client.prepare("SHOW DEVICES root.q.** WITH DATABASE").await.unwrap();
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["Device", "Database", "IsAligned"]);
    server.stop().unwrap();
}

#[tokio::test]
async fn the_latest_row_of_a_device_is_read_in_descending_order_or_from_the_last_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(binary(), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client.batch_execute("INSERT INTO root.lr.d1(timestamp, s1, s2) VALUES (100, 1, 10), (200, 2, 20)").await.unwrap();
    client.batch_execute("INSERT INTO root.lr.d1(timestamp, s2) VALUES (300, 30)").await.unwrap();
    client.batch_execute("INSERT INTO root.lr.d2(timestamp, s1) VALUES (50, 5)").await.unwrap();
    let row = |t: &str, a: Option<&str>, b: Option<&str>| vec![Some(t.to_string()), a.map(str::to_string), b.map(str::to_string)];
    let latest = r#"SELECT time, s1, s2 FROM "root.lr.d1" ORDER BY time DESC LIMIT 1"#;
    // The sort goes into the scan: no SortExec, the limit reaches storage.
    let text: String = rows(&client, &format!("EXPLAIN {latest}")).await.iter().flatten().flatten().cloned().collect::<Vec<_>>().join("\n");
    assert!(text.contains("DeviceScanExec: device=root.lr.d1, columns=[time, s1, s2], time=[all], order=desc, limit=1"), "{text}");
    assert!(!text.contains("SortExec"), "{text}");
    // A row where any measurement has a point: s1 has none at 300.
    assert_eq!(rows(&client, latest).await, vec![row("1970-01-01 00:00:00.3+00", None, Some("30"))]);
    let union = r#"(SELECT 'd1' AS d, time, s1 FROM "root.lr.d1" ORDER BY time DESC LIMIT 1) UNION ALL (SELECT 'd2', time, s1 FROM "root.lr.d2" ORDER BY time DESC LIMIT 1) ORDER BY d"#;
    assert_eq!(
        rows(&client, union).await,
        vec![row("d1", Some("1970-01-01 00:00:00.3+00"), None), row("d2", Some("1970-01-01 00:00:00.05+00"), Some("5"))]
    );
    // A late point does not change it, an overwrite does, a delete of the
    // latest point uncovers the row before it.
    client.batch_execute("INSERT INTO root.lr.d1(timestamp, s1) VALUES (150, 15)").await.unwrap();
    client.batch_execute("INSERT INTO root.lr.d1(timestamp, s2) VALUES (300, 33)").await.unwrap();
    assert_eq!(rows(&client, latest).await, vec![row("1970-01-01 00:00:00.3+00", None, Some("33"))]);
    client.batch_execute("DELETE FROM root.lr.d1.s2 WHERE time = 300").await.unwrap();
    assert_eq!(rows(&client, latest).await, vec![row("1970-01-01 00:00:00.2+00", Some("2"), Some("20"))]);
    // A range that ends before the latest row is read, not answered from the last values.
    let before = r#"SELECT time, s1, s2 FROM "root.lr.d1" WHERE time < 200 ORDER BY time DESC LIMIT 1"#;
    assert_eq!(rows(&client, before).await, vec![row("1970-01-01 00:00:00.15+00", Some("15"), None)]);
    let first = r#"SELECT time, s1, s2 FROM "root.lr.d1" ORDER BY time LIMIT 1"#;
    assert_eq!(rows(&client, first).await, vec![row("1970-01-01 00:00:00.1+00", Some("1"), Some("10"))]);
    // Also from files, after a flush.
    client.batch_execute("FLUSH").await.unwrap();
    assert_eq!(rows(&client, latest).await, vec![row("1970-01-01 00:00:00.2+00", Some("2"), Some("20"))]);
    assert_eq!(rows(&client, r#"SELECT max(time) FROM "root.lr.d1""#).await, vec![vec![Some("1970-01-01 00:00:00.2+00".into())]]);
    server.stop().unwrap();
}

/// The plan text of an EXPLAIN.
async fn plan_text(client: &Client, sql: &str) -> String {
    rows(client, &format!("EXPLAIN {sql}")).await.iter().flatten().flatten().cloned().collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn exact_scan_statistics_answer_count_min_and_max_without_reading_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(binary(), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client.batch_execute("CREATE ALIGNED TIMESERIES root.st.d1(s1 DOUBLE, s2 INT64)").await.unwrap();
    client.batch_execute("INSERT INTO root.st.d1(time, s1, s2) ALIGNED VALUES (1000, 1.5, 10), (2000, 2.5, NULL), (3000, 0.5, 30)").await.unwrap();
    let all = r#"SELECT count(*), count(s2), min(s1), max(s1), min(time), max(time) FROM "root.st.d1""#;
    let answer = |count: &str, count_s2: &str, min: &str, max: &str, last: &str| {
        vec![vec![Some(count.into()), Some(count_s2.into()), Some(min.into()), Some(max.into()), Some("1970-01-01 00:00:01+00".into()), Some(last.into())]]
    };
    // In the memtable only: read.
    assert!(plan_text(&client, all).await.contains("DeviceScanExec"));
    assert_eq!(rows(&client, all).await, answer("3", "2", "0.5", "2.5", "1970-01-01 00:00:03+00"));
    // In files: every aggregate is a statistic; nothing is scanned.
    client.batch_execute("FLUSH").await.unwrap();
    let text = plan_text(&client, all).await;
    assert!(text.contains("PlaceholderRowExec") && !text.contains("DeviceScanExec"), "{text}");
    assert_eq!(rows(&client, all).await, answer("3", "2", "0.5", "2.5", "1970-01-01 00:00:03+00"));
    // A time range covering the file is still exact; one cutting it reads.
    let covered = r#"SELECT count(*) FROM "root.st.d1" WHERE time >= 0 AND time < 10000"#;
    assert!(!plan_text(&client, covered).await.contains("DeviceScanExec"));
    assert_eq!(rows(&client, covered).await, vec![vec![Some("3".into())]]);
    let cut = r#"SELECT count(*) FROM "root.st.d1" WHERE time > 1000"#;
    assert!(plan_text(&client, cut).await.contains("DeviceScanExec"));
    assert_eq!(rows(&client, cut).await, vec![vec![Some("2".into())]]);
    // An overwrite, then a flush of it as late data: read, never a stale statistic.
    client.batch_execute("INSERT INTO root.st.d1(time, s1) ALIGNED VALUES (2000, 9.5)").await.unwrap();
    assert_eq!(rows(&client, all).await, answer("3", "2", "0.5", "9.5", "1970-01-01 00:00:03+00"));
    client.batch_execute("FLUSH").await.unwrap();
    assert!(plan_text(&client, all).await.contains("DeviceScanExec"));
    assert_eq!(rows(&client, all).await, answer("3", "2", "0.5", "9.5", "1970-01-01 00:00:03+00"));
    // A deletion: read.
    client.batch_execute("DELETE FROM root.st.d1.* WHERE time >= 3000").await.unwrap();
    assert!(plan_text(&client, all).await.contains("DeviceScanExec"));
    assert_eq!(rows(&client, all).await, answer("2", "1", "1.5", "9.5", "1970-01-01 00:00:02+00"));
    server.stop().unwrap();
}

#[tokio::test]
async fn device_tables_have_a_row_wherever_any_measurement_has_a_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(binary(), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    // 60 rows; the last has only `status`.
    let values: Vec<String> = (0..59).map(|i| format!("({}, {}.5, true)", 1_704_110_400_000_i64 + i * 1000, i)).collect();
    client.batch_execute(&format!("INSERT INTO root.compat.d1(timestamp, temperature, status) VALUES {}", values.join(", "))).await.unwrap();
    client.batch_execute("INSERT INTO root.compat.d1(timestamp, status) VALUES (1704110460000, false)").await.unwrap();
    assert_eq!(rows(&client, r#"SELECT count(*) FROM "root.compat.d1""#).await, vec![vec![Some("60".into())]]);
    assert_eq!(rows(&client, r#"SELECT count(temperature), count(status) FROM "root.compat.d1""#).await, vec![vec![Some("59".into()), Some("60".into())]]);
    // A projection of one column keeps every row of the device.
    assert_eq!(rows(&client, r#"SELECT temperature FROM "root.compat.d1""#).await.len(), 60);
    // Epoch integers compare as times (milliseconds).
    assert_eq!(rows(&client, r#"SELECT count(*) FROM "root.compat.d1" WHERE time >= 1704110430000"#).await, vec![vec![Some("30".into())]]);
    assert_eq!(
        rows(&client, r#"SELECT count(*) FROM "root.compat.d1" WHERE time BETWEEN 1704110400000 AND 1704110401000"#).await,
        vec![vec![Some("2".into())]]
    );
    // A real type error is 42804 or 42883, never XX000.
    let e = client.simple_query(r#"SELECT * FROM "root.compat.d1" WHERE status > 1.5"#).await.unwrap_err();
    assert!(["42804", "42883"].contains(&sqlstate(&e).as_str()), "{}: {e:?}", sqlstate(&e));
    server.stop().unwrap();
}

#[tokio::test]
async fn a_query_over_the_memory_budget_fails_with_53200_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("arbor.toml");
    std::fs::write(&config, "[server]\nquery_memory_bytes_max = 1048576\n").unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_with_args(binary(), &data, &["--config", config.to_str().unwrap()]).unwrap();
    let client = server.connect().await.unwrap();
    // Sorting three million rows needs far more than 1 MiB.
    let e = client.simple_query("SELECT x FROM generate_series(1, 3000000) AS t(x) ORDER BY x DESC").await.unwrap_err();
    assert_eq!(sqlstate(&e), "53200", "{e}");
    assert_eq!(rows(&client, "SELECT 1").await, vec![vec![Some("1".into())]]);
    server.stop().unwrap();
}

/// Peak resident memory of a process, from /proc (Linux).
fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_star_over_20_million_points_streams_in_bounded_memory() {
    const ROWS: i64 = 2_000_000;
    const COLUMNS: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(binary(), dir.path()).unwrap();
    {
        let client = server.connect().await.unwrap();
        let columns: Vec<String> = (0..COLUMNS).map(|c| format!("s{c} DOUBLE")).collect();
        client.batch_execute(&format!("CREATE ALIGNED TIMESERIES root.big.d1({})", columns.join(", "))).await.unwrap();
        let names: Vec<String> = (0..COLUMNS).map(|c| format!("s{c}")).collect();
        // Load in pieces so the load itself stays small.
        for chunk in 0..10 {
            let sink = client.copy_in(&format!("COPY \"root.big.d1\" (time, {}) FROM STDIN (FORMAT csv)", names.join(", "))).await.unwrap();
            let mut text = String::with_capacity(16 << 20);
            let per = ROWS / 10;
            for r in chunk * per..(chunk + 1) * per {
                text.push_str(&r.to_string());
                for c in 0..COLUMNS {
                    text.push_str(&format!(",{}.{}", r % 1000, c));
                }
                text.push('\n');
            }
            pin_mut!(sink);
            futures::SinkExt::send(&mut sink, bytes::Bytes::from(text)).await.unwrap();
            sink.finish().await.unwrap();
        }
        client.batch_execute("FLUSH").await.unwrap();
    }
    // A fresh process: its peak memory is the query's, not the load's.
    server.restart(false).unwrap();
    let client = server.connect().await.unwrap();
    // Describe answers from the plan, without reading 20 million points.
    let statement = client.prepare("SELECT * FROM root.big.d1").await.unwrap();
    assert_eq!(statement.columns().len(), COLUMNS + 1);
    let before = peak_rss_bytes(server.pid().unwrap()).unwrap();
    let stream = client.query_raw(&statement, std::iter::empty::<i64>()).await.unwrap();
    pin_mut!(stream);
    let mut seen = 0i64;
    while let Some(row) = stream.try_next().await.unwrap() {
        if seen % 500_000 == 0 {
            let t: chrono::DateTime<chrono::Utc> = row.get(0);
            assert_eq!(t.timestamp_millis(), seen);
        }
        seen += 1;
    }
    assert_eq!(seen, ROWS);
    let peak = peak_rss_bytes(server.pid().unwrap()).unwrap();
    assert!(peak < 300 << 20, "server peak RSS {} MiB (before the query {} MiB)", peak >> 20, before >> 20);
    server.stop().unwrap();
}

//! IoTDB's analytics through the real server: the headers clients see for
//! GROUP BY time, SELECT LAST and ALIGN BY DEVICE (the .slt suites compare
//! values only), and EXPLAIN showing windows answered from statistics.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::Path;

use sqllogictests::Server;
use tokio_postgres::{Client, SimpleQueryMessage};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_arbor"))
}

/// The column names of a query's result.
async fn headers(client: &Client, sql: &str) -> Vec<String> {
    let statement = client.prepare(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    statement.columns().iter().map(|c| c.name().to_string()).collect()
}

async fn text(client: &Client, sql: &str) -> String {
    let mut out = Vec::new();
    for m in client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")) {
        if let SimpleQueryMessage::Row(r) = m {
            out.extend((0..r.len()).filter_map(|i| r.get(i).map(str::to_string)));
        }
    }
    out.join("\n")
}

#[tokio::test]
async fn analytics_headers_are_iotdb_s() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(binary(), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TIMESERIES root.h.d1.s1 WITH DATATYPE=INT32, ENCODING=PLAIN;
             CREATE TIMESERIES root.h.d2.s2 WITH DATATYPE=DOUBLE, ENCODING=PLAIN;
             INSERT INTO root.h.d1(timestamp, s1) VALUES (1, 1), (5, 2);
             INSERT INTO root.h.d2(timestamp, s2) VALUES (2, 0.5)",
        )
        .await
        .unwrap();
    let cases: [(&str, &[&str]); 6] = [
        ("SELECT count(s1), avg(s1) FROM root.h.d1 GROUP BY ([0, 10), 5ms)", &["Time", "count(root.h.d1.s1)", "avg(root.h.d1.s1)"]),
        ("SELECT count(s1) AS n FROM root.h.d1 GROUP BY ([0, 10), 5ms) FILL(PREVIOUS)", &["Time", "n"]),
        ("SELECT LAST * FROM root.h.**", &["Time", "Timeseries", "Value", "DataType"]),
        ("SELECT * FROM root.h.** ALIGN BY DEVICE", &["Time", "Device", "s1", "s2"]),
        ("SELECT count(s1), s1 + 1 FROM root.h.* GROUP BY ([0, 10), 5ms) ALIGN BY DEVICE", &["Time", "Device", "count(s1)", "s1 + 1"]),
        ("SELECT count(s1), count(s2) FROM root.h.* ALIGN BY DEVICE", &["Device", "count(s1)", "count(s2)"]),
    ];
    for (sql, expected) in cases {
        if sql.contains("s1 + 1") {
            // Raw values and aggregates do not mix.
            assert!(client.prepare(sql).await.is_err(), "{sql}");
            continue;
        }
        assert_eq!(headers(&client, sql).await, expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{sql}");
    }
    // Windows without value filters come from statistics; with one, from the rows.
    client.batch_execute("FLUSH").await.unwrap();
    let plan = text(&client, "EXPLAIN SELECT count(s1) FROM root.h.d1 GROUP BY ([0, 10), 5ms)").await;
    assert!(plan.contains("SeriesAggregateExec") && plan.contains("WindowFillExec"), "{plan}");
    let plan = text(&client, "EXPLAIN SELECT count(s1) FROM root.h.d1 WHERE s1 > 1 GROUP BY ([0, 10), 5ms)").await;
    assert!(plan.contains("TimeWindowsExec") && !plan.contains("SeriesAggregateExec"), "{plan}");
    let plan = text(&client, "EXPLAIN SELECT LAST * FROM root.h.**").await;
    assert!(plan.contains("LastValuesExec"), "{plan}");
    server.stop().unwrap();
}

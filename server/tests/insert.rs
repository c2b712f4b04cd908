//! TSQL INSERTs as ingest streams send them: messages of many multi-row
//! INSERTs (one blocking task per run of writes, the fast scanner for plain
//! literals), a query inside a message seeing the inserts before it, an
//! error stopping the message after what came before it is durable, and
//! prepared inserts with `$n` parameters.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::fmt::Write as _;
use std::path::Path;

use sqllogictests::Server;
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

fn rows_of(messages: &[SimpleQueryMessage]) -> Vec<Vec<String>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_string()).collect()),
            _ => None,
        })
        .collect()
}

fn counts_of(messages: &[SimpleQueryMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_many_inserts_land_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    // 20 devices × 10 sensors, 40 messages of one INSERT per device, rows
    // interleaved in time across messages (late rows included).
    const DEVICES: i64 = 20;
    const MESSAGES: i64 = 40;
    const ROWS: i64 = 25;
    let mut expected_sum = 0.0f64;
    for m in 0..MESSAGES {
        let mut sql = String::new();
        for d in 0..DEVICES {
            write!(sql, "INSERT INTO root.many.d{d}(timestamp, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9) VALUES ").unwrap();
            for r in 0..ROWS {
                // Later messages also carry rows older than earlier ones.
                let t = if r % 5 == 0 { (MESSAGES - 1 - m) * ROWS + r } else { m * ROWS + r } * 1000 + d;
                let t = t * 10 + i64::from(r % 5 == 0);
                sql.push_str(if r == 0 { "(" } else { ", (" });
                write!(sql, "{t}").unwrap();
                for s in 0..10 {
                    let v = (m * 7 + d * 3 + r + s) as f64 / 4.0;
                    if d == 0 && s == 0 {
                        expected_sum += v;
                    }
                    write!(sql, ", {v}").unwrap();
                }
                sql.push(')');
            }
            sql.push_str(";\n");
        }
        let out = client.simple_query(&sql).await.unwrap();
        assert_eq!(counts_of(&out), vec![ROWS as u64; DEVICES as usize]);
    }
    let row = client.query_one(r#"SELECT count(s0), count(s9), sum(s0) FROM "root.many.d0""#, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), MESSAGES * ROWS);
    assert_eq!(row.get::<_, i64>(1), MESSAGES * ROWS);
    assert_eq!(row.get::<_, f64>(2), expected_sum);
    let row = client.query_one("SELECT count(*) FROM arbor.timeseries WHERE timeseries LIKE 'root.many.%'", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), DEVICES * 10);
    // Acknowledged means durable.
    server.restart(true).unwrap();
    let client = server.connect().await.unwrap();
    let row = client.query_one(r#"SELECT count(s5), sum(s0) FROM "root.many.d0""#, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), MESSAGES * ROWS);
    assert_eq!(row.get::<_, f64>(1), expected_sum);
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_sees_the_inserts_before_it_and_an_error_stops_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    // A query's rows are produced as the message's result is sent, so a
    // query placed after every write of the message is the one to check.
    let out = client
        .simple_query(
            "INSERT INTO root.msg.d(time, a) VALUES (1, 10), (2, 20); \
             INSERT INTO root.msg.d(time, a) VALUES (3, 30); \
             -- a comment, then a query its first word does not reveal\n SELECT sum(a) FROM root.msg.d",
        )
        .await
        .unwrap();
    assert_eq!(counts_of(&out)[..2], [2, 1]);
    assert_eq!(rows_of(&out), vec![vec!["60".to_string()]]);
    client.simple_query("DELETE FROM root.msg.d.a WHERE time <= 1").await.unwrap();
    // The second INSERT fails (a text into a DOUBLE series): the first one
    // is written and durable, the third never runs.
    let err = client
        .simple_query(
            "INSERT INTO root.msg.d(time, a) VALUES (4, 40); \
             INSERT INTO root.msg.d(time, a) VALUES (5, 'fifty'); \
             INSERT INTO root.msg.d(time, a) VALUES (6, 60)",
        )
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42804", "{err:?}");
    server.restart(true).unwrap();
    let client = server.connect().await.unwrap();
    let out = client.simple_query("SELECT a FROM root.msg.d").await.unwrap();
    let values: Vec<String> = rows_of(&out).into_iter().map(|r| r[1].clone()).collect();
    assert_eq!(values, ["20", "30", "40"]);
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_inserts_bind_their_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client.batch_execute("CREATE TIMESERIES root.prep.d.a WITH DATATYPE=INT64; CREATE TIMESERIES root.prep.d.b WITH DATATYPE=DOUBLE").await.unwrap();
    let types = [Type::INT8, Type::INT8, Type::FLOAT8, Type::INT8, Type::INT8, Type::FLOAT8];
    let statement = client.prepare_typed("INSERT INTO root.prep.d(time, a, b) VALUES ($1, $2, $3), ($4, $5, $6)", &types).await.unwrap();
    for i in 0..50i64 {
        let n = client.execute(&statement, &[&(2 * i), &i, &(i as f64 / 2.0), &(2 * i + 1), &-i, &-1.5f64]).await.unwrap();
        assert_eq!(n, 2);
    }
    let row = client.query_one(r#"SELECT count(a), sum(a), sum(b) FROM "root.prep.d""#, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 100);
    assert_eq!(row.get::<_, i64>(1), 0);
    assert_eq!(row.get::<_, f64>(2), (0..50).map(|i| i as f64 / 2.0 - 1.5).sum::<f64>());
    server.stop().unwrap();
}

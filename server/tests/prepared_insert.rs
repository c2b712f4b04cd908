//! A prepared TSQL INSERT over the real wire (tokio-postgres): prepared
//! once, its parameter types taken from the series (a time is `int8`
//! milliseconds), executed many times with the values bound straight into
//! the scanned statement shape; the values read back exactly, NULLs and
//! several rows per statement included; and a parameter of the wrong type
//! for its series is refused with 42804, naming the series.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::Path;

use sqllogictests::Server;
use tokio_postgres::types::Type;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_tsql_insert_is_bound_many_times_and_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TIMESERIES root.sg.d.s1 WITH DATATYPE=DOUBLE; CREATE TIMESERIES root.sg.d.s2 WITH DATATYPE=INT64; \
             CREATE TIMESERIES root.sg.d.s3 WITH DATATYPE=TEXT; CREATE TIMESERIES root.sg.d.s4 WITH DATATYPE=BOOLEAN; \
             CREATE TIMESERIES root.sg.d.s5 WITH DATATYPE=INT32",
        )
        .await
        .unwrap();
    let stmt = client.prepare("INSERT INTO root.sg.d(time, s1, s2, s3, s4) VALUES ($1, $2, $3, $4, $5)").await.unwrap();
    assert_eq!(&stmt.params()[..3], &[Type::INT8, Type::FLOAT8, Type::INT8]);
    assert_eq!(stmt.params()[4], Type::BOOL);
    const N: i64 = 300;
    let value = |i: i64| (i as f64) * 0.5 + 0.01;
    for i in 0..N {
        let s3 = format!("v'{i}\"");
        // Every tenth row has no s1.
        let s1: Option<f64> = (i % 10 != 3).then(|| value(i));
        let n = client.execute(&stmt, &[&i, &s1, &(i * 7), &s3, &(i % 2 == 0)]).await.unwrap();
        assert_eq!(n, 1);
    }
    // Several rows per statement, the parameters in any order; a literal mixed in.
    let two = client.prepare("INSERT INTO root.sg.d(timestamp, s2, s5) VALUES ($2, $1, 5), ($4, $3, $5)").await.unwrap();
    assert_eq!(two.params(), &[Type::INT8, Type::INT8, Type::INT8, Type::INT8, Type::INT4]);
    assert_eq!(client.execute(&two, &[&-1i64, &(N + 1), &-2i64, &(N + 2), &9i32]).await.unwrap(), 2);

    let rows = client.query(r#"SELECT s1, s2, s3, s4 FROM "root.sg.d" WHERE s3 IS NOT NULL ORDER BY time"#, &[]).await.unwrap();
    assert_eq!(rows.len(), N as usize);
    for (i, r) in rows.iter().enumerate() {
        let i = i as i64;
        assert_eq!(r.get::<_, Option<f64>>(0), (i % 10 != 3).then(|| value(i)), "s1 of row {i}");
        assert_eq!(r.get::<_, i64>(1), i * 7, "s2 of row {i}");
        assert_eq!(r.get::<_, String>(2), format!("v'{i}\""), "s3 of row {i}");
        assert_eq!(r.get::<_, bool>(3), i % 2 == 0, "s4 of row {i}");
    }
    let rows = client.query(r#"SELECT s2, s5 FROM "root.sg.d" WHERE s5 IS NOT NULL ORDER BY time"#, &[]).await.unwrap();
    let got: Vec<(i64, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, vec![(-1, 5), (-2, 9)]);

    // A value of the wrong type for its series: 42804, naming the series.
    let typed = client.prepare_typed("INSERT INTO root.sg.d(time, s2) VALUES ($1, $2)", &[Type::INT8, Type::FLOAT8]).await.unwrap();
    assert_eq!(typed.params(), &[Type::INT8, Type::FLOAT8], "the types the client gave win");
    let err = client.execute(&typed, &[&1000i64, &1.5f64]).await.unwrap_err();
    let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(db.code().code(), "42804", "{}", db.message());
    assert!(db.message().contains("root.sg.d.s2"), "{}", db.message());
    let text = client.prepare_typed("INSERT INTO root.sg.d(time, s1) VALUES ($1, $2)", &[Type::INT8, Type::TEXT]).await.unwrap();
    let err = client.execute(&text, &[&1001i64, &"abc"]).await.unwrap_err();
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("42804"), "{err}");
    let count: i64 = client.query_one(r#"SELECT count(*) FROM "root.sg.d" WHERE time >= to_timestamp(1)"#, &[]).await.unwrap().get(0);
    assert_eq!(count, 0, "a refused insert wrote something");
    // The session goes on: the prepared statement still works.
    assert_eq!(client.execute(&stmt, &[&(N + 10), &1.25f64, &1i64, &"x", &true]).await.unwrap(), 1);
    server.stop().unwrap();
}

//! COPY FROM STDIN at a size that spans several engine writes: every row
//! lands, and a bad row anywhere means nothing lands.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::fmt::Write as _;
use std::path::Path;

use futures::SinkExt;
use sqllogictests::Server;

async fn copy(client: &tokio_postgres::Client, statement: &str, data: String) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, bytes::Bytes>(statement).await?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(data)).await?;
    sink.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_copy_lands_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client
        .batch_execute("CREATE TIMESERIES root.bulk.d1.v WITH DATATYPE=DOUBLE; CREATE TIMESERIES root.bulk.d1.n WITH DATATYPE=INT64")
        .await
        .unwrap();
    const ROWS: i64 = 150_000; // more than two chunks of 65,536
    let mut data = String::new();
    for t in 0..ROWS {
        writeln!(data, "{t}\t{}.25\t{}", t % 1000, t * 3).unwrap();
    }
    let statement = r#"COPY "root.bulk.d1"(time, v, n) FROM STDIN"#;
    assert_eq!(copy(&client, statement, data.clone()).await.unwrap(), ROWS as u64);
    let row = client.query_one(r#"SELECT count(*), sum(n), max(v) FROM "root.bulk.d1""#, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), ROWS);
    assert_eq!(row.get::<_, i64>(1), 3 * ROWS * (ROWS - 1) / 2);
    assert_eq!(row.get::<_, f64>(2), 999.25);

    // The same again shifted in time, with one bad row near the end: nothing is written.
    let mut bad = String::new();
    for t in 0..ROWS {
        let v = if t == ROWS - 10 { "oops".to_string() } else { format!("{}.5", t % 7) };
        writeln!(bad, "{}\t{v}\t1", t + ROWS).unwrap();
    }
    let err = copy(&client, statement, bad).await.unwrap_err();
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("22P02"), "{err}");
    let message = err.as_db_error().unwrap().message();
    assert!(message.contains(&format!("line {}", ROWS - 9)), "{message}");
    let row = client.query_one(r#"SELECT count(*) FROM "root.bulk.d1""#, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), ROWS);
    server.stop().unwrap();
}

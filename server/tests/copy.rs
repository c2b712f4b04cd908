//! COPY FROM STDIN: text, CSV and binary formats with NULLs, quoting,
//! escapes and every type; data split at every byte boundary; IoTDB's two
//! CSV layouts into many devices; and at a size that spans several engine
//! writes, every row lands, while a bad row anywhere means nothing lands.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::fmt::Write as _;
use std::path::Path;

use futures::SinkExt;
use tokio_postgres::types::Type;
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
    const ROWS: i64 = 200_000; // more than three chunks of 65,536
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

/// Send `data` in messages of `step` bytes.
async fn copy_in_pieces(client: &tokio_postgres::Client, statement: &str, data: &[u8], step: usize) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, bytes::Bytes>(statement).await?;
    futures::pin_mut!(sink);
    for piece in data.chunks(step) {
        sink.send(bytes::Bytes::copy_from_slice(piece)).await?;
    }
    sink.finish().await
}

/// Every column of every row as text, in time order.
async fn rows_as_text(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    for m in client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")) {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            out.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
        }
    }
    out
}

const ALL_TYPES: &str = "CREATE TIMESERIES root.fmt.d.b WITH DATATYPE=BOOLEAN; CREATE TIMESERIES root.fmt.d.i WITH DATATYPE=INT32; \
    CREATE TIMESERIES root.fmt.d.l WITH DATATYPE=INT64; CREATE TIMESERIES root.fmt.d.f WITH DATATYPE=FLOAT; \
    CREATE TIMESERIES root.fmt.d.d WITH DATATYPE=DOUBLE; CREATE TIMESERIES root.fmt.d.t WITH DATATYPE=TEXT; \
    CREATE TIMESERIES root.fmt.d.x WITH DATATYPE=BLOB; CREATE TIMESERIES root.fmt.d.dt WITH DATATYPE=DATE; \
    CREATE TIMESERIES root.fmt.d.ts WITH DATATYPE=TIMESTAMP";

const SELECT_ALL: &str = r#"SELECT time, b, i, l, f, d, t, x, dt, ts FROM "root.fmt.d" ORDER BY time"#;

fn expected_rows() -> Vec<Vec<Option<String>>> {
    let row = |v: &[Option<&str>]| v.iter().map(|x| x.map(str::to_string)).collect::<Vec<_>>();
    vec![
        row(&[Some("1970-01-01 00:00:00.001+00"), Some("t"), Some("-7"), Some("9000000000"), Some("1.5"), Some("-2.25"), Some("tab\there, quote \" back\\slash"), Some("\\x00ff41"), Some("2024-02-29"), Some("2024-01-01 00:00:01+00")]),
        row(&[Some("1970-01-01 00:00:00.002+00"), None, None, None, None, Some("NaN"), Some(""), None, None, None]),
        row(&[Some("1970-01-01 00:00:00.003+00"), Some("f"), Some("2147483647"), Some("-1"), Some("-Infinity"), Some("1e+300"), Some("two\nlines, and a comma"), Some("\\x"), Some("1970-01-01"), Some("1970-01-01 00:00:00+00")]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_csv_and_binary_formats_carry_every_type_nulls_and_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client.batch_execute(ALL_TYPES).await.unwrap();
    let columns = "(time, b, i, l, f, d, t, x, dt, ts)";

    // Text: backslash escapes, \N for NULL.
    let text = "1\tt\t-7\t9000000000\t1.5\t-2.25\ttab\\there, quote \" back\\\\slash\t\\\\x00ff41\t2024-02-29\t2024-01-01 00:00:01+00\n\
                2\t\\N\t\\N\t\\N\t\\N\tNaN\t\t\\N\t\\N\t\\N\n\
                3\tfalse\t2147483647\t-1\t-Infinity\t1e300\ttwo\\nlines, and a comma\t\t1970-01-01\t0\n\\.\n";
    for step in [1, 5, 4096] {
        client.batch_execute(r#"DELETE FROM root.fmt.d.* WHERE time <= 10"#).await.unwrap();
        let n = copy_in_pieces(&client, &format!(r#"COPY "root.fmt.d" {columns} FROM STDIN"#), text.as_bytes(), step).await.unwrap();
        assert_eq!(n, 3);
        assert_eq!(rows_as_text(&client, SELECT_ALL).await, expected_rows(), "text format in {step}-byte messages");
    }

    // CSV: quotes, "" inside, a newline inside quotes, empty unquoted = NULL, "" = empty string.
    let csv = "time,b,i,l,f,d,t,x,dt,ts\r\n\
               1,true,-7,9000000000,1.5,-2.25,\"tab\there, quote \"\" back\\slash\",\\x00ff41,2024-02-29,2024-01-01T00:00:01Z\r\n\
               2,,,,,nan,\"\",,,\n\
               3,f,2147483647,-1,-inf,1e300,\"two\nlines, and a comma\",\"\",1970-01-01,1970-01-01T00:00:00\n";
    for step in [1, 3, 7, 4096] {
        client.batch_execute(r#"DELETE FROM root.fmt.d.* WHERE time <= 10"#).await.unwrap();
        let n = copy_in_pieces(&client, &format!(r#"COPY "root.fmt.d" {columns} FROM STDIN (FORMAT csv, HEADER true)"#), csv.as_bytes(), step)
            .await
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(rows_as_text(&client, SELECT_ALL).await, expected_rows(), "CSV in {step}-byte messages");
    }

    // Binary, written by the client library's own encoder.
    client.batch_execute(r#"DELETE FROM root.fmt.d.* WHERE time <= 10"#).await.unwrap();
    let types = [Type::TIMESTAMPTZ, Type::BOOL, Type::INT4, Type::INT8, Type::FLOAT4, Type::FLOAT8, Type::TEXT, Type::BYTEA, Type::DATE, Type::TIMESTAMPTZ];
    let sink = client.copy_in(&format!(r#"COPY "root.fmt.d" {columns} FROM STDIN (FORMAT binary)"#)).await.unwrap();
    let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    let ms = |m: i64| chrono::DateTime::from_timestamp_millis(m).unwrap();
    let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let none_b: Option<bool> = None;
    let none_i: Option<i32> = None;
    let none_l: Option<i64> = None;
    let none_f: Option<f32> = None;
    let none_x: Option<Vec<u8>> = None;
    let none_dt: Option<chrono::NaiveDate> = None;
    let none_ts: Option<chrono::DateTime<chrono::Utc>> = None;
    writer
        .as_mut()
        .write(&[&ms(1), &true, &-7i32, &9_000_000_000i64, &1.5f32, &-2.25f64, &"tab\there, quote \" back\\slash", &vec![0u8, 255, 65], &date(2024, 2, 29), &ms(1_704_067_201_000)])
        .await
        .unwrap();
    writer.as_mut().write(&[&ms(2), &none_b, &none_i, &none_l, &none_f, &f64::NAN, &"", &none_x, &none_dt, &none_ts]).await.unwrap();
    writer
        .as_mut()
        .write(&[&ms(3), &false, &i32::MAX, &-1i64, &f32::NEG_INFINITY, &1e300f64, &"two\nlines, and a comma", &Vec::<u8>::new(), &date(1970, 1, 1), &ms(0)])
        .await
        .unwrap();
    assert_eq!(writer.finish().await.unwrap(), 3);
    assert_eq!(rows_as_text(&client, SELECT_ALL).await, expected_rows(), "binary format");
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_name_their_line_and_column_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client.batch_execute(ALL_TYPES).await.unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        ("(time, i) FROM STDIN", "1\t1\n2\t1.5\n", "22P02", "line 2, column \"i\""),
        ("(time, i) FROM STDIN", "1\t1\n2\t3000000000\n", "22P02", "line 2, column \"i\""),
        ("(time, b) FROM STDIN (FORMAT csv)", "1,true\n2,maybe\n", "22P02", "line 2, column \"b\""),
        ("(time, d) FROM STDIN (FORMAT csv)", "1,1\n\"x\n\",2\n3,zz\n", "22007", "line 2, column \"time\""),
        ("(time, d) FROM STDIN (FORMAT csv)", "1,1\n2,\"2\" junk\n", "22P02", "line 2"),
        ("(time, d) FROM STDIN (FORMAT csv)", "1,1\n2,2,3\n", "22P02", "line 2: 3 fields for 2 columns"),
        ("(time, d) FROM STDIN", "1\t1\n\\N\t2\n", "23502", "line 2"),
        ("(time, d) FROM STDIN (FORMAT csv)", "1,1\n2,\"unterminated\n", "22P02", "unterminated"),
        ("(time, d) FROM STDIN (FORMAT binary)", "not a binary copy", "22P02", "signature"),
    ];
    for (tail, data, code, needle) in cases {
        let statement = format!(r#"COPY "root.fmt.d" {tail}"#);
        let err = copy(&client, &statement, data.to_string()).await.unwrap_err();
        let db = err.as_db_error().unwrap_or_else(|| panic!("{statement}: {err}"));
        assert_eq!(db.code().code(), *code, "{statement}: {}", db.message());
        assert!(db.message().contains(needle), "{statement}: {:?} lacks {needle:?}", db.message());
    }
    // Unknown tables and columns are refused before any data (each on a
    // fresh connection: tokio-postgres's copy_in sends CopyFail + Sync after
    // such an error, whose extra ReadyForQuery it then misreads).
    for (statement, code) in [(r#"COPY "root.fmt.nothing" FROM STDIN"#, "42P01"), (r#"COPY "root.fmt.d" (time, nope) FROM STDIN"#, "42703")] {
        let fresh = server.connect().await.unwrap();
        let err = copy(&fresh, statement, "1\t1\n".into()).await.unwrap_err();
        assert_eq!(err.as_db_error().map(|e| e.code().code()), Some(code), "{err}");
    }
    let row = client.query_one(r#"SELECT count(*) FROM "root.fmt.d""#, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "failed COPYs wrote nothing");
    // The connection is still usable.
    assert_eq!(copy(&client, r#"COPY "root.fmt.d" (time, l) FROM STDIN"#, "5\t5\n".into()).await.unwrap(), 1);
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iotdb_csv_layouts_load_many_devices() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client.batch_execute("CREATE DATABASE root.ln; CREATE TIMESERIES root.ln.d1.s2 WITH DATATYPE=INT32").await.unwrap();

    // Align by device (IoTDB's export with ALIGN BY DEVICE); rows in any order, late ones too.
    let by_device = "Time,Device,s1,s2\n\
                     1970-01-01T00:00:00.010+00:00,root.ln.d1,1.5,7\n\
                     10,root.ln.d2,2.5,\n\
                     20,root.ln.d1,,8\n\
                     5,root.ln.d1,0.5,\n";
    let n = copy_in_pieces(&client, "COPY root.ln FROM STDIN (FORMAT csv, HEADER true)", by_device.as_bytes(), 9).await.unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        rows_as_text(&client, r#"SELECT time, s1, s2 FROM "root.ln.d1" ORDER BY time"#).await,
        vec![
            vec![Some("1970-01-01 00:00:00.005+00".to_string()), Some("0.5".to_string()), None],
            vec![Some("1970-01-01 00:00:00.01+00".to_string()), Some("1.5".to_string()), Some("7".to_string())],
            vec![Some("1970-01-01 00:00:00.02+00".to_string()), None, Some("8".to_string())],
        ]
    );
    // d2.s2 had only NULLs: not created.
    assert_eq!(rows_as_text(&client, "COUNT TIMESERIES root.ln.d2.**").await, vec![vec![Some("1".to_string())]]);

    // Align by time (IoTDB's default export), with a typed header column.
    let by_time = "Time,root.ln.d1.s1,root.ln.d3.s3(INT32),root.ln.d3.flag\n\
                   30,3.5,3,true\n\
                   40,,4,\n";
    let n = copy_in_pieces(&client, "COPY root.ln FROM STDIN (FORMAT csv, HEADER true)", by_time.as_bytes(), 4).await.unwrap();
    assert_eq!(n, 2);
    let types = rows_as_text(&client, "SHOW TIMESERIES root.ln.d3.**").await;
    let type_of = |m: &str| types.iter().find(|r| r[0].as_deref() == Some(m)).and_then(|r| r[3].clone());
    assert_eq!(type_of("root.ln.d3.s3").as_deref(), Some("INT32"));
    assert_eq!(type_of("root.ln.d3.flag").as_deref(), Some("BOOLEAN"));
    assert_eq!(
        rows_as_text(&client, r#"SELECT time, s3, flag FROM "root.ln.d3" ORDER BY time"#).await,
        vec![
            vec![Some("1970-01-01 00:00:00.03+00".to_string()), Some("3".to_string()), Some("t".to_string())],
            vec![Some("1970-01-01 00:00:00.04+00".to_string()), Some("4".to_string()), None],
        ]
    );
    let row = client.query_one(r#"SELECT count(s1) FROM "root.ln.d1""#, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 3);

    // A device outside the prefix, or a bad value in any device: nothing is written.
    for bad in ["Time,Device,s1\n50,root.other.d1,1\n", "Time,Device,s1\n50,root.ln.d1,1\n60,root.ln.d2,x\n"] {
        let err = copy_in_pieces(&client, "COPY root.ln FROM STDIN (FORMAT csv, HEADER true)", bad.as_bytes(), 1000).await.unwrap_err();
        assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("22P02"), "{err}");
    }
    let row = client.query_one(r#"SELECT count(*) FROM "root.ln.d1" WHERE time >= 50"#, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    server.stop().unwrap();
}

async fn copy_out(client: &tokio_postgres::Client, statement: &str) -> Vec<u8> {
    use futures::TryStreamExt;
    let stream = client.copy_out(statement).await.unwrap_or_else(|e| panic!("{statement}: {e:?}"));
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_stdout_round_trips_in_every_format_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    client.batch_execute(ALL_TYPES).await.unwrap();
    client.batch_execute(&ALL_TYPES.replace("root.fmt.d", "root.fmt.e")).await.unwrap();
    let columns = "(time, b, i, l, f, d, t, x, dt, ts)";
    let text = "1\tt\t-7\t9000000000\t1.5\t-2.25\ttab\\there, quote \" back\\\\slash\t\\\\x00ff41\t2024-02-29\t2024-01-01 00:00:01+00\n\
                2\t\\N\t\\N\t\\N\t\\N\tNaN\t\t\\N\t\\N\t\\N\n\
                3\tfalse\t2147483647\t-1\t-Infinity\t1e300\ttwo\\nlines, and a comma\t\t1970-01-01\t0\n";
    copy(&client, &format!(r#"COPY "root.fmt.d" {columns} FROM STDIN"#), text.to_string()).await.unwrap();
    for options in ["", " (FORMAT csv, HEADER true)", " WITH (FORMAT csv, DELIMITER ';', NULL 'none')", " (FORMAT binary)"] {
        client.batch_execute("DELETE FROM root.fmt.e.* WHERE time <= 10").await.unwrap();
        let out = copy_out(&client, &format!(r#"COPY "root.fmt.d" {columns} TO STDOUT{options}"#)).await;
        let n = copy_in_pieces(&client, &format!(r#"COPY "root.fmt.e" {columns} FROM STDIN{options}"#), &out, 4096).await.unwrap();
        assert_eq!(n, 3, "{options}");
        assert_eq!(rows_as_text(&client, &SELECT_ALL.replace("root.fmt.d", "root.fmt.e")).await, expected_rows(), "round trip{options}");
    }
    let csv = String::from_utf8(copy_out(&client, r#"COPY "root.fmt.d" (time, i, t) TO STDOUT (FORMAT csv, HEADER true)"#).await).unwrap();
    assert_eq!(
        csv,
        "time,i,t\n1970-01-01 00:00:00.001+00,-7,\"tab\there, quote \"\" back\\slash\"\n1970-01-01 00:00:00.002+00,,\"\"\n1970-01-01 00:00:00.003+00,2147483647,\"two\nlines, and a comma\"\n"
    );

    // A large export arrives as a stream of rows (several batches), each row whole.
    client.batch_execute("CREATE TIMESERIES root.big.d.v WITH DATATYPE=INT64").await.unwrap();
    let mut data = String::new();
    for t in 0..100_000 {
        data.push_str(&format!("{t}\t{}\n", t * 2));
    }
    copy(&client, r#"COPY "root.big.d" (time, v) FROM STDIN"#, data).await.unwrap();
    let out = String::from_utf8(copy_out(&client, r#"COPY (SELECT v FROM "root.big.d" ORDER BY time) TO STDOUT"#).await).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 100_000);
    assert!(lines.iter().enumerate().all(|(i, l)| *l == (i * 2).to_string()));
    server.stop().unwrap();
}

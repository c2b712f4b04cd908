//! Protocol-level behaviour of the real `arbor` binary over TCP: SCRAM
//! authentication, empty queries, garbage on the socket, many concurrent
//! connections, errors that leave the connection usable, clean shutdown.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::Write;
use std::path::Path;

use sqllogictests::Server;
use tokio_postgres::{NoTls, SimpleQueryMessage};

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    (dir, server)
}

#[tokio::test]
async fn scram_accepts_the_configured_password_and_refuses_others() {
    let (_dir, mut server) = start();
    let client = server.connect().await.unwrap();
    let msgs = client.simple_query("").await.unwrap();
    assert!(msgs.iter().all(|m| !matches!(m, SimpleQueryMessage::Row(_))));
    let conf = format!("host=127.0.0.1 port={} user=root password=wrong", server.port());
    let err = tokio_postgres::connect(&conf, NoTls).await.err().expect("a wrong password is refused");
    let code = err.as_db_error().map(|e| e.code().code().to_string());
    assert_eq!(code.as_deref(), Some("28P01"), "{err}");
    server.stop().unwrap();
}

#[tokio::test]
async fn garbage_on_the_socket_does_not_hurt_the_server() {
    let (_dir, mut server) = start();
    for garbage in [&b"\x00\x00\x00\x08\x04\xd2\x16\x2f"[..], b"GET / HTTP/1.1\r\n\r\n", &[0xff; 64], b"\x00\x00\x00\x04"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        let _ = s.write_all(garbage);
        drop(s);
    }
    // A huge declared length must not make the server allocate it.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let _ = s.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]);
    drop(s);
    let client = server.connect().await.unwrap();
    client.simple_query("-- still alive").await.unwrap();
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_at_once() {
    let (_dir, mut server) = start();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let port = server.port();
        tasks.push(tokio::spawn(async move {
            let conf = format!("host=127.0.0.1 port={port} user=root password=root");
            let (client, conn) = tokio_postgres::connect(&conf, NoTls).await.unwrap();
            tokio::spawn(conn);
            for _ in 0..5 {
                client.simple_query(";").await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.stop().unwrap();
}

#[tokio::test]
async fn errors_leave_the_connection_usable() {
    let (_dir, mut server) = start();
    let client = server.connect().await.unwrap();
    for _ in 0..3 {
        let err = client.simple_query("THIS IS NOT SQL").await.unwrap_err();
        assert!(err.as_db_error().is_some(), "{err}");
    }
    client.simple_query(";").await.unwrap();
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_stops_a_running_query() {
    let (_dir, mut server) = start();
    let client = server.connect().await.unwrap();
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await.unwrap();
    });
    // Billions of rows: far longer than the test waits.
    let err = client.simple_query("SELECT count(*) FROM generate_series(1, 100000000000) AS t(x) WHERE x % 7 = 3").await.unwrap_err();
    canceller.await.unwrap();
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("57014"), "{err}");
    // The connection is still usable.
    let rows = client.simple_query("SELECT 1").await.unwrap();
    assert!(rows.iter().any(|m| matches!(m, SimpleQueryMessage::Row(_))));
    server.stop().unwrap();
}

#[tokio::test]
async fn portals_return_rows_in_pieces_and_parameters_bind() {
    let (_dir, mut server) = start();
    let mut client = server.connect().await.unwrap();
    client
        .batch_execute("CREATE TIMESERIES root.p.d1.s1 WITH DATATYPE=INT64; INSERT INTO root.p.d1(timestamp, s1) VALUES (1, 10), (2, 20), (3, 30), (4, 40), (5, 50)")
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    let stmt = tx.prepare(r#"SELECT s1 FROM "root.p.d1" WHERE s1 >= $1 ORDER BY time"#).await.unwrap();
    let portal = tx.bind(&stmt, &[&20_i64]).await.unwrap();
    let first = tx.query_portal(&portal, 2).await.unwrap();
    let second = tx.query_portal(&portal, 2).await.unwrap();
    let rest = tx.query_portal(&portal, 2).await.unwrap();
    let values = |rows: &[tokio_postgres::Row]| rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>();
    assert_eq!((values(&first), values(&second), values(&rest)), (vec![20, 30], vec![40, 50], vec![]));
    tx.commit().await.unwrap();
    server.stop().unwrap();
}

#[tokio::test]
async fn inserts_report_their_rows_and_columns_carry_postgres_names() {
    let (_dir, mut server) = start();
    let client = server.connect().await.unwrap();
    client.batch_execute("CREATE TIMESERIES root.n.d1.s1 WITH DATATYPE=INT64").await.unwrap();
    let insert = r#"INSERT INTO "root.n.d1"(time, s1) VALUES (to_timestamp(1), 1), (to_timestamp(2), 2)"#;
    assert_eq!(client.execute(insert, &[]).await.unwrap(), 2);
    // Describe of an INSERT answers NoData: no result columns.
    assert!(client.prepare(insert).await.unwrap().columns().is_empty());
    let rows = client.query(r#"SELECT count(*), max(s1), s1, s1 + 1, 7 AS seven FROM "root.n.d1" GROUP BY s1 ORDER BY s1"#, &[]).await.unwrap();
    let names: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["count", "max", "s1", "?column?", "seven"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].get::<_, i64>(1), 2);
    server.stop().unwrap();
}

/// RowDescription names a column's table and number where the column is
/// one of a table's, as PostgreSQL does, and no table for a column read
/// through a UNION (which mixes two tables) or computed.
#[tokio::test]
async fn columns_name_their_table_except_through_a_union() {
    let (_dir, mut server) = start();
    let client = server.connect().await.unwrap();
    for series in ["root.u.d1.a", "root.u.d1.b", "root.u.d2.a"] {
        client.batch_execute(&format!("CREATE TIMESERIES {series} WITH DATATYPE=INT64")).await.unwrap();
    }
    client.batch_execute("INSERT INTO root.u.d1(timestamp, a, b) VALUES (1000, 1, 10); INSERT INTO root.u.d2(timestamp, a) VALUES (2000, 2)").await.unwrap();
    let oid = |name: &str| {
        let name = name.to_string();
        let client = &client;
        async move {
            let row = client.query_one("SELECT oid FROM pg_catalog.pg_class WHERE relname = $1", &[&name]).await.unwrap();
            row.get::<_, u32>(0)
        }
    };
    let (d1, d2) = (oid("root.u.d1").await, oid("root.u.d2").await);
    assert_ne!(d1, d2);
    let plain = client.prepare(r#"SELECT 'x' AS k, b, a, a + 1 FROM "root.u.d1""#).await.unwrap();
    let identity: Vec<(Option<u32>, Option<i16>)> = plain.columns().iter().map(|c| (c.table_oid(), c.column_id())).collect();
    assert_eq!(identity, [(None, None), (Some(d1), Some(3)), (Some(d1), Some(2)), (None, None)]);
    let union = r#"(SELECT 'd1' AS k, time, a FROM "root.u.d1" ORDER BY time DESC LIMIT 1) UNION ALL (SELECT 'd2' AS k, time, a FROM "root.u.d2" ORDER BY time DESC LIMIT 1)"#;
    let statement = client.prepare(union).await.unwrap();
    assert!(statement.columns().iter().all(|c| c.table_oid().is_none() && c.column_id().is_none()), "{:?}", statement.columns());
    let rows = client.query(&statement, &[]).await.unwrap();
    let latest: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(2))).collect();
    assert_eq!(latest, [("d1".to_string(), 1), ("d2".to_string(), 2)]);
    server.stop().unwrap();
}

/// The text of each row of a simple query's first column.
async fn simple_texts(client: &tokio_postgres::Client, sql: &str) -> Vec<Option<String>> {
    let messages = client.simple_query(sql).await.unwrap();
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
            _ => None,
        })
        .collect()
}

/// `pg_index`'s vectors are PostgreSQL's `int2vector` (OID 22) and
/// `oidvector` (OID 30): text `1 2`, binary a one-dimensional array of
/// `int2`/`oid`; subscripted from 0 they are `int2`/`oid` values (psqlODBC's
/// `i.indkey[ia.attnum - 1]`). Issue 11: they were `int2[]`/`int4[]`, `{1,2}`.
#[tokio::test]
async fn catalog_vectors_are_int2vector_and_oidvector() {
    use tokio_postgres::types::Type;
    let (_dir, mut server) = start();
    let client = server.connect().await.unwrap();
    client.batch_execute("INSERT INTO root.vec.d1(timestamp, s1) VALUES (1000, 1)").await.unwrap();
    let key = "SELECT i.indkey, i.indcollation, i.indkey[0], i.indoption FROM pg_catalog.pg_index i \
               JOIN pg_catalog.pg_class c ON c.oid = i.indrelid WHERE c.relname = 'root.vec.d1'";
    let statement = client.prepare(key).await.unwrap();
    let types: Vec<&Type> = statement.columns().iter().map(|c| c.type_()).collect();
    assert_eq!(types, [&Type::INT2_VECTOR, &Type::OID_VECTOR, &Type::INT2, &Type::INT2_VECTOR]);
    let row = client.query_one(&statement, &[]).await.unwrap();
    assert_eq!(row.get::<_, Vec<i16>>(0), [1]);
    assert_eq!(row.get::<_, Vec<u32>>(1), [0]);
    assert_eq!(row.get::<_, i16>(2), 1);
    assert_eq!(row.get::<_, Vec<i16>>(3), [0]);
    let messages = client.simple_query(key).await.unwrap();
    let Some(SimpleQueryMessage::Row(row)) = messages.iter().find(|m| matches!(m, SimpleQueryMessage::Row(_))) else { panic!("no row: {messages:?}") };
    assert_eq!((0..4).map(|i| row.get(i).unwrap()).collect::<Vec<_>>(), ["1", "0", "1", "0"]);
    // A two-column key of PostgreSQL's own catalog, space-separated.
    let two = "SELECT indkey FROM pg_catalog.pg_index WHERE array_length(indkey, 1) = 2 AND indkey[0] = 1 AND indkey[1] = 2 LIMIT 1";
    assert_eq!(simple_texts(&client, two).await, [Some("1 2".to_string())]);
    assert_eq!(client.query_one(two, &[]).await.unwrap().get::<_, Vec<i16>>(0), [1, 2]);
    server.stop().unwrap();
}

/// The array constructor over no rows is the empty array, `{}` in text
/// and an empty array in binary (issue 11: it was NULL).
#[tokio::test]
async fn an_empty_array_constructor_is_the_empty_array() {
    use tokio_postgres::types::Type;
    let (_dir, mut server) = start();
    let client = server.connect().await.unwrap();
    let sql = "SELECT ARRAY(SELECT oid FROM pg_catalog.pg_namespace WHERE false)";
    assert_eq!(simple_texts(&client, sql).await, [Some("{}".to_string())]);
    let row = client.query_one(sql, &[]).await.unwrap();
    assert_eq!(row.columns()[0].type_(), &Type::OID_ARRAY);
    assert!(row.get::<_, Vec<u32>>(0).is_empty());
    server.stop().unwrap();
}

//! COPY larger than what one COPY may hold in memory (`copy_part_bytes_max`,
//! made tiny here): the rows stream into the WAL as parts of an open group
//! and the group commits at the end. Such a COPY reads back exactly; a bad
//! row near its end, or a CopyFail, writes nothing (also after a restart and
//! after a crash); and through the real server killed with SIGKILL, a
//! COPY killed halfway (its parts already in the WAL) is absent after the
//! restart while acknowledged ones are whole — with small memtables, so the
//! checkpoint moves past the parts of COPYs still open.
//!
//! `ARBOR_CRASH_CYCLES` sets the number of kill/restart cycles (default 3).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use futures::SinkExt;
use sqllogictests::Server;

/// Parts of 64 KiB of typed values (about 2,700 rows of the table below),
/// the first 512 KiB of them kept in memory for the commit (the rest read
/// back from the WAL) and memtables of 256 KiB: a COPY of 100,000 rows is
/// some 40 parts and its commit seals and flushes memtables as it applies
/// them.
fn start(dir: &Path) -> Server {
    let config = dir.join("arbor.toml");
    std::fs::write(&config, "[storage]\nmemtable_bytes_max = 262144\ncopy_part_bytes_max = 65536\ngroup_resident_bytes_max = 524288\n").unwrap();
    Server::start_with_args(Path::new(env!("CARGO_BIN_EXE_arbor")), &dir.join("data"), &["--config", config.to_str().unwrap()]).unwrap()
}

fn cycles() -> usize {
    std::env::var("ARBOR_CRASH_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(3)
}

fn jitter(modulo: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let mut x = nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x % modulo.max(1)
}

async fn copy(client: &tokio_postgres::Client, statement: &str, data: String) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, bytes::Bytes>(statement).await?;
    futures::pin_mut!(sink);
    // Several CopyData messages, as clients send them.
    for piece in data.as_bytes().chunks(1 << 16) {
        sink.send(bytes::Bytes::copy_from_slice(piece)).await?;
    }
    sink.finish().await
}

async fn setup(client: &tokio_postgres::Client) {
    client
        .batch_execute("CREATE TIMESERIES root.bulk.d1.v WITH DATATYPE=DOUBLE; CREATE TIMESERIES root.bulk.d1.n WITH DATATYPE=INT64")
        .await
        .unwrap();
}

const STATEMENT: &str = r#"COPY "root.bulk.d1"(time, v, n) FROM STDIN"#;

/// Rows of COPY `k`: times k * rows .. (k + 1) * rows, v = (t % 1000) + 0.25, n = 3t.
fn rows_text(k: i64, rows: i64) -> String {
    let mut data = String::new();
    for t in k * rows..(k + 1) * rows {
        writeln!(data, "{t}\t{}.25\t{}", t % 1000, 3 * t).unwrap();
    }
    data
}

async fn count_between(client: &tokio_postgres::Client, from: i64, to: i64) -> i64 {
    let sql = format!(r#"SELECT count(*) FROM "root.bulk.d1" WHERE n >= {} AND n < {}"#, 3 * from, 3 * to);
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

fn wal_bytes(dir: &Path) -> u64 {
    let wal = dir.join("data").join("databases").join("root.bulk").join("wal");
    std::fs::read_dir(wal).map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_larger_than_its_memory_streams_and_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = server.connect().await.unwrap();
    setup(&client).await;
    const ROWS: i64 = 100_000;
    assert_eq!(copy(&client, STATEMENT, rows_text(0, ROWS)).await.unwrap(), ROWS as u64);
    let check = |rows: Vec<tokio_postgres::Row>| {
        assert_eq!(rows.len(), ROWS as usize);
        for (i, r) in rows.iter().enumerate() {
            let t = i as i64;
            assert_eq!(r.get::<_, f64>(0), (t % 1000) as f64 + 0.25, "v of row {i}");
            assert_eq!(r.get::<_, i64>(1), 3 * t, "n of row {i}");
        }
    };
    let query = r#"SELECT v, n FROM "root.bulk.d1" ORDER BY time"#;
    check(client.query(query, &[]).await.unwrap());

    // IoTDB's align-by-device layout into two devices, also streamed.
    let mut data = String::from("Time,Device,s1(INT64),s2(BOOLEAN)\n");
    for t in 0..40_000 {
        writeln!(data, "{t},root.bulk.d{},{},{}", 2 + t % 2, t, t % 3 == 0).unwrap();
    }
    assert_eq!(copy(&client, "COPY root.bulk FROM STDIN (FORMAT csv, HEADER true)", data).await.unwrap(), 40_000);
    let row = client.query_one(r#"SELECT count(s1), sum(s1) FROM "root.bulk.d2""#, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 20_000);
    assert_eq!(row.get::<_, i64>(1), (0..40_000i64).step_by(2).sum::<i64>());

    // Whole after a crash too (the WAL replays the committed groups).
    server.restart(true).unwrap();
    let client = server.connect().await.unwrap();
    check(client.query(query, &[]).await.unwrap());
    let row = client.query_one(r#"SELECT count(s1), count(s2) FROM "root.bulk.d3""#, &[]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (20_000, 20_000));
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_or_a_copy_fail_in_a_streamed_copy_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = server.connect().await.unwrap();
    setup(&client).await;
    const ROWS: i64 = 100_000;
    let mut bad = rows_text(0, ROWS);
    // A bad value on line ROWS - 10, long after the first parts were logged.
    let at = bad.match_indices('\n').nth((ROWS - 11) as usize).unwrap().0 + 1;
    let end = at + bad[at..].find('\n').unwrap();
    bad.replace_range(at..end, &format!("{}\toops\t1", ROWS - 10));
    let err = copy(&client, STATEMENT, bad).await.unwrap_err();
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("22P02"), "{err}");
    assert!(err.as_db_error().unwrap().message().contains(&format!("line {}", ROWS - 9)), "{err}");
    assert!(wal_bytes(dir.path()) > 1 << 20, "the COPY logged no parts before its bad row: the test does not test streaming");
    assert_eq!(count_between(&client, 0, ROWS).await, 0, "a failed COPY left rows");

    // A client that gives up half way (CopyFail): nothing either.
    {
        let sink = client.copy_in::<_, bytes::Bytes>(STATEMENT).await.unwrap();
        futures::pin_mut!(sink);
        let data = rows_text(1, ROWS);
        sink.send(bytes::Bytes::from(data[..data.len() / 2].to_string())).await.unwrap();
        // Dropping the sink unfinished sends CopyFail.
    }
    assert_eq!(count_between(&client, ROWS, 2 * ROWS).await, 0, "a cancelled COPY left rows");
    // The connection still works and a good COPY lands.
    // (times 2 * ROWS .. 2 * ROWS + 10,000)
    assert_eq!(copy(&client, STATEMENT, rows_text(20, 10_000)).await.unwrap(), 10_000);

    // Neither a clean restart nor a crash brings the failed COPYs back.
    for crash in [false, true] {
        server.restart(crash).unwrap();
        let client = server.connect().await.unwrap();
        assert_eq!(count_between(&client, 0, 2 * ROWS).await, 0, "a failed COPY came back after a restart (crash: {crash})");
        assert_eq!(count_between(&client, 2 * ROWS, 3 * ROWS).await, 10_000);
    }
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_copy_killed_halfway_is_absent_and_acknowledged_ones_are_whole() {
    const ROWS: i64 = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = server.connect().await.unwrap();
    setup(&client).await;

    // Killed while the data is still arriving, its first parts in the WAL.
    {
        let sink = client.copy_in::<_, bytes::Bytes>(STATEMENT).await.unwrap();
        futures::pin_mut!(sink);
        let data = rows_text(0, ROWS);
        let before = wal_bytes(dir.path());
        sink.send(bytes::Bytes::from(data[..data.len() * 3 / 4].to_string())).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while wal_bytes(dir.path()) < before + (512 << 10) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(wal_bytes(dir.path()) >= before + (512 << 10), "no parts logged: the test does not test streaming");
        server.crash();
    }
    server.restart(false).unwrap();
    let client = server.connect().await.unwrap();
    assert_eq!(count_between(&client, 0, ROWS).await, 0, "part of a COPY survived a kill");

    // COPYs back to back while another connection inserts, killed at random
    // moments (often inside a commit, as it applies parts).
    let mut k = 1;
    for cycle in 0..cycles() {
        let writer = server.connect().await.unwrap();
        let inserter = server.connect().await.unwrap();
        let start_k = k;
        let copies = tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut k = start_k;
            loop {
                match copy(&writer, STATEMENT, rows_text(k, ROWS)).await {
                    Ok(rows) => {
                        assert_eq!(rows, ROWS as u64);
                        acked.push(k);
                    }
                    Err(_) => return (acked, k),
                }
                k += 1;
            }
        });
        let base = 1_000_000_000 + cycle as i64 * 1_000_000;
        let inserts = tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let t = base + i;
                let sql = format!("INSERT INTO root.bulk.d9(timestamp, x) VALUES ({t}, {i})");
                if inserter.batch_execute(&sql).await.is_err() {
                    break;
                }
                acked.push(t);
            }
            acked
        });
        tokio::time::sleep(Duration::from_millis(500 + jitter(2500))).await;
        server.crash();
        let (acked, in_flight) = copies.await.unwrap();
        let inserted = inserts.await.unwrap();
        server.restart(false).unwrap_or_else(|e| panic!("restart after cycle {cycle}: {e}"));
        let client = server.connect().await.unwrap();
        eprintln!("cycle {cycle}: {} COPYs acknowledged, {} inserts", acked.len(), inserted.len());
        for c in start_k..=in_flight {
            let got = count_between(&client, c * ROWS, (c + 1) * ROWS).await;
            if acked.contains(&c) {
                assert_eq!(got, ROWS, "cycle {cycle}: acknowledged COPY {c} is not whole");
            } else {
                assert!(got == 0 || got == ROWS, "cycle {cycle}: COPY {c} in flight left {got} of {ROWS} rows");
            }
        }
        let sql = format!("SELECT count(x) FROM root.bulk.d9 WHERE time >= {base} AND time < {}", base + 1_000_000);
        let present: i64 = client.query_one(&sql, &[]).await.unwrap().get(0);
        assert!(present >= inserted.len() as i64, "cycle {cycle}: {present} inserts present of {} acknowledged", inserted.len());
        k = in_flight + 1;
    }
    server.stop().unwrap();
}

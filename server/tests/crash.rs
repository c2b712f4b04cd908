//! Crash tests through the real server, in the style of
//! `storage/tests/crash.rs`: clients write over the wire under the default
//! `wal_fsync = "every-batch"`, the server is killed with SIGKILL at a
//! random moment, restarted, and every acknowledged write must be there
//! (single statements and multi-statement messages, TSQL and SQL) —
//! and a COPY is there whole or not at all.
//!
//! `ARBOR_CRASH_CYCLES` sets the number of kill/restart cycles (default 3).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::SinkExt;
use sqllogictests::Server;

fn cycles() -> usize {
    std::env::var("ARBOR_CRASH_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(3)
}

/// A pseudo-random number from the clock (the kill moment need not repeat).
fn jitter(modulo: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let mut x = nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x % modulo.max(1)
}

/// Small memtables so flushes (and WAL generations) keep turning over.
fn start(dir: &Path) -> Server {
    let config = dir.join("arbor.toml");
    std::fs::write(&config, "[storage]\nmemtable_bytes_max = 65536\n").unwrap();
    let data = dir.join("data");
    Server::start_with_args(Path::new(env!("CARGO_BIN_EXE_arbor")), &data, &["--config", config.to_str().unwrap()]).unwrap()
}

const CONNECTIONS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_inserts_of_32_connections_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let setup = server.connect().await.unwrap();
    setup.batch_execute("CREATE DATABASE root.crash").await.unwrap();
    for k in 0..CONNECTIONS {
        setup.batch_execute(&format!("CREATE TIMESERIES root.crash.d{k}.v WITH DATATYPE=INT64")).await.unwrap();
    }
    // Per connection, the acknowledged times (value = time * (k + 1)).
    let acked: Arc<Mutex<Vec<Vec<i64>>>> = Arc::new(Mutex::new(vec![Vec::new(); CONNECTIONS]));
    let mut next_time = vec![0i64; CONNECTIONS];
    for cycle in 0..cycles() {
        let mut tasks = Vec::new();
        for (k, start_time) in next_time.iter().enumerate() {
            let client = server.connect().await.unwrap();
            let acked = acked.clone();
            let mut t = *start_time;
            tasks.push(tokio::spawn(async move {
                // Even connections speak TSQL, odd ones SQL (time in seconds there).
                let insert = |x: i64| {
                    let v = x * (k as i64 + 1);
                    if k % 2 == 0 {
                        format!("INSERT INTO root.crash.d{k}(timestamp, v) VALUES ({x}, {v})")
                    } else {
                        format!(r#"INSERT INTO "root.crash.d{k}"(time, v) VALUES (to_timestamp({x}), {v})"#)
                    }
                };
                loop {
                    // Every other message holds three statements that share one sync.
                    let (sql, times): (String, Vec<i64>) = if t % 2 == 0 {
                        let times = vec![t, t + 1, t + 2];
                        (times.iter().map(|x| insert(*x)).collect::<Vec<_>>().join("; "), times)
                    } else {
                        (insert(t), vec![t])
                    };
                    if client.batch_execute(&sql).await.is_err() {
                        return t;
                    }
                    t += times.len() as i64;
                    acked.lock().unwrap()[k].extend(times);
                }
            }));
        }
        let ran = Duration::from_millis(400 + jitter(1200));
        let before: usize = acked.lock().unwrap().iter().map(Vec::len).sum();
        tokio::time::sleep(ran).await;
        server.crash();
        let after: usize = acked.lock().unwrap().iter().map(Vec::len).sum();
        eprintln!("cycle {cycle}: {} rows acknowledged in {ran:?} by {CONNECTIONS} connections", after - before);
        for (k, task) in tasks.into_iter().enumerate() {
            // The statement in flight may or may not have landed: skip past it.
            next_time[k] = task.await.unwrap() + 3;
        }
        server.restart(false).unwrap_or_else(|e| panic!("restart after cycle {cycle}: {e}"));
        let client = server.connect().await.unwrap();
        let acked = acked.lock().unwrap().clone();
        assert!(acked.iter().map(Vec::len).sum::<usize>() > 0, "nothing was acknowledged in cycle {cycle}");
        for (k, times) in acked.iter().enumerate() {
            // The value encodes the time (v = time * (k + 1)).
            let rows = client.query(&format!(r#"SELECT v FROM "root.crash.d{k}""#), &[]).await.unwrap();
            let got: BTreeSet<i64> = rows.iter().map(|r| r.get::<_, i64>(0)).collect();
            for t in times {
                assert!(got.contains(&(t * (k as i64 + 1))), "cycle {cycle}: acknowledged time {t} of d{k} is missing ({} rows present)", got.len());
            }
        }
    }
    server.stop().unwrap();
}

async fn copy(client: &tokio_postgres::Client, statement: &str, data: String) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, bytes::Bytes>(statement).await?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(data)).await?;
    sink.finish().await
}

const COPY_ROWS: i64 = 20_000;

fn copy_data(n: i64) -> String {
    let mut data = String::new();
    for r in 0..COPY_ROWS {
        let t = n * COPY_ROWS + r;
        data.push_str(&format!("{t}\t{}.5\t{}\n", t % 1000, t));
    }
    data
}

/// Rows of COPY `n` present after a restart.
async fn rows_of_copy(client: &tokio_postgres::Client, n: i64) -> i64 {
    let sql = format!(r#"SELECT count(*) FROM "root.bulk.d1" WHERE n >= {} AND n < {}"#, n * COPY_ROWS, (n + 1) * COPY_ROWS);
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_killed_halfway_is_absent_and_an_acknowledged_one_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = server.connect().await.unwrap();
    client
        .batch_execute("CREATE TIMESERIES root.bulk.d1.v WITH DATATYPE=DOUBLE; CREATE TIMESERIES root.bulk.d1.n WITH DATATYPE=INT64")
        .await
        .unwrap();
    let statement = r#"COPY "root.bulk.d1"(time, v, n) FROM STDIN"#;

    // Killed while the data is still arriving: nothing of it is there.
    {
        let sink = client.copy_in::<_, bytes::Bytes>(statement).await.unwrap();
        futures::pin_mut!(sink);
        let data = copy_data(0);
        sink.send(bytes::Bytes::from(data[..data.len() / 2].to_string())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.crash();
    }
    server.restart(false).unwrap();
    let client = server.connect().await.unwrap();
    assert_eq!(rows_of_copy(&client, 0).await, 0, "half a COPY survived a kill");

    // COPYs back to back, killed at a random moment (often inside one's commit).
    let mut n = 1;
    for cycle in 0..cycles() {
        let writer = server.connect().await.unwrap();
        let start = n;
        let task = tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut n = start;
            loop {
                match copy(&writer, statement, copy_data(n)).await {
                    Ok(rows) => {
                        assert_eq!(rows, COPY_ROWS as u64);
                        acked.push(n);
                    }
                    Err(_) => return (acked, n),
                }
                n += 1;
            }
        });
        tokio::time::sleep(Duration::from_millis(300 + jitter(1500))).await;
        server.crash();
        let (acked, in_flight) = task.await.unwrap();
        server.restart(false).unwrap();
        let client = server.connect().await.unwrap();
        for k in start..=in_flight {
            let got = rows_of_copy(&client, k).await;
            if acked.contains(&k) {
                assert_eq!(got, COPY_ROWS, "cycle {cycle}: acknowledged COPY {k} is not whole");
            } else {
                assert!(got == 0 || got == COPY_ROWS, "cycle {cycle}: COPY {k} in flight left {got} of {COPY_ROWS} rows");
            }
        }
        n = in_flight + 1;
    }
    server.stop().unwrap();
}

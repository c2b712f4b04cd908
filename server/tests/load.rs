//! `LOAD 'file.tsfile'` over the wire: every tree-model fixture written by
//! Apache TsFile loads, and each series queried back equals the manifest;
//! a truncated file, a table-model file and a type conflict are refused
//! with a named error and load nothing.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sqllogictests::Server;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tsfile/tests/fixtures")
}

/// The manifest's value as the server prints it in text.
fn expected_text(dtype: &str, v: &Json) -> String {
    match dtype {
        "BOOLEAN" => if v.as_bool().unwrap() { "t" } else { "f" }.to_string(),
        "INT32" | "INT64" => v.as_i64().unwrap().to_string(),
        "FLOAT" => format!("{}", v.as_f64().unwrap() as f32),
        "DOUBLE" => format!("{}", v.as_f64().unwrap()),
        "TEXT" | "STRING" | "DATE" => v.as_str().unwrap().to_string(),
        "BLOB" => format!("\\x{}", v["hex"].as_str().unwrap()),
        "TIMESTAMP" => chrono::DateTime::from_timestamp_millis(v.as_i64().unwrap()).unwrap().format("%Y-%m-%d %H:%M:%S%.f+00").to_string(),
        other => panic!("type {other}"),
    }
}

/// Float text in the forms the server uses (shortest round trip; `1e+300`-style exponents).
fn same_number(got: &str, want: &str) -> bool {
    got == want || got.parse::<f64>().ok().zip(want.parse::<f64>().ok()).is_some_and(|(a, b)| a == b)
}

/// The server's timestamp text trims trailing zeros of the fraction.
fn same_time(got: &str, want: &str) -> bool {
    let norm = |s: &str| {
        let (body, zone) = s.split_at(s.len() - 3);
        let body = if body.contains('.') { body.trim_end_matches('0').trim_end_matches('.') } else { body };
        format!("{body}{zone}")
    };
    norm(got) == norm(want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_fixtures_load_and_read_back_as_their_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    let manifest: Json = serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap()).unwrap();
    let mut checked = 0;
    for (file, spec) in manifest["files"].as_object().unwrap() {
        if spec["model"] != "tree" {
            continue;
        }
        let path = fixtures().join(file);
        client.batch_execute(&format!("LOAD '{}'", path.display())).await.unwrap_or_else(|e| panic!("LOAD {file}: {e:?}"));
        for series in spec["series"].as_array().unwrap() {
            let device = series["device"].as_str().unwrap();
            let m = series["measurement"].as_str().unwrap();
            let dtype = series["dtype"].as_str().unwrap();
            let sql = format!(r#"SELECT time, "{m}" FROM "{device}" WHERE "{m}" IS NOT NULL ORDER BY time"#);
            let mut rows = Vec::new();
            for msg in client.simple_query(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")) {
                if let tokio_postgres::SimpleQueryMessage::Row(r) = msg {
                    rows.push((r.get(0).unwrap().to_string(), r.get(1).unwrap().to_string()));
                }
            }
            let points = series["points"].as_array().unwrap();
            assert_eq!(rows.len(), points.len(), "{file} {device}.{m}: point count");
            for ((t, v), p) in rows.iter().zip(points) {
                let want_t = chrono::DateTime::from_timestamp_millis(p[0].as_i64().unwrap()).unwrap().format("%Y-%m-%d %H:%M:%S%.3f+00").to_string();
                assert!(same_time(t, &want_t), "{file} {device}.{m}: time {t} vs {want_t}");
                let want = expected_text(dtype, &p[1]);
                let ok = match dtype {
                    "FLOAT" | "DOUBLE" => same_number(v, &want),
                    "TIMESTAMP" => same_time(v, &want),
                    _ => *v == want,
                };
                assert!(ok, "{file} {device}.{m} at {t}: {v} vs {want}");
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000, "{checked} points checked");
    // The types came from the file.
    let row = client.query_one("SELECT data_type FROM arbor.timeseries WHERE timeseries = 'root.ref.plain.s_date'", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "DATE");
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_and_foreign_files_are_refused_and_load_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    let client = server.connect().await.unwrap();
    let code = |e: tokio_postgres::Error| e.as_db_error().map(|d| (d.code().code().to_string(), d.message().to_string())).unwrap();

    // Truncated: cut at several places, every one refused, nothing created.
    let whole = std::fs::read(fixtures().join("02_tree_all_types_plain.tsfile")).unwrap();
    for cut in [whole.len() / 3, whole.len() / 2, whole.len() - 1] {
        let path = dir.path().join(format!("cut{cut}.tsfile"));
        std::fs::write(&path, &whole[..cut]).unwrap();
        let (c, msg) = code(client.batch_execute(&format!("LOAD '{}'", path.display())).await.unwrap_err());
        assert_eq!(c, "22P02", "cut at {cut}: {msg}");
        assert!(msg.contains("not a readable TsFile"), "{msg}");
    }
    let missing = dir.path().join("missing.tsfile");
    let (c, _) = code(client.batch_execute(&format!("LOAD '{}'", missing.display())).await.unwrap_err());
    assert_eq!(c, "22P02");
    let row = client.query_one("SELECT count(*) FROM arbor.timeseries", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "a refused LOAD created series");

    // A table-model file has no tree paths.
    let (c, msg) = code(client.batch_execute(&format!("LOAD '{}'", fixtures().join("01_tiny_table.tsfile").display())).await.unwrap_err());
    assert_eq!(c, "0A000", "{msg}");

    // A series that exists with another type: refused, nothing of the file written.
    client.batch_execute("CREATE TIMESERIES root.ref.plain.s_int32 WITH DATATYPE=TEXT").await.unwrap();
    let (c, msg) = code(client.batch_execute(&format!("LOAD '{}'", fixtures().join("02_tree_all_types_plain.tsfile").display())).await.unwrap_err());
    assert_eq!(c, "42804", "{msg}");
    let row = client.query_one(r#"SELECT count(*) FROM "root.ref.plain""#, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);

    // A good file then loads, and survives kill -9 (it is in the WAL).
    client.batch_execute(&format!("LOAD '{}'", fixtures().join("00_tiny_tree.tsfile").display())).await.unwrap();
    server.restart(true).unwrap();
    let client = server.connect().await.unwrap();
    let row = client.query_one(r#"SELECT count(s1), sum(s1) FROM "root.sg.d1""#, &[]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (3, 307));
    server.stop().unwrap();
}

/// Every `.tsfile` under `dir`, recursively.
fn tsfiles_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(tsfiles_under(&p));
        } else if p.extension().is_some_and(|e| e == "tsfile") {
            out.push(p);
        }
    }
    out
}

/// How many of the database's files are byte for byte `original`.
fn copies_of(data: &Path, original: &Path) -> usize {
    let want = std::fs::read(original).unwrap();
    tsfiles_under(&data.join("databases")).iter().filter(|p| std::fs::read(p).unwrap() == want).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_later_than_the_stored_points_is_adopted_and_an_overlapping_one_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), &data).unwrap();
    let client = server.connect().await.unwrap();
    let snappy = fixtures().join("04_tree_compression_snappy.tsfile");
    let lz4 = fixtures().join("04_tree_compression_lz4.tsfile");
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };

    // Nothing stored for root.ref.comp: the file itself becomes a sequence file.
    client.batch_execute(&format!("LOAD '{}'", snappy.display())).await.unwrap();
    assert_eq!(copies_of(&data, &snappy), 1, "the file was not adopted as is");
    assert_eq!(count(r#"SELECT count(i64) FROM "root.ref.comp""#).await, 2500);

    // The same times again: overlapping, so the points are rewritten.
    client.batch_execute(&format!("LOAD '{}'", lz4.display())).await.unwrap();
    assert_eq!(copies_of(&data, &lz4), 0, "an overlapping file was adopted");
    client.batch_execute("FLUSH").await.unwrap();
    assert_eq!(count(r#"SELECT count(i64) FROM "root.ref.comp""#).await, 2500);

    // A point stored inside the file's range: rewritten, and the file's
    // points win (they were written later).
    let tiny = fixtures().join("00_tiny_tree.tsfile");
    client.batch_execute("CREATE TIMESERIES root.sg.d1.s1 WITH DATATYPE=INT32; INSERT INTO root.sg.d1(time, s1) VALUES (2, 1000000)").await.unwrap();
    client.batch_execute(&format!("LOAD '{}'", tiny.display())).await.unwrap();
    assert_eq!(copies_of(&data, &tiny), 0, "a file overlapping the memtable was adopted");
    assert_eq!(count(r#"SELECT sum(s1)::bigint FROM "root.sg.d1""#).await, 307);

    // Adopted files survive kill -9 (renamed into place and synced before
    // the LOAD is acknowledged).
    server.restart(true).unwrap();
    let client = server.connect().await.unwrap();
    assert_eq!(copies_of(&data, &snappy), 1);
    let row = client.query_one(r#"SELECT count(i64), count(f64), count(txt) FROM "root.ref.comp""#, &[]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (2500, 2500, 2500));
    server.stop().unwrap();
}

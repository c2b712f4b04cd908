//! Real PostgreSQL clients against the real `arbor` binary: psql's
//! meta-commands, the JDBC driver, Python's drivers (psycopg2, psycopg 3,
//! asyncpg, SQLAlchemy, pandas) and node-postgres. All are installed by
//! `scripts/install-test-deps.sh`; a missing client fails the test.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::Path;
use std::process::Command;

use sqllogictests::Server;

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(env!("CARGO_BIN_EXE_arbor")), dir.path()).unwrap();
    (dir, server)
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?} (scripts/install-test-deps.sh installs it): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{command:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn psql(port: u16, args: &[&str]) -> String {
    run(Command::new("psql")
        .env("PGPASSWORD", "root")
        .args(["-X", "-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "root", "-d", "arbor", "-v", "ON_ERROR_STOP=1"])
        .args(args))
}

#[test]
fn psql_lists_devices_and_describes_them() {
    let (_dir, mut server) = start();
    let port = server.port();
    psql(port, &["-c", "INSERT INTO root.ps.wt01(timestamp, temperature, status) VALUES (1000, 20.5, true)"]);
    let tables = psql(port, &["-A", "-t", "-c", "\\dt"]);
    assert_eq!(tables.trim(), "public|root.ps.wt01|table|postgres");
    // Columns in the order the measurements were created, as PostgreSQL keeps them.
    let columns = psql(port, &["-A", "-t", "-c", "\\d \"root.ps.wt01\""]);
    let lines: Vec<&str> = columns.lines().collect();
    assert_eq!(lines, ["time|timestamp with time zone||not null|", "temperature|double precision|||", "status|boolean|||"]);
    // `\d+` (its query uses `array(SELECT … FROM unnest(…))` and `col_description`).
    let verbose = psql(port, &["-A", "-t", "-c", "\\d+ \"root.ps.wt01\""]);
    let lines: Vec<&str> = verbose.lines().collect();
    assert_eq!(
        lines,
        ["time|timestamp with time zone||not null||plain|||", "temperature|double precision||||plain|||", "status|boolean||||plain|||"]
    );
    assert_eq!(psql(port, &["-A", "-t", "-c", "\\dn"]).lines().collect::<Vec<_>>(), ["arbor|postgres", "public|postgres"]);
    assert!(psql(port, &["-A", "-t", "-c", "\\l"]).lines().any(|l| l.starts_with("arbor|postgres|UTF8|")));
    // `\d+` of a table CREATE TABLE made: PostgreSQL's type names and storage.
    psql(port, &["-c", "CREATE TABLE \"root.ps.typed\" (time timestamptz PRIMARY KEY, temp double precision, n bigint, i integer, ok boolean, note text, f real)"]);
    let typed = psql(port, &["-A", "-t", "-c", "\\d+ \"root.ps.typed\""]);
    assert_eq!(
        typed.lines().collect::<Vec<_>>(),
        [
            "time|timestamp with time zone||not null||plain|||",
            "temp|double precision||||plain|||",
            "n|bigint||||plain|||",
            "i|integer||||plain|||",
            "ok|boolean||||plain|||",
            "note|text||||extended|||",
            "f|real||||plain|||",
        ]
    );
    let rows = psql(port, &["-A", "-t", "-c", "SELECT time, temperature, status FROM \"root.ps.wt01\""]);
    assert_eq!(rows.trim(), "1970-01-01 00:00:01+00|20.5|t");
    server.stop().unwrap();
}

/// psql's headers: the names PostgreSQL gives unaliased columns (a scalar
/// subquery is named after its column, a cast of a literal after its type,
/// a repeated column is allowed), and the session's user is the one psql
/// connected as, as `\conninfo` says.
#[test]
fn psql_names_columns_as_postgresql_names_them() {
    let (_dir, mut server) = start();
    let port = server.port();
    psql(port, &["-c", "INSERT INTO root.sq.d1(timestamp, x) VALUES (1000, 3), (2000, 7), (3000, 5)"]);
    let query = r#"SELECT (SELECT 1), (SELECT max(x) FROM "root.sq.d1"), (SELECT x FROM "root.sq.d1" WHERE time = to_timestamp(2)), (SELECT x AS y FROM "root.sq.d1" WHERE x = 3), 1::int, 'a'::text, x, x, count(*) FROM "root.sq.d1" WHERE x = 5 GROUP BY x"#;
    let out = psql(port, &["-A", "-c", query]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["?column?|max|x|y|int4|text|x|x|count", "1|7|7|3|1|a|5|5|1", "(1 row)"]);
    let out = psql(port, &["-A", "-c", "SELECT session_user, current_user AS cu, user AS u"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["session_user|cu|u", "root|root|root", "(1 row)"]);
    let out = psql(port, &["-c", "\\conninfo"]);
    assert!(out.contains("as user \"root\""), "{out}");
    // `SELECT current_user` is named as PostgreSQL names it.
    let out = psql(port, &["-A", "-c", "SELECT current_user"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["current_user", "root", "(1 row)"]);
    server.stop().unwrap();
}

/// The roles: psql's `\du`, and `pg_roles`, `pg_user` and `pg_authid` list
/// the server's configured user (and the session's) as a superuser beside
/// PostgreSQL's `postgres`, which owns the catalog's objects.
#[test]
fn psql_lists_the_roles() {
    let (_dir, mut server) = start();
    let port = server.port();
    let du = psql(port, &["-A", "-t", "-c", "\\du"]);
    let superuser = "Superuser, Create role, Create DB, Replication, Bypass RLS";
    // Member of none: the empty array `{}`, as PostgreSQL's psql shows it.
    assert_eq!(du.lines().collect::<Vec<_>>(), [format!("postgres|{superuser}|{{}}"), format!("root|{superuser}|{{}}")]);
    let roles = psql(port, &["-A", "-t", "-c", "SELECT rolname, rolsuper, rolcanlogin, rolpassword FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY oid"]);
    assert_eq!(roles.lines().collect::<Vec<_>>(), ["postgres|t|t|********", "root|t|t|********"]);
    let users = psql(port, &["-A", "-t", "-c", "SELECT usename, usesuper, passwd FROM pg_user ORDER BY usesysid"]);
    assert_eq!(users.lines().collect::<Vec<_>>(), ["postgres|t|********", "root|t|********"]);
    let authid = psql(port, &["-A", "-t", "-c", "SELECT a.rolname FROM pg_authid a JOIN pg_roles r ON a.oid = r.oid WHERE a.rolsuper ORDER BY a.oid"]);
    assert_eq!(authid.lines().collect::<Vec<_>>(), ["postgres", "root"]);
    server.stop().unwrap();
}

/// psql's meta-commands over functions, operators, object descriptions,
/// tablespaces, and the `+` forms with sizes and privileges.
#[test]
fn psql_lists_functions_operators_tablespaces_and_sizes() {
    let (_dir, mut server) = start();
    let port = server.port();
    psql(port, &["-c", "INSERT INTO root.ps.wt01(timestamp, temperature) VALUES (1000, 20.5)"]);
    let lines = |command: &str| psql(port, &["-A", "-t", "-c", command]).lines().map(str::to_string).collect::<Vec<_>>();
    // No function, operator or description outside pg_catalog, as in a fresh PostgreSQL database.
    assert!(lines("\\df").is_empty());
    assert!(lines("\\df+").is_empty());
    assert!(lines("\\do").is_empty());
    assert!(lines("\\dd").is_empty());
    // PostgreSQL's own functions, with their signatures as pg_get_function_result/arguments write them.
    assert_eq!(
        lines("\\dfS generate_series"),
        [
            "pg_catalog|generate_series|SETOF bigint|bigint, bigint|func",
            "pg_catalog|generate_series|SETOF bigint|bigint, bigint, bigint|func",
            "pg_catalog|generate_series|SETOF integer|integer, integer|func",
            "pg_catalog|generate_series|SETOF integer|integer, integer, integer|func",
            "pg_catalog|generate_series|SETOF numeric|numeric, numeric|func",
            "pg_catalog|generate_series|SETOF numeric|numeric, numeric, numeric|func",
            "pg_catalog|generate_series|SETOF timestamp with time zone|timestamp with time zone, timestamp with time zone, interval|func",
            "pg_catalog|generate_series|SETOF timestamp with time zone|timestamp with time zone, timestamp with time zone, interval, text|func",
            "pg_catalog|generate_series|SETOF timestamp without time zone|timestamp without time zone, timestamp without time zone, interval|func",
        ]
    );
    let keywords = lines("\\dfS+ pg_get_keywords");
    assert_eq!(keywords.len(), 1, "{keywords:?}");
    assert!(keywords[0].starts_with("pg_catalog|pg_get_keywords|SETOF record|OUT word text, OUT catcode \"char\", "), "{keywords:?}");
    assert_eq!(lines("\\db"), ["pg_default|postgres|", "pg_global|postgres|"]);
    // Sizes: a device has none of its own (its points share TsFiles); the database is its data directory.
    assert_eq!(lines("\\dt+"), ["public|root.ps.wt01|table|postgres|permanent|||"]);
    let databases = lines("\\l+");
    let arbor = databases.iter().find(|l| l.starts_with("arbor|")).unwrap_or_else(|| panic!("{databases:?}"));
    let size = arbor.split('|').nth(8).unwrap_or_default();
    assert!(size.ends_with(" bytes") || size.ends_with(" kB") || size.ends_with(" MB"), "{arbor}");
    // A relation OID printed as text is its name, as regclassout writes it.
    assert_eq!(lines("SELECT 'pg_class'::regclass::text, '\"root.ps.wt01\"'::regclass::text"), ["pg_class|\"root.ps.wt01\""]);
    server.stop().unwrap();
}

/// psql's `\copy` both ways, PREPARE/EXECUTE and `\gdesc`.
#[test]
fn psql_copies_prepares_and_describes() {
    let (_dir, mut server) = start();
    let port = server.port();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "1970-01-01 00:00:05+00,1.5\n1970-01-01 00:00:06+00,2.5\n").unwrap();
    psql(port, &["-c", "INSERT INTO root.pc.d1(timestamp, v) VALUES (1000, 0.5)"]);
    let copy_in = format!("\\copy \"root.pc.d1\" (time, v) FROM '{}' WITH (FORMAT csv)", csv.display());
    psql(port, &["-c", &copy_in]);
    let out = psql(port, &["-c", "\\copy (SELECT time, v FROM \"root.pc.d1\" ORDER BY time) TO STDOUT WITH (FORMAT csv)"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["1970-01-01 00:00:01+00,0.5", "1970-01-01 00:00:05+00,1.5", "1970-01-01 00:00:06+00,2.5"]);
    // EXECUTE's columns are named as the prepared query's.
    let out = psql(port, &["-A", "-c", "PREPARE above(float8) AS SELECT count(v), count(v) FROM \"root.pc.d1\" WHERE v > $1", "-c", "EXECUTE above(0.7)", "-c", "EXECUTE above(0)"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["count|count", "2|2", "(1 row)", "count|count", "3|3", "(1 row)"]);
    // \gdesc describes without running: PostgreSQL's type names.
    let mut child = Command::new("psql")
        .env("PGPASSWORD", "root")
        .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "root", "-d", "arbor", "-v", "ON_ERROR_STOP=1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT time, v, 1 AS i, 3000000000 AS b, 'a'::text AS t, (SELECT 1), 1.5 AS d, v + 1.5 AS f, '2024-01-01 00:00:00+02'::timestamptz AS tz FROM \"root.pc.d1\" \\gdesc\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(),
        [
            "time|timestamp with time zone",
            "v|double precision",
            "i|integer",
            "b|bigint",
            "t|text",
            "?column?|integer",
            // A decimal literal is numeric; with a float, double precision.
            "d|numeric",
            "f|double precision",
            "tz|timestamp with time zone"
        ]
    );
    server.stop().unwrap();
}

#[test]
fn the_jdbc_driver_works_end_to_end() {
    let (_dir, mut server) = start();
    let jar = std::env::var("ARBOR_JDBC_JAR").unwrap_or_else(|_| "/usr/share/java/postgresql.jar".into());
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/JdbcSmoke.java");
    let out = run(Command::new("java").arg("-Duser.timezone=Asia/Kolkata").arg("-cp").arg(&jar).arg(&source).arg(server.port().to_string()));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "server: PostgreSQL 15.0",
            "TimeZone: Asia/Kolkata (JVM Asia/Kolkata)",
            "prepared insert rows: 1",
            "row: 2000 21.5 false",
            "row: 3000 22.5 true",
            "row: 4000 23.5 false",
            "fetched with fetchSize 2: 4",
            "table: root.j.d1",
            "column: time timestamptz",
            "column: temp float8",
            "column: ok bool",
            "primary key: root.j.d1 time 1 root.j.d1_pkey",
            "index: root.j.d1_pkey non_unique=false time 1 A",
            "type info: {_int4=2003, float8=8, int4=4, numeric=2, timestamptz=93} many=true",
            "typed: 1 time timestamptz 93 size=35 nullable=0 default=null",
            "typed: 2 temp float8 8 size=17 nullable=1 default=null",
            "typed: 3 n int8 -5 size=19 nullable=1 default=null",
            "typed: 4 i int4 4 size=10 nullable=1 default=null",
            "typed: 5 ok bool -7 size=1 nullable=1 default=null",
            "typed: 6 note text 12 size=2147483647 nullable=1 default=null",
            "typed: 7 f float4 7 size=8 nullable=1 default=null",
            // RowDescription's table OID and column number, looked up in pg_class/pg_attribute.
            "base: time table=root.j.d1 schema=public column=time tableName=root.j.d1 nullable=0",
            "base: t table=root.j.d1 schema=public column=temp tableName=root.j.d1 nullable=1",
            "base: t1 table= schema= column= tableName= nullable=2",
            "tsql: count(root.j.d1.temp)=4 avg(root.j.d1.temp)=22.0",
            "tsql batch rows: 3",
            "tsql row: 2000 root.j.d2.level=3.0 n'2",
            "error: 42703 ERROR: Schema error: No field named nosuch.",
        ]
    );
    server.stop().unwrap();
}

/// Python's clients: each prints `ok <client>: …` after its own exact checks.
#[test]
fn python_clients_work_end_to_end() {
    let (_dir, mut server) = start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_clients.py");
    let out = run(Command::new("python3").arg(&script).arg(server.port().to_string()));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "ok psycopg2: client-side parameters, named cursor, errors",
            "ok psycopg3: parameters, prepared after 5 runs, binary cursor, server cursor, BINARY cursor, oid[], errors, TimeZone reported, start-up TimeZone",
            "ok asyncpg: prepared statements, binary, cursor with prefetch, oid[], type lookup, literal types, pool reset, errors",
            "ok sqlalchemy: connect, parameters, errors on psycopg2, psycopg, asyncpg; inspector tables, primary keys and columns; reflect + select",
            "ok pandas: read_sql_query with parameters, datetime index, read_sql, to_sql append and create, read_sql_table",
        ]
    );
    server.stop().unwrap();
}

/// node-postgres, installed globally by scripts/install-test-deps.sh.
#[test]
fn node_postgres_works_end_to_end() {
    let (_dir, mut server) = start();
    let root = run(Command::new("npm").args(["root", "-g"]));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node_pg.js");
    let out = run(Command::new("node").env("NODE_PATH", root.trim()).arg(&script).arg(server.port().to_string()));
    assert_eq!(out.trim(), "ok node-postgres: int4 literals, parameters, named statements, errors");
    server.stop().unwrap();
}

/// Timestamps print in the session's TimeZone (SET TIME ZONE, or PGTZ at
/// start-up), as local time with the offset in force then.
#[test]
fn timestamps_print_in_the_session_time_zone() {
    let (_dir, mut server) = start();
    let port = server.port();
    psql(port, &["-c", "INSERT INTO root.tz.d1(timestamp, v) VALUES (2024-05-01T10:00:00Z, 1), (2024-01-01T12:00:00.5Z, 2)"]);
    let select = "SELECT time, v FROM \"root.tz.d1\" ORDER BY time";
    let berlin = psql(port, &["-A", "-t", "-c", "SET TIME ZONE 'Europe/Berlin'", "-c", select]);
    assert_eq!(berlin.lines().collect::<Vec<_>>(), ["2024-01-01 13:00:00.5+01|2", "2024-05-01 12:00:00+02|1"]);
    let utc = psql(port, &["-A", "-t", "-c", select]);
    assert_eq!(utc.lines().collect::<Vec<_>>(), ["2024-01-01 12:00:00.5+00|2", "2024-05-01 10:00:00+00|1"]);
    let out = Command::new("psql")
        .env("PGPASSWORD", "root")
        .env("PGTZ", "America/New_York")
        .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "root", "-d", "arbor", "-c", select])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(), ["2024-01-01 07:00:00.5-05|2", "2024-05-01 06:00:00-04|1"]);
    server.stop().unwrap();
}

/// psqlODBC through pyodbc (both installed by scripts/install-test-deps.sh).
#[test]
fn odbc_works_end_to_end() {
    let (_dir, mut server) = start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/odbc_client.py");
    let out = run(Command::new("python3").arg(&script).arg(server.port().to_string()));
    assert_eq!(out.trim(), "ok odbc: SQLTables, SQLColumns, SQLPrimaryKeys, parameters, errors");
    server.stop().unwrap();
}

"""Python's PostgreSQL clients against a running arbor: psycopg2, psycopg 3,
asyncpg, SQLAlchemy 2 (on all three) and pandas. Each check asserts exact
values, type OIDs and NULLs, and that a failed statement leaves the
connection usable; each client prints one `ok <client>: <facts>` line that
server/tests/clients.rs compares.

Usage: python3 python_clients.py PORT [CLIENT...]
"""

import asyncio
import datetime
import sys

PORT = int(sys.argv[1])
ONLY = set(sys.argv[2:])
DSN = f"host=127.0.0.1 port={PORT} user=root password=root dbname=arbor"
URL = f"root:root@127.0.0.1:{PORT}/arbor"
UTC = datetime.timezone.utc

# OIDs
INT4, INT8, TEXT, FLOAT8, BOOL, TIMESTAMPTZ = 23, 20, 25, 701, 16, 1184
OID_ARRAY = 1028
OID = 26


def ts(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, UTC)


def check(got, want, what):
    assert got == want, f"{what}: got {got!r}, want {want!r}"


def psycopg2_client():
    import psycopg2
    import psycopg2.errors

    conn = psycopg2.connect(DSN)
    cur = conn.cursor()
    cur.execute("SELECT 1, 'a', NULL::text, 2.5::float8, true")
    check(cur.fetchone(), (1, "a", None, 2.5, True), "literals")
    check([d.type_code for d in cur.description], [INT4, TEXT, TEXT, FLOAT8, BOOL], "type OIDs")
    # Client-side interpolation: psycopg2 sends the values inline.
    cur.execute(
        "INSERT INTO root.py2.d1(timestamp, temp, status) VALUES (%s, %s, %s), (%s, %s, %s), (%s, %s, %s)",
        (1000, 20.5, True, 2000, 21.5, False, 3000, None, True),
    )
    cur.execute('SELECT time, temp, status FROM "root.py2.d1" WHERE time >= %s ORDER BY time', (ts(1000),))
    rows = cur.fetchall()
    check(rows, [(ts(1000), 20.5, True), (ts(2000), 21.5, False), (ts(3000), None, True)], "rows")
    check([d.type_code for d in cur.description], [TIMESTAMPTZ, FLOAT8, BOOL], "row OIDs")
    conn.commit()
    # Named (server-side) cursor: DECLARE … CURSOR WITHOUT HOLD, FETCH FORWARD itersize, CLOSE.
    named = conn.cursor("py2_cursor")
    named.itersize = 2
    named.execute('SELECT time, temp FROM "root.py2.d1" ORDER BY time')
    check([r[1] for r in named], [20.5, 21.5, None], "named cursor rows")
    named.close()
    conn.commit()
    named = conn.cursor("py2_many")
    named.execute('SELECT temp FROM "root.py2.d1" ORDER BY time')
    check(named.fetchmany(2), [(20.5,), (21.5,)], "fetchmany")
    check(named.fetchone(), (None,), "fetchone")
    check(named.fetchone(), None, "past the end")
    named.close()
    conn.commit()
    try:
        cur.execute('SELECT * FROM "root.py2.nosuch"')
        raise AssertionError("expected an error")
    except psycopg2.errors.UndefinedTable:
        conn.rollback()
    cur.execute("SELECT count(temp) FROM \"root.py2.d1\"")
    check(cur.fetchone(), (2,), "usable after an error")
    conn.close()
    return "client-side parameters, named cursor, errors"


def psycopg3_client():
    import psycopg

    with psycopg.connect(DSN) as conn:
        cur = conn.execute("SELECT 1 AS one, 'a' AS t, NULL::text AS n")
        check(cur.fetchone(), (1, "a", None), "literals")
        check([d.type_code for d in cur.description], [INT4, TEXT, TEXT], "type OIDs")
        conn.execute(
            "INSERT INTO root.py3.d1(timestamp, v) VALUES (1000, 1.5), (2000, 2.5), (3000, 3.5)"
        )
        conn.commit()
        # Server-side parameters; from the 5th run on psycopg prepares the statement.
        for i in range(8):
            got = conn.execute('SELECT count(v) FROM "root.py3.d1" WHERE v > %s', (float(i) - 0.5,)).fetchone()[0]
            check(got, max(0, 3 - max(0, i - 1)), f"run {i}")
        check(conn.execute("SELECT %s::int + 1", (41,)).fetchone(), (42,), "int parameter")
        with conn.cursor(binary=True) as bcur:
            bcur.execute('SELECT time, v FROM "root.py3.d1" ORDER BY time')
            check(bcur.fetchall(), [(ts(1000), 1.5), (ts(2000), 2.5), (ts(3000), 3.5)], "binary rows")
            check([d.type_code for d in bcur.description], [TIMESTAMPTZ, FLOAT8], "binary OIDs")
        with conn.cursor(name="py3_cursor") as scur:
            scur.execute('SELECT v FROM "root.py3.d1" ORDER BY time')
            check(scur.fetchmany(2), [(1.5,), (2.5,)], "server cursor")
            check(scur.fetchall(), [(3.5,)], "server cursor rest")
        conn.commit()
        # DECLARE … BINARY CURSOR: FETCH in the simple protocol answers in binary.
        import struct

        pgconn = conn.pgconn
        for sql in (b"BEGIN", b'DECLARE bc BINARY CURSOR FOR SELECT v, 7::int4 AS n, NULL::float8 AS z FROM "root.py3.d1" ORDER BY time'):
            check(pgconn.exec_(sql).status, psycopg.pq.ExecStatus.COMMAND_OK, sql.decode())
        res = pgconn.exec_(b"FETCH 2 FROM bc")
        check((res.status, res.ntuples, [res.fformat(i) for i in range(3)]), (psycopg.pq.ExecStatus.TUPLES_OK, 2, [1, 1, 1]), "binary fetch")
        check([struct.unpack("!d", res.get_value(r, 0))[0] for r in range(2)], [1.5, 2.5], "binary float8")
        check((struct.unpack("!i", res.get_value(0, 1))[0], res.get_value(0, 2)), (7, None), "binary int4 and NULL")
        check(pgconn.exec_(b"COMMIT").status, psycopg.pq.ExecStatus.COMMAND_OK, "commit")
        # oid[] in text and in binary.
        oids = "SELECT array_agg(a.atttypid ORDER BY a.attnum) FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON a.attrelid = c.oid WHERE c.relname = 'root.py3.d1'"
        cur = conn.execute(oids)
        check((cur.fetchone(), [d.type_code for d in cur.description]), (([TIMESTAMPTZ, FLOAT8],), [OID_ARRAY]), "oid[] as text")
        cur = conn.execute(oids, binary=True)
        check((cur.fetchone(), [d.type_code for d in cur.description]), (([TIMESTAMPTZ, FLOAT8],), [OID_ARRAY]), "oid[] in binary")
        # An aggregate returning one of its oids is an oid, as in PostgreSQL.
        cur = conn.execute("SELECT max(oid), min(relnamespace) FROM pg_catalog.pg_class")
        check([d.type_code for d in cur.description], [OID, OID], "max(oid) is an oid")
        try:
            conn.execute("SELECT nosuch FROM \"root.py3.d1\"")
            raise AssertionError("expected an error")
        except psycopg.errors.UndefinedColumn:
            conn.rollback()
        check(conn.execute("SELECT 2").fetchone(), (2,), "usable after an error")
        # SET TIME ZONE is reported (ParameterStatus), so psycopg gives
        # timestamptz values in the session's zone, text and binary alike.
        import datetime
        import zoneinfo

        check(conn.info.parameter_status("TimeZone"), "UTC", "TimeZone at start-up")
        conn.execute("SET TIME ZONE 'Europe/Berlin'")
        check(conn.info.parameter_status("TimeZone"), "Europe/Berlin", "TimeZone reported after SET")
        berlin = zoneinfo.ZoneInfo("Europe/Berlin")
        for binary in (False, True):
            got = conn.execute('SELECT time FROM "root.py3.d1" WHERE v > %s ORDER BY time LIMIT 1', (0.0,), binary=binary).fetchone()[0]
            check((got, got.utcoffset()), (ts(1000), datetime.timedelta(hours=1)), f"Berlin time, binary={binary}")
            check(got.tzinfo == berlin or str(got.tzinfo) == "Europe/Berlin", True, f"zone of the value, binary={binary}")
        conn.execute("RESET TIME ZONE")
        check(conn.info.parameter_status("TimeZone"), "UTC", "TimeZone reported after RESET")
    # A TimeZone start-up parameter (libpq sends PGTZ as `timezone`) is
    # the zone the start-up ParameterStatus reports.
    import os

    os.environ["PGTZ"] = "America/New_York"
    try:
        with psycopg.connect(DSN) as conn:
            check(conn.info.parameter_status("TimeZone"), "America/New_York", "TimeZone from the start-up packet")
            check(conn.execute("SHOW TimeZone").fetchone(), ("America/New_York",), "the session's zone")
    finally:
        del os.environ["PGTZ"]
    return "parameters, prepared after 5 runs, binary cursor, server cursor, BINARY cursor, oid[], errors, TimeZone reported, start-up TimeZone"


async def asyncpg_main():
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", port=PORT, user="root", password="root", database="arbor")
    row = await conn.fetchrow("SELECT 1 AS one, $1::text AS t, NULL::text AS n", "x")
    check(tuple(row), (1, "x", None), "literals")
    # Number literals auto-create DOUBLE series (IoTDB's inference): type it.
    await conn.execute("CREATE TIMESERIES root.apg.d1.v WITH DATATYPE=INT64, ENCODING=PLAIN")
    await conn.execute("INSERT INTO root.apg.d1(timestamp, v) VALUES (1000, 10), (2000, 20), (3000, 30)")
    stmt = await conn.prepare('SELECT time, v FROM "root.apg.d1" WHERE v > $1 ORDER BY time')
    check([a.type.oid for a in stmt.get_attributes()], [TIMESTAMPTZ, INT8], "prepared OIDs")
    check([tuple(r) for r in await stmt.fetch(15)], [(ts(2000), 20), (ts(3000), 30)], "prepared rows")
    check([tuple(r) for r in await stmt.fetch(25)], [(ts(3000), 30)], "prepared again")
    async with conn.transaction():
        got = [r["v"] async for r in conn.cursor('SELECT v FROM "root.apg.d1" ORDER BY time', prefetch=2)]
    check(got, [10, 20, 30], "cursor with prefetch")
    # An aggregate of oids is oid[] (OID 1028; asyncpg decodes it, in
    # binary with element OID 26, without asking the catalog), and so is a
    # `$1::oid[]` parameter (asyncpg encodes a list by the described type).
    stmt = await conn.prepare(
        "SELECT array_agg(a.atttypid ORDER BY a.attnum) AS types FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_class c ON a.attrelid = c.oid WHERE c.relname = 'root.apg.d1' AND a.atttypid = any($1::oid[])"
    )
    check(([a.type.oid for a in stmt.get_attributes()], [p.oid for p in stmt.get_parameters()]), ([OID_ARRAY], [OID_ARRAY]), "oid[] described")
    check(await stmt.fetchval([TIMESTAMPTZ, INT8, TEXT]), [TIMESTAMPTZ, INT8], "oid[] values")
    try:
        await conn.fetch('SELECT * FROM "root.apg.nosuch"')
        raise AssertionError("expected an error")
    except asyncpg.exceptions.UndefinedTableError:
        pass
    check(await conn.fetchval("SELECT count(v) FROM \"root.apg.d1\""), 3, "usable after an error")
    # int2[] and bool[] have no built-in codec: asyncpg looks them up with
    # its type-introspection query (a recursive CTE whose static term is
    # correlated with the type, for a domain's base type).
    check(await conn.fetchval("SELECT ARRAY[1, 2]::int2[]"), [1, 2], "int2[] through the type lookup")
    check(await conn.fetchval("SELECT ARRAY[true, false]"), [True, False], "bool[] through the type lookup")
    # PostgreSQL's types of literals: a decimal is numeric, a timestamptz the instant it names.
    import decimal

    check(tuple(await conn.fetchrow("SELECT 1.5 AS d, '2024-01-01 00:00:00+02'::timestamptz AS tz")),
          (decimal.Decimal("1.5"), datetime.datetime(2023, 12, 31, 22, 0, tzinfo=UTC)), "numeric and timestamptz literals")
    await conn.close()
    # A pool resets each connection it takes back (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL).
    pool = await asyncpg.create_pool(host="127.0.0.1", port=PORT, user="root", password="root", database="arbor", min_size=1, max_size=1)
    async with pool.acquire() as c:
        await c.execute("SET application_name = 'pooled'")
        check(await c.fetchval("SELECT pg_try_advisory_lock(7)"), True, "lock")
    async with pool.acquire() as c:
        check(await c.fetchval("SHOW application_name"), "", "reset by the pool")
        check(await c.fetchval("SELECT pg_advisory_unlock(7)"), False, "unlocked by the pool")
    await pool.close()
    return "prepared statements, binary, cursor with prefetch, oid[], type lookup, literal types, pool reset, errors"


def asyncpg_client():
    return asyncio.run(asyncpg_main())


# The device table the reflection checks read: one column of each type
# CREATE TABLE maps, in definition order.
REFLECTED_COLUMNS = [
    ("time", "TIMESTAMP", False),
    ("temp", "DOUBLE_PRECISION", True),
    ("n", "BIGINT", True),
    ("i", "INTEGER", True),
    ("ok", "BOOLEAN", True),
    ("note", "TEXT", True),
    ("f", "REAL", True),
]
REFLECTED_ROWS = [(ts(1000), 1.5, 10, 3, True, "a", 2.5), (ts(2000), None, 20, None, False, "b", None)]


def create_reflected(conn, sa, table):
    conn.execute(sa.text(f'CREATE TABLE "{table}" (time timestamptz PRIMARY KEY, temp double precision, n bigint, i integer, ok boolean, note text, f real)'))
    conn.execute(
        sa.text(f'INSERT INTO "{table}" (time, temp, n, i, ok, note, f) VALUES (:t1, 1.5, 10, 3, true, \'a\', 2.5), (:t2, NULL, 20, NULL, false, \'b\', NULL)'),
        {"t1": ts(1000), "t2": ts(2000)},
    )


def check_columns(columns, driver):
    """get_columns: names in definition order, SQLAlchemy types, nullability, no defaults."""
    got = [(c["name"], type(c["type"]).__name__, c["nullable"], c["default"]) for c in columns]
    check(got, [(n, t, nullable, None) for n, t, nullable in REFLECTED_COLUMNS], f"{driver} get_columns")
    check(columns[0]["type"].timezone, True, f"{driver} time is timestamptz")


def sqlalchemy_client():
    import sqlalchemy as sa

    seen = []
    for driver in ("psycopg2", "psycopg", "asyncpg"):
        device = f"root.sa_{driver}.d1"
        reflected = f"root.sa_{driver}.typed"
        if driver == "asyncpg":
            from sqlalchemy.ext.asyncio import create_async_engine

            async def run():
                engine = create_async_engine(f"postgresql+asyncpg://{URL}")
                async with engine.connect() as conn:
                    await conn.execute(sa.text(f"INSERT INTO {device}(timestamp, v) VALUES (1000, 1.5), (2000, 2.5)"))
                    rows = (await conn.execute(sa.text(f'SELECT time, v FROM "{device}" WHERE v > :v ORDER BY time'), {"v": 2.0})).all()
                    check([tuple(r) for r in rows], [(ts(2000), 2.5)], f"{driver} rows")
                    try:
                        await conn.execute(sa.text("SELECT * FROM nosuch_table"))
                        raise AssertionError("expected an error")
                    except sa.exc.ProgrammingError:
                        await conn.rollback()
                    check((await conn.execute(sa.text("SELECT 1"))).scalar(), 1, f"{driver} usable")
                    await conn.run_sync(lambda c: create_reflected(c, sa, reflected))
                    await conn.commit()
                    # get_columns (its parameters are cast, $n::INTEGER: asyncpg
                    # encodes them by the type the server describes).
                    columns = await conn.run_sync(lambda c: sa.inspect(c).get_columns(reflected))
                    check_columns(columns, driver)
                    # Reflection (Table(autoload_with=…) also reads the
                    # indexes, whose int2[]/bool[] columns asyncpg looks up
                    # in pg_type), then a select through the reflected table.
                    table = await conn.run_sync(lambda c: sa.Table(reflected, sa.MetaData(), autoload_with=c))
                    check([(c.name, type(c.type).__name__, c.nullable, c.primary_key) for c in table.columns],
                          [(n, t, nullable, n == "time") for n, t, nullable in REFLECTED_COLUMNS], f"{driver} reflected table")
                    rows = (await conn.execute(sa.select(table).order_by(table.c.time))).all()
                    check([tuple(r) for r in rows], REFLECTED_ROWS, f"{driver} select from the reflected table")
                    rows = (await conn.execute(sa.select(table.c.n, table.c.note).where(table.c.n > 15))).all()
                    check([tuple(r) for r in rows], [(20, "b")], f"{driver} reflected where")
                await engine.dispose()

            asyncio.run(run())
        else:
            engine = sa.create_engine(f"postgresql+{driver}://{URL}")
            with engine.connect() as conn:
                conn.execute(sa.text(f"INSERT INTO {device}(timestamp, v) VALUES (1000, 1.5), (2000, 2.5)"))
                conn.commit()
                rows = conn.execute(sa.text(f'SELECT time, v FROM "{device}" WHERE v > :v ORDER BY time'), {"v": 2.0}).all()
                check([tuple(r) for r in rows], [(ts(2000), 2.5)], f"{driver} rows")
                try:
                    conn.execute(sa.text("SELECT * FROM nosuch_table"))
                    raise AssertionError("expected an error")
                except sa.exc.ProgrammingError:
                    conn.rollback()
                check(conn.execute(sa.text("SELECT 1")).scalar(), 1, f"{driver} usable")
                create_reflected(conn, sa, reflected)
                conn.commit()
            # The inspector reads pg_catalog: the tables, time as the primary
            # key (pg_constraint and pg_index's indkey, through unnest and
            # generate_subscripts), and the columns (their defaults,
            # identities and collations are correlated subqueries, which
            # sql/src/pg/decorrelate.rs joins).
            inspector = sa.inspect(engine)
            check(device in inspector.get_table_names(), True, f"{driver} get_table_names")
            pk = inspector.get_pk_constraint(device)
            check((pk["constrained_columns"], pk["name"]), (["time"], f"{device}_pkey"), f"{driver} get_pk_constraint")
            check(inspector.get_indexes(device), [], f"{driver} get_indexes (the key's index is not listed, as PostgreSQL's)")
            check_columns(inspector.get_columns(reflected), driver)
            check([c["name"] for c in inspector.get_columns(device)], ["time", "v"], f"{driver} get_columns of an inserted device")
            # Reflection, then a select through the reflected table.
            table = sa.Table(reflected, sa.MetaData(), autoload_with=engine)
            check([(c.name, type(c.type).__name__, c.nullable, c.primary_key) for c in table.columns],
                  [(n, t, nullable, n == "time") for n, t, nullable in REFLECTED_COLUMNS], f"{driver} reflected table")
            with engine.connect() as conn:
                rows = conn.execute(sa.select(table).order_by(table.c.time)).all()
                check([tuple(r) for r in rows], REFLECTED_ROWS, f"{driver} select from the reflected table")
                rows = conn.execute(sa.select(table.c.n, table.c.note).where(table.c.n > 15)).all()
                check([tuple(r) for r in rows], [(20, "b")], f"{driver} reflected where")
            engine.dispose()
        seen.append(driver)
    return "connect, parameters, errors on " + ", ".join(seen) + "; inspector tables, primary keys and columns; reflect + select"


def pandas_client():
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(f"postgresql+psycopg2://{URL}")
    with engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO root.pd.d1(timestamp, temp, status) VALUES (1000, 20.5, true), (2000, 21.5, false), (3000, NULL, true)"))
        conn.commit()
    df = pd.read_sql_query(
        sa.text('SELECT time, temp, status FROM "root.pd.d1" WHERE time >= :t ORDER BY time'),
        engine,
        params={"t": ts(2000)},
        index_col="time",
    )
    check(list(df.index), [pd.Timestamp(2000, unit="ms", tz="UTC"), pd.Timestamp(3000, unit="ms", tz="UTC")], "datetime index")
    check((isinstance(df.index, pd.DatetimeIndex), str(df.index.tz)), (True, "UTC"), "index dtype")
    check(df["temp"].iloc[0], 21.5, "value")
    check(bool(pd.isna(df["temp"].iloc[1])), True, "NULL as NaN")
    df = pd.read_sql('SELECT count(temp) AS n FROM "root.pd.d1"', engine)
    check(int(df["n"][0]), 2, "read_sql")
    # to_sql appends to the device table (SQLAlchemy's has_table, then executemany INSERT).
    more = pd.DataFrame({"time": pd.to_datetime([4000, 5000], unit="ms", utc=True), "temp": [23.5, None], "status": [False, True]})
    check(more.to_sql("root.pd.d1", engine, if_exists="append", index=False), 2, "to_sql rows")
    df = pd.read_sql_query('SELECT time, temp, status FROM "root.pd.d1" WHERE time >= \'1970-01-01 00:00:04+00\' ORDER BY time', engine)
    check([(t.value // 1_000_000, None if pd.isna(v) else v, s) for t, v, s in df.itertuples(index=False)], [(4000, 23.5, False), (5000, None, True)], "appended rows")
    # to_sql into a table that does not exist yet: pandas emits CREATE TABLE, which makes an aligned device.
    fresh = pd.DataFrame({"time": pd.to_datetime([1000, 2000], unit="ms", utc=True), "v": [1.5, None], "n": [1, 2]})
    check(fresh.to_sql("root.pd.new", engine, if_exists="append", index=False), 2, "to_sql new table")
    df = pd.read_sql_query('SELECT v, n FROM "root.pd.new" ORDER BY time', engine)
    check([(None if pd.isna(v) else v, int(n)) for v, n in df.itertuples(index=False)], [(1.5, 1), (None, 2)], "new table rows")
    with engine.connect() as conn:
        types = conn.execute(sa.text("SELECT data_type FROM information_schema.columns WHERE table_name = 'root.pd.new' ORDER BY ordinal_position")).scalars().all()
    check(types, ["timestamp with time zone", "double precision", "bigint"], "created column types")
    # read_sql_table reflects the table (get_columns) and selects it whole.
    df = pd.read_sql_table("root.pd.new", engine)
    check(list(df.columns), ["time", "v", "n"], "read_sql_table columns")
    check(str(df["time"].dtype).startswith("datetime64") and str(df["time"].dt.tz) == "UTC", True, f"read_sql_table datetime column {df['time'].dtype}")
    check([(t.value // 1_000_000, None if pd.isna(v) else v, int(n)) for t, v, n in df.itertuples(index=False)], [(1000, 1.5, 1), (2000, None, 2)], "read_sql_table rows")
    df = pd.read_sql_table("root.pd.d1", engine, index_col="time", columns=["temp", "status"])
    check(isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC", True, "read_sql_table datetime index")
    check([(t.value // 1_000_000, None if pd.isna(v) else v, s) for t, (v, s) in zip(df.index, df.itertuples(index=False))],
          [(1000, 20.5, True), (2000, 21.5, False), (3000, None, True), (4000, 23.5, False), (5000, None, True)], "read_sql_table index rows")
    engine.dispose()
    return "read_sql_query with parameters, datetime index, read_sql, to_sql append and create, read_sql_table"


CLIENTS = {
    "psycopg2": psycopg2_client,
    "psycopg3": psycopg3_client,
    "asyncpg": asyncpg_client,
    "sqlalchemy": sqlalchemy_client,
    "pandas": pandas_client,
}

if __name__ == "__main__":
    failed = False
    for name, fn in CLIENTS.items():
        if ONLY and name not in ONLY:
            continue
        try:
            print(f"ok {name}: {fn()}", flush=True)
        except Exception as e:  # noqa: BLE001 - report every client, then fail
            failed = True
            print(f"FAILED {name}: {type(e).__name__}: {e}", flush=True)
    sys.exit(1 if failed else 0)

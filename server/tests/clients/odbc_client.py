"""psqlODBC through pyodbc against a real arbor server (run by
server/tests/clients.rs): SQLTables, SQLColumns, SQLPrimaryKeys, parameters
bound by the driver, result types, NULLs, and an error that leaves the
connection usable. Prints one `ok odbc: …` line after its exact checks."""

import datetime
import sys

import pyodbc

PORT = sys.argv[1]


def check(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def main():
    conn = pyodbc.connect(
        f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={PORT};DATABASE=arbor;UID=root;PWD=root;SSLmode=disable",
        autocommit=True,
    )
    cur = conn.cursor()
    cur.execute("INSERT INTO root.odbc.d1(timestamp, temp, status, note) VALUES (1000, 20.5, true, 'a'), (2000, NULL, false, 'b')")

    tables = [(r.table_schem, r.table_name, r.table_type) for r in cur.tables(schema="public", tableType="TABLE")]
    check(tables, [("public", "root.odbc.d1", "TABLE")], "SQLTables")

    columns = [(r.column_name, r.type_name, r.data_type, r.nullable, r.ordinal_position) for r in cur.columns(table="root.odbc.d1", schema="public")]
    check(
        columns,
        [
            ("time", "timestamptz", pyodbc.SQL_TYPE_TIMESTAMP, 0, 1),
            # psqlODBC's own mapping: float8 is SQL_FLOAT, bool is SQL_VARCHAR
            # (its BoolsAsChar default), as against PostgreSQL.
            ("temp", "float8", pyodbc.SQL_FLOAT, 1, 2),
            ("status", "bool", pyodbc.SQL_VARCHAR, 1, 3),
            ("note", "text", pyodbc.SQL_WLONGVARCHAR, 1, 4),
        ],
        "SQLColumns",
    )

    keys = [(r.table_name, r.column_name, r.key_seq, r.pk_name) for r in cur.primaryKeys(table="root.odbc.d1", schema="public")]
    check(keys, [("root.odbc.d1", "time", 1, "root.odbc.d1_pkey")], "SQLPrimaryKeys")

    cur.execute('SELECT time, temp, status, note FROM "root.odbc.d1" WHERE time >= ? AND note <> ? ORDER BY time', datetime.datetime(1970, 1, 1, 0, 0, 1), "x")
    rows = [tuple(r) for r in cur.fetchall()]
    # Booleans as psqlODBC hands them over by default (BoolsAsChar): '1' and '0'.
    check(rows, [(datetime.datetime(1970, 1, 1, 0, 0, 1), 20.5, "1", "a"), (datetime.datetime(1970, 1, 1, 0, 0, 2), None, "0", "b")], "parameters")
    check([d[1] for d in cur.description], [datetime.datetime, float, str, str], "result types")

    cur.execute('INSERT INTO "root.odbc.d1" (time, temp, note) VALUES (?, ?, ?)', datetime.datetime(1970, 1, 1, 0, 0, 3), 22.5, "c")
    check(cur.execute('SELECT count(*) FROM "root.odbc.d1"').fetchval(), 3, "parameterised insert")

    try:
        cur.execute('SELECT nosuch FROM "root.odbc.d1"')
        raise AssertionError("expected an error")
    except pyodbc.Error as e:
        check(e.args[0], "42703", "SQLSTATE")
    check(cur.execute("SELECT 1").fetchval(), 1, "usable after an error")
    conn.close()
    return "SQLTables, SQLColumns, SQLPrimaryKeys, parameters, errors"


if __name__ == "__main__":
    print(f"ok odbc: {main()}", flush=True)

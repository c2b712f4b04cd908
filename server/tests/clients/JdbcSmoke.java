// JDBC smoke test run by server/tests/clients.rs: the PostgreSQL JDBC driver against a real
// arbor server (plain statements, prepared statements with parameters, fetch size with
// portal suspension, DatabaseMetaData, TSQL, errors with SQLSTATEs). Prints one line per check.

import java.sql.*;

public class JdbcSmoke {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/arbor?user=root&password=root&sslmode=disable";
        try (Connection c = DriverManager.getConnection(url)) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("server: " + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            // pgJDBC sends the JVM's zone as the TimeZone start-up parameter;
            // the start-up ParameterStatus reports the session's zone.
            System.out.println("TimeZone: " + c.unwrap(org.postgresql.PGConnection.class).getParameterStatus("TimeZone") + " (JVM " + java.util.TimeZone.getDefault().getID() + ")");
            try (Statement s = c.createStatement()) {
                s.execute("INSERT INTO root.j.d1(timestamp, temp, ok) VALUES (1000, 20.5, true), (2000, 21.5, false), (3000, 22.5, true)");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO \"root.j.d1\"(time, temp, ok) VALUES (?, ?, ?)")) {
                p.setTimestamp(1, new Timestamp(4000));
                p.setDouble(2, 23.5);
                p.setBoolean(3, false);
                System.out.println("prepared insert rows: " + p.executeUpdate());
            }
            try (PreparedStatement p = c.prepareStatement("SELECT time, temp, ok FROM \"root.j.d1\" WHERE temp > ? ORDER BY time")) {
                p.setDouble(1, 21.0);
                try (ResultSet rs = p.executeQuery()) {
                    while (rs.next()) System.out.println("row: " + rs.getTimestamp(1).getTime() + " " + rs.getDouble(2) + " " + rs.getBoolean(3));
                }
            }
            c.setAutoCommit(false);
            try (PreparedStatement p = c.prepareStatement("SELECT temp FROM \"root.j.d1\" ORDER BY time")) {
                p.setFetchSize(2);
                int n = 0;
                try (ResultSet rs = p.executeQuery()) { while (rs.next()) n++; }
                System.out.println("fetched with fetchSize 2: " + n);
            }
            c.commit();
            c.setAutoCommit(true);
            try (ResultSet rs = md.getTables(null, "public", "%", new String[]{"TABLE"})) {
                while (rs.next()) System.out.println("table: " + rs.getString("TABLE_NAME"));
            }
            try (ResultSet rs = md.getColumns(null, "public", "root.j.d1", "%")) {
                while (rs.next()) System.out.println("column: " + rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
            }
            // time is the primary key (information_schema._pg_expandarray over pg_index).
            try (ResultSet rs = md.getPrimaryKeys(null, "public", "root.j.d1")) {
                while (rs.next()) System.out.println("primary key: " + rs.getString("TABLE_NAME") + " " + rs.getString("COLUMN_NAME") + " " + rs.getInt("KEY_SEQ") + " " + rs.getString("PK_NAME"));
            }
            try (ResultSet rs = md.getIndexInfo(null, "public", "root.j.d1", false, false)) {
                while (rs.next()) System.out.println("index: " + rs.getString("INDEX_NAME") + " non_unique=" + rs.getBoolean("NON_UNIQUE") + " " + rs.getString("COLUMN_NAME") + " " + rs.getInt("ORDINAL_POSITION") + " " + rs.getString("ASC_OR_DESC"));
            }
            // getTypeInfo: its type cache asks `typinput = 'pg_catalog.array_in'::regproc`.
            try (ResultSet rs = md.getTypeInfo()) {
                java.util.TreeMap<String, Integer> seen = new java.util.TreeMap<>();
                int n = 0;
                while (rs.next()) {
                    n++;
                    String t = rs.getString("TYPE_NAME");
                    if (java.util.List.of("int4", "float8", "timestamptz", "_int4", "numeric").contains(t)) seen.put(t, rs.getInt("DATA_TYPE"));
                }
                System.out.println("type info: " + seen + " many=" + (n > 100));
            }
            // A table made by CREATE TABLE, one column of each type it maps:
            // getColumns' type names, JDBC types, sizes, nullability and
            // defaults (none: COLUMN_DEF is NULL) as PostgreSQL reports them.
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE \"root.j.typed\" (time timestamptz PRIMARY KEY, temp double precision, n bigint, i integer, ok boolean, note text, f real)");
            }
            try (ResultSet rs = md.getColumns(null, "public", "root.j.typed", "%")) {
                while (rs.next()) {
                    System.out.println("typed: " + rs.getInt("ORDINAL_POSITION") + " " + rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME") + " " + rs.getInt("DATA_TYPE")
                        + " size=" + rs.getInt("COLUMN_SIZE") + " nullable=" + rs.getInt("NULLABLE") + " default=" + rs.getString("COLUMN_DEF"));
                }
            }
            // RowDescription's table OID and column number lead back to the table and column.
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT time, temp AS t, temp + 1 AS t1 FROM \"root.j.d1\" LIMIT 1")) {
                ResultSetMetaData m = rs.getMetaData();
                org.postgresql.PGResultSetMetaData pm = m.unwrap(org.postgresql.PGResultSetMetaData.class);
                for (int i = 1; i <= 3; i++) {
                    System.out.println("base: " + m.getColumnLabel(i) + " table=" + pm.getBaseTableName(i) + " schema=" + pm.getBaseSchemaName(i) + " column=" + pm.getBaseColumnName(i) + " tableName=" + m.getTableName(i) + " nullable=" + m.isNullable(i));
                }
            }
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT count(temp), avg(temp) FROM root.j.d1")) {
                ResultSetMetaData m = rs.getMetaData();
                rs.next();
                System.out.println("tsql: " + m.getColumnName(1) + "=" + rs.getLong(1) + " " + m.getColumnName(2) + "=" + rs.getDouble(2));
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO root.j.d2(timestamp, level, note) VALUES (?, ?, ?)")) {
                for (int i = 1; i <= 3; i++) {
                    p.setLong(1, i * 1000L);
                    p.setDouble(2, i * 1.5);
                    p.setString(3, "n'" + i);
                    p.addBatch();
                }
                int total = 0;
                for (int n : p.executeBatch()) total += n;
                System.out.println("tsql batch rows: " + total);
            }
            try (PreparedStatement p = c.prepareStatement("SELECT level, note FROM root.j.d2 WHERE time >= ? AND level < ?")) {
                p.setLong(1, 2000L);
                p.setDouble(2, 4.0);
                try (ResultSet rs = p.executeQuery()) {
                    ResultSetMetaData m = rs.getMetaData();
                    while (rs.next()) System.out.println("tsql row: " + rs.getTimestamp(1).getTime() + " " + m.getColumnName(2) + "=" + rs.getDouble(2) + " " + rs.getString(3));
                }
            }
            try (Statement s = c.createStatement()) {
                s.executeQuery("SELECT nosuch FROM \"root.j.d1\"");
            } catch (SQLException e) {
                System.out.println("error: " + e.getSQLState() + " " + e.getMessage().split("\n")[0]);
            }
        }
    }
}

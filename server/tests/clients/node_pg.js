// node-postgres (pg) against a running arbor: simple and parameterised
// queries with exact values, type OIDs and NULLs, a failed statement that
// leaves the connection usable. Prints `ok node-postgres: …` for
// server/tests/clients.rs. Usage: node node_pg.js PORT
const assert = require("assert");
const { Client } = require("pg");

async function main() {
  const port = Number(process.argv[2]);
  const client = new Client({ host: "127.0.0.1", port, user: "root", password: "root", database: "arbor" });
  await client.connect();
  // int4 comes back as a JavaScript number (int8 would be a string).
  let r = await client.query("SELECT 1 AS one, 'a' AS t, NULL::text AS n, 2.5::float8 AS f");
  assert.deepStrictEqual(r.rows, [{ one: 1, t: "a", n: null, f: 2.5 }]);
  assert.deepStrictEqual(r.fields.map((f) => f.dataTypeID), [23, 25, 25, 701]);
  await client.query("INSERT INTO root.node.d1(timestamp, v, ok) VALUES (1000, 1.5, true), (2000, 2.5, false), (3000, NULL, true)");
  // Parameters go through the extended protocol.
  r = await client.query('SELECT time, v, ok FROM "root.node.d1" WHERE time >= $1 ORDER BY time', [new Date(2000)]);
  assert.deepStrictEqual(
    r.rows.map((x) => [x.time.getTime(), x.v, x.ok]),
    [[2000, 2.5, false], [3000, null, true]],
  );
  assert.deepStrictEqual(r.fields.map((f) => f.dataTypeID), [1184, 701, 16]);
  // A named prepared statement, run twice.
  for (const [min, want] of [[1, 2], [2, 1]]) {
    r = await client.query({ name: "count_above", text: 'SELECT count(v) AS n FROM "root.node.d1" WHERE v > $1', values: [min] });
    assert.strictEqual(Number(r.rows[0].n), want);
  }
  await assert.rejects(client.query('SELECT * FROM "root.node.nosuch"'), (e) => e.code === "42P01");
  r = await client.query("SELECT 2 AS two");
  assert.deepStrictEqual(r.rows, [{ two: 2 }]);
  await client.end();
  console.log("ok node-postgres: int4 literals, parameters, named statements, errors");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

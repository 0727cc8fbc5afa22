// A real libSQL client against a running tenantd: @libsql/client (pinned in package.json)
// over HTTP, with the URL a user would give it. Run by crates/tenantd/tests/sql_client.rs,
// which starts the server and passes:
//   TENANTD_URL    http://127.0.0.1:PORT (the server)
//   TENANT         a tenant that exists;  OTHER  another tenant that exists
//   RW_TOKEN, RO_TOKEN  read-write and read-only tokens for TENANT
// Exits non-zero with the failing check on stderr.
import assert from "node:assert/strict";
import { createClient, LibsqlError } from "@libsql/client";

const base = process.env.TENANTD_URL;
const tenant = process.env.TENANT;
const other = process.env.OTHER;
const rw = process.env.RW_TOKEN;
const ro = process.env.RO_TOKEN;
for (const [k, v] of Object.entries({ base, tenant, other, rw, ro })) {
  assert.ok(v, `missing environment for ${k}`);
}
const url = `${base}/t/${tenant}/`; // the trailing slash matters

async function rejects(promise, check, what) {
  try {
    await promise;
  } catch (e) {
    check(e);
    return;
  }
  assert.fail(`${what}: expected an error`);
}

const checks = [];
const check = (name, fn) => checks.push([name, fn]);

check("create a table, insert and read every value type", async () => {
  const db = createClient({ url, authToken: rw, intMode: "bigint" });
  await db.execute("CREATE TABLE v(i INTEGER, f REAL, s TEXT, b BLOB, n)");
  const max = 9223372036854775807n; // 2^63 - 1
  const blob = new Uint8Array([0, 1, 2, 253, 254, 255]);
  const ins = await db.execute({
    sql: "INSERT INTO v VALUES (?, ?, ?, ?, ?)",
    args: [max, 1.5, "héllo ✓", blob, null],
  });
  assert.equal(ins.rowsAffected, 1);
  assert.equal(ins.lastInsertRowid, 1n);
  await db.execute({
    sql: "INSERT INTO v VALUES (:i, :f, :s, :b, :n)",
    args: { i: -max - 1n, f: -0.25, s: "", b: new Uint8Array([]), n: null },
  });
  const rs = await db.execute("SELECT i, f, s, b, n, typeof(b) AS tb FROM v ORDER BY rowid");
  assert.deepEqual(rs.columns, ["i", "f", "s", "b", "n", "tb"]);
  assert.equal(rs.rows.length, 2);
  const [a, b] = rs.rows;
  assert.equal(a.i, max);
  assert.equal(a.f, 1.5);
  assert.equal(a.s, "héllo ✓");
  assert.deepEqual(new Uint8Array(a.b), blob);
  assert.equal(a.n, null);
  assert.equal(a.tb, "blob");
  assert.equal(b.i, -max - 1n);
  assert.equal(b.f, -0.25);
  assert.equal(b.s, "");
  assert.equal(b.tb, "blob");
  db.close();
});

check("a batch commits together or not at all", async () => {
  const db = createClient({ url, authToken: rw });
  const results = await db.batch(
    [
      "CREATE TABLE k(x INTEGER PRIMARY KEY, y TEXT)",
      { sql: "INSERT INTO k VALUES (?, ?)", args: [1, "one"] },
      { sql: "INSERT INTO k VALUES (?, ?)", args: [2, "two"] },
      "SELECT count(*) AS c FROM k",
    ],
    "write",
  );
  assert.equal(results.length, 4);
  assert.equal(results[3].rows[0].c, 2);
  await rejects(
    db.batch(
      [
        { sql: "INSERT INTO k VALUES (?, ?)", args: [3, "three"] },
        { sql: "INSERT INTO k VALUES (?, ?)", args: [1, "dup"] },
      ],
      "write",
    ),
    (e) => {
      assert.ok(e instanceof LibsqlError, String(e));
      assert.match(e.code, /SQLITE_CONSTRAINT/);
    },
    "duplicate key in a batch",
  );
  const rs = await db.execute("SELECT count(*) AS c FROM k");
  assert.equal(rs.rows[0].c, 2, "the failed batch was rolled back");
  db.close();
});

check("an interactive transaction spans requests", async () => {
  const db = createClient({ url, authToken: rw });
  const tx = await db.transaction("write");
  await tx.execute({ sql: "INSERT INTO k VALUES (?, ?)", args: [10, "ten"] });
  const inside = await tx.execute("SELECT count(*) AS c FROM k");
  assert.equal(inside.rows[0].c, 3);
  await tx.rollback();
  assert.equal((await db.execute("SELECT count(*) AS c FROM k")).rows[0].c, 2);

  const tx2 = await db.transaction("write");
  await tx2.execute({ sql: "INSERT INTO k VALUES (?, ?)", args: [11, "eleven"] });
  await tx2.execute({ sql: "UPDATE k SET y = upper(y) WHERE x = ?", args: [11] });
  await tx2.commit();
  const rs = await db.execute({ sql: "SELECT y FROM k WHERE x = ?", args: [11] });
  assert.equal(rs.rows[0].y, "ELEVEN");
  await db.executeMultiple("CREATE TABLE m(a); INSERT INTO m VALUES (1); INSERT INTO m VALUES (2);");
  assert.equal((await db.execute("SELECT sum(a) AS s FROM m")).rows[0].s, 3);
  db.close();
});

check("migrate() turns foreign keys off for its transaction, and they are back on after", async () => {
  // migrate() sends PRAGMA foreign_keys=off/on around BEGIN..COMMIT in one pipeline request;
  // tenantd used to refuse the pragmas, and the client's unawaited step crashed Node.
  const db = createClient({ url, authToken: rw });
  await db.execute("CREATE TABLE fk_parent(id INTEGER PRIMARY KEY)");
  const results = await db.migrate([
    "CREATE TABLE fk_child(id INTEGER PRIMARY KEY, p INTEGER REFERENCES fk_parent(id))",
    "INSERT INTO fk_child VALUES (1, 99)", // an orphan: allowed while foreign keys are off
  ]);
  assert.equal(results.length, 2);
  assert.equal(results[1].rowsAffected, 1);
  await rejects(
    db.execute("INSERT INTO fk_child VALUES (2, 98)"),
    (e) => {
      assert.ok(e instanceof LibsqlError, String(e));
      assert.match(e.code, /SQLITE_CONSTRAINT/, `${e.code}: ${e.message}`);
    },
    "foreign keys are enforced again after migrate()",
  );
  await rejects(
    db.migrate(["CREATE TABLE mig_half(a)", "INSERT INTO no_such_table VALUES (1)"]),
    (e) => assert.ok(e instanceof LibsqlError, String(e)),
    "a failing migrate()",
  );
  const half = await db.execute("SELECT count(*) AS c FROM sqlite_master WHERE name = 'mig_half'");
  assert.equal(half.rows[0].c, 0, "the failed migrate() was rolled back");
  db.close();
});

check("a read-only token reads but cannot write", async () => {
  const db = createClient({ url, authToken: ro });
  const rs = await db.execute("SELECT count(*) AS c FROM k");
  assert.equal(rs.rows[0].c, 3);
  for (const sql of ["INSERT INTO k VALUES (99, 'x')", "DELETE FROM k", "DROP TABLE k"]) {
    await rejects(
      db.execute(sql),
      (e) => {
        assert.ok(e instanceof LibsqlError, String(e));
        assert.match(e.code, /SQLITE_READONLY/, `${sql}: ${e.code}`);
      },
      sql,
    );
  }
  await rejects(db.batch(["INSERT INTO k VALUES (98, 'y')"], "write"), (e) => {
    assert.match(e.code, /SQLITE_READONLY/);
  }, "read-only batch");
  const rw2 = createClient({ url, authToken: rw });
  assert.equal((await rw2.execute("SELECT count(*) AS c FROM k")).rows[0].c, 3, "nothing changed");
  rw2.close();
  db.close();
});

check("a token for one tenant is refused on another", async () => {
  const db = createClient({ url: `${base}/t/${other}/`, authToken: rw });
  await rejects(db.execute("SELECT 1"), (e) => {
    assert.match(String(e.message), /another tenant/, String(e));
  }, "foreign tenant");
  db.close();
});

check("a URL without the trailing slash gets an error naming the fix", async () => {
  const db = createClient({ url: `${base}/t/${tenant}`, authToken: rw });
  await rejects(db.execute("SELECT 1"), (e) => {
    assert.match(String(e.message), /trailing slash/, String(e));
    assert.ok(String(e.message).includes(`/t/${tenant}/`), String(e));
  }, "no trailing slash");
  db.close();
});

let failed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    failed += 1;
    console.error(`not ok - ${name}\n${e?.stack ?? e}`);
  }
}
console.log(`${checks.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

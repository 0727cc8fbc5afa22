// The seed design's server on Node, the second baseline next to bench/baseline/server.ts (Bun):
// every request opens DATA_DIR/<tenant>.db, sets WAL + synchronous=NORMAL, makes sure the events
// table exists, runs its one statement and closes the file before answering.
//
//   POST /t/{tenant}/webhook   JSON body (max 1 MiB) -> 200 {"ok":true,"id":N}; creates the file
//   GET  /t/{tenant}/events?limit=N  (1..1000, default 50) -> newest first; unknown tenant 404
//
// Env: DATA_DIR (default ./data), PORT (default 3000). Listens on 127.0.0.1 only.
import http from "node:http";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";

const dataDir = process.env.DATA_DIR ?? "./data";
const port = Number(process.env.PORT ?? 3000);
const maxBody = 1024 * 1024;
const tenantRule = /^[a-z0-9_-]{1,64}$/;
mkdirSync(dataDir, { recursive: true });

function reply(res, status, value) {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function withTenant(tenant, create, work) {
  const file = join(dataDir, `${tenant}.db`);
  if (!create && !existsSync(file)) return null;
  const db = new Database(file);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec("CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, received_at INTEGER, body TEXT)");
    return work(db);
  } finally {
    db.close();
  }
}

function webhook(req, res, tenant) {
  const chunks = [];
  let size = 0;
  let refused = false;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > maxBody) {
      if (!refused) reply(res, 413, { ok: false, error: "too large" });
      refused = true;
      req.destroy();
    } else {
      chunks.push(chunk);
    }
  });
  req.on("end", () => {
    if (refused) return;
    const text = Buffer.concat(chunks).toString("utf8");
    try {
      JSON.parse(text);
    } catch {
      return reply(res, 400, { ok: false, error: "bad json" });
    }
    const id = withTenant(tenant, true, (db) =>
      Number(db.prepare("INSERT INTO events(received_at, body) VALUES (?, ?)").run(Date.now(), text).lastInsertRowid),
    );
    reply(res, 200, { ok: true, id });
  });
}

function events(url, res, tenant) {
  const asked = Number(url.searchParams.get("limit") ?? 50);
  const limit = Math.min(1000, Math.max(1, Number.isFinite(asked) ? Math.trunc(asked) : 50));
  const rows = withTenant(tenant, false, (db) =>
    db.prepare("SELECT id, received_at, body FROM events ORDER BY id DESC LIMIT ?").all(limit),
  );
  if (rows === null) return reply(res, 404, { ok: false, error: "unknown tenant" });
  reply(res, 200, {
    ok: true,
    events: rows.map((r) => ({ id: r.id, received_at: r.received_at, body: JSON.parse(r.body) })),
  });
}

http
  .createServer((req, res) => {
    try {
      const url = new URL(req.url, "http://127.0.0.1");
      const parts = url.pathname.split("/");
      // ["", "t", tenant, action]
      if (parts.length !== 4 || parts[1] !== "t") return reply(res, 404, { ok: false, error: "not found" });
      const [, , tenant, action] = parts;
      if (!tenantRule.test(tenant)) return reply(res, 400, { ok: false, error: "bad tenant" });
      if (req.method === "POST" && action === "webhook") return webhook(req, res, tenant);
      if (req.method === "GET" && action === "events") return events(url, res, tenant);
      reply(res, 404, { ok: false, error: "not found" });
    } catch (e) {
      reply(res, 500, { ok: false, error: String(e) });
    }
  })
  .listen(port, "127.0.0.1", () =>
    console.log(`baseline-node listening on http://127.0.0.1:${port} (data in ${dataDir})`),
  );

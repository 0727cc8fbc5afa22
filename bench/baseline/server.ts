// The seed design's server, written plainly as the benchmarks' baseline: every request opens
// DATA_DIR/<tenant>.db, sets WAL + synchronous=NORMAL, makes sure the events table exists, runs
// its one statement and closes the file before answering. No handle cache, so an idle tenant
// costs no RAM and no file descriptor — and every request pays for an open.
//
//   POST /t/{tenant}/webhook   JSON body (max 1 MiB) -> 200 {"ok":true,"id":N}; creates the file
//   GET  /t/{tenant}/events?limit=N  (1..1000, default 50) -> newest first; unknown tenant 404
//
// Env: DATA_DIR (default ./data), PORT (default 3000). Listens on 127.0.0.1 only.
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const dataDir = process.env.DATA_DIR ?? "./data";
const port = Number(process.env.PORT ?? 3000);
const maxBody = 1024 * 1024;
const tenantRule = /^[a-z0-9_-]{1,64}$/;
mkdirSync(dataDir, { recursive: true });

function reply(status: number, value: unknown): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function withTenant<T>(tenant: string, create: boolean, work: (db: Database) => T): T | null {
  const file = join(dataDir, `${tenant}.db`);
  if (!create && !existsSync(file)) return null;
  const db = new Database(file, { create });
  try {
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("PRAGMA synchronous=NORMAL");
    db.exec(
      "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, received_at INTEGER, body TEXT)",
    );
    return work(db);
  } finally {
    db.close();
  }
}

async function webhook(req: Request, tenant: string): Promise<Response> {
  const text = await req.text();
  if (text.length > maxBody) return reply(413, { ok: false, error: "too large" });
  try {
    JSON.parse(text);
  } catch {
    return reply(400, { ok: false, error: "bad json" });
  }
  const id = withTenant(tenant, true, (db) => {
    const row = db
      .query("INSERT INTO events(received_at, body) VALUES (?, ?) RETURNING id")
      .get(Date.now(), text) as { id: number };
    return row.id;
  });
  return reply(200, { ok: true, id });
}

function events(url: URL, tenant: string): Response {
  const asked = Number(url.searchParams.get("limit") ?? 50);
  const limit = Math.min(1000, Math.max(1, Number.isFinite(asked) ? Math.trunc(asked) : 50));
  const rows = withTenant(tenant, false, (db) =>
    db.query("SELECT id, received_at, body FROM events ORDER BY id DESC LIMIT ?").all(limit),
  ) as { id: number; received_at: number; body: string }[] | null;
  if (rows === null) return reply(404, { ok: false, error: "unknown tenant" });
  const out = rows.map((r) => ({ id: r.id, received_at: r.received_at, body: JSON.parse(r.body) }));
  return reply(200, { ok: true, events: out });
}

Bun.serve({
  hostname: "127.0.0.1",
  port,
  maxRequestBodySize: maxBody + 1,
  async fetch(req) {
    const url = new URL(req.url);
    const parts = url.pathname.split("/");
    // ["", "t", tenant, action]
    if (parts.length !== 4 || parts[1] !== "t") return reply(404, { ok: false, error: "not found" });
    const [, , tenant, action] = parts;
    if (!tenantRule.test(tenant)) return reply(400, { ok: false, error: "bad tenant" });
    if (req.method === "POST" && action === "webhook") return webhook(req, tenant);
    if (req.method === "GET" && action === "events") return events(url, tenant);
    return reply(404, { ok: false, error: "not found" });
  },
});
console.log(`baseline listening on http://127.0.0.1:${port} (data in ${dataDir})`);

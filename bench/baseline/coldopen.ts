// The seed design's cold open, alone: for each of N existing flat tenant files
// (`tenantd bench provision --layout flat`), do what server.ts does for one webhook — open,
// journal_mode=WAL, synchronous=NORMAL, CREATE TABLE IF NOT EXISTS events, insert, close — in one
// loop, and print the CPU (process.cpuUsage, user + system) and wall time per cycle.
//
//   bun coldopen.ts DATA_DIR N [PREFIX] [WIDTH]
// Prints one line: COLDOPEN_JSON {"cycles":N,"cpu_us":...,"user_us":...,"sys_us":...,"wall_us":...}
import { Database } from "bun:sqlite";
import { join } from "node:path";

const [dataDir, countArg, prefixArg, widthArg] = process.argv.slice(2);
if (!dataDir || !countArg) {
  console.error("usage: bun coldopen.ts DATA_DIR N [PREFIX] [WIDTH]");
  process.exit(2);
}
const count = Number(countArg);
const prefix = prefixArg ?? "tenant";
const width = Number(widthArg ?? 5);
// The body `tenantd bench cold-open` stores (crates/bench/src/coldopen_variants.rs, BODY).
const body =
  '{"id":"evt_1NqXbench","type":"order.created","created":1700000000,' +
  '"data":{"object":{"id":"ord_42","amount":1999,"currency":"usd","customer":"cus_9",' +
  '"items":[{"sku":"sku_1","qty":1},{"sku":"sku_2","qty":3}],' +
  '"note":"' + "x".repeat(82) + '"}},' +
  '"livemode":false,"pending_webhooks":1,"request":{"id":"req_1"}}';

const files: string[] = [];
for (let i = 0; i < count; i++) files.push(join(dataDir, `${prefix}${String(i).padStart(width, "0")}.db`));

const cpu0 = process.cpuUsage();
const wall0 = performance.now();
for (const file of files) {
  const db = new Database(file, { create: true });
  try {
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("PRAGMA synchronous=NORMAL");
    db.exec(
      "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, received_at INTEGER, body TEXT)",
    );
    db.query("INSERT INTO events(received_at, body) VALUES (?, ?) RETURNING id").get(Date.now(), body);
  } finally {
    db.close();
  }
}
const wall = performance.now() - wall0;
const cpu = process.cpuUsage(cpu0);
console.log(
  "COLDOPEN_JSON " +
    JSON.stringify({
      cycles: count,
      cpu_us: (cpu.user + cpu.system) / count,
      user_us: cpu.user / count,
      sys_us: cpu.system / count,
      wall_us: (wall * 1000) / count,
    }),
);

-- tenantd SQL benchmark load: one Hrana v2 pipeline per request (an execute, then close), the
-- tenant drawn from Zipf(s) over T tenants or uniformly, authorised with a bearer token.
--
--   wrk -t2 -c64 -d20s --latency -s hrana.lua URL -- T DIST S OP KEYS
--     T     number of tenants (default 1000), named tenant00000 … (as `tenantd bench provision`)
--     DIST  zipf | uniform (default zipf);  S  Zipf exponent (default 1.1)
--     OP    read  : SELECT v FROM kv WHERE k = ?            (a point read by primary key)
--           write : INSERT … ON CONFLICT(k) DO UPDATE SET v = excluded.v, n = n + 1
--                   (a 100-byte upsert). Every write changes stored bytes: the value embeds
--                   the thread and a per-thread counter, and `n` counts the writes, so
--                   SQLite always dirties a page, appends a WAL frame and (in fsync mode)
--                   syncs. A write that stores the value already there would do none of that.
--                   bench/sql.sh sums `n` after the run and refuses a run that stored fewer
--                   writes than were acknowledged.
--     KEYS  keys per tenant (default 100; bench/sql/0001_kv.sql seeds 1..100)
-- Env: TOKEN (bearer token, required), PATH_TEMPLATE (default /t/{tenant}/v2/pipeline).
-- Prints one "RESULT_JSON {...}" line when done.

-- Globals (not locals) so done() can read them from a thread's state with thread:get.
T, DIST, S, OP, KEYS, PATH = nil, nil, nil, nil, nil, nil
local cdf = {}
local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local function arg(args, i, default)
   local v = args[i]
   if v == nil or v == "" then return default end
   return v
end

function init(args)
   T = tonumber(arg(args, 1, "1000"))
   DIST = arg(args, 2, "zipf")
   S = tonumber(arg(args, 3, "1.1"))
   OP = arg(args, 4, "read")
   KEYS = tonumber(arg(args, 5, "100"))
   PATH = os.getenv("PATH_TEMPLATE") or "/t/{tenant}/v2/pipeline"
   local token = os.getenv("TOKEN")
   if not token or token == "" then error("set TOKEN to the admin token") end
   if OP ~= "read" and OP ~= "write" then error("OP must be read or write, got " .. OP) end
   if DIST == "zipf" then
      local sum = 0
      for k = 1, T do sum = sum + k ^ (-S); cdf[k] = sum end
      for k = 1, T do cdf[k] = cdf[k] / sum end
      cdf[T] = 1.0
   elseif DIST ~= "uniform" then
      error("DIST must be zipf or uniform, got " .. DIST)
   end
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. token
end

local function pick()
   if DIST == "uniform" then return math.random(T) - 1 end
   local u = math.random()
   local lo, hi = 1, T
   while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then lo = mid + 1 else hi = mid end
   end
   return lo - 1
end

-- The write (crates/bench/tests/sql_write.rs runs it against bench/sql/0001_kv.sql).
WRITE_SQL = "INSERT INTO kv(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v, n = n + 1"

-- A 100-byte value no earlier request of this run wrote: "w<thread>-<counter>-vvv…".
local seq = 0
local function fresh_value()
   seq = seq + 1
   local head = string.format("w%d-%d-", tid or 0, seq)
   return head .. string.rep("v", 100 - #head)
end

function request()
   local tenant = string.format("tenant%05d", pick())
   local path = string.gsub(PATH, "{tenant}", tenant)
   local key = math.random(KEYS)
   local stmt
   if OP == "read" then
      stmt = string.format(
         '{"sql":"SELECT v FROM kv WHERE k = ?","args":[{"type":"integer","value":"%d"}]}', key)
   else
      stmt = string.format(
         '{"sql":"%s","args":[{"type":"integer","value":"%d"},{"type":"text","value":"%s"}]}',
         WRITE_SQL, key, fresh_value())
   end
   local body = '{"baton":null,"requests":[{"type":"execute","stmt":' .. stmt ..
      '},{"type":"close"}]}'
   return wrk.format(nil, path, nil, body)
end

-- Hrana reports statement errors in-band with HTTP 200: count them from the body.
inband_errors = 0
function response(status, headers, body)
   if status == 200 and string.find(body, '"type":"error"', 1, true) then
      inband_errors = inband_errors + 1
   end
end

function done(summary, latency, requests)
   local errs = 0
   for _, t in ipairs(threads) do errs = errs + (t:get("inband_errors") or 0) end
   local first = threads[1]
   local OP, T, DIST = first:get("OP"), first:get("T"), first:get("DIST")
   local non2xx = summary.errors.status
   io.write(string.format(
      'RESULT_JSON {"op":"%s","tenants":%d,"dist":"%s","requests":%d,"rps":%.1f,' ..
      '"p50_ms":%.3f,"p99_ms":%.3f,"non2xx":%d,"socket_errors":%d,"inband_errors":%d}\n',
      OP, T, DIST, summary.requests, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, non2xx,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      errs))
end

-- tenantd benchmark load: POST a ~300-byte JSON webhook to a path built from a template, with
-- the tenant drawn from Zipf(s) over T tenants (index 0 = rank 1 = hottest) or uniformly.
--
--   wrk -t2 -c64 -d20s --latency -s ingest.lua URL -- T DIST S PATH PREFIX WIDTH
--     T       number of tenants (default 10000)
--     DIST    zipf | uniform (default zipf)
--     S       Zipf exponent (default 1.1)
--     PATH    path template, "{tenant}" is replaced (default /t/{tenant}/hooks/bench;
--             the baseline (bench/baseline) takes /t/{tenant}/webhook)
--     PREFIX  tenant name prefix (default tenant); WIDTH digits (default 5): tenant00042
-- Every argument can also come from the environment: T, DIST, ZIPF_S, PATH_TEMPLATE, PREFIX, WIDTH.
-- The names match `tenantd bench provision --prefix PREFIX --width WIDTH`.
-- Prints one "RESULT_JSON {...}" line when done.

local threads = {}
local nthreads = 0

function setup(thread)
   nthreads = nthreads + 1
   thread:set("tid", nthreads)
   table.insert(threads, thread)
end

local T, DIST, S, PATH, PREFIX, WIDTH
local head, tail, fmt
local cdf = {}
local pad = string.rep("x", 70)

local function arg_or_env(args, i, name, default)
   local v = args[i]
   if v == nil or v == "" then v = os.getenv(name) end
   if v == nil or v == "" then v = default end
   return v
end

function init(args)
   T = tonumber(arg_or_env(args, 1, "T", "10000"))
   DIST = arg_or_env(args, 2, "DIST", "zipf")
   S = tonumber(arg_or_env(args, 3, "ZIPF_S", "1.1"))
   PATH = arg_or_env(args, 4, "PATH_TEMPLATE", "/t/{tenant}/hooks/bench")
   PREFIX = arg_or_env(args, 5, "PREFIX", "tenant")
   WIDTH = tonumber(arg_or_env(args, 6, "WIDTH", "5"))
   if DIST ~= "zipf" and DIST ~= "uniform" then error("DIST must be zipf or uniform, got " .. DIST) end
   local at = string.find(PATH, "{tenant}", 1, true)
   if not at then error("path template has no {tenant}: " .. PATH) end
   head = string.sub(PATH, 1, at - 1)
   tail = string.sub(PATH, at + string.len("{tenant}"))
   fmt = PREFIX .. "%0" .. WIDTH .. "d"
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
   if DIST == "zipf" then
      local sum = 0
      for k = 1, T do sum = sum + k ^ (-S); cdf[k] = sum end
      for k = 1, T do cdf[k] = cdf[k] / sum end
      cdf[T] = 1.0
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

-- A tenant index in 0 .. T-1.
local function pick()
   if DIST == "uniform" then return math.random(T) - 1 end
   local u = math.random()
   local lo, hi = 1, T
   while lo < hi do                      -- first k with cdf[k] >= u
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then lo = mid + 1 else hi = mid end
   end
   return lo - 1
end

local seq = 0
function request()
   seq = seq + 1
   local tenant = string.format(fmt, pick())
   local body = string.format(
      '{"event":"order.created","id":"evt_%d_%010d","tenant":"%s","ts":%d,' ..
      '"data":{"order_id":%d,"amount_cents":%d,"currency":"EUR","customer":"cus_%08d",' ..
      '"items":[{"sku":"SKU-%05d","qty":%d}],"note":"%s"}}',
      tid or 0, seq, tenant, os.time(), math.random(1e9), math.random(100000), math.random(1e7),
      math.random(99999), math.random(9), pad)
   return wrk.format(nil, head .. tenant .. tail, nil, body)
end

function done(summary, latency, requests)
   local d = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      'RESULT_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
      '"lat_p50_ms":%.3f,"lat_p90_ms":%.3f,"lat_p99_ms":%.3f,"lat_p999_ms":%.3f,"lat_max_ms":%.3f,"lat_mean_ms":%.3f,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
      summary.requests, d, summary.requests / d,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency:percentile(99.9) / 1000, latency.max / 1000, latency.mean / 1000,
      e.connect, e.read, e.write, e.status, e.timeout))
end

#!/usr/bin/env bash
# Scale check: does a node with 1,000,000 tenant files behave like one with 1,000? For each
# size in SIZES: provision the files (time, bytes on disk), start tenantd (time to ready), then
# RSS and fds at idle, cold-open latency (SQL `SELECT 1` to tenants drawn uniformly, with an open
# cap of 64 so almost every request opens its tenant), RSS and fds once the idle TTL closed them
# again, and `GET /admin/tenants` paging (first PAGES pages of 1,000).
#
#   bench/scale.sh                       # SIZES="1000 1000000": ~32 GB of disk, ~15 min
#   SIZES="1000 20000" bench/scale.sh    # smaller
#
# Output: OUT/results.jsonl, OUT/<size>.load.json (the load generator's JSON), OUT/run.log.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench
TENANTD=${TENANTD:-$ROOT/target/release/tenantd}
SIZES=${SIZES:-"1000 1000000"}; DURATION=${DURATION:-20s}; CONNS=${CONNS:-16}; PAGES=${PAGES:-20}
PORT=${PORT:-3962}; SERVER_CPU=${SERVER_CPU:-0}; LOAD_CPU=${LOAD_CPU:-1}; WIDTH=7
DATA=${DATA:-/tmp/tenantd-scale}
OUT=${OUT:-$HERE/results/scale-$(date +%Y%m%d-%H%M%S)}
TOKEN=scale-admin-token
mkdir -p "$OUT"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/run.log"; }
kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1==m {print $2}'; }
[[ -x $TENANTD ]] || { echo "no tenantd binary at $TENANTD" >&2; exit 1; }
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null || true' EXIT
{ nproc; uname -r; date -u; df -h "$(dirname "$DATA")" | tail -1; } > "$OUT/machine.txt"

for n in $SIZES; do
  rm -rf "$DATA"; mkdir -p "$DATA"
  t0=$(date +%s.%N)
  "$TENANTD" bench provision --data "$DATA" --count "$n" --width "$WIDTH" > "$OUT/$n.provision.txt"
  sync
  provision_s=$(echo "$(date +%s.%N) - $t0" | bc)
  disk_bytes=$(du -sb "$DATA" | cut -f1); disk_used=$(du -s --block-size=1 "$DATA" | cut -f1)
  log "$n tenants: provisioned in ${provision_s}s, $disk_used bytes used on disk ($disk_bytes apparent)"
  t0=$(date +%s.%N)
  TENANTD_ADMIN_TOKEN=$TOKEN taskset -c "$SERVER_CPU" "$TENANTD" serve --listen "127.0.0.1:$PORT" --data "$DATA" \
    --max-open 64 --idle-ttl 2s > "$OUT/$n.server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 6000); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.05; done
  ready_s=$(echo "$(date +%s.%N) - $t0" | bc)
  sleep 2
  rss_idle=$(kb $pid VmRSS); fds_idle=$(fds $pid)
  taskset -c "$LOAD_CPU" "$TENANTD" bench load --url "http://127.0.0.1:$PORT" --workload sql-ping --token "$TOKEN" \
    --tenants "$n" --width "$WIDTH" --dist uniform --concurrency "$CONNS" --duration "$DURATION" --threads 1 \
    --pid "$pid" --json "$OUT/$n.load.json" > "$OUT/$n.load.txt"
  opens=$(metric tenantd_tenant_opens_total)
  for _ in $(seq 1 300); do [[ $(metric tenantd_open_tenants) == 0 ]] && break; sleep 0.1; done
  sleep 1
  rss_after=$(kb $pid VmRSS); fds_after=$(fds $pid); peak=$(kb $pid VmHWM)
  # Paging: the first PAGES pages of 1,000 tenants, each timed.
  cursor=; pages=()
  for _ in $(seq 1 "$PAGES"); do
    url="http://127.0.0.1:$PORT/admin/tenants?limit=1000${cursor:+&cursor=$cursor}"
    t=$(curl -s -o "$OUT/page.json" -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "$url")
    pages+=("$t")
    cursor=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("next_cursor") or "")' "$OUT/page.json")
    [[ -n $cursor ]] || break
  done
  rm -f "$OUT/page.json"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
  page_list=$(IFS=,; echo "${pages[*]}")
  line=$(python3 - "$OUT/$n.load.json" <<PY
import json, sys
r = json.load(open(sys.argv[1]))["result"]
pages = [float(x) for x in "$page_list".split(",") if x]
print(json.dumps({"tenants": $n, "provision_seconds": $provision_s, "disk_used_bytes": $disk_used,
  "disk_apparent_bytes": $disk_bytes, "ready_seconds": $ready_s, "rss_idle_kb": $rss_idle, "fds_idle": $fds_idle,
  "load_ok": r["ok"], "load_non_ok": r["requests"] - r["ok"], "opens": ${opens:-0},
  "cold_p50_us": r["latency"]["p50_us"], "cold_p99_us": r["latency"]["p99_us"], "ok_per_s": r["rps_ok"],
  "rss_peak_kb": $peak, "rss_after_idle_kb": $rss_after, "fds_after_idle": $fds_after,
  "page_seconds": pages, "page_first_s": pages[0] if pages else None,
  "page_median_s": sorted(pages)[len(pages)//2] if pages else None}))
PY
)
  echo "$line" >> "$OUT/results.jsonl"
  log "$line"
done
rm -rf "$DATA"
log "done: $OUT/results.jsonl"

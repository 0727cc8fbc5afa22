#!/usr/bin/env bash
# Continuous backup (docs/BACKUP.md) on one node with N tenants, ACTIVE_PCT % of them active,
# against a real S3 API (moto's server on 127.0.0.1), same data dir throughout:
#  provision  N tenant files (`tenantd bench provision`, as bench/scale.sh); the active ones
#             (tenant0000000 … , the first ACTIVE_PCT %) get bench/sql/0001_kv.sql over SQL
#             so `tenantd bench load`'s sql-write can update them.
#  idle off   RSS and fds of an idle server, backup off. From /proc/PID/status, /proc/PID/fd and
#             /metrics (process_resident_memory_bytes, process_open_fds).
#  load off   DURATION of `tenantd bench load --workload mixed:1:0:1` (webhooks and SQL
#             writes, uniform over the active tenants, CONNS connections) on the data dir as
#             provisioned: throughput, latency, RSS and fds every second (peak, mean), VmHWM,
#             CPU, the pool's opens/evictions/tidies.
#  first round  the server started with backup on against the empty bucket: time from start
#             until tenantd_backup_rounds_total >= 1 and tenantd_backup_pending_tenants == 0,
#             uploads, bytes before/after compression, the S3 server's PUT rate; then idle
#             through IDLE_ROUNDS rounds (same process) and idle RSS/fds; then restarted with
#             backup on (no tenant changed since its upload): its start round and idle RSS/fds.
#  load on    the same load with backup on (after the start round): the same numbers, and RPO
#             probes (PROBE_WEBHOOK_RATE webhooks/s and PROBE_SQL_RATE SQL
#             writes/s to random active tenants, every ack timed; the bucket's log listed every
#             200 ms and each new chunk decoded to find the probes' delivery ids), bytes
#             uploaded vs bytes written, per hour.
#  restore    `tenantd restore tenant0000000 --to DIR`, then `tenantd restore --all` into a
#             fresh data dir (bounded by RESTORE_TIMEOUT), timed, tenants counted.
#
#   nice bench/backup.sh                                   # N=100000, 1 %, 180 s loads: ~55 min
#   N=2000 DURATION=30s BACKUP_INTERVAL=10s nice bench/backup.sh   # smoke, ~5 min
# env: TENANTD (default target/release/tenantd; copied into WORK first, so a rebuild during the
#      run does not change it), N=100000, ACTIVE_PCT=1, DURATION=180s (each load phase; with
#      the default intervals it must cover several rounds), BACKUP_INTERVAL=60s,
#      BACKUP_LOG_INTERVAL=10s, IDLE_ROUNDS=3, CONNS=16, PROBE_WEBHOOK_RATE=10,
#      PROBE_SQL_RATE=5, FIRST_ROUND_TIMEOUT=2400 (s), RESTORE_TIMEOUT=1800 (s),
#      S3_STOCK=0 (1: moto's own O(keys) listing instead of the indexed one, see
#      bench/lib/backup_bench.py), WORK=/tmp/tenantd-backup-bench (data dirs, ~35 KB per
#      tenant, twice), OUT (default bench/results/backup-<UTC timestamp>), KEEP=1 keeps WORK.
# Everything listens on 127.0.0.1 only; the load generators run under nice -n 10. The S3
# server's journal (every object stored, with the time) is OUT/s3-journal.txt.
# Output: OUT/machine.txt, OUT/results.jsonl (one line per phase), OUT/summary.md (tables and
# method), OUT/run.log, OUT/samples-*.jsonl (1 s samples), OUT/load-*.json (the load
# generator's report), OUT/rpo/ (probes.jsonl, chunks.jsonl), OUT/*.server.log; raw files over
# 1 MB are gzipped at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TENANTD=${TENANTD:-$ROOT/target/release/tenantd}
N=${N:-100000}; ACTIVE_PCT=${ACTIVE_PCT:-1}; DURATION=${DURATION:-180s}
BACKUP_INTERVAL=${BACKUP_INTERVAL:-60s}; BACKUP_LOG_INTERVAL=${BACKUP_LOG_INTERVAL:-10s}
IDLE_ROUNDS=${IDLE_ROUNDS:-3}; CONNS=${CONNS:-16}
PROBE_WEBHOOK_RATE=${PROBE_WEBHOOK_RATE:-10}; PROBE_SQL_RATE=${PROBE_SQL_RATE:-5}
FIRST_ROUND_TIMEOUT=${FIRST_ROUND_TIMEOUT:-2400}; RESTORE_TIMEOUT=${RESTORE_TIMEOUT:-1800}
S3_STOCK=${S3_STOCK:-0}
WORK=${WORK:-/tmp/tenantd-backup-bench}
OUT=${OUT:-$ROOT/bench/results/backup-$(date -u +%Y%m%d-%H%M%S)}
WIDTH=7; PREFIX=tenant; BUCKET=tenantd-bench; KEYPFX=node1
TOKEN=bench-admin-token-0123456789
PY=(python3 "$ROOT/bench/lib/backup_bench.py")
[[ -x $TENANTD ]] || { echo "no $TENANTD: cargo build --release" >&2; exit 1; }
python3 -c 'import moto.server' 2>/dev/null || { echo "moto missing: pip install 'moto[server]==5.2.1'" >&2; exit 1; }
command -v zstd >/dev/null || python3 -c 'import zstandard' 2>/dev/null || { echo "need zstd (or python zstandard)" >&2; exit 1; }

secs() { python3 -c 'import re,sys; m=re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", sys.argv[1]); v=float(m[1]); print(int(v*{"ms":0.001,"s":1,"m":60,"h":3600,None:1}[m[2]]))' "$1"; }
D_S=$(secs "$DURATION"); INT_S=$(secs "$BACKUP_INTERVAL"); LOG_S=$(secs "$BACKUP_LOG_INTERVAL")
ACTIVE=$(( N * ACTIVE_PCT / 100 )); (( ACTIVE >= 1 )) || ACTIVE=1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); S3PORT=$(free_port)
URL=http://127.0.0.1:$PORT; S3=http://127.0.0.1:$S3PORT
DATA=$WORK/data; JOURNAL=$OUT/s3-journal.txt
mkdir -p "$OUT/rpo"
: >"$OUT/results.jsonl"; : >"$OUT/run.log"
log() { echo "== $(date -u +%T) $*" | tee -a "$OUT/run.log" >&2; }
lavg() { echo "\"$(cut -d' ' -f1-3 /proc/loadavg)\""; }
now() { date +%s.%N; }
sub() { python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 3))" "$1" "$2"; }
res() { echo "$1" >>"$OUT/results.jsonl"; log "  $1"; }
# merge JSON objects given as arguments, later keys win, plus key=value pairs (JSON values)
merge() { python3 - "$@" <<'EOF'
import json, sys
out = {}
for a in sys.argv[1:]:
    if a.startswith("{"):
        out.update(json.loads(a))
    else:
        k, v = a.split("=", 1)
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
print(json.dumps(out, sort_keys=True))
EOF
}
jget() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); [v := v[k] for k in sys.argv[2:]]; print(v)' "$@"; }

# The processes this script started (name -> pid); stopped by pid.
declare -A PID=()
stop() { local p=${PID[$1]:-}; if [[ -n $p ]]; then kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi; unset "PID[$1]"; }
stop_all() { for k in "${!PID[@]}"; do stop "$k"; done; }
trap 'stop_all; [[ -n ${KEEP:-} ]] || rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# the commit the binary's tree is at (the repository holding TENANTD, e.g. this one's target/)
BIN_COMMIT=$(git -C "$(dirname "$TENANTD")" rev-parse --short HEAD 2>/dev/null || echo unknown)
rm -rf "$WORK"; mkdir -p "$WORK"
cp "$TENANTD" "$WORK/tenantd"; BIN=$WORK/tenantd
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit of $ROOT: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo ' (dirty)')"
  echo "tenantd: $TENANTD (sha256 $(sha256sum "$BIN" | cut -c1-16)…, built $(stat -c %y "$TENANTD"); its repository's HEAD now: $BIN_COMMIT)"
  echo "kernel: $(uname -r)"; echo "cpus: $(nproc) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "python: $(python3 --version 2>&1), moto $(python3 -c 'import moto; print(moto.__version__)')"
  echo "disk of WORK: $(df -h "$(dirname "$WORK")" | tail -1)"
  echo "fsync of WORK's disk (4 KiB pwrite + fsync, 200x): $(mkdir -p "$WORK" && python3 "$ROOT/bench/lib/probe_fsync.py" "$WORK")"
  echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "N=$N active=$ACTIVE ($ACTIVE_PCT %) duration=$DURATION backup_interval=$BACKUP_INTERVAL backup_log_interval=$BACKUP_LOG_INTERVAL idle_rounds=$IDLE_ROUNDS conns=$CONNS probes=$PROBE_WEBHOOK_RATE webhooks/s + $PROBE_SQL_RATE sql/s s3_stock=$S3_STOCK"
} >"$OUT/machine.txt"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
export TENANTD_BACKUP_BUCKET=$BUCKET TENANTD_BACKUP_PREFIX=$KEYPFX TENANTD_BACKUP_ENDPOINT=$S3
BACKUP_FLAGS=(--backup-bucket "$BUCKET" --backup-prefix "$KEYPFX" --backup-endpoint "$S3"
  --backup-interval "$BACKUP_INTERVAL" --backup-log-interval "$BACKUP_LOG_INTERVAL")

start_s3() {
  local stock=(); [[ $S3_STOCK == 1 ]] && stock=(--stock)
  "${PY[@]}" s3 "$S3PORT" "$JOURNAL" "${stock[@]}" >>"$WORK/s3.log" 2>&1 &
  PID[s3]=$!
  for _ in $(seq 300); do curl -s -o /dev/null "$S3/" && return; sleep 0.1; done
  echo "the S3 server did not come up: $WORK/s3.log" >&2; exit 1
}
# start_server NAME on|off: the server on DATA (TENANTD_BACKUP_* stay unset for the server:
# backup is on only with the flags)
start_server() {
  local flags=(); [[ $2 == on ]] && flags=("${BACKUP_FLAGS[@]}")
  env -u TENANTD_BACKUP_BUCKET -u TENANTD_BACKUP_PREFIX -u TENANTD_BACKUP_ENDPOINT \
    TENANTD_ADMIN_TOKEN=$TOKEN TENANTD_LOG=info "$BIN" serve --listen "127.0.0.1:$PORT" --data "$DATA" \
    "${flags[@]}" >>"$OUT/$1.server.log" 2>&1 &
  PID[server]=$!
  for _ in $(seq 1200); do curl -sf -o /dev/null "$URL/healthz" && return; sleep 0.1; done
  echo "tenantd did not come up: $OUT/$1.server.log" >&2; exit 1
}
s3_cpu() { python3 -c 'import os,sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK"))' "${PID[s3]}"; }
s3_rss() { awk '$1=="VmRSS:" {print $2}' "/proc/${PID[s3]}/status"; }
wait_backup() { "${PY[@]}" wait "$URL" "$@" || true; }
metric() { "${PY[@]}" metrics "$URL" | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"; }
du_b() { du -sb "$1" | cut -f1; }

log "tenantd backup bench -> ${OUT#"$ROOT"/} (N=$N, $ACTIVE active, load $DURATION, interval $BACKUP_INTERVAL / log $BACKUP_LOG_INTERVAL)"
res "$(merge phase=config phases='"idle off; load off; backup on against the empty bucket (first round), its idle rounds and idle samples; restarted with backup on, idle samples; load on; restores"' tenants="$N" active="$ACTIVE" active_pct="$ACTIVE_PCT" duration="\"$DURATION\"" \
  backup_interval="\"$BACKUP_INTERVAL\"" backup_log_interval="\"$BACKUP_LOG_INTERVAL\"" idle_rounds="$IDLE_ROUNDS" \
  conns="$CONNS" probe_webhook_rate="$PROBE_WEBHOOK_RATE" probe_sql_rate="$PROBE_SQL_RATE" s3_stock="$S3_STOCK" \
  moto="\"$(python3 -c 'import moto; print(moto.__version__)')\"" tenantd_commit="\"$BIN_COMMIT\"")"

start_s3
"${PY[@]}" bucket "$S3" "$BUCKET" >>"$OUT/run.log"

run_load() {  # NAME: closed-loop mixed load on the running server (its CPU: OUT/load-NAME.time)
  nice -n 10 /usr/bin/time -f '%U %S' -o "$OUT/load-$1.time" "$BIN" bench load --url "$URL" --workload mixed:1:0:1 --tenants "$ACTIVE" --width "$WIDTH" \
    --dist uniform --concurrency "$CONNS" --duration "$DURATION" --threads 1 --token "$TOKEN" \
    --pid "${PID[server]}" --json "$OUT/load-$1.json" >"$OUT/load-$1.txt" 2>&1
}
load_json() {  # NAME: the report's numbers we keep
  python3 - "$OUT/load-$1.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["result"]
ops = {k: {"count": v["count"], "p50_ms": v["p50_us"] / 1000, "p99_ms": v["p99_us"] / 1000}
       for k, v in (r.get("latency_by_op") or {}).items()}
u, s_ = open(sys.argv[1][:-5] + ".time").read().split()[-2:]
print(json.dumps({"loadgen_cpu_s": round(float(u) + float(s_), 2), "requests": r["requests"], "ok": r["ok"], "statuses": r["statuses"], "errors": r["errors"],
                  "sql_errors": r["sql_errors"], "non_2xx": r["non_2xx"], "elapsed_s": r["elapsed_s"],
                  "rps_ok": r["rps_ok"], "ops": ops,
                  "p50_ms": r["latency"]["p50_us"] / 1000, "p99_ms": r["latency"]["p99_us"] / 1000}))
EOF
}

# bytes of the active tenants' .db files (checkpointed once the server stopped cleanly)
active_db_bytes() { python3 - "$DATA/tenants" "$PREFIX" "$WIDTH" "$ACTIVE" <<'EOF'
import os, sys
root, prefix, width, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
want = {f"{prefix}{i:0{width}d}.db" for i in range(n)}
print(sum(os.stat(os.path.join(d, f)).st_size for d, _, fs in os.walk(root) for f in fs if f in want))
EOF
}
# tenant files with a -wal beside them (left by a fast close at the open cap: tidied later)
wal_left() { find "$DATA/tenants" -name '*.db-wal' | wc -l; }
# the last "backup round" report in a server log, as JSON
round_report() { python3 - "$1" <<'EOF'
import json, re, sys
r = {}
for line in open(sys.argv[1]):
    m = re.search(r"backup round report=RoundReport \{ (.*?) \}", line)
    if m:
        r = {k: int(v) for k, v in re.findall(r"(\w+): (\d+)", m[1])}
print(json.dumps(r))
EOF
}
churn() {  # M0 M1: what the pool did between two /metrics snapshots
  python3 - "$1" "$2" <<'EOF'
import json, sys
m0, m1 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({k.replace("tenantd_", ""): m1.get(k, 0) - m0.get(k, 0) for k in
                  ("tenantd_tenant_opens_total", "tenantd_evictions_total", "tenantd_idle_closes_total",
                   "tenantd_tidies_total", "tenantd_checkpoints_total")}))
EOF
}

# ---- provision ----
log "provision $N tenants"
t0=$(now)
"$BIN" bench provision --data "$DATA" --count "$N" --width "$WIDTH" >"$OUT/provision.txt"
sync
prov_s=$(sub "$(now)" "$t0")
start_server setup off
kv=$("${PY[@]}" setup-kv "$URL" "$TOKEN" "$PREFIX" "$WIDTH" "$ACTIVE" "$ROOT/bench/sql/0001_kv.sql")
stop server
res "$(merge "$kv" phase=provision seconds="$prov_s" data_bytes="$(du_b "$DATA")" kv_tenants="$ACTIVE")"

# ---- idle, backup off ----
log "idle, backup off"
start_server idle-off off
sleep 5
res "$(merge "$("${PY[@]}" idle "${PID[server]}" "$URL")" phase=idle backup=off)"
stop server

# ---- load, backup off (the data dir as provisioned: no backup has touched it) ----
log "load, backup off ($DURATION)"
wl=$(wal_left)
start_server load-off off
"${PY[@]}" sample "${PID[server]}" "$URL" "$OUT/samples-load-off.jsonl" &
PID[sampler]=$!
sleep 2
m0=$("${PY[@]}" metrics "$URL")
t0=$(now); run_load off; t1=$(now)
m1=$("${PY[@]}" metrics "$URL")
hwm=$(awk '$1=="VmHWM:" {print $2}' "/proc/${PID[server]}/status")
stop sampler
res "$(merge "$(load_json off)" phase=load backup=off loadavg="$(lavg)" hwm_kb="$hwm" wal_left_at_start="$wl" pool="$(churn "$m0" "$m1")" \
  series="$("${PY[@]}" series "$OUT/samples-load-off.jsonl" --from "$t0" --to "$t1")")"
stop server


# ---- first round, then idle rounds (backup on) ----
log "backup on against the empty bucket: the first round of $N tenants"
data_bytes=$(du_b "$DATA"); c0=$(s3_cpu)
t0=$(now)
start_server first-round on
"${PY[@]}" sample "${PID[server]}" "$URL" "$OUT/samples-first-round.jsonl" --also "${PID[s3]}" &
PID[sampler]=$!
fr=$(wait_backup --rounds 1 --pending-zero --timeout "$FIRST_ROUND_TIMEOUT")
t1=$(now)
j=$("${PY[@]}" journal "$JOURNAL" "$KEYPFX" --from "$t0" --to "$t1")
res "$(merge "$fr" phase=first_round backup=on loadavg="$(lavg)" data_bytes="$data_bytes" journal="$j" s3_rss_kb="$(s3_rss)" \
  report="$(round_report "$OUT/first-round.server.log")" \
  s3_cpu_s="$(sub "$(s3_cpu)" "$c0")" \
  peak="$("${PY[@]}" series "$OUT/samples-first-round.jsonl" --from "$t0" --to "$t1")")"
rounds=$(jget "$fr" tenantd_backup_rounds_total); up0=$(metric tenantd_backup_uploads_total)
log "idle through $IDLE_ROUNDS more rounds"
w=$(wait_backup --rounds "$(( ${rounds%.*} + IDLE_ROUNDS ))" --timeout "$(( (IDLE_ROUNDS + 1) * INT_S + 120 ))")
idle=$("${PY[@]}" idle "${PID[server]}" "$URL")
stop sampler
upi=$(( $(metric tenantd_backup_uploads_total | cut -d. -f1) - ${up0%.*} ))
stop server
res "$(merge "$idle" phase=idle backup=on-after-first-round rounds_waited="$IDLE_ROUNDS" wal_left_after_stop="$(wal_left)" \
  uploads_in_idle_rounds="$upi" wait="$w")"

log "idle, backup on, restarted (no tenant changed since its upload)"
wl=$(wal_left)
t0=$(now)
start_server idle-on on
w=$(wait_backup --rounds 1 --pending-zero --timeout 900)
ready_s=$(sub "$(now)" "$t0")
sleep 5
res "$(merge "$("${PY[@]}" idle "${PID[server]}" "$URL")" phase=idle backup=on-restarted wal_left_at_start="$wl" \
  start_to_first_round_done_s="$ready_s" first_round_uploads="$(jget "$w" tenantd_backup_uploads_total)" \
  report="$(round_report "$OUT/idle-on.server.log")")"
stop server

# ---- load, backup on ----
log "load, backup on ($DURATION), with RPO probes"
du0=$(active_db_bytes); wl=$(wal_left)
start_server load-on on
w=$(wait_backup --rounds 1 --pending-zero --timeout 900)
sr=$(round_report "$OUT/load-on.server.log")
log "  start round done: $sr"
"${PY[@]}" sample "${PID[server]}" "$URL" "$OUT/samples-load-on.jsonl" --also "${PID[s3]}" &
PID[sampler]=$!
sleep 2
m0=$("${PY[@]}" metrics "$URL")
t0=$(now)
nice -n 10 "${PY[@]}" probe "$URL" "$TOKEN" "$PREFIX" "$WIDTH" "$ACTIVE" "$OUT/rpo" --duration "$D_S" \
  --webhook-rate "$PROBE_WEBHOOK_RATE" --sql-rate "$PROBE_SQL_RATE" --s3 "$S3" --bucket "$BUCKET" \
  --key-prefix "$KEYPFX" --tail "$(( 3 * LOG_S + 30 ))" >"$OUT/rpo/probe.json" 2>"$OUT/rpo/probe.stderr" &
PID[probe]=$!
run_load on
t1=$(now)
m1=$("${PY[@]}" metrics "$URL")
hwm=$(awk '$1=="VmHWM:" {print $2}' "/proc/${PID[server]}/status")
rounds=$(jget "$m1" tenantd_backup_rounds_total)
log "  load done; waiting for two more rounds (every SQL probe's snapshot) and the probes' log tail"
w=$(wait_backup --rounds "$(( ${rounds%.*} + 2 ))" --pending-zero --timeout "$(( 3 * INT_S + 120 ))")
wait "${PID[probe]}" || log "  probe exited with $?"; unset 'PID[probe]'
stop sampler
res "$(merge "$(load_json on)" phase=load backup=on loadavg="$(lavg)" probe_cpu_s="$(jget "$(cat "$OUT/rpo/probe.json")" cpu_s)" hwm_kb="$hwm" \
  wal_left_at_start="$wl" start_round="$sr" pool="$(churn "$m0" "$m1")" \
  series="$("${PY[@]}" series "$OUT/samples-load-on.jsonl" --from "$t0" --to "$t1")" wait_after="$w")"
stop server
du1=$(active_db_bytes)
probe=$(cat "$OUT/rpo/probe.json")
j=$("${PY[@]}" journal "$JOURNAL" "$KEYPFX" --from "$t0" --to "$t1")
res "$(python3 - "$m0" "$m1" "$j" "$probe" "$OUT/load-on.json" "$t0" "$t1" "$du0" "$du1" <<'EOF'
import json, sys
m0, m1, j, probe = (json.loads(a) for a in sys.argv[1:5])
r = json.load(open(sys.argv[5])); r = r.get("result", r)
t0, t1, du0, du1 = (float(a) for a in sys.argv[6:10])
d = lambda k: m1.get(k, 0) - m0.get(k, 0)
sql_ok = (r.get("latency_by_op", {}).get("sql-write", {}).get("count", 0)) + probe.get("sql_ok", 0)
print(json.dumps({"phase": "bytes", "backup": "on", "seconds": round(t1 - t0, 1),
    "uploaded_snapshot_bytes": d("tenantd_backup_uploaded_bytes_total"),
    "snapshot_raw_bytes": d("tenantd_backup_snapshot_bytes_total"),
    "uploads": d("tenantd_backup_uploads_total"), "rounds": d("tenantd_backup_rounds_total"),
    "log_chunks": j["log_chunk_puts"], "uploaded_log_bytes": j["log_chunk_bytes"],
    "uploaded_total_bytes": d("tenantd_backup_uploaded_bytes_total") + j["log_chunk_bytes"],
    "payload_bytes": probe["body_bytes"] + 100 * sql_ok, "webhook_body_bytes": probe["body_bytes"],
    "sql_writes_ok": sql_ok, "log_frame_bytes": probe["frame_bytes"], "log_records": probe["records"],
    "data_dir_growth_bytes": du1 - du0, "growth_method": "active_db", "failures": d("tenantd_backup_failures_total"),
    "log_failures": d("tenantd_backup_log_failures_total")}, sort_keys=True))
EOF
)"
res "$(merge "$("${PY[@]}" rpo "$OUT/rpo" "$JOURNAL" "$KEYPFX")" phase=rpo backup=on probe="$probe")"

# ---- restore ----
log "restore one tenant"
t0=$(now)
set +e; "$BIN" restore "${PREFIX}$(printf "%0${WIDTH}d" 0)" --to "$WORK/restore-one" >"$OUT/restore-one.txt" 2>&1; rc=$?; set -e
t1=$(now)
f=$WORK/restore-one/${PREFIX}$(printf "%0${WIDTH}d" 0).db
# what the restored copy holds vs the live file (the server is stopped: every write is in it)
q='SELECT (SELECT count(*) FROM _tenantd_events) || " " || (SELECT coalesce(sum(n), 0) FROM kv)'
read -r ev kvn < <(sqlite3 "$f" "$q" 2>/dev/null || echo "null null")
read -r lev lkvn < <(sqlite3 "file:$(find "$DATA/tenants" -name "$(basename "$f")")?mode=ro" "$q" 2>/dev/null || echo "null null")
res "$(merge phase=restore_one backup=on tenant="\"${PREFIX}$(printf "%0${WIDTH}d" 0)\"" seconds="$(sub "$t1" "$t0")" \
  exit="$rc" bytes="$(stat -c %s "$f" 2>/dev/null || echo null)" events="$ev" kv_writes="$kvn" live_events="$lev" live_kv_writes="$lkvn")"

log "restore --all into a fresh data dir (at most $RESTORE_TIMEOUT s)"
c0=$(s3_cpu); t0=$(now)
set +e
timeout "$RESTORE_TIMEOUT" /usr/bin/time -f '%e s, %U user, %S sys, max RSS %M KB' -o "$OUT/restore-all.time" \
  "$BIN" restore --all --data "$WORK/restored" >"$OUT/restore-all.txt" 2>"$OUT/restore-all.stderr"; rc=$?
set -e
t1=$(now)
restored=$(grep -c ': restored the snapshot' "$OUT/restore-all.txt" || true)
skipped=$(grep -c ': skipped\|already in place' "$OUT/restore-all.txt" || true)
failed=$(grep -c ': FAILED' "$OUT/restore-all.txt" || true)
files=$(find "$WORK/restored" -name '*.db' -path '*/tenants/*' 2>/dev/null | wc -l)
secs_all=$(sub "$t1" "$t0")
res "$(merge phase=restore_all backup=on seconds="$secs_all" exit="$rc" timed_out="$([[ $rc == 124 ]] && echo true || echo false)" \
  restored="$restored" skipped="$skipped" failed="$failed" files="$files" bucket_tenants="$N" \
  per_s="$(python3 -c "print(round($restored / $secs_all, 1))")" s3_cpu_s="$(sub "$(s3_cpu)" "$c0")" \
  time="\"$(cat "$OUT/restore-all.time" 2>/dev/null | tail -1)\"")"

stop s3
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
"${PY[@]}" summary "$OUT/results.jsonl" >"$OUT/summary.md"
# raw files over 1 MB (the journal and restore --all's output at 100k tenants) are kept gzipped
for f in "$OUT"/*.txt "$OUT"/*.jsonl "$OUT"/rpo/*.jsonl; do
  [[ $f == */results.jsonl ]] || [[ $(stat -c %s "$f") -lt 1000000 ]] || gzip -9 "$f"
done
cat "$OUT/summary.md"
log "done: ${OUT#"$ROOT"/}"

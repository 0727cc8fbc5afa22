#!/usr/bin/env bash
# tenantd vs the seed design (bench/baseline): webhook ingest under wrk, side by side, in one run on one machine.
#
#   sudo bench/run.sh                         # the full matrix (~15-20 min), results committed
#   DURATION=3s ZIPF_T=200 UNIFORM_T=2000 RSS_TENANTS=2000 IDLE_S=3 IDLE_TTL=1s bench/run.sh   # smoke
#
# For each storage (real disk under /tmp; a tmpfs this script mounts and unmounts), workload
# (Zipf s over ZIPF_T tenants; uniform over UNIFORM_T tenants), rep and server (Bun seed,
# tenantd fsync, tenantd crash; servers interleaved), it provisions the same tenant set with
# `tenantd bench provision` into a fresh data dir, starts the server pinned to SERVER_CPU, runs
# wrk pinned to WRK_CPU, records req/s, latency, RSS (1 s after start, peak, after load, after
# IDLE_S of idle), fds, server CPU, and afterwards counts the stored rows: each delivery has a
# unique body, so each 2xx must have stored a row. A run with no 2xx, or with fewer rows than
# 2xx responses, is recorded (rows_check NONE or LOST) and then refused: the script exits 1
# naming the run, before measuring anything else. Then it measures tenantd's RSS at start with RSS_TENANTS idle tenant
# files on disk vs none. Raw outputs go to OUT (default bench/results/<timestamp>/).
#
# Needs: root (tmpfs mount), wrk, curl, python3, taskset; the tenantd release binary
# (TENANTD, default target-bench/release/tenantd); npm (bench/lib/baseline.sh installs Bun for
# the baseline server, bench/baseline/server.ts, on first use).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench

TENANTD=${TENANTD:-$ROOT/target-bench/release/tenantd}
source "$ROOT/bench/lib/baseline.sh"
SERVERS=${SERVERS:-"bun tenantd-fsync tenantd-crash"}
STORAGES=${STORAGES:-"disk tmpfs"}
ZIPF_T=${ZIPF_T:-10000}; UNIFORM_T=${UNIFORM_T:-100000}; ZIPF_S=${ZIPF_S:-1.1}
WORKLOADS=${WORKLOADS:-"zipf:$ZIPF_T uniform:$UNIFORM_T"}
REPS=${REPS:-1}
DURATION=${DURATION:-20s}; CONNS=${CONNS:-64}; THREADS=${THREADS:-2}; WRK_TIMEOUT=${WRK_TIMEOUT:-2s}
IDLE_TTL=${IDLE_TTL:-10s}; IDLE_S=${IDLE_S:-12}
PORT=${PORT:-3950}; SERVER_CPU=${SERVER_CPU:-0}; WRK_CPU=${WRK_CPU:-1}
DISK_ROOT=${DISK_ROOT:-/tmp/tenantd-bench-disk}
TMPFS_ROOT=${TMPFS_ROOT:-/tmp/tenantd-bench-tmpfs}; TMPFS_SIZE=${TMPFS_SIZE:-8g}
RSS_TENANTS=${RSS_TENANTS:-100000}; RSS_REPS=${RSS_REPS:-3}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
TOKEN=bench-admin-token

mkdir -p "$OUT" "$DISK_ROOT"
RESULTS=$OUT/results.jsonl
HZ=$(getconf CLK_TCK)
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/run.log"; }
kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_s() { awk -v hz="$HZ" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
sys_s() { awk -v hz="$HZ" '{printf "%.2f", $15/hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
busy_s() { awk -v hz="$HZ" '/^cpu / {printf "%.2f", ($2+$3+$4+$7+$8+$9)/hz}' /proc/stat; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/'; }
storage_root() { [[ $1 == tmpfs ]] && echo "$TMPFS_ROOT" || echo "$DISK_ROOT"; }

for tool in wrk curl python3 taskset; do command -v $tool >/dev/null || { echo "missing $tool" >&2; exit 1; }; done
[[ -x $TENANTD ]] || { echo "no tenantd binary at $TENANTD (build: CARGO_TARGET_DIR=target-bench cargo build --release -p tenantd)" >&2; exit 1; }
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then echo "port $PORT already in use" >&2; exit 1; fi

MOUNTED=0
cleanup() {
  [[ -n ${SRV_PID:-} ]] && kill "$SRV_PID" 2>/dev/null || true
  if [[ $MOUNTED == 1 ]]; then umount "$TMPFS_ROOT" && rmdir "$TMPFS_ROOT" || true; fi
}
trap cleanup EXIT
if [[ " $STORAGES " == *" tmpfs "* ]]; then
  mkdir -p "$TMPFS_ROOT"
  mountpoint -q "$TMPFS_ROOT" && { echo "$TMPFS_ROOT is already a mount point" >&2; exit 1; }
  mount -t tmpfs -o size="$TMPFS_SIZE" tmpfs "$TMPFS_ROOT"; MOUNTED=1
fi

# ---- wait for a quiet machine (others compile here): 1-min load average below WAIT_LOAD ----
WAIT_LOAD=${WAIT_LOAD:-0.7}; WAIT_MAX_S=${WAIT_MAX_S:-900}
waited=0
while awk -v l="$WAIT_LOAD" '{exit !($1 >= l)}' /proc/loadavg && [[ $waited -lt $WAIT_MAX_S ]]; do
  [[ $((waited % 60)) == 0 ]] && echo "waiting for load < $WAIT_LOAD: $(loadavg) ($(top -bn1 | sed -n 8,10p | awk '{print $NF "@" $9 "%"}' | tr '\n' ' '))"
  sleep 15; waited=$((waited + 15))
done
echo "waited ${waited} s for a quiet machine; loadavg now $(loadavg)" >"$OUT/quiet_wait.txt"
cat "$OUT/quiet_wait.txt"

# ---- machine description ----
{
  echo "date: $(date -Is)"
  echo "loadavg (1/5/15 min): $(loadavg)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "mem: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "disk ($DISK_ROOT): $(findmnt -no SOURCE,FSTYPE,OPTIONS --target "$DISK_ROOT")"
  echo "block device: $(lsblk -dno NAME,SIZE,ROTA,MODEL "$(findmnt -no SOURCE --target "$DISK_ROOT")" 2>/dev/null | tr -s ' ')"
  echo "fsync probe (200 x 4 KiB pwrite+fsync on disk): $(python3 "$HERE/lib/probe_fsync.py" "$DISK_ROOT")"
  [[ $MOUNTED == 1 ]] && echo "tmpfs: $(findmnt -no SOURCE,FSTYPE,OPTIONS "$TMPFS_ROOT")"
  echo "tenantd: $TENANTD (commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- crates || echo ', uncommitted changes in crates/'))"
  echo "tenantd binary built: $(date -Is -r "$TENANTD")"
  [[ -x $BUN ]] && echo "bun: $($BUN --version) ($BUN_SERVER)"
  echo "node: $(node --version 2>/dev/null || echo none)"
  echo "wrk: $(wrk --version 2>&1 | head -1)"
  echo "knobs: SERVERS='$SERVERS' STORAGES='$STORAGES' WORKLOADS='$WORKLOADS' REPS=$REPS DURATION=$DURATION CONNS=$CONNS THREADS=$THREADS WRK_TIMEOUT=$WRK_TIMEOUT ZIPF_S=$ZIPF_S IDLE_TTL=$IDLE_TTL IDLE_S=$IDLE_S RSS_TENANTS=$RSS_TENANTS SERVER_CPU=$SERVER_CPU WRK_CPU=$WRK_CPU"
  echo "--- top -bn1 (head) ---"
  top -bn1 | head -15
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt" | head -20

# ---- one server ----
# start_server NAME DATA LOGFILE: sets SRV_PID; returns when the server answers HTTP.
start_server() {
  local name=$1 data=$2 logf=$3 ready
  case $name in
    bun) DATA_DIR=$data PORT=$PORT taskset -c "$SERVER_CPU" "$BUN" "$BUN_SERVER" >"$logf" 2>&1 &
         ready=/t/readycheck/events ;;
    tenantd-fsync|tenantd-crash)
         TENANTD_ADMIN_TOKEN=$TOKEN taskset -c "$SERVER_CPU" "$TENANTD" serve --listen "127.0.0.1:$PORT" \
           --data "$data" --durability "${name#tenantd-}" --idle-ttl "$IDLE_TTL" >"$logf" 2>&1 &
         ready=/healthz ;;
    *) echo "unknown server $name" >&2; exit 1 ;;
  esac
  SRV_PID=$!
  local code=000
  for _ in $(seq 1 1200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT$ready" || true)
    [[ $code != 000 ]] && break; sleep 0.1
  done
  [[ $code != 000 ]] || { echo "$name did not start; see $logf" >&2; exit 1; }
}

stop_server() {
  kill -TERM "$SRV_PID" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SRV_PID" 2>/dev/null || true
  wait "$SRV_PID" 2>/dev/null || true
  SRV_PID=
}

# Deleting 100k files on this ext4 (mounted with online discard) takes minutes and keeps the
# disk busy: on disk, data dirs are moved aside and deleted after the last measurement.
TRASH=$DISK_ROOT/.trash
discard_dir() {
  if [[ $1 == "$DISK_ROOT"/* ]]; then mkdir -p "$TRASH"; mv "$1" "$TRASH/$(basename "$1").$RANDOM"; else rm -rf "$1"; fi
}

layout_of() { [[ $1 == tenantd-* ]] && echo tenantd || echo flat; }
path_of() { [[ $1 == tenantd-* ]] && echo "/t/{tenant}/hooks/bench" || echo "/t/{tenant}/webhook"; }
table_of() { [[ $1 == tenantd-* ]] && echo _tenantd_events || echo events; }

metrics() {  # tenantd only: the gauges and counters, without histogram buckets
  [[ $1 == tenantd-* ]] || return 0
  curl -s "http://127.0.0.1:$PORT/metrics" | grep -v '_bucket{' || true
}
gauge() { awk -v m="$1" '$1==m {print $2}' "$2" 2>/dev/null | head -1; }

run_one() {
  local storage=$1 dist=$2 T=$3 rep=$4 srv=$5
  local run="$storage-$dist$T-$srv-rep$rep" rd="$OUT/$storage-$dist$T-$srv-rep$rep"
  local root; root=$(storage_root "$storage")
  local data="$root/$run"
  mkdir -p "$rd"; rm -rf "$data"
  local fsync_json='{}'
  [[ $storage == disk ]] && fsync_json=$(python3 "$HERE/lib/probe_fsync.py" "$root")
  "$TENANTD" bench provision --data "$data" --count "$T" --layout "$(layout_of "$srv")" >"$rd/provision.txt"
  local t_sync0; t_sync0=$(date +%s.%N); sync; local t_sync1; t_sync1=$(date +%s.%N)
  touch "$data/.provisioned"; sleep 1.1   # rows can only be in files modified after this mark

  start_server "$srv" "$data" "$rd/server.log"
  sleep 1
  local rss_start hwm_start fds_start cpu0 sys0 busy0 load0
  rss_start=$(kb "$SRV_PID" VmRSS); hwm_start=$(kb "$SRV_PID" VmHWM); fds_start=$(fds "$SRV_PID")
  metrics "$srv" >"$rd/metrics_start.txt"
  ( while kill -0 "$SRV_PID" 2>/dev/null; do echo "$(date +%s.%N) $(kb "$SRV_PID" VmRSS) $(fds "$SRV_PID")"; sleep 0.5; done ) >"$rd/rss_kb_fds.txt" 2>/dev/null &
  local sampler=$!
  cpu0=$(cpu_s "$SRV_PID"); sys0=$(sys_s "$SRV_PID"); busy0=$(busy_s); load0=$(loadavg)
  local t0; t0=$(date +%s.%N)
  local TIMEFORMAT='%3U %3S'
  { time taskset -c "$WRK_CPU" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout "$WRK_TIMEOUT" --latency \
      -s "$HERE/wrk/ingest.lua" "http://127.0.0.1:$PORT" -- "$T" "$dist" "$ZIPF_S" "$(path_of "$srv")" \
      >"$rd/wrk.txt" 2>&1 ; } 2>"$rd/wrk_cpu.txt"
  local t1; t1=$(date +%s.%N)
  local hwm rss_end fds_end threads cpu1 sys1 busy1
  busy1=$(busy_s); cpu1=$(cpu_s "$SRV_PID"); sys1=$(sys_s "$SRV_PID")
  hwm=$(kb "$SRV_PID" VmHWM); rss_end=$(kb "$SRV_PID" VmRSS); fds_end=$(fds "$SRV_PID"); threads=$(kb "$SRV_PID" Threads)
  metrics "$srv" >"$rd/metrics_end.txt"
  # tenantd acknowledges from its ingest log and applies later: how far behind the appliers
  # were when the load stopped, and how long until every acknowledged delivery was applied.
  local lag_end unapplied_end drain_s=null refused
  lag_end=$(gauge tenantd_ingest_apply_lag_seconds "$rd/metrics_end.txt")
  unapplied_end=$(gauge tenantd_ingest_unapplied_records "$rd/metrics_end.txt")
  refused=$(gauge tenantd_ingest_refused_total "$rd/metrics_end.txt")
  if [[ $srv == tenantd-* ]]; then
    local d0 left=1; d0=$(date +%s.%N)
    for _ in $(seq 1 1200); do
      left=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1=="tenantd_ingest_unapplied_records" {print $2}')
      [[ ${left:-1} == 0 ]] && break
      sleep 0.05
    done
    [[ ${left:-1} == 0 ]] && drain_s=$(echo "$(date +%s.%N) - $d0" | bc)
  fi
  sleep "$IDLE_S"
  local rss_idle fds_idle
  rss_idle=$(kb "$SRV_PID" VmRSS); fds_idle=$(fds "$SRV_PID")
  metrics "$srv" >"$rd/metrics_idle.txt"
  local open_end open_idle
  open_end=$(gauge tenantd_open_tenants "$rd/metrics_end.txt"); open_idle=$(gauge tenantd_open_tenants "$rd/metrics_idle.txt")
  local t_stop0; t_stop0=$(date +%s.%N)
  stop_server
  local t_stop1; t_stop1=$(date +%s.%N)
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  # server.log can be long (one line per error); keep its head and tail only
  if [[ $(stat -c %s "$rd/server.log") -gt 20000 ]]; then
    { head -c 8000 "$rd/server.log"; echo; echo "[... cut ...]"; tail -c 8000 "$rd/server.log"; } >"$rd/server.log.cut"
    mv "$rd/server.log.cut" "$rd/server.log"
  fi

  local wal_left shm_left rows counted files
  wal_left=$(find "$data" -name '*.db-wal' | wc -l); shm_left=$(find "$data" -name '*.db-shm' | wc -l)
  read -r rows counted files < <(python3 "$HERE/lib/count_rows.py" "$data" "$(table_of "$srv")" "$data/.provisioned")
  discard_dir "$data"

  local W non2xx wrk_user wrk_sys
  W=$(grep '^RESULT_JSON ' "$rd/wrk.txt" | sed 's/^RESULT_JSON //' || true)
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$rd/wrk.txt"); non2xx=${non2xx:-0}
  read -r wrk_user wrk_sys <"$rd/wrk_cpu.txt" || true
  local req; req=$(printf '%s' "$W" | python3 -c 'import json,sys; s=sys.stdin.read().strip(); print(json.loads(s).get("requests", 0) if s else 0)')
  local ok2xx=$((req - non2xx))
  local verdict=ok
  if [[ $ok2xx -le 0 ]]; then verdict=NONE; elif [[ $rows -lt $ok2xx ]]; then verdict=LOST; fi
  python3 "$HERE/lib/record.py" "$W" storage="$storage" dist="$dist" T="$T" rep="$rep" server="$srv" \
    non2xx="$non2xx" ok2xx="$ok2xx" rows_stored="$rows" files_with_rows="$counted" files="$files" rows_check="$verdict" \
    rss_start_kb="$rss_start" hwm_start_kb="$hwm_start" peak_rss_kb="$hwm" rss_end_kb="$rss_end" rss_idle_kb="$rss_idle" \
    fds_start="$fds_start" fds_end="$fds_end" fds_idle="$fds_idle" threads="$threads" \
    open_tenants_end="${open_end:-null}" open_tenants_idle="${open_idle:-null}" wal_left="$wal_left" shm_left="$shm_left" \
    server_cpu_s="$(echo "$cpu1 - $cpu0" | bc)" server_sys_s="$(echo "$sys1 - $sys0" | bc)" \
    wrk_cpu_s="$(echo "${wrk_user:-0} + ${wrk_sys:-0}" | bc)" machine_busy_s="$(echo "$busy1 - $busy0" | bc)" \
    wall_s="$(echo "$t1 - $t0" | bc)" sync_after_provision_s="$(echo "$t_sync1 - $t_sync0" | bc)" \
    stop_s="$(echo "$t_stop1 - $t_stop0" | bc)" loadavg_before="$load0" \
    apply_lag_end_s="${lag_end:-null}" unapplied_end="${unapplied_end:-null}" drain_s="$drain_s" \
    ingest_refused="${refused:-null}" \
    provision="$(cat "$rd/provision.txt")" \
    fsync_p50_ms="$(echo "$fsync_json" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("fsync_p50_ms","null"))')" \
    >>"$RESULTS"
  tail -1 "$RESULTS" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print("%-5s %-12s %-14s rep%d: %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  non2xx %d  RSS start/peak/idle %.1f/%.1f/%.1f MiB  fds %d->%d  rows %d >= %d %s  cpu %.1fs  load %s  lag@end %s s  unapplied@end %s  drain %s s" % (
  r["storage"], r["dist"] + str(r["T"]), r["server"], r["rep"], r.get("rps", 0), r.get("lat_p50_ms", 0), r.get("lat_p99_ms", 0),
  r["non2xx"], r["rss_start_kb"]/1024, r["peak_rss_kb"]/1024, r["rss_idle_kb"]/1024, r["fds_end"], r["fds_idle"],
  r["rows_stored"], r["ok2xx"], r["rows_check"], r["server_cpu_s"], r["loadavg_before"],
  r.get("apply_lag_end_s"), r.get("unapplied_end"), r.get("drain_s")))' | tee -a "$OUT/run.log"
  if [[ $verdict != ok ]]; then
    log "REFUSED: $run stored $rows rows for $ok2xx 2xx responses ($verdict: $([[ $verdict == NONE ]] && echo 'no write succeeded' || echo 'acknowledged deliveries are missing'))"
    exit 1
  fi
}

# ---- RSS at start: RSS_TENANTS idle tenant files vs none (same binary, same flags) ----
rss_idle_files() {
  local full="$DISK_ROOT/rss-full" empty="$DISK_ROOT/rss-empty"
  rm -rf "$full" "$empty"; mkdir -p "$empty"
  "$TENANTD" bench provision --data "$full" --count "$RSS_TENANTS" --layout tenantd >"$OUT/rss_idle_files_provision.txt"
  sync
  for rep in $(seq 1 "$RSS_REPS"); do
    for which in empty full; do
      local dir=$empty; [[ $which == full ]] && dir=$full
      start_server tenantd-fsync "$dir" "$OUT/rss_idle_files_server.log"
      sleep 1; local r1; r1=$(kb "$SRV_PID" VmRSS)
      sleep 2; local r3 h3; r3=$(kb "$SRV_PID" VmRSS); h3=$(kb "$SRV_PID" VmHWM)
      local f; f=$(fds "$SRV_PID")
      stop_server
      python3 "$HERE/lib/record.py" "" which="$which" tenant_files="$([[ $which == full ]] && echo "$RSS_TENANTS" || echo 0)" \
        rep="$rep" rss_1s_kb="$r1" rss_3s_kb="$r3" hwm_3s_kb="$h3" fds="$f" >>"$OUT/rss_idle_files.jsonl"
      log "rss at start, $which ($dir): ${r1} kB after 1 s, ${r3} kB after 3 s, fds $f"
    done
  done
  discard_dir "$full"; rm -rf "$empty"
}

log "results in $OUT"
for storage in $STORAGES; do
  for wl in $WORKLOADS; do
    dist=${wl%%:*}; T=${wl##*:}
    for rep in $(seq 1 "$REPS"); do
      for srv in $SERVERS; do
        run_one "$storage" "$dist" "$T" "$rep" "$srv"
        sleep 2
      done
    done
  done
done
[[ $RSS_TENANTS -gt 0 ]] && rss_idle_files
echo "loadavg at end: $(loadavg)" >>"$OUT/machine.txt"
if [[ -d $TRASH ]]; then
  t_rm0=$(date +%s); rm -rf "$TRASH"; log "deleted the runs' data dirs in $(( $(date +%s) - t_rm0 )) s"
fi
python3 "$HERE/summarize.py" "$OUT" | tee "$OUT/summary.md"
log "done: $OUT"

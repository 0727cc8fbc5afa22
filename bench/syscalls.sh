#!/usr/bin/env bash
# Syscalls per webhook request, per server and workload, under `strace -c -f` (which slows the
# server a lot: only the counts mean anything, not the times).
#
#   bench/syscalls.sh OUTDIR          (env: SERVERS, WORKLOADS, DURATION=5s, CONNS=8, DATA_ROOT)
# DATA_ROOT defaults to a tmpfs this script mounts (the counts do not depend on the storage).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench
OUT=${1:?usage: syscalls.sh OUTDIR}
TENANTD=${TENANTD:-$ROOT/target-bench/release/tenantd}
source "$ROOT/bench/lib/baseline.sh"
SERVERS=${SERVERS:-"bun tenantd-fsync tenantd-crash"}
WORKLOADS=${WORKLOADS:-"zipf:10000 uniform:100000"}
DURATION=${DURATION:-5s}; CONNS=${CONNS:-8}; PORT=${PORT:-3951}; IDLE_TTL=${IDLE_TTL:-10s}
DATA_ROOT=${DATA_ROOT:-}
mkdir -p "$OUT"
MOUNTED=0
if [[ -z $DATA_ROOT ]]; then
  DATA_ROOT=/tmp/tenantd-bench-syscalls; mkdir -p "$DATA_ROOT"
  mount -t tmpfs -o size=6g tmpfs "$DATA_ROOT"; MOUNTED=1
fi
trap '[[ -n ${PID:-} ]] && kill $PID 2>/dev/null; [[ $MOUNTED == 1 ]] && umount "$DATA_ROOT" && rmdir "$DATA_ROOT"' EXIT

for wl in $WORKLOADS; do
  dist=${wl%%:*}; T=${wl##*:}
  for srv in $SERVERS; do
    data="$DATA_ROOT/$srv-$dist"; rm -rf "$data"
    layout=flat; path="/t/{tenant}/webhook"; ready=/t/readycheck/events
    [[ $srv == tenantd-* ]] && { layout=tenantd; path="/t/{tenant}/hooks/bench"; ready=/healthz; }
    "$TENANTD" bench provision --data "$data" --count "$T" --layout "$layout" >/dev/null
    if [[ $srv == bun ]]; then
      DATA_DIR=$data PORT=$PORT "$BUN" "$BUN_SERVER" >/dev/null 2>&1 & PID=$!
    else
      TENANTD_ADMIN_TOKEN=bench-admin-token "$TENANTD" serve --listen "127.0.0.1:$PORT" --data "$data" \
        --durability "${srv#tenantd-}" --idle-ttl "$IDLE_TTL" >/dev/null 2>&1 & PID=$!
    fi
    for _ in $(seq 1 100); do [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT$ready") != 000 ]] && break; sleep 0.1; done
    f="$OUT/$srv-$dist$T.txt"
    strace -c -f -p "$PID" -o "$f" & ST=$!
    sleep 1
    wrk -t1 -c"$CONNS" -d"$DURATION" -s "$HERE/wrk/ingest.lua" "http://127.0.0.1:$PORT" -- "$T" "$dist" 1.1 "$path" >"$f.wrk"
    kill -INT $ST; wait $ST 2>/dev/null || true
    kill $PID; wait $PID 2>/dev/null || true; PID=
    n=$(grep '^RESULT_JSON' "$f.wrk" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().split(" ",1)[1])["requests"])')
    python3 - "$f" "$n" "$srv" "$dist" "$T" >>"$OUT/per_request.txt" <<'PY'
import sys
f, n, srv, dist, T = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
calls = {}
for line in open(f):
    p = line.split()
    if len(p) >= 5 and p[0][0].isdigit() and p[-1] != "total":
        calls[p[-1]] = int(p[3])
total = sum(calls.values())
top = sorted(calls.items(), key=lambda kv: -kv[1])[:12]
print(f"{srv} {dist} T={T}: {n} requests, {total / n:.1f} syscalls/request: " +
      ", ".join(f"{k} {v / n:.2f}" for k, v in top))
PY
    rm -rf "$data"
  done
done
cat "$OUT/per_request.txt"

#!/usr/bin/env bash
# Cluster tenant moves and rebalancing, on loopback with real nodes and a real HAProxy:
#  move:      per tenant size (SIZES), two fresh nodes + HAProxy; a tenant filled with 1 MiB
#             random blobs (SQL on its owner), then `tenantd cluster move` to the other node while
#             WRITERS clients post webhooks through HAProxy (unique delivery ids, 503/421 and
#             connection errors retried every RETRY_MS with the same id, as a sender would).
#             Reported: the move's wall time, the pause it prints (its fence), the longest gap
#             between two acknowledged writes (the client-visible pause), write p50/p99 outside
#             that gap, 503/421 counts; then every acknowledged delivery is looked up on the
#             target (lost, twice, under another id) and the source must answer 421. Phase
#             times come from the nodes' info logs (JSON): fenced, snapshot taken (source),
#             imported (target), moved away (source), and the mover's exit (table switch).
#  rebalance: three nodes + HAProxy, TENANTS tenants created on their owners (admin API) with
#             one webhook each through HAProxy; a fourth node (`add-node`, started,
#             `haproxy-config`, HAProxy restarted, `push`), then `tenantd cluster rebalance
#             --parallel PARALLEL` timed; every tenant is then read on its new owner directly
#             (its one event, by the table file's routing).
#
#   nice bench/cluster_move.sh [OUTDIR]   (default bench/results/cluster-move-<UTC timestamp>)
#   PHASES=move SIZES="1M 100M" nice bench/cluster_move.sh
#   PHASES=rebalance TENANTS=1000 nice bench/cluster_move.sh
# env: TENANTD (default target/release/tenantd; `cargo build --release`), PHASES="move rebalance",
#      SIZES="1M 100M 1G" (binary units), TENANTS=10000, PARALLEL=4, WRITERS=2,
#      RETRY_MS=10 (the client's retry interval: the pause's resolution), WARMUP_S=2 and COOLDOWN_S=2 (load before/after the move), WORK=/tmp/tenantd-cluster-move
#      (data dirs; the 1G size needs ~4 GB free there), KEEP=1 keeps WORK.
# Nodes run with --idle-ttl 1s (an idle tenant is closed and its WAL checkpointed away before
# the move), --quota 4GiB (the 1 GiB tenant is over the 1 GiB default), --sql-time-budget 60s.
# Output: results.jsonl (one line per move and per rebalance), moves/<size>.jsonl (every
# write), run.log, machine.txt, summary.md. A default run takes ~2 minutes on 2 cores (a third
# of it creating the 10,000 tenants).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TENANTD=${TENANTD:-$ROOT/target/release/tenantd}
PHASES=${PHASES:-"move rebalance"}; SIZES=${SIZES:-"1M 100M 1G"}
TENANTS=${TENANTS:-10000}; PARALLEL=${PARALLEL:-4}
export WRITERS=${WRITERS:-2} RETRY_MS=${RETRY_MS:-10} WARMUP_S=${WARMUP_S:-2} COOLDOWN_S=${COOLDOWN_S:-2}
WORK=${WORK:-/tmp/tenantd-cluster-move}
OUT=${1:-$ROOT/bench/results/cluster-move-$(date -u +%Y%m%d-%H%M%S)}
export TENANTD_ADMIN_TOKEN=bench-admin-token-0123456789
PY=(python3 "$ROOT/bench/lib/cluster_move.py")
[[ -x $TENANTD ]] || { echo "no $TENANTD: cargo build --release" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "haproxy missing (apt-get install haproxy)" >&2; exit 1; }
mkdir -p "$OUT/moves"
: >"$OUT/results.jsonl"; : >"$OUT/run.log"
{
  echo "date: $(date -u +%FT%TZ)"; echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo ' (dirty)')"
  echo "kernel: $(uname -r)"; echo "cpus: $(nproc) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"; echo "haproxy: $(haproxy -v | head -1)"
  echo "disk of WORK: $(df -h "$(dirname "$WORK")" | tail -1)"
  echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "phases=$PHASES sizes=$SIZES tenants=$TENANTS parallel=$PARALLEL writers=$WRITERS retry_ms=$RETRY_MS"
} >"$OUT/machine.txt"

log() { echo "== $(date -u +%T) $*" | tee -a "$OUT/run.log" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# The processes this script started (node name or "haproxy" -> pid); stopped by pid.
declare -A PID=()
stop() { local p=${PID[$1]:-}; if [[ -n $p ]]; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi; unset "PID[$1]"; }
stop_all() { for k in "${!PID[@]}"; do stop "$k"; done; }
trap 'stop_all; [[ -n ${KEEP:-} ]] || rm -rf "$WORK"' EXIT

# A cluster under $C: cluster.toml, maps/, one data dir per node; PORT[name] its port.
declare -A PORT=()
C=
new_cluster() {
  C=$WORK/$1; rm -rf "$C"; mkdir -p "$C/maps"; PORT=()
  API=127.0.0.1:$(free_port); FRONT=127.0.0.1:$(free_port)
  printf '[haproxy]\nruntime_api = "%s"\nbind = "%s"\nmap_dir = "%s"\n' "$API" "$FRONT" "$C/maps" >"$C/cluster.toml"
}
cli() { "$TENANTD" cluster --file "$C/cluster.toml" "$@"; }
nodes_arg() { local a=; for n in "${!PORT[@]}"; do a+="$n=http://127.0.0.1:${PORT[$n]},"; done; echo "${a%,}"; }
start_node() {  # name
  local n=$1 d=$C/$1
  [[ -n ${PORT[$n]:-} ]] || PORT[$n]=$(free_port)
  mkdir -p "$d"; (umask 077; printf %s "$TENANTD_ADMIN_TOKEN" >"$d/admin.token")
  TENANTD_LOG=info "$TENANTD" serve --log-format json --listen "127.0.0.1:${PORT[$n]}" --data "$d" --node-name "$n" \
    --idle-ttl 1s --quota 4GiB --sql-time-budget 60s >>"$C/$n.log" 2>&1 &
  PID[$n]=$!
  for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:${PORT[$n]}/healthz" && return; sleep 0.1; done
  echo "node $n did not come up; see $C/$n.log" >&2; exit 1
}
add_to_file() { printf '[[node]]\nname = "%s"\ndata = "127.0.0.1:%s"\n' "$1" "${PORT[$1]}" >>"$C/cluster.toml"; }
start_haproxy() {  # (re)starts HAProxy on the generated config; waits until it routes
  stop haproxy
  haproxy -db -f "$C/maps/haproxy.cfg" >>"$C/haproxy.log" 2>&1 &
  PID[haproxy]=$!
  for _ in $(seq 300); do curl -sf -o /dev/null "http://$FRONT/healthz" && return; sleep 0.1; done
  echo "haproxy did not come up; see $C/haproxy.log" >&2; exit 1
}
cluster_up() {  # node names...
  for n in "$@"; do start_node "$n"; add_to_file "$n"; done
  cli init >>"$OUT/run.log"; cli haproxy-config >>"$OUT/run.log"; start_haproxy; cli push >>"$OUT/run.log"
  # HAProxy checks every 2 s: wait until it sees every node up (a request to a node it has not
  # yet checked would fail with 503 from HAProxy itself)
  sleep 2.5
}
cluster_down() { stop_all; [[ -n ${KEEP:-} ]] || rm -rf "$C"; }
file_size() { local f; f=$(find "$1" -name "$2" -print -quit); [[ -n $f ]] && stat -c %s "$f" || echo 0; }

run_move() {  # size
  local size=$1 t src dst fill r stdout fenced bytes
  new_cluster "move-$size"; cluster_up node1 node2
  t=mv-$(echo "$size" | tr 'A-Z' 'a-z')
  src=$("${PY[@]}" owner "$C/cluster-table.json" "$t"); dst=node1; [[ $src == node1 ]] && dst=node2
  log "move $size: fill $t on $src"
  fill=$("${PY[@]}" fill "http://127.0.0.1:${PORT[$src]}" "$t" "$size")
  log "  $fill"
  local before_wal; before_wal=$(file_size "$C/$src/tenants" "$t.db-wal")
  # the node closes the idle tenant after 1 s, checkpointing its WAL into the file (TRUNCATE)
  for _ in $(seq 100); do [[ $(file_size "$C/$src/tenants" "$t.db-wal") == 0 ]] && break; sleep 0.2; done
  local db wal; db=$(file_size "$C/$src/tenants" "$t.db"); wal=$(file_size "$C/$src/tenants" "$t.db-wal")
  log "  $t.db $db bytes, WAL $before_wal bytes after the fill, $wal after the idle close"
  log "move $size: $t $src -> $dst under $WRITERS webhook writers through HAProxy"
  r=$("${PY[@]}" move-under-load "$FRONT" "$t" "$OUT/moves/$size.jsonl" -- \
      "$TENANTD" cluster --file "$C/cluster.toml" move "$t" --to "$dst") || { log "  move failed: $r"; }
  stdout=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["move_stdout"])' "$r")
  log "  $stdout"
  fenced=$(sed -n 's/.*writes paused \([0-9]*\) ms.*/\1/p' <<<"$stdout"); bytes=$(sed -n 's/.*, \([0-9]*\) bytes,.*/\1/p' <<<"$stdout")
  local ph; ph=$("${PY[@]}" phases "$t" "$r" "$C/$src.log" "$C/$dst.log")
  log "  phases (node logs): $ph"
  local v; v=$("${PY[@]}" verify-move "http://127.0.0.1:${PORT[$dst]}" "$t" "$OUT/moves/$size.jsonl") || true
  log "  verify on $dst: $v"
  local src_code; src_code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TENANTD_ADMIN_TOKEN" \
    "http://127.0.0.1:${PORT[$src]}/t/$t/events?limit=1")
  python3 - "$r" "$v" "$fill" "$ph" >>"$OUT/results.jsonl" <<EOF
import json, sys
r = json.loads(sys.argv[1])
for a in sys.argv[2:]:
    r.update(json.loads(a or "{}"))
r.update(phase="move", size="$size", tenant="$t", source="$src", target="$dst",
         db_bytes=$db, wal_bytes=$wal, wal_bytes_after_fill=$before_wal,
         mover_paused_ms=int("${fenced:-0}" or 0), moved_bytes=int("${bytes:-0}" or 0),
         source_answers=$src_code)
print(json.dumps(r, sort_keys=True))
EOF
  cluster_down
}

run_rebalance() {
  new_cluster rebalance; cluster_up node1 node2 node3
  log "rebalance: create $TENANTS tenants on their owners, one webhook each through HAProxy"
  local created; created=$("${PY[@]}" create "$FRONT" "$C/cluster-table.json" "$(nodes_arg)" "$TENANTS")
  log "  $created"
  log "rebalance: node4 joins (add-node, start, haproxy-config, HAProxy restarted, push)"
  start_node node4
  cli add-node node4 --data "127.0.0.1:${PORT[node4]}" >>"$OUT/run.log"
  cli haproxy-config >>"$OUT/run.log"; start_haproxy; cli push >>"$OUT/run.log"
  log "rebalance --parallel $PARALLEL"
  local t0 t1 out; t0=$(now)
  out=$(cli rebalance --parallel "$PARALLEL" 2>"$C/rebalance.stderr") || { log "rebalance failed: $(tail -5 "$C/rebalance.stderr")"; }
  t1=$(now)
  echo "$out" >>"$OUT/run.log"; log "  $(tail -1 <<<"$out")"
  local slots tenants; slots=$(sed -n 's/^rebalanced: \([0-9]*\) slots, .*/\1/p' <<<"$out")
  tenants=$(sed -n 's/^rebalanced: [0-9]* slots, \([0-9]*\) tenants.*/\1/p' <<<"$out")
  log "rebalance: every tenant on its owner (direct, by the new table)"
  local v; v=$("${PY[@]}" verify-owners "$C/cluster-table.json" "$(nodes_arg)" "$TENANTS") || true
  log "  $v"
  python3 - "$created" "$v" "$(tail -3 <<<"$out")" >>"$OUT/results.jsonl" <<EOF
import json, sys
r = json.loads(sys.argv[1]); r.update(json.loads(sys.argv[2]))
r.update(phase="rebalance", nodes="3 -> 4", parallel=$PARALLEL, slots_moved=int("${slots:-0}" or 0),
         tenants_moved=int("${tenants:-0}" or 0), rebalance_wall_s=round($t1 - $t0, 2),
         rebalance_stdout=sys.argv[3])
print(json.dumps(r, sort_keys=True))
EOF
  cluster_down
}

log "tenantd cluster move bench -> ${OUT#"$ROOT"/}"
for phase in $PHASES; do
  case $phase in
    move) for s in $SIZES; do run_move "$s"; done ;;
    rebalance) run_rebalance ;;
    *) echo "unknown phase $phase (move, rebalance)" >&2; exit 1 ;;
  esac
done
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
"${PY[@]}" summary "$OUT/results.jsonl" | tee "$OUT/summary.md"

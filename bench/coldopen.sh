#!/usr/bin/env bash
# The cold-open microbenchmark (issue 8 item 6): CPU per tenant open + one insert + close, per
# variant of tenantd's open, against the seed design on Bun, on the disk and on a tmpfs; plus
# syscalls per cycle (strace -c -f) and where the CPU goes (perf), for the main variants.
#
#   bench/coldopen.sh [OUTDIR]      (default bench/results/coldopen-<UTC timestamp>)
# env: TENANTD (default target/release/tenantd; build with `cargo build --release -p tenantd`),
#      COUNT=2000 tenants per run, REPEAT=3, HOLD=1000 tenants held open in the "hold" runs,
#      TRACE_COUNT=500 cycles under strace, PERF_COUNT=4000 under perf (dwarf call graphs),
#      STORAGES="disk tmpfs", CPU=0 (taskset core).
# The tmpfs is mounted by this script (root). Every run works on freshly provisioned files.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TENANTD=${TENANTD:-$ROOT/target/release/tenantd}
source "$ROOT/bench/lib/baseline.sh"
COUNT=${COUNT:-2000}; REPEAT=${REPEAT:-3}; HOLD=${HOLD:-1000}; TRACE_COUNT=${TRACE_COUNT:-500}
PERF_COUNT=${PERF_COUNT:-4000}
STORAGES=${STORAGES:-"disk tmpfs"}; CPU=${CPU:-0}
OUT=${1:-$ROOT/bench/results/coldopen-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
[[ -x $TENANTD ]] || { echo "no $TENANTD: cargo build --release -p tenantd" >&2; exit 1; }
command -v strace >/dev/null || { echo "strace missing (apt-get install strace)" >&2; exit 1; }
PIN=(taskset -c "$CPU")

{
  echo "date: $(date -u +%FT%TZ)"; echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo ' (dirty)')"
  echo "kernel: $(uname -r)"; echo "cpus: $(nproc) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "bun: $("$BUN" --version)"; echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "count=$COUNT repeat=$REPEAT hold=$HOLD trace_count=$TRACE_COUNT perf_count=$PERF_COUNT cpu=$CPU"
} >"$OUT/machine.txt"

MOUNTED=
cleanup() { [[ -n $MOUNTED ]] && umount "$MOUNTED" && rmdir "$MOUNTED"; true; }
trap cleanup EXIT

# fresh LAYOUT files for N tenants in DIR, flushed
provision() {
  rm -rf "$1"; "$TENANTD" bench provision --data "$1" --count "$2" --layout "$3" >/dev/null; sync -f "$1"
}

for storage in $STORAGES; do
  base=/tmp/tenantd-coldopen-$storage; mkdir -p "$base"
  if [[ $storage == tmpfs ]]; then mount -t tmpfs -o size=4g tmpfs "$base"; MOUNTED=$base; fi
  echo "== $storage: every variant, both modes, $REPEAT runs of $COUNT" >&2
  "${PIN[@]}" "$TENANTD" bench cold-open --dir "$base/work" --count "$COUNT" --repeat "$REPEAT" \
    --json "$OUT/$storage-variants.json" >"$OUT/$storage-variants.txt"
  echo "== $storage: with $HOLD other tenants open" >&2
  "${PIN[@]}" "$TENANTD" bench cold-open --dir "$base/work" --count "$COUNT" --repeat "$REPEAT" \
    --hold "$HOLD" --durability crash --variant tenantd --variant exclusive --variant seed \
    --json "$OUT/$storage-hold.json" >"$OUT/$storage-hold.txt"
  echo "== $storage: Bun" >&2
  : >"$OUT/$storage-bun.jsonl"
  for _ in $(seq 1 "$REPEAT"); do
    provision "$base/bun" "$COUNT" flat
    "${PIN[@]}" "$BUN" "$ROOT/bench/baseline/coldopen.ts" "$base/bun" "$COUNT" |
      sed -n 's/^COLDOPEN_JSON //p' >>"$OUT/$storage-bun.jsonl"
  done
  echo "== $storage: strace ($TRACE_COUNT cycles) and perf ($PERF_COUNT cycles)" >&2
  # name:variant:mode:hold. strace: every run without held tenants; perf: the tenantd,
  # exclusive-crash and seed runs (and the held-tenants run on the tmpfs only)
  for spec in tenantd-fsync:tenantd:fsync:0 tenantd-crash:tenantd:crash:0 \
      fast-close-crash:fast-close:crash:0 exclusive-crash:exclusive:crash:0 \
      exclusive-fsync:exclusive:fsync:0 seed:seed:crash:0 bun:bun:crash:0 \
      tenantd-crash-hold:tenantd:crash:$HOLD; do
    IFS=: read -r name v mode hold <<<"$spec"
    layout=tenantd; [[ $v == seed || $v == bun ]] && layout=flat
    # the command with N cycles over $base/trace
    cmd() {
      if [[ $v == bun ]]; then echo "$BUN" "$ROOT/bench/baseline/coldopen.ts" "$base/trace" "$1"
      else echo "$TENANTD" bench cold-open --prepared --dir "$base/trace" --count "$1" --repeat 1 \
        --variant "$v" --durability "$mode" --hold "$hold"; fi
    }
    # strace counts the process's start too: a 1-cycle run is traced as well, and the summary
    # takes the difference
    if [[ $hold == 0 ]]; then
      for n in 1 "$TRACE_COUNT"; do
        provision "$base/trace" "$n" $layout
        suffix=; [[ $n == 1 ]] && suffix=-one
        # shellcheck disable=SC2046
        strace -c -f -o "$OUT/$storage-strace-$name$suffix.txt" $(cmd "$n") >/dev/null
      done
    fi
    if [[ $v != bun && $v != fast-close && ( $hold == 0 || $storage == tmpfs ) && $mode$v != fsyncexclusive ]]; then
      provision "$base/trace" $((PERF_COUNT + hold)) $layout
      # shellcheck disable=SC2046
      perf record -q -F 1999 --call-graph dwarf,16384 -o "$OUT/.perf.data" -- "${PIN[@]}" \
        $(cmd "$PERF_COUNT") >/dev/null 2>&1
      perf report -i "$OUT/.perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
        grep -v '^#' | grep -v '^$' | cut -c1-160 | sed 's/ *-  *- *$//' >"$OUT/$storage-perf-$name.txt" || true
      rm -f "$OUT/.perf.data"
    fi
  done
  rm -rf "$base/trace" "$base/bun" "$base/work"
  if [[ $storage == tmpfs ]]; then umount "$base"; MOUNTED=; fi
  rmdir "$base" 2>/dev/null || true
done
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
python3 "$ROOT/bench/lib/coldopen_summary.py" "$OUT" "$TRACE_COUNT" | tee "$OUT/summary.md"

# Sourced by the bench scripts (also gives wait_up): the baseline server (bench/baseline/server.ts, the seed design:
# open, write and close the tenant's file on every request) and the Bun runtime that runs it,
# installed from bench/baseline/package-lock.json with `npm ci` on first use.
# Sets BUN and BUN_SERVER unless the caller set them.
BASELINE_DIR=${BASELINE_DIR:-$ROOT/bench/baseline}
BUN_SERVER=${BUN_SERVER:-$BASELINE_DIR/server.ts}
if [[ -z ${BUN:-} ]]; then
  BUN=$BASELINE_DIR/node_modules/.bin/bun
  if [[ ! -x $BUN ]]; then
    (cd "$BASELINE_DIR" && npm ci --no-audit --no-fund >/dev/null) ||
      { echo "cannot install Bun for the baseline (cd bench/baseline && npm ci)" >&2; exit 1; }
  fi
fi
# The Node baseline (bench/baseline-node/server.mjs: the same design on node:http +
# better-sqlite3, compiled by npm on first use, ~2 min). Sets NODE_SERVER; call need_node_baseline
# before starting it.
NODE_BASELINE_DIR=${NODE_BASELINE_DIR:-$ROOT/bench/baseline-node}
NODE_SERVER=${NODE_SERVER:-$NODE_BASELINE_DIR/server.mjs}
need_node_baseline() {
  [[ -d $NODE_BASELINE_DIR/node_modules/better-sqlite3 ]] && return 0
  (cd "$NODE_BASELINE_DIR" && npm ci --no-audit --no-fund >/dev/null) ||
    { echo "cannot install the Node baseline (cd bench/baseline-node && npm ci)" >&2; exit 1; }
}
# wait_up PATH: polls http://127.0.0.1:$PORT/PATH until it answers (10 s at most).
wait_up() {
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/$1" && return 0
    sleep 0.05
  done
  echo "server did not start" >&2; return 1
}

#!/usr/bin/env bash
# The whole test suite: installs what the tests need if missing, then runs every test of the
# workspace. This is the README's test command and what CI runs after fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real-client test (crates/tenantd/tests/sql_client.rs) drives a tenant with
# @libsql/client from tests/node: install it from the lock file when missing or stale, and
# make the test fail (instead of skipping) if Node or the install is unavailable.
if [ ! -f tests/node/node_modules/.package-lock.json ] ||
    [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then
    (cd tests/node && npm ci --no-audit --no-fund)
fi
export TENANTD_REQUIRE_NODE=1

# The cluster tests start a real HAProxy (Debian's 2.6): install it when missing and we can.
if ! command -v haproxy >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy
fi
# The backup tests talk to a real S3 API: moto's server, from PyPI (pinned). Installed when
# missing; as root (CI) the tests then fail instead of skipping if it is unavailable.
if ! python3 -m moto.server --help >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.1' || true
fi
if [ "$(id -u)" = 0 ]; then export TENANTD_REQUIRE_MOTO=1; fi
# The power-cut tests (crates/tenantd/tests/power_cut.rs, crates/powerfs) mount FUSE through
# Debian's fuse3 (fusermount3): install it when missing, and as root make them fail, not skip.
if ! command -v fusermount3 >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3
fi
if [ "$(id -u)" = 0 ]; then export TENANTD_REQUIRE_FUSE=1; fi
# As root (CI), the emulation tests (cgroup v1 cpu + memory) must run, not skip.
if [ "$(id -u)" = 0 ]; then export TENANTD_REQUIRE_CGROUP=1; fi

# The benchmark scripts' own logic (bench/lib/test_*.py: summaries, decoding, percentiles).
python3 -m unittest discover -s bench/lib -p 'test_*.py'
cargo test --workspace --locked

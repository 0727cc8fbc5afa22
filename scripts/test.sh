#!/usr/bin/env bash
# The whole test suite: installs what the tests need if missing, then runs every test of the
# workspace. This is the README's test command and what CI runs after fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked

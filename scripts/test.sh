#!/usr/bin/env bash
# Sets up and runs every check CI runs: formatting, clippy, and all tests (unit, integration
# against the real binary and a real loopback origin, config golden tests), then a bounded run of
# every fuzz target (scripts/fuzz.sh, FUZZ_SECONDS each).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
./scripts/fuzz.sh

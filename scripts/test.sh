#!/usr/bin/env bash
# Sets up and runs every check CI runs: formatting, clippy, all tests (unit, integration against
# the real binary and a real loopback origin, config golden tests), the same clippy and the OTLP
# export test for a build with `--features otlp` (off by default), then a bounded run of every
# fuzz target (scripts/fuzz.sh, FUZZ_SECONDS each).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace
cargo clippy --locked --workspace --all-targets --features otlp -- -D warnings
cargo test --locked --features otlp --test it -- otlp:: config_errors::
./scripts/fuzz.sh

#!/usr/bin/env bash
# Sets up, builds and runs imgforge on conf/demo.toml: a demo site served from demo/images.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked
cat <<'MSG'

imgforge demo — try:
  http://localhost:8080/                 demo page (local-root origin)
  http://localhost:8080/storm.jpg        an image passed through
  http://127.0.0.1:9090/status           admin: sites, upstream health (also /metrics /health /readyz)
Stop with Ctrl-C.

MSG
exec ./target/release/imgforge -c conf/demo.toml "$@"

#!/usr/bin/env bash
# Sets up, builds and runs imgforge on conf/demo.toml: a demo site served from demo/images.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked
cat <<'MSG'

imgforge demo — try:
  http://localhost:8080/                 demo page: before/after examples, each opens in the playground
  http://localhost:8080/storm.jpg        an image passed through
  http://localhost:8080/img/unsafe/rs:fill:300:200/g:sm/plain/storm.jpg@webp     smart crop to WebP
  http://localhost:8080/img/unsafe/pr:thumb/plain/raindrops.jpg                   the "thumb" preset
  http://localhost:8080/img/unsafe/w:320/bg:255:255:255/plain/mars.png@jpg        alpha flattened on white
  http://localhost:8080/img/info/unsafe/plain/storm.jpg                           image facts as JSON
  http://127.0.0.1:9090/playground       playground: compose, preview and copy image URLs (admin listener)
  http://127.0.0.1:9090/status           admin: sites, upstream health (also /metrics /health /readyz)
Stop with Ctrl-C.

MSG
exec ./target/release/imgforge -c conf/demo.toml "$@"

#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/fuzz_targets/) for a bounded time each, on stable Rust:
# RUSTC_BOOTSTRAP=1 lets stable rustc accept the -Z flags cargo-fuzz passes (sanitizer,
# coverage). Any crash, panic, failed assertion, leak, OOM or slow unit fails the script; the
# input that did it is kept under fuzz/artifacts/<target>/ and printed (base64) in the log.
#
#   scripts/fuzz.sh                      # every target, FUZZ_SECONDS (default 25) each
#   FUZZ_SECONDS=300 scripts/fuzz.sh image_decode
#
# Seeds are committed in fuzz/seeds/<target>/; what a run discovers goes to a temporary corpus
# (set FUZZ_CORPUS=DIR to keep it). fuzz/ is its own workspace: its Cargo.lock is committed and
# checked with --locked, with the same versions as the root Cargo.lock plus libfuzzer-sys.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-25}
all_targets=(url_parser config_parser image_decode)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=("${all_targets[@]}"); fi

# Largest input per target: URLs and configs are short; images need room for headers and data.
max_len() {
  case "$1" in
    url_parser) echo 4096 ;;
    config_parser) echo 8192 ;;
    *) echo 16384 ;;
  esac
}

if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked --quiet cargo-fuzz --version "=$CARGO_FUZZ_VERSION"
fi

if ! cargo fetch --locked --quiet --manifest-path fuzz/Cargo.toml; then
  echo "fuzz: fuzz/Cargo.lock is out of date with Cargo.toml. Refresh it from the root lock:" >&2
  echo "  cp Cargo.lock fuzz/Cargo.lock && cargo metadata --manifest-path fuzz/Cargo.toml --format-version 1 >/dev/null" >&2
  exit 1
fi

# The fuzz crate is outside the root workspace, so `cargo fmt --all` does not see it.
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

export RUSTC_BOOTSTRAP=1
start=$(date +%s)
# cargo-fuzz's default build: optimised, one codegen unit, ASan (our FFI glue is unsafe code).
# Measured cold on a 2-core machine: about 20 CPU-minutes. Cheaper profiles were tried and
# rejected: --dev builds in 7 CPU-minutes but runs the targets 30-60x slower (60-100 executions
# per second, too few for a short run to find anything); opt-level 1 everywhere costs as much as
# this build; opt-level 0 with the hot dependencies optimised (10-11 CPU-minutes) still runs
# 10-20x slower. Without a name, `cargo fuzz build` builds every target.
build=(cargo fuzz build)
if [ ${#targets[@]} -eq 1 ]; then build+=("${targets[0]}"); fi
"${build[@]}"
echo "fuzz: built in $(($(date +%s) - start)) s"

corpus_root=${FUZZ_CORPUS:-$(mktemp -d)}
status=0
for t in "${targets[@]}"; do
  corpus="$corpus_root/$t"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  echo "fuzz: $t for ${FUZZ_SECONDS} s"
  log=$(mktemp)
  if cargo fuzz run "$t" "$corpus" "fuzz/seeds/$t" -- \
    -max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$t")" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$log" | sed "s/^/fuzz: $t: /" || true
  else
    status=1
    tail -n 60 "$log"
    # Only what this run wrote (older artifacts may be lying around from earlier runs).
    find "fuzz/artifacts/$t" -type f -newer "$log" | while read -r a; do
      echo "fuzz: $t failed on $a (base64): $(base64 -w0 "$a")"
    done
  fi
  rm -f "$log"
done
if [ -z "${FUZZ_CORPUS:-}" ]; then rm -rf "$corpus_root"; fi
exit $status

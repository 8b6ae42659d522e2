#!/usr/bin/env bash
# Tools for the component beyond our own host, installed where this script owns them:
# - wac-cli (composes the cron and S3 storage components) and the wasmtime CLI (a generic
#   runner for the composed component) into ~/.cache/s3lect/tools, by `cargo install --locked`;
# - jco's transpiler and WASI shims for the Node.js host (node/), by `npm ci`;
# - Go (Debian's golang-go), whose encoding/json checks our records in the interop tests.
# Idempotent: what is present at the pinned version is not installed again.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${S3LECT_TOOLS:-$HOME/.cache/s3lect/tools}"
step() { printf 's3lect setup: %s\n' "$*"; }
die() { printf 's3lect setup: error: %s\n' "$*" >&2; exit 1; }

# cargo_tool BINARY CRATE VERSION [cargo install flags...]; READY_CHECK (a command, optional)
# must also succeed for an installed binary to count as ready.
cargo_tool() {
  local bin=$1 crate=$2 version=$3; shift 3
  if [ -x "$TOOLS/bin/$bin" ] && "$TOOLS/bin/$bin" --version 2>/dev/null | grep -q " $version" \
     && { [ -z "${READY_CHECK:-}" ] || eval "$READY_CHECK" >/dev/null 2>&1; }; then
    step "$bin $version ready"; return
  fi
  step "building $crate $version into $TOOLS (cargo install; a few minutes once)"
  cargo install -q --locked "$crate@$version" --root "$TOOLS" "$@"
}
cargo_tool wac wac-cli 0.12.0 --no-default-features
# Only what `wasmtime run -S http` and `wasmtime compile` (precompiled components) need: the
# full default feature set doubles the build.
# (A build without `compile` takes the word for a module to run.)
wasmtime_has_compile() { ! "$TOOLS/bin/wasmtime" compile 2>&1 | grep -q 'wasm module "compile"'; }
READY_CHECK=wasmtime_has_compile cargo_tool wasmtime wasmtime-cli 48.0.8 --no-default-features \
  --features run,compile,wasi-http,cranelift,component-model,parallel-compilation

command -v node >/dev/null 2>&1 || die "Node.js (>= 20) is required for the jco host: install Debian's nodejs"
if [ ! -d node/node_modules/@bytecodealliance/preview2-shim ] || [ node/package-lock.json -nt node/node_modules ]; then
  step "installing the Node host's packages (npm ci in node/)"
  (cd node && npm ci --no-audit --no-fund --loglevel=error)
else
  step "Node host packages ready"
fi

if ! command -v go >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "Go is required for the interop tests: install it (apt-get install golang-go)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  step "installing Go (apt-get install golang-go)"
  $SUDO apt-get install -y -q golang-go >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q golang-go >/dev/null; }
fi
step "$(go version)"

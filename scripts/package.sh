#!/usr/bin/env bash
# Packages the crates meant for users (s3lect-guest, s3lect-s3, s3lect, s3lect-cli) and checks
# that each builds from its package alone: `scripts/package.sh` (dry run, part of the test
# command) or `scripts/package.sh --publish`. The library's package carries the compiled
# election component (host/component/, not in git), so its users need no wasm toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p s3lect   # builds target/guest/.../s3lect_guest.wasm
mkdir -p host/component
cp target/guest/wasm32-wasip2/release/s3lect_guest.wasm host/component/s3lect_guest.wasm
if [ "${1:-}" = --publish ]; then
  cargo publish --workspace --allow-dirty
else
  cargo publish --workspace --dry-run --allow-dirty -q
fi

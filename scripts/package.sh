#!/usr/bin/env bash
# Packages the crates meant for users (s3lect-guest, s3lect-s3, s3lect, s3lect-cli) and checks
# that each builds from its package alone: `scripts/package.sh` (dry run, part of the test
# command) or `scripts/package.sh --publish`. The library's package carries the compiled
# election component (host/component/, not in git), so its users need no wasm toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p s3lect   # builds target/guest/.../s3lect_guest.wasm
# Cargo takes a registry crate's version as its content: the packaged copies of our crates
# (version unchanged, content changed) must not be reused from an earlier run.
rm -rf target/package "${CARGO_HOME:-$HOME/.cargo}"/registry/{src,cache}/-*/s3lect*
for crate in s3lect_guest s3lect_s3 s3lect s3lect_cli; do
  rm -rf target/debug/deps/lib${crate}-* target/debug/.fingerprint/${crate//_/-}-*
done
mkdir -p host/component
cp target/guest/wasm32-wasip2/release/s3lect_guest.wasm host/component/s3lect_guest.wasm
if [ "${1:-}" = --publish ]; then
  cargo publish --workspace --allow-dirty
else
  cargo publish --workspace --dry-run --allow-dirty -q
fi

#!/usr/bin/env bash
# The test command: set up, then the gates (format, lints, docs), then every test in the
# workspace — the election core's unit and property tests and its simulator, the wasm component
# in wasmtime, the end-to-end tests against two real S3 servers (SeaweedFS and Ceph RGW), bad
# weather through a fault-injecting proxy, AWS credential sources, hostile clients and inputs,
# and the composed component in the wasmtime CLI and in Node.js (jco).
set -euo pipefail
cd "$(dirname "$0")/.."
# A clean build of everything this runs takes about 6 GiB in target/; a linker out of space dies
# with a bus error, and the S3 servers the tests start stop taking writes ("No more free space
# left"). Say so first, so that such a failure reads as what it is.
free_kb=$(df -k --output=avail . | tail -1 | tr -d ' ')
echo "s3lect test: $((free_kb / 1024 / 1024)) GiB free on the disk of $(pwd)"
if [ "$free_kb" -lt $((10 * 1024 * 1024)) ]; then
  echo "s3lect test: WARNING: a clean build takes about 6 GiB in target/; with less than 10 GiB free, the build or the S3 servers may run out of space"
fi
bash scripts/setup.sh
bash scripts/build-components.sh
echo "s3lect test: gates (cargo fmt --check, clippy -D warnings, doc -D warnings)"
for tool in fmt clippy; do
  cargo "$tool" --version >/dev/null 2>&1 || timeout 120 rustup component add "$([ "$tool" = fmt ] && echo rustfmt || echo clippy)" >/dev/null 2>&1 || true
done
# rustup's component download can fail on these machines (as its targets can): then say so.
if cargo fmt --version >/dev/null 2>&1; then cargo fmt --all --check; else echo "s3lect test: WARNING: rustfmt unavailable, format gate skipped"; fi
if cargo clippy --version >/dev/null 2>&1; then cargo clippy -q --workspace --all-targets -- -D warnings; else echo "s3lect test: WARNING: clippy unavailable, lint gate skipped"; fi
RUSTDOCFLAGS="-D warnings" cargo doc -q --workspace --no-deps
echo "s3lect test: the crates for users package and build alone (cargo publish --dry-run)"
bash scripts/package.sh
cargo test --workspace "$@"

#!/usr/bin/env bash
# Everything the build, the demo and the tests need on a fresh machine: a wasm32-wasip2 Rust
# toolchain, the local S3 server (SeaweedFS), the second test server (Ceph RGW), and — unless `--demo` — the composition and
# interop tools the tests use (wac, the wasmtime CLI, jco for Node.js, Go). Idempotent and
# quick once done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-wasm.sh
bash scripts/setup-s3-server.sh "${1:-}"
[ "${1:-}" = --demo ] || bash scripts/ceph.sh install
[ "${1:-}" = --demo ] || bash scripts/setup-interop.sh
[ "${1:-}" = --demo ] || bash scripts/setup-validators.sh

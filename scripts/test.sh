#!/usr/bin/env bash
# The test command: set up, then every test in the workspace — the election core's unit tests,
# the wasm component in wasmtime, the end-to-end tests against a real SeaweedFS server, and the
# composed component in the wasmtime CLI and in Node.js (jco).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-components.sh
cargo test --workspace "$@"

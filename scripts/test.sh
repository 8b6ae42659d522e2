#!/usr/bin/env bash
# The test command: set up, then every test in the workspace — the election core's unit tests,
# the wasm component in wasmtime, and the end-to-end tests against a real SeaweedFS server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace "$@"

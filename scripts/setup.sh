#!/usr/bin/env bash
# Everything the build, the demo and the tests need on a fresh machine: a wasm32-wasip2 Rust
# toolchain and the local S3 server (SeaweedFS). Idempotent and quick once done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-wasm.sh
bash scripts/setup-s3-server.sh

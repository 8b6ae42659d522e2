#!/usr/bin/env bash
# The demo: set up, build, and run a local three-node election (no cloud account needed).
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo needs neither the composition tools nor the other hosts.
bash scripts/setup.sh --demo
cargo run --release -q -p s3lect-cli --bin s3lect -- demo "$@"

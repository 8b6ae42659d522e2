#!/usr/bin/env bash
# Builds the components and their composition:
#   target/components/wasm32-wasip2/release/s3lect_cron.wasm        the elector-cron world
#   target/components/wasm32-wasip2/release/s3lect_s3_storage.wasm  the s3-storage world
#   target/components/s3lect-cron-s3.wasm   both composed by wac: imports only WASI
#   target/components/s3lect-elector.wasm   the library elector with s3-storage and peer-http
#                                           plugged in: imports only WASI, exports `election`
#   target/components/example-app.wasm      a user's job (components/example-app) with
#                                           s3lect-cron-s3.wasm plugged into its cron import
#   target/components/example-service.wasm  a user's service (components/example-service) with
#                                           s3lect-elector.wasm plugged into its election import
#   target/components/storage-contract-s3.wasm  the storage contract, run against the S3
#                                           storage component (a test tool)
#   node/gen/                               the composition transpiled by jco for Node.js
# Needs scripts/setup.sh once (wasm target, wac, Node packages).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${S3LECT_TOOLS:-$HOME/.cache/s3lect/tools}"
OUT=target/components
REL=$OUT/wasm32-wasip2/release
[ -x "$TOOLS/bin/wac" ] || { echo "s3lect: wac not found in $TOOLS/bin: run scripts/setup.sh" >&2; exit 1; }
# The library's build script builds the election component (target/guest); the others are
# built here, apart from it: its component glue is a default feature that these, which link
# the core as a library, must not get. Toolchain: rustup's if it has the target, else the
# private one scripts/setup-wasm.sh assembles.
cargo build -q -p s3lect
CARGO_WASM=cargo
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  CARGO_WASM="${S3LECT_WASM_TOOLCHAIN:-$HOME/.cache/s3lect/wasm-toolchain}/bin/cargo"
fi
"$CARGO_WASM" build -q --release --target wasm32-wasip2 --target-dir "$OUT" \
  -p s3lect-cron -p s3lect-s3-storage -p s3lect-peer-http -p s3lect-example-app -p s3lect-example-service \
  -p s3lect-storage-contract
"$TOOLS/bin/wac" plug "$REL/s3lect_cron.wasm" --plug "$REL/s3lect_s3_storage.wasm" -o "$OUT/s3lect-cron-s3.wasm.tmp"
mv "$OUT/s3lect-cron-s3.wasm.tmp" "$OUT/s3lect-cron-s3.wasm"
"$TOOLS/bin/wac" plug "$REL/s3lect_example_app.wasm" --plug "$OUT/s3lect-cron-s3.wasm" -o "$OUT/example-app.wasm"
"$TOOLS/bin/wac" plug target/guest/wasm32-wasip2/release/s3lect_guest.wasm \
  --plug "$REL/s3lect_s3_storage.wasm" --plug "$REL/s3lect_peer_http.wasm" -o "$OUT/s3lect-elector.wasm"
"$TOOLS/bin/wac" plug "$REL/s3lect_storage_contract.wasm" --plug "$REL/s3lect_s3_storage.wasm" -o "$OUT/storage-contract-s3.wasm"
"$TOOLS/bin/wac" plug "$REL/s3lect_example_service.wasm" --plug "$OUT/s3lect-elector.wasm" -o "$OUT/example-service.wasm"
rm -rf node/gen
node node/transpile.mjs "$OUT/s3lect-cron-s3.wasm" node/gen
echo "s3lect: composed $OUT/s3lect-cron-s3.wasm ($(stat -c %s "$OUT/s3lect-cron-s3.wasm") bytes)"

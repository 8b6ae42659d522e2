#!/usr/bin/env bash
# Validators for the deployment files in deploy/ (cli/tests/deploy.rs): yamllint and
# kubernetes-validate (Kubernetes' schemas, offline) into .venv, dockerfile-utils (a Dockerfile
# linter) into ~/.cache/s3lect/tools/npm. systemd-analyze comes with the system. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
TOOLS="${S3LECT_TOOLS:-$HOME/.cache/s3lect/tools}"
step() { printf 's3lect setup: %s\n' "$*"; }
[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
if [ -x "$VENV/bin/yamllint" ] && [ -x "$VENV/bin/kubernetes-validate" ]; then
  step "yamllint and kubernetes-validate ready"
else
  step "installing yamllint and kubernetes-validate into $VENV"
  "$VENV/bin/pip" install -q "yamllint==1.38.0" "kubernetes-validate==1.37.0"
fi
if [ -x "$TOOLS/npm/node_modules/.bin/dockerfile-utils" ]; then
  step "dockerfile-utils ready"
else
  step "installing dockerfile-utils into $TOOLS/npm"
  mkdir -p "$TOOLS/npm"
  npm install -s --no-audit --no-fund --prefix "$TOOLS/npm" dockerfile-utils@0.16.3 >/dev/null
fi

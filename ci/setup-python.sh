#!/usr/bin/env bash
# Create .venv (if missing) and install this project with its test and fitter extras.
# Usage: bash ci/setup-python.sh [extras]   (default extras: test)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${1:-test}
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
echo "[setup-python] .venv ready with extras [$EXTRAS]" >&2

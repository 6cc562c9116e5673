#!/usr/bin/env bash
# Side venv with the reference implementation (PyPI wfl==0.3.5 + expyre-wfl==0.1.6) for
# tests/compat, which runs the same user scripts through it and through this project.
# Idempotent: an existing .venv-ref with the right versions is kept.
#   usage: bash ci/setup-reference.sh [VENV_DIR]   (default: .venv-ref in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-${WFL_REFERENCE_VENV:-$PWD/.venv-ref}}
want="0.3.5 0.1.6"
have() {
    "$venv/bin/python" -c "import importlib.metadata as m; print(m.version('wfl'), m.version('expyre-wfl'))" 2>/dev/null || true
}
if [ -x "$venv/bin/python" ] && [ "$(have)" = "$want" ]; then
    echo "[setup-reference] $venv already has wfl==0.3.5 expyre-wfl==0.1.6" >&2
    exit 0
fi
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "wfl==0.3.5" "expyre-wfl==0.1.6"
if [ "$(have)" != "$want" ]; then
    echo "[setup-reference] $venv does not have wfl 0.3.5 + expyre-wfl 0.1.6 after installing" >&2
    exit 1
fi
echo "[setup-reference] $venv ready (wfl 0.3.5, expyre-wfl 0.1.6)" >&2

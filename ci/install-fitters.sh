#!/usr/bin/env bash
# Install the external programs used by wfl's DFT-calculator and fitting tests:
#   - gap_fit / quip and quippy (PyPI quippy-ase, a manylinux wheel; nothing compiles)
#   - pacemaker / pyace (PyPI python-ace; only a pre-release exists, so it is pinned)
#   - pw.x and its pseudopotentials (Debian quantum-espresso, quantum-espresso-data)
# Idempotent: each step is skipped when its program is already present, so a rerun is fast.
# Usage: bash ci/install-fitters.sh      (run from anywhere; needs root for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=".venv/bin/python -m pip"

if [ ! -x .venv/bin/python ]; then
    echo "[install-fitters] .venv missing: run 'bash ci/setup-python.sh' first" >&2
    exit 1
fi

if [ -x .venv/bin/gap_fit ] && .venv/bin/python -c "import quippy" 2>/dev/null; then
    echo "[install-fitters] quippy-ase already installed" >&2
else
    $PIP install -q quippy-ase
fi

if [ -x .venv/bin/pacemaker ] && .venv/bin/python -c "import pyace" 2>/dev/null; then
    echo "[install-fitters] python-ace already installed" >&2
else
    # Pin: PyPI has only this pre-release; --pre would let pre-releases of every dependency in.
    $PIP install -q "python-ace==0.4.0rc1"
fi

if command -v pw.x >/dev/null 2>&1 && [ -d /usr/share/espresso/pseudo ]; then
    echo "[install-fitters] quantum-espresso already installed" >&2
else
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends quantum-espresso quantum-espresso-data >/dev/null
fi
echo "[install-fitters] gap_fit, pacemaker and pw.x ready" >&2

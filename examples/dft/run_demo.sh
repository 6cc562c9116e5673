#!/usr/bin/env bash
# pw.x calculations as queued jobs on the embedded local queue (2 jobs of 2 Si cells each).
# Needs: bash ci/install-fitters.sh (pw.x + pseudopotentials). Runs in ./dft-run (fresh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="$repo/.venv/bin:$PATH"
work=${DEMO_DIR:-$repo/dft-run}
rm -rf "$work"; mkdir -p "$work/dft" "$work/_expyre"
cp "$here/qe_si.py" "$work/dft/"; cp "$here/remoteinfo.json" "$work/"
cd "$work"
export WFL_EXPYRE_INFO=$PWD/remoteinfo.json
python dft/qe_si.py
xpr ls || true
echo "== rerun: nothing is computed again"
python dft/qe_si.py

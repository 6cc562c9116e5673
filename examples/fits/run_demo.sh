#!/usr/bin/env bash
# GAP and ACE fits as queued jobs on the embedded local queue, then a rerun that fits nothing.
# Needs: bash ci/install-fitters.sh (gap_fit, pacemaker). Runs in ./fits-run (created fresh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="$repo/.venv/bin:$PATH"
work=${DEMO_DIR:-$repo/fits-run}
rm -rf "$work"; mkdir -p "$work/_expyre"
cp "$here"/*.py "$here"/*.yaml "$here"/*.json "$work/"
cd "$work"
python make_data.py 30 train.xyz

# each simple GAP fit (and each committee member, each multistage stage) is its own job;
# the multistage fit instead becomes one job holding all its stages; the ACE fit one job
export WFL_GAP_SIMPLE_FIT_REMOTEINFO=$PWD/remoteinfo_fit.json
export WFL_GAP_MULTISTAGE_FIT_REMOTEINFO=$PWD/remoteinfo_fit.json
export WFL_ACE_FIT_REMOTEINFO=$PWD/remoteinfo_fit.json

echo "== run 1: fits as queued jobs"
python do_fits.py
echo; echo "== the jobs (xpr ls)"
xpr ls || true
echo; echo "== run 2: everything is found finished"
python do_fits.py

#!/usr/bin/env bash
# The main job: the documented VASP relaxation workflow (EMT standing in) on the embedded local queue.
# Runs in ./demo-run (created fresh), shows the jobs with `xpr ls`, then reruns the
# workflow to show that a finished operation is skipped instantly.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="$repo/.venv/bin:$PATH"
work=${DEMO_DIR:-$repo/demo-run}
rm -rf "$work"; mkdir -p "$work/_expyre"
cp "$here/do_workflow.py" "$here/make_structures.py" "$here/remoteinfo.json" "$work/"
cp "$here/_expyre/config.json" "$work/_expyre/"
cd "$work"
python make_structures.py 8 structures.xyz

export WFL_EXPYRE_INFO=$PWD/remoteinfo.json
export WFL_PROGRESS=${WFL_PROGRESS:-1}
echo; echo "== run 1: relaxations submitted as jobs to the local queue (4 jobs of 2 structures)"
t0=$(date +%s.%N)
python do_workflow.py
t1=$(date +%s.%N)
echo; echo "== the jobs (xpr ls)"
xpr ls
echo; echo "== run 2: the same script again: the finished operation is skipped"
python do_workflow.py
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN{printf "\nrun 1: %.1f s, run 2 (skip): %.1f s; outputs in %s\n", b-a, c-b, ENVIRON["PWD"]}'
echo "python and xpr are in $repo/.venv: run \`source $repo/.venv/bin/activate\` to use them in your shell (e.g. \`cd $work && xpr ls\`)"

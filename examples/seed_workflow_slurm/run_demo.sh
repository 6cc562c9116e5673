#!/usr/bin/env bash
# The relaxation workflow of examples/seed_workflow again, now on Slurm: the SAME do_workflow.py as
# examples/seed_workflow; only remoteinfo.json (sys_name "slurm", partition "debug") and
# _expyre/config.json (the Slurm system) differ. Needs a running Slurm: as root,
# `bash ci/install-system-packages.sh && bash ci/start-slurm.sh` starts a single-node one.
# For a cluster reached over ssh, add "host": "me@cluster" and "rundir" to the system.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="$repo/.venv/bin:$PATH"
command -v sbatch >/dev/null || { echo "sbatch not found: start Slurm first (bash ci/start-slurm.sh)" >&2; exit 1; }
work=${DEMO_DIR:-$repo/demo-run-slurm}
rm -rf "$work"; mkdir -p "$work/_expyre"
cp "$here/../seed_workflow/do_workflow.py" "$here/../seed_workflow/make_structures.py" "$work/"
cp "$here/remoteinfo.json" "$work/"; cp "$here/_expyre/config.json" "$work/_expyre/"
cd "$work"
python make_structures.py 8 structures.xyz
export WFL_EXPYRE_INFO=$PWD/remoteinfo.json WFL_PROGRESS=${WFL_PROGRESS:-1}
echo "== run 1: 4 jobs on Slurm"; python do_workflow.py
echo "== xpr ls"; xpr ls
echo "== squeue/sacct view of our jobs (names carry the expyre job id)"; squeue -t all -o "%.10i %.40j %.10T" | grep -E "JOBID|emt_minim" || true
echo "== run 2: skipped"; python do_workflow.py

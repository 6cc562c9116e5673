"""The README's main job (examples/seed_workflow/run_demo.sh) keeps working.

Runs the demo script exactly as `make demo` does (in a private directory), and checks what a
user reads: the results table of 8 relaxed cells, 4 processed jobs in `xpr ls`, and the
rerun skipping the finished relaxation.
"""

import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "seed_workflow" / "run_demo.sh"


def test_main_job_runs_lists_jobs_and_skips_on_rerun(tmp_path):
    env = dict(os.environ, DEMO_DIR=str(tmp_path / "demo"), HOME=str(tmp_path))
    for var in ("WFL_EXPYRE_INFO", "EXPYRE_ROOT", "EXPYRE_SYS"):
        env.pop(var, None)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    done = subprocess.run(["bash", str(DEMO)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    run1, _, rest = done.stdout.partition("== the jobs (xpr ls)")
    listing, _, run2 = rest.partition("== run 2")
    table_rows = [line for line in run1.splitlines() if line.strip().endswith("True")]
    assert len(table_rows) == 8  # every cell relaxed and converged
    assert listing.count("processed") >= 4 and "4 job(s): 4 processed" in listing
    assert [r for r in run2.splitlines() if r.strip().endswith("True")] == table_rows
    assert "are already complete" in done.stderr and "skipped" in done.stderr

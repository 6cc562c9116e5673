"""Plan mode (``xpr plan -- python script.py`` / ``WFL_PLAN=FILE``) on the real local queue.

A three-call workflow: call "first" goes to the queue (2 jobs), call "second" goes to the
queue on the outputs of "first", call "third" is matched by no key and runs here. The plan
must create nothing (no jobs.db, no stage dir, no local queue record, no output file) and
must say, per job, new / reused / replacing a stale one, as the jobs database says.
"""

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

OPS = textwrap.dedent(
    """
    from wfl.autoparallelize import autoparallelize


    def _scale(atoms_list, factor):
        out = []
        for at in atoms_list:
            at = at.copy()
            at.set_cell(at.cell * factor, scale_atoms=True)
            out.append(at)
        return out


    def scale(inputs, outputs, factor, autopara_info=None):
        return autoparallelize(_scale, inputs, outputs, factor, autopara_info=autopara_info)
    """
)

SCRIPT = textwrap.dedent(
    """
    from ase.build import bulk
    from wfl.configset import ConfigSet, OutputSpec
    from ops import scale

    configs = [bulk("Cu", cubic=True) for _ in range(4)]
    for i, at in enumerate(configs):
        at.rattle(0.05, seed=i)
    ci = ConfigSet(configs)
    s1 = scale(ci, OutputSpec("s1.xyz"), 1.01, autopara_info={"remote_label": "first"})
    s2 = scale(s1, OutputSpec("s2.xyz"), 1.02, autopara_info={"remote_label": "second"})
    s3 = scale(ci, OutputSpec("s3.xyz"), 0.99, autopara_info={"remote_label": "third"})
    print("lengths", len(list(s1)), len(list(s2)), len(list(s3)))
    """
)

REMOTE = {
    "sys_name": "local",
    "resources": {"num_cores": 1, "max_time": "10m"},
    "partial_node": True,
}
EXPYRE_INFO = {
    "first": {**REMOTE, "job_name": "first", "num_inputs_per_queued_job": 2},
    "second": {**REMOTE, "job_name": "second", "num_inputs_per_queued_job": 2},
}


@pytest.fixture
def workflow(make_local_project, tmp_path, monkeypatch):
    root = make_local_project(cores=2)
    (tmp_path / "ops.py").write_text(OPS)
    (tmp_path / "wf.py").write_text(SCRIPT)
    monkeypatch.setenv("WFL_EXPYRE_INFO", json.dumps(EXPYRE_INFO))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return root


def _plan(tmp_path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "expyre.cli", "plan", "--", sys.executable, "wf.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _block(plan: str, n: int) -> str:
    """The text of the n-th call's block (1-based)."""
    start = plan.index(f"[{n}] ")
    end = plan.find(f"[{n + 1}] ", start)
    return plan[start : end if end >= 0 else len(plan)]


def _rows(root) -> list[tuple[str, str]]:
    with sqlite3.connect(root / "jobs.db") as conn:
        return sorted(conn.execute("SELECT name, status FROM jobs").fetchall())


def test_plan_on_fresh_project_creates_nothing(workflow, tmp_path):
    plan = _plan(tmp_path)
    first, second, third = _block(plan, 1), _block(plan, 2), _block(plan, 3)

    assert "matched: 'first'" in first and "system: local" in first
    assert "items: 4 (0 reused from the item store, 4 new)  jobs: 2" in first
    assert first.count(" new\n") == 2  # one line per job
    assert "#LOCAL --cores=1" in first and "#LOCAL --partition=local" in first

    assert "matched: 'second'" in second
    assert "inputs computed by an earlier step" in second and "jobs: unknown" in second

    assert "runs here" in third and "items: 4" in third
    assert "jobs: 2 new, 0 reused, 0 replacing stale ones" in plan

    # nothing was created: no database, no stage or queue dirs, no outputs
    assert sorted(p.name for p in workflow.iterdir()) == ["config.json"]
    assert not any((tmp_path / f).exists() for f in ("s1.xyz", "s2.xyz", "s3.xyz"))


def test_plan_after_a_real_run_reuses_and_after_a_code_edit_replaces_stale(
    workflow, tmp_path, monkeypatch
):
    run = subprocess.run(
        [sys.executable, "wf.py"], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert run.returncode == 0, run.stderr
    assert "lengths 4 4 4" in run.stdout
    rows_after_run = _rows(workflow)
    assert len(rows_after_run) == 4 and {s for _, s in rows_after_run} == {"processed"}

    plan = _plan(tmp_path)
    assert plan.count("outputs already complete: skipped") == 3

    # outputs lost (the restart case): every item is in the item store, no job is needed
    (tmp_path / "s1.xyz").unlink()
    plan = _plan(tmp_path)
    first = _block(plan, 1)
    assert "items: 4 (4 reused from the item store, 0 new)  jobs: 0" in first
    assert "queued items: 4 reused, 0 new; jobs: 0 new, 0 reused" in plan

    # without the item store the finished jobs are what a rerun would take
    monkeypatch.setenv(
        "WFL_EXPYRE_INFO",
        json.dumps({k: {**v, "reuse_items": False} for k, v in EXPYRE_INFO.items()}),
    )
    plan = _plan(tmp_path)
    first = _block(plan, 1)
    assert first.count("reuse first_chunk_") == 2 and "(processed)" in first
    assert "jobs: 0 new, 2 reused" in plan
    monkeypatch.setenv("WFL_EXPYRE_INFO", json.dumps(EXPYRE_INFO))

    # the operation's code changes: same call, other code -> the jobs would be replaced
    ops = tmp_path / "ops.py"
    ops.write_text(
        ops.read_text().replace("out.append(at)", "at.info['v'] = 2\n        out.append(at)")
    )
    plan = _plan(tmp_path)
    first = _block(plan, 1)
    assert first.count("replaces stale first_chunk_") == 2
    assert "code changed" in first
    # the plan only looked: the old jobs are not marked stale, nothing new was recorded
    assert _rows(workflow) == rows_after_run

    # an argument changes (the scale factor): other calls, so new jobs, and the plan says why
    wf = tmp_path / "wf.py"
    wf.write_text(wf.read_text().replace("1.01", "1.03"))
    first = _block(_plan(tmp_path), 1)
    assert first.count(" new: an earlier job of this name (first_chunk_") == 2
    assert "other arguments, inputs or input files" in first
    assert _rows(workflow) == rows_after_run


def test_plan_env_var_directly_and_show(workflow, tmp_path, monkeypatch):
    plan_file = tmp_path / "plan.jsonl"
    monkeypatch.setenv("WFL_PLAN", str(plan_file))
    proc = subprocess.run(
        [sys.executable, "wf.py"], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    # in plan mode every call that would run returns an empty ConfigSet
    assert "lengths 0 0 0" in proc.stdout
    records = [json.loads(line) for line in plan_file.read_text().splitlines()]
    assert [r["where"] for r in records] == ["queue", "queue", "here"]
    monkeypatch.delenv("WFL_PLAN")
    shown = subprocess.run(
        [sys.executable, "-m", "expyre.cli", "plan", "--show", str(plan_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "jobs: 2 new" in shown.stdout and "runs here" in shown.stdout


def _fit_like(x):
    return x + 1


def test_whole_call_jobs_a_plan_cannot_stand_in_for_stop_the_plan(
    make_local_project, tmp_path, monkeypatch
):
    """Fits go to the queue as whole calls; their results cannot be faked, so the plan
    records the jobs and stops the script there, with nothing submitted."""
    from wfl.autoparallelize.plan import PlanStopped
    from wfl.autoparallelize.remoteinfo import RemoteInfo
    from wfl.autoparallelize.single_job import run_as_single_jobs

    root = make_local_project(cores=2)
    plan_file = tmp_path / "plan.jsonl"
    monkeypatch.setenv("WFL_PLAN", str(plan_file))
    info = RemoteInfo.from_value({**REMOTE, "job_name": "fit"})
    calls = [(_fit_like, [1], {}), (_fit_like, [2], {})]
    with pytest.raises(PlanStopped, match="fit_a, fit_b"):
        run_as_single_jobs(calls, info, ["fit_a", "fit_b"])
    (record,) = [json.loads(line) for line in plan_file.read_text().splitlines()]
    assert [(j["name"], j["verdict"]) for j in record["jobs"]] == [
        ("fit_a", "new"),
        ("fit_b", "new"),
    ]
    assert sorted(p.name for p in root.iterdir()) == ["config.json"]

"""Restarts: a killed driver never causes a second submission; edited code is never reused."""

import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from expyre_testutil import square

import expyre.func
from expyre.func import ExPyRe, jobs_db
from expyre.jobsdb import JobsDB
from expyre.localqueue import LocalQueue
from expyre.system import System

ONE_CORE = {"num_cores": 1, "max_time": "10m"}

DRIVER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[2])
    from jobsmod import work
    from expyre.func import ExPyRe
    jobs = [ExPyRe(f"w{i}", function=work, args=[i]) for i in range(6)]
    for job in jobs:
        job.start({"num_cores": 1, "max_time": "10m"}, partial_node=True)
    print("SUBMITTED", flush=True)
    if sys.argv[1] == "hang":
        time.sleep(600)
    print(json.dumps(sorted(job.get_results(timeout=600)[0] for job in jobs)), flush=True)
    """
)


def _local_queue_jobs(root):
    return LocalQueue(Path(root) / "localqueue" / "local").list()


def test_driver_sigkilled_after_submitting_rerun_submits_nothing(project, tmp_path):
    moddir = tmp_path / "mods"
    moddir.mkdir()
    (moddir / "jobsmod.py").write_text(
        "import time\n\ndef work(i):\n    time.sleep(1.5)\n    return 10 * i\n"
    )
    (tmp_path / "driver.py").write_text(DRIVER)
    first = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), "hang", str(moddir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert first.stdout.readline().strip() == "SUBMITTED"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    rerun = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py"), "wait", str(moddir)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout.splitlines()[-1]) == [0, 10, 20, 30, 40, 50]
    rows = jobs_db().select()
    assert len(rows) == 6 and sum(r["n_submissions"] for r in rows) == 6
    assert len(_local_queue_jobs(project)) == 6  # the queue itself saw six submissions


def test_killed_between_submit_and_recording_the_id_finds_the_queued_job(project, monkeypatch):
    real_update = JobsDB.update

    def die_before_recording(self, job_id, **fields):
        if "remote_id" in fields:
            raise SystemExit("driver killed")
        return real_update(self, job_id, **fields)

    monkeypatch.setattr(JobsDB, "update", die_before_recording)
    with pytest.raises(SystemExit):
        ExPyRe("lost", function=square, args=[6]).start(ONE_CORE, partial_node=True)
    monkeypatch.setattr(JobsDB, "update", real_update)
    row = jobs_db().select()[0]
    assert row["status"] == "submitted" and row["remote_id"] is None

    again = ExPyRe("lost", function=square, args=[6]).start(ONE_CORE, partial_node=True)
    assert again.id == row["id"] and again.remote_id is not None
    assert again.get_results(timeout=300)[0] == 36
    assert jobs_db().get(again.id)["n_submissions"] == 1
    assert len(_local_queue_jobs(project)) == 1


def test_killed_before_the_submit_command_submits_once_on_rerun(project, monkeypatch):
    def die_in_submit(self, script_path, job_dir):
        raise SystemExit("driver killed")

    real_submit = System.submit
    monkeypatch.setattr(System, "submit", die_in_submit)
    with pytest.raises(SystemExit):
        ExPyRe("never", function=square, args=[4]).start(ONE_CORE, partial_node=True)
    monkeypatch.setattr(System, "submit", real_submit)
    monkeypatch.setattr(expyre.func, "_SUBMIT_IN_PROGRESS_S", 0.5)
    assert _local_queue_jobs(project) == []

    job = ExPyRe("never", function=square, args=[4]).start(ONE_CORE, partial_node=True)
    assert job.get_results(timeout=300)[0] == 16
    assert len(_local_queue_jobs(project)) == 1


def test_edited_code_is_not_reused_and_old_job_is_stale(project, tmp_path, monkeypatch):
    moddir = tmp_path / "mods"
    moddir.mkdir()
    monkeypatch.syspath_prepend(str(moddir))
    mod_path = moddir / "editable_op.py"
    mod_path.write_text("def op(x):\n    return x + 1\n")
    mod = importlib.import_module("editable_op")
    old = ExPyRe("op", function=mod.op, args=[1]).start(ONE_CORE, partial_node=True)
    assert old.get_results(timeout=300)[0] == 2

    mod_path.write_text("def op(x):\n    # a comment does not matter\n    return x + 1\n")
    mod = importlib.reload(mod)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stale warning for a comment
        same = ExPyRe("op", function=mod.op, args=[1])
    assert same.id == old.id

    mod_path.write_text("def op(x):\n    return x + 1000\n")
    mod = importlib.reload(mod)
    with pytest.warns(
        UserWarning, match=r"code changed: editable_op:op\. 1 earlier job.*0 of them"
    ):
        new = ExPyRe("op", function=mod.op, args=[1])
    assert new.id != old.id
    assert jobs_db().get(old.id)["status"] == "stale"
    assert new.start(ONE_CORE, partial_node=True).get_results(timeout=300)[0] == 1001
    sys.modules.pop("editable_op", None)
    assert os.path.exists(old.stage_dir)  # nothing deleted behind the user's back

"""Edited code and queued jobs: stale jobs still in the queue are cancelled (also when the
driver died before cancelling), and a job never runs code other than what it was submitted
with -- the runner refuses ("code changed since submission")."""

import importlib
import sys
import time
import warnings

import pytest
from expyre_testutil import local_system, wait_for_file, write_config

import expyre.stale
from expyre.errors import CodeChangedError
from expyre.fingerprint import changed_code, code_digests
from expyre.func import ExPyRe, RemoteJobError, jobs_db
from expyre.localqueue import LocalQueue

ONE_CORE = {"num_cores": 1, "max_time": "10m"}

SLEEPER = """
import time
from pathlib import Path

def op(x, marker_dir):
    Path(marker_dir, f"ran_{VERSION}").write_text("ran")
    time.sleep(SECONDS)
    return x + VERSION
"""


def _write_module(moddir, version, seconds):
    text = SLEEPER.replace("VERSION", str(version)).replace("SECONDS", str(seconds))
    (moddir / "edited_mod.py").write_text(text)
    for cached in (moddir / "__pycache__").glob("edited_mod*"):
        cached.unlink()


@pytest.fixture
def edited_mod(tmp_path, monkeypatch):
    moddir = tmp_path / "mods"
    moddir.mkdir()
    monkeypatch.syspath_prepend(str(moddir))
    _write_module(moddir, version=1, seconds=300)
    yield moddir, importlib.import_module("edited_mod")
    sys.modules.pop("edited_mod", None)


def _reload(moddir, version, seconds):
    _write_module(moddir, version, seconds)
    return importlib.reload(sys.modules["edited_mod"])


def _queue(project):
    return LocalQueue(project / "localqueue" / "local")


def test_stale_live_job_is_cancelled_even_if_the_driver_died_before_cancelling(
    project, edited_mod, tmp_path, monkeypatch
):
    moddir, mod = edited_mod
    old = ExPyRe("op", function=mod.op, args=[1, str(tmp_path)]).start(ONE_CORE, partial_node=True)
    qid = old.remote_id
    wait_for_file(tmp_path / "ran_1")  # running (a job still queued would refuse the edit)
    mod = _reload(moddir, version=2, seconds=0)

    def killed(entries):
        raise SystemExit("driver killed before cancelling")

    real_cancel = expyre.stale._cancel
    monkeypatch.setattr(expyre.stale, "_cancel", killed)
    with pytest.raises(SystemExit):
        ExPyRe("op", function=mod.op, args=[1, str(tmp_path)])
    row = jobs_db().get(old.id)
    assert row["status"] == "stale" and row["info"]["cancel_pending"] is True
    assert _queue(project).state(qid) == "running"  # still holding its core

    monkeypatch.setattr(expyre.stale, "_cancel", real_cancel)
    with pytest.warns(UserWarning, match="1 of them were still queued or running") as caught:
        new = ExPyRe("op", function=mod.op, args=[1, str(tmp_path)])
    assert len([w for w in caught if "code changed" in str(w.message)]) == 1
    deadline = time.monotonic() + 120
    while _queue(project).state(qid) not in ("cancelled", "completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert _queue(project).state(qid) == "cancelled"
    row = jobs_db().get(old.id)
    assert row["queue_state"] == "cancelled" and row["info"]["cancel_pending"] is False
    assert new.start(ONE_CORE, partial_node=True).get_results(timeout=600)[0] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing pending any more: no second warning
        assert ExPyRe("op", function=mod.op, args=[1, str(tmp_path)]).id == new.id


def test_queued_job_refuses_to_run_code_edited_after_submission(project, edited_mod, tmp_path):
    # one core: the blocker holds it, so the job under test waits in the queue while the
    # function is edited
    write_config(project, {"one": local_system(num_cores=1)})
    release = tmp_path / "release"
    blocker = ExPyRe("blocker", function=wait_for_file, args=[str(release)])
    blocker.start(ONE_CORE, system_name="one")
    moddir, mod = edited_mod
    job = ExPyRe("op", function=mod.op, args=[1, str(tmp_path)])
    job.start(ONE_CORE, system_name="one")
    assert _queue_state(project, job) == "queued"
    _reload(moddir, version=2, seconds=0)  # the edit lands while the job waits
    release.write_text("go")
    assert blocker.get_results(timeout=600)[0] == "released"
    with pytest.raises(RemoteJobError) as info:
        job.get_results(timeout=600)
    error = info.value
    assert "code changed since submission" in str(error)
    assert "edited_mod:op" in str(error)
    assert isinstance(error.remote_exception, CodeChangedError)
    assert error.remote_exception.changed == ["edited_mod:op"]
    assert not list(tmp_path.glob("ran_*"))  # neither the old nor the new code ran
    assert job.refresh().status == "failed"


def _queue_state(project, job):
    return LocalQueue(project / "localqueue" / "one").state(job.remote_id)


def test_unchanged_code_and_code_pickled_by_value_are_not_refused(edited_mod):
    _, mod = edited_mod
    digests = code_digests(mod.op)
    assert set(digests) == {"edited_mod:op"}
    assert changed_code(digests) == []
    # functions of the driver's own script travel inside the pickle: they cannot change
    assert changed_code({"__main__:op": "0" * 64, "edited_mod:op.<locals>.f": "0"}) == []
    # a module that no longer has the function: nothing to compare, not a refusal
    assert changed_code({"edited_mod:gone": "0" * 64}) == []
    assert changed_code({"edited_mod:op": "0" * 64}) == ["edited_mod:op"]


def test_methods_properties_and_classes_of_a_module_are_compared_as_recorded():
    import expyre.keys as keys_module

    digests = code_digests(keys_module.job_key, keys_module.JobKey)
    assert "expyre.keys:JobKey.key" in digests  # a property's getter
    assert "expyre.keys:JobKey" in digests
    assert changed_code(digests) == []  # the same code imported again is not "changed"


def test_unchanged_module_files_skip_the_per_function_comparison(edited_mod):
    from expyre.fingerprint import module_file_digests

    moddir, mod = edited_mod
    digests = code_digests(mod.op)
    files = module_file_digests(digests)
    assert set(files) == {"edited_mod"}
    # the file is byte for byte the same: its functions are not parsed again (a wrong
    # function digest shows they are not compared)
    assert changed_code({"edited_mod:op": "0" * 64}, files) == []
    _reload(moddir, version=2, seconds=0)  # the file changed: compared function by function
    assert changed_code(digests, files) == ["edited_mod:op"]
    assert changed_code(digests, {"edited_mod": "0" * 64}) == ["edited_mod:op"]

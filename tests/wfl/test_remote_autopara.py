"""Queued autoparallelize on the embedded local queue (real detached jobs, real jobs DB).

The contract: results are bit-identical to the serial run for any split into jobs
and any pool size inside a job; every failed job is reported; multi-file mapping survives.
"""

import json
import sqlite3
import sys

import cloudpickle
import numpy as np
import pytest
from _wfl_testdata import perturbed_cu_cells
from ase.calculators.emt import EMT
from ase.io import read, write

from wfl.autoparallelize.remote import FAILED_JOB_TAG, QueuedJobsFailed
from wfl.configset import ConfigSet, OutputSpec
from wfl.generate.md import md
from wfl.generate.optimize import optimize
from wfl.map import map as wfl_map

# helpers below are defined in this test module, which jobs cannot import: ship them by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def local_queue(make_local_project):
    """A project scope in tmp_path with a 2-core local queue; returns the expyre root."""
    return make_local_project(cores=2)


def remote_info(n_per_job, pool, job_name="qjob", **extra):
    return {
        "sys_name": "local",
        "job_name": job_name,
        "resources": {"num_cores": 1, "max_time": "10m"},
        "partial_node": True,
        "num_inputs_per_queued_job": n_per_job,
        "env_vars": [f"WFL_NUM_PYTHON_SUBPROCESSES={pool}", "OMP_NUM_THREADS=1"],
        "check_interval": 0.5,
        "timeout": 600,
        **extra,
    }


def jobs_rows(root):
    with sqlite3.connect(root / "jobs.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM jobs ORDER BY name")]


def _optimize(inputs, outputs, autopara_info):
    return optimize(
        inputs, outputs, calculator=(EMT, [], {}), fmax=0.02, steps=30, autopara_info=autopara_info
    )


def _md(inputs, outputs, autopara_info):
    return md(
        inputs,
        outputs,
        calculator=(EMT, [], {}),
        steps=8,
        temperature=600.0,
        traj_step_interval=4,
        rng=np.random.default_rng(7),
        autopara_info=autopara_info,
    )


def _fingerprint(configset):
    """Everything an op produced, as exact bytes: positions, cells and all numeric info/arrays."""
    out = []
    for at in configset:
        out.append(at.positions.tobytes() + at.cell.array.tobytes())
        for k in sorted(at.info):
            if isinstance(at.info[k], float | int | np.ndarray):
                out.append(k.encode() + np.asarray(at.info[k]).tobytes())
        for k in sorted(at.arrays):
            out.append(k.encode() + at.arrays[k].tobytes())
    return out


@pytest.mark.parametrize("op", [_optimize, _md], ids=["optimize", "md"])
@pytest.mark.parametrize("pool", [0, 2])
def test_queued_results_bit_identical_to_serial(local_queue, op, pool):
    configs = perturbed_cu_cells(6, rattle=0.1, seed=3)
    serial = op(ConfigSet(configs), OutputSpec(), {"num_python_subprocesses": 0})
    expected = _fingerprint(serial)
    for n_per_job in [1, 5, -1, -2]:
        queued = op(
            ConfigSet(configs),
            OutputSpec(),
            {
                "num_inputs_per_python_subprocess": 2,
                # every chunking must compute: the item store would reuse the first's items
                "remote_info": remote_info(
                    n_per_job, pool, job_name=f"q{n_per_job}", reuse_items=False
                ),
            },
        )
        assert _fingerprint(queued) == expected, f"num_inputs_per_queued_job={n_per_job}"
    # chunks of items: 1/job -> 6 jobs; 5/job -> [0-4] new, [5] reused from the 1/job run;
    # 2/job -> 3 new; 4/job -> [0-3] new, [4,5] reused: the same call is never run twice
    rows = jobs_rows(local_queue)
    assert len(rows) == 6 + 1 + 3 + 1
    assert all(r["status"] == "processed" and r["n_submissions"] == 1 for r in rows)


def _fail_on(atoms, bad_ids):
    if atoms.info["id"] in bad_ids:
        raise ValueError(f"cannot handle config {atoms.info['id']}")
    atoms.info["mapped"] = True
    return atoms


def test_every_failed_job_is_reported_with_remote_traceback(local_queue):
    configs = perturbed_cu_cells(6)
    info = {"remote_info": remote_info(2, 0, job_name="failing")}
    with pytest.raises(QueuedJobsFailed) as caught:
        wfl_map(ConfigSet(configs), OutputSpec(), _fail_on, args=({1, 4},), autopara_info=info)
    report = str(caught.value)
    assert "2 of 3 queued job(s) failed" in report
    assert "failing_chunk_0" in report and "failing_chunk_2" in report
    assert "failing_chunk_1" not in report
    assert "cannot handle config 1" in report and "cannot handle config 4" in report
    assert "_fail_on" in report  # the remote traceback names the failing function
    for failure in caught.value.failures:
        assert str(local_queue) in failure.stage_dir


def test_ignore_failed_jobs_tags_inputs(local_queue):
    configs = perturbed_cu_cells(6)
    info = {"remote_info": remote_info(2, 0, job_name="tolerant", ignore_failed_jobs=True)}
    out = wfl_map(ConfigSet(configs), OutputSpec(), _fail_on, args=({3},), autopara_info=info)
    results = list(out)
    assert [at.info["id"] for at in results] == [0, 1, 2, 3, 4, 5]
    tagged = [at.info["id"] for at in results if at.info.get(FAILED_JOB_TAG)]
    assert tagged == [2, 3]  # the whole failed chunk, nothing else
    assert all(at.info.get("mapped") for at in results if at.info["id"] not in (2, 3))


def _mark_source(atoms):
    atoms.info["seen_z"] = int(atoms.numbers[0])
    return atoms


def test_multi_file_inputs_map_onto_multi_file_outputs(local_queue, tmp_path):
    from ase.build import bulk

    write(tmp_path / "a.xyz", [bulk("Cu", cubic=True) for _ in range(3)])
    write(tmp_path / "b.xyz", [bulk("Al", cubic=True) for _ in range(4)])
    inputs = ConfigSet(["a.xyz", "b.xyz"], file_root=tmp_path)
    outputs = OutputSpec(["out_a.xyz", "out_b.xyz"], file_root=tmp_path)
    wfl_map(
        inputs,
        outputs,
        _mark_source,
        autopara_info={"remote_info": remote_info(2, 0, job_name="multi")},
    )
    out_a = read(tmp_path / "out_a.xyz", ":")
    out_b = read(tmp_path / "out_b.xyz", ":")
    assert [at.info["seen_z"] for at in out_a] == [29] * 3
    assert [at.info["seen_z"] for at in out_b] == [13] * 4
    assert len(jobs_rows(local_queue)) == 4  # 7 items, 2 per job


def _relax_step(configs):
    """A user's workflow step: the only call WFL_EXPYRE_INFO sends to the queue below."""
    return optimize(ConfigSet(configs), OutputSpec(), calculator=(EMT, [], {}), fmax=0.05)


def _other_step(configs):
    return optimize(ConfigSet(configs), OutputSpec(), calculator=(EMT, [], {}), fmax=0.05)


def test_wfl_expyre_info_sends_only_the_selected_call(local_queue, monkeypatch):
    key = "wfl/test_remote_autopara.py::_relax_step,generate/optimize.py::optimize"
    monkeypatch.setenv("WFL_EXPYRE_INFO", json.dumps({key: remote_info(2, 0, job_name="sel")}))
    configs = perturbed_cu_cells(4, seed=11)
    _other_step(configs)
    assert not (local_queue / "jobs.db").exists() or jobs_rows(local_queue) == []
    queued = _relax_step(configs)
    assert [r["name"] for r in jobs_rows(local_queue)] == ["sel_chunk_0", "sel_chunk_1"]
    local = _other_step(configs)
    assert _fingerprint(queued) == _fingerprint(local)


def _die_first_time(atoms, marker_dir):
    """SIGKILL the job's own process the first time it sees this config (a queue kill)."""
    import os
    import signal
    from pathlib import Path

    marker = Path(marker_dir) / f"seen_{atoms.info['id']}"
    if not marker.exists():
        marker.write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    atoms.info["survived"] = True
    return atoms


def test_killed_jobs_are_resubmitted_by_default(local_queue, tmp_path, capsys):
    """A job killed without a Python exception (here: SIGKILL, no word from the queue) is
    run again by default, one stderr line per resubmission; a policy can refuse that."""
    configs = perturbed_cu_cells(2)
    markers = tmp_path / "markers"
    markers.mkdir()
    info = remote_info(1, 0, job_name="killed", failure_policies={"unknown": "fail"})
    with pytest.raises(QueuedJobsFailed, match=r"2 of 2 queued job\(s\) failed \(unknown\)"):
        wfl_map(
            ConfigSet(configs),
            OutputSpec(),
            _die_first_time,
            args=(str(markers),),
            autopara_info={"remote_info": info},
        )
    for marker in markers.iterdir():
        marker.unlink()
    out = wfl_map(
        ConfigSet(configs),
        OutputSpec(),
        _die_first_time,
        args=(str(markers),),
        autopara_info={"remote_info": remote_info(1, 0, job_name="killed")},
    )
    assert [at.info["survived"] for at in out] == [True, True]
    # per job: 1st run died; rerun reuses the died job (same key), resubmits it (2nd, dies
    # again: markers were removed), resubmits again (3rd, survives)
    assert sorted(r["n_submissions"] for r in jobs_rows(local_queue)) == [3, 3]
    err = capsys.readouterr().err
    assert err.count("unknown; resubmitting unchanged (submission 2 of at most 3)") == 2
    assert err.count("unknown; resubmitting unchanged (submission 3 of at most 3)") == 2
    for row in jobs_rows(local_queue):
        attempts = json.loads(row["info"])["attempts"]
        assert [a["failure_category"] for a in attempts] == ["unknown", "unknown"]


def _always_die(atoms):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def test_attempts_are_bounded_and_listed_in_the_report(local_queue):
    with pytest.raises(QueuedJobsFailed) as caught:
        wfl_map(
            ConfigSet(perturbed_cu_cells(1)), OutputSpec(), _always_die,
            autopara_info={"remote_info": remote_info(1, 0, job_name="doomed")},
        )  # fmt: skip
    text = str(caught.value)
    assert text.count("earlier attempt: ") == 2
    assert "unknown; resubmitting unchanged (submission 3 of at most 3)" in text
    assert "not retried: submitted 3 time(s) already (max_attempts=3)" in text
    (row,) = jobs_rows(local_queue)
    assert row["n_submissions"] == 3 and row["failure_category"] == "unknown"


def test_progress_lines_when_asked(local_queue, monkeypatch, capsys):
    monkeypatch.setenv("WFL_PROGRESS", "1")
    configs = perturbed_cu_cells(3)
    wfl_map(
        ConfigSet(configs),
        OutputSpec(),
        _mark_source,
        autopara_info={"remote_info": remote_info(1, 0, job_name="progress")},
    )
    err = capsys.readouterr().err
    assert "progress: 3/3 done, queued 0  running 0  failed 0" in err


def _fail_while_marked(atoms, marker_dir):
    """Fail for configs whose marker file exists (a transient failure the user then fixes)."""
    from pathlib import Path

    if (Path(marker_dir) / f"fail_{atoms.info['id']}").exists():
        raise RuntimeError(f"transient failure of config {atoms.info['id']}")
    atoms.info["mapped"] = True
    return atoms


def test_ignored_failures_leave_the_operation_incomplete_and_a_rerun_retries_only_them(
    local_queue, tmp_path, capsys
):
    configs = perturbed_cu_cells(6)
    markers = tmp_path / "markers"
    markers.mkdir()
    (markers / "fail_3").write_text("x")
    info = remote_info(2, 0, job_name="retry", ignore_failed_jobs=True)

    def run():
        return wfl_map(
            ConfigSet(configs),
            OutputSpec("mapped.xyz"),
            _fail_while_marked,
            args=(str(markers),),
            autopara_info={"remote_info": info},
        )

    first = list(run())
    assert [bool(at.info.get(FAILED_JOB_TAG)) for at in first] == [0, 0, 1, 1, 0, 0]
    err = capsys.readouterr().err
    assert "2 of 6 items failed" in err and "rerun" in err
    assert (
        not (tmp_path / ".mapped.xyz.wfl-complete.json").exists()
        or json.loads((tmp_path / ".mapped.xyz.wfl-complete.json").read_text()).get("complete")
        is False
    )

    (markers / "fail_3").unlink()  # the user fixes the cause, then reruns the same script
    second = list(run())
    assert all(at.info.get("mapped") for at in second) and len(second) == 6
    assert not any(at.info.get(FAILED_JOB_TAG) for at in second)
    rows = {r["name"]: r for r in jobs_rows(local_queue)}
    assert len(rows) == 3  # the same three jobs: nothing new, nothing twice
    assert {n: r["n_submissions"] for n, r in rows.items()} == {
        "retry_chunk_0": 1,
        "retry_chunk_1": 2,  # only the failed job was submitted again
        "retry_chunk_2": 1,
    }
    assert all(r["status"] == "processed" for r in rows.values())

    capsys.readouterr()
    third = list(run())  # now complete: skipped
    assert "already complete" in capsys.readouterr().err
    assert [at.info["id"] for at in third] == [0, 1, 2, 3, 4, 5]


def _value_unless_marked(value, marker):
    from pathlib import Path

    if Path(marker).exists():
        raise RuntimeError("transient failure")
    return value


def test_single_jobs_that_failed_under_ignore_failed_jobs_are_retried_on_rerun(
    local_queue, tmp_path
):
    """Whole calls as jobs (fits) have the same rule: a rerun retries only the failed call."""
    from wfl.autoparallelize.remoteinfo import RemoteInfo
    from wfl.autoparallelize.single_job import run_as_single_jobs

    marker = tmp_path / "marker"
    marker.write_text("x")
    info = RemoteInfo.from_value(remote_info(1, 0, job_name="whole", ignore_failed_jobs=True))
    calls = [
        (_value_unless_marked, ["a", str(tmp_path / "never")], {}),
        (_value_unless_marked, ["b", str(marker)], {}),
    ]
    assert run_as_single_jobs(calls, info, ["whole_a", "whole_b"]) == ["a", None]
    marker.unlink()
    assert run_as_single_jobs(calls, info, ["whole_a", "whole_b"]) == ["a", "b"]
    assert {r["name"]: r["n_submissions"] for r in jobs_rows(local_queue)} == {
        "whole_a": 1,
        "whole_b": 2,
    }

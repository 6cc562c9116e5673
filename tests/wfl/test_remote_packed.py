"""Queued autoparallelize with packed allocations (RemoteInfo max_allocations) on the local queue.

Packing changes only how chunks are submitted: results stay bit-identical to the serial run
for any packing, each chunk is still a job (key, row, result) of its own, and at most K queue
jobs are used per round of submission.
"""

import sqlite3
import sys

import cloudpickle
import numpy as np
import pytest
from _wfl_testdata import perturbed_cu_cells
from ase.calculators.emt import EMT

from wfl.autoparallelize.remoteinfo import RemoteInfo
from wfl.configset import ConfigSet, OutputSpec
from wfl.generate.optimize import optimize

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def local_queue(make_local_project):
    return make_local_project(cores=2)


def _remote_info(n_per_job, k, job_name):
    return {
        "sys_name": "local",
        "job_name": job_name,
        "resources": {"num_cores": 1, "max_time": "10m"},
        "partial_node": True,
        "num_inputs_per_queued_job": n_per_job,
        "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0", "OMP_NUM_THREADS=1"],
        "check_interval": 0.5,
        "timeout": 600,
        "max_allocations": k,
    }


def _optimize(inputs, autopara_info):
    return optimize(
        inputs,
        OutputSpec(),
        calculator=(EMT, [], {}),
        fmax=0.02,
        steps=30,
        autopara_info=autopara_info,
    )


def _fingerprint(configset):
    out = []
    for at in configset:
        out.append(at.positions.tobytes() + at.cell.array.tobytes())
        for k in sorted(at.info):
            if isinstance(at.info[k], float | int | np.ndarray):
                out.append(k.encode() + np.asarray(at.info[k]).tobytes())
    return out


def _queue_job_count(root):
    jobs = root / "localqueue" / "local" / "jobs"
    return len(list(jobs.iterdir())) if jobs.is_dir() else 0


def _rows(root):
    with sqlite3.connect(root / "jobs.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM jobs ORDER BY name")]


def test_packed_results_bit_identical_to_serial_for_any_packing(local_queue):
    configs = perturbed_cu_cells(6, rattle=0.1, seed=5)
    expected = _fingerprint(_optimize(ConfigSet(configs), {"num_python_subprocesses": 0}))
    queue_jobs = 0
    for n_per_job, k in [(1, 1), (1, 2), (2, 3), (4, 5)]:
        # every packing must compute (the item store would reuse the first one's items)
        remote = {**_remote_info(n_per_job, k, f"pk{n_per_job}_{k}"), "reuse_items": False}
        info = {"remote_info": remote}
        assert _fingerprint(_optimize(ConfigSet(configs), info)) == expected, (n_per_job, k)
        n_chunks = -(-6 // n_per_job)
        new_queue_jobs = _queue_job_count(local_queue) - queue_jobs
        # chunks of the same items are reused from earlier runs (same keys): never more
        # than K queue jobs for what is left, and none at all when nothing is left
        assert new_queue_jobs <= min(k, n_chunks)
        queue_jobs += new_queue_jobs
    rows = _rows(local_queue)
    assert all(r["status"] == "processed" and r["n_submissions"] == 1 for r in rows)
    # 1/job: 6 chunks (reused at k=2); 2/job: 3; 4/job: [0-3] new, [4,5] = a 2/job chunk
    assert len(rows) == 6 + 3 + 1
    # a rerun of a finished packed operation submits nothing
    before = _queue_job_count(local_queue)
    again = _optimize(
        ConfigSet(configs), {"remote_info": {**_remote_info(2, 3, "pk2_3"), "reuse_items": False}}
    )
    assert _fingerprint(again) == expected and _queue_job_count(local_queue) == before


def test_max_allocations_is_checked():
    with pytest.raises(ValueError, match="max_allocations must be None"):
        RemoteInfo("local", "j", {"num_cores": 1, "max_time": "1m"}, max_allocations=0)
    assert RemoteInfo("local", "j", {"num_cores": 1, "max_time": "1m"}).max_allocations is None


def test_allocations_that_never_run_a_chunk_fail_instead_of_repacking_forever(local_queue):
    """An allocation whose environment fails only inside the queue job claims nothing.

    Its chunks come back unclaimed and are packed again; when that happens round after round
    with nothing run, the operation fails with one message saying so, instead of looping.
    The system's ``commands`` fail only where the job script has set ``EXPYRE_NUM_CORES``,
    so the preflight (run outside a job) passes, as a broken module on compute nodes would.
    """
    import json

    from wfl.autoparallelize.remote import QueuedJobsFailed

    config_path = local_queue / "config.json"
    config = json.loads(config_path.read_text())
    config["systems"]["local"]["commands"] = ['[ -z "$EXPYRE_NUM_CORES" ] || exit 3']
    config_path.write_text(json.dumps(config))
    configs = perturbed_cu_cells(2, rattle=0.1, seed=5)
    info = {"remote_info": _remote_info(1, 1, "never_runs")}
    with pytest.raises(QueuedJobsFailed, match="without running any chunk"):
        _optimize(ConfigSet(configs), info)
    assert all(r["status"] == "created" for r in _rows(local_queue))  # a rerun tries again
    assert 2 <= _queue_job_count(local_queue) <= 10

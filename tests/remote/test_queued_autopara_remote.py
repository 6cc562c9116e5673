"""Queued autoparallelize on every configured real system (Slurm, SGE, Slurm over ssh, local).

The same contract as tests/wfl/test_remote_autopara.py on the embedded queue: queued results
are bit-identical to the serial run for positive and negative ``num_inputs_per_queued_job``
and for pools of 0 and 2 inside each job, including MD driven by per-item random generators.
``WFL_PYTEST_EXPYRE_INFO`` (if set) is merged into every RemoteInfo, as users' test instructions expect.
"""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from expyre.func import jobs_db
from wfl.configset import ConfigSet, OutputSpec
from wfl.generate.md import md
from wfl.generate.optimize import optimize

pytestmark = pytest.mark.remote


def _configs(n=5):
    rng = np.random.default_rng(4)
    configs = []
    for i in range(n):
        at = bulk("Cu", cubic=True)
        at.positions += rng.normal(scale=0.1, size=at.positions.shape)
        at.info["id"] = i
        configs.append(at)
    return configs


def _remote_info(sys_name, n_per_job, pool):
    return {
        "sys_name": sys_name,
        "job_name": f"wfl_q{n_per_job}_p{pool}",
        "resources": {"num_cores": 1, "max_time": "10m"},
        "partial_node": True,
        "num_inputs_per_queued_job": n_per_job,
        "env_vars": [f"WFL_NUM_PYTHON_SUBPROCESSES={pool}", "OMP_NUM_THREADS=1"],
        "timeout": 900,
    }


def _run(op, sys_name, n_per_job, pool):
    info = {"num_inputs_per_python_subprocess": 2}
    if sys_name is not None:
        info["remote_info"] = _remote_info(sys_name, n_per_job, pool)
    else:
        info["num_python_subprocesses"] = 0
    kwargs = {"calculator": (EMT, [], {}), "autopara_info": info}
    if op is md:
        kwargs.update(steps=6, temperature=500.0, rng=np.random.default_rng(3))
    else:
        kwargs.update(fmax=0.02, steps=25)
    out = op(ConfigSet(_configs()), OutputSpec(), **kwargs)
    return [(at.positions.tobytes(), at.cell.array.tobytes()) for at in out]


@pytest.mark.parametrize("op", [optimize, md], ids=["optimize", "md"])
def test_queued_bit_identical_on_real_queue(remote_project, sys_name, op):
    serial = _run(op, None, 0, 0)
    for n_per_job, pool in [(1, 0), (5, 2), (-1, 2), (-2, 0)]:
        assert _run(op, sys_name, n_per_job, pool) == serial, (n_per_job, pool)
    rows = jobs_db().select()
    assert rows and all(r["status"] == "processed" for r in rows)
    assert all(r["system"] == sys_name for r in rows)

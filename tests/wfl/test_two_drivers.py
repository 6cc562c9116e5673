"""Two drivers running the same script in one project at the same time: every job is
submitted once, every item computed once, and both drivers finish with the same results.

Real driver processes on the real local queue (and on Slurm with --runremote when the test
config has it); executions are counted inside the jobs: each item appends a line to a file.
"""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _driver_scripts import configs_and_remote_info
from ase.io import read

from expyre.jobsdb import JobsDB

N_ITEMS = 6

DRIVER = textwrap.dedent(
    """
    import json, os, sys, time
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    from ase.build import bulk
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map
    from countmod import counted_scale

    go = float(sys.argv[2])
    while time.time() < go:  # both drivers start their work at the same instant
        time.sleep(0.001)
    CONFIGS_AND_REMOTE_INFO
    result = wfl_map(ConfigSet(configs), OutputSpec("out.xyz"), counted_scale,
                     args=(os.path.join(here, "runs"),), autopara_info={"remote_info": remote_info})
    print(json.dumps([[int(at.info["id"]), at.positions.round(10).tolist()] for at in result]))
    print("DRIVER DONE")
    """
).replace("CONFIGS_AND_REMOTE_INFO", configs_and_remote_info(N_ITEMS, "sys.argv[1]", "twice"))
COUNTMOD = textwrap.dedent(
    """
    import os, time

    def counted_scale(atoms, runs_dir):
        os.makedirs(runs_dir, exist_ok=True)
        with open(os.path.join(runs_dir, str(atoms.info["id"])), "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(1.0)
        atoms.set_cell(atoms.cell * 1.01, scale_atoms=True)
        return atoms
    """
)


@pytest.fixture(params=["local", pytest.param("slurm", marks=pytest.mark.remote)])
def system(request, tmp_path):
    if request.param == "slurm":
        config_dir = os.environ.get("EXPYRE_PYTEST_CONFIG_DIR")
        configured = config_dir and "slurm" in json.loads(
            Path(config_dir, "config.json").read_text()
        ).get("systems", {})
        if not configured:
            pytest.skip("not applicable: no 'slurm' system in the test config")
    root = tmp_path / "_expyre"
    root.mkdir()
    systems = {
        "local": {
            "host": None,
            "scheduler": "local",
            "partitions": {"local": {"num_cores": 2, "max_time": None}},
        }
    }
    if request.param == "slurm":
        config = json.loads(Path(os.environ["EXPYRE_PYTEST_CONFIG_DIR"], "config.json").read_text())
        systems["slurm"] = config["systems"]["slurm"]
    (root / "config.json").write_text(json.dumps({"systems": systems}))
    return request.param


def test_two_drivers_at_once_submit_each_job_once_and_agree(system, tmp_path):
    root = tmp_path / "_expyre"
    env = dict(os.environ, EXPYRE_ROOT=str(root), HOME=str(tmp_path), EXPYRE_DIED_GRACE="5")
    for var in ("WFL_EXPYRE_INFO", "EXPYRE_SYS", "WFL_PROGRESS"):
        env.pop(var, None)
    work = tmp_path / "work"
    work.mkdir()
    (work / "countmod.py").write_text(COUNTMOD)
    (work / "driver.py").write_text(DRIVER)
    go = time.time() + 3.0
    # the same script, from the same directory, twice at once (e.g. started by mistake in two
    # terminals): same jobs, same output file
    drivers = [
        subprocess.Popen(
            [sys.executable, "driver.py", system, str(go)],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outs = [d.communicate(timeout=900) for d in drivers]
    for d, (out, err) in zip(drivers, outs, strict=True):
        assert d.returncode == 0, err
        assert "DRIVER DONE" in out
    runs = {p.name: len(p.read_text().splitlines()) for p in (work / "runs").iterdir()}
    assert runs == {str(i): 1 for i in range(N_ITEMS)}  # every item computed exactly once
    rows = JobsDB(root / "jobs.db").select()
    assert len(rows) == N_ITEMS and all(r["n_submissions"] == 1 for r in rows)
    results = [json.loads(out.splitlines()[-2]) for out, _ in outs]
    assert [r[0] for r in results[0]] == list(range(N_ITEMS))
    assert results[0] == results[1]  # both drivers got the same results
    written = read(work / "out.xyz", ":")
    assert [[int(at.info["id"]), at.positions.round(10).tolist()] for at in written] == results[0]

"""Driver scripts run in a subprocess, for tests that kill the driver and rerun it.

(A plainly named module, not conftest.py: tests import it directly.)

The driver maps ``slow_scale`` over ``n_items`` rattled Cu cells as queued jobs of one item
each on the project's ``local`` system; it prints ``DRIVER DONE`` when the call returns.
Given a directory as its first argument, every start of an item appends a line to
``<dir>/item_<id>``, so a test can count how often each item ran.
"""

import json
import os
import textwrap
from pathlib import Path

_DRIVER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from ase.build import bulk
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    RUNS = Path(sys.argv[1]) if len(sys.argv) > 1 else None

    def slow_scale(atoms, seconds):
        if RUNS is not None:
            # one line per start of this item: a finished item must never start again
            with open(RUNS / f"item_{atoms.info['id']}", "a") as fh:
                fh.write(f"{os.getpid()}\\n")
        time.sleep(seconds)
        atoms.set_cell(atoms.cell * 1.01, scale_atoms=True)
        atoms.info["scaled"] = True
        return atoms

    CONFIGS_AND_REMOTE_INFO
    wfl_map(ConfigSet(configs), OutputSpec("out.xyz"), slow_scale, args=(SECONDS,),
            autopara_info={"remote_info": remote_info})
    print("DRIVER DONE")
    """
)


def configs_and_remote_info(n_items: int, sys_name: str, job_name: str) -> str:
    """Driver code making ``configs`` (``n_items`` rattled Cu cells, ``info["id"]`` = index)
    and ``remote_info`` (one item per queued job of 1 core, polled every 0.3 s).

    ``sys_name`` is Python source (e.g. ``"'local'"`` or ``"sys.argv[1]"``); the code needs
    ``bulk`` from ``ase.build`` imported."""
    return textwrap.dedent(
        f"""
        configs = []
        for i in range({n_items}):
            at = bulk("Cu", cubic=True)
            at.rattle(0.05, seed=i)
            at.info["id"] = i
            configs.append(at)
        remote_info = {{
            "sys_name": {sys_name}, "job_name": {job_name!r}, "partial_node": True,
            "resources": {{"num_cores": 1, "max_time": "10m"}},
            "num_inputs_per_queued_job": 1, "check_interval": 0.3,
            "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0"],
        }}
        """
    )


def write_slow_scale_driver(directory: Path, *, job_name: str, n_items: int, seconds: float):
    """Write ``directory/driver.py``: ``n_items`` items of ``seconds`` s each, as queued jobs
    named ``job_name``."""
    setup = configs_and_remote_info(n_items, "'local'", job_name)
    text = _DRIVER.replace("CONFIGS_AND_REMOTE_INFO", setup).replace("SECONDS", str(seconds))
    (directory / "driver.py").write_text(text)


def subprocess_project(tmp_path: Path, died_grace_s: float | None = 5):
    """A project in ``tmp_path`` with a 2-core ``local`` system, for a driver subprocess.

    Returns ``(tmp_path, root, env)``: ``env`` is this process's environment with the
    project's ``EXPYRE_ROOT`` and a private ``HOME``, without the variables that would choose
    other systems or show progress. ``died_grace_s`` None keeps expyre's default grace.
    """
    root = tmp_path / "_expyre"
    root.mkdir()
    partition = {"num_cores": 2, "max_time": None}
    config = {
        "systems": {
            "local": {"host": None, "scheduler": "local", "partitions": {"local": partition}}
        }
    }
    (root / "config.json").write_text(json.dumps(config))
    env = dict(os.environ, EXPYRE_ROOT=str(root), HOME=str(tmp_path))
    for var in ("WFL_EXPYRE_INFO", "EXPYRE_SYS", "WFL_PROGRESS", "EXPYRE_DIED_GRACE"):
        env.pop(var, None)
    if died_grace_s is not None:
        env["EXPYRE_DIED_GRACE"] = str(died_grace_s)
    return tmp_path, root, env

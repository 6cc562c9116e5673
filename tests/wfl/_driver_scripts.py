"""Driver scripts run in a subprocess, for tests that kill the driver and rerun it.

(A plainly named module, not conftest.py: tests import it directly.)

The driver maps ``slow_scale`` over ``n_items`` rattled Cu cells as queued jobs of one item
each on the project's ``local`` system; it prints ``DRIVER DONE`` when the call returns.
Given a ``runs_dir``, every start of an item appends a line to ``<runs_dir>/item_<id>``, so
a test can count how often each item ran (:func:`executions`).
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

    RUNS = None if RUNS_DIR is None else Path(RUNS_DIR)

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


def configs_and_remote_info(
    n_items: int, sys_name: str, job_name: str, max_allocations: int | None = None
) -> str:
    """Driver code making ``configs`` (``n_items`` rattled Cu cells, ``info["id"]`` = index)
    and ``remote_info`` (one item per queued job of 1 core, polled every 0.3 s; packed into
    ``max_allocations`` allocations when given).

    ``sys_name`` is Python source (e.g. ``"'local'"`` or ``"sys.argv[1]"``); the code needs
    ``bulk`` from ``ase.build`` imported."""
    packing = "" if max_allocations is None else f', "max_allocations": {max_allocations}'
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
            "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0"]{packing},
        }}
        """
    )


def write_slow_scale_driver(
    directory: Path,
    *,
    job_name: str,
    n_items: int,
    seconds: float,
    runs_dir: Path | None = None,
    max_allocations: int | None = None,
):
    """Write ``directory/driver.py``: ``n_items`` items of ``seconds`` s each, as queued jobs
    named ``job_name`` (packed into ``max_allocations`` allocations when given), logging
    each start of an item in ``runs_dir`` when given (the directory is made)."""
    if runs_dir is not None:
        runs_dir.mkdir(exist_ok=True)
    setup = configs_and_remote_info(n_items, "'local'", job_name, max_allocations)
    text = (
        _DRIVER.replace("CONFIGS_AND_REMOTE_INFO", setup)
        .replace("SECONDS", str(seconds))
        .replace("RUNS_DIR", repr(None if runs_dir is None else str(runs_dir)))
    )
    (directory / "driver.py").write_text(text)


def executions(runs_dir: Path) -> dict[int, int]:
    """How many times each item started, from the lines of its file in ``runs_dir``."""
    return {int(p.name.split("_")[1]): len(p.read_text().split()) for p in runs_dir.iterdir()}


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

"""ACE fit with pacemaker (PyPI ``python-ace``), here or as one queued job.

``params`` is pacemaker's ``input.yaml`` content (a dict, YAML text, or a YAML file). wfl fills
in what depends on the data and the run:

- ``data.filename``: the fitting configurations, converted in the job to the pickled pandas
  DataFrame pacemaker reads (columns ``ase_atoms``, ``energy``, ``forces``) from
  ``info[<prefix>energy]`` and ``arrays[<prefix>forces]``;
- ``potential.elements``: the elements present, unless given;
- ``seed``: from ``seed=``, unless given;
- ``backend``: ``{evaluator: pyace, parallel_mode: serial}`` unless given.

Tested backend: ``pyace`` (python-ace 0.4.0rc1's C++ evaluator with scipy BFGS, no
TensorFlow). ``evaluator: tensorpot`` is passed through to pacemaker but is not tested here
(it needs TensorFlow and tensorpotential). The Julia ACE1pack/ACEpotentials fitter is not
supported: it cannot be installed on these machines (no Julia, no Julia registries).

Outputs in ``fit_dir``: ``<ACE_name>.yaml`` (pacemaker's B-basis potential, for
``pyace.PyACECalculator``), ``<ACE_name>.yace`` (for LAMMPS ``pair_style pace``, when
``pace_yaml2yace`` is available), ``<ACE_name>.input.yaml`` and ``<ACE_name>.log.txt``.
The potential predicts ``E - Σ reference_energy``: add the per-element reference energies
back when comparing with total energies (none with ``reference_energy: 0``).
"""

from __future__ import annotations

import copy
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import yaml
from ase import Atoms

from wfl.autoparallelize.single_job import select_single_job_remote_info
from wfl.fit.gap.simple import load_params
from wfl.fit.tasks import (
    FitTask,
    canonical_configs,
    collect_outputs,
    fit_digest,
    run_fit_tasks,
)

ENV_VAR = "WFL_ACE_FIT_REMOTEINFO"
_DATA_FILE = "fitting_data.pkl.gz"


def _find_tool(name: str, explicit: str | None, env_var: str) -> list[str]:
    cmd = explicit or os.environ.get(env_var)
    if cmd:
        return shlex.split(cmd)
    found = shutil.which(name)
    if found:
        return [found]
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return [str(beside_python)]
    raise FileNotFoundError(
        f"{name} was not found on PATH or beside this Python; install it with "
        f"'pip install python-ace==0.4.0rc1' or set {env_var}."
    )


def write_pacemaker_data(configs: list[Atoms], path: Path, ref_property_prefix: str) -> int:
    """Write configurations as pacemaker's gzipped pickled DataFrame; return how many.

    Must run in the Python that runs pacemaker (a DataFrame pickled by another pandas major
    version may not load), which is why a fit job does this itself.
    """
    import pandas as pd

    energy_key, forces_key = f"{ref_property_prefix}energy", f"{ref_property_prefix}forces"
    rows = []
    for i, at in enumerate(configs):
        if energy_key not in at.info or forces_key not in at.arrays:
            raise ValueError(
                f"fitting configuration {i} lacks info[{energy_key!r}] or arrays[{forces_key!r}]; "
                "check ref_property_prefix."
            )
        plain = at.copy()
        energy = plain.info.pop(energy_key)
        forces = plain.arrays.pop(forces_key)
        rows.append({"ase_atoms": plain, "energy": float(energy), "forces": forces})
    pd.DataFrame(rows).to_pickle(path, compression="gzip", protocol=4)
    return len(rows)


def pacemaker_input(params: dict, configs: list[Atoms], seed: int | None) -> dict:
    """pacemaker input.yaml content for these configurations (see module docstring)."""
    params = copy.deepcopy(params)
    params.setdefault("potential", {})
    if not isinstance(params["potential"], dict):
        raise ValueError(
            "ACE params: 'potential' must be a mapping (elements, bonds, functions, ...)."
        )
    elements = sorted({s for at in configs for s in at.get_chemical_symbols()})
    params["potential"].setdefault("elements", elements)
    data = params.setdefault("data", {})
    if "filename" in data:
        raise ValueError("ACE params: data.filename is set by wfl from fitting_configs; remove it.")
    data["filename"] = _DATA_FILE
    if seed is not None:
        params.setdefault("seed", seed)
    params.setdefault("backend", {"evaluator": "pyace", "parallel_mode": "serial"})
    if "fit" not in params:
        raise ValueError("ACE params need a 'fit' section (loss, optimizer, maxiter, ...).")
    return params


def run_pacemaker_here(
    configs: list[Atoms],
    input_params: dict,
    ACE_name: str,  # noqa: N803
    ref_property_prefix: str = "REF_",
    pacemaker_command: str | None = None,
) -> dict:
    """Run pacemaker in the current directory; return its potential files as bytes.

    This is the function a queued ACE fit job runs.
    """
    started = time.time()
    here = Path.cwd()
    write_pacemaker_data(configs, here / _DATA_FILE, ref_property_prefix)
    input_file = here / f"{ACE_name}.input.yaml"
    input_file.write_text(yaml.safe_dump(input_params, sort_keys=False))
    yaml_out, log = f"{ACE_name}.yaml", f"{ACE_name}.log.txt"
    command = [
        *_find_tool("pacemaker", pacemaker_command, "WFL_PACEMAKER_COMMAND"),
        input_file.name,
        "--no-predict",
        "-o",
        yaml_out,
        "-l",
        log,
    ]
    with open(here / "pacemaker.stdout", "w") as out:
        proc = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, text=True, cwd=here)
    stdout = (here / "pacemaker.stdout").read_text(errors="replace")
    if proc.returncode != 0 or not (here / yaml_out).exists():
        tail = "\n".join((proc.stderr.strip().splitlines() or stdout.splitlines())[-15:])
        raise RuntimeError(f"pacemaker failed with exit code {proc.returncode} in {here}:\n{tail}")
    names = [yaml_out, input_file.name, log]
    try:
        converter = _find_tool("pace_yaml2yace", None, "WFL_PACE_YAML2YACE_COMMAND")
    except FileNotFoundError:
        converter = None
    if converter:
        yace = f"{ACE_name}.yace"
        subprocess.run(
            [*converter, yaml_out, "-o", yace], cwd=here, check=True, capture_output=True
        )
        names.append(yace)
    result = collect_outputs(here, names, started)
    result["stdout"] = stdout
    return result


def prepare_ace_fit(
    fitting_configs: Iterable[Atoms],
    ACE_name: str,  # noqa: N803
    params,
    fit_dir: str | os.PathLike = ".",
    ref_property_prefix: str = "REF_",
    seed: int | None = None,
    pacemaker_command: str | None = None,
    name: str | None = None,
) -> FitTask:
    """Describe one ACE fit as a :class:`~wfl.fit.tasks.FitTask` without running it."""
    configs = canonical_configs(fitting_configs)
    input_params = pacemaker_input(load_params(params), configs, seed)
    fit_dir = Path(fit_dir).absolute()
    return FitTask(
        name=name or f"ace_fit_{ACE_name}",
        function=run_pacemaker_here,
        args=(configs, input_params, ACE_name, ref_property_prefix),
        kwargs={"pacemaker_command": pacemaker_command},
        output_path=fit_dir / f"{ACE_name}.yaml",
        digest=fit_digest("pacemaker", [input_params, ref_property_prefix], configs),
        stdout_file=fit_dir / f"{ACE_name}.stdout",
    )


def fit(
    fitting_configs: Iterable[Atoms],
    ACE_name: str,  # noqa: N803 - the name users' scripts pass
    params,
    fit_dir: str | os.PathLike = ".",
    ref_property_prefix: str = "REF_",
    seed: int | None = None,
    pacemaker_command: str | None = None,
    remote_info=None,
    remote_label: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Fit an ACE potential with pacemaker, here or as one queued job.

    Parameters
    ----------
    fitting_configs : ConfigSet or iterable of Atoms
        Configurations with ``info[<prefix>energy]`` (eV) and ``arrays[<prefix>forces]``.
    ACE_name : str
        Base name of the output files in ``fit_dir``.
    params : dict, YAML text or YAML file
        pacemaker input (``potential``, ``fit``, optional ``data.reference_energy``,
        ``backend``); see module docstring for what wfl fills in.
    fit_dir : path, default "."
        Where the outputs are written.
    ref_property_prefix : str, default "REF_"
        Prefix of the reference property keys.
    seed : int, optional
        pacemaker ``seed`` (unless params set one).
    pacemaker_command : str, optional
        Command running pacemaker (default: env ``WFL_PACEMAKER_COMMAND``, else
        ``pacemaker`` on PATH or beside the job's Python).
    remote_info : RemoteInfo, dict or False, optional
        Run as this queued job (default: env ``WFL_ACE_FIT_REMOTEINFO`` or a
        ``WFL_EXPYRE_INFO`` key, else here). False: always here.
    remote_label : str, optional
        Label matched against ``WFL_EXPYRE_INFO`` keys.
    overwrite : bool, default False
        Refit although ``<ACE_name>.yaml`` exists from a fit with other inputs.

    Returns
    -------
    Path
        ``<fit_dir>/<ACE_name>.yaml``. A rerun with the same inputs fits nothing.
    """
    # selected here, not in a helper: WFL_EXPYRE_INFO keys match this frame
    info = (
        None
        if remote_info is False
        else select_single_job_remote_info(ENV_VAR, remote_info, remote_label)
    )
    task = prepare_ace_fit(
        fitting_configs, ACE_name, params, fit_dir, ref_property_prefix, seed, pacemaker_command
    )
    return run_fit_tasks([task], info, overwrite)[0]

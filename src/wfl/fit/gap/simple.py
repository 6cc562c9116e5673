"""A single GAP fit with ``gap_fit`` (PyPI ``quippy-ase``), here or as one queued job.

Parameters are a dict (or YAML text/file) translated to gap_fit's ``key=value`` command line:

>>> gap_fit_argv({"gap": [{"distance_2b": True, "cutoff": 4.0}], "e0": {"Cu": 3.51},
...               "default_sigma": [0.01, 0.1, 0.0, 0.0], "sparse_separate_file": True})
['gap={distance_2b cutoff=4.0}', 'e0={Cu:3.51}', 'default_sigma={0.01 0.1 0.0 0.0}', 'sparse_separate_file=T']

- ``gap``: one descriptor or a list of them, each a dict whose *first* key is the descriptor
  type with value True (``{"soap": True, "l_max": 4, ...}``), or a string used verbatim;
- booleans become ``T``/``F``, lists ``{a b c}``, dicts ``{key:value:key:value}``
  (a list value is joined with ``:``, as gap_fit's ``config_type_sigma`` wants);
- ``gp_file`` is the output potential (default ``gap.xml``, relative to the current
  directory); ``at_file`` is written by wfl from ``fitting_configs`` and must not be given.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml
from ase import Atoms
from ase.io import write

from wfl.autoparallelize.single_job import select_single_job_remote_info
from wfl.fit.tasks import (
    FitTask,
    canonical_configs,
    collect_outputs,
    fit_digest,
    run_fit_tasks,
)

ENV_VAR = "WFL_GAP_SIMPLE_FIT_REMOTEINFO"
DEFAULT_GP_FILE = "gap.xml"
_AT_FILE = "fitting_configs.xyz"
_STDOUT = "gap_fit.stdout"


def load_params(fitting_dict) -> dict:
    """A fresh dict of gap_fit parameters from a dict, a YAML/JSON file path or YAML text."""
    if isinstance(fitting_dict, Mapping):
        return dict(fitting_dict)
    if isinstance(fitting_dict, str | os.PathLike):
        text = str(fitting_dict)
        if Path(text).is_file():
            text = Path(text).read_text()
        value = yaml.safe_load(text)
        if isinstance(value, dict):
            return value
    raise ValueError(
        f"fitting_dict={fitting_dict!r:.80} is neither a dict nor YAML text/a YAML file "
        "holding a mapping; give e.g. {'gap': [{'soap': True, ...}], 'e0': {'Cu': 3.51}}."
    )


def _format_value(value) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, Mapping):
        parts = []
        for k, v in value.items():
            parts.append(str(k))
            if isinstance(v, list | tuple):
                parts.extend(_format_value(x) for x in v)
            else:
                parts.append(_format_value(v))
        return "{" + ":".join(parts) + "}"
    if isinstance(value, list | tuple):
        return "{" + " ".join(_format_value(x) for x in value) + "}"
    return str(value)


def _format_descriptor(desc) -> str:
    if isinstance(desc, str):
        return desc.strip()
    if not isinstance(desc, Mapping) or not desc:
        raise ValueError(f"GAP descriptor {desc!r} must be a non-empty dict or a string.")
    items = list(desc.items())
    kind, flag = items[0]
    if flag is not True:
        raise ValueError(
            f"GAP descriptor {dict(desc)!r}: its first key must be the descriptor type with "
            f"value True, e.g. {{'soap': True, 'l_max': 4}}, not {kind}={flag!r}."
        )
    return " ".join([str(kind)] + [f"{k}={_format_value(v)}" for k, v in items[1:]])


def gap_fit_argv(params: Mapping) -> list[str]:
    """Translate a parameter dict (without ``gp_file``/``at_file``) to gap_fit arguments."""
    argv = []
    for key, value in params.items():
        if key in ("at_file", "gp_file"):
            raise ValueError(f"{key} is set by wfl; remove it from the parameters passed here.")
        if key == "gap":
            descs = value if isinstance(value, list | tuple) else [value]
            argv.append("gap={" + " : ".join(_format_descriptor(d) for d in descs) + "}")
        else:
            argv.append(f"{key}={_format_value(value)}")
    return argv


def find_gap_fit_command(gap_fit_command: str | None = None) -> list[str]:
    """The command running gap_fit: argument, env ``WFL_GAP_FIT_COMMAND``, PATH, or venv bin."""
    cmd = gap_fit_command or os.environ.get("WFL_GAP_FIT_COMMAND")
    if cmd:
        return shlex.split(cmd)
    found = shutil.which("gap_fit")
    if found:
        return [found]
    beside_python = Path(sys.executable).parent / "gap_fit"
    if beside_python.exists():
        return [str(beside_python)]
    raise FileNotFoundError(
        "gap_fit was not found on PATH or beside this Python; install it with "
        "'pip install quippy-ase' or set WFL_GAP_FIT_COMMAND / gap_fit_command."
    )


def _gap_fit_output_names(gp_name: str, directory: Path) -> list[str]:
    return [gp_name] + sorted(p.name for p in directory.glob(f"{gp_name}.sparseX.*"))


def run_gap_fit_here(
    configs: list[Atoms], argv: list[str], gp_name: str, gap_fit_command: str | None = None
) -> dict:
    """Run gap_fit in the current directory; return the potential files as bytes.

    This is the function a queued fit job runs, so it only takes picklable arguments.

    Returns
    -------
    dict
        ``files`` (name -> bytes: the xml and its sparseX files), ``stdout`` (gap_fit's
        output text), ``started``/``finished`` (Unix time, s) and ``host``.
    """
    started = time.time()
    here = Path.cwd()
    write(here / _AT_FILE, configs, format="extxyz")
    command = [
        *find_gap_fit_command(gap_fit_command),
        f"at_file={_AT_FILE}",
        f"gp_file={gp_name}",
        *argv,
    ]
    with open(here / _STDOUT, "w") as out:
        proc = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, text=True, cwd=here)
    stdout = (here / _STDOUT).read_text(errors="replace")
    if proc.returncode != 0 or not (here / gp_name).exists():
        # gap_fit reports errors ("SYSTEM ABORT: ...") on stderr; its stdout is a long echo
        tail = "\n".join((proc.stderr.strip().splitlines() or stdout.splitlines())[-15:])
        raise RuntimeError(f"gap_fit failed with exit code {proc.returncode} in {here}:\n{tail}")
    result = collect_outputs(here, _gap_fit_output_names(gp_name, here), started)
    result["stdout"] = stdout
    return result


def prepare_gap_fit(
    fitting_configs: Iterable[Atoms],
    fitting_dict,
    stdout_file: str | os.PathLike | None,
    gap_fit_command: str | None = None,
    name: str | None = None,
) -> FitTask:
    """Describe one GAP fit as a :class:`~wfl.fit.tasks.FitTask` without running it."""
    params = load_params(fitting_dict)
    gp_file = Path(params.pop("gp_file", DEFAULT_GP_FILE)).absolute()
    params.setdefault("do_copy_at_file", False)  # keeps the xml small; configs are ours
    argv = gap_fit_argv(params)
    configs = canonical_configs(fitting_configs)
    return FitTask(
        name=name or f"gap_fit_{gp_file.stem}",
        function=run_gap_fit_here,
        args=(configs, argv, gp_file.name),
        kwargs={"gap_fit_command": gap_fit_command},
        output_path=gp_file,
        digest=fit_digest("gap_fit", argv, configs),
        stdout_file=None if stdout_file is None else Path(stdout_file).absolute(),
    )


def run_gap_fit(
    fitting_configs: Iterable[Atoms],
    fitting_dict,
    stdout_file: str | os.PathLike | None,
    gap_fit_command: str | None = None,
    remote_info=None,
    remote_label: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Fit a GAP with gap_fit, here or as one queued job, and return the potential file.

    Parameters
    ----------
    fitting_configs : ConfigSet or iterable of Atoms
        Configurations with reference properties (named by ``energy_parameter_name`` etc.
        in the parameters, e.g. ``REF_energy``, ``REF_forces``).
    fitting_dict : dict, YAML text or YAML/JSON file
        gap_fit parameters (see module docstring); ``gp_file`` names the output potential.
    stdout_file : path or None
        Where gap_fit's output is written (None: not kept).
    gap_fit_command : str, optional
        Command running gap_fit (default: env ``WFL_GAP_FIT_COMMAND``, else ``gap_fit``
        on PATH or beside the job's Python).
    remote_info : RemoteInfo, dict, or False, optional
        Run as this queued job; default: env ``WFL_GAP_SIMPLE_FIT_REMOTEINFO`` or a
        matching ``WFL_EXPYRE_INFO`` key, else here. False always runs here.
    remote_label : str, optional
        Label matched against ``WFL_EXPYRE_INFO`` keys.
    overwrite : bool, default False
        Refit even if ``gp_file`` exists from a fit with other parameters/configurations.

    Returns
    -------
    Path
        Absolute path of the potential xml (its sparseX files lie beside it). A rerun with
        the same parameters and configurations returns it without fitting again.
    """
    # selected here, not in a helper: WFL_EXPYRE_INFO keys match this frame
    info = (
        None
        if remote_info is False
        else select_single_job_remote_info(ENV_VAR, remote_info, remote_label)
    )
    task = prepare_gap_fit(fitting_configs, fitting_dict, stdout_file, gap_fit_command)
    return run_fit_tasks([task], info, overwrite)[0]

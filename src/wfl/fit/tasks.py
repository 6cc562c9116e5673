"""Shared machinery of the fitters: a fit as a task that runs here or as one queued job.

Every fit (GAP, ACE, each committee member) is described by a :class:`FitTask`: a picklable,
module-level function plus its arguments that runs the external fitter in the *current
directory* and returns the produced files as bytes. Returning bytes (instead of staging
output files) means the same task works unchanged here, in a local-queue job and in a job on
a cluster reached by ssh: the files come back inside the job's result. The caller then
writes them into place atomically, with a small completion record, so a rerun skips a fit
that is finished and matches, and never mistakes a half-written potential for a finished one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase import Atoms

from expyre.atomicfile import write_atomic
from expyre.fingerprint import code_fingerprint
from expyre.keys import argument_digest
from wfl.configset import LOC_KEY, ConfigSet

RECORD_SUFFIX = ".wfl-fit.json"


@dataclass
class FitTask:
    """One fit: ``function(*args, **kwargs)`` returns a :func:`collect_outputs`-style dict.

    ``output_path`` is the main potential file; the other returned files go beside it.
    ``digest`` identifies the fit's inputs (parameters and configurations).
    """

    name: str
    function: Callable
    args: tuple
    kwargs: dict
    output_path: Path
    digest: str
    stdout_file: Path | None = None
    #: completion record path; default ``.<output name>.wfl-fit.json`` beside the output
    record: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def record_path(self) -> Path:
        return self.record if self.record is not None else record_path(self.output_path)

    @property
    def code(self) -> str:
        """Fingerprint of the fit's code: its function and what that reaches in user code and
        wfl (installed packages by version), as for an operation's completion record."""
        return code_fingerprint(self.function)


def canonical_configs(configs) -> list[Atoms]:
    """Plain copies of the fitting configurations, without calculators or location tags.

    ``configs`` is a ConfigSet, an iterable of Atoms, or a file name/glob (read as a ConfigSet).

    The copies are what a fit job receives and what the fit's digest is computed from, so
    the same structures passed as a file or as a list give the same digest.
    """
    if isinstance(configs, str | os.PathLike):
        configs = ConfigSet(configs)
    out = []
    for at in configs:
        at = at.copy()
        at.calc = None
        at.info.pop(LOC_KEY, None)
        out.append(at)
    if not out:
        raise ValueError("fitting_configs is empty; give at least one configuration to fit.")
    return out


def fit_digest(fitter: str, params: Any, configs: Sequence[Atoms]) -> str:
    """Digest of a fit's identity: fitter name, parameters and configurations."""
    return argument_digest({"fitter": fitter, "params": params, "configs": list(configs)})


def record_path(output_path: Path) -> Path:
    """Path of the completion record of the potential at ``output_path``."""
    return output_path.parent / f".{output_path.name}{RECORD_SUFFIX}"


def finished_output(task: FitTask, overwrite: bool = False) -> Path | None:
    """Return ``task.output_path`` if that fit is already finished with the same inputs.

    Raises
    ------
    ValueError
        If the potential exists but was made from different parameters or configurations
        (and ``overwrite`` is False).
    """
    if overwrite or not task.output_path.exists():
        return None
    rec = task.record_path
    if not rec.exists():
        warnings.warn(
            f"{task.output_path} exists without a wfl completion record (made elsewhere); "
            "reusing it as it is.",
            stacklevel=3,
        )
        return task.output_path
    record = json.loads(rec.read_text())
    if record.get("digest") != task.digest:
        what = "different parameters or fitting configurations"
    elif record.get("code", task.code) != task.code:  # records before code was kept: reuse
        what = "different code (the fit function, a function it calls, or an installed package)"
    else:
        return task.output_path
    raise ValueError(
        f"{task.output_path} was fitted with {what} than this call; pass overwrite=True to "
        f"refit, or delete it (and its {rec.name}) or choose another output name."
    )


def collect_outputs(directory: Path, names: Iterable[str], started: float) -> dict:
    """Read the fit's files as bytes, plus timing, for returning from a (job) function."""
    files = {}
    for name in names:
        path = directory / name
        if path.is_file():
            files[name] = path.read_bytes()
    return {
        "files": files,
        "started": started,
        "finished": time.time(),
        "host": os.uname()[1],
        # set by expyre's job script: tells which queued job (if any) made these files
        "job_id": os.environ.get("EXPYRE_JOB_ID"),
    }


def write_outputs(task: FitTask, result: dict, stdout_text: str | None = None) -> Path:
    """Write a task's returned files beside ``task.output_path``, main file last, then record.

    Everything is written under temporary names and renamed, so an interruption never leaves
    a finished-looking potential.
    """
    out = task.output_path
    out.parent.mkdir(parents=True, exist_ok=True)
    main_name = out.name
    files = dict(result["files"])
    for name in files:
        if Path(name).name != name:
            raise RuntimeError(f"fit {task.name} returned a file name with a directory: {name}")
    if main_name not in files:
        raise RuntimeError(f"fit {task.name} returned no {main_name}; got {sorted(files)}")
    ordered = [n for n in files if n != main_name] + [main_name]
    for name in ordered:
        write_atomic(out.parent / name, files[name])
    if task.stdout_file is not None and stdout_text is not None:
        task.stdout_file.parent.mkdir(parents=True, exist_ok=True)
        task.stdout_file.write_text(stdout_text)
    record = {
        "digest": task.digest,
        "code": task.code,
        "files": ordered,
        "started": result.get("started"),
        "finished": result.get("finished"),
        "host": result.get("host"),
        "job_id": result.get("job_id"),
    }
    write_atomic(task.record_path, json.dumps(record, indent=1))
    return out


def run_in_fresh_dir(function: Callable, *args, **kwargs) -> Any:
    """Call ``function`` inside a new temporary directory (removed afterwards)."""
    cwd = os.getcwd()
    tmpdir = tempfile.mkdtemp(prefix="wfl_fit_")
    try:
        os.chdir(tmpdir)
        return function(*args, **kwargs)
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmpdir, ignore_errors=True)


def run_fit_tasks(tasks: Sequence[FitTask], info=None, overwrite: bool = False) -> list[Path]:
    """Run fits here or as queued jobs (all submitted together), and write their outputs.

    Parameters
    ----------
    tasks : list of FitTask
        Fits to run; those already finished with the same inputs are skipped.
    info : RemoteInfo or None
        None runs the fits here, one after another. The public fit function selects it
        itself with ``select_single_job_remote_info`` (called directly from it, so that
        ``WFL_EXPYRE_INFO`` keys such as ``"gap/simple.py::run_gap_fit"`` match the
        innermost frame).
    overwrite : bool
        Refit even if a finished potential with another fit's inputs exists.

    Returns
    -------
    list of Path
        The potential files, in the order of ``tasks``.
    """
    paths: list[Path | None] = [finished_output(t, overwrite) for t in tasks]
    todo = [i for i, p in enumerate(paths) if p is None]
    if not todo:
        return paths  # type: ignore[return-value]

    if info is None:
        results = [
            run_in_fresh_dir(tasks[i].function, *tasks[i].args, **tasks[i].kwargs) for i in todo
        ]
    else:
        from wfl.autoparallelize.single_job import run_as_single_jobs

        calls = [(tasks[i].function, tasks[i].args, tasks[i].kwargs) for i in todo]
        results = run_as_single_jobs(calls, info, [tasks[i].name for i in todo])

    failed = []
    for i, result in zip(todo, results, strict=True):
        if result is None:
            failed.append(tasks[i].name)
            continue
        # the fits that did finish are written first, so a rerun redoes only the failed ones
        paths[i] = write_outputs(tasks[i], result, result.get("stdout"))
    if failed:
        raise RuntimeError(
            f"fit(s) {', '.join(failed)} failed in their queued jobs (ignore_failed_jobs hid the "
            "error); the other fits are saved. See the job's stderr with 'xpr ls --status "
            "failed,died -l', then rerun: only the failed fits are submitted again."
        )
    return paths  # type: ignore[return-value]


def read_record(output_path: str | os.PathLike) -> dict:
    """The completion record of a finished fit (digest, files, start/end timestamps in s)."""
    return json.loads(record_path(Path(output_path)).read_text())

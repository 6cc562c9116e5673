"""The files of one job's stage directory: what goes in before a run, what comes out after.

Layout (names from :mod:`expyre.runner`)::

    _expyre_call.pkl     cloudpickle of {"function", "args", "kwargs"}
    _expyre_meta.json    job id, name, the driver's import path (see driver_sys_path),
                         digests of the job's code
    <input files>        copied, relative paths kept (absolute ones by base name)
    _expyre_job.sh       the job script
    _expyre_result.pkl   written by the runner (see there)
    _expyre_job.stdout / .stderr
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cloudpickle

from expyre import allocation, runner
from expyre.atomicfile import write_atomic
from expyre.errors import RemoteJobError
from expyre.failure import Diagnosis, categorise

__all__ = [
    "StagingBatch",
    "active_batch",
    "copy_output_files",
    "diagnose",
    "failure_error",
    "forget_outputs",
    "read_code_digests",
    "read_record",
    "read_text",
    "remove_inputs",
    "staged_name",
    "staging_batch",
    "write_call",
]

STDERR_TAIL_LINES = 30


def staged_name(name: str | Path) -> Path:
    """Where an input file lands inside the stage directory (relative path)."""
    path = Path(name)
    return Path(path.name) if path.is_absolute() else path


def write_call(
    stage_dir: Path,
    *,
    job_id: str,
    job_name: str,
    function: Callable,
    args: list,
    kwargs: dict,
    input_files: Iterable[str],
    base_dir: str,
    code_digests: dict[str, str] | None = None,
    durable: bool = True,
) -> list[Path]:
    """Create the stage directory (mode 0700) with the pickled call and the input files.

    ``code_digests`` (:attr:`expyre.keys.JobKey.code_digests`) lets the runner refuse to run
    when the code it imports is no longer the code the job was submitted with. With
    ``durable=False`` the files are not flushed to disk: the caller syncs them (with those of
    other jobs, :class:`StagingBatch`) before it records the job as staged.

    Returns
    -------
    list of Path
        The call and metadata files written.

    Raises
    ------
    ValueError
        If the function or its arguments cannot be pickled.
    """
    stage_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in input_files:
        src, dst = Path(base_dir, name), stage_dir / staged_name(name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=False)
        else:
            shutil.copy2(src, dst)
    try:
        call = cloudpickle.dumps({"function": function, "args": args, "kwargs": kwargs})
    except Exception as exc:
        raise ValueError(
            f"job {job_name!r}: the function or its arguments cannot be pickled ({exc!r}); "
            "pass picklable arguments (e.g. a (CalculatorClass, args, kwargs) tuple)"
        ) from exc
    write_atomic(stage_dir / runner.CALL_FILE, call, durable=durable)
    meta = {"job_id": job_id, "name": job_name, **driver_sys_path(stage_dir)}
    if code_digests:
        from expyre.fingerprint import module_file_digests

        meta["code"] = code_digests
        meta["code_files"] = module_file_digests(code_digests)
    write_atomic(stage_dir / runner.META_FILE, json.dumps(meta).encode(), durable=durable)
    return [stage_dir / runner.CALL_FILE, stage_dir / runner.META_FILE]


_ROWS_PER_TRANSACTION = 500


class StagingBatch:
    """Jobs staged without a flush each, recorded as staged together after one sync.

    A job's row says ``staged`` only once its call is on disk for good: a driver killed (or
    a power cut) before :meth:`finish` leaves rows that are not staged, and the next run
    stages those jobs again. Use :func:`staging_batch`.
    """

    def __init__(self) -> None:
        self.jobs: list[Any] = []
        self.files: list[Path] = []

    def add(self, job: Any, files: Iterable[Path]) -> None:
        """A job (:class:`expyre.func.ExPyRe`) whose ``files`` were written, not yet synced."""
        self.jobs.append(job)
        self.files.extend(files)

    def finish(self) -> None:
        """Sync every staged file, then mark all the jobs staged in one transaction per
        jobs database."""
        from expyre.atomicfile import sync_files

        sync_files(self.files)
        by_db: dict[int, list[Any]] = {}
        for job in self.jobs:
            by_db.setdefault(id(job._db), []).append(job)
        for jobs in by_db.values():
            # a few hundred rows per transaction: the new rows of 10,000 jobs are never all
            # held beside the old ones
            for start in range(0, len(jobs), _ROWS_PER_TRANSACTION):
                some = jobs[start : start + _ROWS_PER_TRANSACTION]
                rows = some[0]._db.update_many([job.id for job in some], info={"staged": True})
                for job in some:
                    job._row = rows[job.id]
        self.jobs, self.files = [], []


_batch = threading.local()


def active_batch() -> StagingBatch | None:
    """The batch jobs created now are staged into (None: each job syncs its own files)."""
    return getattr(_batch, "current", None)


@contextmanager
def staging_batch() -> Iterator[StagingBatch]:
    """Stage the jobs created inside the block with one sync for all of them.

    For an operation creating many jobs at once: a thousand jobs cost one filesystem flush
    and one database transaction instead of a thousand of each. The jobs are ``staged`` (can
    be submitted) only once the block ends normally; nested blocks join the outer one.
    """
    if active_batch() is not None:
        yield active_batch()
        return
    batch = _batch.current = StagingBatch()
    try:
        yield batch
        batch.finish()
    finally:
        _batch.current = None


def driver_sys_path(stage_dir: Path) -> dict[str, list[str]]:
    """The driver's import path as a job needs it, without tying the job to this place.

    ``sys_path``: entries outside the project (e.g. from ``PYTHONPATH`` or a script's
    ``sys.path.insert``), absolute; ``sys_path_in_project``: entries inside the project
    directory (the driver script's own directory, usually), relative to it, so a job staged
    before the project was moved or copied imports the modules of the project it runs in,
    not of where the project used to be. The interpreter's own directories are left out:
    the job's python has its own, and another environment's compiled modules must not leak
    into it.
    """
    from expyre.dbpaths import project_dir

    project = project_dir(stage_dir.resolve().parent.parent)
    outside, inside = _split_sys_path(tuple(sys.path), str(project))
    return {"sys_path": list(outside), "sys_path_in_project": list(inside)}


@functools.lru_cache(maxsize=8)
def _split_sys_path(path: tuple[str, ...], project: str) -> tuple[tuple[str, ...], ...]:
    """:func:`driver_sys_path` of one ``sys.path`` and project, worked out once (resolving
    every entry is ~10 ms, and an operation stages a thousand jobs with the same path)."""
    own = {os.path.realpath(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}}
    outside, inside = [], []
    for entry in path:
        if not entry:
            continue
        real = os.path.realpath(entry)
        if any(real == p or real.startswith(p.rstrip("/") + "/") for p in own):
            continue
        if real == project or real.startswith(project.rstrip("/") + "/"):
            inside.append(os.path.relpath(real, project))
        else:
            outside.append(entry)
    return tuple(outside), tuple(inside)


def read_code_digests(stage_dir: Path) -> dict[str, str]:
    """The code digests a staged job recorded ({} if none or unreadable)."""
    try:
        return dict(json.loads((stage_dir / runner.META_FILE).read_text()).get("code") or {})
    except (OSError, ValueError, TypeError):
        return {}


def read_text(stage_dir: Path, name: str) -> str:
    """Text of a file in the stage directory, "" if missing."""
    try:
        return (stage_dir / name).read_text(errors="replace")
    except OSError:
        return ""


def read_record(stage_dir: Path) -> dict | None:
    """The runner's result record, or None while there is none (or it is being replaced)."""
    path = stage_dir / runner.RESULT_FILE
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, EOFError, pickle.UnpicklingError):
        return None


def load_value(stage_dir: Path, record: dict, job_id: str) -> Any:
    """Unpickle a successful record's value.

    Raises
    ------
    RuntimeError
        If the value cannot be unpickled here (e.g. its class is not importable).
    """
    try:
        return cloudpickle.loads(record["value_pickle"])
    except Exception as exc:
        raise RuntimeError(
            f"job {job_id}: its result cannot be unpickled here ({exc!r}); the result is in "
            f"{stage_dir / runner.RESULT_FILE}"
        ) from exc


def diagnose(stage_dir: Path, queue_state: str | None) -> Diagnosis:
    """Why the job staged in ``stage_dir`` failed (see :mod:`expyre.failure`).

    Parameters
    ----------
    stage_dir : Path
        The job's stage directory, with what came back from the run.
    queue_state : str or None
        The queue's last word on the job (a QueueState value, or ``"vanished"``).
    """
    stderr = read_text(stage_dir, runner.STDERR_FILE)
    return categorise(
        queue_state=queue_state,
        record=read_record(stage_dir),
        runner_started=(stage_dir / runner.STARTED_FILE).exists(),
        stderr="\n".join(stderr.splitlines()[-200:]),
    )


def failure_error(
    stage_dir: Path,
    record: dict | None,
    *,
    job_id: str,
    job_name: str,
    queue_state: str | None,
    diagnosis: Diagnosis | None = None,
) -> RemoteJobError:
    """The RemoteJobError describing a failed record, or a job that died without one.

    ``diagnosis`` is the stored category of the failure; computed here when not given.
    """
    stderr = read_text(stage_dir, runner.STDERR_FILE)
    diagnosis = diagnosis or diagnose(stage_dir, queue_state or "vanished")
    traceback_text = (record or {}).get("traceback") or ""
    if traceback_text.strip() and traceback_text.rstrip() in stderr:
        # the runner printed the traceback last; the report shows it on its own, so the tail
        # is the job's output before it (a long traceback would otherwise push it all out)
        head, _, after = stderr.rpartition(traceback_text.rstrip())
        stderr = head + after
    common = {
        "job_id": job_id,
        "job_name": job_name,
        "stage_dir": str(stage_dir),
        "stderr_tail": "\n".join(stderr.splitlines()[-STDERR_TAIL_LINES:]),
        "failure_category": diagnosis.category,
        "failure_reason": diagnosis.reason,
    }
    if record is None:
        return RemoteJobError(**common, queue_state=queue_state or "vanished", ended="died")
    exc = None
    if record.get("exception_pickle"):
        try:
            exc = cloudpickle.loads(record["exception_pickle"])
        except Exception:
            exc = None  # class not importable here: the repr and traceback still tell
    stage = record.get("stage")
    message = None if stage == "call" else f"(failed while: {stage})"
    if stage == "load":
        message = (
            "the job could not load its pickled call; make the function's module importable "
            "where the job runs (install it there, or export PYTHONPATH in the system's "
            "'commands' in config.json)"
        )
    elif stage == "code check":
        message = (
            "the job did not run: its code was edited after it was submitted (see below); "
            "rerunning the script submits a new job for the edited code"
        )
    return RemoteJobError(
        **common,
        queue_state=queue_state,
        remote_exception_repr=record.get("exception_repr"),
        remote_traceback=record.get("traceback"),
        remote_exception=exc,
        message=message,
        ended="raised" if stage == "call" else "refused",
    )


def copy_output_files(stage_dir: Path, patterns: Iterable[str], out_dir: str | None) -> None:
    """Copy files matching glob ``patterns`` (relative to the stage dir) into ``out_dir``."""
    if not out_dir:
        return
    for pattern in patterns:
        for src in sorted(stage_dir.glob(pattern)):
            dst = Path(out_dir, src.relative_to(stage_dir))
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)


def forget_outputs(stage_dir: Path) -> None:
    """Delete what a previous run left (before running the job again).

    Also the claim and done marker a packed allocation left (:mod:`expyre.allocation`):
    a chunk still claimed would never be run by a new allocation, and an old done marker
    would make its old result look new. Only for a run that is over (a job in a final
    state): a live allocation's claim is what keeps a chunk from running twice.
    """
    for name in (runner.RESULT_FILE, runner.STARTED_FILE, runner.STDOUT_FILE, runner.STDERR_FILE):
        (stage_dir / name).unlink(missing_ok=True)
    shutil.rmtree(stage_dir / allocation.CLAIM_DIR, ignore_errors=True)
    (stage_dir / allocation.DONE_FILE).unlink(missing_ok=True)


def inputs_to_remove(
    stage_dir: Path, input_files: Iterable[str], output_patterns: Iterable[str]
) -> list[Path]:
    """The staged call and input copies that exist, leaving results, logs and output files."""
    keep = {runner.RESULT_FILE, runner.STDOUT_FILE, runner.STDERR_FILE, runner.SCRIPT_FILE}
    keep |= {str(p.relative_to(stage_dir)) for pat in output_patterns for p in stage_dir.glob(pat)}
    paths = []
    for name in [*input_files, runner.CALL_FILE]:
        rel = staged_name(name)
        path = stage_dir / rel
        if str(rel) not in keep and (path.exists() or path.is_symlink()):
            paths.append(path)
    return paths


def remove_inputs(
    stage_dir: Path, input_files: Iterable[str], output_patterns: Iterable[str]
) -> None:
    """Delete the staged call and input copies, keeping results, logs and output files."""
    for path in inputs_to_remove(stage_dir, input_files, output_patterns):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

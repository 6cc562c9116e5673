"""What runs inside a job: ``python -m expyre.runner JOB_DIR``.

Load the pickled call, run it, write the outcome atomically, exit with a meaningful code:

* 0 -- the function returned; ``_expyre_result.pkl`` holds the value;
* 1 -- the function raised; the result file holds the exception's repr, its traceback text
  and (if it pickles) the exception itself;
* 2 -- the call could not be loaded, its code changed since submission, or the result could
  not be written (same file format, describing that problem).

Functions from importable modules are pickled by reference: the job imports their code when
it starts. When the job recorded digests of its code at submission, the runner compares them
with the code it imported and refuses to run if any differs
(:class:`expyre.errors.CodeChangedError`), instead of computing with other code under the old
code's key. Only then does it import anything heavier from expyre (the check needs
:mod:`expyre.fingerprint`); otherwise a job only needs ``cloudpickle``, this file and
:mod:`expyre.atomicfile` (standard library only).

The result file is a plain pickle of a dict whose payload (value or exception) is a nested
cloudpickle byte string, so the repr and traceback can always be read back even when the
payload cannot be unpickled on the driver's side.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from expyre.atomicfile import write_atomic

CALL_FILE = "_expyre_call.pkl"
META_FILE = "_expyre_meta.json"
RESULT_FILE = "_expyre_result.pkl"
STARTED_FILE = "_expyre_started"
SCRIPT_FILE = "_expyre_job.sh"
STDOUT_FILE = "_expyre_job.stdout"
STDERR_FILE = "_expyre_job.stderr"

EXIT_OK, EXIT_RAISED, EXIT_RUNNER_ERROR = 0, 1, 2


def failure_record(exc: BaseException, stage: str) -> dict[str, Any]:
    """Result dict describing an exception raised during ``stage`` ("call", "load", ...)."""
    import cloudpickle

    try:
        payload = cloudpickle.dumps(exc)
    except Exception:  # an exception holding unpicklable state: keep its text only
        payload = None
    return {
        "ok": False,
        "stage": stage,
        "exception_repr": repr(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "exception_pickle": payload,
        "host": socket.gethostname(),
        "finished_at": time.time(),
    }


def run(job_dir: str | os.PathLike, project_dir: str | os.PathLike | None = None) -> int:
    """Run the call staged in ``job_dir``; returns the exit code (see module docstring).

    ``project_dir`` is the project the job belongs to, when it runs on the driver's machine
    (the driver's modules inside the project are imported from there).
    """
    job_dir = Path(job_dir).resolve()
    os.chdir(job_dir)
    result_path = job_dir / RESULT_FILE
    # not flushed: it only tells when and where the run started (a power cut that loses it
    # loses the run too); the result file below is what must survive
    write_atomic(
        job_dir / STARTED_FILE,
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "at": time.time()}).encode(),
        durable=False,
    )
    try:
        import cloudpickle

        meta = _read_meta(job_dir)
        _extend_sys_path(meta, Path(project_dir) if project_dir else None)
        call = pickle.loads((job_dir / CALL_FILE).read_bytes())
        function, args, kwargs = call["function"], call["args"], call["kwargs"]
    except BaseException as exc:  # noqa: BLE001 - anything here must be reported, not lost
        write_atomic(result_path, pickle.dumps(failure_record(exc, "load")))
        traceback.print_exc()
        return EXIT_RUNNER_ERROR

    if meta.get("code"):
        try:
            _check_code(meta["code"], meta.get("code_files"))
        except BaseException as exc:  # noqa: BLE001 - a refusal is this job's result
            write_atomic(result_path, pickle.dumps(failure_record(exc, "code check")))
            print(f"expyre runner: {exc}", file=sys.stderr)
            return EXIT_RUNNER_ERROR

    try:
        value = function(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - the user's exception is the job's result
        write_atomic(result_path, pickle.dumps(failure_record(exc, "call")))
        traceback.print_exc()
        return EXIT_RAISED

    try:
        record = {
            "ok": True,
            "value_pickle": cloudpickle.dumps(value),
            "host": socket.gethostname(),
            "finished_at": time.time(),
        }
        write_atomic(result_path, pickle.dumps(record))
    except BaseException as exc:  # noqa: BLE001
        wrapped = RuntimeError(f"the function returned a value that cannot be pickled: {exc!r}")
        write_atomic(result_path, pickle.dumps(failure_record(wrapped, "save")))
        traceback.print_exc()
        return EXIT_RUNNER_ERROR
    return EXIT_OK


def _read_meta(job_dir: Path) -> dict:
    try:
        meta = json.loads((job_dir / META_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _check_code(recorded: dict[str, str], files: dict[str, str] | None) -> None:
    """Raise CodeChangedError if code the call imported differs from its submission's."""
    try:
        from expyre.errors import CodeChangedError
        from expyre.fingerprint import changed_code
    except ImportError as exc:  # this job can run without expyre; then it cannot check
        print(f"expyre runner: code not checked ({exc})", file=sys.stderr)
        return
    changed = changed_code(recorded, files)
    if changed:
        raise CodeChangedError(changed)


def _extend_sys_path(meta: dict, project: Path | None = None) -> None:
    """Make the driver's modules importable: append its sys.path entries that exist here.

    Functions from importable user modules are pickled by reference; when the job runs on
    the same filesystem as the driver (host null, shared home) this finds them. Entries
    inside the project are relative to it, and used only when the job script names the
    project (``--project-dir``, given for jobs on the driver's machine: the project where
    it is at submission, moved or copied). Appended, never prepended, so the job's own
    environment wins.
    """
    entries = list(meta.get("sys_path", []))
    if project is not None:
        entries += [str(project / rel) for rel in meta.get("sys_path_in_project", [])]
    for entry in entries:
        if entry and entry not in sys.path and os.path.isdir(entry):
            sys.path.append(entry)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m expyre.runner JOB_DIR [--project-dir DIR]``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--project-dir"):
        print("usage: python -m expyre.runner JOB_DIR [--project-dir DIR]", file=sys.stderr)
        return EXIT_RUNNER_ERROR
    return run(argv[0], argv[2] if len(argv) == 3 else None)


if __name__ == "__main__":
    sys.exit(main())

"""Partial results: what a job finished before it failed or was killed.

A function running inside a job may save results of its parts as they finish
(:func:`save_partial`), each part atomically in a file of its own under
``_expyre_partial/`` in the job directory. The directory comes back with the job's other
files, so after a failure the driver reads what was finished (:func:`load_partial`), and a
job run again (resubmitted after a time limit, say) starts from there instead of from
scratch: the files stay when a job is reset for another run.

Parts are identified by integer positions chosen by the function (wfl: the item's position
in the job's chunk). Only this module and ``cloudpickle`` are needed inside the job.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

__all__ = ["PARTIAL_DIR", "load_partial", "save_partial"]

#: directory, inside the job directory, holding the saved parts
PARTIAL_DIR = "_expyre_partial"


def save_partial(job_dir: str | os.PathLike, values: dict[int, Any]) -> None:
    """Save finished parts atomically: a reader sees all of ``values`` or none of them.

    Parameters
    ----------
    job_dir : path-like
        The job directory (where the runner started the function).
    values : dict
        Position -> value (any picklable value; pickled with cloudpickle).
    """
    if not values:
        return
    import cloudpickle

    from expyre.runner import write_atomic

    directory = Path(job_dir) / PARTIAL_DIR
    directory.mkdir(exist_ok=True)
    first = min(values)
    write_atomic(directory / f"part_{first:08d}.pkl", cloudpickle.dumps(dict(values)))


def load_partial(job_dir: str | os.PathLike) -> dict[int, Any]:
    """The parts saved in ``job_dir`` (position -> value); unreadable files are skipped.

    A file is only ever seen whole (written under another name and renamed), so an
    unreadable one is a value whose class cannot be imported here: that part is computed
    again rather than lost silently.
    """
    directory = Path(job_dir) / PARTIAL_DIR
    out: dict[int, Any] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("part_*.pkl")):
        try:
            out.update(pickle.loads(path.read_bytes()))
        except Exception:  # noqa: BLE001, S110 - not loadable here: recomputed, see docstring
            continue
    return out

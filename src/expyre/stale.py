"""Jobs made stale by edited code: cancel those still in a queue, and say so once.

A job is stale when the same call is made again by other code (its function, or something
the function reaches, was edited). It can never be used, so while it is still queued or
running it only holds cores that the new jobs wait for: it is cancelled. The jobs database
marks a live job ``cancel_pending`` in the same transaction that makes it stale, so a driver
killed before the cancel went through leaves a mark the next run finds and finishes.

One operation (e.g. a ``map`` over 200 items) can make many jobs stale at once. Inside
:func:`stale_jobs_report` the jobs are collected, cancelled with one scheduler command per
system, and reported in ONE warning naming the functions whose code changed; outside it,
each new job reports its own stale jobs.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from expyre import stagedir
from expyre.jobsdb import JobsDB
from expyre.system import SystemCommandError, get_system

if TYPE_CHECKING:
    from expyre.config import ProjectConfig

__all__ = ["StaleReport", "stale_jobs_report"]


class StaleReport:
    """Stale jobs found while creating jobs: what changed, and which must be cancelled."""

    def __init__(self) -> None:
        self.changed: set[str] = set()  # "module:qualname" whose code differs
        self.unnamed: set[str] = set()  # jobs whose old code was not recorded (by job name)
        self.stale_ids: set[str] = set()
        self.to_cancel: dict[str, tuple[dict, JobsDB, ProjectConfig]] = {}

    def add(
        self,
        job_name: str,
        stale_rows: list[dict],
        new_digests: dict[str, str],
        db: JobsDB,
        config: ProjectConfig,
    ) -> None:
        """Record the stale rows found when creating job ``job_name``."""
        for row in stale_rows:
            if row["id"] in self.stale_ids:
                continue
            self.stale_ids.add(row["id"])
            old = stagedir.read_code_digests(Path(row["stage_dir"]))
            diff = {n for n in set(old) | set(new_digests) if old.get(n) != new_digests.get(n)}
            if old and new_digests and diff:
                self.changed |= diff
            else:
                self.unnamed.add(job_name)
            if row["info"].get("cancel_pending"):
                self.to_cancel[row["id"]] = (row, db, config)

    def finish(self, stacklevel: int = 3) -> None:
        """Cancel the collected live stale jobs and issue the one warning (if any stale)."""
        if not self.stale_ids:
            return
        cancelled, failures = _cancel(list(self.to_cancel.values()))
        what = sorted(self.changed)
        named = ", ".join(what[:5]) + (f" and {len(what) - 5} more" if len(what) > 5 else "")
        if self.unnamed:
            jobs = ", ".join(sorted(self.unnamed)[:3]) + ("..." if len(self.unnamed) > 3 else "")
            unnamed = f"the function (or one it calls) of job(s) {jobs}"
            named = f"{named}; {unnamed}" if named else unnamed
        message = (
            f"code changed: {named}. {len(self.stale_ids)} earlier job(s) for the same "
            "call(s) were made by the old code, so they are stale (never reused) and new jobs "
            f"are created; {cancelled} of them were still queued or running and were cancelled"
        )
        if failures:
            message += f"; {len(failures)} could not be cancelled ({failures[0]})"
        message += ". `xpr ls --status stale` lists stale jobs"
        warnings.warn(message, stacklevel=stacklevel)
        self.__init__()


def _cancel(entries: list[tuple[dict, JobsDB, ProjectConfig]]) -> tuple[int, list[str]]:
    """Cancel live stale jobs, one scheduler command per system; (count, failure texts)."""
    by_system: dict[tuple[str, str], list[tuple[dict, JobsDB, ProjectConfig]]] = {}
    for row, db, config in entries:
        by_system.setdefault((str(db.path), row["system"] or ""), []).append((row, db, config))
    cancelled, failures = 0, []
    for (_, system_name), group in by_system.items():
        _, db, config = group[0]
        try:
            system = get_system(system_name or None, config)
            ids = {}
            packed = [e for e in group if (e[0]["remote_id"] or "").startswith("pack:")]
            group = [e for e in group if e not in packed]
            for row, _, _ in packed:
                if _claim_packed(system, row):
                    db.update(row["id"], queue_state="cancelled", info={"cancel_pending": False})
                    cancelled += 1
                else:
                    db.update(row["id"], info={"cancel_pending": False})
                    failures.append(
                        f"job {row['id']} already runs inside an allocation shared with other "
                        "jobs, so it finishes (its result is never used)"
                    )
            for row, _, _ in group:
                remote_id = row["remote_id"] or _find(system, row["id"])
                if remote_id is not None:
                    ids[row["id"]] = remote_id
            if ids:
                try:
                    system.cancel(sorted(set(ids.values())))
                except SystemCommandError:
                    # some cancel commands fail for jobs that already ended; only live ones matter
                    alive = {
                        i
                        for i, s in system.queue_states(list(ids.values())).items()
                        if not s.is_finished
                    }
                    if alive:
                        raise
        except (SystemCommandError, OSError, ValueError) as exc:
            failures.append(f"system {system_name!r}: {exc}; the next run tries again")
            continue
        for row, _, _ in group:
            db.update(row["id"], queue_state="cancelled", info={"cancel_pending": False})
            cancelled += 1
    return cancelled, failures


def _claim_packed(system, row: dict) -> bool:
    """Keep a packed chunk from ever running: take its claim before an allocation does.

    Its allocations also run other chunks, so they are not cancelled; claiming the chunk
    (the same atomic ``mkdir`` an allocation uses) makes every allocation skip it. False if
    an allocation claimed it first (it is running or ran).
    """
    from expyre.allocation import CLAIM_DIR

    try:
        system.run(
            ["mkdir", "--", f"{row['remote_dir']}/{CLAIM_DIR}"],
            what="keep a stale packed job from running",
            retry=False,
        )
    except SystemCommandError:
        return False
    return True


def _find(system, job_id: str) -> str | None:
    try:
        return system.find_by_name(job_id)
    except (NotImplementedError, SystemCommandError):
        return None


_ACTIVE = threading.local()


def active_report() -> StaleReport | None:
    """The report of the innermost :func:`stale_jobs_report` of this thread, if any."""
    stack = getattr(_ACTIVE, "stack", None)
    return stack[-1] if stack else None


@contextmanager
def stale_jobs_report() -> Iterator[StaleReport]:
    """Collect the stale jobs of every ExPyRe created inside; cancel and warn once at exit.

    Examples
    --------
    >>> with stale_jobs_report():                                 # doctest: +SKIP
    ...     jobs = [ExPyRe(f"item{i}", function=f, args=[i]) for i in range(200)]
    """
    stack = getattr(_ACTIVE, "stack", None)
    if stack is None:
        stack = _ACTIVE.stack = []
    report = StaleReport()
    stack.append(report)
    try:
        yield report
    finally:
        stack.pop()
        report.finish(stacklevel=4)

"""One Python function call as a restartable queued job: :class:`ExPyRe`.

Life of a job::

    job = ExPyRe("relax", function=f, args=[atoms], input_files=["POTCARs"])
    job.start(resources={"num_cores": 1, "max_time": "1h"}, partial_node=True)
    value, stdout, stderr = job.get_results()      # re-raises a remote exception
    job.mark_processed()

Constructing an ExPyRe computes the call's key (:mod:`expyre.keys`). With
``try_restart_from_prev`` an existing job with the same key is reused -- whatever state it
is in -- so rerunning an interrupted script never submits a job twice. A job for the same
call made by *different code* is never reused: it is marked ``stale``, cancelled if it is
still queued or running, and a warning names the functions whose code changed (one warning
per :func:`expyre.stale.stale_jobs_report` block, e.g. per wfl operation).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import posixpath
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from expyre import runner, stagedir
from expyre.atomicfile import write_atomic
from expyre.attempts import attempt_record, request_summary
from expyre.config import ProjectConfig, load_config
from expyre.dbpaths import project_dir, to_stored
from expyre.envvars import check_environment
from expyre.errors import (
    ExPyReJobDiedError,
    ExPyReTimeoutError,
    JobDiedError,
    JobNotReady,
    RemoteJobError,
)
from expyre.failure import diagnosis_from_info, failure_info
from expyre.jobscript import build_job_script, job_selection
from expyre.jobsdb import FINAL_STATES, LIVE_STATES, IllegalTransition, jobs_db, make_job_id
from expyre.keys import job_key
from expyre.lifecycle import Decision, JobState
from expyre.packing import cancel_packed
from expyre.poll import refresh_jobs, wait_for_jobs
from expyre.preflight import check_system
from expyre.resources import Resources
from expyre.stale import StaleReport, active_report
from expyre.system import System, SystemCommandError, get_system
from expyre.units import parse_time, time_to_sec  # noqa: F401 - 0.1.6 imported it from here

__all__ = [
    "ExPyRe",
    "ExPyReJobDiedError",
    "ExPyReTimeoutError",
    "JobDiedError",
    "JobNotReady",
    "RemoteJobError",
    "jobs_db",
]

# the submit command certainly queued nothing: back to created, so a rerun submits again
_NOT_QUEUED = Decision(
    JobState.CREATED, expect=frozenset({JobState.SUBMITTED}), reason="submission not queued"
)

# A submission recorded without a scheduler id is only presumed lost (and redone) once it
# is this old, seconds: younger, another driver may still be running the submit command.
_SUBMIT_IN_PROGRESS_S = 30.0
# How long to wait for a cancelled stray run (see ExPyRe._stop_stray_run) to leave its
# queue, seconds: schedulers give a cancelled job some time to exit (Slurm's KillWait).
_STRAY_CANCEL_WAIT_S = 120.0


class ExPyRe:
    """One function call run as a queued job (see module docstring).

    Parameters
    ----------
    name : str
        Human-readable job name (becomes part of the job id and scheduler job name).
    function : callable
        The function; pickled with cloudpickle, so functions from ``__main__`` work.
    args, kwargs
        Its arguments (must pickle).
    input_files : list of path-like
        Files or directories copied into the job directory (relative paths keep their
        relative location; absolute ones land under their base name).
    output_files : list of str
        Glob patterns, relative to the job directory, copied back next to where the
        ExPyRe was created when results are collected.
    env_vars : list of str
        ``"NAME=value"`` (shell-expanded at run time) or ``"NAME"`` (copied from here).
    pre_run_commands, post_run_commands : list of str
        Shell lines run before / after the function.
    hash_ignore : list of str
        Argument names left out of the job key.
    try_restart_from_prev : bool
        Reuse an existing job with the same key (default True).

    Attributes
    ----------
    id : str
    name : str
    status : str
        Last known state (refresh with :meth:`refresh`).
    stage_dir : Path
        Local directory holding the staged call, script, outputs and logs.
    """

    def __init__(
        self,
        name: str,
        *,
        function: Callable,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        input_files: Iterable[str | os.PathLike] = (),
        output_files: Iterable[str] = (),
        env_vars: Iterable[str] = (),
        pre_run_commands: Iterable[str] = (),
        post_run_commands: Iterable[str] = (),
        hash_ignore: Iterable[str] = (),
        try_restart_from_prev: bool = True,
    ) -> None:
        if not callable(function):
            raise TypeError(f"ExPyRe {name!r}: function={function!r} is not callable")
        args, kwargs = list(args), dict(kwargs or {})
        input_files = [str(f) for f in input_files]
        check_environment()  # a bad variable is an error now, not after the queue wait
        self._config = load_config()
        self._db = jobs_db(self._config)
        base_dir = os.getcwd()
        key = job_key(
            function, args, kwargs, input_files=input_files, hash_ignore=hash_ignore,
            base_dir=base_dir,
        )  # fmt: skip
        job_id = make_job_id(name)
        info = {
            "input_files": input_files,
            "output_files": [str(f) for f in output_files],
            "output_dir": base_dir,
            "env_vars": [str(v) for v in env_vars],
            "pre_run_commands": [str(c) for c in pre_run_commands],
            "post_run_commands": [str(c) for c in post_run_commands],
            "staged": False,
        }
        row, reused, stale = self._db.create_or_reuse(
            {
                "id": job_id,
                "name": name,
                "key": key.key,
                "call_digest": key.call_digest,
                "code_fingerprint": key.code_fingerprint,
                "stage_dir": str(self._config.stage_root / job_id),
                "info": info,
            },
            reuse=try_restart_from_prev,
        )
        self._row = row
        if stale:
            report = active_report()
            if report is None:  # not inside an operation's report: this job is the operation
                report = StaleReport()
                report.add(name, stale, key.code_digests, self._db, self._config)
                report.finish(stacklevel=3)
            else:
                report.add(name, stale, key.code_digests, self._db, self._config)
        if not reused or (row["status"] == "created" and not row["info"].get("staged")):
            self._stage(function, args, kwargs, input_files, base_dir, key.code_digests)

    # ------------------------------------------------------------------ basic attributes

    @classmethod
    def from_jobsdb(
        cls, db_jobs: dict | Iterable[dict], config: ProjectConfig | None = None
    ) -> list[ExPyRe]:
        """ExPyRe objects for existing jobs-database rows (no key computed, nothing staged).

        Parameters
        ----------
        db_jobs : dict or iterable of dict
            Rows from :meth:`expyre.jobsdb.JobsDB.select` / ``get``, or from
            ``expyre.config.db.jobs()``.
        config : ProjectConfig, optional
            The project the rows belong to (default: the current one).

        Returns
        -------
        list of ExPyRe
            One per row, also for a single row (as expyre-wfl 0.1.6).
        """
        config = config or load_config()
        jobs = []
        for row in [db_jobs] if isinstance(db_jobs, dict) else db_jobs:
            job = cls.__new__(cls)
            job._config, job._db, job._row = config, jobs_db(config), dict(row)
            jobs.append(job)
        return jobs

    @property
    def id(self) -> str:
        return self._row["id"]

    @property
    def name(self) -> str:
        return self._row["name"]

    @property
    def status(self) -> str:
        return self._row["status"]

    @property
    def stage_dir(self) -> Path:
        return Path(self._row["stage_dir"])

    @property
    def remote_id(self) -> str | None:
        return self._row["remote_id"]

    @property
    def system_name(self) -> str | None:
        return self._row["system"]

    @property
    def row(self) -> dict:
        """A copy of the job's database row."""
        return dict(self._row)

    @property
    def config(self) -> ProjectConfig:
        """The project (jobs database, systems) this job belongs to."""
        return self._config

    def refresh(self) -> ExPyRe:
        """Re-read this job's row from the database."""
        row = self._db.get(self.id)
        if row is None:
            raise RuntimeError(f"job {self.id} was deleted from {self._db.path} (xpr rm?)")
        self._row = row
        return self

    @staticmethod
    def refresh_all(jobs: Iterable[ExPyRe]) -> None:
        """:meth:`refresh` many jobs: one query per jobs database, re-reading only the rows
        that changed since each job last read its own.

        Raises
        ------
        RuntimeError
            If a job's row was deleted (as :meth:`refresh`).
        """
        by_db: dict[int, list[ExPyRe]] = {}
        for job in jobs:
            if isinstance(job, ExPyRe):
                by_db.setdefault(id(job._db), []).append(job)
            else:
                job.refresh()  # an object that only looks like a job: its own way
        for group in by_db.values():
            # a row held without its decoded info (or its time) is read again in any case
            seen = {
                job.id: job._row.get("updated_at")
                if isinstance(job._row.get("info"), dict)
                else None
                for job in group
            }
            changed = group[0]._db.changed_rows(seen)
            for job in group:
                if job.id not in changed:
                    continue
                if changed[job.id] is None:
                    job.refresh()  # raises, naming the deleted job
                job._row = dict(changed[job.id])

    def __repr__(self) -> str:
        return f"<ExPyRe {self.id} {self.status}>"

    # ------------------------------------------------------------------ the one state gate

    def apply(self, decision: Decision) -> bool:
        """Write a decision about this job: its new state and columns, in one transaction.

        The move is checked against :data:`expyre.lifecycle.ALLOWED_TRANSITIONS` and
        ``decision.expect``; a job that ends here gets its failure category (from its stage
        dir now) and, if no poll saw it running, the start time its runner wrote.

        Parameters
        ----------
        decision : Decision
            From :func:`expyre.lifecycle.decide`, or an explicit move.

        Returns
        -------
        bool
            False when another driver (or ``xpr``) moved the job first: its word stands, and
            this object shows the state it set.
        """
        if decision.need is not None:
            raise ValueError(f"job {self.id}: undecided, needs {decision.need.value} first")
        fields = dict(decision.fields)
        if decision.to is None:
            if fields:
                self._row = self._db.update(self.id, **fields)
            return True
        reason = decision.reason
        if decision.to != JobState.CREATED and not self._row.get("started_at"):
            # a job that ran between two polls was never seen "started": its runner's own
            # start marker still gives the time it started, for queue-wait and run-time figures
            started = _runner_started_at(self.stage_dir)
            if started is not None:
                fields.setdefault("started_at", started)
        if decision.to in (JobState.FAILED, JobState.DIED):
            # decided once, when the job ends, from what is in its stage dir now: stored, so
            # reports, `xpr ls` and the failure policies all see the same category
            queue_state = fields.get("queue_state", self._row["queue_state"])
            diagnosis = stagedir.diagnose(self.stage_dir, queue_state)
            fields["failure_category"] = diagnosis.category
            fields["info"] = {**fields.get("info", {}), "failure": failure_info(diagnosis)}
            reason = reason or f"{diagnosis.category}: {diagnosis.reason}"
        try:
            self._row = self._db.transition(
                self.id,
                decision.to,
                expect=decision.expect,
                reason=reason,
                move=decision.move,
                **fields,
            )
        except IllegalTransition:
            self.refresh()
            return False
        return True

    def set_remote_id(self, remote_id: str, info: dict | None = None) -> None:
        """Record the scheduler's id of the submitted job (or ``pack:`` ids of its allocations),
        and merge ``info`` (JSON-able) in the same transaction."""
        self._row = self._db.update(
            self.id, remote_id=remote_id, **({"info": info} if info else {})
        )

    @staticmethod
    def begin_submissions(system: System, runs: list[tuple[ExPyRe, str, dict]]) -> list[ExPyRe]:
        """:meth:`begin_submission` of many jobs of one project in one transaction.

        Parameters
        ----------
        system : System
            Where they are submitted.
        runs : list of (ExPyRe, str, dict)
            Each job, the directory it runs in there, and ``info`` to merge with it.

        Returns
        -------
        list of ExPyRe
            The jobs whose submission is recorded now (not those another driver took).
        """
        if not runs:
            return []
        fields_of = {
            job.id: {
                "system": system.name,
                "remote_dir": job.stored_run_dir(system, job_dir),
                "info": info,
            }
            for job, job_dir, info in runs
        }
        rows = runs[0][0]._db.begin_submissions(fields_of)
        taken = []
        for job, _, _ in runs:
            if rows[job.id] is None:
                job.refresh()
            else:
                job._row = dict(rows[job.id])
                taken.append(job)
        return taken

    @staticmethod
    def set_remote_ids(jobs: list[ExPyRe], remote_id: str) -> None:
        """:meth:`set_remote_id` of many jobs of one project, in one transaction."""
        if not jobs:
            return
        rows = jobs[0]._db.update_many([job.id for job in jobs], remote_id=remote_id)
        for job in jobs:
            job._row = dict(rows[job.id])

    def begin_submission(self, system: System, job_dir: str, resubmit: bool = False) -> bool:
        """Record "being submitted" before the submit command runs (exactly once).

        Parameters
        ----------
        system : System
            Where it is submitted.
        job_dir : str
            The directory it runs in there.
        resubmit : bool
            Also from ``submitted`` without a scheduler id (a driver died mid-submit).

        Returns
        -------
        bool
            False when another driver submitted it first (this object shows its state).
        """
        row = self._db.begin_submission(
            self.id,
            allow_resubmit=resubmit,
            system=system.name,
            remote_dir=self.stored_run_dir(system, job_dir),
        )
        if row is None:
            self.refresh()
            return False
        self._row = row
        return True

    def forget(self) -> None:
        """Delete the job's row from the jobs database (its directories must be gone)."""
        self._db.delete(self.id)

    # ------------------------------------------------------------------ staging

    def _stage(self, function, args, kwargs, input_files, base_dir, code_digests) -> None:
        batch = stagedir.active_batch()
        files = stagedir.write_call(
            self.stage_dir,
            job_id=self.id,
            job_name=self.name,
            function=function,
            args=args,
            kwargs=kwargs,
            input_files=input_files,
            base_dir=base_dir,
            code_digests=code_digests,
            durable=batch is None,
        )
        if batch is not None:
            batch.add(self, files)  # recorded staged once the batch has synced its files
        else:
            self._row = self._db.update(self.id, info={"staged": True})

    # ------------------------------------------------------------------ submitting

    def start(
        self,
        resources: Resources | dict,
        system_name: str | None = None,
        header_extra: Iterable[str] = (),
        exact_fit: bool = True,
        partial_node: bool = False,
        python_cmd: str | None = None,
        force_rerun: bool = False,
    ) -> ExPyRe:
        """Submit the job, unless it is already submitted, running or finished.

        Parameters
        ----------
        resources : Resources or dict
            What the job needs (a dict is passed to :class:`Resources`).
        system_name : str, optional
            System from config.json (default: ``EXPYRE_SYS`` / the default system).
        header_extra : list of str
            Extra scheduler header lines, ``str.format``-ed like the config's ``header``.
        exact_fit, partial_node : bool
            Partition selection rules, see :func:`expyre.resources.select_partition`.
        python_cmd : str, optional
            Python that runs this job, instead of the system's ``python_cmd`` (shell words,
            e.g. ``"/opt/py311/bin/python3 -X faulthandler"``). Kept with the job, so a
            resubmission uses it too. It is checked like the system's before the first
            submission (it must import this version of ``expyre`` and ``wfl``).
        force_rerun : bool
            Submit again even if a previous run of this job exists (it is cancelled if live).

        Returns
        -------
        ExPyRe
            self, for chaining.
        """
        resources = Resources.coerce(resources)
        self.refresh()
        if self.status in ("stale", "cleaned"):
            raise RuntimeError(
                f"job {self.id} is {self.status} and cannot be started; create a new ExPyRe"
            )
        if force_rerun and self.status != "created":
            if self.status in LIVE_STATES:
                self.cancel()
            self.reset_for_rerun("run again (force_rerun)")
        resubmit = False
        if self.status == "submitted" and not self.remote_id:
            if self._recover_lost_submission():
                return self
            resubmit = True
        elif self.status != "created":
            return self  # submitted, running or finished already: reuse, never resubmit
        if not self._row["info"].get("staged"):
            raise RuntimeError(
                f"job {self.id} has no staged call (stage dir {self.stage_dir}); it cannot be "
                "submitted -- remove it with `xpr rm` and create it again"
            )
        if python_cmd is not None:
            if not isinstance(python_cmd, str) or not python_cmd.strip():
                raise ValueError(
                    f"job {self.id}: python_cmd={python_cmd!r} is not a command; give the "
                    "python to run the job with, e.g. python_cmd='python3', or leave it out "
                    "to use the system's python_cmd"
                )
            self.update_info({"python_cmd": python_cmd})
        system = get_system(system_name, self._config)
        self._submit(system, resources, header_extra, exact_fit, partial_node, resubmit)
        return self

    def resubmit(
        self,
        reason: str,
        resources: Resources | dict,
        system_name: str | None = None,
        header_extra: Iterable[str] = (),
        exact_fit: bool = True,
        partial_node: bool = False,
    ) -> ExPyRe:
        """Run a finished (failed or died) job again, possibly with a different request.

        The attempt and its reason are recorded: in the job's state history (``xpr show``)
        and in its ``info["attempts"]``; the request is kept in ``info["resources"]`` so a
        rerun of the driver keeps using it.

        Parameters
        ----------
        reason : str
            Why (e.g. which failure policy raised which limit).
        resources : Resources or dict
            The request for the new submission (a dict is stored as given).
        system_name, header_extra, exact_fit, partial_node
            As for :meth:`start`.
        """
        if self.prepare_rerun(reason, resources):
            self.start(resources, system_name, header_extra, exact_fit, partial_node)
        return self

    def prepare_rerun(
        self, reason: str, resources: Resources | dict | None = None, info: dict | None = None
    ) -> bool:
        """Record why a finished (failed or died) job runs again, and send it back to created.

        The first half of :meth:`resubmit`, for a caller that submits the job itself (packed
        with others, :func:`expyre.packing.start_packed`). The attempt is recorded as by
        :meth:`resubmit`; a dict ``resources`` is kept in ``info["resources"]``, and other
        ``info`` keys (JSON-able) are merged in the same transaction.

        Returns
        -------
        bool
            False if another driver resubmitted the job meanwhile (it is live: leave it).
        """
        extra = dict(info or {})
        if isinstance(resources, dict):
            extra["resources"] = resources
        self.record_attempt(reason, extra or None)
        self.refresh()
        if self.status in LIVE_STATES:
            return False  # another driver resubmitted it already
        self.reset_for_rerun(reason)
        return True

    def reset_for_rerun(self, reason: str) -> None:
        """Back to ``created`` for another run: the last failure no longer describes the job
        (it stays in ``info["attempts"]`` and the state history).

        A run the queue still lists (the job was declared ended while the queue briefly did
        not show it) is cancelled first: two runs of one job in one directory would mix
        their files and do the work twice.

        Parameters
        ----------
        reason : str
            Why, for the state history.
        """
        self._stop_stray_run()
        self._row = self._db.reset(self.id, reason=reason)
        self._row = self._db.update(self.id, failure_category=None, info={"failure": None})
        stagedir.forget_outputs(self.stage_dir)

    def record_attempt(self, reason: str, info: dict | None = None) -> None:
        """Append ``reason`` to the job's ``info["attempts"]`` (and merge ``info``).

        Parameters
        ----------
        reason : str
            What was decided about the job, for ``xpr show`` and failure reports.
        info : dict, optional
            Other ``info`` keys to set in the same transaction.
        """
        self.refresh()
        attempts = list(self._row["info"].get("attempts", []))
        attempts.append(attempt_record(self._row, reason))
        self.update_info({**(info or {}), "attempts": attempts})

    def update_info(self, info: dict) -> None:
        """Merge ``info`` (JSON-able) into the job's ``info`` record."""
        self._row = self._db.update(self.id, info=info)

    def _submit(
        self, system: System, resources: Resources, header_extra, exact_fit, partial_node, resubmit
    ) -> None:
        job_dir, request = self.prepare_run_dir(
            system, resources, header_extra, exact_fit, partial_node
        )
        if not self.begin_submission(system, job_dir, resubmit=resubmit):
            return  # another driver submitted it between our refresh and now
        try:
            remote_id = system.submit(posixpath.join(job_dir, runner.SCRIPT_FILE), job_dir)
        except SystemCommandError:
            remote_id = self._find_in_queue(system)
            if remote_id is None:
                self.apply(_NOT_QUEUED)
                raise
        self.set_remote_id(remote_id, info={"request": request})

    def stored_run_dir(self, system: System, job_dir: str) -> str:
        """How the database keeps a run directory: relative to the root when it is on this
        machine inside the project (a local rundir such as ``runs``), so it moves with the
        project; a directory on another machine stays as it is."""
        if not system.is_local:
            return job_dir
        return to_stored(job_dir, self._db.root, "project") or job_dir

    def prepare_run_dir(
        self,
        system: System,
        resources: Resources,
        header_extra,
        exact_fit,
        partial_node,
        durable: bool = True,
    ) -> tuple[str, dict]:
        """Write the job script and stage the job's directory to where it runs.

        Shared by a submission of its own and by packing (:mod:`expyre.packing`), so a chunk
        runs the same script either way. ``durable=False`` leaves flushing the script to
        disk to the caller (packing syncs all its chunks' scripts at once before submitting).

        Returns
        -------
        (str, dict)
            The job directory where it runs, and what the submission asks the scheduler for
            (:func:`expyre.attempts.request_summary`, to store in ``info["request"]``).
        """
        job_dir = system.job_dir(self.id, self.stage_dir, self._db.project_id)
        info = self._row["info"]
        python_cmd = info.get("python_cmd") or system.config.python_cmd
        # what this submission asks for: kept with the job so that every attempt's request
        # can be shown later (xpr show, xpr report)
        request = request_summary(
            job_selection(system.config, system.scheduler, resources, exact_fit, partial_node)
        )
        script = build_job_script(
            dataclasses.replace(system.config, python_cmd=python_cmd),
            system.scheduler,
            job_id=self.id,
            job_dir=job_dir,
            resources=resources,
            exact_fit=exact_fit,
            partial_node=partial_node,
            header_extra=header_extra,
            env_vars=info.get("env_vars", []),
            pre_run_commands=info.get("pre_run_commands", []),
            post_run_commands=info.get("post_run_commands", []),
            # where the project is at this submission (it may have moved or been copied
            # since the job was staged): the job imports the project's modules from there
            runner_args=["--project-dir", str(project_dir(self._db.root))]
            if system.is_local
            else [],
        )
        script_path = self.stage_dir / runner.SCRIPT_FILE
        write_atomic(script_path, script.encode(), durable=durable)
        script_path.chmod(0o700)
        if job_dir != str(self.stage_dir) and self._row["n_submissions"] > 0:
            # no result of an earlier run may leak into this one
            system.remove_dir(job_dir, self._db.project_id)
        # once per system and python per process: a wrong python fails here, clearly
        check_system(system, python_cmd=python_cmd)
        system.stage_in(self.stage_dir, job_dir)
        return job_dir, request

    def _find_in_queue(self, system: System) -> str | None:
        try:
            return system.find_by_name(self.id)
        except (NotImplementedError, SystemCommandError):
            return None

    def _recover_lost_submission(self) -> bool:
        """A driver died between recording "submitted" and recording the scheduler id.

        Look for the job in the queue by its name (= job id). Returns True if found (the id
        is recorded); False when it is certainly not queued and must be submitted again.
        """
        system = get_system(self.system_name, self._config)
        while True:
            remote_id = self._find_in_queue(system)
            if remote_id is not None:
                self.set_remote_id(remote_id)
                return True
            age = time.time() - (self._row["submitted_at"] or 0)
            if age >= _SUBMIT_IN_PROGRESS_S:
                return False
            time.sleep(min(2.0, _SUBMIT_IN_PROGRESS_S - age))
            self.refresh()
            if self.remote_id or self.status != "submitted":
                return True

    # ------------------------------------------------------------------ results

    def get_results(
        self,
        timeout: float | str | None = 3600,
        check_interval: float | None = None,
        sync: bool = True,
        sync_all: bool = True,
        force_sync: bool = False,
        quiet: bool = False,
        verbose: bool = False,
    ) -> tuple[Any, str, str]:
        """Wait for the job and return ``(value, stdout, stderr)``.

        Parameters
        ----------
        timeout : float, str or None
            Longest wait: seconds, or a time such as ``"2h"``; 0 checks once without
            waiting; None (or a negative number) waits as long as the job is alive in its
            queue.
        check_interval : float, optional
            Seconds between status polls; None adapts (~1 s for young jobs, up to 30 s).
        sync, sync_all, force_sync, quiet, verbose : bool
            Accepted for scripts written for expyre-wfl 0.1.6 and ignored: every poll asks
            the queue about all of a system's jobs in one command and copies a finished
            job's files back once, so there is nothing left for them to choose.

        Raises
        ------
        RemoteJobError
            If the function raised (remote traceback attached) or the job died.
        JobNotReady
            If the job is not finished within ``timeout``.
        """
        if isinstance(timeout, int | float) and timeout < 0:
            timeout = None  # expyre-wfl 0.1.6's spelling of "no limit"
        elif isinstance(timeout, str):
            timeout = parse_time(timeout, "get_results timeout")
        if self.status not in FINAL_STATES:
            for _ in wait_for_jobs([self], timeout=timeout, check_interval=check_interval):
                pass
        return self._collect()

    def _collect(self) -> tuple[Any, str, str]:
        if self.status not in FINAL_STATES:
            raise JobNotReady(f"job {self.id} is {self.status}, not finished")
        record = stagedir.read_record(self.stage_dir)
        if record is None or not record.get("ok"):
            raise stagedir.failure_error(
                self.stage_dir,
                record,
                job_id=self.id,
                job_name=self.name,
                queue_state=self._row["queue_state"],
                diagnosis=diagnosis_from_info(self._row["info"]),
            )
        value = stagedir.load_value(self.stage_dir, record, self.id)
        info = self._row["info"]
        stagedir.copy_output_files(
            self.stage_dir, info.get("output_files", []), info.get("output_dir")
        )
        stdout = stagedir.read_text(self.stage_dir, runner.STDOUT_FILE)
        return value, stdout, stagedir.read_text(self.stage_dir, runner.STDERR_FILE)

    # ------------------------------------------------------------------ bookkeeping

    def mark_processed(self) -> None:
        """Record that the job's outcome was consumed (succeeded/failed/died -> processed)."""
        self.refresh()
        if self.status == "processed":
            return
        self._row = self._db.transition(self.id, "processed", expect=FINAL_STATES)

    def cancel(self, verbose: bool = False) -> None:
        """Cancel the job in its queue (if live) and record it as died ("cancelled").

        A stale or died job that its queue still lists as waiting or running is cancelled
        there too; its recorded state stays.

        ``verbose`` is accepted for scripts written for expyre-wfl 0.1.6 and ignored
        (``EXPYRE_TIMING_VERBOSE=1`` traces every queue command instead).
        """
        self.refresh()
        if self.status not in LIVE_STATES:
            if self._queue_state_if_queued() is not None:
                # stale or declared dead, yet its queue still runs it: nobody will ever use
                # its result, and it holds cores (its state stays as recorded)
                get_system(self.system_name, self._config).cancel([self.remote_id])
            return
        system = get_system(self.system_name, self._config)
        remote_id = self.remote_id or self._find_in_queue(system)
        if remote_id is not None and remote_id.startswith("pack:"):
            cancel_packed(self, system)
        elif remote_id is not None:
            try:
                system.cancel([remote_id])
            except SystemCommandError:
                # finished jobs make some cancel commands fail; only a live job is a problem
                state = system.queue_states([remote_id]).get(remote_id)
                if state is not None and not state.is_finished:
                    raise
        # False when it finished (or was handled by someone else) meanwhile: that stands
        self.apply(
            Decision(
                JobState.DIED,
                {"queue_state": "cancelled"},
                reason="cancelled through expyre (ExPyRe.cancel / xpr cancel)",
            )
        )

    def _stop_stray_run(self) -> None:
        """Cancel a run of this ended job that its queue still lists; wait until it is gone.

        Raises
        ------
        RuntimeError
            If the queue still runs it after :data:`_STRAY_CANCEL_WAIT_S`.
        """
        if self.status != "died" or self._row["queue_state"] not in (None, "vanished"):
            # a job with a result, or one its queue or accounting reported ended, is over;
            # only "left the queue without a word" can be a queue that briefly lost sight
            # of it (this keeps resubmitting many jobs from asking the queue about each)
            return
        if self._queue_state_if_queued() is None:
            return
        system = get_system(self.system_name, self._config)
        remote_id = self.remote_id
        deadline = time.monotonic() + _STRAY_CANCEL_WAIT_S
        # it may have ended meanwhile (the cancel then fails): the queue's answer decides
        with contextlib.suppress(SystemCommandError):
            system.cancel([remote_id])
        while True:
            state = system.status([remote_id]).get(remote_id)
            if state is None or state.is_finished:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"job {self.id} is {self.status} here but still {state.value} in the queue "
                    f"({remote_id}@{self.system_name}) after cancelling it; it is not run "
                    "again beside itself -- try again once the queue lets it go"
                )
            time.sleep(1.0)

    def _queue_state_if_queued(self):
        """The queue's state of a stale or died job it still lists as waiting or running.

        None when the job is in another state, was never queued, or its queue says it
        ended. Jobs in these two states are out of every driver's view, so only the
        queue can tell whether they still run (and would write into their directories).
        """
        if self.status not in ("stale", "died") or not (self.remote_id and self.system_name):
            return None
        if self.remote_id.startswith("pack:"):
            # a chunk runs inside allocations shared with other chunks: its claim, not the
            # queue, says whether it runs (expyre.packing)
            return None
        system = get_system(self.system_name, self._config)
        state = system.queue_states([self.remote_id]).get(self.remote_id)
        return state if state is not None and not state.is_finished else None

    def clean(
        self,
        wipe: bool = False,
        dry_run: bool = False,
        remote_only: bool = False,
        verbose: bool = False,
    ) -> list[str]:
        """Delete the job's files.

        Parameters
        ----------
        wipe : bool
            False: delete the remote run directory (if separate) and the staged inputs, keep
            the result and logs. True: delete the local stage directory too and mark the job
            ``cleaned`` (its results are gone).
        dry_run : bool
            Only print (and return) what would be deleted; nothing changes.
        remote_only : bool
            Delete only the run directory on the system where the job ran (when it is not
            the local stage directory); local files and the job's state stay.
        verbose : bool
            Print each deletion.

        Returns
        -------
        list of str
            What was (with ``dry_run``: would be) deleted, one description per item.

        Raises
        ------
        RuntimeError
            If the job is still queued or running (cancel it first), including a stale or
            died job that its queue still runs.
        """
        self.refresh()
        if self.status in LIVE_STATES:
            raise RuntimeError(f"job {self.id} is {self.status}; cancel() it before clean()")
        state = self._queue_state_if_queued()
        if state is not None:
            raise RuntimeError(
                f"job {self.id} is {self.status} but still {state.value} in the queue "
                f"({self.remote_id}@{self.system_name}); cancel() it before clean()"
            )
        actions: list[tuple[str, Callable[[], None]]] = []
        remote_dir = self._row["remote_dir"]
        if remote_dir and remote_dir != str(self.stage_dir) and self.system_name:
            system = get_system(self.system_name, self._config)
            actions.append(
                (
                    f"remote run directory {remote_dir} on system {self.system_name!r}",
                    lambda: system.remove_dir(remote_dir, self._db.project_id),
                )
            )
        if not remote_only:
            if wipe:
                actions.append(
                    (
                        f"local stage directory {self.stage_dir}",
                        lambda: shutil.rmtree(self.stage_dir, ignore_errors=True),
                    )
                )
            else:
                info = self._row["info"]
                for path in stagedir.inputs_to_remove(
                    self.stage_dir, info.get("input_files", []), info.get("output_files", [])
                ):
                    actions.append((f"staged input {path}", lambda path=path: _remove(path)))
        for what, action in actions:
            if dry_run or verbose:
                print(f"{'would delete' if dry_run else 'deleting'} {what} (job {self.id})")
            if not dry_run:
                action()
        if wipe and not remote_only and not dry_run and self.status != "cleaned":
            self._row = self._db.transition(self.id, "cleaned")
        return [what for what, _ in actions]

    def sync_remote_results_status(
        self, sync_all: bool = True, force_sync: bool = False, verbose: bool = False
    ) -> None:
        """Ask the queue about this job now and copy back the files of those that finished.

        Waiting (:meth:`get_results`, :func:`expyre.poll.wait_for_jobs`) does this by
        itself; this is for scripts that look at ``status`` or the stage directory without
        waiting (``xpr sync`` does the same from the shell).

        Parameters
        ----------
        sync_all : bool
            Also update every other queued or running job of the same system (one queue
            query serves them all, so this costs no more than one job).
        force_sync : bool
            Copy this job's files back from its run directory again, even when it had
            already finished (e.g. after editing them there by hand).
        verbose : bool
            Print each job whose state changed.
        """
        self.refresh()
        jobs: list[ExPyRe] = [self]
        if sync_all and self.system_name:
            others = self._db.select(statuses=sorted(LIVE_STATES), systems=[self.system_name])
            jobs += ExPyRe.from_jobsdb([r for r in others if r["id"] != self.id], self._config)
        before = {job.id: job.status for job in jobs}
        refresh_jobs(jobs)
        if force_sync and before[self.id] not in LIVE_STATES and self.system_name:
            remote_dir = self._row["remote_dir"]
            if remote_dir and remote_dir != str(self.stage_dir):
                get_system(self.system_name, self._config).stage_out(remote_dir, self.stage_dir)
        if verbose:
            for job in jobs:
                if job.status != before[job.id]:
                    print(f"{job.id}: {before[job.id]} -> {job.status}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _runner_started_at(stage_dir: Path) -> float | None:
    """When the job's runner started (unix s), from the marker it writes first; None if none."""
    try:
        return float(json.loads((stage_dir / runner.STARTED_FILE).read_text())["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None

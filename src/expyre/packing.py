"""Packed allocations: many chunks (expyre jobs) run by at most K queue jobs.

A chunk keeps everything that makes it a job -- its key, its row in the jobs database, its
stage directory, its job script, its result file, its restart guarantees. What changes is
only *how it is submitted*: instead of one queue job per chunk, :func:`start_packed` writes
the job directories of the chunks into one *pack* (a ``tasks`` file in a directory where the
jobs run) and submits at most ``max_allocations`` queue jobs running
``python -m expyre.allocation PACK_DIR``. Each allocation claims chunks one at a time with an
atomic ``mkdir`` in the chunk's job directory, so it works on a cluster reached over ssh with
no daemon and no database there; see :mod:`expyre.allocation`.

In the database a packed chunk is ``submitted`` with the remote id ``pack:ID1+ID2+...``
(its allocations). :func:`refresh_packed` (called by :func:`expyre.poll.refresh_jobs`, within
the one status query per system) decides each chunk's fate:

* its ``_expyre_done`` marker is there (checked on this machine for local systems while the
  allocations run, otherwise once they left the queue): ``succeeded``/``failed`` from its
  result file, as for any job;
* all its allocations left the queue, the chunk was claimed, no result: ``died`` (the
  allocation was killed mid-chunk), after the usual grace period;
* all its allocations left the queue and nobody claimed it (time ran out, or the allocation
  was killed first): back to ``created`` -- it certainly never ran -- so the caller starts it
  again (:func:`expyre.poll.wait_for_jobs` yields it; start it with :func:`start_packed`).

A driver killed at any moment leaves chunks ``created`` (packed again on rerun),
``submitted`` with their allocations' ids (waited for), or ``submitted`` without an id (the
allocations are looked for by the pack's name, as a lost ordinary submission is), and a
chunk is run by at most one allocation whatever the interleaving: the claim decides.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from expyre import allocation, runner
from expyre.atomicfile import sync_files, write_atomic
from expyre.dbpaths import project_dir
from expyre.jobscript import build_job_script
from expyre.lifecycle import Decision, JobState, Observation
from expyre.observe import fetch_back, read_outcome, settle
from expyre.resources import Resources
from expyre.schedulers.base import QueueState
from expyre.system import System, SystemCommandError, get_system

if TYPE_CHECKING:
    from expyre.func import ExPyRe

# the submit command certainly queued nothing: back to created, so a rerun submits again
_NOT_QUEUED = Decision(
    JobState.CREATED, expect=frozenset({JobState.SUBMITTED}), reason="submission not queued"
)

__all__ = [
    "PACK_PREFIX",
    "allocation_ids",
    "is_packed",
    "pack_remote_id",
    "refresh_packed",
    "start_packed",
]

PACK_PREFIX = "pack:"


def pack_remote_id(allocation_ids: Sequence[str]) -> str:
    """The remote id recorded for a packed chunk: ``pack:`` and its allocations' ids."""
    return PACK_PREFIX + "+".join(allocation_ids)


def is_packed(remote_id: str | None) -> bool:
    return bool(remote_id) and remote_id.startswith(PACK_PREFIX)


def allocation_ids(remote_id: str) -> list[str]:
    """Scheduler ids of the allocations a packed chunk may run in."""
    return [i for i in remote_id[len(PACK_PREFIX) :].split("+") if i]


def _check_max_allocations(max_allocations: int) -> int:
    if isinstance(max_allocations, bool) or not isinstance(max_allocations, int):
        raise ValueError(
            f"max_allocations={max_allocations!r} is not a whole number; "
            "give the most queue jobs to pack the chunks into, e.g. max_allocations=4"
        )
    if max_allocations < 1:
        raise ValueError(f"max_allocations={max_allocations} must be at least 1")
    return max_allocations


def _forget_claim(job: ExPyRe) -> None:
    """Remove a finished run's claim and done marker, so the chunk can be claimed again.

    Only for a chunk whose previous run is over (reset for a rerun): a chunk that came back
    to ``created`` otherwise was never claimed, or may still be claimed by a lost allocation
    that must keep it. (A separate run directory is removed whole on resubmission.)
    """
    shutil.rmtree(job.stage_dir / allocation.CLAIM_DIR, ignore_errors=True)
    (job.stage_dir / allocation.DONE_FILE).unlink(missing_ok=True)


def start_packed(
    jobs: Iterable[ExPyRe],
    resources: Resources | dict,
    max_allocations: int,
    system_name: str | None = None,
    header_extra: Iterable[str] = (),
    exact_fit: bool = True,
    partial_node: bool = False,
    force_rerun: bool = False,
    job_array: bool = False,
) -> list[str]:
    """Submit the ``created`` jobs among ``jobs`` packed into at most ``max_allocations`` queue jobs.

    Jobs already submitted, running or finished are left alone (as :meth:`ExPyRe.start` does),
    so a rerun packs only what is left. Each allocation asks for ``resources`` (what one
    chunk needs) and runs chunks one after the other until none is left.

    Parameters
    ----------
    jobs : iterable of ExPyRe
        The chunks; all must use the same system.
    resources : Resources or dict
        What ONE chunk needs; each allocation requests this.
    max_allocations : int
        Most queue jobs to submit for these chunks (fewer if there are fewer chunks).
    system_name, header_extra, exact_fit, partial_node
        As for :meth:`ExPyRe.start`.
    force_rerun : bool
        Run again jobs that already finished (live ones are cancelled first).
    job_array : bool
        Submit the allocations as ONE job array (one submit command; the site's largest
        array is respected by using fewer tasks, each running chunks until none is left).

    Returns
    -------
    list of str
        Scheduler ids of the allocations submitted (empty if nothing was left to run).
    """
    max_allocations = _check_max_allocations(max_allocations)
    resources = Resources.coerce(resources)
    jobs = list(jobs)
    if not jobs:
        return []
    system = get_system(system_name, jobs[0].config)
    todo = []
    for job in jobs:
        job.refresh()
        if job.status in ("stale", "cleaned"):
            raise RuntimeError(
                f"job {job.id} is {job.status} and cannot be started; create a new ExPyRe"
            )
        if force_rerun and job.status != "created":
            if job.status in ("submitted", "started"):
                job.cancel()
            job.reset_for_rerun("run again (force_rerun)")
            _forget_claim(job)
        if job.status == "submitted" and not job.remote_id and _recover_lost_pack(job, system):
            continue
        if job.status == "created":
            todo.append(job)
    if not todo:
        return []
    return _submit_pack(
        todo, system, resources, max_allocations, header_extra, exact_fit, partial_node, job_array
    )


def _recover_lost_pack(job: ExPyRe, system: System) -> bool:
    """A driver died between recording a packed chunk "submitted" and its allocations' ids.

    Look for the pack's allocations in the queue by name; True if found (ids recorded).
    Otherwise the chunk goes back to ``created``: if an allocation of the lost pack does run
    after all, the chunk's claim keeps it from running twice.
    """
    pack_id = job.row["info"].get("pack")
    found = None
    if pack_id:
        try:
            found = system.find_by_name(pack_id)
        except (NotImplementedError, SystemCommandError):
            found = None
    if found:
        job.set_remote_id(pack_remote_id([found]))
        return True
    job.apply(_NOT_QUEUED)
    return False


def _pack_dirs(
    system: System, config_root: Path, pack_id: str, project_id: str
) -> tuple[Path, str]:
    """(local pack dir, pack dir where the jobs run: among the project's run directories)."""
    local = config_root / "packs" / pack_id
    project_rundir = system.project_rundir(project_id)
    if project_rundir is None:
        return local, str(local)
    return local, posixpath.join(project_rundir, "_packs", pack_id)


def _submit_pack(
    todo: list[ExPyRe],
    system: System,
    resources: Resources,
    max_allocations: int,
    header_extra: Iterable[str],
    exact_fit: bool,
    partial_node: bool,
    job_array: bool = False,
) -> list[str]:
    num_allocations = min(max_allocations, len(todo))
    header_extra = list(header_extra)
    allocation_header = list(header_extra)
    if job_array:
        try:
            site_max = system.max_array_size()
        except NotImplementedError as exc:
            raise ValueError(
                f"job_array=True on system {system.name!r}: {exc}; pack without an array "
                "(job_array=False) or use a Slurm, SGE or PBS system"
            ) from exc
        num_allocations = min(num_allocations, site_max or num_allocations)
        # one allocation needs no array (and PBS arrays need two tasks at least)
        job_array = num_allocations > 1
        if job_array:
            allocation_header += system.scheduler.array_header(num_allocations)
    pack_id = f"xpk_{uuid.uuid4().hex[:12]}"  # its allocations' queue name, to find them again
    job_dirs, requests = [], {}
    for job in todo:
        job_dir, requests[job.id] = job.prepare_run_dir(
            system, resources, header_extra, exact_fit, partial_node, durable=False
        )
        job_dirs.append(job_dir)
    env_vars = _shared_env_vars(todo)
    runner_args = _deadline_args(resources)
    if env_vars is not None:
        runner_args.append("--in-process")
        if system.is_local:  # forked chunks import the project's modules from where it is
            runner_args += ["--project-dir", str(project_dir(todo[0]._db.root))]
    local_pack, pack_dir = _pack_dirs(system, todo[0].config.root, pack_id, todo[0]._db.project_id)
    local_pack.mkdir(parents=True)
    # relative to the pack: the pack and its chunks move together with a project
    tasks = "".join(f"{posixpath.relpath(d, pack_dir)}\n" for d in job_dirs)
    (local_pack / allocation.TASKS_FILE).write_text(tasks)
    script = build_job_script(
        system.config,
        system.scheduler,
        job_id=pack_id,
        job_dir=pack_dir,
        resources=resources,
        exact_fit=exact_fit,
        partial_node=partial_node,
        header_extra=allocation_header,
        env_vars=env_vars or (),
        runner_module="expyre.allocation",
        runner_args=runner_args,
    )
    write_atomic(local_pack / runner.SCRIPT_FILE, script.encode(), durable=False)
    # the chunks' scripts and the pack on disk for good before any chunk is recorded
    # submitted: one flush for all of them, not one per chunk
    sync_files([local_pack / allocation.TASKS_FILE, local_pack / runner.SCRIPT_FILE]
               + [job.stage_dir / runner.SCRIPT_FILE for job in todo])  # fmt: skip
    system.stage_in(local_pack, pack_dir)

    # one transaction for the whole pack; a chunk another driver took meanwhile is left
    # out (its claim protects it anyway)
    submitted = type(todo[0]).begin_submissions(
        system,
        [
            (job, job_dir, {"pack": pack_id, "request": requests[job.id]})
            for job, job_dir in zip(todo, job_dirs, strict=True)
        ],
    )
    if not submitted:
        return []
    ids: list[str] = []
    try:
        for _ in range(1 if job_array else min(num_allocations, len(submitted))):
            ids.append(system.submit(posixpath.join(pack_dir, runner.SCRIPT_FILE), pack_dir))
    except SystemCommandError:
        if not ids:  # nothing queued: back to created, so a rerun retries
            for job in submitted:
                job.apply(_NOT_QUEUED)
            raise
    type(todo[0]).set_remote_ids(submitted, pack_remote_id(ids))
    return ids


def _shared_env_vars(jobs: list[ExPyRe]) -> list[str] | None:
    """The chunks' common ``env_vars`` if they can run in the allocation's own process.

    A chunk runs in a forked child of the allocation (its imports paid once per allocation)
    only when its job script would add nothing but the allocation can give it: no pre/post
    run commands (shell that must run around each chunk) and the same environment variables
    for every chunk (the allocation script exports them). Otherwise None: each chunk runs
    its own job script in a fresh shell and Python.
    """
    infos = [job.row["info"] for job in jobs]
    if any(i.get("pre_run_commands") or i.get("post_run_commands") for i in infos):
        return None
    env_vars = [list(i.get("env_vars", [])) for i in infos]
    return env_vars[0] if all(e == env_vars[0] for e in env_vars) else None


def _deadline_args(resources: Resources) -> list[str]:
    seconds = getattr(resources, "max_time_s", None)
    return ["--deadline-in", str(int(seconds))] if seconds else []


# --------------------------------------------------------------------------- polling


def refresh_packed(jobs: list[ExPyRe], system: System, states: dict[str, QueueState]) -> None:
    """Decide the fate of packed chunks from their allocations' queue states.

    ``states`` is the result of the one status query of this poll (allocation ids included).
    """
    for job in jobs:
        ids = allocation_ids(job.remote_id)
        alive = [states[i] for i in ids if i in states and not states[i].is_finished]
        if alive:
            if _here(job, system, allocation.DONE_FILE):
                fetch_back(job, system)
                outcome = read_outcome(job)
                if outcome is not None:
                    settle(job, system, Observation(outcome=outcome))
                else:
                    settle(job, system, _ENDED_ON_ITS_OWN, look_again=_look_again)
            elif job.status == "submitted" and _here(job, system, allocation.CLAIM_DIR):
                # "started" only once claimed: an unclaimed chunk may still go back to created
                settle(job, system, Observation(queue=QueueState.RUNNING))
            continue
        ended = [states[i] for i in ids if i in states]
        killed = next((s for s in ended if s.was_killed), None)
        fetch_back(job, system)
        # the allocations do not say which of them ran this chunk, so there is no accounting
        # to ask: how they ended (killed or not) is all there is -- unless the chunk's done
        # marker shows that its allocation outlived it (see _ENDED_ON_ITS_OWN)
        done = (job.stage_dir / allocation.DONE_FILE).exists()
        seen = Observation(
            outcome=read_outcome(job),
            accounting_asked=True,
            ended_as=QueueState.FAILED if done else killed,
            claimed=(job.stage_dir / allocation.CLAIM_DIR).exists(),
        )
        settle(job, system, seen, look_again=_look_again)


# A chunk whose done marker is there without a result: its process ended (a signal, the
# out-of-memory killer, os._exit) and the allocation that ran it went on to write the marker.
# That is a job that ended with no result and no word from the queue ("failed"), not one
# that vanished with its node, which a failure policy would resubmit unchanged.
_ENDED_ON_ITS_OWN = Observation(queue=QueueState.FAILED, accounting_asked=True, claimed=True)


def _look_again(job: ExPyRe, system: System, seen: Observation) -> Observation:
    """The last look at a chunk after the grace period: its result, and whether it was claimed
    (a slow shared filesystem may show the claim late)."""
    fetch_back(job, system)
    claimed = (job.stage_dir / allocation.CLAIM_DIR).exists()
    return dataclasses.replace(seen, outcome=read_outcome(job), looked_again=True, claimed=claimed)


def _here(job: ExPyRe, system: System, name: str) -> bool:
    """True when ``name`` exists in the chunk's job dir, looked at on this machine.

    Only for local systems (one stat, no ssh); remote chunks are decided when their
    allocations have left the queue.
    """
    job_dir = job.row["remote_dir"]
    return bool(system.is_local and job_dir) and os.path.exists(os.path.join(job_dir, name))


def cancel_packed(job: ExPyRe, system: System) -> None:
    """Keep a packed chunk from running: claim it for nobody, or cancel its allocations.

    An unclaimed chunk is claimed by the driver (the same atomic mkdir), so no allocation
    will start it. A chunk already running cannot be stopped alone: its allocations are
    cancelled (their other unclaimed chunks come back as ``created``).
    """
    claim = posixpath.join(job.row["remote_dir"], allocation.CLAIM_DIR)
    try:
        system.run(["mkdir", claim], what="claim a packed chunk to cancel it", retry=False)
        return
    except SystemCommandError:
        pass  # claimed already: running (or done) in an allocation
    system.cancel(allocation_ids(job.remote_id))

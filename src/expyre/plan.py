"""A plan before spending: what queued jobs a workflow *would* submit, without submitting.

A driver in plan mode (wfl's ``autoparallelize`` when ``$WFL_PLAN`` names a file) calls
:func:`preview_job` for each job it would create and :func:`preview_submission` once per
call, and appends one record per call to the plan file (:func:`append_record`, JSON lines).
``xpr plan`` renders the file with :func:`render`.

Nothing here writes to the project: the jobs database is only read (and not even opened
when it does not exist yet), no stage directory is made, no queue or ssh command runs.
"""

from __future__ import annotations

import json
import os
import posixpath
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from expyre.config import ProjectConfig, load_config
from expyre.jobscript import build_job_script
from expyre.jobsdb import make_job_id
from expyre.keys import job_key
from expyre.resources import Resources, select_partition
from expyre.system import get_system
from expyre.units import format_time

__all__ = [
    "PLAN_ENV_VAR",
    "append_record",
    "plan_file",
    "preview_job",
    "preview_submission",
    "read_records",
    "render",
]

#: The variable that switches a workflow into plan mode; it holds the plan file's path.
#: wfl's autoparallelize honours it (expyre only defines the file's format).
PLAN_ENV_VAR = "WFL_PLAN"

#: What a job of the plan would do: take an existing job's result or queued run, be
#: submitted for the first time, or be submitted because the existing job's code changed.
REUSE, NEW, STALE = "reuse", "new", "replaces stale"


def plan_file() -> Path | None:
    """The plan file named by ``$WFL_PLAN``, or None when not in plan mode."""
    value = os.environ.get(PLAN_ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def _read_db(config: ProjectConfig, sql: str, params: tuple) -> list[dict]:
    """Rows of a read-only query; none when the project has no database yet."""
    path = config.db_path
    if not path.is_file():
        return []  # a fresh project: every job is new, and the plan must not create the db
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise RuntimeError(
            f"the plan cannot read the jobs database {path} ({exc}), so it cannot tell which "
            "jobs would be reused; check it with `xpr ls`"
        ) from None


#: shown for a project whose database does not exist yet: its id is made at the first run
NEW_PROJECT_ID = "NEW_PROJECT"


def _project_id(config: ProjectConfig) -> str:
    """The project's id as its jobs database holds it now, or :data:`NEW_PROJECT_ID`."""
    rows = _read_db(config, "SELECT value FROM project WHERE key = 'id'", ())
    return rows[0]["value"] if rows else NEW_PROJECT_ID


def _same_call_rows(config: ProjectConfig, call_digest: str) -> list[dict]:
    """Live or finished rows for the same call, newest first."""
    return _read_db(
        config,
        "SELECT id, name, status, key, code_fingerprint FROM jobs WHERE call_digest = ?"
        " AND status NOT IN ('cleaned', 'stale') ORDER BY created_at DESC",
        (call_digest,),
    )


def _latest_of_name(config: ProjectConfig, name: str) -> dict | None:
    """The newest job with this name (a job name is the same for the same chunk of a call)."""
    rows = _read_db(
        config,
        "SELECT id, status FROM jobs WHERE name = ? ORDER BY created_at DESC LIMIT 1",
        (name,),
    )
    return rows[0] if rows else None


def preview_job(
    name: str,
    *,
    function: Callable,
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    input_files: Iterable[str | os.PathLike] = (),
    hash_ignore: Iterable[str] = (),
    config: ProjectConfig | None = None,
    **_ignored: Any,
) -> dict:
    """What constructing ``ExPyRe(name, function=..., ...)`` would do, without doing it.

    Takes the same keyword arguments as :class:`expyre.func.ExPyRe` (those that do not
    enter the job key are accepted and ignored), so a driver passes one dict to both.

    Returns
    -------
    dict
        ``name``, ``verdict`` (:data:`REUSE`, :data:`NEW` or :data:`STALE`), ``job_id``
        (the existing job's id, or None), ``status`` (its state), ``reason`` (why: for a
        stale one, and for a new one when an earlier job of the same name exists), ``key``.
    """
    config = config or load_config()
    key = job_key(
        function,
        list(args),
        dict(kwargs or {}),
        input_files=[str(f) for f in input_files],
        hash_ignore=hash_ignore,
        base_dir=os.getcwd(),
    )
    rows = _same_call_rows(config, key.call_digest)
    same = [r for r in rows if r["key"] == key.key]
    other_code = [r for r in rows if r["code_fingerprint"] != key.code_fingerprint]
    out = {"name": name, "key": key.key, "job_id": None, "status": None, "reason": None}
    if same:
        return {**out, "verdict": REUSE, "job_id": same[0]["id"], "status": same[0]["status"]}
    if other_code:
        old = other_code[0]
        reason = (
            f"code changed (fingerprint {old['code_fingerprint'][:12]} -> "
            f"{key.code_fingerprint[:12]})"
        )
        return {
            **out,
            "verdict": STALE,
            "job_id": old["id"],
            "status": old["status"],
            "reason": reason,
        }
    earlier = _latest_of_name(config, name)
    if earlier is not None:
        # same job name, other call digest: the chunk's arguments, items or input files differ
        reason = f"an earlier job of this name ({earlier['id']}) was for other arguments, inputs or input files"
        return {**out, "verdict": NEW, "job_id": earlier["id"], "status": earlier["status"],
                "reason": reason}  # fmt: skip
    return {**out, "verdict": NEW}


def preview_submission(
    resources: Resources | dict,
    *,
    job_name: str,
    system_name: str | None = None,
    header_extra: Iterable[str] = (),
    exact_fit: bool = True,
    partial_node: bool = False,
    env_vars: Iterable[str] = (),
    config: ProjectConfig | None = None,
) -> dict:
    """System, partition and resources a job would get, and its job script's header.

    Runs no command anywhere: on a remote system whose run directory is relative to the
    remote home, the directory in the header is written ``~/RUNDIR/PROJECT/ID``, where
    PROJECT is the project's id (:data:`NEW_PROJECT_ID` before its first run).

    Returns
    -------
    dict
        ``system``, ``scheduler``, ``partition``, ``num_nodes``, ``num_cores``,
        ``num_cores_per_node``, ``max_time`` (as in the script), ``header`` (list of str:
        the scheduler lines of the script), or ``error`` (str) when no partition fits or
        the system is unknown.
    """
    config = config or load_config()
    try:
        system = get_system(system_name, config)
        resources = Resources.coerce(resources)
        job_id = make_job_id(job_name)
        # jobs run in <rundir>/<project id>/<job id> (one project never touches another's)
        in_project = posixpath.join(_project_id(config), job_id)
        if system.is_local and system.config.rundir is None:
            job_dir = str(config.stage_root / job_id)
        elif system.config.rundir and posixpath.isabs(system.config.rundir):
            job_dir = posixpath.join(system.config.rundir, in_project)
        elif system.is_local:
            job_dir = posixpath.join(str(config.root), system.config.rundir, in_project)
        else:
            job_dir = posixpath.join("~", system.config.rundir or "expyre_rundir", in_project)
        script = build_job_script(
            system.config,
            system.scheduler,
            job_id=job_id,
            job_dir=job_dir,
            resources=resources,
            exact_fit=exact_fit,
            partial_node=partial_node,
            header_extra=header_extra,
            env_vars=env_vars,
        )
    except (ValueError, KeyError) as exc:  # ConfigError, NoPartitionFits are ValueErrors
        return {"system": system_name, "error": str(exc)}
    header = [line for line in script.splitlines()[1:] if line.startswith("#")]
    # the same choice build_job_script made (the local queue runs on one machine)
    max_nodes = 1 if system.scheduler.name == "local" else None
    chosen = select_partition(
        resources, system.config.partitions, exact_fit, partial_node, max_nodes
    )
    return {
        "system": system.name,
        "scheduler": system.config.scheduler,
        "partition": chosen.partition,
        "num_nodes": chosen.num_nodes,
        "num_cores": chosen.num_cores,
        "num_cores_per_node": chosen.num_cores_per_node,
        "max_time": format_time(chosen.max_time_s),
        "header": header[:-1] if header and header[-1].startswith("# expyre job") else header,
    }


def append_record(record: dict, path: Path | None = None) -> None:
    """Append one call's record to the plan file (one JSON object per line)."""
    path = path or plan_file()
    if path is None:
        raise RuntimeError(f"not in plan mode: ${PLAN_ENV_VAR} is not set")
    with open(path, "a") as fh:
        fh.write(json.dumps(record, default=str) + "\n")


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records of a plan file, in call order (an absent file holds none)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def render(records: list[dict]) -> str:
    """The plan as text: one block per call, one line per job.

    Parameters
    ----------
    records : list of dict
        As written by the driver: ``call`` (str), ``labels`` (list of str), ``matched``
        (the WFL_EXPYRE_INFO key, None for "runs here"), ``where`` ("queue", "here" or
        "done"), ``num_items`` (int or None when unknown), ``inputs_pending`` (bool),
        ``submission`` (see :func:`preview_submission`), ``jobs`` (see :func:`preview_job`),
        ``items_reused`` / ``items_new`` (items found in the item store / to be queued).
    """
    if not records:
        return "plan: the script reached no autoparallelized call\n"
    lines: list[str] = []
    totals = {REUSE: 0, NEW: 0, STALE: 0}
    totals_items = [0, 0]  # reused from the item store, new
    for n, rec in enumerate(records, 1):
        lines.append(
            f"[{n}] {rec['call']}" + "".join(f"  label={lab}" for lab in rec.get("labels", []))
        )
        if rec["where"] == "done":
            lines.append("    outputs already complete: skipped, nothing runs")
            continue
        error = rec.get("error")
        if error and error.startswith("the plan"):
            lines.append(f"    {error}")
        elif error:
            lines.append(f"    a real run would stop here: {error}")
        items = "unknown" if rec.get("num_items") is None else str(rec["num_items"])
        pending_note = (
            "  (inputs computed by an earlier step, which a plan does not run)"
            if rec.get("inputs_pending")
            else ""
        )
        if rec["where"] == "here":
            lines.append("    runs here (local process pool; no WFL_EXPYRE_INFO key matched)")
            lines.append(f"    items: {items}{pending_note}")
            continue
        matched = rec.get("matched")
        lines.append(
            f"    matched: {matched!r}" if matched else "    matched: remote_info given in code"
        )
        sub = rec.get("submission") or {}
        if "error" in sub:
            lines.append(f"    system: {sub.get('system')}  a real run would fail: {sub['error']}")
        else:
            lines.append(
                f"    system: {sub['system']} ({sub['scheduler']})  partition: {sub['partition']}"
                f"  nodes: {sub['num_nodes']}  cores: {sub['num_cores']}"
                f" ({sub['num_cores_per_node']}/node)  time: {sub['max_time']}"
            )
            lines.append(f"    resources asked: {rec.get('resources')}")
        if rec.get("packing"):
            lines.append(f"    packed: {rec['packing']}")
        jobs = rec.get("jobs") or []
        item_counts = ""
        if rec.get("items_reused") is not None:
            item_counts = (
                f" ({rec['items_reused']} reused from the item store, {rec['items_new']} new)"
            )
            totals_items[0] += rec["items_reused"]
            totals_items[1] += rec["items_new"]
        lines.append(
            f"    items: {items}{item_counts}  "
            f"jobs: {len(jobs) if not rec.get('inputs_pending') else 'unknown'}" + pending_note
        )
        for job in jobs:
            totals[job["verdict"]] += 1
            what = job["verdict"]
            if job["verdict"] == REUSE:
                what += f" {job['job_id']} ({job['status']})"
            elif job["verdict"] == NEW and job.get("reason"):
                what += f": {job['reason']}"
            elif job["verdict"] == STALE:
                what += f" {job['job_id']} ({job['status']}): {job['reason']}"
            lines.append(f"      {job['name']:<28} {what}")
        if sub.get("header"):
            lines.append("    job script header:")
            lines += [f"      {h}" for h in sub["header"]]
    lines.append(
        f"plan: {len(records)} call(s); queued items: {totals_items[0]} reused, "
        f"{totals_items[1]} new; jobs: {totals[NEW]} new, {totals[REUSE]} reused, "
        f"{totals[STALE]} replacing stale ones; nothing was submitted"
    )
    return "\n".join(lines) + "\n"

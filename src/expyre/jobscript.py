"""The text of a job script: scheduler header, resource variables, user commands, runner.

Order (what the lead's queued autoparallelize and users rely on)::

    #!/bin/bash
    <scheduler default header> <system "header"> <header_extra>
    cd <job dir>
    export EXPYRE_NUM_NODES / EXPYRE_NUM_CORES / EXPYRE_NUM_CORES_PER_NODE / EXPYRE_NCORES_PER_NODE
    <system "commands">          (raw shell: module load, PYTHONPATH, ...)
    export <env_vars>            ("NAME=value": value double-quoted, only ${...} expands at run
                                 time; bare "NAME" copied, quoted)
    <pre_run_commands>           (raw shell)
    <python_cmd> -m expyre.runner <job dir>
    <post_run_commands>          (raw shell)
    exit <the runner's exit code>

Everything that is data rather than shell (paths, ids, copied env values) is quoted with
:func:`shlex.quote`; config ``commands`` and pre/post commands are shell by design; the value
of ``NAME=value`` is data in which only ``$`` expansions are active.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Iterable

from expyre.config import SystemConfig
from expyre.resources import Resources, Selection, select_partition
from expyre.runner import STDERR_FILE, STDOUT_FILE
from expyre.schedulers.base import JobRequest, Scheduler

__all__ = [
    "build_job_script",
    "job_selection",
    "env_var_lines",
    "format_header_lines",
    "job_script",
    "run_time_value",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def run_time_value(value: str) -> str:
    """Shell text for an ``env_vars`` value: the value itself, with only ``$`` active.

    The value is put in double quotes with ``\\``, ``"`` and backquotes escaped, so spaces,
    quotes and braces (``{"ncore": ${EXPYRE_NCORES_PER_NODE}}``) reach the job unchanged
    while ``${NAME}``/``$NAME`` still expand when the job runs. A value that is already one
    quoted shell word (it starts with a quote, e.g. ``'mpirun -np 4 vasp'``) is kept as
    the shell text it is: scripts written for earlier versions, which pasted values into
    the script as they were, quoted such values themselves.

    Parameters
    ----------
    value : str
        The part after ``NAME=``.

    Returns
    -------
    str
        Shell text that evaluates to the value at run time.
    """
    if value[:1] in ("'", '"'):
        try:
            if len(shlex.split(value)) == 1:
                return value
        except ValueError:  # unbalanced quotes: not shell text, so it is data
            pass
    escaped = re.sub(r'([\\"`])', r"\\\1", value)
    return f'"{escaped}"'


def env_var_lines(env_vars: Iterable[str], environ: dict[str, str] | None = None) -> list[str]:
    """``export`` lines for a job's ``env_vars``.

    Parameters
    ----------
    env_vars : iterable of str
        ``"NAME=value"`` (the value reaches the job as it is, with ``${...}`` expanded when
        the job runs, so ``"NCORE=${EXPYRE_NUM_CORES_PER_NODE}"`` works; see
        :func:`run_time_value`), or ``"NAME"`` to copy this process's
        value (quoted, never expanded).
    environ : dict, optional
        Where bare names are looked up (default ``os.environ``).

    Raises
    ------
    ValueError
        For an invalid variable name or a bare name that is not set here.
    """
    environ = os.environ if environ is None else environ
    lines = []
    for item in env_vars:
        name, eq, value = str(item).partition("=")
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"env_vars entry {item!r}: {name!r} is not a valid variable name; "
                "use NAME=value or NAME with NAME made of letters, digits and _"
            )
        if eq:
            lines.append(f"export {name}={run_time_value(value)}")
        elif name in environ:
            lines.append(f"export {name}={shlex.quote(environ[name])}")
        else:
            raise ValueError(
                f"env_vars entry {name!r} asks to copy variable {name}, which is not set in "
                f"this process; set it, or write {name}=value"
            )
    return lines


def format_header_lines(lines: Iterable[str], fields: dict, what: str) -> list[str]:
    """``str.format`` each header line with the job's fields.

    Raises
    ------
    ValueError
        Naming the line and the unknown field.
    """
    out = []
    for line in lines:
        try:
            out.append(line.format(**fields))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{what} line {line!r} cannot be formatted ({exc!r}); the fields available are "
                f"{sorted(fields)} (write literal braces as {{{{ and }}}})"
            ) from exc
    return out


def job_script(
    *,
    scheduler: Scheduler,
    request: JobRequest,
    selection: Selection,
    job_id: str,
    job_dir: str,
    python_cmd: str,
    no_default_header: bool = False,
    system_header: Iterable[str] = (),
    header_extra: Iterable[str] = (),
    commands: Iterable[str] = (),
    env_vars: Iterable[str] = (),
    pre_run_commands: Iterable[str] = (),
    post_run_commands: Iterable[str] = (),
    runner_module: str = "expyre.runner",
    runner_args: Iterable[str] = (),
) -> str:
    """Build the job script text (see the module docstring for its layout).

    Parameters
    ----------
    scheduler : Scheduler
        Supplies the default header lines.
    request : JobRequest
        What the header requests.
    selection : Selection
        Chosen resources (nodes, cores) exported to the job.
    job_id : str
        expyre job id.
    job_dir : str
        Absolute job directory where the job runs.
    python_cmd : str
        Shell words that start Python there.
    """
    fields = {
        "num_nodes": selection.num_nodes,
        "num_cores": selection.num_cores,
        "num_cores_per_node": selection.num_cores_per_node,
        "partition": selection.partition,
        "id": job_id,
        "job_name": request.job_name,
        # each scheduler's own format: SGE and PBS reject Slurm's D-HH:MM:SS
        "max_time": scheduler.format_time_limit(selection.max_time_s),
        "max_time_s": selection.max_time_s,
        "max_mem_kB": selection.max_mem_kB or "",
    }
    header = [] if no_default_header else list(scheduler.default_header(request))
    header += format_header_lines(system_header, fields, "config.json header")
    header += format_header_lines(header_extra, fields, "header_extra")
    quoted_dir = shlex.quote(job_dir)
    lines = [
        "#!/bin/bash",
        *header,
        f"# expyre job {job_id} (generated; edits are overwritten)",
        f"cd {quoted_dir} || exit 97",
        f"export EXPYRE_JOB_ID={shlex.quote(job_id)}",
        f"export EXPYRE_NUM_NODES={selection.num_nodes}",
        f"export EXPYRE_NUM_CORES={selection.num_cores}",
        f"export EXPYRE_NUM_CORES_PER_NODE={selection.num_cores_per_node}",
        f"export EXPYRE_NCORES_PER_NODE={selection.num_cores_per_node}",
        *commands,
        *env_var_lines(env_vars),
        *pre_run_commands,
        " ".join([python_cmd, "-m", runner_module, quoted_dir, *map(shlex.quote, runner_args)]),
        "expyre_exit_code=$?",
        *post_run_commands,
        "exit $expyre_exit_code",
        "",
    ]
    return "\n".join(lines)


def job_selection(
    system_config: SystemConfig,
    scheduler: Scheduler,
    resources: Resources,
    exact_fit: bool = True,
    partial_node: bool = False,
) -> Selection:
    """The partition, nodes, cores, time and memory a job script asks ``scheduler`` for.

    Raises
    ------
    expyre.resources.NoPartitionFits
        If no partition of the system satisfies the request.
    """
    # the local queue runs on this one machine: a multi-node request can never start there
    max_nodes = 1 if scheduler.name == "local" else None
    return select_partition(resources, system_config.partitions, exact_fit, partial_node, max_nodes)


def build_job_script(
    system_config: SystemConfig,
    scheduler: Scheduler,
    *,
    job_id: str,
    job_dir: str,
    resources: Resources,
    exact_fit: bool = True,
    partial_node: bool = False,
    header_extra: Iterable[str] = (),
    env_vars: Iterable[str] = (),
    pre_run_commands: Iterable[str] = (),
    post_run_commands: Iterable[str] = (),
    runner_module: str = "expyre.runner",
    runner_args: Iterable[str] = (),
) -> str:
    """Choose the partition for ``resources`` and write the job script for one system.

    ``runner_module`` and ``runner_args`` change what the script runs in the job directory
    (a packed allocation runs :mod:`expyre.allocation` instead of :mod:`expyre.runner`).

    The scheduler job name is the job id (so a lost submission can be found by name) and
    stdout/stderr go to the job directory.

    Raises
    ------
    expyre.resources.NoPartitionFits
        If no partition of the system satisfies the request.
    """
    selection = job_selection(system_config, scheduler, resources, exact_fit, partial_node)
    request = JobRequest(
        job_name=job_id,
        partition=selection.partition,
        num_nodes=selection.num_nodes,
        num_cores=selection.num_cores,
        num_cores_per_node=selection.num_cores_per_node,
        max_time_s=selection.max_time_s,
        max_mem_kB=selection.max_mem_kB,
        stdout=posixpath.join(job_dir, STDOUT_FILE),
        stderr=posixpath.join(job_dir, STDERR_FILE),
    )
    return job_script(
        scheduler=scheduler,
        request=request,
        selection=selection,
        job_id=job_id,
        job_dir=job_dir,
        python_cmd=system_config.python_cmd,
        no_default_header=system_config.no_default_header,
        system_header=system_config.header,
        header_extra=header_extra,
        commands=system_config.commands,
        env_vars=env_vars,
        pre_run_commands=pre_run_commands,
        post_run_commands=post_run_commands,
        runner_module=runner_module,
        runner_args=runner_args,
    )

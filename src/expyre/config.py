"""Project scope and ``config.json``: where the jobs database lives and which systems exist.

Scope: the *root* is ``$EXPYRE_ROOT`` if set, otherwise the nearest directory
called ``_expyre`` from the current directory upwards, otherwise ``$HOME/.expyre``. The root
holds the jobs database, the local stage directories and the local queue's records.

Configuration is layered: ``$HOME/.expyre/config.json`` first, then the root's
``config.json`` on top (a system defined in both is taken whole from the root's file). A
built-in system ``local`` (this machine, the embedded local queue, one partition ``local``
with all of this machine's cores, no time limit) always exists unless a file defines its own
``local``, so a fresh user needs no configuration at all.

For scripts written for expyre-wfl 0.1.6: :func:`init` points expyre at a project
directory from Python (it wins over ``$EXPYRE_ROOT`` and the search), and the module
attributes ``systems`` (dict of name to :class:`expyre.system.System`) and
``local_stage_dir`` (the project root) are computed from the current configuration each
time they are read, so they are never out of date; so is ``db``, the jobs database with
0.1.6's methods (:class:`expyre.legacy_jobsdb.LegacyJobsDB`).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expyre.units import parse_memory, parse_time

__all__ = [
    "ConfigError",
    "PartitionConfig",
    "ProjectConfig",
    "SystemConfig",
    "find_root",
    "home_dir",
    "init",
    "load_config",
    "systems",  # noqa: F822 - computed by the module __getattr__ below
    "db",  # noqa: F822 - computed by the module __getattr__ below
]

# Project root chosen in Python with init(); None: $EXPYRE_ROOT, else the search.
_init_root: Path | None = None

KNOWN_SCHEDULERS = ("slurm", "pbs", "sge", "local")
BUILTIN_SOURCE = "<built-in default>"


class ConfigError(ValueError):
    """A config.json problem; the message names the file, the system and the key."""


@dataclass(frozen=True)
class PartitionConfig:
    """One partition (Slurm) or queue (SGE, PBS).

    Attributes
    ----------
    name : str
        Partition name as the scheduler knows it.
    num_cores : int
        Cores per node.
    max_time_s : int or None
        Longest wall time allowed, seconds (None: unlimited).
    max_mem_kB : int or None
        Memory per node, kB (None: not checked).
    """

    name: str
    num_cores: int
    max_time_s: int | None = None
    max_mem_kB: int | None = None


@dataclass(frozen=True)
class SystemConfig:
    """One entry of ``config.json``'s ``systems``; the README's Configuration section gives each key's meaning."""

    name: str
    host: str | None
    scheduler: str
    partitions: dict[str, PartitionConfig]
    header: list[str] = field(default_factory=list)
    no_default_header: bool = False
    commands: list[str] = field(default_factory=list)
    pre_submit_cmds: list[str] = field(default_factory=list)
    rundir: str | None = None
    remsh_cmd: str = "ssh"
    python_cmd: str = "python3"
    source: str = BUILTIN_SOURCE


@dataclass(frozen=True)
class ProjectConfig:
    """The merged configuration of one project scope.

    Attributes
    ----------
    root : Path
        Project root (holds ``jobs.db``, ``stage/`` and ``localqueue/``).
    systems : dict of str to SystemConfig
        All systems, including the built-in ``local``.
    default_system_name : str or None
        From ``$EXPYRE_SYS`` or the files' ``default_system`` key.
    files : list of Path
        The config files that were read, in layering order.
    """

    root: Path
    systems: dict[str, SystemConfig]
    default_system_name: str | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def db_path(self) -> Path:
        """Path of the jobs database."""
        return self.root / "jobs.db"

    @property
    def stage_root(self) -> Path:
        """Directory holding one stage directory per job."""
        return self.root / "stage"

    def system(self, name: str | None = None) -> SystemConfig:
        """Look up a system by name, or the default system when ``name`` is None.

        Raises
        ------
        ConfigError
            If the system is not defined, or no default can be chosen.
        """
        if name is None:
            name = self._default_name()
        if name not in self.systems:
            raise ConfigError(
                f"system {name!r} is not defined in {self._where()}; defined systems are "
                f"{sorted(self.systems)}; add it to config.json or pick one of those"
            )
        return self.systems[name]

    def _default_name(self) -> str:
        if self.default_system_name:
            return self.default_system_name
        user_systems = [n for n, s in self.systems.items() if s.source != BUILTIN_SOURCE]
        if len(user_systems) == 1:
            return user_systems[0]
        if not user_systems:
            return "local"
        raise ConfigError(
            f"no system was named and {self._where()} defines several {sorted(user_systems)}; "
            'pass system_name=..., set EXPYRE_SYS, or add "default_system" to config.json'
        )

    def _where(self) -> str:
        return ", ".join(str(f) for f in self.files) or "the built-in configuration"


def home_dir() -> Path:
    """``$HOME/.expyre`` (``$HOME`` may be unset on some machines: fall back to ``~``)."""
    home = os.environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".expyre"


def find_root(cwd: str | os.PathLike | None = None) -> Path:
    """Find the project root: :func:`init`'s, ``$EXPYRE_ROOT``, nearest ``_expyre``, ``~/.expyre``.

    ``EXPYRE_ROOT=@`` means "search", as in expyre-wfl 0.1.6.

    Parameters
    ----------
    cwd : path-like, optional
        Where to start looking upwards (default: the current directory).
    """
    if _init_root is not None:
        return _init_root
    env_root = os.environ.get("EXPYRE_ROOT")
    if env_root and env_root != "@":
        return Path(env_root).expanduser().resolve()
    here = Path(cwd or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_expyre").is_dir():
            return d / "_expyre"
    return home_dir()


def load_config(
    root: str | os.PathLike | None = None, cwd: str | os.PathLike | None = None
) -> ProjectConfig:
    """Read and validate the layered configuration of a project scope.

    Parameters
    ----------
    root : path-like, optional
        Project root; default :func:`find_root`.
    cwd : path-like, optional
        Starting directory for :func:`find_root`.

    Raises
    ------
    ConfigError
        For unreadable JSON or invalid content, naming the file, system and key.
    """
    root = Path(root).resolve() if root is not None else find_root(cwd)
    files = []
    for candidate in (home_dir() / "config.json", root / "config.json"):
        if candidate.is_file() and candidate.resolve() not in [f.resolve() for f in files]:
            files.append(candidate)

    systems: dict[str, SystemConfig] = {"local": builtin_local_system()}
    default_name = None
    for path in files:
        data = _read_json(path)
        for name, raw in data.get("systems", {}).items():
            systems[name] = parse_system(name, raw, str(path))
        default_name = data.get("default_system", default_name)

    default_name = os.environ.get("EXPYRE_SYS") or default_name
    cfg = ProjectConfig(root=root, systems=systems, default_system_name=default_name, files=files)
    if default_name is not None and default_name not in systems:
        source = "$EXPYRE_SYS" if os.environ.get("EXPYRE_SYS") else "default_system"
        raise ConfigError(
            f"{source} names system {default_name!r}, which is not defined in "
            f"{cfg._where()}; defined systems are {sorted(systems)}"
        )
    return cfg


def builtin_local_system() -> SystemConfig:
    """The embedded default: this machine, local queue, all cores, no time limit."""
    return SystemConfig(
        name="local",
        host=None,
        scheduler="local",
        partitions={"local": PartitionConfig("local", num_cores=os.cpu_count() or 1)},
        python_cmd=shlex.quote(sys.executable),
    )


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); fix the file's syntax") from exc
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: must contain a JSON object like {{"systems": {{...}}}}')
    unknown = set(data) - {"systems", "default_system"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed are "
            "'systems' and 'default_system'"
        )
    if not isinstance(data.get("systems", {}), dict):
        raise ConfigError(f"{path}: 'systems' must be an object mapping names to systems")
    if not isinstance(data.get("default_system", ""), str):
        raise ConfigError(f"{path}: 'default_system' must be a system name (a string)")
    return data


_SYSTEM_KEYS: dict[str, Any] = {
    "host": (str, type(None)),
    "scheduler": str,
    "partitions": dict,
    "queues": dict,
    "header": list,
    "no_default_header": bool,
    "commands": list,
    "pre_submit_cmds": list,
    "rundir": (str, type(None)),
    "remsh_cmd": str,
    "python_cmd": str,
}


def parse_system(name: str, raw: Any, source: str) -> SystemConfig:
    """Validate one system entry.

    Parameters
    ----------
    name : str
        The system's name.
    raw : dict
        Its JSON value.
    source : str
        File it came from, for error messages.

    Raises
    ------
    ConfigError
        Naming file, system and key for every problem.
    """
    where = f"{source}: system {name!r}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be an object with keys like 'scheduler', 'partitions'")
    for key, value in raw.items():
        if key not in _SYSTEM_KEYS:
            raise ConfigError(
                f"{where}: unknown key {key!r}; allowed keys are {sorted(_SYSTEM_KEYS)}"
            )
        if not isinstance(value, _SYSTEM_KEYS[key]):
            raise ConfigError(
                f"{where}: key {key!r} has the wrong type ({type(value).__name__}: {value!r})"
            )
    _check_values(raw, where)
    if raw.get("remsh_cmd") is not None:
        try:
            if not shlex.split(raw["remsh_cmd"]):
                raise ValueError("it is empty")
        except ValueError as exc:
            raise ConfigError(
                f"{where}: key 'remsh_cmd' is {raw['remsh_cmd']!r}, not a command ({exc}); "
                'write it as shell words, e.g. "ssh -p 2222"'
            ) from None
    for key in ("header", "commands", "pre_submit_cmds"):
        if not all(isinstance(line, str) for line in raw.get(key, [])):
            raise ConfigError(f"{where}: key {key!r} must be a list of strings")
    if "scheduler" not in raw:
        raise ConfigError(f"{where}: key 'scheduler' is missing; use one of {KNOWN_SCHEDULERS}")
    if raw["scheduler"] not in KNOWN_SCHEDULERS:
        raise ConfigError(
            f"{where}: key 'scheduler' is {raw['scheduler']!r}, an unknown scheduler; "
            f"use one of {KNOWN_SCHEDULERS}"
        )
    if "partitions" in raw and "queues" in raw:
        raise ConfigError(f"{where}: give 'partitions' or 'queues', not both (they are synonyms)")
    raw_parts = raw.get("partitions", raw.get("queues"))
    if not raw_parts:
        raise ConfigError(f"{where}: key 'partitions' is missing or empty; list at least one")
    partitions = {p: _parse_partition(p, v, where) for p, v in raw_parts.items()}
    host = raw.get("host")
    return SystemConfig(
        name=name,
        host=host or None,
        scheduler=raw["scheduler"],
        partitions=partitions,
        header=list(raw.get("header", [])),
        no_default_header=raw.get("no_default_header", False),
        commands=list(raw.get("commands", [])),
        pre_submit_cmds=list(raw.get("pre_submit_cmds", [])),
        rundir=raw.get("rundir"),
        remsh_cmd=raw.get("remsh_cmd") or os.environ.get("EXPYRE_RSH") or "ssh",
        # shell words: the job script runs it, the local queue shlex-splits it
        python_cmd=raw.get("python_cmd")
        or (shlex.quote(sys.executable) if not host else "python3"),
        source=source,
    )


#: sample values of every field a header line may use, to find a bad line when the file
#: is read rather than when the first job is submitted
_HEADER_SAMPLE_FIELDS = {
    "num_nodes": 1,
    "num_cores": 1,
    "num_cores_per_node": 1,
    "partition": "p",
    "id": "job",
    "job_name": "job",
    "max_time": "1:00:00",
    "max_time_s": 3600,
    "max_mem_kB": 1,
}


def _check_values(raw: dict, where: str) -> None:
    """Refuse values that would otherwise be silently replaced or misread.

    An empty ``host`` would make a cluster system run on this machine, an empty
    ``python_cmd`` or ``rundir`` would quietly fall back to a default, and a header line
    with an unknown ``{field}`` would only fail when the first job is submitted.
    """
    for key, meaning, fix in (
        ("host", "the machine to ssh to", "use null for this machine, or '[user@]host'"),
        ("python_cmd", "the python that runs jobs", "remove the key, or give e.g. 'python3'"),
        ("rundir", "where jobs run", "remove the key, or give a directory"),
    ):
        if isinstance(raw.get(key), str) and not raw[key].strip():
            raise ConfigError(f"{where}: key {key!r} ({meaning}) is empty; {fix}")
    if (
        isinstance(raw.get("rundir"), str)
        and raw["rundir"].startswith("~")
        and not (raw["rundir"] == "~" or raw["rundir"].startswith("~/"))
    ):
        raise ConfigError(
            f"{where}: key 'rundir' is {raw['rundir']!r}; '~user' is not supported, give a "
            "path relative to the home directory ('~/runs' or 'runs') or an absolute one"
        )
    from expyre.jobscript import format_header_lines  # jobscript needs no config

    try:
        format_header_lines(raw.get("header", []), _HEADER_SAMPLE_FIELDS, "header")
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _parse_partition(name: str, raw: Any, where: str) -> PartitionConfig:
    where = f"{where}, partition {name!r}"
    if not isinstance(raw, dict):
        raise ConfigError(f'{where}: must be an object like {{"num_cores": 32}}')
    unknown = set(raw) - {"num_cores", "max_time", "max_mem"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed are num_cores, max_time, max_mem"
        )
    cores = raw.get("num_cores")
    if cores is None:
        raise ConfigError(f"{where}: key 'num_cores' (cores per node) is missing")
    if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
        raise ConfigError(f"{where}: key 'num_cores' must be a positive integer, not {cores!r}")
    try:
        max_time = None if raw.get("max_time") is None else parse_time(raw["max_time"], "max_time")
        max_mem = None if raw.get("max_mem") is None else parse_memory(raw["max_mem"], "max_mem")
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return PartitionConfig(name, num_cores=cores, max_time_s=max_time, max_mem_kB=max_mem)


def init(root_dir: str | os.PathLike, verbose: bool = False) -> None:
    """Use ``root_dir`` as the project root from now on in this process.

    Parameters
    ----------
    root_dir : path-like
        The project directory holding ``config.json`` (usually a ``_expyre`` directory);
        its jobs database and stage directories go there too. ``"@"`` goes back to the
        usual lookup (``$EXPYRE_ROOT``, nearest ``_expyre`` upwards, ``~/.expyre``).
    verbose : bool
        Print the systems found on stderr.

    Raises
    ------
    ValueError
        If ``root_dir`` is not a directory.
    ConfigError
        If its ``config.json`` is invalid.
    """
    global _init_root
    if str(root_dir) == "@":
        _init_root = None
    else:
        root = Path(root_dir).expanduser().resolve()
        if not root.is_dir():
            raise ValueError(
                f"expyre.config.init: {str(root_dir)!r} is not a directory; give the project "
                "directory that holds (or will hold) config.json"
            )
        _init_root = root
    cfg = load_config()  # validates now, so a bad config.json is reported by init()
    if verbose:
        print(f"expyre config got systems {sorted(cfg.systems)}", file=sys.stderr)


def __getattr__(name: str) -> Any:
    # computed on each read, so they follow init(), $EXPYRE_ROOT and config.json edits
    if name == "systems":
        from expyre.system import System  # system imports this module

        cfg = load_config()
        return {sys_name: System(sc, cfg.root) for sys_name, sc in cfg.systems.items()}
    if name == "local_stage_dir":
        return find_root()
    if name == "db":
        from expyre.jobsdb import jobs_db  # jobsdb imports this module
        from expyre.legacy_jobsdb import LegacyJobsDB

        return LegacyJobsDB(jobs_db(load_config()))
    raise AttributeError(f"module 'expyre.config' has no attribute {name!r}")

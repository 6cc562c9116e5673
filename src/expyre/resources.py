"""What a job asks for (:class:`Resources`) and which partition gives it (:func:`select_partition`)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from expyre.config import PartitionConfig
from expyre.units import mem_to_kB, parse_memory, parse_time, time_to_sec  # noqa: F401 - 0.1.6 names

__all__ = ["NoPartitionFits", "Resources", "Selection", "select_partition"]


class NoPartitionFits(ValueError, RuntimeError):
    """No partition satisfies a Resources request; the message lists each rejection reason.

    Also a RuntimeError, the class expyre-wfl 0.1.6 raised for it.
    """


@dataclass(frozen=True, init=False)
class Resources:
    """Resources one job needs.

    Parameters
    ----------
    max_time : int or str
        Wall time: seconds, or ``"30m"``, ``"24h"``, ``"2d"``, ``"1-00:00:00"``, ``"H:M:S"``.
    num_nodes : int, optional
        Whole nodes wanted. Exactly one of ``num_nodes`` and ``num_cores`` must be given.
    num_cores : int, optional
        Total cores wanted.
    max_mem_tot : int or str, optional
        Total memory over all nodes: kB as an int, or ``"50GB"``-style.
    max_mem_per_core : int or str, optional
        Memory per core, same units.
    partitions : str or list of str, optional
        Regular expression(s) matched against whole partition names; only matches are used.
    queues : str or list of str, optional
        Synonym of ``partitions`` (SGE and PBS call them queues).

    Raises
    ------
    ValueError
        For bad values, naming the input and the fix.
    """

    max_time_s: int
    num_nodes: int | None
    num_cores: int | None
    max_mem_tot_kB: int | None
    max_mem_per_core_kB: int | None
    partitions: tuple[str, ...] | None

    def __init__(
        self,
        max_time: int | str,
        num_nodes: int | None = None,
        num_cores: int | None = None,
        max_mem_tot: int | str | None = None,
        max_mem_per_core: int | str | None = None,
        partitions: str | Iterable[str] | None = None,
        queues: str | Iterable[str] | None = None,
    ) -> None:
        if partitions is not None and queues is not None:
            raise ValueError(
                "Resources got both partitions and queues (synonyms); give only one of them"
            )
        if queues is not None:
            partitions = queues
        if (num_nodes is None) == (num_cores is None):
            raise ValueError(
                f"Resources needs exactly one of num_nodes and num_cores (got num_nodes="
                f"{num_nodes!r}, num_cores={num_cores!r}); give one of them"
            )
        for label, count in (("num_nodes", num_nodes), ("num_cores", num_cores)):
            if count is not None and (
                not isinstance(count, int) or isinstance(count, bool) or count < 1
            ):
                raise ValueError(f"Resources {label}={count!r} must be a positive integer")
        if max_mem_tot is not None and max_mem_per_core is not None:
            raise ValueError(
                "Resources got both max_mem_tot and max_mem_per_core; give at most one of them"
            )
        if isinstance(partitions, str):
            partitions = (partitions,)
        set_ = object.__setattr__  # frozen dataclass: assign once here
        set_(self, "max_time_s", parse_time(max_time, "Resources max_time"))
        set_(self, "num_nodes", num_nodes)
        set_(self, "num_cores", num_cores)
        set_(
            self,
            "max_mem_tot_kB",
            None if max_mem_tot is None else parse_memory(max_mem_tot, "Resources max_mem_tot"),
        )
        set_(
            self,
            "max_mem_per_core_kB",
            None
            if max_mem_per_core is None
            else parse_memory(max_mem_per_core, "Resources max_mem_per_core"),
        )
        set_(self, "partitions", None if partitions is None else tuple(partitions))
        for pattern in self.partitions or ():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"Resources partitions pattern {pattern!r} is not a regular expression ({exc})"
                ) from exc

    @property
    def max_time(self) -> int:
        """Wall time, seconds (the attribute name of expyre-wfl 0.1.6)."""
        return self.max_time_s

    def find_nodes(
        self, partitions: dict[str, dict], exact_fit: bool = True, partial_node: bool = False
    ) -> tuple[str, dict[str, int]]:
        """Pick a partition, as expyre-wfl 0.1.6's ``Resources.find_nodes`` did.

        Parameters
        ----------
        partitions : dict of str to dict
            ``{name: {"num_cores": cores per node, "max_time": s or "2h", "max_mem": kB or
            "8GB"}}`` (``max_time``/``max_mem`` may be None or absent).
        exact_fit, partial_node : bool
            As for :func:`select_partition`.

        Returns
        -------
        (str, dict)
            The partition's name and ``{"num_nodes", "num_cores", "num_cores_per_node"}``.

        Raises
        ------
        NoPartitionFits
            If none fits (a ValueError and a RuntimeError).
        """
        configs = {}
        for name, spec in partitions.items():
            max_time, max_mem = spec.get("max_time"), spec.get("max_mem")
            configs[name] = PartitionConfig(
                name,
                num_cores=int(spec["num_cores"]),
                max_time_s=None if max_time is None else parse_time(max_time, "max_time"),
                max_mem_kB=None if max_mem is None else parse_memory(max_mem, "max_mem"),
            )
        chosen = select_partition(self, configs, exact_fit=exact_fit, partial_node=partial_node)
        return chosen.partition, {
            "num_nodes": chosen.num_nodes,
            "num_cores": chosen.num_cores,
            "num_cores_per_node": chosen.num_cores_per_node,
        }

    @classmethod
    def coerce(cls, value: Resources | dict) -> Resources:
        """Accept a Resources or a dict of its constructor's keyword arguments."""
        if isinstance(value, Resources):
            return value
        if isinstance(value, dict):
            try:
                return cls(**value)
            except TypeError as exc:
                raise ValueError(
                    f"resources {value!r} is not valid ({exc}); allowed keys are max_time, "
                    "num_nodes, num_cores, max_mem_tot, max_mem_per_core, partitions, queues"
                ) from exc
        raise ValueError(f"resources must be a Resources or a dict, not {type(value).__name__}")


@dataclass(frozen=True)
class Selection:
    """The outcome of partition selection: what the job will actually get.

    Attributes
    ----------
    partition : str
    num_nodes : int
    num_cores : int
        Total cores allocated (whole nodes unless a partial node was allowed).
    num_cores_per_node : int
    max_time_s : int
        Wall time, seconds.
    max_mem_kB : int or None
        Memory per node, kB.
    """

    partition: str
    num_nodes: int
    num_cores: int
    num_cores_per_node: int
    max_time_s: int
    max_mem_kB: int | None


def select_partition(
    resources: Resources,
    partitions: dict[str, PartitionConfig],
    exact_fit: bool = True,
    partial_node: bool = False,
    max_nodes: int | None = None,
) -> Selection:
    """Pick the partition that satisfies ``resources`` with the fewest wasted cores.

    Parameters
    ----------
    resources : Resources
        The request.
    partitions : dict of str to PartitionConfig
        Candidates, in config order (the first wins a tie).
    exact_fit : bool
        With ``num_cores``, require a whole number of nodes (no idle cores on the last node).
    partial_node : bool
        Allow a request smaller than one node (the job shares the node).
    max_nodes : int, optional
        Most nodes the system has (1 for the local queue, which runs on this machine only).

    Raises
    ------
    NoPartitionFits
        Listing every partition with the reason it was rejected.
    """
    best: tuple[int, int, Selection] | None = None
    reasons = {}
    for order, part in enumerate(partitions.values()):
        selection, reason = _fit(resources, part, exact_fit, partial_node, max_nodes)
        if selection is None:
            reasons[part.name] = reason
            continue
        waste = selection.num_cores - (resources.num_cores or selection.num_cores)
        if best is None or (waste, order) < best[:2]:
            best = (waste, order, selection)
    if best is None:
        lines = "; ".join(f"{name}: {why}" for name, why in reasons.items())
        raise NoPartitionFits(
            f"no partition fits {resources} (exact_fit={exact_fit}, partial_node={partial_node}) "
            f"-- {lines}; ask for less, or change exact_fit/partial_node/partitions"
        )
    return best[2]


def _fit(
    res: Resources,
    part: PartitionConfig,
    exact_fit: bool,
    partial_node: bool,
    max_nodes: int | None = None,
) -> tuple[Selection | None, str]:
    ppn = part.num_cores
    if res.partitions is not None and not any(re.fullmatch(p, part.name) for p in res.partitions):
        return None, f"name does not match {list(res.partitions)}"
    if part.max_time_s is not None and res.max_time_s > part.max_time_s:
        return None, f"max_time {res.max_time_s} s exceeds the partition's {part.max_time_s} s"
    if res.num_nodes is not None:
        nodes, cores_per_node = res.num_nodes, ppn
    elif res.num_cores < ppn:
        if not partial_node:
            return None, (
                f"{res.num_cores} cores is less than one node ({ppn} cores) and partial_node=False"
            )
        nodes, cores_per_node = 1, res.num_cores
    else:
        if exact_fit and res.num_cores % ppn:
            return None, (
                f"{res.num_cores} cores is not a whole number of {ppn}-core nodes and exact_fit=True"
            )
        nodes, cores_per_node = math.ceil(res.num_cores / ppn), ppn
    if max_nodes is not None and nodes > max_nodes:
        return None, (
            f"needs {nodes} nodes of {ppn} cores but this system has {max_nodes} node(s); "
            f"ask for at most {max_nodes * ppn} cores"
        )
    mem_per_node = None
    if res.max_mem_tot_kB is not None:
        mem_per_node = math.ceil(res.max_mem_tot_kB / nodes)
    elif res.max_mem_per_core_kB is not None:
        mem_per_node = res.max_mem_per_core_kB * cores_per_node
    if mem_per_node is not None and part.max_mem_kB is not None and mem_per_node > part.max_mem_kB:
        return None, f"needs {mem_per_node} kB per node, the partition has {part.max_mem_kB} kB"
    return Selection(
        partition=part.name,
        num_nodes=nodes,
        num_cores=nodes * cores_per_node,
        num_cores_per_node=cores_per_node,
        max_time_s=res.max_time_s,
        max_mem_kB=mem_per_node,
    ), ""

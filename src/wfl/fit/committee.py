"""Committee fits: ``n`` independent fits (different seeds and/or data subsamples) at once.

Committee members are independent, so they need not wait for each other: all members are described first and, when queued execution is selected (the fitter's
own variable, ``WFL_GAP_SIMPLE_FIT_REMOTEINFO`` or ``WFL_ACE_FIT_REMOTEINFO``, or a
``WFL_EXPYRE_INFO`` key), submitted together as ``n`` jobs and gathered together, so they run
concurrently as far as the queue allows. Without a queue they run one after another here.

Member ``i`` uses seed ``seeds[i]`` (default ``base_seed + i``, base_seed=1) for the fitter's random
choices and, with ``subsample_fraction < 1``, fits a random subset of the configurations
drawn with ``numpy.random.default_rng(seeds[i])`` (so every rerun draws the same subsets).
Each member's completion record holds its start/end time (``wfl.fit.tasks.read_record``).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from wfl.autoparallelize.single_job import select_single_job_remote_info
from wfl.fit import ace
from wfl.fit.gap import simple
from wfl.fit.tasks import canonical_configs, run_fit_tasks

FITTERS = ("gap", "ace")


def member_seeds(n_committee: int, seeds: Sequence[int] | None, base_seed: int) -> list[int]:
    """One seed per member: ``seeds`` if given (checked), else ``base_seed + i``."""
    if n_committee < 1:
        raise ValueError(f"n_committee={n_committee} must be at least 1.")
    if seeds is None:
        return [base_seed + i for i in range(n_committee)]
    seeds = [int(s) for s in seeds]
    if len(seeds) != n_committee:
        raise ValueError(
            f"got {len(seeds)} seeds for n_committee={n_committee}; give one per member."
        )
    return seeds


def subsample(configs: list[Atoms], fraction: float | None, seed: int) -> list[Atoms]:
    """A reproducible random subset of ``ceil(fraction * len(configs))`` configurations."""
    if fraction is None or fraction >= 1.0:
        return configs
    if fraction <= 0.0:
        raise ValueError(f"subsample_fraction={fraction} must be in (0, 1].")
    n = max(1, math.ceil(fraction * len(configs)))
    chosen = np.sort(np.random.default_rng(seed).choice(len(configs), size=n, replace=False))
    return [configs[i] for i in chosen]


def fit_committee(
    fitter: str,
    fitting_configs: Iterable[Atoms],
    params,
    n_committee: int,
    name: str,
    fit_dir: str | os.PathLike = ".",
    seeds: Sequence[int] | None = None,
    base_seed: int = 1,
    subsample_fraction: float | None = None,
    ref_property_prefix: str = "REF_",
    command: str | None = None,
    remote_info=None,
    remote_label: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Fit ``n_committee`` independent potentials, as parallel queued jobs when selected.

    Parameters
    ----------
    fitter : {"gap", "ace"}
        ``"gap"``: :func:`wfl.fit.gap.simple.run_gap_fit` parameters (``rnd_seed`` set per
        member); ``"ace"``: :func:`wfl.fit.ace.fit` parameters (``seed`` set per member).
    fitting_configs : ConfigSet or iterable of Atoms
        Configurations with reference properties.
    params : dict, YAML text or YAML file
        The fitter's parameters, shared by all members (a ``gp_file`` is ignored).
    n_committee : int
        Number of members.
    name : str
        Member ``i`` is ``<fit_dir>/<name>.committee_<i>.xml`` (GAP) or ``.yaml`` (ACE).
    fit_dir : path, default "."
        Output directory.
    seeds : list of int, optional
        One seed per member (default ``base_seed + i``).
    base_seed : int, default 1
        See ``seeds`` (gap_fit refuses ``rnd_seed=0``).
    subsample_fraction : float, optional
        Fraction of the configurations each member fits (default: all of them).
    ref_property_prefix : str, default "REF_"
        Prefix of the reference keys (ACE; GAP reads the names from its parameters).
    command : str, optional
        gap_fit / pacemaker command.
    remote_info : RemoteInfo, dict or False, optional
        Job settings for every member (default: the fitter's env variable or a
        ``WFL_EXPYRE_INFO`` key, else here). False: all here.
    remote_label : str, optional
        Label matched against ``WFL_EXPYRE_INFO`` keys.
    overwrite : bool, default False
        Refit members whose files exist from fits with other inputs.

    Returns
    -------
    list of Path
        The members' potential files, in member order.
    """
    if fitter not in FITTERS:
        raise ValueError(f"fitter={fitter!r} is not supported; use one of {FITTERS}.")
    # selected here, not in a helper: WFL_EXPYRE_INFO keys match this frame
    info = (
        None
        if remote_info is False
        else select_single_job_remote_info(
            simple.ENV_VAR if fitter == "gap" else ace.ENV_VAR, remote_info, remote_label
        )
    )
    configs = canonical_configs(fitting_configs)
    base_params = simple.load_params(params)
    fit_dir = Path(fit_dir).absolute()
    tasks = []
    for i, seed in enumerate(member_seeds(n_committee, seeds, base_seed)):
        member_configs = subsample(configs, subsample_fraction, seed)
        member = f"{name}.committee_{i}"
        if fitter == "gap":
            member_params = copy.deepcopy(base_params)
            member_params["rnd_seed"] = seed
            member_params["gp_file"] = str(fit_dir / f"{member}.xml")
            tasks.append(
                simple.prepare_gap_fit(
                    member_configs,
                    member_params,
                    fit_dir / f"{member}.stdout",
                    command,
                    name=f"gap_committee_{name}_{i}",
                )
            )
        else:
            member_params = copy.deepcopy(base_params)
            member_params["seed"] = seed
            tasks.append(
                ace.prepare_ace_fit(
                    member_configs,
                    member,
                    member_params,
                    fit_dir,
                    ref_property_prefix,
                    None,
                    command,
                    name=f"ace_committee_{name}_{i}",
                )
            )
    return run_fit_tasks(tasks, info, overwrite)

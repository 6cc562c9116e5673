"""Multistage GAP fit: a sequence of simple fits, each stage's settings derived from the last.

Parameters (dict, YAML text or YAML/JSON file)::

    gap_params:             # gap_fit keywords shared by every stage
      e0: {Cu: 3.51}
      default_sigma: [0.01, 0.1, 0.0, 0.0]
      sparse_jitter: 1.0e-8
    stages:
      - descriptors: [{distance_2b: True, cutoff: 4.0, n_sparse: 20, ...}]
      - descriptors: [{soap: True, l_max: 3, n_max: 4, cutoff: 4.0, n_sparse: 50, ...}]
        delta_factor: 1.0   # optional, default 1
        gap_params: {}      # optional, overrides for this stage only

Stage *k* fits the descriptors of stages 0..k together. What is derived from the previous
stage: the ``delta`` (energy scale, eV) of each descriptor *added* in stage *k* that does not
set one itself is ``delta_factor`` times

- stage 0: the spread (standard deviation) of the reference per-atom energies minus ``e0``;
- stage *k* > 0: the RMS per-atom energy error of stage *k*-1's potential on the fitting
  configurations, i.e. the part of the energy the new descriptors are left to explain.

Descriptors carried over keep the delta they got when added. Stage files are
``<run_dir>/<GAP_name>.stage_<k>.xml``; the last stage is ``<run_dir>/<GAP_name>.xml``.

Queued execution: ``WFL_GAP_SIMPLE_FIT_REMOTEINFO`` sends each stage as its own job (the
evaluation between stages runs here); ``WFL_GAP_MULTISTAGE_FIT_REMOTEINFO`` (checked first)
sends the whole multistage fit as one job.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from ase import Atoms

from expyre.atomicfile import write_atomic
from wfl.autoparallelize.single_job import select_single_job_remote_info
from wfl.fit.gap import simple
from wfl.fit.tasks import (
    FitTask,
    canonical_configs,
    collect_outputs,
    fit_digest,
    run_fit_tasks,
)

ENV_VAR = "WFL_GAP_MULTISTAGE_FIT_REMOTEINFO"


def _check_params(params: dict) -> dict:
    unknown = set(params) - {"gap_params", "stages"}
    if unknown:
        raise ValueError(
            f"multistage GAP params have unknown key(s) {sorted(unknown)}; "
            "use 'gap_params' (shared gap_fit keywords) and 'stages'."
        )
    stages = params.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ValueError(
            "multistage GAP params need a non-empty list 'stages', each with "
            "'descriptors': [{'soap': True, ...}, ...]."
        )
    for i, stage in enumerate(stages):
        if not isinstance(stage, dict) or not stage.get("descriptors"):
            raise ValueError(f"stage {i} of the multistage GAP params has no 'descriptors' list.")
        unknown = set(stage) - {"descriptors", "delta_factor", "gap_params"}
        if unknown:
            raise ValueError(
                f"stage {i} has unknown key(s) {sorted(unknown)}; "
                "use 'descriptors', 'delta_factor', 'gap_params'."
            )
    return params


def per_atom_energy_spread(configs: list[Atoms], energy_key: str, e0: dict) -> float:
    """Standard deviation of (E - Σ e0) / N over the configurations (eV/atom)."""
    values = [
        (at.info[energy_key] - sum(e0.get(s, 0.0) for s in at.get_chemical_symbols())) / len(at)
        for at in configs
        if energy_key in at.info
    ]
    if not values:
        raise ValueError(
            f"no fitting configuration has info[{energy_key!r}]; check ref_property_prefix."
        )
    return float(np.std(values))


def per_atom_energy_rmse(configs: list[Atoms], potential_file: Path, energy_key: str) -> float:
    """RMS per-atom energy error (eV/atom) of a GAP potential on the configurations."""
    from quippy.potential import Potential

    pot = Potential(param_filename=str(potential_file))
    errors = []
    for at in configs:
        if energy_key not in at.info:
            continue
        at = at.copy()
        at.calc = pot
        errors.append((at.get_potential_energy() - at.info[energy_key]) / len(at))
    return float(np.sqrt(np.mean(np.square(errors))))


def _stage_fitting_dict(params, k, descriptors, gp_file, ref_prefix, seed) -> dict:
    fitting = copy.deepcopy(params.get("gap_params") or {})
    fitting.update(copy.deepcopy(params["stages"][k].get("gap_params") or {}))
    fitting.setdefault("energy_parameter_name", f"{ref_prefix}energy")
    fitting.setdefault("force_parameter_name", f"{ref_prefix}forces")
    fitting.setdefault("virial_parameter_name", f"{ref_prefix}virial")
    if seed is not None:
        fitting.setdefault("rnd_seed", seed)
    fitting["gap"] = descriptors
    fitting["gp_file"] = str(gp_file)
    return fitting


def _stage_file(run_dir: Path, GAP_name: str, k: int, n_stages: int) -> Path:  # noqa: N803
    return run_dir / (f"{GAP_name}.xml" if k == n_stages - 1 else f"{GAP_name}.stage_{k}.xml")


def run_multistage_here(
    configs: list[Atoms],
    GAP_name: str,  # noqa: N803 - the name users' scripts pass
    params: dict,
    run_dir: str | os.PathLike = ".",
    ref_property_prefix: str = "REF_",
    seed: int | None = None,
    gap_fit_command: str | None = None,
    stage_remote_info=None,
    overwrite: bool = False,
) -> Path:
    """Run all stages from this process (each stage here or as its own job); return the last.

    ``stage_remote_info=False`` runs every stage in this process (used inside a whole-
    multistage job); None lets ``WFL_GAP_SIMPLE_FIT_REMOTEINFO`` decide.
    """
    run_dir = Path(run_dir).absolute()
    energy_key = f"{ref_property_prefix}energy"
    stages = params["stages"]
    e0 = (params.get("gap_params") or {}).get("e0") or {}
    descriptors: list = []
    previous: Path | None = None
    for k, stage in enumerate(stages):
        if previous is None:
            scale = per_atom_energy_spread(configs, energy_key, e0)
        else:
            scale = per_atom_energy_rmse(configs, previous, energy_key)
        delta = max(scale, 1e-4) * float(stage.get("delta_factor", 1.0))
        for desc in stage["descriptors"]:
            desc = copy.deepcopy(desc)
            if isinstance(desc, dict) and "delta" not in desc:
                desc["delta"] = delta
            descriptors.append(desc)
        gp_file = _stage_file(run_dir, GAP_name, k, len(stages))
        fitting = _stage_fitting_dict(params, k, descriptors, gp_file, ref_property_prefix, seed)
        previous = simple.run_gap_fit(
            configs,
            fitting,
            run_dir / f"{gp_file.stem}.stdout",
            gap_fit_command=gap_fit_command,
            remote_info=stage_remote_info,
            overwrite=overwrite,
        )
    return previous


def _whole_multistage_job(configs, GAP_name, params, ref_property_prefix, seed, gap_fit_command):  # noqa: N803
    """Body of the one-job multistage fit: all stages here, all files returned as bytes."""
    started = time.time()
    # a subdirectory: the job's own directory also holds the queue's files
    here = Path(tempfile.mkdtemp(prefix="multistage_", dir="."))
    run_multistage_here(
        configs, GAP_name, params, here, ref_property_prefix, seed, gap_fit_command, False
    )
    return collect_outputs(here, sorted(p.name for p in here.iterdir() if p.is_file()), started)


def fit(
    fitting_configs: Iterable[Atoms],
    GAP_name: str,  # noqa: N803 - the name users' scripts pass
    params,
    run_dir: str | os.PathLike = ".",
    ref_property_prefix: str = "REF_",
    seed: int | None = None,
    gap_fit_command: str | None = None,
    remote_info=None,
    stage_remote_info=None,
    remote_label: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Fit a GAP in stages (see module docstring); return the final potential file.

    Parameters
    ----------
    fitting_configs : ConfigSet or iterable of Atoms
        Configurations with ``<prefix>energy`` in info and ``<prefix>forces`` in arrays
        (``<prefix>virial`` used if present).
    GAP_name : str
        Base name of the potential files in ``run_dir``.
    params : dict, YAML text or YAML/JSON file
        ``gap_params`` and ``stages`` (see module docstring).
    run_dir : path, default "."
        Where the stage and final potentials (and gap_fit outputs) are written.
    ref_property_prefix : str, default "REF_"
        Prefix of the reference property keys.
    seed : int, optional
        gap_fit ``rnd_seed`` for every stage (unless the params set one).
    gap_fit_command : str, optional
        See :func:`wfl.fit.gap.simple.run_gap_fit`.
    remote_info : RemoteInfo, dict or False, optional
        Run the whole multistage fit as this one job (default: env
        ``WFL_GAP_MULTISTAGE_FIT_REMOTEINFO`` or a ``WFL_EXPYRE_INFO`` key). False: here.
    stage_remote_info : RemoteInfo, dict or False, optional
        When the multistage runs here: each stage as this job (default: env
        ``WFL_GAP_SIMPLE_FIT_REMOTEINFO``). False: every stage here.
    remote_label : str, optional
        Label matched against ``WFL_EXPYRE_INFO`` keys.
    overwrite : bool, default False
        Refit although finished potentials from other inputs exist.

    Returns
    -------
    Path
        ``<run_dir>/<GAP_name>.xml``. Rerunning with the same inputs refits nothing.
    """
    params = _check_params(simple.load_params(params))
    configs = canonical_configs(fitting_configs)
    run_dir = Path(run_dir).absolute()
    task = FitTask(
        name=f"gap_multistage_{GAP_name}",
        function=_whole_multistage_job,
        args=(configs, GAP_name, params, ref_property_prefix, seed, gap_fit_command),
        kwargs={},
        output_path=run_dir / f"{GAP_name}.xml",
        digest=fit_digest("gap_multistage", [params, ref_property_prefix, seed], configs),
        record=run_dir / f".{GAP_name}.multistage.wfl-fit.json",
    )
    # selected here, not in a helper: WFL_EXPYRE_INFO keys match this frame
    info = (
        None
        if remote_info is False
        else select_single_job_remote_info(ENV_VAR, remote_info, remote_label)
    )
    if info is not None:
        return run_fit_tasks([task], info, overwrite)[0]

    final = run_multistage_here(
        configs,
        GAP_name,
        params,
        run_dir,
        ref_property_prefix,
        seed,
        gap_fit_command,
        stage_remote_info,
        overwrite,
    )
    # mark the whole multistage as done, so a later whole-job run finds it finished too
    _write_marker(task)
    return final


def _write_marker(task: FitTask) -> None:
    record = {"digest": task.digest, "code": task.code, "finished": time.time(), "job_id": None}
    write_atomic(task.record_path, json.dumps(record, indent=1))

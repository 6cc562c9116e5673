"""VASP as an ASE calculator with the conventions of queued VASP workflows and per-configuration run directories.

Conventions (those of the documented VASP relaxation workflow, so its scripts run unchanged):

- ``WFL_VASP_KWARGS`` (JSON text, or the path of a JSON file) gives keyword defaults; explicit
  keyword arguments override them. In a queued job the job's shell has already expanded
  values such as ``${EXPYRE_NUM_CORES_PER_NODE}``, so ``{"ncore": 16}`` arrives as text.
- ``VASP_COMMAND`` runs VASP; ``VASP_COMMAND_GAMMA`` (if set) runs the Γ-only binary for
  non-periodic configurations and whenever the k-point grid is 1×1×1.
- POTCARs are read from ``$VASP_PP_PATH/<symbol>/POTCAR``: ``pp`` defaults to ``"."`` and
  ``setups`` to ``{symbol: ""}`` for every element present, as the documented workflow sets them
  (``VASP_PP_PATH=POTCARs`` with ``input_files: ["POTCARs"]`` stages them into the job).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import all_changes
from ase.calculators.vasp import Vasp as ASEVasp

from wfl.calculators.utils import (
    DEFAULT_AUTOPARA_INFO,
    CalculationFailed,
    check_keep_files,
    clear_failure,
    flag_failure,
    per_config_rundir,
    properties_to_compute,
)

#: Keyword arguments of this class that are wfl's, not VASP's.
_WFL_KEYS = ("workdir", "rundir_prefix", "scratch_dir", "keep_files", "calculator_properties")


def read_vasp_kwargs_env(env_var: str = "WFL_VASP_KWARGS") -> dict:
    """Keyword defaults from ``env_var``: JSON text or the path of a JSON file.

    Returns
    -------
    dict
        Empty if the variable is unset or empty.

    Raises
    ------
    ValueError
        If the value is neither a JSON object nor the path of a file holding one.
    """
    text = os.environ.get(env_var, "").strip()
    if not text:
        return {}
    source = "text"
    if not text.startswith("{") and Path(text).is_file():
        source = f"file {text}"
        text = Path(text).read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{env_var} ({source}) is not valid JSON ({exc}); set it to a JSON object such as "
            "'{\"ncore\": 4}' or to the path of a file holding one."
        ) from None
    if not isinstance(value, dict):
        raise ValueError(
            f"{env_var} ({source}) holds a {type(value).__name__}, not a JSON object; "
            "use e.g. '{\"ncore\": 4}'."
        )
    return value


def vasp_kspacing_grid(atoms: Atoms, kspacing: float) -> list[int]:
    """The k-point grid VASP makes from INCAR KSPACING (1/Å, including the 2π factor)."""
    recip_lengths = np.linalg.norm(atoms.cell.reciprocal(), axis=1)  # 1/Å without 2π
    return [max(1, math.ceil(2 * math.pi * b / kspacing)) for b in recip_lengths]


class Vasp(ASEVasp):
    """ASE's VASP calculator, one private run directory per configuration.

    Parameters
    ----------
    workdir : str, default "."
        Directory under which each configuration's run directory is made.
    rundir_prefix : str, default "run_VASP_"
        Prefix of run directory names.
    scratch_dir : str, optional
        Run under this directory (e.g. node-local disk) and copy kept files to ``workdir``.
    keep_files : bool, "default" or list of str, default False
        Files kept after success ("default": INCAR, KPOINTS, POSCAR, OUTCAR, CONTCAR,
        OSZICAR, vasprun.xml, vasp.out); failures keep everything.
    calculator_properties : list of str, default ["energy", "forces", "stress"]
        Properties computed by every run (no stress for non-periodic systems).
    command, command_gamma : str, optional
        Commands running VASP and its Γ-only build. Default: env ``VASP_COMMAND`` (or ASE's
        ``ASE_VASP_COMMAND``) and ``VASP_COMMAND_GAMMA``; without a Γ-only command the
        normal one is used everywhere.
    **kwargs
        VASP/ASE keywords (``encut``, ``kspacing``, ``kpts``, ``pp``, ``setups``, ...),
        layered over the defaults read from env ``WFL_VASP_KWARGS``.

    Notes
    -----
    A configuration with no periodic direction is run as periodic (VASP always is) with a
    1×1×1 Γ-centred grid, the Γ-only binary and no stress; give it vacuum. A failed run
    raises :class:`~wfl.calculators.utils.CalculationFailed` after flagging ``atoms.info``.
    """

    #: Chunk size the autoparallelized operations should use for this calculator.
    wfl_default_autopara_info = DEFAULT_AUTOPARA_INFO
    wfl_default_keep_patterns = (
        "INCAR",
        "KPOINTS",
        "POSCAR",
        "OUTCAR",
        "CONTCAR",
        "OSZICAR",
        "vasprun.xml",
        "vasp.out",
    )

    def __init__(
        self,
        *,
        workdir: str | os.PathLike = ".",
        rundir_prefix: str = "run_VASP_",
        scratch_dir: str | os.PathLike | None = None,
        keep_files=False,
        calculator_properties=("energy", "forces", "stress"),
        command: str | None = None,
        command_gamma: str | None = None,
        **kwargs,
    ):
        check_keep_files(keep_files)
        merged = read_vasp_kwargs_env()
        merged.update(kwargs)
        # the documented convention users' POTCAR trees follow: POTCARs are $VASP_PP_PATH/<symbol>/POTCAR
        merged.setdefault("pp", ".")
        self._wfl_setups_given = merged.get("setups") is not None
        super().__init__(directory=str(workdir), **merged)
        self.workdir = workdir
        self.rundir_prefix = rundir_prefix
        self.scratch_dir = scratch_dir
        self.keep_files = keep_files
        self.calculator_properties = list(calculator_properties)
        self.wfl_command = command
        self.wfl_command_gamma = command_gamma

    def _is_gamma_only(self, atoms: Atoms) -> bool:
        """True if this configuration's k-point sampling is the Γ point alone."""
        if not any(atoms.pbc):
            return True
        kspacing = self.float_params.get("kspacing")
        if kspacing is not None:
            return vasp_kspacing_grid(atoms, kspacing) == [1, 1, 1]
        kpts = self.input_params.get("kpts")
        if kpts is None:
            return True
        shape = np.shape(kpts)
        return shape == (3,) and [int(k) for k in kpts] == [1, 1, 1]

    def _command_for(self, gamma_only: bool) -> str:
        if gamma_only:
            gamma = self.wfl_command_gamma or os.environ.get("VASP_COMMAND_GAMMA")
            if gamma:
                return gamma
        # read VASP_PP_PATH ourselves: ASE would warn that env variables are deprecated
        command = self.wfl_command or os.environ.get("VASP_COMMAND")
        return self.make_command(command)

    def _adapted_params(self, atoms: Atoms) -> dict:
        """Temporary parameter changes for this configuration: {(dict name, key): value}."""
        changes = {}
        if not self._wfl_setups_given:
            changes[("input_params", "setups")] = {s: "" for s in set(atoms.get_chemical_symbols())}
        if not any(atoms.pbc):
            changes[("float_params", "kspacing")] = None
            changes[("input_params", "kpts")] = (1, 1, 1)
            changes[("input_params", "gamma")] = True
        return changes

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Write VASP inputs for ``atoms`` in a fresh run directory, run VASP, read results.

        Raises
        ------
        CalculationFailed
            If VASP fails or its outputs cannot be read; ``atoms.info`` is flagged first.
        """
        if atoms is None:
            atoms = self.atoms
        properties = properties_to_compute(properties, self.calculator_properties, atoms)
        run_atoms = atoms.copy()
        run_atoms.pbc = True  # VASP is always periodic; _adapted_params handles the k-points
        changes = self._adapted_params(atoms)
        saved = {key: getattr(self, key[0])[key[1]] for key in changes}
        try:
            for (dict_name, name), value in changes.items():
                getattr(self, dict_name)[name] = value
            command = self._command_for(self._is_gamma_only(atoms))
            with per_config_rundir(
                self.workdir,
                self.rundir_prefix,
                self.scratch_dir,
                self.keep_files,
                self.wfl_default_keep_patterns,
            ) as rundir:
                self.directory = str(rundir)
                self.command = command
                with warnings.catch_warnings():
                    # VASP_PP_PATH from the environment is how users' job scripts point at POTCARs
                    warnings.filterwarnings("ignore", message="Loaded .* from environment")
                    super().calculate(run_atoms, properties, system_changes)
        except CalculationFailed as exc:
            self.results = {}
            flag_failure(atoms, "Vasp", exc, exc.rundir)
            raise
        finally:
            for (dict_name, name), value in saved.items():
                getattr(self, dict_name)[name] = value
            self.directory = str(self.workdir)
        # a VASP relaxation (ibrion >= 0, nsw > 0) moved run_atoms: give the caller the result
        atoms.positions = run_atoms.positions
        atoms.cell = run_atoms.cell
        if not any(atoms.pbc):
            self.results.pop("stress", None)
        # remember the caller's atoms and the restored parameters, so that asking for another
        # property of the same configuration does not rerun VASP
        self._store_param_state()
        self._atoms = atoms.copy()
        clear_failure(atoms)

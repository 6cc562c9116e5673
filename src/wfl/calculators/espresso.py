"""Quantum ESPRESSO ``pw.x`` as an ASE calculator with wfl's per-configuration run directories.

Usable directly (``atoms.calc = Espresso(...)``) or as a picklable
``(Espresso, [], kwargs)`` tuple given to :func:`wfl.calculators.generic.calculate` or
:func:`wfl.generate.optimize.optimize`, which builds the calculator inside the worker.
"""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path

from ase import Atoms
from ase.calculators.calculator import all_changes
from ase.calculators.espresso import Espresso as ASEEspresso
from ase.calculators.espresso import EspressoProfile
from ase.io.espresso import Namelist

from wfl.calculators.utils import (
    DEFAULT_AUTOPARA_INFO,
    CalculationFailed,
    check_keep_files,
    clear_failure,
    flag_failure,
    per_config_rundir,
    properties_to_compute,
)

#: Where Debian's ``quantum-espresso-data`` installs pseudopotentials.
DEBIAN_PSEUDO_DIR = "/usr/share/espresso/pseudo"


def default_pseudo_dir() -> str:
    """Pseudopotential directory: env ``ESPRESSO_PSEUDO``, else Debian's, else QE's default."""
    if os.environ.get("ESPRESSO_PSEUDO"):
        return os.environ["ESPRESSO_PSEUDO"]
    if Path(DEBIAN_PSEUDO_DIR).is_dir():
        return DEBIAN_PSEUDO_DIR
    return str(Path.home() / "espresso" / "pseudo")


def qe_error_text(rundir: Path, max_lines: int = 6) -> str:
    """The error message pw.x printed (between its %%%% banners), else the tail of stderr."""
    pwo = rundir / "espresso.pwo"
    if pwo.is_file():
        lines = pwo.read_text(errors="replace").splitlines()
        banner = [i for i, line in enumerate(lines) if line.strip().startswith("%%%%")]
        if len(banner) >= 2:
            body = [line.strip() for line in lines[banner[0] + 1 : banner[1]] if line.strip()]
            return " ".join(body[:max_lines])
    err = rundir / "espresso.err"
    if err.is_file():
        tail = [
            line.strip() for line in err.read_text(errors="replace").splitlines() if line.strip()
        ]
        if tail:
            return " ".join(tail[-max_lines:])
    return f"no error message found; see the files in {rundir}"


class Espresso(ASEEspresso):
    """ASE's Quantum ESPRESSO calculator, one private run directory per configuration.

    Parameters
    ----------
    command : str, optional
        Command running pw.x (``-in espresso.pwi`` is appended), e.g. ``"mpirun -np 4 pw.x"``.
        Default: env ``ASE_ESPRESSO_COMMAND``, else ``"pw.x"``.
    pseudo_dir : str, optional
        Directory of the pseudopotential files. Default: env ``ESPRESSO_PSEUDO``, else
        ``/usr/share/espresso/pseudo`` (Debian's quantum-espresso-data) if present.
    pseudopotentials : dict
        Element symbol -> pseudopotential file name in ``pseudo_dir``.
    kspacing : float, optional
        Maximum k-point spacing in reciprocal space (1/Å, ASE convention without the 2π
        factor, so VASP's KSPACING = 2π × this). Non-periodic directions get 1 k-point.
    kpts : (int, int, int), optional
        Explicit Monkhorst-Pack grid, used when ``kspacing`` is None.
    workdir : str, default "."
        Directory under which each configuration's run directory is made.
    rundir_prefix : str, default "run_QE_"
        Prefix of run directory names.
    scratch_dir : str, optional
        Run under this directory (e.g. node-local disk) and copy kept files to ``workdir``.
    keep_files : bool, "default" or list of str, default False
        Files kept after success ("default": ``espresso.pwi/pwo/err``); failures keep all.
    calculator_properties : list of str, default ["energy", "forces", "stress"]
        Properties computed by every run (stress is skipped for non-periodic systems),
        so that asking for forces after energy does not run pw.x twice.
    **kwargs
        Passed to ASE's Espresso (``input_data``, ``koffset``, ...).

    Notes
    -----
    A configuration with no periodic direction is run with Γ-point-only k-points and no
    stress; it still needs a cell (pw.x always uses one): give it vacuum, e.g.
    ``atoms.center(vacuum=5.0)``. A failed run raises :class:`CalculationFailed` after
    recording the failure in ``atoms.info`` (see :mod:`wfl.calculators.utils`).
    """

    #: Chunk size the autoparallelized operations should use for this calculator.
    wfl_default_autopara_info = DEFAULT_AUTOPARA_INFO
    wfl_default_keep_patterns = ("espresso.pwi", "espresso.pwo", "espresso.err")

    def __init__(
        self,
        *,
        command: str | None = None,
        pseudo_dir: str | None = None,
        pseudopotentials: dict | None = None,
        kspacing: float | None = None,
        kpts=None,
        workdir: str | os.PathLike = ".",
        rundir_prefix: str = "run_QE_",
        scratch_dir: str | os.PathLike | None = None,
        keep_files=False,
        calculator_properties=("energy", "forces", "stress"),
        **kwargs,
    ):
        check_keep_files(keep_files)
        if kspacing is not None and kspacing <= 0:
            raise ValueError(f"Espresso: kspacing={kspacing!r} must be a positive float (1/Å).")
        if command is None:
            command = os.environ.get("ASE_ESPRESSO_COMMAND", "pw.x")
        profile = EspressoProfile(command=command, pseudo_dir=pseudo_dir or default_pseudo_dir())
        super().__init__(
            profile=profile,
            directory=workdir,
            pseudopotentials=dict(pseudopotentials or {}),
            kspacing=kspacing,
            kpts=kpts,
            **kwargs,
        )
        self.workdir = workdir
        self.rundir_prefix = rundir_prefix
        self.scratch_dir = scratch_dir
        self.keep_files = keep_files
        self.calculator_properties = list(calculator_properties)

    def _check_pseudopotentials(self, atoms: Atoms) -> None:
        pseudos = self.parameters.get("pseudopotentials") or {}
        missing = sorted(set(atoms.get_chemical_symbols()) - set(pseudos))
        if not missing:
            return
        pseudo_dir = Path(self.profile.pseudo_dir)
        hints = []
        for sym in missing:
            found = (
                sorted(p.name for p in pseudo_dir.glob(f"{sym}[._-]*"))
                if pseudo_dir.is_dir()
                else []
            )
            hints.append(f"{sym}: {', '.join(found) or 'none found'}")
        raise ValueError(
            f"Espresso: no pseudopotential given for element(s) {', '.join(missing)}; pass "
            f"pseudopotentials={{'{missing[0]}': '<file>'}} with a file from {pseudo_dir} "
            f"(candidates {'; '.join(hints)})."
        )

    def _parameters_for(self, atoms: Atoms, properties: list[str]) -> dict:
        """A private copy of the parameters, adapted to this configuration and properties."""
        params = copy.deepcopy(self.parameters)
        # ASE no longer derives these from the requested properties; without them pw.x
        # prints no forces/stress and ASE finds nothing to read
        input_data = Namelist(params.pop("input_data", None))
        input_data.to_nested("pw")
        input_data["control"].setdefault("tprnfor", "forces" in properties)
        input_data["control"].setdefault("tstress", "stress" in properties)
        params["input_data"] = input_data
        if not any(atoms.pbc):
            if atoms.cell.rank < 3:
                raise ValueError(
                    "Espresso: a non-periodic configuration has no cell, but pw.x needs one; "
                    "give it a box with vacuum, e.g. atoms.center(vacuum=5.0)."
                )
            # Γ point only: pw.x's gamma tricks halve time and memory
            params["kspacing"] = None
            params["kpts"] = None
            params.pop("koffset", None)
        return params

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Run pw.x for ``atoms`` in a fresh run directory and read energy/forces/stress.

        Raises
        ------
        CalculationFailed
            If pw.x fails or its output cannot be read; ``atoms.info`` is flagged first.
        """
        if atoms is None:
            atoms = self.atoms
        properties = properties_to_compute(properties, self.calculator_properties, atoms)
        try:
            with per_config_rundir(
                self.workdir,
                self.rundir_prefix,
                self.scratch_dir,
                self.keep_files,
                self.wfl_default_keep_patterns,
            ) as rundir:
                self._check_pseudopotentials(atoms)
                params = self._parameters_for(atoms, properties)
                self.directory = rundir
                self.template.write_input(
                    profile=self.profile,
                    directory=rundir,
                    atoms=atoms,
                    parameters=params,
                    properties=properties,
                )
                try:
                    self.template.execute(rundir, self.profile)
                except subprocess.CalledProcessError as exc:
                    raise CalculationFailed(
                        f"pw.x exited with code {exc.returncode}: {qe_error_text(rundir)}"
                    ) from exc
                self.results = dict(self.template.read_results(rundir))
        except CalculationFailed as exc:
            self.results = {}
            flag_failure(atoms, "Espresso", exc, exc.rundir)
            raise
        finally:
            self.directory = Path(self.workdir)
        if not any(atoms.pbc):
            self.results.pop("stress", None)
        clear_failure(atoms)

"""Run directories and failure flags shared by the file-based (DFT) calculators.

Every configuration a file-based calculator evaluates runs in its own fresh directory, so
concurrent pool workers and successive configurations never read each other's files. What
happens to the directory afterwards is controlled by ``keep_files``:

- ``False`` (default): removed after a successful calculation,
- ``"default"``: only the calculator's main input/output files are kept,
- ``True``: everything is kept,
- a list of glob patterns: only matching files are kept.

A failed calculation always keeps everything, and the configuration's ``info`` records the
failure (:data:`FAILED_INFO_KEY`, :data:`FAILED_MESSAGE_INFO_KEY`, :data:`RUNDIR_INFO_KEY`)
so that one bad configuration can be found afterwards without stopping the whole batch.

With ``scratch_dir`` the calculation runs in a directory under ``scratch_dir`` (e.g. a
node-local disk) and the files to keep are copied into ``workdir`` at the end.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from ase import Atoms

# defined below this package (wfl.utils), so nothing there points back up; importable here too
from wfl.utils.calc import CalculationFailed as CalculationFailed

#: ``info`` key set to True on a configuration whose calculation failed.
FAILED_INFO_KEY = "calculation_failed"
#: ``info`` key holding "<calculator>: <exception type>: <message>" of the failure.
FAILED_MESSAGE_INFO_KEY = "calculation_failed_message"
#: ``info`` key holding the path of the kept run directory of a failed calculation.
RUNDIR_INFO_KEY = "calculation_failed_rundir"

#: Default chunk size for expensive file-based calculators: one configuration per task,
#: because each one can take minutes to hours and chunks would only unbalance the pool.
DEFAULT_AUTOPARA_INFO = {"num_inputs_per_python_subprocess": 1}


def flag_failure(atoms: Atoms, calculator_name: str, exc: BaseException, rundir) -> None:
    """Record a failed calculation in ``atoms.info``.

    Parameters
    ----------
    atoms : Atoms
        Configuration whose calculation failed (modified in place).
    calculator_name : str
        Short name of the calculator, e.g. ``"Espresso"``.
    exc : BaseException
        The exception that made the calculation fail.
    rundir : path-like or None
        Directory where the calculation's files were kept.
    """
    atoms.info[FAILED_INFO_KEY] = True
    message = str(exc) if isinstance(exc, CalculationFailed) else f"{type(exc).__name__}: {exc}"
    atoms.info[FAILED_MESSAGE_INFO_KEY] = f"{calculator_name}: {message}"
    if rundir is not None:
        atoms.info[RUNDIR_INFO_KEY] = str(rundir)


def clear_failure(atoms: Atoms) -> None:
    """Remove failure flags left by an earlier failed calculation of ``atoms``."""
    for key in (FAILED_INFO_KEY, FAILED_MESSAGE_INFO_KEY, RUNDIR_INFO_KEY):
        atoms.info.pop(key, None)


def check_keep_files(keep_files) -> None:
    """Raise a clear ValueError unless ``keep_files`` is one of the accepted forms."""
    if keep_files in (True, False, "default"):
        return
    if (
        isinstance(keep_files, Sequence)
        and not isinstance(keep_files, str)
        and all(isinstance(p, str) for p in keep_files)
    ):
        return
    raise ValueError(
        f"keep_files={keep_files!r} is not valid; use False, True, 'default' "
        "or a list of glob patterns such as ['*.pwo']."
    )


def _patterns_to_keep(keep_files, default_patterns: Sequence[str]) -> list[str] | None:
    """Glob patterns to keep after success, [] for none, None for everything."""
    if keep_files is True:
        return None
    if keep_files is False:
        return []
    if keep_files == "default":
        return list(default_patterns)
    return list(keep_files)


def _prune(directory: Path, patterns: list[str]) -> None:
    """Delete everything in ``directory`` whose name matches none of ``patterns``."""
    for entry in directory.iterdir():
        if any(fnmatch.fnmatch(entry.name, p) for p in patterns):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _copy_tree_contents(src: Path, dst: Path, patterns: list[str] | None) -> None:
    """Copy entries of ``src`` into ``dst`` (only those matching ``patterns`` unless None)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if patterns is not None and not any(fnmatch.fnmatch(entry.name, p) for p in patterns):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, dst / entry.name, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, dst / entry.name)


@contextlib.contextmanager
def per_config_rundir(
    workdir: str | os.PathLike = ".",
    prefix: str = "run_",
    scratch_dir: str | os.PathLike | None = None,
    keep_files="default",
    default_patterns: Sequence[str] = (),
) -> Iterator[Path]:
    """Give one calculation a fresh directory and tidy it up afterwards.

    Parameters
    ----------
    workdir : path-like, default "."
        Directory (created if missing) under which the kept run directory lives;
        relative paths are relative to the current directory at call time.
    prefix : str
        Name prefix of the run directory (a unique suffix is appended).
    scratch_dir : path-like, optional
        If given, the calculation runs under this directory instead, and the files to keep
        are copied into ``workdir`` afterwards; the scratch copy is always removed.
    keep_files : bool, "default" or list of str
        What to keep after a successful calculation (see module docstring). A failed
        calculation keeps everything.
    default_patterns : sequence of str
        Glob patterns kept when ``keep_files == "default"``.

    Yields
    ------
    Path
        Absolute path of the directory to run the calculation in.

    Raises
    ------
    CalculationFailed
        Re-raised from any exception inside the block, with ``rundir`` set to the kept
        directory.
    """
    check_keep_files(keep_files)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if scratch_dir is None:
        rundir = Path(tempfile.mkdtemp(dir=workdir, prefix=prefix))
    else:
        scratch_dir = Path(scratch_dir).resolve()
        scratch_dir.mkdir(parents=True, exist_ok=True)
        rundir = Path(tempfile.mkdtemp(dir=scratch_dir, prefix=prefix))

    keep_patterns = _patterns_to_keep(keep_files, default_patterns)
    try:
        yield rundir
    except BaseException as exc:
        kept = rundir
        if scratch_dir is not None:
            kept = Path(tempfile.mkdtemp(dir=workdir, prefix=prefix))
            _copy_tree_contents(rundir, kept, None)
            shutil.rmtree(rundir, ignore_errors=True)
        if isinstance(exc, CalculationFailed):
            exc.rundir = kept
            raise
        if isinstance(exc, Exception):
            raise CalculationFailed(f"{type(exc).__name__}: {exc}", kept) from exc
        raise

    # success
    if scratch_dir is not None:
        if keep_patterns is None or keep_patterns:
            kept = Path(tempfile.mkdtemp(dir=workdir, prefix=prefix))
            _copy_tree_contents(rundir, kept, keep_patterns)
        shutil.rmtree(rundir, ignore_errors=True)
    elif keep_patterns is None:
        pass
    elif keep_patterns:
        _prune(rundir, keep_patterns)
    else:
        shutil.rmtree(rundir, ignore_errors=True)


def properties_to_compute(
    requested: Sequence[str], defaults: Sequence[str], atoms: Atoms
) -> list[str]:
    """Properties one run should compute: requested plus defaults, no stress if non-periodic.

    Computing the defaults together avoids a second expensive run when ASE asks for forces
    after energy; stress is dropped when no direction is periodic because it is meaningless.
    """
    props = list(dict.fromkeys([*requested, *defaults]))
    if not any(atoms.pbc):
        props = [p for p in props if p != "stress"]
    return props

"""Cleaning a finished run directory down to the files worth keeping."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

__all__ = ["clean_dir"]


def clean_dir(
    directory: str | os.PathLike, keep_files: bool | Iterable[str], force: bool = False
) -> None:
    """Delete a run directory's contents except the files to keep.

    Parameters
    ----------
    directory : str or Path
        The directory.
    keep_files : True, False/None/empty, or iterable of glob patterns
        True: keep everything. False (or empty): delete the directory itself. Patterns
        (relative to ``directory``, e.g. ``["*.out", "OUTCAR"]``): keep only the entries
        matching one of them.
    force : bool, default False
        True: a missing directory is an error. False: nothing to do.
    """
    path = Path(directory)
    if not path.is_dir():
        if force:
            raise FileNotFoundError(f"clean_dir: no directory {str(path)!r} to clean")
        return
    if isinstance(keep_files, str | bytes):
        # a lone string would be read as a list of one-character patterns
        raise ValueError(
            f"clean_dir: keep_files={keep_files!r} is a string; give a list of patterns, "
            f"e.g. [{keep_files!r}], or True/False"
        )
    if keep_files is True:
        return
    patterns = list(keep_files) if keep_files else []
    if not patterns:
        shutil.rmtree(path)
        return
    kept = {match for pattern in patterns for match in path.glob(pattern)}
    for entry in path.iterdir():
        if entry in kept:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()

"""Job keys: recognise "the same call" across interpreters, restarts and pickle round trips.

A job key has two halves:

* the *call digest* -- the function's identity, its arguments (minus ``hash_ignore``) and
  the names and bytes of its input files, encoded canonically (see :func:`argument_digest`),
  so it never depends on pickle bytes, ``PYTHONHASHSEED`` or dict insertion order;
* the *code fingerprint* -- the called function's code, and the functions and classes it
  reaches in user code (including ``wfl``), with comments and docstrings removed (see
  :func:`code_fingerprint`). Third-party packages count by their installed version only.

Two calls with the same call digest but different code fingerprints are "the same call with
edited code": the job engine refuses to reuse the old job and marks it stale.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expyre.digest import CanonicalEncoder, argument_digest, qualified_name
from expyre.fingerprint import code_digests, code_fingerprint

__all__ = ["JobKey", "argument_digest", "code_fingerprint", "input_files_digest", "job_key"]


def input_files_digest(
    input_files: Iterable[str | os.PathLike], base_dir: str | None = None
) -> str:
    """Digest of input file names (as given) and contents; directories are walked in order.

    Parameters
    ----------
    input_files : iterable of path-like
        Files or directories staged into the job; relative paths resolve against ``base_dir``.
    base_dir : str, optional
        Directory relative paths refer to (default: the current directory).

    Raises
    ------
    FileNotFoundError
        Naming the missing input file and the directory it was looked for in.
    """
    h = hashlib.sha256()
    base = Path(base_dir or os.getcwd())
    for name in input_files:
        path = base / name
        if not path.exists():
            raise FileNotFoundError(
                f"input file {str(name)!r} does not exist (looked in {base}); "
                "fix the input_files list or create the file"
            )
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        h.update(f"name:{name}\n".encode())
        for f in files:
            h.update(f"file:{f.relative_to(path) if f != path else '.'}\n".encode())
            with open(f, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class JobKey:
    """The identity of one queued call.

    Attributes
    ----------
    call_digest : str
        Function identity + canonical arguments (minus ``hash_ignore``) + input files.
    code_fingerprint : str
        Code of the function and of callables found in its arguments, see :func:`code_fingerprint`.
    code_digests : dict
        The fingerprint's user-code functions and classes with their own digests
        (:func:`expyre.fingerprint.code_digests`): they let a job check, when it starts,
        that it runs the code it was submitted with, and name what changed when it is not.
    """

    call_digest: str
    code_fingerprint: str
    code_digests: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        """Digest of both halves: equal keys mean "same call, same code"."""
        return hashlib.sha256(f"{self.call_digest}:{self.code_fingerprint}".encode()).hexdigest()


def job_key(
    function: Callable,
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    input_files: Iterable[str | os.PathLike] = (),
    hash_ignore: Iterable[str] = (),
    base_dir: str | None = None,
) -> JobKey:
    """Compute the :class:`JobKey` of ``function(*args, **kwargs)``.

    Parameters
    ----------
    function : callable
        The function the job will call.
    args, kwargs
        Its arguments. Arguments named in ``hash_ignore`` (keyword names, or positional
        parameters' names when the signature can be bound) are left out of the digest.
    input_files : iterable of path-like
        Files staged into the job; names and bytes enter the digest.
    hash_ignore : iterable of str
        Argument names to leave out (e.g. an initializer that pickles non-deterministically).
    base_dir : str, optional
        Directory that relative ``input_files`` refer to.
    """
    args = list(args)
    kwargs = dict(kwargs or {})
    ignore = set(hash_ignore)
    try:
        bound = inspect.signature(function).bind_partial(*args, **kwargs)
        arguments: Any = {k: v for k, v in bound.arguments.items() if k not in ignore}
    except (TypeError, ValueError):
        arguments = (args, {k: v for k, v in kwargs.items() if k not in ignore})
    encoder = CanonicalEncoder()
    h = hashlib.sha256()
    h.update(qualified_name(function).encode() + b"\n")
    h.update(encoder.digest(arguments))
    h.update(input_files_digest(input_files, base_dir).encode())
    unique_callables = list(dict.fromkeys(c for c in encoder.callables if _hashable(c)))
    fingerprint = code_fingerprint(function, *unique_callables)
    return JobKey(
        call_digest=h.hexdigest(),
        code_fingerprint=fingerprint,
        code_digests=code_digests(function, *unique_callables),
    )


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True

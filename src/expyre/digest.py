"""Canonical digests of Python values: the same arguments give the same digest everywhere.

Used for job keys: the digest never depends on pickle bytes, ``PYTHONHASHSEED``
or dict insertion order; numpy arrays and ASE ``Atoms``-like objects count by value.
Callables met while encoding are collected, so their code can be fingerprinted too.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "AtomsAsCopy",
    "CanonicalEncoder",
    "argument_digest",
    "located_copies_digests",
    "qualified_name",
]


class AtomsAsCopy:
    """An ASE ``Atoms``-like object digested as its ``copy()`` with more ``info`` would be.

    ``argument_digest([AtomsAsCopy(a, {"k": v}) for a in configs])`` equals the digest of the
    copies (``c = a.copy(); c.info["k"] = v``) byte for byte, without building them: a copy
    has the same arrays, info, cell, pbc and constraints by value and no calculator. Keying
    10,000 input structures this way skips 10,000 copies when the key is all that is needed
    (the rerun of a finished operation).

    Parameters
    ----------
    atoms : Atoms-like
        The structure (left untouched).
    extra_info : dict
        Entries the copy would have added to (or replaced in) its ``info``.
    """

    __slots__ = ("atoms", "extra_info")

    def __init__(self, atoms: Any, extra_info: dict) -> None:
        self.atoms = atoms
        self.extra_info = extra_info


class CanonicalEncoder:
    """Feeds a canonical, type-tagged byte stream describing a value into a hash.

    Containers are encoded structurally; unordered containers (dict, set) are sorted by the
    digests of their encoded items so insertion order and hash seeds do not matter.
    Callables met along the way are collected, so their code can be fingerprinted too
    (an op passed as an argument is part of the job's code).
    """

    def __init__(self) -> None:
        self.callables: list[Callable] = []
        self._active: set[int] = set()

    def digest(self, obj: Any) -> bytes:
        h = hashlib.sha256()
        self._encode(obj, h)
        return h.digest()

    def _encode(self, obj: Any, h: Any) -> None:  # noqa: C901 - one branch per kind of value
        # the commonest exact types first, without building the tag closure: digesting the
        # inputs of a rerun (10,000 Atoms) is dominated by these small values. The bytes fed
        # to the hash are exactly those of the general branches below.
        kind = type(obj)
        if kind is str:
            payload = obj.encode("utf-8", "surrogatepass")
            h.update(b"str:" + str(len(payload)).encode() + b":" + payload)
            return
        if kind is int:
            payload = str(obj).encode()
            h.update(b"int:" + str(len(payload)).encode() + b":" + payload)
            return
        if kind is float:
            h.update(b"float:3:nan" if math.isnan(obj) else b"float:8:" + struct.pack("<d", obj))
            return
        np = sys.modules.get("numpy")
        if np is not None and kind is np.ndarray and not obj.dtype.hasobject:
            head = f"{obj.dtype.str}|{obj.shape}".encode()
            data = np.ascontiguousarray(obj).tobytes()
            h.update(b"ndarray:" + str(len(head)).encode() + b":" + head)
            h.update(b"data:" + str(len(data)).encode() + b":" + data)
            return

        def tag(t: str, payload: bytes = b"") -> None:
            h.update(t.encode() + b":" + str(len(payload)).encode() + b":" + payload)

        if obj is None or isinstance(obj, bool):
            tag("const", repr(obj).encode())
        elif isinstance(obj, int):
            tag("int", str(int(obj)).encode())
        elif isinstance(obj, float):
            tag("float", b"nan" if math.isnan(obj) else struct.pack("<d", obj))
        elif isinstance(obj, complex):
            tag("complex", struct.pack("<dd", obj.real, obj.imag))
        elif isinstance(obj, str):
            tag("str", obj.encode("utf-8", "surrogatepass"))
        elif isinstance(obj, bytes | bytearray):
            tag("bytes", bytes(obj))
        elif isinstance(obj, Path):
            tag("path", str(obj).encode())
        elif _is_numpy_array(obj):
            arr = obj
            if arr.dtype.hasobject:
                tag("ndarray-object", repr(arr.shape).encode())
                for item in arr.ravel().tolist():
                    self._encode(item, h)
            else:
                import numpy as np  # only reached when numpy is already loaded

                data = np.ascontiguousarray(arr).tobytes()
                tag("ndarray", f"{arr.dtype.str}|{arr.shape}".encode())
                tag("data", data)
        elif _is_numpy_scalar(obj):
            tag("npscalar", f"{obj.dtype.str}".encode())
            tag("data", obj.tobytes())
        elif isinstance(obj, types.FunctionType | types.BuiltinFunctionType | type):
            self.callables.append(obj)
            tag("callable", qualified_name(obj).encode())
        elif isinstance(obj, functools.partial):
            tag("partial")
            self._encode(obj.func, h)
            self._encode(obj.args, h)
            self._encode(obj.keywords, h)
        elif isinstance(obj, types.MethodType):
            tag("method", obj.__func__.__qualname__.encode())
            self.callables.append(obj.__func__)
            self._encode(obj.__self__, h)
        elif isinstance(obj, types.ModuleType):
            tag("module", obj.__name__.encode())
        else:
            self._encode_container_or_object(obj, h, tag)

    def _encode_container_or_object(self, obj: Any, h: Any, tag: Callable) -> None:
        if id(obj) in self._active:  # a reference cycle: encode a back-reference marker
            tag("cycle")
            return
        self._active.add(id(obj))
        try:
            if isinstance(obj, list | tuple):
                tag("list" if isinstance(obj, list) else "tuple", str(len(obj)).encode())
                for item in obj:
                    self._encode(item, h)
            elif isinstance(obj, dict):
                _write_dict(h, self._pair_digests(obj.items()))
            elif isinstance(obj, set | frozenset):
                tag("set", str(len(obj)).encode())
                for d in sorted(self.digest(item) for item in obj):
                    h.update(d)
            elif type(obj) is AtomsAsCopy:
                self._encode_atoms_like(obj.atoms, h, tag, obj.extra_info, as_copy=True)
            elif _is_atoms_like(obj):
                self._encode_atoms_like(obj, h, tag)
            elif _is_numpy_generator(obj):
                tag("np.Generator")
                self._encode(obj.bit_generator.state, h)
            else:
                self._encode_object(obj, h, tag)
        finally:
            self._active.discard(id(obj))

    def _pair_digests(self, items: Any) -> list[tuple[bytes, bytes]]:
        """A dict's ``(key digest, value digest)`` pairs, sorted: insertion order never counts."""
        return sorted((self.digest(k), self.digest(v)) for k, v in items)

    def _encode_atoms_like(
        self,
        atoms: Any,
        h: Any,
        tag: Callable,
        extra_info: dict | None = None,
        as_copy: bool = False,
        write_info: Callable[[], None] | None = None,
    ) -> None:
        # By value: what defines a structure, not the attached calculator's caches.
        tag("atoms", qualified_name(type(atoms)).encode())
        self._encode(dict(atoms.arrays), h)
        if write_info is None:
            self._encode({**atoms.info, **(extra_info or {})}, h)
        else:
            write_info()  # located_copies_digests: a different info into each of its hashes
        # the cell and pbc arrays themselves when the object has them (ASE): the getters
        # build copies (a Cell object each), a large part of digesting many small structures
        cell = getattr(getattr(atoms, "cell", None), "array", None)
        self._encode(atoms.get_cell()[:] if cell is None else cell, h)
        pbc = getattr(atoms, "pbc", None)
        self._encode(atoms.get_pbc() if not _is_numpy_array(pbc) else pbc, h)
        constraints = [
            c.todict() if hasattr(c, "todict") else c for c in getattr(atoms, "constraints", [])
        ]
        self._encode(constraints, h)
        calc = None if as_copy else getattr(atoms, "calc", None)  # a copy has no calculator
        self._encode(None if calc is None else qualified_name(type(calc)), h)

    def _encode_object(self, obj: Any, h: Any, tag: Callable) -> None:
        cls = type(obj)
        tag("object", qualified_name(cls).encode())
        self.callables.append(cls)
        if hasattr(obj, "__getstate__") and cls.__getstate__ is not object.__getstate__:
            state = obj.__getstate__()
        elif hasattr(obj, "__dict__"):
            state = vars(obj)
        elif hasattr(cls, "__slots__"):
            state = {s: getattr(obj, s) for s in cls.__slots__ if hasattr(obj, s)}
        else:
            reduced = obj.__reduce_ex__(4)
            state = reduced[1:] if isinstance(reduced, tuple) else reduced
        self._encode(state, h)


def argument_digest(obj: Any) -> str:
    """Canonical digest of a value, stable across interpreters and pickle round trips.

    Parameters
    ----------
    obj : Any
        Arguments to digest: plain Python values, containers, numpy arrays and generators,
        ASE ``Atoms``-like objects (by value: arrays, info, cell, pbc, constraints), or any
        object (by class name and state).

    Returns
    -------
    str
        Hex sha256 digest.
    """
    return CanonicalEncoder().digest(obj).hex()


def located_copies_digests(
    configs: Sequence[Any], info_key: str, values: Sequence[Any]
) -> tuple[str, list[bytes]]:
    """Two digests of the located copies of ``configs``, in one pass over them.

    A located copy of ``configs[i]`` is its ``copy()`` with ``info[info_key] = values[i]``
    (a location in the inputs). Returned are

    * ``argument_digest([AtomsAsCopy(c, {info_key: v}) for c, v in zip(configs, values)])``:
      the digest of all the located copies in order (an operation's inputs), and
    * for each config, ``CanonicalEncoder().digest(copy)`` of its copy with no ``info_key``
      at all: what it is by value wherever it sits in the inputs (an item's own key).

    Both equal those computed separately byte for byte; this costs one encoding of each
    structure instead of two (10,000 inputs keyed for a rerun and for the item store).

    Parameters
    ----------
    configs : sequence of Atoms-like
        The structures (left untouched; an ``info_key`` they carry already is replaced).
    info_key : str
        The ``info`` entry holding the location.
    values : sequence
        One location per config.

    Returns
    -------
    tuple
        ``(hex digest of the located copies, [sha256 digest bytes of each unlocated copy])``.
    """
    if len(configs) != len(values):
        raise ValueError(f"got {len(values)} locations for {len(configs)} configs; need one each")
    encoder = CanonicalEncoder()
    whole = hashlib.sha256()
    whole.update(
        b"list:" + str(len(str(len(configs)))).encode() + b":" + str(len(configs)).encode()
    )
    key_pair = encoder.digest(info_key)
    per_item = []
    for atoms, value in zip(configs, values, strict=True):
        own = hashlib.sha256()
        both = _Tee(whole, own)

        def tag(t: str, payload: bytes = b"", both: _Tee = both) -> None:
            both.update(t.encode() + b":" + str(len(payload)).encode() + b":" + payload)

        def write_info(atoms: Any = atoms, value: Any = value, own: Any = own) -> None:
            pairs = encoder._pair_digests((k, v) for k, v in atoms.info.items() if k != info_key)
            _write_dict(own, pairs)
            _write_dict(whole, sorted([*pairs, (key_pair, encoder.digest(value))]))

        encoder._encode_atoms_like(atoms, both, tag, as_copy=True, write_info=write_info)
        per_item.append(own.digest())
    return whole.hexdigest(), per_item


class _Tee:
    """Feeds the same bytes to two hashes."""

    __slots__ = ("first", "second")

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second

    def update(self, data: bytes) -> None:
        self.first.update(data)
        self.second.update(data)


def _write_dict(h: Any, pairs: list[tuple[bytes, bytes]]) -> None:
    """A dict's encoding from its sorted pair digests (see ``CanonicalEncoder``)."""
    n = str(len(pairs)).encode()
    h.update(b"dict:" + str(len(n)).encode() + b":" + n)
    for kd, vd in pairs:
        h.update(kd + vd)


def qualified_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(type(obj))
    return f"{module}:{name}"


def _is_numpy_array(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def _is_numpy_scalar(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.generic)


def _is_numpy_generator(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.random.Generator)


def _is_atoms_like(obj: Any) -> bool:
    # duck typing: expyre must not import ASE
    return all(hasattr(obj, a) for a in ("arrays", "info", "get_cell", "get_pbc", "get_positions"))

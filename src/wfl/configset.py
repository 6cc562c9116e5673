"""Data in and out of operations: :class:`ConfigSet` (inputs) and :class:`OutputSpec` (outputs).

A ConfigSet is an ordered collection of ASE ``Atoms`` that may live in memory (lists, nested
lists), in files (one file, a glob, a list of files) or in other ConfigSets. Each config has a
*location*: a string such as ``" / 2"`` or ``" / 1 / 4"`` (file 1, config 4) giving its
position in the nested structure. Iterating stores it in ``atoms.info["_ConfigSet_loc"]``.

An OutputSpec receives results at the location of the input they came from, so output order
always equals input order and a failed input never makes another input's result move into its
place. File outputs are written to a temporary name and renamed on :meth:`OutputSpec.close`,
so an interrupted run never leaves a finished-looking file; a small completion record
(``.<name>.wfl-complete.json``) is written beside each file after its rename.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import ase.io
from ase import Atoms

LOC_KEY = "_ConfigSet_loc"
_LOC_SEP = " / "
_GLOB_CHARS = set("*?[")


def loc_join(prefix: str, index: int) -> str:
    """Location of child ``index`` under location ``prefix`` (e.g. ``" / 1" -> " / 1 / 4"``)."""
    return f"{prefix}{_LOC_SEP}{index}"


def loc_split(loc: str) -> list[int]:
    """Integer path of a location string: ``" / 1 / 4" -> [1, 4]``, ``"" -> []``."""
    if not loc:
        return []
    if not loc.startswith(_LOC_SEP):
        raise ValueError(f"location {loc!r} is not of the form ' / i / j'")
    return [int(part) for part in loc[len(_LOC_SEP) :].split(_LOC_SEP)]


def _loc_from_path(path: list[int]) -> str:
    return "".join(f"{_LOC_SEP}{i}" for i in path)


class ConfigSet:
    """Ordered, possibly nested, collection of input configurations.

    Parameters
    ----------
    items : Atoms, list, str, Path, ConfigSet, or iterable of these
        - ``Atoms``, or a list of them: in-memory configs, locations ``" / i"``.
        - nested lists: locations ``" / i / j ..."``.
        - a file name: all configs of that file, locations ``" / j"``.
        - a glob (``"data/*.xyz"``) or a list of file names: one group per file, in sorted
          (glob) or given (list) order, locations ``" / f / j"``.
        - a ConfigSet, or a list of ConfigSets (one group each).
    file_root : str or Path, optional
        Directory that relative file names are taken relative to. Absolute file names are
        then an error (they would silently ignore ``file_root``).
    read_kwargs : dict, optional
        Extra keyword arguments for ``ase.io.iread`` (default ``index=":"``).

    Raises
    ------
    ValueError
        For a file name or glob that matches nothing, an absolute path with ``file_root``,
        an OutputSpec passed as input, or an item of an unsupported type.
    """

    def __init__(
        self,
        items: Any,
        file_root: str | os.PathLike | None = None,
        read_kwargs: dict | None = None,
    ) -> None:
        self.file_root = Path(file_root) if file_root is not None else None
        self.read_kwargs = dict(read_kwargs or {})
        # Flattened sources, in order: ("atoms", loc, Atoms) or
        # ("file", loc_prefix, (Path, read_kwargs)); inner ConfigSets keep their read_kwargs.
        self._sources: list[tuple[str, str, Any]] = []
        self._add(items, "", top=True)

    # ------------------------------------------------------------------ construction
    @classmethod
    def _from_located(cls, pairs: Iterable[tuple[str, Atoms]]) -> ConfigSet:
        """ConfigSet of in-memory configs that keep the given locations (gaps allowed)."""
        new = cls([])
        new._sources = [("atoms", loc, atoms) for loc, atoms in pairs]
        return new

    def _add(self, items: Any, prefix: str, top: bool = False) -> None:
        if isinstance(items, Atoms):
            # a lone Atoms is a one-element list, so it still gets a " / 0" location
            self._sources.append(("atoms", loc_join(prefix, 0) if top else prefix, items))
        elif isinstance(items, OutputSpec):
            raise ValueError(
                "ConfigSet got an OutputSpec as input; pass outputs.to_ConfigSet() instead"
            )
        elif isinstance(items, ConfigSet):
            for kind, loc, payload in items._sources:
                self._sources.append((kind, prefix + loc, payload))
        elif isinstance(items, str | os.PathLike):
            self._add_path(str(items), prefix)
        elif isinstance(items, Iterable) and not isinstance(items, bytes | dict):
            for i, item in enumerate(items):
                sub = loc_join(prefix, i)
                if isinstance(item, Atoms):
                    self._sources.append(("atoms", sub, item))
                else:
                    self._add(item, sub)
        else:
            raise ValueError(
                f"ConfigSet cannot take an item of type {type(items).__name__}; "
                "give Atoms, (nested) lists of Atoms, file names, globs or ConfigSets"
            )

    def _resolve(self, name: str) -> str:
        if self.file_root is None:
            return name
        if os.path.isabs(name):
            raise ValueError(
                f"ConfigSet got absolute path {name!r} together with file_root="
                f"{str(self.file_root)!r}; give a relative path or drop file_root"
            )
        return str(self.file_root / name)

    def _add_path(self, name: str, prefix: str) -> None:
        full = self._resolve(name)
        if _GLOB_CHARS & set(name):
            matches = sorted(glob.glob(full))
            if not matches:
                raise ValueError(f"ConfigSet glob {full!r} matches no file; check the pattern")
            # a glob is a list of files: one group per matched file
            for i, match in enumerate(matches):
                self._sources.append(("file", loc_join(prefix, i), (Path(match), self.read_kwargs)))
        else:
            if not os.path.isfile(full):
                raise ValueError(f"ConfigSet input file {full!r} does not exist; check the name")
            self._sources.append(("file", prefix, (Path(full), self.read_kwargs)))

    # ------------------------------------------------------------------ iteration
    @staticmethod
    def _read_file(source: tuple[Path, dict]) -> Iterator[Atoms]:
        path, read_kwargs = source
        yield from ase.io.iread(path, **{"index": ":", **read_kwargs})

    def iter_located(self) -> Iterator[tuple[str, Atoms]]:
        """Yield ``(location, atoms)`` pairs without touching ``atoms.info``.

        In-memory configs are the caller's own objects: copy them before changing them.
        """
        for kind, loc, payload in self._sources:
            if kind == "atoms":
                yield loc, payload
            else:
                for j, atoms in enumerate(self._read_file(payload)):
                    yield loc_join(loc, j), atoms

    def __iter__(self) -> Iterator[Atoms]:
        for loc, atoms in self.iter_located():
            atoms.info[LOC_KEY] = loc
            yield atoms

    def __len__(self) -> int:
        return sum(1 for _ in self.iter_located())

    def groups(self) -> Iterator[Atoms | ConfigSet]:
        """Iterate over the top level: an Atoms for a top-level config, a ConfigSet per group.

        The configs of a yielded ConfigSet have locations relative to that group.
        """
        pending: list[tuple[str, str, Any]] = []
        pending_first: int | None = None

        def flush() -> ConfigSet:
            group = ConfigSet([], read_kwargs=self.read_kwargs)
            group._sources = list(pending)
            return group

        for kind, loc, payload in self._sources:
            path = loc_split(loc)
            if not path:  # a top-level file: its configs are the groups
                if pending:
                    yield flush()
                    pending, pending_first = [], None
                for j, atoms in enumerate(self._read_file(payload)):
                    atoms.info[LOC_KEY] = loc_join("", j)
                    yield atoms
                continue
            if kind == "atoms" and len(path) == 1:
                if pending:
                    yield flush()
                    pending, pending_first = [], None
                payload.info[LOC_KEY] = loc
                yield payload
                continue
            if pending and path[0] != pending_first:
                yield flush()
                pending = []
            pending_first = path[0]
            pending.append((kind, _loc_from_path(path[1:]), payload))
        if pending:
            yield flush()

    def __repr__(self) -> str:
        files = sorted({str(p[0]) for k, _, p in self._sources if k == "file"})
        n_mem = sum(1 for k, _, _ in self._sources if k == "atoms")
        return f"ConfigSet(files={files}, in_memory_configs={n_mem})"


class OutputSpec:
    """Where the results of an operation go: memory, one file, or one file per input file.

    Parameters
    ----------
    files : str, Path, list of them, or None
        None: keep results in memory. One name (or a list of one): all results go into that
        file, in input order. A list of several names: the first location segment of each
        result's input picks the file (input file ``i`` -> ``files[i]``).
    file_root : str or Path, optional
        Directory that relative names are taken relative to.
    overwrite : bool, default False
        False: if the files exist and were made by the same operation on the same inputs,
        the operation is skipped; if made differently, that is an error. True: redo and
        replace them.
    write_kwargs : dict, optional
        Extra keyword arguments for ``ase.io.write`` (default ``format="extxyz"`` for
        ``.xyz``/``.extxyz`` names, otherwise guessed from the name).
    tags : dict, optional
        ``info`` items added to every stored config.
    """

    def __init__(
        self,
        files: str | os.PathLike | list | None = None,
        file_root: str | os.PathLike | None = None,
        overwrite: bool = False,
        write_kwargs: dict | None = None,
        tags: dict | None = None,
    ) -> None:
        if isinstance(files, ConfigSet):
            raise ValueError("OutputSpec got a ConfigSet as files; give output file name(s)")
        self.file_root = Path(file_root) if file_root is not None else None
        self.overwrite = bool(overwrite)
        self.write_kwargs = dict(write_kwargs or {})
        self.tags = dict(tags or {})
        if files is None:
            self.files: list[Path] | None = None
        else:
            names = [files] if isinstance(files, str | os.PathLike) else list(files)
            if not names:
                raise ValueError("OutputSpec got an empty list of files; give at least one")
            self.files = [self._resolve(str(n)) for n in names]
        self._memory: list[tuple[str, Atoms]] = []
        self._handles: dict[int, Any] = {}
        self._counts: dict[int, int] = {}
        self._closed = False
        self.completion_record: dict | None = None  # in-memory outputs keep theirs here

    def _resolve(self, name: str) -> Path:
        if self.file_root is None:
            return Path(name)
        if os.path.isabs(name):
            raise ValueError(
                f"OutputSpec got absolute path {name!r} together with file_root="
                f"{str(self.file_root)!r}; give a relative path or drop file_root"
            )
        return self.file_root / name

    # ------------------------------------------------------------------ file names
    @staticmethod
    def partial_path(path: Path) -> Path:
        """Temporary name a file is written under until :meth:`close` renames it."""
        return path.with_name(f".{path.name}.partial")

    @staticmethod
    def record_path(path: Path) -> Path:
        """Name of the completion record written beside ``path``."""
        return path.with_name(f".{path.name}.wfl-complete.json")

    def _format(self, path: Path) -> str:
        if "format" in self.write_kwargs:
            return self.write_kwargs["format"]
        if path.suffix in (".xyz", ".extxyz"):
            return "extxyz"
        return ase.io.formats.filetype(str(path), read=False)

    # ------------------------------------------------------------------ storing
    def _target(self, loc: str) -> tuple[int, str]:
        """(file index, location within that file) for a result stored at input ``loc``."""
        if self.files is None or len(self.files) == 1:
            return 0, loc
        path = loc_split(loc)
        if not path or path[0] >= len(self.files):
            raise ValueError(
                f"OutputSpec has {len(self.files)} files, mapped one-to-one onto input files, "
                f"but a result came from input location {loc!r}; give one output file per "
                "input file, or a single output file"
            )
        return path[0], _loc_from_path(path[1:])

    def store(self, configs: Atoms | list | None, input_loc: str = "") -> None:
        """Store one result (an Atoms, or a possibly nested list of them) at ``input_loc``.

        Lists are stored under the location, e.g. a trajectory from input ``" / 3"`` as
        ``" / 3 / 0"``, ``" / 3 / 1"``, .... ``None`` stores nothing.
        """
        if configs is None:
            return
        if not isinstance(configs, Atoms):
            for k, sub in enumerate(configs):
                self.store(sub, loc_join(input_loc, k))
            return
        if self._closed:
            self._reopen()
        configs.info.update(self.tags)
        configs.info[LOC_KEY] = input_loc
        if self.files is None:
            self._memory.append((input_loc, configs))
            return
        file_i, _ = self._target(input_loc)
        handle = self._handles.get(file_i)
        if handle is None:
            handle = self._open(file_i)
        path = self.files[file_i]
        kwargs = {k: v for k, v in self.write_kwargs.items() if k != "format"}
        ase.io.write(handle, configs, format=self._format(path), **kwargs)
        self._counts[file_i] = self._counts.get(file_i, 0) + 1

    def _open(self, file_i: int) -> Any:
        path = self.files[file_i]
        path.parent.mkdir(parents=True, exist_ok=True)
        # "w": a partial file left by an interrupted run is started afresh
        handle = open(self.partial_path(path), "w")  # noqa: SIM115 - closed in close()
        self._handles[file_i] = handle
        self._counts[file_i] = 0
        return handle

    def _reopen(self) -> None:
        """Storing after close starts a new output (used when an operation is redone)."""
        self._closed = False
        self._memory = []
        self._counts = {}
        self.completion_record = None

    def close(self, completion_record: dict | None = None) -> None:
        """Finish the outputs: rename temporary files into place, then write the records.

        Parameters
        ----------
        completion_record : dict, optional
            The operation key (see ``wfl.autoparallelize.completion``) saved beside each
            file (or on this object for in-memory outputs) so reruns can recognise it.
        """
        if self.files is None:
            self.completion_record = dict(completion_record) if completion_record else None
            self._closed = True
            return
        for file_i in range(len(self.files)):
            if file_i not in self._handles:
                self._open(file_i)  # an output that received nothing is an empty file
            self._handles[file_i].close()
        for file_i, path in enumerate(self.files):
            record = self.record_path(path)
            # remove a stale record first: a file must never sit beside another op's record
            record.unlink(missing_ok=True)
            os.replace(self.partial_path(path), path)
            if completion_record is not None:
                data = {**completion_record, "n_configs": self._counts.get(file_i, 0)}
                tmp = record.with_name(record.name + ".tmp")
                tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
                os.replace(tmp, record)
        self._handles = {}
        self._closed = True

    # ------------------------------------------------------------------ state
    def all_written(self) -> bool:
        """True if every output file exists (in memory: if :meth:`close` was called)."""
        if self.files is None:
            return self._closed
        return all(p.exists() for p in self.files)

    def read_records(self) -> dict[Path, dict | None]:
        """Completion record of every existing output file (None where there is none)."""
        records: dict[Path, dict | None] = {}
        for path in self.files or []:
            if not path.exists():
                continue
            try:
                records[path] = json.loads(self.record_path(path).read_text())
            except (OSError, ValueError):
                records[path] = None
        return records

    def to_ConfigSet(self) -> ConfigSet:  # noqa: N802 - name fixed by the user's API
        """The stored results as a ConfigSet (files are read from disk when iterated)."""
        if self.files is None:
            return ConfigSet._from_located(self._memory)
        names = [str(p) for p in self.files]
        return ConfigSet(names[0] if len(names) == 1 else names)

    def __repr__(self) -> str:
        where = "memory" if self.files is None else [str(p) for p in self.files]
        return f"OutputSpec({where}, overwrite={self.overwrite})"

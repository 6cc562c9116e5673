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
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import ase.io
from ase import Atoms

from expyre.atomicfile import write_atomic

LOC_KEY = "_ConfigSet_loc"
_LOC_SEP = " / "
_GLOB_CHARS = set("*?[")
#: seconds an output file found without its completion record is looked at again, when it
#: may be another run of the same operation between renaming it into place and recording it
RECORD_WAIT_S = 1.0


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


class OutputsExistError(FileExistsError, ValueError):
    """Output files exist that this output would replace, and ``overwrite`` is False.

    A FileExistsError, as wfl 0.3.5 raised, and a ValueError (bad input), so handlers
    written for either keep working.
    """


class OutputSpecAsInputError(ValueError, RuntimeError):
    """An OutputSpec was given where a ConfigSet's input belongs.

    Both a ValueError (bad input) and a RuntimeError, the class wfl 0.3.5 raised for it,
    so handlers written for either keep working.
    """


class ConfigSet:
    """Ordered, possibly nested, collection of input configurations.

    Parameters
    ----------
    items : Atoms, list, str, Path, ConfigSet, or None
        - ``Atoms``, or a list of them: in-memory configs, locations ``" / i"``.
        - nested lists: locations ``" / i / j ..."``.
        - a file name: all configs of that file, locations ``" / j"``, or the locations
          stored in the file (``info["_ConfigSet_loc"]``, written by :class:`OutputSpec`),
          so a file keeps the nesting of the results it holds.
        - a glob (``"data/*.xyz"``) or a list of file names and globs: one group per file,
          in sorted (glob) or given (list) order, locations ``" / f / j"``. A glob that
          matches exactly the one file it names is that file alone.
        - a ConfigSet (same configs and locations), or a list of ConfigSets: ConfigSets of
          files are joined into one list of files, ConfigSets of in-memory configs become
          one group each; empty ones are left out. The two kinds cannot be mixed.
        - None or an empty list: no configs.
    file_root : str or Path, optional
        Directory that relative file names are taken relative to. Absolute file names are
        then an error (they would silently ignore ``file_root``).
    read_kwargs : dict, optional
        Extra keyword arguments for ``ase.io.iread`` (default ``index=":"``,
        ``parallel=False``).

    Raises
    ------
    ValueError
        For a file name or glob that matches nothing, an absolute path with ``file_root``,
        a list mixing ConfigSets of files with other items, or an item of an unsupported type.
    OutputSpecAsInputError
        For an OutputSpec passed as input (use ``OutputSpec.to_ConfigSet()``); it is both
        a ValueError and a RuntimeError.
    """

    def __init__(
        self,
        items: Any,
        file_root: str | os.PathLike | None = None,
        read_kwargs: dict | None = None,
    ) -> None:
        # file_root "" or "." means no root, so absolute names stay allowed
        use_root = file_root is not None and Path(file_root) != Path("")
        self.file_root = Path(file_root) if use_root else None
        self.read_kwargs = {"index": ":", "parallel": False, **(read_kwargs or {})}
        # Flattened sources, in order: ("atoms", loc, Atoms) or
        # ("file", loc_prefix, (Path, read_kwargs)); inner ConfigSets keep their read_kwargs.
        self._sources: list[tuple[str, str, Any]] = []
        # True when built from one file name: the shape reported by str() and one_file()
        self._single_file = False
        self._cur_loc: str | None = None
        if items is None:
            return
        if isinstance(items, str | os.PathLike):
            self._single_file = self._add_top_path(str(items))
        elif _is_list_of(items, ConfigSet):
            self._add_configsets(list(items))
        elif _is_list_of(items, str | os.PathLike):
            self._add_file_list(list(items))
        else:
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
            raise OutputSpecAsInputError(
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
                elif item is None:  # a hole in a nested list (e.g. a failed result)
                    continue
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

    def _expand(self, name: str) -> list[Path]:
        """Files a name or glob stands for, sorted; an error naming it if there are none."""
        full = self._resolve(name)
        if _GLOB_CHARS & set(name):
            matches = [Path(m) for m in sorted(glob.glob(full, recursive=True))]
            if not matches:
                raise ValueError(f"ConfigSet glob {full!r} matches no file; check the pattern")
            return matches
        if not os.path.isfile(full):
            raise ValueError(f"ConfigSet input file {full!r} does not exist; check the name")
        return [Path(full)]

    def _add_top_path(self, name: str) -> bool:
        """One top-level name or glob; True if it stands for exactly that one file."""
        matches = self._expand(name)
        if len(matches) == 1 and str(matches[0]) == self._resolve(name):
            self._sources.append(("file", "", (matches[0], self.read_kwargs)))
            return True
        # a glob is a list of files: one group per matched file
        self._add_files(matches)
        return False

    def _add_path(self, name: str, prefix: str) -> None:
        matches = self._expand(name)
        if len(matches) == 1 and not (_GLOB_CHARS & set(name)):
            self._sources.append(("file", prefix, (matches[0], self.read_kwargs)))
        else:
            for i, match in enumerate(matches):
                self._sources.append(("file", loc_join(prefix, i), (match, self.read_kwargs)))

    def _add_files(self, paths: list[Path], kwargs: list[dict] | None = None) -> None:
        for i, path in enumerate(paths):
            read_kwargs = kwargs[i] if kwargs is not None else self.read_kwargs
            self._sources.append(("file", loc_join("", i), (path, read_kwargs)))

    def _add_file_list(self, names: list) -> None:
        """A list of file names and globs: each glob's files join the list in place."""
        paths: list[Path] = []
        for name in names:
            if not isinstance(name, str | os.PathLike):
                raise ValueError(
                    f"ConfigSet got a list of file names with a {type(name).__name__} in it; "
                    "give only file names/globs, or only Atoms and lists"
                )
            paths.extend(self._expand(str(name)))
        self._add_files(paths)

    def _add_configsets(self, sets: list) -> None:
        """A list of ConfigSets: all of files (joined) or all in memory (one group each)."""
        paths: list[Path] = []
        kwargs: list[dict] = []
        groups: list[ConfigSet] = []
        for i, cs in enumerate(sets):
            if not isinstance(cs, ConfigSet):
                raise ValueError(
                    f"ConfigSet got a list of ConfigSets whose item {i} is a "
                    f"{type(cs).__name__}; wrap it in a ConfigSet, or put the Atoms first "
                    "([atoms, configset] nests the ConfigSet as a group)"
                )
            if not cs._sources:
                continue  # empty ConfigSets take no place
            if all(kind == "file" for kind, _, _ in cs._sources):
                if groups:
                    raise ValueError(
                        f"ConfigSet got a list of ConfigSets where item {i} holds files after "
                        "ConfigSets of in-memory configs; build separate ConfigSets for them"
                    )
                paths.extend(payload[0] for _, _, payload in cs._sources)
                kwargs.extend(payload[1] for _, _, payload in cs._sources)
            else:
                if paths:
                    raise ValueError(
                        f"ConfigSet got a list of ConfigSets where item {i} holds in-memory "
                        "configs after ConfigSets of files; build separate ConfigSets for them"
                    )
                groups.append(cs)
        if paths:
            self._add_files(paths, kwargs)
        for i, cs in enumerate(groups):
            self._add(cs, loc_join("", i))

    # ------------------------------------------------------------------ iteration
    @staticmethod
    def _read_file(source: tuple[Path, dict]) -> Iterator[tuple[str, Atoms]]:
        """(location within the file, Atoms) of every config of a file.

        A location stored in the file (by OutputSpec) is used as it is, so a file of nested
        results keeps its nesting; otherwise a config's location is its index.
        """
        path, read_kwargs = source
        if path.stat().st_size == 0:
            return  # an output that received nothing (ASE cannot guess an empty file's format)
        for j, atoms in enumerate(ase.io.iread(path, **read_kwargs)):
            loc = atoms.info.get(LOC_KEY)
            yield (loc if isinstance(loc, str) and loc else loc_join("", j)), atoms

    def iter_located(self) -> Iterator[tuple[str, Atoms]]:
        """Yield ``(location, atoms)`` pairs without touching in-memory ``atoms.info``.

        In-memory configs are the caller's own objects: copy them before changing them.
        """
        for kind, loc, payload in self._sources:
            if kind == "atoms":
                yield loc, payload
            else:
                for sub, atoms in self._read_file(payload):
                    yield loc + sub, atoms

    def __iter__(self) -> Iterator[Atoms]:
        for loc, atoms in self.iter_located():
            atoms.info[LOC_KEY] = loc
            self._cur_loc = loc
            yield atoms
        self._cur_loc = None

    @property
    def cur_loc(self) -> str | None:
        """Location of the config most recently yielded by iteration (None when not iterating).

        The same string is in that config's ``info["_ConfigSet_loc"]``; pass it to
        :meth:`OutputSpec.store` to keep the input's structure in the output.
        """
        return self._cur_loc

    def __len__(self) -> int:
        return sum(1 for _ in self.iter_located())

    def __add__(self, other: ConfigSet) -> ConfigSet:
        """``a + b`` is ``ConfigSet([a, b])``."""
        if not isinstance(other, ConfigSet):
            raise TypeError(
                f"unsupported operand type(s) for +: 'ConfigSet' and '{type(other).__name__}'"
            )
        return ConfigSet([self, other])

    def one_file(self) -> Path | bool:
        """The one file this ConfigSet reads, or False if it is not exactly one file.

        Returns
        -------
        Path or False
        """
        if len(self._sources) == 1 and self._sources[0][0] == "file":
            kind_ok = self._sources[0][1] in ("", loc_join("", 0))
            return self._sources[0][2][0] if kind_ok else False
        return False

    def groups(self) -> Iterator[Atoms | ConfigSet]:
        """Iterate over the top level: an Atoms for a top-level config, a ConfigSet per group.

        The configs of a yielded ConfigSet have locations relative to that group. A
        top-level Atoms is yielded without a location in its ``info``, except in a file
        whose stored locations are nested: there every group is a ConfigSet, a top-level
        config becoming a group of one (as wfl 0.3.5 gave it), so code that iterates
        each group of a file always gets Atoms.
        """
        pending: list[tuple[str, str, Any]] = []
        pending_first: int | None = None

        def flush() -> ConfigSet:
            group = ConfigSet([], read_kwargs=self.read_kwargs)
            group._sources = list(pending)
            return group

        def located_sources() -> Iterator[tuple[str, str, Any, bool]]:
            # a top-level file contributes its configs one by one (they may be nested);
            # the flag says whether they come from a file with nested locations
            for kind, loc, payload in self._sources:
                if kind == "file" and not loc:
                    # one pass over the locations first (stops at the first nested one)
                    nested = any(len(loc_split(sub)) > 1 for sub, _ in self._read_file(payload))
                    for sub, atoms in self._read_file(payload):
                        yield "atoms", sub, atoms, nested
                else:
                    yield kind, loc, payload, False

        for kind, loc, payload, in_nested_file in located_sources():
            path = loc_split(loc)
            if kind == "atoms" and len(path) == 1:
                if pending:
                    yield flush()
                    pending, pending_first = [], None
                payload.info.pop(LOC_KEY, None)
                if in_nested_file:
                    pending = [("atoms", _loc_from_path([0]), payload)]
                    yield flush()
                    pending = []
                else:
                    yield payload
                continue
            if pending and path[0] != pending_first:
                yield flush()
                pending = []
            pending_first = path[0]
            pending.append((kind, _loc_from_path(path[1:]), payload))
        if pending:
            yield flush()

    def __str__(self) -> str:
        if not self._sources:
            return "ConfigSet with no content"
        if self._single_file:
            return f"ConfigSet with single file {self._sources[0][2][0]} "
        if all(kind == "file" for kind, _, _ in self._sources):
            return f"ConfigSet with {len(self._sources)} files"
        tops = []
        for _, loc, _ in self._sources:
            first = loc_split(loc)[0]
            if not tops or tops[-1] != first:
                tops.append(first)
        first_kind, first_loc, _ = self._sources[0]
        what = "Atoms" if first_kind == "atoms" and len(loc_split(first_loc)) == 1 else "sub-lists"
        return f"ConfigSet with {len(tops)} {what}"

    def __repr__(self) -> str:
        files = sorted({str(p[0]) for k, _, p in self._sources if k == "file"})
        n_mem = sum(1 for k, _, _ in self._sources if k == "atoms")
        return f"ConfigSet(files={files}, in_memory_configs={n_mem})"


def _is_list_of(items: Any, kind: type | Any) -> bool:
    """A list/tuple whose first item is of ``kind`` (the first item decides its meaning)."""
    return isinstance(items, list | tuple) and len(items) > 0 and isinstance(items[0], kind)


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
        False: storing into a file that already exists is a ``FileExistsError``; an
        operation whose files exist and were made by the same operation on the same inputs
        is skipped, and made differently is an error. True: redo and replace them.
    flush : bool, default True
        Accepted for scripts written for wfl 0.3.5. Files are always written under a
        temporary name and renamed on :meth:`close`, so flushing changes nothing visible.
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
        flush: bool = True,
        write_kwargs: dict | None = None,
        tags: dict | None = None,
    ) -> None:
        if isinstance(files, ConfigSet):
            raise ValueError("OutputSpec got a ConfigSet as files; give output file name(s)")
        use_root = file_root is not None and Path(file_root) != Path("")
        self.file_root = Path(file_root) if use_root else None
        self.overwrite = bool(overwrite)
        self.flush = bool(flush)
        self.write_kwargs = dict(write_kwargs or {})
        self.tags = dict(tags or {})
        if files is None:
            self.files: list[Path] | None = None
            self.single_file = False
        else:
            self.single_file = isinstance(files, str | os.PathLike)
            names = [files] if self.single_file else list(files)
            if not names:
                raise ValueError("OutputSpec got an empty list of files; give at least one")
            self.files = [self._resolve(str(n)) for n in names]
        self._memory: list[tuple[str, Atoms]] = []
        self._handles: dict[int, Any] = {}
        self._counts: dict[int, int] = {}
        self._closed = False
        self._first_store = True
        # stores without a location are numbered " / 0", " / 1", ...; None: locations given
        self._next_auto: int | None = None
        self.completion_record: dict | None = None  # in-memory outputs keep theirs here
        self._operation_key: dict | None = None  # see written_by

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
        """Temporary name a file is written under until :meth:`close` renames it.

        One per process: two drivers running the same script at once each write their own
        (identical) file and rename it into place, instead of writing into one file and
        renaming it away from under each other.
        """
        return path.with_name(f".{path.name}.partial.{os.getpid()}")

    @staticmethod
    def _remove_abandoned_partials(path: Path) -> None:
        """Delete temporary files of ``path`` left by processes that no longer exist."""
        for old in path.parent.glob(f".{glob.escape(path.name)}.partial*"):
            pid = old.name.rsplit(".", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and _process_exists(int(pid)):
                continue  # another live driver is writing it
            old.unlink(missing_ok=True)

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

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called (until something is stored again)."""
        return self._closed

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

    def _check_existing(self) -> None:
        """Refuse to replace existing files unless ``overwrite`` (checked on the first store).

        Exceptions: when every existing file carries a completion record and some files of
        this set are missing, they are the remains of an operation interrupted while
        renaming its files, which the operation now redoes as a whole; and files whose
        records show the very operation declared by :meth:`written_by`, complete, were made
        by another run of the same script at the same time, with identical results.
        """
        if self.overwrite or self.files is None:
            return
        existing = [p for p in self.files if p.exists()]
        if not existing:
            return
        if self._operation_key is not None and self._made_by_this_operation(existing):
            return
        interrupted = len(existing) < len(self.files) and all(
            self.record_path(p).exists() for p in existing
        )
        # files an earlier run of this operation left marked incomplete (failed queued jobs)
        # are its own, to be replaced by the rerun that retries those jobs
        incomplete = all(self._marked_incomplete(p) for p in existing)
        if not interrupted and not incomplete:
            raise OutputsExistError(
                f"OutputSpec: output file(s) {', '.join(map(str, existing))} already exist; "
                "pass overwrite=True to replace them, or delete them"
            )

    def written_by(self, operation_key: dict) -> None:
        """Declare the operation about to store into these outputs.

        Two runs of one script at the same time (started twice by mistake) compute the same
        operation; the one that finishes second then finds the first one's files. They hold
        the same results, so replacing them is not the accident ``FileExistsError`` guards
        against. Only files whose completion record matches ``operation_key`` and says
        complete count as such.

        Parameters
        ----------
        operation_key : dict
            The operation's completion-record key (operation, arguments, inputs, code).
        """
        self._operation_key = dict(operation_key)

    def _made_by_this_operation(self, existing: list[Path]) -> bool:
        """True if every existing file holds this operation's complete results.

        Another run of the same script closing these outputs renames each file into place
        and then writes its record: a file seen without a record may be in that moment, so
        it is looked at again for up to :data:`RECORD_WAIT_S` before it counts as foreign.
        """
        deadline = time.monotonic() + RECORD_WAIT_S
        while True:
            if all(self._made_by(p, self._operation_key) for p in existing):
                return True
            recordless = any(not self.record_path(p).exists() for p in existing)
            if not recordless or time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def _made_by(self, path: Path, operation_key: dict) -> bool:
        try:
            record = json.loads(self.record_path(path).read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(record, dict) or record.get("complete") is False:
            return False
        return all(record.get(name) == value for name, value in operation_key.items())

    def _marked_incomplete(self, path: Path) -> bool:
        try:
            return json.loads(self.record_path(path).read_text()).get("complete") is False
        except (OSError, ValueError, AttributeError):
            return False

    def _auto_loc(self, input_loc: str | None) -> str:
        """The location to store at: the given one, or the next number if none is given.

        Mixing the two would make locations ambiguous, so it is an error either way round.
        """
        if input_loc:
            if self._next_auto is not None:
                raise RuntimeError(
                    "OutputSpec.store got an input_CS_loc after calls without one; give a "
                    "location on every call (from the input's info['_ConfigSet_loc']) or on none"
                )
            return input_loc
        if self._first_store:
            self._next_auto = 0
        elif self._next_auto is None:
            raise RuntimeError(
                "OutputSpec.store got no input_CS_loc after calls that gave one; give a "
                "location on every call (from the input's info['_ConfigSet_loc']) or on none"
            )
        loc = loc_join("", self._next_auto)
        self._next_auto += 1
        return loc

    def store(
        self,
        configs: Atoms | list | None,
        input_CS_loc: str | None = "",  # noqa: N803 - keyword name of wfl 0.3.5
        *,
        input_loc: str | None = None,
    ) -> None:
        """Store one result (an Atoms, or a possibly nested list of them) at an input's location.

        Lists are stored under the location, e.g. a trajectory from input ``" / 3"`` as
        ``" / 3 / 0"``, ``" / 3 / 1"``, .... ``None`` stores nothing. Locations are written
        into the file (``info["_ConfigSet_loc"]``), without the leading file index when
        there is one file per input file, so reading it back keeps the structure. The
        caller's Atoms are not changed (a copy is stored).

        Parameters
        ----------
        configs : Atoms, (nested) list of Atoms, or None
            The result.
        input_CS_loc : str, optional
            Location of the input the result came from (``info["_ConfigSet_loc"]`` of the
            iterated input, or :attr:`ConfigSet.cur_loc`). Needed when writing several
            files. If no call gives one, results are numbered ``" / 0"``, ``" / 1"``, ....
        input_loc : str, optional
            Same as ``input_CS_loc``.

        Raises
        ------
        OutputsExistError
            On the first store into files that already exist, unless ``overwrite=True``
            (a FileExistsError and a ValueError).
        RuntimeError
            When calls with and without a location are mixed.
        ValueError
            When several files are written and the location does not pick one, or after
            :meth:`close` unless ``overwrite=True`` (which starts the output again).
        """
        self._store(configs, input_loc if input_loc is not None else input_CS_loc, copy=True)

    def _store_owned(self, configs: Atoms, loc: str) -> None:
        """:meth:`store` of an Atoms no one else holds (unpickled from a queued job or the
        item store), kept as it is instead of copied: 10,000 results taken from the item
        store are not copied a second time."""
        self._store(configs, loc, copy=False)

    def _store(self, configs: Atoms | list | None, loc: str | None, copy: bool) -> None:
        if configs is None:
            return
        if self._closed:
            if not self.overwrite:
                raise ValueError(
                    f"{self!r}: store() after close(); use a new OutputSpec, or "
                    "overwrite=True to start this output again"
                )
            self._reopen()
        if self._first_store:
            self._check_existing()
        if self.files is not None and len(self.files) > 1 and not loc:
            raise ValueError(
                f"OutputSpec with several files {[str(p) for p in self.files]} needs the "
                "input's location in store(configs, input_CS_loc) to pick the file"
            )
        loc = self._auto_loc(loc)
        self._first_store = False
        self._store_at(configs, loc, copy)

    def _store_at(self, configs: Atoms | list, loc: str, copy: bool = True) -> None:
        if not isinstance(configs, Atoms):
            for k, sub in enumerate(configs):
                if sub is not None:
                    self._store_at(sub, loc_join(loc, k))
            return
        if copy:
            configs = _copy_with_calc(configs)
        configs.info.update(self.tags)
        configs.info[LOC_KEY] = loc
        if self.files is None:
            self._memory.append((loc, configs))
            return
        file_i, file_loc = self._target(loc)
        if file_loc:
            configs.info[LOC_KEY] = file_loc
        else:
            configs.info.pop(LOC_KEY, None)
        handle = self._handles.get(file_i)
        if handle is None:
            handle = self._open(file_i)
        path = self.files[file_i]
        kwargs = {k: v for k, v in self.write_kwargs.items() if k != "format"}
        ase.io.write(handle, configs, format=self._format(path), **kwargs)
        self._counts[file_i] = self._counts.get(file_i, 0) + 1

    def write(self, configs: Iterable[Atoms]) -> None:
        """Store every config of an iterable at its own location, then :meth:`close`.

        Parameters
        ----------
        configs : ConfigSet or iterable of Atoms
            Each config is stored at its ``info["_ConfigSet_loc"]`` (so a ConfigSet's
            structure is kept), or numbered in order if it has none.

        Notes
        -----
        If all output files already exist and ``overwrite`` is False, nothing is written
        (the existing files are taken to be this output, finished by an earlier run) and a
        line on stderr says so.
        """
        if self.reuses_finished_files("OutputSpec.write"):
            return
        for atoms in configs:
            self.store(atoms, atoms.info.get(LOC_KEY))
        self.close()

    def reuses_finished_files(self, who: str) -> bool:
        """Whether every output file exists already and is to be taken as this output.

        With ``overwrite=False``, existing files are the finished work of an earlier run, so
        writing is skipped; a line on stderr, naming ``who``, says so.

        Parameters
        ----------
        who : str
            The operation asking, as the stderr line names it.

        Returns
        -------
        bool
            True when nothing should be written.
        """
        if self.overwrite or self.files is None or not self.all_written():
            return False
        print(
            f"{who}: reusing existing {', '.join(map(str, self.files))} "
            "(overwrite=False and all files exist)",
            file=sys.stderr,
        )
        return True

    def _open(self, file_i: int) -> Any:
        path = self.files[file_i]
        path.parent.mkdir(parents=True, exist_ok=True)
        # binary formats (e.g. traj) need a binary handle
        mode = "wb" if _is_binary_format(self._format(path)) else "w"
        # a partial file left by an interrupted run is started afresh
        self._remove_abandoned_partials(path)
        handle = open(self.partial_path(path), mode)  # noqa: SIM115 - closed in close()
        self._handles[file_i] = handle
        self._counts[file_i] = 0
        return handle

    def _reopen(self) -> None:
        """Storing after close starts a new output (used when an operation is redone)."""
        self._closed = False
        self._first_store = True
        self._next_auto = None
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
        if self._first_store:
            # nothing was stored: still never replace existing files without overwrite
            self._check_existing()
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
                write_atomic(record, json.dumps(data, indent=1, sort_keys=True))
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

    @property
    def configs(self) -> list | None:
        """In-memory results as nested lists following their locations (None for files).

        Locations that received nothing are empty lists, so indices match the inputs'.
        """
        if self.files is not None:
            return None
        top: list = []
        for loc, atoms in self._memory:
            container = top
            path = loc_split(loc)
            for depth, index in enumerate(path):
                container.extend([] for _ in range(index + 1 - len(container)))
                if depth == len(path) - 1:
                    container[index] = atoms
                else:
                    container = container[index]
        return top

    def to_ConfigSet(self) -> ConfigSet:  # noqa: N802 - name fixed by the user's API
        """The stored results as a ConfigSet (files are read from disk when iterated).

        In memory, results come in the order of their locations (as a nested list built
        from them would give; stable for equal ones), which is the input order whenever the
        inputs' locations are in order. Files keep the order results were stored in.
        """
        if self.files is None:
            return ConfigSet._from_located(sorted(self._memory, key=lambda p: loc_split(p[0])))
        names = [str(p) for p in self.files]
        return ConfigSet(names[0] if self.single_file else names)

    def __repr__(self) -> str:
        where = "memory" if self.files is None else [str(p) for p in self.files]
        return f"OutputSpec({where}, overwrite={self.overwrite})"


def _copy_with_calc(atoms: Atoms) -> Atoms:
    """A copy that keeps the calculator (whose results the file writer saves)."""
    new = atoms.copy()
    new.calc = atoms.calc
    return new


def _is_binary_format(fmt: str) -> bool:
    try:
        return ase.io.formats.ioformats[fmt].isbinary
    except KeyError:
        return False


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True

"""Small user-script scenarios run unchanged through wfl 0.3.5 and through this project.

Run as ``python scenarios.py WORKDIR [--golden] [NAME ...]``: each scenario runs in its own
subdirectory of WORKDIR and its result is printed as one JSON object ``{name: result}``
(``--golden``: only what ``reference_results.json`` records).
Only the public API is used (no private names), so the same file runs against either
implementation; the test module compares the two outputs. An exception becomes
``{"raises": "<ExceptionClassName>"}`` so that "which error" can be compared too.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

SCENARIOS = {}


def scenario(func):
    SCENARIOS[func.__name__] = func
    return func


def mark(i: int) -> Atoms:
    """A config recognisable after a round trip: i+1 hydrogen atoms, info['i'] = i."""
    at = Atoms(f"H{i + 1}", positions=np.arange(3 * (i + 1)).reshape(-1, 3) * 1.5, cell=[9] * 3)
    at.pbc = True
    at.info["i"] = i
    return at


def marks(*idx: int) -> list[Atoms]:
    return [mark(i) for i in idx]


def describe(configs) -> list:
    """(i, location) of every config of an iteration, in order."""
    return [
        [int(at.info["i"]) if "i" in at.info else None, at.info.get("_ConfigSet_loc")]
        for at in configs
    ]


def write(name: str, configs: list[Atoms]) -> str:
    ase.io.write(name, configs, format="extxyz")
    return name


# ---------------------------------------------------------------- ConfigSet locations
@scenario
def loc_list_of_atoms():
    from wfl.configset import ConfigSet

    return describe(ConfigSet(marks(0, 1, 2)))


@scenario
def loc_single_atoms():
    from wfl.configset import ConfigSet

    return describe(ConfigSet(mark(0)))


@scenario
def loc_nested_lists():
    from wfl.configset import ConfigSet

    return describe(ConfigSet([marks(0, 1), marks(2)]))


@scenario
def loc_deeply_nested_lists():
    from wfl.configset import ConfigSet

    return describe(ConfigSet([[marks(0), marks(1, 2)], [marks(3)]]))


@scenario
def loc_one_file():
    from wfl.configset import ConfigSet

    return describe(ConfigSet(write("a.xyz", marks(0, 1))))


@scenario
def loc_list_of_one_file():
    from wfl.configset import ConfigSet

    return describe(ConfigSet([write("a.xyz", marks(0, 1))]))


@scenario
def loc_list_of_two_files():
    from wfl.configset import ConfigSet

    return describe(ConfigSet([write("a.xyz", marks(0, 1)), write("b.xyz", marks(2))]))


@scenario
def loc_glob_two_files():
    from wfl.configset import ConfigSet

    write("a.xyz", marks(0, 1))
    write("b.xyz", marks(2))
    return describe(ConfigSet("*.xyz"))


@scenario
def loc_glob_one_file():
    from wfl.configset import ConfigSet

    write("a.xyz", marks(0, 1))
    return describe(ConfigSet("a*.xyz"))


@scenario
def loc_file_root():
    from wfl.configset import ConfigSet

    os.mkdir("d")
    write("d/a.xyz", marks(0, 1))
    return describe(ConfigSet("a.xyz", file_root="d"))


@scenario
def loc_read_kwargs_index():
    from wfl.configset import ConfigSet

    return describe(ConfigSet(write("a.xyz", marks(0, 1, 2)), read_kwargs={"index": "1:"}))


@scenario
def missing_file():
    from wfl.configset import ConfigSet

    return describe(ConfigSet("nothing_here.xyz"))


@scenario
def absolute_path_with_file_root():
    from wfl.configset import ConfigSet

    write("a.xyz", marks(0))
    return describe(ConfigSet(os.path.abspath("a.xyz"), file_root="."))


# file written by OutputSpec from nested input, read back
@scenario
def loc_file_of_list_of_files():
    """A single output file made from a list of input files, then read alone and in a list."""
    from wfl.configset import ConfigSet, OutputSpec

    inputs = ConfigSet([write("a.xyz", marks(0, 1)), write("b.xyz", marks(2))])
    out = OutputSpec("out.xyz")
    for at in inputs:
        out.store(at, at.info["_ConfigSet_loc"])
    out.close()
    return {
        "file": describe(ConfigSet("out.xyz")),
        "list_of_file": describe(ConfigSet(["out.xyz"])),
        "to_ConfigSet": describe(out.to_ConfigSet()),
    }


@scenario
def loc_file_of_nested_lists():
    from wfl.configset import ConfigSet, OutputSpec

    inputs = ConfigSet([marks(0, 1), [marks(2), marks(3)]])
    out = OutputSpec("out.xyz")
    for at in inputs:
        out.store(at, at.info["_ConfigSet_loc"])
    out.close()
    return {
        "file": describe(ConfigSet("out.xyz")),
        "list_of_two": describe(ConfigSet(["out.xyz", "out.xyz"])),
    }


@scenario
def loc_files_per_input_file():
    from wfl.configset import ConfigSet, OutputSpec

    inputs = ConfigSet([write("a.xyz", marks(0, 1)), write("b.xyz", marks(2))])
    out = OutputSpec(["oa.xyz", "ob.xyz"])
    for at in inputs:
        out.store([at, at.copy()], at.info["_ConfigSet_loc"])
    out.close()
    return {
        "oa": describe(ConfigSet("oa.xyz")),
        "ob": describe(ConfigSet("ob.xyz")),
        "both": describe(out.to_ConfigSet()),
    }


@scenario
def out_of_order_file():
    """A file whose stored locations are not in order (e.g. written by hand)."""
    from wfl.configset import ConfigSet

    configs = marks(0, 1, 2)
    for at, loc in zip(configs, [" / 2", " / 0", " / 1"], strict=True):
        at.info["_ConfigSet_loc"] = loc
    write("a.xyz", configs)
    return {"iter": describe(ConfigSet("a.xyz")), "list": describe(ConfigSet(["a.xyz"]))}


@scenario
def out_of_order_file_through_map():
    """An operation over a file whose stored locations are out of order, to memory and file."""
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    configs = marks(0, 1, 2, 3)
    for at, loc in zip(configs, [" / 1 / 0", " / 0 / 0", " / 1 / 1", " / 0 / 1"], strict=True):
        at.info["_ConfigSet_loc"] = loc
    write("a.xyz", configs)
    return {
        "memory": describe(wfl_map(ConfigSet("a.xyz"), OutputSpec(), _double)),
        "file": describe(wfl_map(ConfigSet(["a.xyz"]), OutputSpec("o.xyz"), _double)),
    }


@scenario
def os_memory_out_of_order_store():
    from wfl.configset import OutputSpec

    out = OutputSpec()
    for i, loc in [(2, " / 2"), (0, " / 0"), (1, " / 1 / 0")]:
        out.store(mark(i), loc)
    out.close()
    return describe(out.to_ConfigSet())


@scenario
def out_of_order_nested_file_groups():
    from wfl.configset import ConfigSet

    configs = marks(0, 1, 2, 3)
    for at, loc in zip(configs, [" / 1 / 0", " / 0 / 0", " / 1 / 1", " / 0 / 1"], strict=True):
        at.info["_ConfigSet_loc"] = loc
    write("a.xyz", configs)
    return describe(ConfigSet("a.xyz"))


@scenario
def out_of_order_mixed_depth_file_groups():
    """User code iterating each group of a file whose stored locations mix depths."""
    from wfl.configset import ConfigSet

    configs = marks(0, 1, 2)
    for at, loc in zip(configs, [" / 1 / 0", " / 0", " / 1 / 1"], strict=True):
        at.info["_ConfigSet_loc"] = loc
    write("a.xyz", configs)
    return [[int(at.info["i"]) for at in group] for group in ConfigSet("a.xyz").groups()]


@scenario
def os_memory_gap_groups():
    """In-memory output stored at locations with gaps (inputs that produced nothing)."""
    from wfl.configset import OutputSpec

    out = OutputSpec()
    for i, loc in [(1, " / 1"), (0, " / 3")]:
        out.store(mark(i), loc)
    out.close()
    return [
        int(g.info["i"]) if hasattr(g, "info") else [int(at.info["i"]) for at in g]
        for g in out.to_ConfigSet().groups()
    ]


@scenario
def os_memory_same_location_twice():
    """Two configs stored in memory at the same location."""
    from wfl.configset import OutputSpec

    out = OutputSpec()
    out.store(mark(0), " / 0")
    out.store(mark(1), " / 0")
    out.close()
    return describe(out.to_ConfigSet())


# ---------------------------------------------------------------- ConfigSets of ConfigSets
@scenario
def cs_of_cs_atoms():
    from wfl.configset import ConfigSet

    return describe(ConfigSet(ConfigSet(marks(0, 1))))


@scenario
def cs_of_cs_file():
    from wfl.configset import ConfigSet

    return describe(ConfigSet(ConfigSet(write("a.xyz", marks(0, 1)))))


@scenario
def cs_of_two_atom_cs():
    from wfl.configset import ConfigSet

    return describe(ConfigSet([ConfigSet(marks(0, 1)), ConfigSet(marks(2))]))


@scenario
def cs_of_two_file_cs():
    from wfl.configset import ConfigSet

    a = ConfigSet(write("a.xyz", marks(0, 1)))
    b = ConfigSet(write("b.xyz", marks(2)))
    return describe(ConfigSet([a, b]))


@scenario
def cs_of_file_cs_then_atoms_cs():
    from wfl.configset import ConfigSet

    return describe(ConfigSet([ConfigSet(write("a.xyz", marks(0))), ConfigSet(marks(1))]))


@scenario
def cs_of_atoms_cs_then_file_cs():
    from wfl.configset import ConfigSet

    return describe(ConfigSet([ConfigSet(marks(0)), ConfigSet(write("a.xyz", marks(1)))]))


@scenario
def cs_of_cs_then_atoms():
    from wfl.configset import ConfigSet

    return describe(ConfigSet([ConfigSet(marks(0, 1)), mark(2)]))


@scenario
def cs_of_atoms_then_cs():
    from wfl.configset import ConfigSet

    return describe(ConfigSet([mark(0), ConfigSet(marks(1, 2))]))


@scenario
def cs_of_empty_cs_and_cs():
    from wfl.configset import ConfigSet

    return describe(ConfigSet([ConfigSet([]), ConfigSet(marks(0))]))


@scenario
def cs_add():
    from wfl.configset import ConfigSet

    return describe(ConfigSet(marks(0, 1)) + ConfigSet(marks(2)))


@scenario
def cs_add_non_cs():
    from wfl.configset import ConfigSet

    return describe(ConfigSet(marks(0)) + [mark(1)])


@scenario
def cs_of_outputspec():
    from wfl.configset import ConfigSet, OutputSpec

    return describe(ConfigSet(OutputSpec()))


@scenario
def cs_empty():
    from wfl.configset import ConfigSet

    return {"list": describe(ConfigSet([])), "none": describe(ConfigSet(None))}


# ---------------------------------------------------------------- ConfigSet methods
@scenario
def cs_groups_nested():
    from wfl.configset import ConfigSet

    groups = []
    for g in ConfigSet([marks(0, 1), mark(2), [marks(3)]]).groups():
        groups.append(describe([g]) if isinstance(g, Atoms) else ["cs", describe(g)])
    return groups


@scenario
def cs_groups_files():
    from wfl.configset import ConfigSet

    cs = ConfigSet([write("a.xyz", marks(0, 1)), write("b.xyz", marks(2))])
    return [describe(g) for g in cs.groups()]


@scenario
def cs_groups_one_file():
    from wfl.configset import ConfigSet

    return [describe([g]) for g in ConfigSet(write("a.xyz", marks(0, 1))).groups()]


@scenario
def cs_cur_loc():
    from wfl.configset import ConfigSet

    cs = ConfigSet([marks(0, 1), marks(2)])
    seen = [cs.cur_loc for _ in cs]
    return {"during": seen, "after": cs.cur_loc}


@scenario
def cs_one_file():
    from wfl.configset import ConfigSet

    write("a.xyz", marks(0))
    write("b.xyz", marks(1))
    return {
        "file": str(ConfigSet("a.xyz").one_file()),
        "list_of_one": str(ConfigSet(["a.xyz"]).one_file()),
        "two": ConfigSet(["a.xyz", "b.xyz"]).one_file(),
        "atoms": ConfigSet(marks(0)).one_file(),
        "empty": ConfigSet([]).one_file(),
    }


@scenario
def cs_str():
    from wfl.configset import ConfigSet

    write("a.xyz", marks(0))
    write("b.xyz", marks(1))
    return {
        "atoms": str(ConfigSet(marks(0, 1))),
        "lists": str(ConfigSet([marks(0), marks(1)])),
        "files": str(ConfigSet(["a.xyz", "b.xyz"])),
        "empty": str(ConfigSet([])),
    }


@scenario
def cs_iterate_twice():
    from wfl.configset import ConfigSet

    cs = ConfigSet([write("a.xyz", marks(0, 1)), write("b.xyz", marks(2))])
    return [describe(cs), describe(cs)]


# ---------------------------------------------------------------- OutputSpec
@scenario
def os_store_input_cs_loc_keyword():
    from wfl.configset import ConfigSet, OutputSpec

    out = OutputSpec("out.xyz")
    for at in ConfigSet([marks(0), marks(1, 2)]):
        out.store(at, input_CS_loc=at.info["_ConfigSet_loc"])
    out.close()
    return describe(out.to_ConfigSet())


@scenario
def os_store_without_loc():
    from wfl.configset import OutputSpec

    out = OutputSpec("out.xyz")
    for at in marks(0, 1, 2):
        out.store(at)
    out.close()
    return describe(out.to_ConfigSet())


@scenario
def os_store_without_loc_then_with():
    from wfl.configset import OutputSpec

    out = OutputSpec("out.xyz")
    out.store(mark(0))
    out.store(mark(1), " / 1")
    return "no error"


@scenario
def os_store_with_loc_then_without():
    from wfl.configset import OutputSpec

    out = OutputSpec("out.xyz")
    out.store(mark(0), " / 0")
    out.store(mark(1))
    return "no error"


@scenario
def os_store_multi_files_without_loc():
    from wfl.configset import OutputSpec

    out = OutputSpec(["a.xyz", "b.xyz"])
    out.store(mark(0))
    return "no error"


@scenario
def os_memory_nested():
    from wfl.configset import OutputSpec

    out = OutputSpec()
    out.store(mark(0), " / 0 / 0")
    out.store([mark(1), mark(2)], " / 1")
    out.close()
    return describe(out.to_ConfigSet())


@scenario
def os_memory_without_loc():
    from wfl.configset import OutputSpec

    out = OutputSpec()
    out.store(mark(0))
    out.store([mark(1), mark(2)])
    out.close()
    return describe(out.to_ConfigSet())


@scenario
def os_store_none():
    from wfl.configset import OutputSpec

    out = OutputSpec("out.xyz")
    out.store(None, " / 0")
    out.store(mark(1), " / 1")
    out.close()
    return describe(out.to_ConfigSet())


@scenario
def os_write_configset():
    from wfl.configset import ConfigSet, OutputSpec

    out = OutputSpec("out.xyz")
    out.write(ConfigSet([marks(0), marks(1, 2)]))
    return describe(ConfigSet("out.xyz"))


@scenario
def os_write_list():
    from wfl.configset import ConfigSet, OutputSpec

    out = OutputSpec("out.xyz")
    out.write(marks(0, 1))
    return describe(ConfigSet("out.xyz"))


@scenario
def os_write_existing_done():
    """write() to an existing file without overwrite reuses it (and says so on stderr)."""
    from wfl.configset import ConfigSet, OutputSpec

    write("out.xyz", marks(5))
    OutputSpec("out.xyz").write(marks(0, 1))
    return describe(ConfigSet("out.xyz"))


@scenario
def os_write_existing_overwrite():
    from wfl.configset import ConfigSet, OutputSpec

    write("out.xyz", marks(5))
    OutputSpec("out.xyz", overwrite=True).write(marks(0, 1))
    return describe(ConfigSet("out.xyz"))


@scenario
def os_store_existing_file():
    from wfl.configset import OutputSpec

    write("out.xyz", marks(5))
    OutputSpec("out.xyz").store(mark(0), " / 0")
    return "no error"


@scenario
def os_store_existing_one_of_two_files():
    from wfl.configset import OutputSpec

    write("b.xyz", marks(5))
    OutputSpec(["a.xyz", "b.xyz"]).store(mark(0), " / 0")
    return "no error"


@scenario
def os_store_existing_overwrite():
    from wfl.configset import ConfigSet, OutputSpec

    write("out.xyz", marks(5))
    out = OutputSpec("out.xyz", overwrite=True)
    out.store(mark(0), " / 0")
    out.close()
    return describe(ConfigSet("out.xyz"))


@scenario
def os_store_memory_existing_name_irrelevant():
    from wfl.configset import OutputSpec

    write("out.xyz", marks(5))
    out = OutputSpec()
    out.store(mark(0))
    out.close()
    return describe(out.to_ConfigSet())


@scenario
def os_store_after_close():
    from wfl.configset import OutputSpec

    out = OutputSpec("out.xyz")
    out.store(mark(0), " / 0")
    out.close()
    out.store(mark(1), " / 1")
    return "no error"


@scenario
def os_all_written():
    from wfl.configset import OutputSpec

    out = OutputSpec("out.xyz")
    before = out.all_written()
    out.store(mark(0), " / 0")
    during = out.all_written()
    out.close()
    mem = OutputSpec()
    mem.close()
    two = OutputSpec(["a.xyz", "b.xyz"])
    two.store(mark(0), " / 0 / 0")
    two.close()
    return {
        "before": before,
        "during": during,
        "after": out.all_written(),
        "memory_closed": mem.all_written(),
        "two_files_one_stored": two.all_written(),
        "files_on_disk": sorted(p for p in os.listdir(".") if not p.startswith(".")),
    }


@scenario
def os_tags():
    from wfl.configset import ConfigSet, OutputSpec

    out = OutputSpec("out.xyz", tags={"stage": "relaxed"})
    out.store(mark(0), " / 0")
    out.close()
    return [at.info.get("stage") for at in ConfigSet("out.xyz")]


@scenario
def os_file_root():
    from wfl.configset import OutputSpec

    os.mkdir("d")
    out = OutputSpec("out.xyz", file_root="d")
    out.store(mark(0), " / 0")
    out.close()
    return {"exists": os.path.exists("d/out.xyz"), "back": describe(out.to_ConfigSet())}


@scenario
def os_keywords():
    """Every constructor keyword of the reference is accepted."""
    from wfl.configset import OutputSpec

    out = OutputSpec(
        "out.extxyz",
        file_root=None,
        overwrite=False,
        flush=True,
        write_kwargs={"format": "extxyz"},
        tags={"t": 1},
    )
    out.store(mark(0), input_CS_loc=" / 0")
    out.close()
    return os.path.exists("out.extxyz")


@scenario
def os_write_kwargs_format():
    from wfl.configset import OutputSpec

    out = OutputSpec("out.traj", write_kwargs={"format": "traj"})
    out.store(mark(0), " / 0")
    out.close()
    return len(ase.io.read("out.traj", ":", format="traj"))


@scenario
def os_caller_atoms_loc():
    """What store() and iteration leave in the caller's own Atoms.info."""
    from wfl.configset import ConfigSet, OutputSpec

    mine = marks(0, 1)
    list(ConfigSet([mine]))
    after_iter = [at.info.get("_ConfigSet_loc") for at in mine]
    out = OutputSpec(tags={"t": 1})
    out.store(mine[0], " / 7")
    return {"after_iter": after_iter, "after_store_tag": mine[0].info.get("t")}


# ---------------------------------------------------------------- expyre names
@scenario
def expyre_names():
    import expyre
    import expyre.config
    import expyre.func
    from expyre.func import ExPyRe, ExPyReJobDiedError, ExPyReTimeoutError

    return {
        "died_is_exception": issubclass(ExPyReJobDiedError, Exception),
        "timeout_is_TimeoutError": issubclass(ExPyReTimeoutError, TimeoutError),
        "ExPyRe_callable": callable(ExPyRe),
        "top_level": [
            hasattr(expyre, n) for n in ("ExPyRe", "ExPyReJobDiedError", "ExPyReTimeoutError")
        ],
        "config_init": callable(expyre.config.init),
    }


@scenario
def expyre_config_init():
    """init() points expyre at a project directory; ``systems`` then lists its systems."""
    import expyre.config

    os.mkdir("proj")
    with open("proj/config.json", "w") as f:
        json.dump(
            {
                "systems": {
                    "tiny": {
                        "host": None,
                        "scheduler": "slurm",
                        "partitions": {"p": {"num_cores": 2, "max_time": "1h", "max_mem": "1GB"}},
                    }
                }
            },
            f,
        )
    expyre.config.init(os.path.abspath("proj"))
    return {"systems": sorted(k for k in expyre.config.systems if k != "local")}


@scenario
def expyre_config_init_no_config():
    import expyre.config

    os.mkdir("empty")
    expyre.config.init(os.path.abspath("empty"))
    return {"systems": sorted(k for k in expyre.config.systems if k != "local")}


@scenario
def expyre_resources():
    from expyre.resources import Resources

    r = Resources(
        max_time="1h",
        num_nodes=1,
        num_cores=None,
        max_mem_tot=None,
        max_mem_per_core=None,
        partitions=None,
    )
    return {"max_time": r.max_time}


@scenario
def expyre_resources_find_nodes():
    from expyre.resources import Resources

    partitions = {
        "small": {"num_cores": 4, "max_time": 3600, "max_mem": 1000000},
        "big": {"num_cores": 16, "max_time": 36000, "max_mem": 8000000},
    }
    r = Resources(max_time="2h", num_cores=16)
    return list(r.find_nodes(partitions))


@scenario
def expyre_units():
    from expyre.units import mem_to_kB, time_to_sec

    return [
        time_to_sec("1:30:00"),
        time_to_sec("2h"),
        time_to_sec(90),
        mem_to_kB("2GB"),
        mem_to_kB("10kB"),
    ]


@scenario
def expyre_schedulers():
    from expyre.schedulers.base import Scheduler
    from expyre.schedulers.local import Local
    from expyre.schedulers.pbs import PBS
    from expyre.schedulers.sge import SGE
    from expyre.schedulers.slurm import Slurm

    return [issubclass(c, Scheduler) for c in (Slurm, SGE, PBS, Local)]


# ---------------------------------------------------------------- wfl autoparallelize names
_REMOTEINFO_KEYWORDS = [
    "sys_name",
    "job_name",
    "resources",
    "num_inputs_per_queued_job",
    "pre_cmds",
    "post_cmds",
    "env_vars",
    "input_files",
    "output_files",
    "header_extra",
    "exact_fit",
    "partial_node",
    "timeout",
    "check_interval",
    "ignore_failed_jobs",
    "resubmit_killed_jobs",
    "hash_ignore",
]


@scenario
def autopara_names():
    import inspect

    from wfl.autoparallelize import (
        AutoparaInfo,
        RemoteInfo,
        autoparallelize,
        autoparallelize_docstring,
    )

    params = inspect.signature(RemoteInfo).parameters
    info = AutoparaInfo(
        num_inputs_per_python_subprocess=2,
        iterable_arg=0,
        skip_failed=True,
        num_python_subprocesses=1,
        remote_info=None,
        remote_label="x",
    )
    ri = RemoteInfo(
        sys_name="local", job_name="j", resources={"max_time": "1h", "num_nodes": 1}, num_inputs_per_queued_job=-100,
        pre_cmds=[], post_cmds=[], env_vars=[], input_files=[], output_files=[], header_extra=[], exact_fit=True,
        partial_node=False, timeout=3600, check_interval=30, ignore_failed_jobs=False,
        resubmit_killed_jobs=False, hash_ignore=[],
    )  # fmt: skip
    return {
        # the first four are passed positionally in scripts; the rest by keyword
        "remoteinfo_positional": list(params)[:4],
        "remoteinfo_keywords": [name in params for name in _REMOTEINFO_KEYWORDS],
        "autopara_info": [info.num_inputs_per_python_subprocess, info.remote_label],
        "remoteinfo": [ri.sys_name, ri.job_name, ri.num_inputs_per_queued_job],
        "callables": [callable(autoparallelize), callable(autoparallelize_docstring)],
    }


@scenario
def autopara_bad_keyword():
    from wfl.autoparallelize import AutoparaInfo

    AutoparaInfo(num_inputs_per_python_subproces=2)
    return "no error"


# ---------------------------------------------------------------- operations: rerun rules
def _double(atoms):
    at = atoms.copy()
    at.info["doubled"] = 2 * at.info["i"]
    return at


@scenario
def map_into_existing_file():
    """An operation writing into a file that exists but was made by something else."""
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    write("out.xyz", marks(5))
    wfl_map(ConfigSet(marks(0, 1)), OutputSpec("out.xyz"), _double)
    return describe(ConfigSet("out.xyz"))


@scenario
def map_rerun_skips():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    first = describe(wfl_map(ConfigSet(marks(0, 1)), OutputSpec("out.xyz"), _double))
    second = describe(wfl_map(ConfigSet(marks(0, 1)), OutputSpec("out.xyz"), _double))
    return {"first": first, "second": second}


@scenario
def map_rerun_overwrite():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    wfl_map(ConfigSet(marks(0, 1)), OutputSpec("out.xyz"), _double)
    again = wfl_map(ConfigSet(marks(2)), OutputSpec("out.xyz", overwrite=True), _double)
    return describe(again)


# ---------------------------------------------------------------- buildcell
@scenario
def buildcell_create_input():
    from wfl.generate.buildcell import create_input

    text = create_input(
        z=[14, 8], vol_per_atom=[20.0, 10.0], bond_lengths=[2.2, 1.2], composition=[1, 2],
        RSS_min_vol_factor=0.4, vol_range=(0.9, 1.1), min_sep_factor=0.8, symmops="1-4",
        natom=(3, 12), odd="also", verbose=False,
    )  # fmt: skip
    return text.splitlines()


@scenario
def buildcell_create_input_one_species():
    from wfl.generate.buildcell import create_input

    return create_input(z=6, vol_per_atom=9.5, bond_lengths=1.45).splitlines()


@scenario
def buildcell_run():
    """Random structures through the buildcell executable in $COMPAT_BUILDCELL (JSON list)."""
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate import buildcell

    cmd = json.loads(os.environ["COMPAT_BUILDCELL"])
    text = buildcell.create_input(z=[14, 8], vol_per_atom=[20.0, 10.0], bond_lengths=[2.2, 1.2],
                                  composition=[1, 2], natom=(3, 9))  # fmt: skip
    result = buildcell.buildcell(range(3), OutputSpec("rss.xyz"), cmd, text, extra_info={"s": 1})
    structures = list(ConfigSet("rss.xyz"))
    return {
        "n": len(list(result)),
        "config_i": [int(at.info["buildcell_config_i"]) for at in structures],
        "info_keys": sorted(k for k in structures[0].info if k != "_ConfigSet_loc"),
        "config_type": structures[0].info["config_type"],
        "symmetry_ends": structures[0].info["buildcell_symmetry"].split("@")[-1].strip(),
        "O_per_Si": [at.get_chemical_symbols().count("O") / at.get_chemical_symbols().count("Si")
                     for at in structures],
    }  # fmt: skip


@scenario
def buildcell_no_structures():
    from wfl.configset import OutputSpec
    from wfl.generate import buildcell

    cmd = json.loads(os.environ["COMPAT_BUILDCELL"])
    text = buildcell.create_input(z=6, vol_per_atom=9.5, bond_lengths=1.45)
    return len(list(buildcell.buildcell(range(0), OutputSpec(), cmd, text)))


# ---------------------------------------------------------------- more shapes
@scenario
def loc_list_with_glob():
    from wfl.configset import ConfigSet

    write("a1.xyz", marks(0))
    write("a2.xyz", marks(1, 2))
    write("c.xyz", marks(3))
    return describe(ConfigSet(["a*.xyz", "c.xyz"]))


@scenario
def cs_of_multi_file_cs_and_file_cs():
    from wfl.configset import ConfigSet

    two = ConfigSet([write("a.xyz", marks(0)), write("b.xyz", marks(1))])
    return describe(ConfigSet([two, ConfigSet(write("c.xyz", marks(2)))]))


@scenario
def cs_groups_nested_file():
    from wfl.configset import ConfigSet, OutputSpec

    out = OutputSpec("out.xyz")
    for at in ConfigSet([marks(0, 1), marks(2)]):
        out.store(at, at.info["_ConfigSet_loc"])
    out.close()
    return [describe(g) for g in ConfigSet("out.xyz").groups()]


@scenario
def os_attributes():
    from wfl.configset import OutputSpec

    mem = OutputSpec()
    mem.store(mark(0), " / 1 / 0")
    return {
        "single": OutputSpec("a.xyz").single_file,
        "list_of_one": OutputSpec(["a.xyz"]).single_file,
        "configs_shape": [len(x) if isinstance(x, list) else "atoms" for x in mem.configs],
        "closed_before": mem.closed,
    }


@scenario
def expyre_resources_more():
    from expyre.resources import Resources

    parts = {"p8": {"num_cores": 8, "max_time": None, "max_mem": None}}
    out = {"queues": Resources(max_time=60, num_cores=8, queues="p8").find_nodes(parts)}
    out["partial"] = Resources(max_time=60, num_cores=2).find_nodes(parts, partial_node=True)
    out["two_nodes"] = Resources(max_time=60, num_nodes=2).find_nodes(parts)
    try:
        Resources(max_time=60, num_cores=12).find_nodes(parts)
    except RuntimeError as exc:
        out["no_fit"] = type(exc).__mro__[-3].__name__
    return out


@scenario
def expyre_time_to_hms():
    from expyre.units import time_to_HMS

    return [time_to_HMS(5400), time_to_HMS(90000)]


def _pair_up(items):
    return [_double(at) for at in items]


@scenario
def autoparallelize_custom_op():
    from wfl.autoparallelize import autoparallelize
    from wfl.configset import ConfigSet, OutputSpec

    out = autoparallelize(
        _pair_up, ConfigSet([marks(0, 1), marks(2)]), OutputSpec("o.xyz"),
        autopara_info={"num_inputs_per_python_subprocess": 2},
    )  # fmt: skip
    return [[int(at.info["doubled"]), at.info["_ConfigSet_loc"]] for at in out]


@scenario
def map_with_args():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    def scaled(at, factor, shift=0):
        at = at.copy()
        at.info["v"] = factor * at.info["i"] + shift
        return at

    out = wfl_map(ConfigSet(marks(1, 2)), OutputSpec(), scaled, args=[10], kwargs={"shift": 3})
    return [int(at.info["v"]) for at in out]


@scenario
def map_partial_outputs_exist():
    """One of two output files exists already (made elsewhere), the other does not."""
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    inputs = ConfigSet([write("a.xyz", marks(0)), write("b.xyz", marks(1))])
    write("ob.xyz", marks(5))
    wfl_map(inputs, OutputSpec(["oa.xyz", "ob.xyz"]), _double)
    return "no error"


@scenario
def map_rerun_changed_inputs():
    """Rerun into finished outputs with different inputs and overwrite=False."""
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    wfl_map(ConfigSet(marks(0, 1)), OutputSpec("out.xyz"), _double)
    return describe(wfl_map(ConfigSet(marks(7)), OutputSpec("out.xyz"), _double))


# ---------------------------------------------------------------- helpers user operations import
def _cu_with_emt():
    from ase.build import bulk
    from ase.calculators.emt import EMT

    at = bulk("Cu", cubic=True)
    at.rattle(0.05, seed=3)
    at.calc = EMT()
    at.get_forces()
    return at


@scenario
def utils_save_calc_results_prefix():
    from wfl.utils.save_calc_results import save_calc_results

    at = _cu_with_emt()
    at.info["REF_stress"] = "old"  # earlier results under the prefix are replaced
    save_calc_results(at, prefix="REF_", properties=["energy", "forces"])
    return {
        "calc": at.calc is None,
        "info": sorted(at.info),
        "arrays": sorted(at.arrays),
        "energy": round(float(at.info["REF_energy"]), 6),
        "force0": [round(float(f), 6) for f in at.arrays["REF_forces"][0]],
    }


@scenario
def utils_save_calc_results_singlepoint():
    from wfl.utils.save_calc_results import save_calc_results

    at = _cu_with_emt()
    save_calc_results(at, prefix=None, properties=None)
    return [type(at.calc).__name__, sorted(at.calc.results), sorted(at.info)]


@scenario
def utils_save_calc_results_empty_prefix():
    from wfl.utils.save_calc_results import save_calc_results

    save_calc_results(_cu_with_emt(), prefix="", properties=["energy"])


@scenario
def utils_save_calc_results_missing_property():
    from wfl.utils.save_calc_results import save_calc_results

    save_calc_results(_cu_with_emt(), prefix="x_", properties=["dipole"])


@scenario
def utils_at_copy_save_calc_results_family():
    from wfl.utils.save_calc_results import at_copy_save_calc_results

    at = _cu_with_emt()
    at.info.update({"md__old": 1, "mdx": 2})
    copied = at_copy_save_calc_results(at, "md__REF_", ["energy"])
    return [sorted(copied.info), sorted(at.info), at.calc is not None]


@scenario
def utils_misc():
    from ase.calculators.emt import EMT

    from wfl.utils.misc import atoms_to_list, chunks, dict_tuple_keys_to_str
    from wfl.utils.parallel import construct_calculator_picklesafe

    return [
        len(atoms_to_list(mark(0))),
        len(atoms_to_list(marks(0, 1))),
        [list(c) for c in chunks(list(range(5)), 2)],
        dict_tuple_keys_to_str({(1, "a"): 3, "b": 4}),
        type(construct_calculator_picklesafe((EMT, [], {}))).__name__,
    ]


@scenario
def utils_calculator_not_callable():
    from wfl.utils.parallel import construct_calculator_picklesafe

    construct_calculator_picklesafe(("ase.calculators.emt.EMT", [], {}))


@scenario
def autoparainfo_update_defaults():
    from wfl.autoparallelize import AutoparaInfo

    info = AutoparaInfo(num_python_subprocesses=2)
    info.update_defaults({"num_inputs_per_python_subprocess": 5, "num_python_subprocesses": 9})
    return [info.num_python_subprocesses, info.num_inputs_per_python_subprocess, info.skip_failed]


@scenario
def autoparainfo_update_defaults_unknown():
    from wfl.autoparallelize import AutoparaInfo

    AutoparaInfo().update_defaults({"num_subprocesses": 5})


# ---------------------------------------------------------------- selection
def _even_i(atoms):
    return int(atoms.info["i"]) % 2 == 0


@scenario
def select_by_bool_func():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.select.simple import by_bool_func

    return describe(by_bool_func(ConfigSet(marks(0, 1, 2, 3, 4)), OutputSpec(), _even_i))


@scenario
def select_by_bool_func_lambda_keyword():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.select.simple import by_bool_func

    selected = by_bool_func(
        inputs=ConfigSet(marks(0, 1, 2, 3)),
        outputs=OutputSpec(),
        at_filter=lambda at: at.info["i"] > 1,
    )
    return describe(selected)


@scenario
def select_by_bool_func_nested():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.select.simple import by_bool_func

    selected = by_bool_func(ConfigSet([marks(0, 1, 2), marks(3, 4)]), OutputSpec(), _even_i)
    return {"configs": describe(selected), "groups": [len(list(g)) for g in selected.groups()]}


@scenario
def select_by_bool_func_files():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.select.simple import by_bool_func

    inputs = ConfigSet([write("a.xyz", marks(0, 1)), write("b.xyz", marks(2, 3))])
    by_bool_func(inputs, OutputSpec(["sa.xyz", "sb.xyz"]), _even_i)
    return [describe(ConfigSet("sa.xyz")), describe(ConfigSet("sb.xyz"))]


@scenario
def select_by_bool_func_rerun_skips():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.select.simple import by_bool_func

    inputs = ConfigSet(write("in.xyz", marks(0, 1, 2)))
    first = describe(by_bool_func(inputs, OutputSpec("sel.xyz"), _even_i))
    second = describe(by_bool_func(inputs, OutputSpec("sel.xyz"), _even_i))
    return {"first": first, "second": second}


@scenario
def select_by_index():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.select.simple import by_index

    return describe(by_index(ConfigSet(marks(0, 1, 2, 3, 4)), OutputSpec(), [4, 1, 9, -1]))


@scenario
def select_by_index_nested():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.select.simple import by_index

    return describe(by_index(ConfigSet([marks(0, 1, 2), marks(3, 4)]), OutputSpec(), [0, 4]))


@scenario
def select_by_index_empty():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.select.simple import by_index

    return describe(by_index(ConfigSet(marks(0, 1)), OutputSpec(), []))


@scenario
def select_by_index_repeated():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.select.simple import by_index

    return describe(by_index(ConfigSet(marks(0, 1, 2)), OutputSpec(), [2, 0, 2]))


@scenario
def select_by_index_rerun_other_indices():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.select.simple import by_index

    inputs = ConfigSet(write("in.xyz", marks(0, 1, 2)))
    by_index(inputs, OutputSpec("sel.xyz"), [0])
    return describe(by_index(inputs, OutputSpec("sel.xyz"), [1, 2]))


# ---------------------------------------------------------------- supercells
def _crystals() -> list[Atoms]:
    from ase.build import bulk

    crystals = [
        bulk("Cu", "fcc", a=3.6, cubic=True),
        bulk("NaCl", "rocksalt", a=5.6),
        bulk("Si", "diamond", a=5.43),
    ]
    for i, at in enumerate(crystals):
        at.info["i"] = i
    return crystals


def _cell_summary(at) -> list:
    return [len(at), at.info["config_type"], [round(float(x), 3) for x in at.cell.cellpar()]]


@scenario
def supercells_largest_bulk():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.supercells import largest_bulk

    crystals = _crystals()
    cells = largest_bulk(ConfigSet(crystals), OutputSpec(), 40)
    plain = largest_bulk(ConfigSet(_crystals()), OutputSpec(), 40, primitive=False)
    return {
        "primitive": [[*_cell_summary(at), list(at.info["supercell_n"])] for at in cells],
        "locations": describe(cells),
        "as_given": [[len(at), list(at.info["supercell_n"])] for at in plain],
    }


@scenario
def supercells_vacancy():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.supercells import vacancy

    rng = np.random.default_rng(5)
    single = vacancy(ConfigSet(_crystals()), OutputSpec(), 40, rng=rng)
    cluster = vacancy(ConfigSet(_crystals()), OutputSpec(), 40, n_vac=3, cluster_r=1.1, rng=rng)
    return [
        [[len(at), at.info["config_type"], len(at.info["vacancy_Z"])] for at in single],
        [[len(at), at.info["config_type"]] for at in cluster],
    ]


@scenario
def supercells_antisite():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.supercells import antisite

    crystals = _crystals()
    rng = np.random.default_rng(5)
    swapped = antisite(ConfigSet(crystals[:1]), OutputSpec(), 40, Zs=[29, 47], rng=rng)
    two = antisite(ConfigSet(crystals[1:2]), OutputSpec(), 40, n_antisite=2, rng=rng)
    return [
        [[at.get_chemical_formula(), at.info["config_type"]] for at in swapped],
        [np.asarray(at.info["antisite_Zs"]).tolist() for at in swapped],
        [[len(at), at.info["config_type"], len(at.info["antisite_Zs"])] for at in two],
    ]


@scenario
def supercells_antisite_one_species():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.supercells import antisite

    cells = antisite(ConfigSet(_crystals()[:1]), OutputSpec(), 40, rng=np.random.default_rng(5))
    return [at.info["config_type"] for at in cells]


@scenario
def supercells_interstitial():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.supercells import interstitial

    cells = interstitial(ConfigSet(_crystals()), OutputSpec(), 40, rng=np.random.default_rng(5))
    return [[len(at), at.info["config_type"], at.info["interstitial"]] for at in cells]


@scenario
def utils_find_voids():
    from ase.build import bulk

    from wfl.utils.find_voids import find_voids

    structures = [
        bulk("Cu", "fcc", a=3.6),
        bulk("Cu", "fcc", a=3.6, cubic=True),
        bulk("Si", "diamond", a=5.43),
        bulk("NaCl", "rocksalt", a=5.6),
        bulk("Fe", "bcc", a=2.87, cubic=True),
    ]
    return [[round(void[0], 6) for void in find_voids(at)] for at in structures]


@scenario
def supercells_surface():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.supercells import surface

    slabs = surface(ConfigSet(_crystals()), OutputSpec(), 40, 6.0, 10.0, simple_cut=True)
    periodic = surface(ConfigSet(_crystals()[:1]), OutputSpec(), 40, 6.0, 0.0, simple_cut=True)
    return {
        "slabs": [_cell_summary(at) for at in slabs],
        "in_plane": [np.asarray(at.info["transformation"])[:2].tolist() for at in slabs],
        "periodic": [_cell_summary(at) for at in periodic],
    }


@scenario
def supercells_surface_transformation():
    """The slab's transformation from the unit cell includes its thickness (3 layers here)."""
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.supercells import surface

    slabs = surface(ConfigSet(_crystals()[:1]), OutputSpec(), 40, 6.0, 10.0, simple_cut=True)
    return [np.asarray(at.info["transformation"]).tolist() for at in slabs]


# ---------------------------------------------------------------- isolated atoms and dimers
def _describe_two_body(configs) -> list:
    return [
        [
            at.get_chemical_formula(),
            round(float(at.positions[-1, 0]), 4),
            [round(float(x), 4) for x in at.cell.lengths()],
            at.pbc.tolist(),
            {k: v for k, v in at.info.items() if k != "_ConfigSet_loc"},
        ]
        for at in configs
    ]


@scenario
def atoms_and_dimers_prepare():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.atoms_and_dimers import prepare

    prepare(
        OutputSpec("two_body.xyz"), [1, 8], bond_lengths={1: 0.8, 8: 1.2}, dimer_n_steps=3,
        max_cutoff=5.0, extra_info={"set": "two_body"},
    )  # fmt: skip
    return _describe_two_body(ConfigSet("two_body.xyz"))


@scenario
def atoms_and_dimers_prepare_fixed_cell():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.atoms_and_dimers import prepare

    prepare(OutputSpec("two_body.xyz"), [6], dimer_n_steps=2, fixed_cell=[10, 11, 12])
    return _describe_two_body(ConfigSet("two_body.xyz"))


@scenario
def atoms_and_dimers_prepare_in_memory():
    from wfl.configset import OutputSpec
    from wfl.generate.atoms_and_dimers import prepare

    configs = prepare(OutputSpec(), [6], dimer_n_steps=3, do_isolated_atoms=False)
    return [round(float(at.positions[1, 0]), 4) for at in configs]


@scenario
def atoms_and_dimers_prepare_rerun():
    from wfl.configset import OutputSpec
    from wfl.generate.atoms_and_dimers import prepare

    prepare(OutputSpec("two_body.xyz"), [6], dimer_n_steps=2, do_isolated_atoms=False)
    prepare(OutputSpec("two_body.xyz"), [6], dimer_n_steps=2, do_isolated_atoms=False)


@scenario
def atoms_and_dimers_isolated_atom_from_e0():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.atoms_and_dimers import isolated_atom_from_e0

    isolated_atom_from_e0(
        OutputSpec("e0.xyz"), {1: -13.6, "O": -430.0}, 8.0, energy_key="REF_energy",
        extra_info={"set": "e0"},
    )  # fmt: skip
    return _describe_two_body(ConfigSet("e0.xyz"))


@scenario
def atoms_and_dimers_isolated_atom_energy_in_extra_info():
    from wfl.configset import OutputSpec
    from wfl.generate.atoms_and_dimers import isolated_atom_from_e0

    isolated_atom_from_e0(OutputSpec(), {1: -1.0}, 8.0, extra_info={"energy": 2.0})


# ---------------------------------------------------------------- isolated atoms in a database
def _database() -> list[Atoms]:
    configs = [
        Atoms("H", cell=[5] * 3),
        Atoms("O", cell=[5] * 3),
        Atoms("H2O", positions=np.eye(3), cell=[5] * 3),
        Atoms("OH", positions=np.eye(2, 3), cell=[5] * 3),
    ]
    for i, (config_type, energy) in enumerate(
        [("isolated_atom", -1.0), ("IsolatedAtom", -5.0), ("water", -10.0), ("oh", -7.5)]
    ):
        configs[i].info.update(i=i, config_type=config_type, REF_energy=energy)
    return configs


@scenario
def utils_find_isolated_atoms():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.utils.configs import find_isolated_atoms

    found = find_isolated_atoms(ConfigSet(_database()), OutputSpec())
    custom = find_isolated_atoms(
        ConfigSet([_database()[2:], _database()[:2]]), OutputSpec(),
        isolated_atom_info_value="isolated_atom",
    )  # fmt: skip
    return [describe(found), describe(custom)]


@scenario
def utils_find_isolated_atoms_twice():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.utils.configs import find_isolated_atoms

    find_isolated_atoms(ConfigSet(_database()[:1] * 2), OutputSpec())


@scenario
def utils_find_isolated_atoms_not_one_atom():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.utils.configs import find_isolated_atoms

    bad = Atoms("H2", cell=[5] * 3, info={"config_type": "isolated_atom"})
    find_isolated_atoms(ConfigSet([bad]), OutputSpec())


@scenario
def utils_atomization_energy():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.utils.configs import atomization_energy

    configs = atomization_energy(ConfigSet(_database()), OutputSpec("ae.xyz"), "REF_")
    return [
        [*d, float(at.info["REF_atomization_energy"])]
        for d, at in zip(describe(configs), configs, strict=True)
    ]


@scenario
def utils_atomization_energy_rerun():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.utils.configs import atomization_energy

    first = atomization_energy(ConfigSet(_database()), OutputSpec("ae.xyz"), "REF_")
    second = atomization_energy(ConfigSet(_database()), OutputSpec("ae.xyz"), "REF_")
    return [describe(first), describe(second)]


@scenario
def utils_atomization_energy_missing_element():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.utils.configs import atomization_energy

    db = _database()
    atomization_energy(ConfigSet([db[0], db[2]]), OutputSpec(), "REF_")


@scenario
def map_func_keyword():
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    return describe(wfl_map(ConfigSet(marks(0, 1)), OutputSpec(), map_func=_double))


# ---------------------------------------------------------------- error tables of fits
def _fit_results() -> list[Atoms]:
    """Reference and fitted values, written out (no generator: the same in every numpy)."""
    configs = []
    for i, (config_type, e_ref, e_fit) in enumerate(
        [("md2", -3.0, -2.9), ("md10", -2.5, -2.8), ("bulk", -4.0, -4.05), ("md2", -3.2, -3.0)]
    ):
        at = Atoms("HO", positions=[[0, 0, 0], [0.9 + 0.1 * i, 0, 0]], cell=[4] * 3, pbc=True)
        at.info.update(i=i, config_type=config_type, REF_energy=e_ref, fit_energy=e_fit, w=1 + i)
        at.arrays["REF_forces"] = np.array([[0.5 * i, 0, 0], [-0.5 * i, 0.1, 0]])
        at.arrays["fit_forces"] = np.array([[0.4 * i, 0.2, 0], [-0.5 * i, 0, 0.3]])
        at.info["REF_stress"] = np.array([0.01 * i, 0, 0, 0, 0, 0.002])
        at.info["fit_stress"] = np.diag([0.012 * i, 0.001, 0])
        configs.append(at)
    return configs


def _rounded_errors(errors: dict) -> dict:
    return {
        prop: {cat: {k: round(float(v), 9) for k, v in e.items()} for cat, e in by_cat.items()}
        for prop, by_cat in errors.items()
    }


@scenario
def fit_error_default_table():
    from wfl.fit.error import calc, errors_dumps

    errors, diffs, parity = calc(_fit_results(), "fit_", "REF_")
    return {
        "errors": _rounded_errors(errors),
        "n_diffs": {p: {c: len(v) for c, v in d.items()} for p, d in diffs.items()},
        "parity_ref_md2": [round(float(np.sum(parity["ref"][p]["md2"])), 9) for p in parity["ref"]],
        "table": errors_dumps(errors),
    }


@scenario
def fit_error_custom_properties():
    from wfl.fit.error import calc, errors_dumps

    errors, _, _ = calc(
        _fit_results(), "fit_", "REF_", config_properties=["energy", "stress/comp"],
        atom_properties=["forces/Z", "forces/comp"], category_keys=None, weight_property="w",
    )  # fmt: skip
    return {"errors": _rounded_errors(errors), "table": errors_dumps(errors, "MAE", 3)}


@scenario
def fit_error_missing_everywhere():
    from wfl.fit.error import calc

    calc(_fit_results(), "fitted_", "REF_")


@scenario
def fit_error_helpers():
    from wfl.fit.error import natural_sort, select_units

    return [
        natural_sort(["md10", "md2", "Bulk", "_ALL_", "md1"]),
        list(select_units("forces/Z_8/comp", "error")),
        list(select_units("atomization_energy/atom", "parity")),
    ]


@scenario
def utils_small_helpers():
    from wfl.generate.utils import save_config_type
    from wfl.utils.file_utils import clean_dir
    from wfl.utils.round_sig_figs import round_sig_figs
    from wfl.utils.version import get_wfl_version

    at = mark(0)
    labels = []
    for action, label in [("append", "a"), ("append", "b"), (False, "c"), ("overwrite", "d")]:
        save_config_type(at, action, label)
        labels.append(at.info["config_type"])
    for name in ("run/OUTCAR", "run/INCAR", "run/sub/x", "gone/y"):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text("x")
    clean_dir("run", ["OUT*", "sub"])
    clean_dir("gone", False)
    clean_dir("missing", True)
    numbers = [(1234.5, 2), (0.000123456, 3), (123456789.0, 3), (-2.5, 1), (99.96, 3), (0, 2)]
    return {
        "labels": labels,
        "kept": sorted(str(p) for p in Path("run").rglob("*")),
        "gone_exists": Path("gone").exists(),
        "rounded": [round_sig_figs(v, n) for v, n in numbers],
        "version_is_text": isinstance(get_wfl_version(), str) and bool(get_wfl_version()),
    }


@scenario
def utils_save_config_type_bad_action():
    from wfl.generate.utils import save_config_type

    save_config_type(mark(0), "prepend", "x")


@scenario
def utils_clean_dir_string_keep_files():
    from wfl.utils.file_utils import clean_dir

    Path("run").mkdir()
    clean_dir("run", "OUTCAR")


@scenario
def utils_clean_dir_missing_forced():
    from wfl.utils.file_utils import clean_dir

    clean_dir("missing", True, force=True)


def run(workdir: str, names: list[str]) -> dict:
    results = {}
    top = Path(workdir).resolve()
    for name in names or SCENARIOS:
        d = top / name
        d.mkdir(parents=True, exist_ok=True)
        os.chdir(d)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results[name] = {"returns": SCENARIOS[name]()}
        except BaseException as exc:  # noqa: BLE001 - the exception class is the result
            results[name] = {
                "raises": type(exc).__name__,
                # every class it is an instance of: a handler for any of them catches it
                "raises_classes": [c.__name__ for c in type(exc).__mro__],
                "message": str(exc)[:300],
            }
            if os.environ.get("COMPAT_SCENARIO_TRACEBACK"):
                traceback.print_exc()
    return results


def golden(results: dict) -> dict:
    """What is recorded of the reference: return values, and the class of what it raised."""
    return {
        name: {"returns": r["returns"]} if "returns" in r else {"raises": r["raises"]}
        for name, r in results.items()
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    as_golden = "--golden" in args
    args = [a for a in args if a != "--golden"]
    out = run(args[0], args[1:])
    print(
        json.dumps(golden(out) if as_golden else out, default=str, indent=1 if as_golden else None)
    )

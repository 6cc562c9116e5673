"""Public operations show their real parameters (help(), IPython/Jupyter, doc tools), and a
call that fits that signature is exactly what the operation accepts."""

import inspect

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from wfl.calculators.generic import calculate
from wfl.configset import ConfigSet, OutputSpec
from wfl.generate.buildcell import buildcell
from wfl.generate.md import md
from wfl.generate.optimize import optimize
from wfl.generate.supercells import antisite, largest_bulk, surface, vacancy
from wfl.generate_configs.minim import run as minim_run
from wfl.map import map as wfl_map
from wfl.select.simple import by_bool_func

# (wrapper, parameters it must show besides inputs/outputs/autopara_info)
OPERATIONS = [
    (optimize, ["calculator", "fmax", "steps", "pressure", "optimizer", "results_prefix"]),
    (minim_run, ["calculator", "fmax", "steps", "optimizer"]),
    (md, ["calculator", "steps", "dt", "temperature", "rng"]),
    (wfl_map, ["func", "args", "kwargs"]),
    (calculate, ["calculator", "properties", "output_prefix"]),
    (buildcell, ["buildcell_cmd", "buildcell_input", "perturbation", "rng"]),
    (by_bool_func, ["at_filter"]),
    (largest_bulk, ["max_n_atoms", "pert", "primitive", "symprec", "ase_optimal", "rng"]),
    (vacancy, ["max_n_atoms", "n_vac", "cluster_r", "rng"]),
    (antisite, ["max_n_atoms", "n_antisite", "cluster_r", "Zs", "rng"]),
    (surface, ["max_n_atoms", "min_thickness", "vacuum", "simple_cut", "rng"]),
]


@pytest.mark.parametrize(("wrapper", "names"), OPERATIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_wrapper_signature_shows_the_operation_parameters(wrapper, names):
    params = inspect.signature(wrapper).parameters
    listed = list(params)
    assert listed[:2] == ["inputs", "outputs"]
    assert listed[-1] == "autopara_info"
    assert params["autopara_info"].kind is inspect.Parameter.KEYWORD_ONLY
    assert set(names) <= set(listed)
    assert not any(p.kind is p.VAR_POSITIONAL for p in params.values())  # no bare *args
    for name in names:  # every parameter shown is one the docstring documents
        assert f"{name} :" in wrapper.__doc__


def test_a_call_bound_to_the_shown_signature_runs():
    """The shown signature is the real one: bind a call to it, then make exactly that call."""
    atoms = [bulk("Cu", cubic=True) for _ in range(2)]
    call = inspect.signature(calculate).bind(
        ConfigSet(atoms), OutputSpec(), EMT(), properties=["energy"], autopara_info={"num_python_subprocesses": 0}
    )  # fmt: skip
    results = list(calculate(*call.args, **call.kwargs))
    assert len(results) == 2 and all("calc_energy" in at.info for at in results)
    with pytest.raises(TypeError, match="unexpected keyword"):
        inspect.signature(calculate).bind(ConfigSet(atoms), OutputSpec(), EMT(), propertes=["x"])

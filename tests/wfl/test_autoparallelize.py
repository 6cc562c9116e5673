"""autoparallelize end to end: determinism over pool/chunk sizes, failures never shift outputs."""

import numpy as np
import pytest
from _wfl_testdata import perturbed_cu_cells
from ase.calculators.emt import EMT

from wfl.autoparallelize import autoparallelize
from wfl.autoparallelize.store import FailedItemsError
from wfl.calculators.generic import calculate
from wfl.configset import ConfigSet, OutputSpec
from wfl.generate.md import md
from wfl.generate.optimize import optimize

SPLITS = [(0, 1), (1, 1), (2, 1), (4, 1), (2, 3), (2, 7), (0, 7)]
FAIL_IDS = {1, 2, 6}  # with chunks of 3 over 7 items: middle of chunk, end of chunk, last item


def _fail_some(atoms_list, fail_ids):
    out = []
    for atoms in atoms_list:
        atoms.info["seen_id"] = atoms.info["id"]
        out.append(None if atoms.info["id"] in fail_ids else atoms)
    return out


def fail_some(*args, **kwargs):
    return autoparallelize(_fail_some, *args, **kwargs)


def _fingerprint(cs, keys):
    return [
        (
            at.info["_ConfigSet_loc"],
            at.positions.tobytes(),
            at.get_momenta().tobytes(),
            *(repr(at.info[k]) for k in keys),
        )
        for at in cs
    ]


@pytest.fixture(autouse=True)
def _no_env_pool(monkeypatch):
    monkeypatch.delenv("WFL_NUM_PYTHON_SUBPROCESSES", raising=False)


def _splits_identical(run, keys):
    results = []
    for n, chunk in SPLITS:
        info = {"num_python_subprocesses": n, "num_inputs_per_python_subprocess": chunk}
        results.append(_fingerprint(run(info), keys))
    assert len(results[0]) > 0
    assert all(r == results[0] for r in results[1:])


def test_md_trajectories_bit_identical_for_any_pool_and_chunk_size():
    configs = perturbed_cu_cells(7)

    def run(info):
        return md(
            configs,
            OutputSpec(),
            calculator=(EMT, [], {}),
            steps=6,
            temperature=500.0,
            traj_step_interval=2,
            rng=np.random.default_rng(42),
            autopara_info=info,
        )

    _splits_identical(run, ["md_energy", "md_step"])
    first = list(run({}))
    assert len(first) == 7 * 4  # steps 0, 2, 4, 6 for each input
    # different inputs got different random velocities
    v0 = [at.get_momenta().tobytes() for at in first if at.info["md_step"] == 0]
    assert len(set(v0)) == 7


def test_optimize_and_calculate_bit_identical_for_any_pool_and_chunk_size():
    configs = perturbed_cu_cells(7)
    _splits_identical(
        lambda info: optimize(
            configs, OutputSpec(), calculator=EMT(), fmax=0.01, autopara_info=info
        ),
        ["optimize_energy", "optimize_n_steps"],
    )
    _splits_identical(
        lambda info: calculate(configs, OutputSpec(), (EMT, [], {}), autopara_info=info),
        ["calc_energy"],
    )


@pytest.mark.parametrize("n, chunk", [(0, 3), (2, 3), (2, 1)])
@pytest.mark.parametrize("to_file", [False, True])
def test_failed_items_never_shift_later_outputs(tmp_path, n, chunk, to_file):
    configs = perturbed_cu_cells(7)
    outputs = OutputSpec(tmp_path / "out.xyz") if to_file else OutputSpec()
    out = list(
        fail_some(
            configs,
            outputs,
            FAIL_IDS,
            autopara_info={"num_python_subprocesses": n, "num_inputs_per_python_subprocess": chunk},
        )
    )
    kept = [i for i in range(7) if i not in FAIL_IDS]
    assert [at.info["id"] for at in out] == kept
    assert all(at.info["seen_id"] == at.info["id"] for at in out)
    for at in out:
        assert np.allclose(at.positions, configs[at.info["id"]].positions, atol=1e-7)
    if not to_file:  # in memory, results keep their own input's location
        assert [at.info["_ConfigSet_loc"] for at in out] == [f" / {i}" for i in kept]


def test_failed_items_with_skip_failed_false_raise_naming_them():
    with pytest.raises(FailedItemsError, match=r"3 of 7 items failed.*' / 1', ' / 2', ' / 6'"):
        fail_some(
            perturbed_cu_cells(7), OutputSpec(), FAIL_IDS, autopara_info={"skip_failed": False}
        )


def test_callers_configs_not_mutated_serial_or_pool():
    configs = perturbed_cu_cells(3)
    before = [at.positions.copy() for at in configs]
    for n in (0, 2):
        optimize(
            configs,
            OutputSpec(),
            calculator=EMT(),
            fmax=0.01,
            autopara_info={"num_python_subprocesses": n},
        )
    assert all(np.array_equal(b, at.positions) for b, at in zip(before, configs, strict=True))
    assert all(at.calc is None and "_ConfigSet_loc" not in at.info for at in configs)


def test_inputs_outputs_as_keywords_and_file_input(tmp_path):
    import ase.io

    ase.io.write(tmp_path / "in.xyz", perturbed_cu_cells(3))
    out = calculate(inputs=ConfigSet(tmp_path / "in.xyz"), outputs=OutputSpec(), calculator=EMT())
    assert [at.info["id"] for at in out] == [0, 1, 2]


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: md(perturbed_cu_cells(1), OutputSpec(), EMT(), rng=5),
            "not a numpy.random.Generator",
        ),
        (
            lambda: optimize(
                perturbed_cu_cells(1), OutputSpec(), EMT(), rng=np.random.default_rng()
            ),
            "takes no rng",
        ),
        (
            lambda: optimize(perturbed_cu_cells(1), "out.xyz", EMT()),
            "outputs must be an OutputSpec",
        ),
        (lambda: optimize(perturbed_cu_cells(1)), "needs 'outputs'"),
    ],
)
def test_bad_calls_are_clear_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()

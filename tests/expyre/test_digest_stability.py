"""Argument digests do not change between versions: a job key computed by an older version of
this package must still find its job. The digests below were computed before the digest's
fast paths (exact str/int/float/ndarray, Atoms cell and pbc without copies) were added; any
change to the bytes fed to the hash shows here.
"""

import functools
import math
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

from expyre.digest import argument_digest


def _values():
    at = Atoms(
        "CuH",
        positions=[[0, 0, 0], [0.5, 0.1, 0.2]],
        cell=[3, 3, 3],
        pbc=[True, False, True],
        info={"i": 3, "s": "x", "f": 1.5},
    )
    at.set_constraint(FixAtoms([1]))
    return [None, True, False, 0, -7, 2**70, 1.5, float("nan"), -0.0, 1j + 2, "héllo", b"by",
            bytearray(b"ba"), Path("/a/b"), np.arange(6).reshape(2, 3), np.array([1.5, np.nan]),
            np.array(["a", None], dtype=object), np.float32(2.5), np.int64(4), [1, (2, 3)],
            {"b": 1, "a": [2]}, {3, 1, 2}, frozenset({"z"}), at, [at, at.copy()], math.sqrt,
            functools.partial(int, base=2), np.random.default_rng(5),
            {"nested": {"k": np.zeros(2)}}]  # fmt: skip


EXPECTED = [
    "8cfde1a2c2d4bf09265b6b0925e4162c4eecf42ce62895685d8535ff414860db",
    "6addbbe338e2243bb5e759d1eed87eaeb45c0969969bc0ee727c632983f05a43",
    "79ccc9b69515fbe0df5cd2f0a3376be6f1947303d5f87def5fa4a8fd061e4c03",
    "a77bdd9eb2536e0edbf1a7e063108475bcc69acc237eab7754dee7a5fdfd6982",
    "84fe8dbf110842b17d0b36aefa4ed4d7b87d5017aebfe28c28236a7fc6bf333b",
    "53ab0a4a623c6c7f5878d03f6043331a490dbfcfb9542eff18655b2b15b23ffe",
    "ebf9f58c422588c6e2443a9f350c84be8a896f789dca1e705adf8a28a409f74f",
    "72e5f19a7f6a4b7efd8771c5913201eb753f1d964b57f80b705edc8f519348ee",
    "a3f873aa743d45f837a399fc5c87d21edeb3696ced112ac7ee7a10b242b632e7",
    "ce2d786b8e463fb5ed209e01cca1799987a9e3d7e1e385e6175a776b7bcfa203",
    "4b8cc256fd650f19776c44b9302fadbd63460cb3c40ccb0e7cad9474cc51c28b",
    "a48bac44ef5622f6dfd0410931225a3320f2edef54968eb858c41eb0bcd4cc24",
    "54580861c583733aaa60210e8db2c92d58b780166753c6cacbfd42252eafe408",
    "45f7af342572e2d340168f38dac29c3b2038cc6a7f78723ea3d12f33add71b70",
    "8549c8dfdc1b3c833d0134aff87b558179835da523d546c3df2ead05a6252e1f",
    "ba85321ad20ce5e02a91f147649da62149bae84a0a222cc8af64bda52c5a32fa",
    "275422d94047e81f06639f0ed2d4e709fcd3bca7c81cf6393b9aea36102323b6",
    "ea633c7717d04eb90b3fcb20e09cf41b12ce51a09f84968813262ff899a750f9",
    "878154e9cb0068046958b32bdea1e3b768740a8e13c34b09cb65b1ac48477b8e",
    "1c8d12b61a4c483bb03651479194026cd3d1330a5bbf4ef1d9fb53aa2da9169e",
    "29be0a55c1dc80bdbfea4e39f6d75a0285eb631c09eb093b1a7c77e79bcfa8e0",
    "b27af9d8121d834de0e96ad67f3def5b000132c229163e9a16de20a91bc812dc",
    "073cce69621826f0ffc3c49b56d0e5829b3f9a484d990cad1e45d109e1c531fd",
    "b3abf4bf25febb401ca3e5f9f587f77a2661511155563544c8f3bb6e2dd7b130",
    "7a6478bff5589626de1cb7a50397e5cdd865529bf67230f9becdeddab954caa5",
    "c7e5cb84ca386633f649379a270a6a6fea21d52294aa13ca9f0c401316837780",
    "81bfc6d748d440c75725ee148864bac836352882e73396366c29a05419405317",
    "828362889705bc378b2bd9700b5c270686a65b1e957c1011a96e98a8b223868f",
    "4bac3505dedc13635b9009ec36abd9bec7ba28defc4585ca1d0852fbda4cc7b4",
]
ALL = "f27da2d7e3dbe18c2def27000bfc39e24b6ef8089aae79e6ada9a7136df25df1"


def test_digests_are_those_of_earlier_versions():
    assert [argument_digest(v) for v in _values()] == EXPECTED
    assert argument_digest(_values()) == ALL


def test_atoms_as_copy_digests_as_the_copy_it_stands_for():
    """The rerun's key is computed without copying its inputs: the bytes must be the copy's."""
    from ase.calculators.emt import EMT

    from expyre.digest import AtomsAsCopy

    at = _values()[23]
    at.calc = EMT()  # a copy drops the calculator; the view must too
    at.info["loc"] = "old"  # replaced by the extra info, as the copy's assignment would
    copies = []
    for loc in ("/0", "/1"):
        c = at.copy()
        c.info["loc"] = loc
        copies.append(c)
    views = [AtomsAsCopy(at, {"loc": loc}) for loc in ("/0", "/1")]
    assert argument_digest(views) == argument_digest(copies)
    assert argument_digest(views[0]) != argument_digest(views[1])
    assert at.info["loc"] == "old" and at.calc is not None  # the caller's object untouched


def test_located_copies_digests_equal_the_two_separate_digests():
    """One pass gives the operation's inputs digest and each item's own digest, byte for byte
    the digests the completion record and the item store had before it existed."""
    from ase.calculators.emt import EMT

    from expyre.digest import AtomsAsCopy, CanonicalEncoder, located_copies_digests

    at = _values()[23]
    at.calc = EMT()
    other = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]], info={"loc": "stale", "n": 2})
    configs, locs = [at, other, at], ["/0", "/1", "/2"]
    whole, own = located_copies_digests(configs, "loc", locs)
    assert whole == argument_digest(
        [AtomsAsCopy(c, {"loc": v}) for c, v in zip(configs, locs, strict=True)]
    )
    unlocated = []
    for c in configs:
        copy = c.copy()
        copy.info.pop("loc", None)
        unlocated.append(CanonicalEncoder().digest(copy))
    assert own == unlocated
    assert own[0] == own[2] != own[1]  # an item's own digest leaves its location out
    assert other.info["loc"] == "stale" and at.calc is not None  # the caller's untouched

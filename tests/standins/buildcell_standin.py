"""STAND-IN for AIRSS's ``buildcell`` (AIRSS cannot be installed here); used only by tests.

Speaks buildcell's interface as far as wfl uses it: reads a buildcell input on stdin
(``#SPECIES=Si%NUM=1,O%NUM=2``, ``#NFORM={1,2}``, ``#TARGVOL=a-b``; other lines ignored)
and prints one random structure as CASTEP ``.cell`` text: a ``LATTICE_ABC`` block
(Å, degrees) and a ``POSITIONS_FRAC`` block. It does not honour symmetry operations or
minimum separations: tests check the plumbing, not structure quality.

Test hooks (never in real inputs): a line ``#STANDIN_FAIL=garbage`` prints unreadable
output, ``#STANDIN_FAIL=empty`` prints nothing; ``#STANDIN_COMMENTS`` adds ``#`` comments
to position lines, as CASTEP files may have.
"""

import random
import re
import sys


def main() -> int:
    text = sys.stdin.read()
    if "#STANDIN_FAIL=empty" in text:
        print("stand-in buildcell: asked to print nothing", file=sys.stderr)
        return 1
    if "#STANDIN_FAIL=garbage" in text:
        print("%BLOCK LATTICE_ABC\nnot numbers at all\n%ENDBLOCK LATTICE_ABC")
        print("%BLOCK POSITIONS_FRAC\nSi x y z\n%ENDBLOCK POSITIONS_FRAC")
        return 0
    species = re.search(r"^#SPECIES=(\S+)", text, re.MULTILINE)
    if species is None:
        print("stand-in buildcell: no #SPECIES line", file=sys.stderr)
        return 2
    formula = []
    for part in species.group(1).split(","):
        symbol, _, num = part.partition("%NUM=")
        formula += [symbol] * int(num or 1)
    nform = re.search(r"^#NFORM=\{?([0-9,]+)\}?", text, re.MULTILINE)
    choices = [int(n) for n in nform.group(1).split(",") if n] if nform else [1]
    rng = random.Random()
    symbols = formula * rng.choice(choices)
    vol = re.search(r"^#TARGVOL=([0-9.]+)-([0-9.]+)", text, re.MULTILINE)
    per_formula = rng.uniform(float(vol.group(1)), float(vol.group(2))) if vol else 10.0
    volume = per_formula * len(symbols) / len(formula)
    a = volume ** (1 / 3)
    comment = "  # stand-in" if "#STANDIN_COMMENTS" in text else ""
    print("%BLOCK LATTICE_ABC")
    print(f"{a:.6f} {a:.6f} {a:.6f}{comment}")
    print(f"90.0 90.0 90.0{comment}")
    print("%ENDBLOCK LATTICE_ABC")
    print("%BLOCK POSITIONS_FRAC")
    for s in symbols:
        x, y, z = (rng.random() for _ in range(3))
        print(f"{s} {x:.6f} {y:.6f} {z:.6f}{comment}")
    print("%ENDBLOCK POSITIONS_FRAC")
    return 0


if __name__ == "__main__":
    sys.exit(main())

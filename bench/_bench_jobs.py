"""Trivial work the queue-overhead bench runs as jobs (bench/queue_overhead.py).

A module of its own so jobs unpickle these functions by reference: the job's Python finds it
through ``PYTHONPATH=<this directory>``. Run as a script it is the raw scheduler job:
``python _bench_jobs.py X`` prints X*X.
"""

from __future__ import annotations

import sys


def square(x: int) -> int:
    """x*x: the whole of the job's work, so wall time is all overhead."""
    return x * x


def square_atoms(atoms):
    """The same for wfl.map: ``info["x_squared"] = info["x"] ** 2`` on an Atoms."""
    atoms.info["x_squared"] = square(atoms.info["x"])
    return atoms


if __name__ == "__main__":
    print(square(int(sys.argv[1])))

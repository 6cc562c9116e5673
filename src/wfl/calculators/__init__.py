"""Calculators and the ``calculate`` operation (``wfl.calculators.generic``).

Submodules are imported on use, so ``import wfl.calculators.generic`` does not pull in the
DFT calculators' dependencies.
"""

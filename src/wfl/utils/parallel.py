"""``construct_calculator_picklesafe`` under its wfl 0.3.5 module name."""

from wfl.utils.calc import construct_calculator_picklesafe

__all__ = ["construct_calculator_picklesafe"]

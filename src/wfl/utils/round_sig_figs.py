"""Numbers rounded to significant figures, as text (for labels and file names)."""

from __future__ import annotations

__all__ = ["round_sig_figs"]


def round_sig_figs(value: float, n_sig_figs: int) -> str:
    """``value`` rounded to ``n_sig_figs`` significant figures, in its shortest form.

    Examples: ``round_sig_figs(1234.5, 2) == "1200"``, ``round_sig_figs(0.000123456, 3)
    == "0.000123"``, ``round_sig_figs(123456789, 3) == "1.23e+08"``.
    """
    rounded = float(f"{float(value):.{int(n_sig_figs)}g}")
    return f"{rounded:g}"  # shortest form: no trailing zeros, exponent when very large/small

"""wfl -- workflows over ASE Atoms: ConfigSet/OutputSpec, autoparallelize, operations, fits."""

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # one version for the distribution that ships wfl and expyre
        import expyre

        return expyre.__version__
    raise AttributeError(f"module 'wfl' has no attribute {name!r}")

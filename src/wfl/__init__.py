"""wfl -- workflows over ASE Atoms: ConfigSet/OutputSpec, autoparallelize, operations, fits."""

from typing import Any

from expyre.clients import register_client_package

# wfl's operations run inside expyre jobs: their code counts in job keys, and every system
# must have this wfl
register_client_package("wfl")

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # one version for the distribution that ships wfl and expyre
        import expyre

        return expyre.__version__
    raise AttributeError(f"module 'wfl' has no attribute {name!r}")

"""wfl -- workflows over ASE Atoms: ConfigSet/OutputSpec, autoparallelize, operations, fits."""

from expyre import __version__

__all__ = ["__version__"]

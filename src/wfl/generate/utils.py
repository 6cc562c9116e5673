"""Labelling generated configurations: ``info["config_type"]``."""

from __future__ import annotations

from ase import Atoms

__all__ = ["save_config_type"]


def save_config_type(at: Atoms, action: str | bool, config_type: str) -> None:
    """Set or extend ``at.info["config_type"]``, which fits use to weight and group configs.

    Parameters
    ----------
    at : Atoms
        The configuration (changed in place).
    action : "append", "overwrite" or False
        "append": add ``":" + config_type`` to an existing label (or set it if there is
        none). "overwrite": replace the label. False (or anything false): do nothing.
    config_type : str
        The label.
    """
    if not action:
        return
    if action not in ("append", "overwrite"):
        raise ValueError(
            f"save_config_type: action={action!r} is not 'append', 'overwrite' or False"
        )
    if action == "append" and "config_type" in at.info:
        at.info["config_type"] = f"{at.info['config_type']}:{config_type}"
    else:
        at.info["config_type"] = config_type

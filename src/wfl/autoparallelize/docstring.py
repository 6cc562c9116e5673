"""Build the docstring of a public autoparallelized wrapper from its operation's docstring."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

_SECTION_RE = re.compile(r"^(\S[^\n]*)\n-{3,}\s*$", re.MULTILINE)


def _sections(doc: str) -> tuple[str, dict[str, str]]:
    """Split a numpy-style docstring into (summary, {section title: body})."""
    matches = list(_SECTION_RE.finditer(doc))
    if not matches:
        return doc.strip(), {}
    summary = doc[: matches[0].start()].strip()
    sections = {}
    for m, nxt in zip(matches, [*matches[1:], None], strict=True):
        end = nxt.start() if nxt else len(doc)
        sections[m.group(1).strip()] = doc[m.end() : end].strip("\n")
    return summary, sections


def _drop_first_parameter(params: str) -> str:
    """Remove the first parameter entry (the items list) of a Parameters section."""
    lines = params.splitlines()
    i = 1
    while i < len(lines) and (lines[i].startswith((" ", "\t")) or not lines[i].strip()):
        i += 1
    return "\n".join(lines[i:])


def autoparallelize_docstring(
    wrapped_func: Callable,
    wrappable_func: Callable,
    input_iterable_type: str = "Atoms",
    input_arg: int | str = 0,
) -> Callable:
    """Give ``wrapped_func`` a docstring: ``wrappable_func``'s, with inputs/outputs/autopara_info.

    The parameters have wfl 0.3.5's names, for wrappers that pass them by keyword.

    Parameters
    ----------
    wrapped_func : callable
        The public function calling ``autoparallelize(op, ...)``; its ``__doc__`` is set.
    wrappable_func : callable
        The operation over a list of items, with a numpy-style docstring whose first
        parameter is that list.
    input_iterable_type : str, default "Atoms"
        What the items are, for the text.
    input_arg : int or str, default 0
        Accepted for wrappers written for wfl 0.3.5; the items are always the operation's
        first parameter, whose entry is left out of the text.

    Returns
    -------
    callable
        ``wrapped_func`` itself, so this can be used inline.
    """
    wrapper, op, input_type = wrapped_func, wrappable_func, input_iterable_type
    summary, sections = _sections(inspect.cleandoc(op.__doc__ or ""))
    params = _drop_first_parameter(sections.pop("Parameters", "")) if sections else ""
    sections.pop("Returns", None)
    parts = [
        summary or f"Autoparallelized {op.__name__}.",
        f"Runs over the {input_type} of ``inputs`` in chunks, in a pool of Python subprocesses "
        "or as queued jobs (see ``autopara_info`` and WFL_EXPYRE_INFO), and stores one result "
        "per input in ``outputs``, in input order. If ``outputs`` already hold this "
        "operation's results, nothing is recomputed.",
        "Parameters\n----------\n"
        f"inputs : ConfigSet, or anything ConfigSet accepts\n    Input {input_type} configs.\n"
        "outputs : OutputSpec\n    Where results are stored.\n"
        + (params.strip("\n") + "\n" if params.strip() else "")
        + "autopara_info : AutoparaInfo or dict, optional\n"
        "    Chunk size, pool size, skip_failed, initializer, remote_info, ...;\n"
        "    overrides this operation's defaults.",
        "Returns\n-------\nConfigSet\n    The stored results, in input order.",
    ]
    parts += [f"{title}\n{'-' * len(title)}\n{body}" for title, body in sections.items()]
    wrapper.__doc__ = "\n\n".join(parts) + "\n"
    return wrapper

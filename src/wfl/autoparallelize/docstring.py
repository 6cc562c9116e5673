"""The docstring and signature of a public autoparallelized wrapper, from its operation's.

A wrapper is written ``def optimize(*args, **kwargs): return autoparallelize(_optimize, ...)``
so that every operation shares one argument convention; its help text and its
``inspect.signature`` (what ``help()``, IPython/Jupyter completion and documentation tools
show) are built here from the operation itself, so they cannot drift from it.

Why the signature is set at run time rather than written in the ``def``: writing the
parameters in the wrapper would write every operation's signature twice (once on
``_optimize``, once on ``optimize``), and the two copies would drift. Typing's
``ParamSpec``/``Concatenate`` cannot express "the operation's parameters, its first one
replaced by ``inputs, outputs``, plus a keyword-only ``autopara_info``" (Concatenate only
prepends positional parameters and cannot add a keyword), so a static checker would either
miss ``autopara_info`` or report it as an error. The runtime ``__signature__`` is therefore
the one place: ``help()``, ``inspect.signature``, IPython/Jupyter and Jedi-based completion
show the real parameters; purely static checkers (pyright, mypy) see ``(*args, **kwargs)``.
"""

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
    """Give ``wrapped_func`` ``wrappable_func``'s docstring and signature, with
    inputs/outputs/autopara_info.

    The parameters have wfl 0.3.5's names, for wrappers that pass them by keyword.

    Parameters
    ----------
    wrapped_func : callable
        The public function calling ``autoparallelize(op, ...)``; its ``__doc__`` and
        ``__signature__`` are set.
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
    wrapper.__signature__ = autoparallelized_signature(op)
    return wrapper


def autoparallelized_signature(op: Callable) -> inspect.Signature:
    """The signature a wrapper of ``op`` accepts: ``(inputs, outputs, <op's other parameters>,
    *, autopara_info=None)`` -- ``op``'s first parameter (the items) is replaced by the two."""
    kind = inspect.Parameter
    rest = list(inspect.signature(op).parameters.values())[1:]
    # the caller gives one generator; each item gets its own child of it
    rest = [
        p.replace(annotation="numpy.random.Generator | None") if p.name == "rng" else p
        for p in rest
    ]
    variadic_kw = [p for p in rest if p.kind is kind.VAR_KEYWORD]
    rest = [p for p in rest if p.kind is not kind.VAR_KEYWORD]
    if any(p.name == "autopara_info" for p in rest):
        raise ValueError(f"{op.__qualname__} has its own 'autopara_info' parameter; rename it")
    params = [
        kind("inputs", kind.POSITIONAL_OR_KEYWORD, annotation="ConfigSet"),
        kind("outputs", kind.POSITIONAL_OR_KEYWORD, annotation="OutputSpec"),
        *rest,
        kind(
            "autopara_info",
            kind.KEYWORD_ONLY,
            default=None,
            annotation="AutoparaInfo | dict | None",
        ),
        *variadic_kw,
    ]
    return inspect.Signature(params, return_annotation="ConfigSet")

"""Formal statements as code: both sides of each, and checks that try to break them.

Importing this package registers every statement of :mod:`pmdm.theory.paper` and
:mod:`pmdm.theory.paper_decoders` (Zhang et al. 2026, arXiv 2602.00286), then of
:mod:`pmdm.theory.neighbours` and :mod:`pmdm.theory.neighbour_decoders` (the
neighbouring results), in that order. :func:`get` returns one by name;
:func:`pmdm.theory.check.check` runs one on given instances and :func:`run_checks`
runs all of them on seeded random instances (``pmdm.theory.check`` is the module of
``pmdm check``; the function ``check`` lives in it and in
:mod:`pmdm.theory.registry`).
"""

# Registration order is the order of `pmdm check`'s table.
from pmdm.theory import paper  # noqa: F401, I001  (registers statements)
from pmdm.theory import paper_decoders  # noqa: F401
from pmdm.theory import neighbours  # noqa: F401
from pmdm.theory import neighbour_decoders  # noqa: F401
from pmdm.theory import check  # noqa: F401
from pmdm.theory.check import format_table, register_cli, run_checks
from pmdm.theory.registry import (
    KINDS,
    RELATIONS,
    Assumption,
    CheckResult,
    Comparison,
    Source,
    Statement,
    get,
    names,
    register,
    statements,
)

__all__ = [
    "KINDS",
    "RELATIONS",
    "Assumption",
    "CheckResult",
    "Comparison",
    "Source",
    "Statement",
    "check",
    "format_table",
    "get",
    "names",
    "register",
    "register_cli",
    "run_checks",
    "statements",
]

"""Formal statements as code: both sides of each, and checks that try to break them.

Importing this package registers every statement of :mod:`pmdm.theory.paper` (Zhang
et al. 2026, arXiv 2602.00286) and :mod:`pmdm.theory.neighbours` (the neighbouring
results). :func:`get` returns one by name; :func:`pmdm.theory.check.check` runs one
on given instances and :func:`run_checks` runs all of them on seeded random
instances (``pmdm.theory.check`` is the module of ``pmdm check``; the function
``check`` lives in it and in :mod:`pmdm.theory.registry`).
"""

from pmdm.theory import check, neighbours, paper  # noqa: F401  (registers statements)
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

"""Hypothesis settings profiles shared by ``tests/`` and ``proofs_checks/``.

``ci`` (the default under ``CI=true``) bounds the examples and has no deadline;
``dev`` runs more; ``thorough`` is for ``pmdm check`` style sweeps.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "derandomize": True,
}


def register_profiles() -> None:
    """Register the profiles and load the one named by ``HYPOTHESIS_PROFILE``
    (``ci`` when unset)."""
    settings.register_profile("ci", max_examples=25, **_COMMON)
    settings.register_profile("dev", max_examples=100, **_COMMON)
    settings.register_profile("thorough", max_examples=500, **_COMMON)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

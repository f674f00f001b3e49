"""Property-based checks of the formal statements: hypothesis profiles and seeds."""

import pyro
import pytest

from pmdm.testing.profiles import register_profiles

register_profiles()


@pytest.fixture(autouse=True)
def _seeded():
    """Every check starts from the same global seed."""
    pyro.set_rng_seed(0)

import pyro
import pytest

from pmdm.testing.profiles import register_profiles

register_profiles()


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seed and a clean Pyro store."""
    pyro.set_rng_seed(0)
    pyro.clear_param_store()

import pyro
import pytest
import torch

from pmdm.testing.profiles import register_profiles

register_profiles()

# The tests' tensors are small: one thread avoids contention on small machines.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seed and a clean Pyro store."""
    pyro.set_rng_seed(0)
    pyro.clear_param_store()

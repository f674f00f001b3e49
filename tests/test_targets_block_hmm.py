"""The Block-HMM's additions to the Target contract: impossible contexts, sites."""

import torch

from pmdm.models.base import Target
from pmdm.models.block_hmm import BlockHMM


def test_conditionals_given_an_impossible_context_are_uniform():
    hmm = BlockHMM(num_states=2, rho=(0.9, 0.1), block_size=3, length=6, eta=0.0)
    # Parity 1 over content bits 0, 0 breaks the hard parity constraint.
    x = torch.tensor([[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    revealed = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0]]).bool()
    assert torch.isneginf(hmm.log_evidence(x, revealed)[0])
    cond = hmm.conditionals(x, revealed).exp()
    assert torch.equal(cond[0, 3:], torch.full((3, 2), 0.5).double())
    # The base class's derivation from log_evidence follows the same rule.
    assert torch.allclose(cond, Target.conditionals(hmm, x, revealed).exp())
    assert not torch.equal(cond[1, 3:], torch.full((3, 2), 0.5).double())


def test_sites_are_the_blocks_as_floats():
    hmm = BlockHMM(num_states=2, block_size=2, length=6, eta=0.1)
    x = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]])
    sites = hmm.sites(x)
    assert list(sites) == ["block_0", "block_1", "block_2"]
    assert sites["block_1"].tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert sites["block_1"].dtype == torch.float64

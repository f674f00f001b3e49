"""Every target's ``sites(x)`` names and fills the token sites of its Pyro model."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from pyro.infer.mcmc.util import TraceEinsumEvaluator

from pmdm.models.base import Target
from pmdm.models.block_hmm import BlockHMM
from pmdm.models.hmm import TokenHMM
from pmdm.models.table import TableTarget


def token_hmm():
    trans = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.6, 0.4], [0.5, 0.0, 0.5]])
    emit = torch.tensor([[0.8, 0.2], [0.1, 0.9], [0.5, 0.5]])
    init = torch.tensor([0.2, 0.3, 0.5])
    return TokenHMM(init.double(), trans.double(), emit.double(), length=4)


def table():
    gen = torch.Generator().manual_seed(3)
    dense = torch.rand(3, 3, 3, generator=gen, dtype=torch.float64)
    dense[0, 0] = 0.0
    return TableTarget.from_dense(dense / dense.sum())


TARGETS = {
    "block-hmm": lambda: BlockHMM(
        num_states=2, stay=0.8, rho=(0.9, 0.2), block_size=2, length=4, eta=0.0
    ),
    "token-hmm": token_hmm,
    "table": table,
}


def log_joint_of_sites(target, x):
    """log p of the model conditioned on ``sites(x)``, latents summed out."""
    conditioned = poutine.condition(target.model, data=target.sites(x))
    trace = poutine.trace(poutine.enum(conditioned, first_available_dim=-2)).get_trace(
        num_sequences=x.shape[0]
    )
    return TraceEinsumEvaluator(trace, True, 1).log_prob(trace)


@pytest.mark.parametrize("name", TARGETS)
def test_conditioning_the_model_on_sites_gives_log_prob(name):
    target = TARGETS[name]()
    x = target.enumerate_sequences()
    for row in x[:: max(1, len(x) // 10)]:
        expected = target.log_prob(row).item()
        got = log_joint_of_sites(target, row.unsqueeze(0)).item()
        if math.isinf(expected):
            assert got == -math.inf
        else:
            assert got == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("name", TARGETS)
def test_sites_are_exactly_the_token_sites_of_the_model(name):
    target = TARGETS[name]()
    x = target.sample(7)
    trace = poutine.trace(target.model).get_trace(data=x)
    observed = {n for n, s in trace.nodes.items() if s.get("is_observed")}
    sites = target.sites(x)
    assert set(sites) == observed
    for site_name, value in sites.items():
        assert value.shape[0] == 7
        model_value = trace.nodes[site_name]["value"]
        assert model_value.dtype == value.dtype and torch.equal(model_value, value)


@pytest.mark.parametrize("name", TARGETS)
def test_a_guide_emitting_the_sites_makes_trace_enum_elbo_score_x(name):
    # A guide that puts a point mass on x through the same sites: log q(x) = 0, so
    # the ELBO is log p(x), with the model's latents summed out by enumeration.
    target = TARGETS[name]()
    x = target.sample(5)

    def guide(num_sequences=None):
        with pyro.plate("sequences", num_sequences, dim=-1):
            for site, value in target.sites(x).items():
                # Float64 log-density: a Delta on long values alone scores in float32.
                zero = torch.zeros(value.shape[:1], dtype=torch.float64)
                point = dist.Delta(value, zero, event_dim=value.dim() - 1)
                pyro.sample(site, point)

    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(
        target.model, guide, num_sequences=5
    )
    assert loss == pytest.approx(-target.log_prob(x).sum().item(), rel=1e-10)


def test_the_base_class_leaves_sites_to_subclasses():
    class Uniform(Target):
        length, vocab_size = 2, 2

        def log_evidence(self, x, revealed):
            return -math.log(2) * revealed.sum(-1).double()

        def sample(self, num_sequences):
            return torch.randint(2, (num_sequences, 2))

        def model(self, data=None, num_sequences=None):
            return None

    with pytest.raises(NotImplementedError, match=r"Uniform.sites"):
        Uniform().sites(torch.zeros(1, 2).long())

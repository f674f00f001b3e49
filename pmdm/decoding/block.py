"""The two canonical blockwise decoders of a Block-HMM, written as Pyro guides.

Both decode block by block, left to right, each block conditioned on the sampled
prefix ``x_P`` through the exact latent law ``p(z_m | x_P)``:

* :class:`FactorizedBlockGuide` draws the block's bits independently from their
  exact marginals, ``q(x_B | x_P) = Π_i p(x_i | x_P)`` (paper, Eq. 5);
* :class:`JointBlockGuide` draws the block from its exact joint
  ``q(x_B | x_P) = p(x_B | x_P)`` ("verified decoding"), as a mixture over ``z_m``.

Their sample sites are the target model's ``block_m`` sites, so
``TraceEnum_ELBO(model, guide)`` estimates ``-KL(q ‖ p)`` and replaying a guide on
target samples scores them under ``q``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import Tensor

from pmdm.models.block_hmm import BlockEmission, BlockHMM
from pmdm.ops.validation import check_int


class BlockGuide(ABC):
    """Block-by-block decoder of a :class:`~pmdm.models.block_hmm.BlockHMM`.

    Subclasses choose the proposal of one block given ``log p(z_m | x_P)``.

    Parameters
    ----------
    target : BlockHMM
    """

    #: Short name used in results tables.
    name: str = ""

    def __init__(self, target: BlockHMM):
        if not isinstance(target, BlockHMM):
            raise TypeError(f"target={target!r}: expected a BlockHMM")
        self.target = target

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"

    @abstractmethod
    def block_distribution(self, log_pred: Tensor) -> dist.TorchDistribution:
        """``q(x_B | x_P)`` given ``log p(z_m | x_P)`` of shape ``(N, K)``; a
        distribution with batch shape ``(N,)`` and event shape ``(B,)``."""

    def __call__(self, data: Tensor | None = None, num_sequences: int | None = None):
        """The Pyro guide; same signature as the target's model.

        ``data`` is accepted for signature compatibility only: the guide samples
        every block. To score given sequences use :meth:`log_prob`.
        """
        target = self.target
        n = data.shape[0] if data is not None else num_sequences
        n = check_int("num_sequences", n, minimum=0)
        log_pred = target.log_init.expand(n, target.num_states)
        blocks = []
        with pyro.plate("sequences", n, dim=-1):
            for m in range(target.num_blocks):
                block = pyro.sample(f"block_{m}", self.block_distribution(log_pred))
                blocks.append(block)
                log_pred = target.next_predictive(log_pred, block)
        return torch.stack(blocks, -2).reshape(n, target.length).long()

    def block_log_probs(self, x: Tensor) -> Tensor:
        """``log q(x_{B_m} | x_{P_m})`` of each block of given sequences, by replaying
        the guide with its sites conditioned on ``x``; shape ``(N, M)``."""
        target = self.target
        x = target._check_x(x)
        blocks = target.blocks(x).to(torch.float64)
        data = {f"block_{m}": blocks[:, m] for m in range(target.num_blocks)}
        trace = poutine.trace(poutine.condition(self, data=data)).get_trace(
            num_sequences=x.shape[0]
        )
        return site_log_probs(trace, target.num_blocks)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log q(x)`` of complete sequences, shape ``(N,)``."""
        return self.block_log_probs(x).sum(-1)

    def sample(self, num_sequences: int) -> tuple[Tensor, Tensor]:
        """Decode ``N`` sequences with the global torch generator.

        Returns
        -------
        x : Tensor, shape (N, T), long
        block_log_q : Tensor, shape (N, M)
            ``log q(x_{B_m} | x_{P_m})`` of each decoded block.
        """
        trace = poutine.trace(self).get_trace(num_sequences=num_sequences)
        return trace.nodes["_RETURN"]["value"], site_log_probs(
            trace, self.target.num_blocks
        )


def site_log_probs(trace: poutine.Trace, num_blocks: int) -> Tensor:
    """Per-block log-probabilities ``(N, M)`` of the ``block_m`` sites of a trace."""
    return torch.stack(
        [
            trace.nodes[f"block_{m}"]["fn"].log_prob(trace.nodes[f"block_{m}"]["value"])
            for m in range(num_blocks)
        ],
        -1,
    )


class IndependentBits(dist.TorchDistribution):
    """Independent bits with exact log-probabilities, also for rates 0 and 1.

    (Pyro's ``Bernoulli`` goes through logits, which turns a rate of 0 into about
    ``1e-16`` and so a factorized decoder's impossible configurations into
    possible ones.)

    Parameters
    ----------
    probs : Tensor, shape (*batch, B)
        Probability that each bit is 1; the event shape is ``(B,)``.
    """

    arg_constraints = {"probs": dist.constraints.unit_interval}
    support = dist.constraints.independent(dist.constraints.boolean, 1)

    def __init__(self, probs: Tensor, validate_args=None):
        self.probs = probs
        super().__init__(
            probs.shape[:-1], probs.shape[-1:], validate_args=validate_args
        )

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape) + self.event_shape
        return IndependentBits(self.probs.expand(shape))

    def sample(self, sample_shape=()):
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            return torch.bernoulli(self.probs.expand(shape))

    def log_prob(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.probs.dtype)
        terms = torch.xlogy(value, self.probs) + torch.xlogy(1 - value, 1 - self.probs)
        return terms.sum(-1)


class FactorizedBlockGuide(BlockGuide):
    """Mean-field blocks: ``q(x_B | x_P) = Π_{i∈B} p(x_i | x_P)`` (paper, Eq. 5).

    Examples
    --------
    >>> import pyro
    >>> from pmdm.models.block_hmm import BlockHMM
    >>> pyro.set_rng_seed(0)
    >>> guide = FactorizedBlockGuide(BlockHMM(block_size=4, length=8))
    >>> x, block_log_q = guide.sample(3)
    >>> tuple(x.shape), tuple(block_log_q.shape)
    ((3, 8), (3, 2))
    """

    name = "factorized"

    def block_distribution(self, log_pred: Tensor) -> dist.TorchDistribution:
        return IndependentBits(self.target.bit_marginals(log_pred))


class JointBlockGuide(BlockGuide):
    """Exact blocks: ``q(x_B | x_P) = p(x_B | x_P)``, a mixture over ``z_m``.

    Examples
    --------
    >>> import pyro, torch
    >>> from pmdm.models.block_hmm import BlockHMM
    >>> pyro.set_rng_seed(0)
    >>> hmm = BlockHMM(block_size=4, length=8)
    >>> x, block_log_q = JointBlockGuide(hmm).sample(5)
    >>> torch.allclose(block_log_q.sum(-1), hmm.log_prob(x))
    True
    """

    name = "joint"

    def block_distribution(self, log_pred: Tensor) -> dist.TorchDistribution:
        target = self.target
        components = BlockEmission(
            target.rho.expand(log_pred.shape), target.eta, target.block_size
        )
        return dist.MixtureSameFamily(dist.Categorical(logits=log_pred), components)


#: The canonical block guides by name.
BLOCK_GUIDES: dict[str, type[BlockGuide]] = {
    FactorizedBlockGuide.name: FactorizedBlockGuide,
    JointBlockGuide.name: JointBlockGuide,
}

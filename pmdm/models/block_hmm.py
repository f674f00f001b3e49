"""The Block-HMM of Zhang et al. (2026), arXiv 2602.00286, Sec. 6.1 and App. E.

A latent Markov chain ``Z_1..Z_M`` over ``K`` states picks, per block, the rate of
``B - 1`` i.i.d. Bernoulli content bits; the block's first position is a parity bit
equal to the XOR of the content bits, flipped with probability ``η``. Blocks are the
Pyro sample sites; the latent chain is enumerated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import networkx as nx
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.distributions.torch_distribution import TorchDistribution
from pyro.ops.indexing import Vindex
from torch import Tensor

from pmdm.models.base import Target
from pmdm.models.graph import new_graph, token_node
from pmdm.ops.hmm import hmm_cavity, hmm_filter
from pmdm.ops.logspace import kl_divergence, log_normalize
from pmdm.ops.validation import check_int, check_real


def _log1m(p: Tensor) -> Tensor:
    return torch.log1p(-p)


def _exclusive_prod(t: Tensor) -> Tensor:
    # Π_{i≠j} t_i along the last axis, by prefix and suffix products.
    ones = torch.ones_like(t[..., :1])
    prefix = torch.cat([ones, t[..., :-1]], -1).cumprod(-1)
    suffix = torch.cat([t[..., 1:], ones], -1).flip(-1).cumprod(-1).flip(-1)
    return prefix * suffix


class BlockEmission(TorchDistribution):
    """``p(x_B | z)`` of one Block-HMM block given its latent state.

    Parameters
    ----------
    rho : Tensor, shape (*batch,)
        Rate of each content bit.
    eta : float
        Probability that the parity bit is flipped.
    block_size : int
        ``B``; the event is a float 0/1 vector of shape ``(B,)``, parity first.

    Notes
    -----
    ``log p(x_B | z) = k log ρ + (B-1-k) log(1-ρ) + log(1-η)`` when the parity bit
    equals ``k mod 2`` (``k`` the number of ones among the content bits) and
    ``... + log η`` otherwise (paper, App. E).
    """

    arg_constraints = {"rho": constraints.unit_interval}
    support = constraints.independent(constraints.boolean, 1)

    def __init__(self, rho: Tensor, eta: float, block_size: int, validate_args=None):
        self.rho = torch.as_tensor(rho, dtype=torch.float64)
        self.eta = float(eta)
        self.block_size = int(block_size)
        super().__init__(
            self.rho.shape, torch.Size([self.block_size]), validate_args=validate_args
        )

    def expand(self, batch_shape, _instance=None):
        rho = self.rho.expand(torch.Size(batch_shape))
        return BlockEmission(rho, self.eta, self.block_size)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            rho = self.rho.expand(shape[:-1]).unsqueeze(-1)
            content = torch.bernoulli(rho.expand(shape[:-1] + (self.block_size - 1,)))
            flip = torch.bernoulli(
                torch.full(shape[:-1], self.eta, dtype=torch.float64)
            )
            parity = (content.sum(-1) + flip) % 2
            return torch.cat([parity.unsqueeze(-1), content], -1)

    def log_prob(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=torch.float64)
        ones = value[..., 1:].sum(-1)
        zeros = (self.block_size - 1) - ones
        content = torch.xlogy(ones, self.rho) + torch.xlogy(zeros, 1 - self.rho)
        match = value[..., 0] == ones % 2
        eta = torch.tensor(self.eta, dtype=torch.float64)
        parity = torch.where(match, _log1m(eta), eta.log())
        return content + parity


class BlockHMM(Target):
    """The Block-HMM target.

    Parameters
    ----------
    num_states : int
        ``K >= 1`` latent states.
    stay : float
        ``a``: probability of keeping the latent state from one block to the next;
        the other states share ``1 - a`` equally. Ignored when ``K = 1``.
    rho : sequence of float, length K
        Content-bit rate ``ρ_z`` of each state, in ``[0, 1]``.
    block_size : int
        ``B >= 1``: one parity bit and ``B - 1`` content bits.
    length : int
        ``T``, a positive multiple of ``B``.
    eta : float
        Parity noise ``η`` in ``[0, 1]``; ``η = 0`` is a hard parity constraint.

    Notes
    -----
    Token ``m·B`` is block ``m``'s parity bit, tokens ``m·B+1 .. m·B+B-1`` its
    content bits. The chain starts uniform: ``p(z_1) = 1/K``.

    References
    ----------
    Zhang, Yu, Brekelmans, Tang, Asif, Ver Steeg (2026), "Generation Order and
    Parallel Decoding in Masked Diffusion Models: An Information-Theoretic
    Perspective", arXiv 2602.00286, Sec. 6.1 and App. E.

    Examples
    --------
    >>> import torch
    >>> hmm = BlockHMM(num_states=2, stay=0.9, rho=(0.9, 0.1), block_size=4,
    ...                length=8, eta=0.0)
    >>> x = torch.tensor([[0, 1, 1, 0, 1, 1, 0, 0]])
    >>> wrong_parity = torch.tensor([[1, 1, 1, 0, 1, 1, 0, 0]])
    >>> bool(hmm.log_prob(x).isfinite()), bool(hmm.log_prob(wrong_parity).isinf())
    (True, True)
    """

    vocab_size = 2

    def __init__(
        self,
        num_states: int = 2,
        stay: float = 0.9,
        rho: Sequence[float] = (0.9, 0.1),
        block_size: int = 8,
        length: int = 64,
        eta: float = 1e-8,
    ):
        self.num_states = check_int("num_states", num_states, minimum=1)
        self.stay = check_real("stay", stay, low=0.0, high=1.0)
        self.block_size = check_int("block_size", block_size, minimum=1)
        self.length = check_int("length", length, minimum=1)
        self.eta = check_real("eta", eta, low=0.0, high=1.0)
        if self.length % self.block_size:
            raise ValueError(
                f"length={length!r}: expected a multiple of block_size={block_size!r}"
            )
        rho = torch.as_tensor(rho, dtype=torch.float64).reshape(-1)
        if rho.shape[0] != self.num_states:
            raise ValueError(
                f"rho={rho.tolist()!r}: expected {self.num_states} rates, one per "
                "latent state (num_states)"
            )
        if not torch.isfinite(rho).all() or (rho < 0).any() or (rho > 1).any():
            raise ValueError(f"rho={rho.tolist()!r}: expected every rate in [0, 1]")
        self.rho = rho
        self.num_blocks = self.length // self.block_size
        K = self.num_states
        self.log_init = torch.full((K,), -math.log(K), dtype=torch.float64)
        if K == 1:
            trans = torch.ones(1, 1, dtype=torch.float64)
        else:
            off = (1 - self.stay) / (K - 1)
            trans = torch.full((K, K), off, dtype=torch.float64)
            trans.fill_diagonal_(self.stay)
        self.log_trans = trans.log()

    def __repr__(self) -> str:
        return (
            f"BlockHMM(num_states={self.num_states}, stay={self.stay}, "
            f"rho={self.rho.tolist()}, block_size={self.block_size}, "
            f"length={self.length}, eta={self.eta})"
        )

    # -- block views ----------------------------------------------------------------

    def blocks(self, x: Tensor) -> Tensor:
        """View ``(*batch, T)`` tokens as ``(*batch, M, B)`` blocks."""
        return x.reshape(x.shape[:-1] + (self.num_blocks, self.block_size))

    def emission(self) -> BlockEmission:
        """``p(x_B | z)`` for every state: batch shape ``(K,)``."""
        return BlockEmission(self.rho, self.eta, self.block_size)

    def block_log_like(self, x: Tensor) -> Tensor:
        """``log p(x_{B_m} | z_m = k)`` of complete blocks, shape ``(*batch, M, K)``."""
        blocks = self.blocks(x).to(torch.float64).unsqueeze(-2)
        return self.emission().log_prob(blocks)

    def block_predictive(self, x: Tensor) -> Tensor:
        """``log p(z_m | x_{P_m})``, the latent law of block ``m`` given the blocks
        before it, shape ``(*batch, M, K)``."""
        like = self.block_log_like(x)
        return hmm_filter(self.log_init, self.log_trans, like).log_predictive

    def next_predictive(self, log_pred: Tensor, block: Tensor) -> Tensor:
        """One filtering step: from ``log p(z_m | x_P)`` and block ``m``'s values
        (float or long, shape ``(*batch, B)``) to ``log p(z_{m+1} | x_P, x_{B_m})``."""
        like = self.emission().log_prob(block.to(torch.float64).unsqueeze(-2))
        filtered = log_normalize(log_pred + like)
        return torch.logsumexp(filtered.unsqueeze(-1) + self.log_trans, dim=-2)

    def bit_marginals(self, log_pred: Tensor) -> Tensor:
        """``p(x_i = 1 | x_P)`` of each bit of a block given ``log p(z | x_P)``.

        Parameters
        ----------
        log_pred : Tensor, shape (*batch, K)

        Returns
        -------
        Tensor, shape (*batch, B)
            Parity bit first, then the content bits (all equal).

        Notes
        -----
        The XOR of ``n`` i.i.d. Bernoulli(ρ) bits is one with probability
        ``(1 - (1 - 2ρ)^n) / 2``; the flip turns ``s`` into ``η + (1 - 2η) s``.
        """
        w = log_pred.exp()
        content = (w * self.rho).sum(-1)
        odd = (1 - (1 - 2 * self.rho) ** (self.block_size - 1)) / 2
        parity = (w * (self.eta + (1 - 2 * self.eta) * odd)).sum(-1)
        content = content.unsqueeze(-1).expand(content.shape + (self.block_size - 1,))
        return torch.cat([parity.unsqueeze(-1), content], -1).clamp(0.0, 1.0)

    def block_log_conditionals(self, x: Tensor) -> Tensor:
        """``log p(x_{B_m} | x_{P_m})`` of every block of complete sequences,
        shape ``(*batch, M)``; their sum over ``m`` is ``log p(x)``."""
        x = self._check_x(x)
        like = self.block_log_like(x)
        log_pred = hmm_filter(self.log_init, self.log_trans, like).log_predictive
        return torch.logsumexp(log_pred + like, -1)

    # -- exact block measures -----------------------------------------------------

    def _classes(self) -> tuple[Tensor, Tensor, Tensor]:
        # Block configurations fall in 2B classes (k content ones, parity bit P);
        # p and the factorized q are constant inside a class.
        n = self.block_size - 1
        ones = torch.arange(n + 1, dtype=torch.float64).repeat_interleave(2)
        parity = torch.tensor([0.0, 1.0], dtype=torch.float64).repeat(n + 1)
        log_mult = (
            math.lgamma(n + 1) - torch.lgamma(ones + 1) - torch.lgamma(n - ones + 1)
        )
        return ones, parity, log_mult

    def block_class_log_probs(self, log_pred: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-configuration log-probabilities of each block class.

        Parameters
        ----------
        log_pred : Tensor, shape (*batch, K)
            ``log p(z | x_P)``.

        Returns
        -------
        log_p, log_q, log_mult : Tensor, shape (*batch, 2B)
            ``log p(x_B | x_P)`` and the factorized ``log Π_i p(x_i | x_P)`` of one
            configuration of each class (``k`` content ones, parity ``P``; class
            ``2k + P``), and the log number of configurations in the class.
        """
        ones, parity, log_mult = self._classes()
        n = self.block_size - 1
        values = torch.stack([parity, ones], -1)
        rho = self.rho.unsqueeze(-1)
        content = torch.xlogy(ones, rho) + torch.xlogy(n - ones, 1 - rho)
        eta = torch.tensor(self.eta, dtype=torch.float64)
        match = parity == ones % 2
        flip = torch.where(match, _log1m(eta), eta.log())
        log_like = content + flip  # (K, 2B)
        log_p = torch.logsumexp(log_pred.unsqueeze(-1) + log_like, -2)
        marg = self.bit_marginals(log_pred)
        mp = marg[..., :1]
        # Content-bit marginal (absent when B = 1; then it is raised to the power 0).
        mc = marg[..., 1:2] if self.block_size > 1 else torch.zeros_like(mp)
        log_q = (
            torch.xlogy(values[:, 0], mp)
            + torch.xlogy(1 - values[:, 0], 1 - mp)
            + torch.xlogy(values[:, 1], mc)
            + torch.xlogy(n - values[:, 1], 1 - mc)
        )
        return log_p, log_q, log_mult.expand(log_p.shape)

    def block_tc(self, log_pred: Tensor) -> tuple[Tensor, Tensor]:
        """Forward and reverse conditional total correlation of a block.

        ``TC→ = KL(p(x_B|x_P) ‖ Π_i p(x_i|x_P))`` and
        ``TC← = KL(Π_i p(x_i|x_P) ‖ p(x_B|x_P))`` (paper, Eq. 15 and 17), exact.

        Parameters
        ----------
        log_pred : Tensor, shape (*batch, K)

        Returns
        -------
        tc_forward, tc_reverse : Tensor, shape (*batch,)
            ``tc_reverse`` is ``+inf`` where the factorized block reaches a
            configuration of probability zero (Lemma C.1).
        """
        log_p, log_q, log_mult = self.block_class_log_probs(log_pred)
        fwd = kl_divergence(log_mult + log_p, log_mult + log_q)
        rev = kl_divergence(log_mult + log_q, log_mult + log_p)
        return fwd, rev

    def block_incoherence(self, log_pred: Tensor, tau: float) -> Tensor:
        """``Pr_{x_B ~ Π_i p(x_i|x_P)}[p(x_B | x_P) ≤ τ]``, exact, shape ``(*batch,)``."""
        log_p, log_q, log_mult = self.block_class_log_probs(log_pred)
        mass = (log_mult + log_q).exp()
        return (mass * (log_p <= math.log(tau)).to(mass.dtype)).sum(-1)

    # -- the Target contract -------------------------------------------------------

    def _content_factors(self, bits: Tensor, seen: Tensor) -> tuple[Tensor, Tensor]:
        # Each content bit acts on the running XOR as a·I + b·X (X swaps even and
        # odd); these commute, so in the basis (1, 1), (1, -1) a block is a product
        # of scalars: s = a + b and d = a - b per bit, shape (*, K, B - 1).
        # Revealed v: s = ρ^v (1-ρ)^(1-v), d = (1-v) - ρ; hidden: s = 1, d = 1 - 2ρ.
        v = bits[..., None, 1:].to(torch.float64)
        shown = seen[..., None, 1:]
        rho = self.rho.unsqueeze(-1)  # (K, 1)
        s = torch.where(shown, 1 - v - rho + 2 * v * rho, 1.0)
        d = torch.where(shown, 1 - v - rho, 1 - 2 * rho)
        return s, d

    def _parity_evidence(self, S: Tensor, D: Tensor, parity: Tensor, seen_p: Tensor):
        # p(content, parity | z) from the products S = Π s, D = Π d: the content's
        # XOR is even with mass (S + D)/2 and odd with (S - D)/2, and the parity
        # bit agrees with it with probability 1 - η.
        sign = (1 - 2 * parity.to(torch.float64)).unsqueeze(-1)
        agree = ((S + sign * D) / 2).clamp(min=0.0)
        disagree = ((S - sign * D) / 2).clamp(min=0.0)
        observed = agree * (1 - self.eta) + disagree * self.eta
        return torch.where(seen_p.unsqueeze(-1), observed, S)

    def _block_evidence(self, bits: Tensor, seen: Tensor) -> Tensor:
        # log p(x_{B ∩ S} | z = k) of blocks (*, B) -> (*, K), in closed form.
        s, d = self._content_factors(bits, seen)
        like = self._parity_evidence(s.prod(-1), d.prod(-1), bits[..., 0], seen[..., 0])
        return like.log()

    def _partial_block_log_like(self, x: Tensor, revealed: Tensor) -> Tensor:
        # log p(x_{B_m ∩ S} | z_m = k), shape (*batch, M, K).
        return self._block_evidence(self.blocks(x), self.blocks(revealed))

    def log_evidence(self, x: Tensor, revealed: Tensor) -> Tensor:
        revealed = torch.as_tensor(revealed, dtype=torch.bool).expand(x.shape)
        like = self._partial_block_log_like(x, revealed)
        return hmm_filter(self.log_init, self.log_trans, like).log_evidence

    def conditionals(self, x: Tensor, revealed: Tensor) -> Tensor:
        x = self._check_x(x)
        revealed = torch.as_tensor(revealed, dtype=torch.bool).expand(x.shape)
        like = self._partial_block_log_like(x, revealed)
        filt = hmm_filter(self.log_init, self.log_trans, like)
        cavity = hmm_cavity(self.log_init, self.log_trans, like, filt)  # (*b, M, K)
        V = self.vocab_size
        xb, rb = self.blocks(x), self.blocks(revealed)
        s, d = self._content_factors(xb, rb)  # (*batch, M, K, B - 1)
        # Content bit j set to v: replace its factor in the products, using the
        # products of the other bits (no division, so zero factors are exact).
        rho = self.rho.view(-1, 1, 1)  # (K, 1, 1)
        values = torch.tensor([0.0, 1.0], dtype=torch.float64)
        s_v = torch.where(values == 1, rho, 1 - rho)  # (K, 1, V)
        d_v = torch.where(values == 1, -rho, 1 - rho)
        S_j = _exclusive_prod(s).unsqueeze(-1) * s_v  # (*batch, M, K, B - 1, V)
        D_j = _exclusive_prod(d).unsqueeze(-1) * d_v
        parity, seen_p = xb[..., 0, None, None], rb[..., 0, None, None]
        content = self._parity_evidence(
            S_j.movedim(-3, -1), D_j.movedim(-3, -1), parity, seen_p
        )  # (*batch, M, B - 1, V, K)
        # The parity bit set to v: (*batch, M, 1, V, K).
        S, D = s.prod(-1).unsqueeze(-2), d.prod(-1).unsqueeze(-2)  # (*batch, M, 1, K)
        parity_v = self._parity_evidence(S, D, values, torch.ones(V, dtype=torch.bool))
        like_jv = torch.cat([parity_v.unsqueeze(-3), content], -3)
        # Σ_k p(z_m = k | x_{S∖B_m}) p(x_{B_m ∩ S}, x_j = v | k), in linear space
        # (the cavity is normalized): (*batch, M, B, V).
        log_w = torch.einsum("...mk,...mbvk->...mbv", cavity.exp(), like_jv).log()
        out = log_normalize(log_w).reshape(x.shape + (V,))
        # Given an impossible context every row is uniform (the Target contract).
        impossible = torch.isneginf(filt.log_evidence)[..., None, None]
        out = torch.where(impossible, torch.full_like(out, -math.log(V)), out)
        one_hot = torch.nn.functional.one_hot(x, V).to(torch.bool)
        fixed = torch.where(one_hot, 0.0, -torch.inf).to(out.dtype)
        return torch.where(revealed.unsqueeze(-1), fixed, out)

    def sites(self, x: Tensor) -> dict[str, Tensor]:
        """``{"block_m": x_{B_m}}``: each block as a float 0/1 tensor of shape (N, B).

        Examples
        --------
        >>> import torch
        >>> hmm = BlockHMM(block_size=2, length=4)
        >>> hmm.sites(torch.tensor([[1, 1, 0, 0]]))["block_1"]
        tensor([[0., 0.]], dtype=torch.float64)
        """
        blocks = self.blocks(self._check_x(x)).to(torch.float64)
        return {f"block_{m}": blocks[..., m, :] for m in range(self.num_blocks)}

    def dependency_graph(self) -> nx.DiGraph:
        """The chain ``z_{m-1} → z_m``, edges from ``z_m`` to every bit of block
        ``m``, and from every content bit to the parity bit of its block.

        The parity bit is a noisy function of the content bits, so it is a collider:
        revealing it couples the block's content bits. Under a hard constraint
        (``η`` in ``{0, 1}``) each bit is also ``determined_by`` the block's other
        bits (see :mod:`pmdm.models.graph`). The edge ``z_m →`` parity is kept
        although the parity depends on ``z_m`` only through the content bits: an
        extra edge asserts less independence, never more.
        """
        graph = new_graph(self.length)
        B = self.block_size
        hard = self.eta in (0.0, 1.0)
        for m in range(self.num_blocks):
            graph.add_node(("z", m), kind="latent")
            if m:
                graph.add_edge(("z", m - 1), ("z", m))
            bits = [token_node(m * B + j) for j in range(B)]
            graph.add_edges_from((("z", m), bit) for bit in bits)
            graph.add_edges_from((bit, bits[0]) for bit in bits[1:])
            if hard:
                for bit in bits:
                    graph.nodes[bit]["determined_by"] = [frozenset(bits) - {bit}]
        return graph

    def sample(self, num_sequences: int) -> Tensor:
        num_sequences = check_int("num_sequences", num_sequences, minimum=0)
        trace = pyro.poutine.trace(self.model).get_trace(num_sequences=num_sequences)
        blocks = [trace.nodes[f"block_{m}"]["value"] for m in range(self.num_blocks)]
        return torch.stack(blocks, -2).reshape(num_sequences, self.length).long()

    def model(self, data: Tensor | None = None, num_sequences: int | None = None):
        """Pyro model: sites ``z_m`` (enumerated latents) and ``block_m`` (tokens).

        Parameters
        ----------
        data : Tensor, shape (N, T), optional
            Observed sequences; when given, every ``block_m`` site is observed.
        num_sequences : int, optional
            ``N`` when ``data`` is not given.

        Returns
        -------
        Tensor, shape (N, T), long
        """
        if data is not None:
            data = self._check_x(data)
            n = data.shape[0]
            observed = self.blocks(data).to(torch.float64)
        else:
            n = check_int("num_sequences", num_sequences, minimum=0)
            observed = None
        init = dist.Categorical(logits=self.log_init)
        blocks, z = [], None
        with pyro.plate("sequences", n, dim=-1):
            for m in pyro.markov(range(self.num_blocks)):
                logits = self.log_init if z is None else Vindex(self.log_trans)[z]
                z = pyro.sample(
                    f"z_{m}",
                    init if z is None else dist.Categorical(logits=logits),
                    infer={"enumerate": "parallel"},
                )
                obs = None if observed is None else observed[:, m]
                block = pyro.sample(
                    f"block_{m}",
                    BlockEmission(self.rho[z], self.eta, self.block_size),
                    obs=obs,
                )
                blocks.append(block)
        if data is not None:
            return data
        return torch.stack(blocks, -2).reshape(n, self.length).long()

"""A token-level hidden Markov model: one latent state and one token per position."""

from __future__ import annotations

import math

import networkx as nx
import pyro
import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex
from torch import Tensor

from pmdm.models.base import Target
from pmdm.models.graph import hidden_chain_graph
from pmdm.ops.hmm import hmm_cavity, hmm_filter
from pmdm.ops.logspace import log_normalize, sample_categorical
from pmdm.ops.validation import check_int, check_probs, check_real, check_shape


class TokenHMM(Target):
    """An HMM whose every latent state ``z_t`` emits one visible token ``x_t``.

    Parameters
    ----------
    init : Tensor, shape (K,)
        ``p(z_1 = k)``. Every table is checked (rows summing to one within
        :data:`pmdm.ops.validation.PROBS_ATOL`) and renormalized in float64.
    trans : Tensor, shape (K, K)
        ``p(z_{t+1} = k | z_t = j)``, rows the previous state ``j``.
    emit : Tensor, shape (K, V)
        ``p(x_t = v | z_t = k)``, rows the state.
    length : int
        ``T >= 1``.

    Notes
    -----
    ``p(x) = Σ_z p(z_1) Π_t p(z_{t+1} | z_t) Π_t p(x_t | z_t)``. Zeros are allowed in
    every table; an impossible sequence has log-probability ``-inf``. With identity
    emissions (``K = V``, ``emit = I``) the tokens form a visible Markov chain.
    Marginals and conditionals come from forward filtering and the cavity
    distributions of :mod:`pmdm.ops.hmm` with hidden positions emitting nothing.

    References
    ----------
    Rabiner (1989), "A tutorial on hidden Markov models", Proc. IEEE 77(2), Eq. 19-25.

    Examples
    --------
    >>> import torch
    >>> chain = TokenHMM(torch.tensor([0.5, 0.5]), torch.tensor([[0.9, 0.1],
    ...                  [0.2, 0.8]]), torch.eye(2), length=3)
    >>> round(chain.log_prob(torch.tensor([0, 0, 1])).exp().item(), 6)
    0.045
    """

    def __init__(self, init: Tensor, trans: Tensor, emit: Tensor, length: int):
        # Validated, then renormalized so that rows sum to one in float64.
        init, trans, emit = (
            probs / probs.sum(-1, keepdim=True)
            for probs in (
                check_probs("init", init),
                check_probs("trans", trans),
                check_probs("emit", emit),
            )
        )
        if init.dim() != 1:
            raise ValueError(f"init: expected shape (K,), actual {tuple(init.shape)}")
        K = init.shape[0]
        check_shape("trans", trans, (K, K))
        if emit.dim() != 2 or emit.shape[0] != K:
            raise ValueError(
                f"emit: expected shape ({K}, V), one row per latent state of init, "
                f"actual {tuple(emit.shape)}"
            )
        self.length = check_int("length", length, minimum=1)
        self.num_states = K
        self.vocab_size = emit.shape[1]
        self.init, self.trans, self.emit = init, trans, emit
        self.log_init, self.log_trans, self.log_emit = (
            init.log(),
            trans.log(),
            emit.log(),
        )

    @classmethod
    def sticky(
        cls,
        length: int,
        num_states: int = 3,
        vocab_size: int = 3,
        stay: float = 0.8,
        emit_peak: float = 0.85,
    ) -> TokenHMM:
        """A token HMM with sticky states and peaked emissions.

        Uniform start, ``stay`` on the diagonal of the transitions (the rest spread
        evenly), and state ``k`` emitting token ``k mod V`` with probability
        ``emit_peak`` (the rest spread evenly): a target with real dependence that
        the order and assumption studies use.

        Examples
        --------
        >>> hmm = TokenHMM.sticky(length=4)
        >>> hmm.num_states, hmm.vocab_size, round(float(hmm.trans[0, 0]), 2)
        (3, 3, 0.8)
        """
        K = check_int("num_states", num_states, minimum=1)
        V = check_int("vocab_size", vocab_size, minimum=2)
        stay = check_real("stay", stay, low=0.0, high=1.0)
        peak = check_real("emit_peak", emit_peak, low=0.0, high=1.0)
        off = (1 - stay) / (K - 1) if K > 1 else 0.0
        trans = torch.full((K, K), off, dtype=torch.float64)
        trans.fill_diagonal_(stay if K > 1 else 1.0)
        emit = torch.full((K, V), (1 - peak) / (V - 1), dtype=torch.float64)
        emit[torch.arange(K), torch.arange(K) % V] = peak
        init = torch.full((K,), 1 / K, dtype=torch.float64)
        return cls(init, trans, emit, length)

    def __repr__(self) -> str:
        return (
            f"TokenHMM(num_states={self.num_states}, vocab_size={self.vocab_size}, "
            f"length={self.length})"
        )

    # -- the Target contract -------------------------------------------------------

    def _log_like(self, x: Tensor, revealed: Tensor) -> Tensor:
        # log p(x_t | z_t = k) at revealed positions, 0 at hidden ones: (*batch, T, K).
        ids = torch.where(revealed, x, torch.zeros_like(x))
        like = self.log_emit.T[ids]
        return torch.where(revealed.unsqueeze(-1), like, torch.zeros_like(like))

    def log_evidence(self, x: Tensor, revealed: Tensor) -> Tensor:
        revealed = torch.as_tensor(revealed, dtype=torch.bool).expand(x.shape)
        like = self._log_like(x, revealed)
        return hmm_filter(self.log_init, self.log_trans, like).log_evidence

    def conditionals(self, x: Tensor, revealed: Tensor) -> Tensor:
        x = self._check_x(x)
        revealed = torch.as_tensor(revealed, dtype=torch.bool).expand(x.shape)
        like = self._log_like(x, revealed)
        cavity = hmm_cavity(self.log_init, self.log_trans, like)  # (*batch, T, K)
        # log Σ_k p(z_t = k | x_{S∖t}) p(x_t = v | z_t = k): (*batch, T, K, V) -> (*batch, T, V).
        log_w = torch.logsumexp(cavity.unsqueeze(-1) + self.log_emit, -2)
        out = log_normalize(log_w)
        V = self.vocab_size
        evidence = hmm_filter(self.log_init, self.log_trans, like).log_evidence
        impossible = torch.isneginf(evidence)[..., None, None]
        out = torch.where(impossible, torch.full_like(out, -math.log(V)), out)
        one_hot = torch.nn.functional.one_hot(x, V).to(torch.bool)
        fixed = torch.where(one_hot, 0.0, -torch.inf).to(out.dtype)
        return torch.where(revealed.unsqueeze(-1), fixed, out)

    def sample(self, num_sequences: int) -> Tensor:
        num_sequences = check_int("num_sequences", num_sequences, minimum=0)
        tokens = []
        z = sample_categorical(self.log_init.expand(num_sequences, -1))
        for t in range(self.length):
            if t:
                z = sample_categorical(self.log_trans[z])
            tokens.append(sample_categorical(self.log_emit[z]))
        return torch.stack(tokens, -1).reshape(num_sequences, self.length)

    def model(self, data: Tensor | None = None, num_sequences: int | None = None):
        """Pyro model: sites ``z_t`` (enumerated latents) and ``x_t`` (tokens).

        Parameters
        ----------
        data : Tensor, shape (N, T), optional
            Observed sequences; when given, every ``x_t`` site is observed.
        num_sequences : int, optional
            ``N`` when ``data`` is not given.

        Returns
        -------
        Tensor, shape (N, T), long
        """
        if data is not None:
            data = self._check_x(data)
            n = data.shape[0]
        else:
            n = check_int("num_sequences", num_sequences, minimum=0)
        tokens, z = [], None
        with pyro.plate("sequences", n, dim=-1):
            for t in pyro.markov(range(self.length)):
                logits = self.log_init if z is None else Vindex(self.log_trans)[z]
                z = pyro.sample(
                    f"z_{t}",
                    dist.Categorical(logits=logits),
                    infer={"enumerate": "parallel"},
                )
                token = pyro.sample(
                    f"x_{t}",
                    dist.Categorical(logits=Vindex(self.log_emit)[z]),
                    obs=None if data is None else data[:, t],
                )
                tokens.append(token)
        if data is not None:
            return data
        return torch.stack(tokens, -1).reshape(n, self.length)

    def sites(self, x: Tensor) -> dict[str, Tensor]:
        """``{"x_t": x[:, t]}``: one long tensor of shape (N,) per position.

        Examples
        --------
        >>> import torch
        >>> chain = TokenHMM(torch.ones(2) / 2, torch.eye(2), torch.eye(2), length=2)
        >>> chain.sites(torch.tensor([[0, 1], [1, 1]]))
        {'x_0': tensor([0, 1]), 'x_1': tensor([1, 1])}
        """
        x = self._check_x(x)
        return {f"x_{t}": x[..., t] for t in range(self.length)}

    def dependency_graph(self) -> nx.DiGraph:
        """``z_{t-1} → z_t`` and ``z_t → x_t``.

        When every token can be emitted by at most one state (identity emissions,
        for instance), ``z_t`` is a function of ``x_t``: the graph records it
        (``determined_by``), so that a revealed token separates the chain.
        """
        state_from_token = bool(((self.emit > 0).sum(0) <= 1).all())
        return hidden_chain_graph(self.length, state_from_token=state_from_token)

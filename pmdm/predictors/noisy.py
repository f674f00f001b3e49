"""Model-error injection: a deterministic, context-dependent perturbation of any
predictor, with one parameter for the error level."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from pmdm.ops.logspace import kl_divergence, log_normalize
from pmdm.ops.validation import check_int, check_real
from pmdm.predictors.base import Predictor, check_masked_tokens

#: Default rank of the random context-to-noise map.
NOISE_RANK = 16

SUPPORTS = ("keep", "full")


class LocalKL(NamedTuple):
    """Realized mean local error over a set of contexts.

    Attributes
    ----------
    mean : float
        Mean over contexts of the per-context mean of
        ``KL(p_θ(x_i | h) ‖ p(x_i | h))`` over its masked positions ``i``; may be
        ``inf``.
    stderr : float
        Standard error of ``mean`` over contexts (``s / sqrt(n)``); 0 when
        ``mean`` is infinite, NaN with a single context.
    num_contexts : int
        Contexts with at least one masked position (the others are skipped).
    """

    mean: float
    stderr: float
    num_contexts: int


class NoisyPredictor:
    """A predictor with a fixed, context-dependent error of adjustable size.

    Parameters
    ----------
    base : Predictor
        The predictor to perturb (typically an
        :class:`~pmdm.predictors.oracle.OraclePredictor`).
    level : float
        Error level ``λ >= 0``; ``λ = 0`` returns the base prediction exactly.
    seed : int
        Seed of the fixed random tensors that define the perturbation.
    support : {"keep", "full"}
        ``"keep"``: tokens the base gives probability zero keep probability zero,
        so the local KL to the base is finite. ``"full"``: the base is first mixed
        with the uniform distribution with weight ``λ / (1 + λ)``, so every token
        gets mass, as a trained model's softmax does; the local KL to the base is
        then ``+inf`` wherever the base has a zero.
    rank : int
        Rank ``R`` of the random map from contexts to perturbations.

    Attributes
    ----------
    vocab_size, mask_id
        Those of ``base``.
    nfe : int
        Calls of this predictor (each also makes one call of ``base``).

    Notes
    -----
    For a context row ``h`` (the whole input, masks included) and position ``i``,

    ``log p_θ(v | h) = log_normalize_v(log p̃(v | h) + λ · ξ_i(v; h))``,

    ``ξ_i(v; h) = Σ_j W[i, v, j, h_j]``, ``W[i, v, j, u] = Σ_r C[v, r] U[i, j, r]
    E[u, r] / sqrt(R T)``,

    with ``U``, ``E``, ``C`` standard normal tensors drawn once from ``seed``
    (``U`` for each length ``T``), and ``p̃`` the base (``"keep"``) or its mixture
    with the uniform (``"full"``). ``W`` is the brief's random tensor in low-rank
    form, so the memory is ``O(T² R + V R)`` and a real vocabulary fits; each
    ``ξ_i(v; h)`` has variance 1. The prediction is a fixed function of the input
    row: the same row gives the same log-probabilities in any batch (up to
    floating-point rounding of the batched sum), and a change of any token of the
    context changes it. The local error ``ε(h) = KL(p_θ(· | h) ‖ p(· | h))`` of
    Zhang et al. (2026), arXiv 2602.00286, Eq. 6 grows with ``λ`` (about
    ``λ² Var_p(ξ) / 2`` for small ``λ``).

    References
    ----------
    Zhang, Yu, Brekelmans, Tang, Asif, Ver Steeg (2026), arXiv 2602.00286, Lemma
    4.1 (Eq. 6-7): the rollout error is the sum of local errors along the model's
    own rollout.

    Examples
    --------
    >>> import torch
    >>> from pmdm.models.table import TableTarget
    >>> from pmdm.predictors.oracle import OraclePredictor
    >>> table = TableTarget(2, torch.tensor([[0, 1], [1, 1]]), torch.ones(2) / 2)
    >>> noisy = NoisyPredictor(OraclePredictor(table), level=0.5)
    >>> tokens = torch.tensor([[2, 2]])
    >>> bool(noisy.local_kl(tokens)[0, 0] > 0), noisy(tokens).exp()[0, 1]
    (True, tensor([0., 1.], dtype=torch.float64))
    """

    def __init__(
        self,
        base: Predictor,
        level: float,
        seed: int = 0,
        *,
        support: str = "keep",
        rank: int = NOISE_RANK,
    ):
        if not isinstance(base, Predictor):
            raise TypeError(
                f"base={base!r}: expected a Predictor (vocab_size, mask_id, __call__)"
            )
        self.base = base
        self.level = check_real("level", level, low=0.0, high=math.inf, high_open=True)
        self.seed = check_int("seed", seed, minimum=0)
        if support not in SUPPORTS:
            raise ValueError(f"support={support!r}: expected one of {SUPPORTS!r}")
        self.support = support
        self.rank = check_int("rank", rank, minimum=1)
        self.vocab_size = base.vocab_size
        self.mask_id = base.mask_id
        self.length = getattr(base, "length", None)
        self.nfe = 0
        self._positional: dict[int, Tensor] = {}
        gen = torch.Generator().manual_seed(self.seed)
        num_ids = max(self.vocab_size, self.mask_id + 1)
        self._embed = torch.randn(
            num_ids, self.rank, generator=gen, dtype=torch.float64
        )
        self._out = torch.randn(
            self.vocab_size, self.rank, generator=gen, dtype=torch.float64
        )

    def __repr__(self) -> str:
        return (
            f"NoisyPredictor({self.base!r}, level={self.level}, seed={self.seed}, "
            f"support={self.support!r})"
        )

    def _mixing(self, length: int) -> Tensor:
        # U of shape (T, T, R), drawn from (seed, T) alone so that it does not
        # depend on which lengths were seen before.
        if length not in self._positional:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + length)
            self._positional[length] = torch.randn(
                length, length, self.rank, generator=gen, dtype=torch.float64
            )
        return self._positional[length]

    def noise(self, tokens: Tensor) -> Tensor:
        """The perturbation ``ξ_i(v; h)`` of every row, shape ``(*batch, T, V)``."""
        tokens = self._check(tokens)
        T = tokens.shape[-1]
        embedded = self._embed[tokens]  # (*batch, T, R)
        # h[..., i, r] = Σ_j U[i, j, r] E[h_j, r]: (*batch, T, R).
        hidden = torch.einsum("ijr,...jr->...ir", self._mixing(T), embedded)
        return hidden @ self._out.T / math.sqrt(self.rank * T)

    def _check(self, tokens: Tensor) -> Tensor:
        return check_masked_tokens(
            "tokens",
            tokens,
            vocab_size=self.vocab_size,
            mask_id=self.mask_id,
            length=self.length,
        )

    def _perturb(self, tokens: Tensor, log_base: Tensor) -> Tensor:
        log_base = log_base.to(torch.float64)
        if self.level == 0:
            return log_base
        if self.support == "full":
            # Mix with the uniform over real tokens (never the mask id).
            allowed = torch.ones(self.vocab_size, dtype=torch.bool)
            if 0 <= self.mask_id < self.vocab_size:
                allowed[self.mask_id] = False
            log_uniform = torch.where(allowed, -math.log(int(allowed.sum())), -math.inf)
            weight = self.level / (1 + self.level)
            log_base = torch.logaddexp(
                math.log1p(-weight) + log_base, math.log(weight) + log_uniform
            )
        return log_normalize(log_base + self.level * self.noise(tokens))

    def __call__(self, tokens: Tensor) -> Tensor:
        """``log p_θ(x_i = v | x_S)``, shape ``(*batch, T, V)``, float64.

        Raises
        ------
        TypeError, ValueError
            If ``tokens`` is not an integer tensor with ids in ``[0, V)`` or the
            mask id (and of the base's length, when it has one).
        """
        tokens = self._check(tokens)
        log_base = self.base(tokens)
        self.nfe += 1
        return self._perturb(tokens, log_base)

    def local_kl(self, tokens: Tensor) -> Tensor:
        """``KL(p_θ(· | h) ‖ p(· | h))`` at each masked position, the base as ``p``.

        Parameters
        ----------
        tokens : Tensor, shape (*batch, T), long
            Contexts ``h``.

        Returns
        -------
        Tensor, shape (*batch, T), float64
            Nats; 0 at revealed positions; ``+inf`` where ``support="full"`` lifts
            a zero of the base. One call of the base, none of this predictor.
        """
        tokens = self._check(tokens)
        log_base = self.base(tokens).to(torch.float64)
        log_noisy = self._perturb(tokens, log_base)
        kl = kl_divergence(log_noisy, log_base)
        return torch.where(tokens == self.mask_id, kl, torch.zeros_like(kl))

    def mean_local_kl(self, contexts: Tensor) -> LocalKL:
        """The realized mean local error over contexts, with its standard error.

        Parameters
        ----------
        contexts : Tensor, shape (N, T), long
            Contexts (masked ids where nothing is revealed yet), e.g. the states a
            decoder visited or random maskings of target samples. Each row is one
            unit of the standard error, so the rows should be i.i.d.

        Returns
        -------
        LocalKL

        Raises
        ------
        ValueError
            If no row has a masked position.
        """
        contexts = self._check(contexts)
        contexts = contexts.reshape(-1, contexts.shape[-1])
        masked = contexts == self.mask_id
        counts = masked.sum(-1)
        if not (counts > 0).any():
            raise ValueError(
                "contexts: expected at least one row with a masked position, actual "
                "none"
            )
        kl = self.local_kl(contexts)
        keep = counts > 0
        per_row = kl[keep].sum(-1) / counts[keep]
        n = int(per_row.numel())
        mean = float(per_row.mean())
        if not math.isfinite(mean):
            return LocalKL(mean, 0.0, n)
        stderr = float(per_row.std() / math.sqrt(n)) if n > 1 else math.nan
        return LocalKL(mean, stderr, n)

"""One-token-per-step rollouts of a model, exactly: step errors, entropies, Eq. 11.

A model ``p_θ`` decoded one token per step in an order ``π`` (a fixed permutation,
or any order policy that is a fixed function of the revealed tokens) has the
output law ``p_θ^π(x) = Π_t p_θ(x_{π(t)} | x_{π(<t)})``. :func:`rollout_profile`
enumerates its prefixes and returns, per step ``t = 1..T``:

* the expected local error ``ē_t = E_{h∼p_θ^π}[KL(p_θ(·|h) ‖ p(·|h))]`` at the
  position ``π(t)`` (Zhang et al. 2026, Eq. 6-7);
* the expected conditional entropy of the target ``H_t``, under one of two
  prefix laws (:data:`ENTROPY_LAWS`):

  - ``"rollout"``: ``H_t = E_{h∼p_θ^π}[H(p(X_{π(t)} | h))]``, the target's
    uncertainty at the prefixes the model's own rollout reaches, the law under
    which ``ē_t`` is averaged;
  - ``"target"``: ``H_t = E_{h∼p}[H(p(X_{π(t)} | h))] = H_p(X_{π(t)} | X_{π(<t)})``,
    the ordinary conditional entropy, with ``Σ_t H_t = H(p)`` for every order.

  At zero model error the two coincide.

Assumption 4.2 bounds ``ē_t`` by ``α H_t + λ S_{t−1} + b`` with
``S_{t−1} = Σ_{k<t} ē_k``. The recursion ``S_t ≤ (1+λ) S_{t−1} + α H_t + b``
unrolls to :func:`eq11_bound` with ``form="recursion"``,

``J(π) = S_T ≤ Σ_t (1+λ)^{T−t} (α H_t + b)``,

whose ``b``-term is ``b Σ_{s<T} (1+λ)^s ≥ T b``, so the printed ``+ T b``
(``form="printed"``) is valid only when ``λ = 0`` or ``b = 0``; the printed
intermediate weights ``α Σ_{s=0}^{T−t} λ^s`` (``form="intermediate"``) are below
``α (1+λ)^{T−t}`` from ``T − t = 2`` on. The statements ``eq-11``,
``eq-11-printed`` and ``eq-11-intermediate-sum`` of :mod:`pmdm.theory` test the
three forms.

References
----------
Zhang, Yu, Brekelmans, Tang, Asif, Ver Steeg (2026), "Generation Order and Parallel
Decoding in Masked Diffusion Models: An Information-Theoretic Perspective", arXiv
2602.00286, Lemma 4.1 (Eq. 6-7), Assumption 4.2 (Eq. 10), Eq. 11.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pmdm.decoding.orders import make_order, rank
from pmdm.ops.logspace import entropy, kl_divergence
from pmdm.ops.validation import check_int, check_real

#: Prefix laws under which :class:`RolloutProfile` averages the entropies.
ENTROPY_LAWS = ("rollout", "target")

#: Forms of the bound of Eq. 11 (see :func:`eq11_bound`).
BOUND_FORMS = ("recursion", "printed", "intermediate")

#: Most columns :func:`nonnegative_least_squares` solves by enumerating supports.
MAX_NNLS_COLUMNS = 10


@dataclass(frozen=True)
class RolloutProfile:
    """Per-step expectations along a one-token-per-step rollout.

    Attributes
    ----------
    errors : Tensor, shape (T,)
        ``ē_t``, nats; ``+inf`` where the model gives mass to a token that the
        target rules out.
    entropies : Tensor, shape (T,)
        ``H_t`` under the rollout's prefix law.
    target_entropies : Tensor, shape (T,)
        ``H_t`` under the target's prefix law (positions still chosen by the
        model's order policy).
    model_entropies : Tensor, shape (T,)
        ``E_{h∼p_θ^π}[H(p_θ(X_{π(t)} | h))]``, what an Easy-First order sees.
    """

    errors: Tensor
    entropies: Tensor
    target_entropies: Tensor
    model_entropies: Tensor

    @property
    def length(self) -> int:
        """``T``."""
        return self.errors.shape[-1]

    @property
    def kl(self) -> float:
        """``Σ_t ē_t``, the right side of Lemma 4.1 (``= KL(p_θ^π ‖ p)``)."""
        return float(self.errors.sum())

    def previous(self) -> Tensor:
        """``S_{t−1} = Σ_{k<t} ē_k`` for ``t = 1..T``, shape ``(T,)``."""
        return torch.cat([self.errors.new_zeros(1), self.errors.cumsum(0)[:-1]])

    def entropy(self, law: str) -> Tensor:
        """``H_t`` under ``law``, one of :data:`ENTROPY_LAWS`."""
        if law not in ENTROPY_LAWS:
            raise ValueError(f"law={law!r}: expected one of {ENTROPY_LAWS}")
        return self.entropies if law == "rollout" else self.target_entropies


def _weighted_sum(log_w: Tensor, values: Tensor) -> Tensor:
    # Σ w·v with 0·inf = 0.
    w = log_w.exp()
    return torch.where(w > 0, w * values, torch.zeros_like(values)).sum()


def rollout_profile(model, reference, length: int, order="l2r") -> RolloutProfile:
    """Enumerate a one-token-per-step rollout of ``model`` against ``reference``.

    Parameters
    ----------
    model : Predictor
        ``p_θ``, the predictor that is decoded (and that the order policy sees).
    reference : Predictor
        ``p``: the target's oracle, with the same ``vocab_size`` and ``mask_id``.
    length : int
        ``T``.
    order : str, sequence of int or OrderPolicy
        Anything :class:`~pmdm.decoding.decoder.Decoder` accepts, provided it is a
        fixed function of the revealed tokens (``deterministic``). The position of
        step ``t`` is the top-ranked masked position under ``model``'s predictions,
        ties to the lowest position, as in the decoder with ``FixedSize(1)``.

    Returns
    -------
    RolloutProfile

    Raises
    ------
    ValueError
        If the predictors disagree on ``vocab_size``/``mask_id``, or the order is
        random or chooses whole sets.

    Notes
    -----
    Breadth-first over prefixes: a prefix ``h`` carries its probability under the
    rollout (products of ``p_θ``) and under the target (products of ``p``); every
    value of the next position branches. Prefixes of probability zero under both
    laws are dropped, so at most ``V^t`` prefixes are kept at step ``t``.

    Examples
    --------
    >>> import torch
    >>> from pmdm.models.table import TableTarget
    >>> from pmdm.predictors.oracle import OraclePredictor
    >>> oracle = OraclePredictor(TableTarget.from_dense(torch.tensor([[0.5, 0.0],
    ...                                                               [0.0, 0.5]])))
    >>> profile = rollout_profile(oracle, oracle, 2)
    >>> profile.errors.tolist(), [round(h, 6) for h in profile.entropies.tolist()]
    ([0.0, 0.0], [0.693147, 0.0])
    """
    T = check_int("length", length, minimum=1)
    if (model.vocab_size, model.mask_id) != (reference.vocab_size, reference.mask_id):
        raise ValueError(
            f"reference: expected vocab_size={model.vocab_size} and mask_id="
            f"{model.mask_id} as the model, actual {reference.vocab_size} and "
            f"{reference.mask_id}"
        )
    policy = make_order(order)
    if not policy.deterministic or getattr(policy, "chooses_set", False):
        raise ValueError(
            f"order={policy!r}: expected an order that is a fixed function of the "
            "revealed tokens and reveals one position per step"
        )
    V, mask_id = model.vocab_size, model.mask_id
    state = torch.full((1, T), mask_id, dtype=torch.long)
    log_rollout = torch.zeros(1, dtype=torch.float64)
    log_target = torch.zeros(1, dtype=torch.float64)
    out = {k: torch.zeros(T, dtype=torch.float64) for k in ("e", "h", "hp", "hm")}
    for t in range(T):
        n = state.shape[0]
        rows = torch.arange(n)
        log_model = model(state).to(torch.float64)
        log_ref = reference(state).to(torch.float64)
        # The step's position: top-ranked masked position under the model.
        position = rank(policy.scores(log_model), state == mask_id)[:, 0]
        here_model, here_ref = log_model[rows, position], log_ref[rows, position]
        h_ref = entropy(here_ref)
        out["e"][t] = _weighted_sum(log_rollout, kl_divergence(here_model, here_ref))
        out["h"][t] = _weighted_sum(log_rollout, h_ref)
        out["hp"][t] = _weighted_sum(log_target, h_ref)
        out["hm"][t] = _weighted_sum(log_rollout, entropy(here_model))
        # Children: every value of the position; (n, V) -> (n·V,).
        state = state.repeat_interleave(V, 0)
        values = torch.arange(V).repeat(n)
        state[torch.arange(n * V), position.repeat_interleave(V)] = values
        log_rollout = (log_rollout.unsqueeze(-1) + here_model).reshape(-1)
        log_target = (log_target.unsqueeze(-1) + here_ref).reshape(-1)
        keep = torch.isfinite(log_rollout) | torch.isfinite(log_target)
        state, log_rollout, log_target = (
            state[keep],
            log_rollout[keep],
            log_target[keep],
        )
    return RolloutProfile(out["e"], out["h"], out["hp"], out["hm"])


# -- Assumption 4.2 and Eq. 11 ---------------------------------------------------------


def _as_steps(errors, entropies, previous=None) -> tuple[Tensor, Tensor, Tensor]:
    errors = torch.as_tensor(errors, dtype=torch.float64).reshape(-1)
    entropies = torch.as_tensor(entropies, dtype=torch.float64).reshape(-1)
    if errors.shape != entropies.shape or errors.numel() == 0:
        raise ValueError(
            f"entropies: expected the shape of errors {tuple(errors.shape)} (T >= 1), "
            f"actual {tuple(entropies.shape)}"
        )
    if previous is None:
        previous = torch.cat([errors.new_zeros(1), errors.cumsum(0)[:-1]])
    else:
        previous = torch.as_tensor(previous, dtype=torch.float64).reshape(-1)
        if previous.shape != errors.shape:
            raise ValueError(
                f"previous: expected the shape of errors {tuple(errors.shape)}, "
                f"actual {tuple(previous.shape)}"
            )
    return errors, entropies, previous


def _check_params(alpha=None, lam=None, b=None) -> None:
    for name, value in (("alpha", alpha), ("lam", lam), ("b", b)):
        if value is not None:
            check_real(name, value, low=0.0)


def assumption_slack(
    errors, entropies, alpha: float, lam: float, b: float, previous=None
) -> Tensor:
    """``α H_t + λ S_{t−1} + b − ē_t`` for every step, shape ``(T,)``.

    Assumption 4.2 holds exactly when every entry is ``>= 0``.

    Parameters
    ----------
    errors : Tensor, shape (T,)
        ``ē_t``.
    entropies : Tensor, shape (T,)
        ``H_t``.
    alpha, lam, b : float
        Non-negative.
    previous : Tensor, shape (T,), optional
        ``S_{t−1}``; by default the running sum of ``errors`` (one rollout). Give it
        for steps pooled over several rollouts.

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Assumption 4.2 (Eq. 10).
    """
    _check_params(alpha, lam, b)
    e, h, s = _as_steps(errors, entropies, previous)
    return alpha * h + lam * s + b - e


def smallest_b(errors, entropies, alpha: float, lam: float, previous=None) -> float:
    """The smallest ``b >= 0`` for which Assumption 4.2 holds with ``α, λ``.

    ``b* = max(0, max_t (ē_t − α H_t − λ S_{t−1}))``; ``+inf`` if an ``ē_t`` is.
    ``previous`` is ``S_{t−1}`` as in :func:`assumption_slack`.

    Examples
    --------
    >>> round(smallest_b([0.1, 0.3], [1.0, 1.0], alpha=0.05, lam=1.0), 12)
    0.15
    """
    _check_params(alpha, lam)
    e, h, s = _as_steps(errors, entropies, previous)
    if torch.isinf(e).any():
        return math.inf
    return max(0.0, float((e - alpha * h - lam * s).max()))


def _smallest_coefficient(excess: Tensor, column: Tensor) -> float:
    # Smallest c >= 0 with excess_t <= c · column_t for every t.
    need = excess > 0
    if torch.isinf(excess).any() or (need & (column <= 0)).any():
        return math.inf
    if not need.any():
        return 0.0
    return float((excess[need] / column[need]).max())


def smallest_lam(errors, entropies, alpha: float, b: float) -> float:
    """The smallest ``λ >= 0`` for which Assumption 4.2 holds with ``α, b``;
    ``+inf`` when none does (an excess at a step with ``S_{t−1} = 0``)."""
    _check_params(alpha=alpha, b=b)
    e, h, s = _as_steps(errors, entropies)
    return _smallest_coefficient(e - alpha * h - b, s)


def smallest_alpha(errors, entropies, lam: float, b: float) -> float:
    """The smallest ``α >= 0`` for which Assumption 4.2 holds with ``λ, b``;
    ``+inf`` when none does (an excess at a step with ``H_t = 0``)."""
    _check_params(lam=lam, b=b)
    e, h, s = _as_steps(errors, entropies)
    return _smallest_coefficient(e - lam * s - b, h)


def eq11_weights(length: int, lam: float, form: str = "recursion") -> Tensor:
    """Weights ``w_t`` of ``α H_t`` in the bound of Eq. 11, shape ``(T,)``.

    ``(1+λ)^{T−t}`` for ``"recursion"`` and ``"printed"``, ``Σ_{s=0}^{T−t} λ^s`` for
    ``"intermediate"``.
    """
    T = check_int("length", length, minimum=1)
    check_real("lam", lam, low=0.0)
    if form not in BOUND_FORMS:
        raise ValueError(f"form={form!r}: expected one of {BOUND_FORMS}")
    power = torch.arange(T - 1, -1, -1, dtype=torch.float64)  # T − t
    if form == "intermediate":
        sums = [math.fsum(lam**s for s in range(int(n) + 1)) for n in power.tolist()]
        return torch.tensor(sums, dtype=torch.float64)
    return (1 + lam) ** power


def eq11_bound(
    entropies, alpha: float, lam: float, b: float, form: str = "recursion"
) -> float:
    """The right side of Eq. 11 in one of :data:`BOUND_FORMS`.

    * ``"recursion"``: ``Σ_t (1+λ)^{T−t} (α H_t + b)``, what Assumption 4.2 implies
      through ``S_t ≤ (1+λ) S_{t−1} + α H_t + b``;
    * ``"printed"``: ``Σ_t α (1+λ)^{T−t} H_t + T b``, Eq. 11 as printed;
    * ``"intermediate"``: ``Σ_t α (Σ_{s=0}^{T−t} λ^s) H_t + T b``, the printed
      intermediate sum.

    Parameters
    ----------
    entropies : Tensor, shape (T,)
        ``H_t``, ``t = 1..T``.
    alpha, lam, b : float
        Non-negative.
    form : str

    Returns
    -------
    float

    Examples
    --------
    >>> h = [1.0, 0.0, 0.0]
    >>> [eq11_bound(h, 1.0, 1.0, 0.0, f) for f in BOUND_FORMS]
    [4.0, 4.0, 3.0]
    >>> [eq11_bound([0.0, 0.0], 1.0, 1.0, 1.0, f) for f in BOUND_FORMS]
    [3.0, 2.0, 2.0]

    References
    ----------
    Zhang et al. (2026), arXiv 2602.00286, Eq. 11 and its derivation.
    """
    _check_params(alpha, lam, b)
    h = torch.as_tensor(entropies, dtype=torch.float64).reshape(-1)
    T = h.numel()
    w = eq11_weights(T, lam, form)
    body = float((alpha * w * h).sum())
    if form == "recursion":
        return body + b * float(w.sum())
    return body + T * b


# -- least squares with non-negative coefficients --------------------------------------


@dataclass(frozen=True)
class AssumptionFit:
    """Least-squares fit of ``ē_t ≈ α H_t + λ S_{t−1} + b`` with ``α, λ, b >= 0``.

    Attributes
    ----------
    alpha, lam, b : float
    r2 : float
        ``1 − SS_res / SS_tot`` (``SS_tot`` about the mean of ``ē``); 1 when
        ``SS_tot = 0`` and the fit is exact.
    steps : int
        Number of ``(ē_t, H_t, S_{t−1})`` triples fitted.
    """

    alpha: float
    lam: float
    b: float
    r2: float
    steps: int


def nonnegative_least_squares(design: Tensor, target: Tensor) -> Tensor:
    """``argmin_{c >= 0} ‖design · c − target‖²`` by enumerating supports.

    For each subset of columns the unconstrained least-squares solution on that
    subset is computed (``torch.linalg.lstsq``); among the subsets whose solution
    is non-negative, the one of least residual is the constrained optimum (the
    optimum's support is one of the subsets, and on it the optimum is the
    unconstrained solution).

    Parameters
    ----------
    design : Tensor, shape (n, k)
        ``k <=`` :data:`MAX_NNLS_COLUMNS`.
    target : Tensor, shape (n,)

    Returns
    -------
    Tensor, shape (k,), float64

    Raises
    ------
    ValueError
        On a shape mismatch, too many columns, or non-finite entries.

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> nonnegative_least_squares(A, torch.tensor([2.0, -1.0])).tolist()
    [2.0, 0.0]
    """
    A = torch.as_tensor(design, dtype=torch.float64)
    y = torch.as_tensor(target, dtype=torch.float64).reshape(-1)
    if A.dim() != 2 or A.shape[0] != y.shape[0]:
        raise ValueError(
            f"design: expected shape (n, k) with n = {y.shape[0]} rows like target, "
            f"actual {tuple(A.shape)}"
        )
    k = A.shape[1]
    if k > MAX_NNLS_COLUMNS:
        raise ValueError(
            f"design: {k} columns, expected at most {MAX_NNLS_COLUMNS} for the "
            "enumeration of supports"
        )
    if not (torch.isfinite(A).all() and torch.isfinite(y).all()):
        raise ValueError("design, target: expected finite entries")
    best, best_res = torch.zeros(k, dtype=torch.float64), float((y**2).sum())
    for size in range(1, k + 1):
        for support in itertools.combinations(range(k), size):
            cols = list(support)
            sol = torch.linalg.lstsq(A[:, cols], y.unsqueeze(-1)).solution.squeeze(-1)
            if (sol < 0).any():
                continue
            c = torch.zeros(k, dtype=torch.float64)
            c[cols] = sol
            res = float(((A @ c - y) ** 2).sum())
            if res < best_res:
                best, best_res = c, res
    return best


def fit_assumption(errors, entropies, previous) -> AssumptionFit:
    """Fit ``α, λ, b >= 0`` of Assumption 4.2 to step triples by least squares.

    Parameters
    ----------
    errors, entropies, previous : Tensor, shape (n,)
        ``ē_t``, ``H_t`` and ``S_{t−1}`` of any number of steps (pooled over
        rollouts).

    Returns
    -------
    AssumptionFit

    Notes
    -----
    The fit minimizes the squared residuals, so Assumption 4.2 itself (an
    inequality at every step) need not hold with the fitted values; see
    :func:`assumption_slack` and :func:`smallest_b`.

    Examples
    --------
    >>> h, s = [1.0, 2.0, 1.0, 0.5], [0.0, 0.2, 0.7, 1.5]
    >>> fit = fit_assumption([0.2 * a + b for a, b in zip(h, s)], h, s)
    >>> round(fit.alpha, 6), round(fit.lam, 6), round(fit.b, 6), round(fit.r2, 6)
    (0.2, 1.0, 0.0, 1.0)
    """
    e = torch.as_tensor(errors, dtype=torch.float64).reshape(-1)
    h = torch.as_tensor(entropies, dtype=torch.float64).reshape(-1)
    s = torch.as_tensor(previous, dtype=torch.float64).reshape(-1)
    if not (e.shape == h.shape == s.shape) or e.numel() == 0:
        raise ValueError(
            f"errors, entropies, previous: expected equal shapes (n,) with n >= 1, "
            f"actual {tuple(e.shape)}, {tuple(h.shape)}, {tuple(s.shape)}"
        )
    design = torch.stack([h, s, torch.ones_like(h)], -1)
    alpha, lam, b = nonnegative_least_squares(design, e).tolist()
    coef = torch.tensor([alpha, lam, b], dtype=torch.float64)
    residual = float(((design @ coef - e) ** 2).sum())
    total = float(((e - e.mean()) ** 2).sum())
    if total > 0:
        r2 = 1 - residual / total
    else:
        r2 = 1.0 if residual <= 1e-24 else -math.inf
    return AssumptionFit(alpha, lam, b, r2, e.numel())

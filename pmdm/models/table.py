"""An explicit joint table over short sequences: any distribution, zeros allowed."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.distributions.torch_distribution import TorchDistribution
from torch import Tensor

from pmdm.models.base import Target
from pmdm.ops.logspace import log_normalize
from pmdm.ops.validation import check_int, check_probs, check_tokens


class SupportCategorical(TorchDistribution):
    """A categorical distribution over a list of sequences, valued in sequences.

    Parameters
    ----------
    sequences : Tensor, shape (S, T), long
        The distinct support rows.
    log_probs : Tensor, shape (*batch, S)
        Their log-probabilities.
    vocab_size : int
        ``V``; values are token ids in ``[0, V)``.

    Notes
    -----
    ``log_prob(x)`` is the log-probability of the row equal to ``x``, and ``-inf``
    for a sequence outside the list. The event shape is ``(T,)``.
    """

    arg_constraints = {}
    has_enumerate_support = False

    def __init__(
        self, sequences: Tensor, log_probs: Tensor, vocab_size: int, validate_args=None
    ):
        self.sequences = sequences
        self.log_probs = log_probs
        self.vocab_size = vocab_size
        batch_shape = log_probs.shape[:-1]
        event_shape = sequences.shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.independent(
            constraints.integer_interval(0, self.vocab_size - 1), 1
        )

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        log_probs = self.log_probs.expand(batch_shape + self.log_probs.shape[-1:])
        return SupportCategorical(self.sequences, log_probs, self.vocab_size)

    def sample(self, sample_shape=()):
        shape = torch.Size(sample_shape) + self.batch_shape
        with torch.no_grad():
            probs = self.log_probs.exp().expand(shape + self.log_probs.shape[-1:])
            flat = probs.reshape(-1, probs.shape[-1])
            rows = torch.multinomial(flat, 1, replacement=True).reshape(shape)
            return self.sequences[rows]

    def log_prob(self, value: Tensor) -> Tensor:
        # (*, 1, T) == (S, T) -> (*, S): which support row the value is.
        match = (value.unsqueeze(-2) == self.sequences).all(-1)
        log_w = torch.where(match, self.log_probs, -torch.inf)
        return torch.logsumexp(log_w, -1)


class TableTarget(Target):
    """A target given by its support rows and their probabilities.

    Parameters
    ----------
    vocab_size : int
        ``V >= 1``.
    sequences : Tensor, shape (S, T), long
        Distinct sequences with ids in ``[0, V)``; sequences not listed have
        probability zero.
    probs : Tensor, shape (S,)
        Their probabilities, summing to one (renormalized in float64); zeros are
        allowed.

    Notes
    -----
    ``log p(x_S) = log Σ_s p_s [row s agrees with x on S]``: one logsumexp over the
    rows, batched. The Pyro model has one token site ``"x"`` valued in whole
    sequences, drawn from an enumerated latent ``"row"``.
    Zhang et al. (2026), arXiv 2602.00286, Sec. 6 use such two-row tables
    (``{ABAB, BABA}``) to show what a factorized step loses.

    Examples
    --------
    >>> import torch
    >>> table = TableTarget(2, torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0]]),
    ...                     torch.tensor([0.5, 0.5]))
    >>> x = torch.tensor([0, 0, 0, 0]); revealed = torch.tensor([1, 0, 0, 0]).bool()
    >>> table.conditionals(x, revealed).exp()[1]
    tensor([0., 1.], dtype=torch.float64)
    """

    def __init__(self, vocab_size: int, sequences: Tensor, probs: Tensor):
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=1)
        sequences = torch.as_tensor(sequences)
        if sequences.dim() != 2 or sequences.shape[0] == 0 or sequences.shape[1] == 0:
            raise ValueError(
                f"sequences: expected shape (S, T) with S >= 1 and T >= 1, actual "
                f"{tuple(sequences.shape)}"
            )
        sequences = check_tokens(
            "sequences", sequences, length=sequences.shape[1], vocab_size=vocab_size
        )
        probs = check_probs("probs", probs)
        probs = probs / probs.sum()
        if tuple(probs.shape) != (sequences.shape[0],):
            raise ValueError(
                f"probs: expected shape ({sequences.shape[0]},), one probability per "
                f"row of sequences, actual {tuple(probs.shape)}"
            )
        unique, counts = torch.unique(sequences, dim=0, return_counts=True)
        if (counts > 1).any():
            repeated = unique[counts > 1][0].tolist()
            raise ValueError(
                f"sequences: expected distinct rows, actual {repeated!r} appears "
                f"{int(counts.max())} times; merge duplicates by adding their probs"
            )
        self.length = sequences.shape[1]
        self.sequences = sequences
        self.probs = probs
        self.log_probs = probs.log()

    @classmethod
    def from_dense(cls, probs: Tensor) -> TableTarget:
        """The table of a dense joint ``probs[x_1, ..., x_T]`` of shape ``(V,)*T``.

        Only sequences of positive probability are kept as rows.

        Examples
        --------
        >>> import torch
        >>> TableTarget.from_dense(torch.tensor([[0.5, 0.0], [0.0, 0.5]])).sequences
        tensor([[0, 0],
                [1, 1]])
        """
        probs = torch.as_tensor(probs, dtype=torch.float64)
        if probs.dim() == 0 or len(set(probs.shape)) != 1:
            raise ValueError(
                f"probs: expected shape (V,)*T with T >= 1, actual {tuple(probs.shape)}"
            )
        check_probs("probs", probs.reshape(-1))
        sequences = torch.nonzero(probs > 0)
        return cls(probs.shape[0], sequences, probs[probs > 0])

    def __repr__(self) -> str:
        return (
            f"TableTarget(vocab_size={self.vocab_size}, length={self.length}, "
            f"rows={self.sequences.shape[0]})"
        )

    def _log_weights(self, x: Tensor, revealed: Tensor) -> Tensor:
        # log p_s where row s agrees with x on the revealed set, else -inf: (*batch, S).
        agree = (x.unsqueeze(-2) == self.sequences) | ~revealed.unsqueeze(-2)
        return torch.where(agree.all(-1), self.log_probs, -torch.inf)

    def log_evidence(self, x: Tensor, revealed: Tensor) -> Tensor:
        revealed = torch.as_tensor(revealed, dtype=torch.bool).expand(x.shape)
        return torch.logsumexp(self._log_weights(x, revealed), -1)

    def conditionals(self, x: Tensor, revealed: Tensor) -> Tensor:
        x = self._check_x(x)
        revealed = torch.as_tensor(revealed, dtype=torch.bool).expand(x.shape)
        V = self.vocab_size
        log_w = self._log_weights(x, revealed)
        # (S, T, V): 0 where row s has value v at position t, -inf elsewhere.
        rows = torch.nn.functional.one_hot(self.sequences, V).to(torch.bool)
        log_rows = torch.where(rows, 0.0, -torch.inf).to(torch.float64)
        # (*batch, S, 1, 1) + (S, T, V) -> (*batch, T, V).
        out = log_normalize(torch.logsumexp(log_w[..., None, None] + log_rows, -3))
        one_hot = torch.nn.functional.one_hot(x, V).to(torch.bool)
        fixed = torch.where(one_hot, 0.0, -torch.inf).to(out.dtype)
        return torch.where(revealed.unsqueeze(-1), fixed, out)

    def sample(self, num_sequences: int) -> Tensor:
        num_sequences = check_int("num_sequences", num_sequences, minimum=0)
        if num_sequences == 0:
            return self.sequences[:0]
        rows = torch.multinomial(self.probs, num_sequences, replacement=True)
        return self.sequences[rows]

    def distribution(self) -> SupportCategorical:
        """The law of the whole sequence, event shape ``(T,)``."""
        return SupportCategorical(self.sequences, self.log_probs, self.vocab_size)

    def model(self, data: Tensor | None = None, num_sequences: int | None = None):
        """Pyro model: a latent row ``"row"`` (enumerated) and one token site ``"x"``
        whose value is the whole sequence of that row.

        The enumerated row plays the part of the HMMs' latent chain, so that
        ``TraceEnum_ELBO`` treats every target alike; summing it out gives
        ``p(x)`` of the table.

        Parameters
        ----------
        data : Tensor, shape (N, T), optional
            Observed sequences.
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
        rows = self.sequences.shape[0]
        with pyro.plate("sequences", n, dim=-1):
            row = pyro.sample(
                "row",
                dist.Categorical(logits=self.log_probs),
                infer={"enumerate": "parallel"},
            )
            # A point mass on the chosen row: log-probabilities (*enum, N, S).
            point = torch.nn.functional.one_hot(row, rows).to(torch.bool)
            log_point = torch.where(point, 0.0, -torch.inf).to(torch.float64)
            law = SupportCategorical(self.sequences, log_point, self.vocab_size)
            return pyro.sample("x", law, obs=data)

    def sites(self, x: Tensor) -> dict[str, Tensor]:
        """``{"x": x}``: the whole sequences, long, shape (N, T)."""
        return {"x": self._check_x(x)}

"""The oracle predictor: the exact conditionals of a target."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pmdm.models.base import Target
from pmdm.predictors.base import check_masked_tokens


class OraclePredictor:
    """Exact any-order conditionals ``p(x_i | x_S)`` of a target.

    Parameters
    ----------
    target : Target
        The distribution whose conditionals are returned.

    Attributes
    ----------
    vocab_size : int
        ``V``.
    mask_id : int
        ``V``: masked positions of the input hold this id.
    length : int
        ``T``.
    nfe : int
        Number of calls of the predictor (one per call, whatever the batch size).
    joint_calls : int
        Number of calls of :meth:`log_joint` and :meth:`joint_table`, counted apart
        from ``nfe`` because a real model offers no such call: a decoder decides
        what a joint query costs.

    Notes
    -----
    The oracle is the predictor of the paper's perfect-model regime: with it, one
    token per step in any order gives ``q = p`` (Zhang et al. 2026, arXiv
    2602.00286, Sec. 3). Given an impossible context the rows are uniform (the
    convention of :meth:`pmdm.models.base.Target.conditionals`).

    Examples
    --------
    >>> import torch
    >>> from pmdm.models.table import TableTarget
    >>> oracle = OraclePredictor(TableTarget(2, torch.tensor([[0, 1], [1, 0]]),
    ...                                      torch.tensor([0.5, 0.5])))
    >>> oracle(torch.tensor([[1, 2]])).exp()[0, 1], oracle.nfe
    (tensor([1., 0.], dtype=torch.float64), 1)
    """

    def __init__(self, target: Target):
        if not isinstance(target, Target):
            raise TypeError(f"target={target!r}: expected a pmdm Target")
        self.target = target
        self.vocab_size = target.vocab_size
        self.mask_id = target.mask_id
        self.length = target.length
        self.nfe = 0
        self.joint_calls = 0

    def __repr__(self) -> str:
        return f"OraclePredictor({self.target!r}, nfe={self.nfe})"

    def _split(self, name: str, tokens: Tensor) -> tuple[Tensor, Tensor]:
        # Checked tokens -> (x with masks replaced by 0, revealed mask).
        tokens = check_masked_tokens(
            name,
            tokens,
            vocab_size=self.vocab_size,
            mask_id=self.mask_id,
            length=self.length,
        )
        revealed = tokens != self.mask_id
        return torch.where(revealed, tokens, torch.zeros_like(tokens)), revealed

    def __call__(self, tokens: Tensor) -> Tensor:
        """``log p(x_i = v | x_S)`` for every position, ``S`` the unmasked positions.

        Parameters
        ----------
        tokens : Tensor, shape (*batch, T), long
            Ids in ``[0, V)``, or ``mask_id`` at masked positions.

        Returns
        -------
        Tensor, shape (*batch, T, V), float64
            Normalized; rows of revealed positions are one-hot on their value.

        Raises
        ------
        TypeError, ValueError
            If ``tokens`` is not an integer tensor of shape ``(*batch, T)`` with ids
            in ``[0, V]``.
        """
        x, revealed = self._split("tokens", tokens)
        self.nfe += 1
        return self.target.conditionals(x, revealed)

    def log_joint(
        self, tokens: Tensor, positions_mask: Tensor, values: Tensor
    ) -> Tensor:
        """``log p(x_A = values_A | x_S)`` with a set ``A`` of its own for each row.

        Parameters
        ----------
        tokens : Tensor, shape (*batch, T), long
            The context; ``S`` is its unmasked positions.
        positions_mask : Tensor, shape (*batch, T), bool
            ``A``; only masked positions. A row with ``A`` empty gets 0.
        values : Tensor, shape (*batch, T), long
            Proposed values; read at ``A`` only, where they must lie in ``[0, V)``.

        Returns
        -------
        Tensor, shape (*batch,), float64
            ``log p(x_S, x_A) − log p(x_S)``; ``-|A| log V`` (uniform) given an
            impossible context.

        Raises
        ------
        ValueError
            If ``A`` contains a revealed position, a value at ``A`` is not a token
            id, or the shapes differ.
        """
        x, revealed = self._split("tokens", tokens)
        positions_mask = torch.as_tensor(positions_mask)
        if positions_mask.dtype != torch.bool:
            raise TypeError(
                f"positions_mask: expected a bool tensor, actual dtype "
                f"{positions_mask.dtype}"
            )
        values = torch.as_tensor(values)
        for name, value in (("positions_mask", positions_mask), ("values", values)):
            if value.shape != x.shape:
                raise ValueError(
                    f"{name}: expected the shape of tokens {tuple(x.shape)}, actual "
                    f"{tuple(value.shape)}"
                )
        if (positions_mask & revealed).any():
            raise ValueError(
                "positions_mask: expected masked positions only, actual some positions "
                "are revealed in tokens"
            )
        values = check_masked_tokens(
            "values",
            torch.where(positions_mask, values, torch.zeros_like(values)),
            vocab_size=self.vocab_size,
            mask_id=-1,
        )
        self.joint_calls += 1
        both = torch.where(positions_mask, values, x)
        log_both = self.target.log_evidence(both, revealed | positions_mask)
        log_context = self.target.log_evidence(x, revealed)
        # Uniform over V^|A| given an impossible context; 0 for an empty A.
        size = positions_mask.sum(-1).to(torch.float64)
        uniform = -size * math.log(self.vocab_size)
        impossible = torch.isneginf(log_context)
        safe = torch.where(impossible, torch.zeros_like(log_context), log_context)
        return torch.where(impossible, uniform, log_both - safe)

    def joint_table(self, tokens: Tensor, positions: list[int]) -> Tensor:
        """``log p(x_A = c | x_S)`` for every configuration ``c`` of one set ``A``.

        Parameters
        ----------
        tokens : Tensor, shape (*batch, T), long
            The context; the positions of ``A`` must be masked in every row.
        positions : list of int
            ``A``, in the order of the returned axes.

        Returns
        -------
        Tensor, shape (*batch, V, ..., V), float64, one axis per position of ``A``
            See :meth:`pmdm.models.base.Target.joint`.
        """
        x, revealed = self._split("tokens", tokens)
        positions = list(positions)
        ok = all(isinstance(i, int) and 0 <= i < self.length for i in positions)
        if ok and revealed[..., positions].any():
            raise ValueError(
                f"positions={positions!r}: expected positions masked in every row of "
                "tokens"
            )
        self.joint_calls += 1
        return self.target.joint(x, revealed, positions)

"""The target contract: a distribution over token sequences with exact conditionals."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod

import networkx as nx
import torch
from torch import Tensor

from pmdm.models.graph import complete_token_graph
from pmdm.ops.logspace import log_normalize
from pmdm.ops.validation import check_int, check_tokens

#: Largest number of sequences that :meth:`Target.enumerate_sequences` lists.
MAX_ENUMERATION = 2**16


class Target(ABC):
    """A distribution ``p`` over ``V^T`` with exact marginals and conditionals.

    Subclasses implement :meth:`log_evidence` (the marginal probability of any set of
    revealed positions), :meth:`sample` and :meth:`model` (the Pyro model); every
    conditional is derived from :meth:`log_evidence` here, and subclasses override
    the derivations with faster ones where their structure allows.

    Attributes
    ----------
    length : int
        ``T``.
    vocab_size : int
        ``V``; token ids are ``0..V-1``.
    mask_id : int
        ``V``: the id that marks a masked position in predictor inputs.
    """

    length: int
    vocab_size: int

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    # -- to implement ---------------------------------------------------------------

    @abstractmethod
    def log_evidence(self, x: Tensor, revealed: Tensor) -> Tensor:
        """``log p(x_S)``, the marginal log-probability of the revealed positions.

        Parameters
        ----------
        x : Tensor, shape (*batch, T), long
            Token ids; entries at hidden positions are ignored (any id is allowed).
        revealed : Tensor, shape (*batch, T), bool
            The revealed set ``S``.

        Returns
        -------
        Tensor, shape (*batch,), float64
        """

    @abstractmethod
    def sample(self, num_sequences: int) -> Tensor:
        """Draw ``N`` sequences from ``p`` with the global torch generator.

        Returns
        -------
        Tensor, shape (N, T), long
        """

    @abstractmethod
    def model(self, data: Tensor | None = None, num_sequences: int | None = None):
        """The Pyro model of ``p`` (sample sites are tokens or blocks of tokens)."""

    def sites(self, x: Tensor) -> dict[str, Tensor]:
        """The values that :meth:`model`'s token sample sites take on sequences ``x``.

        A decoder's Pyro guide emits exactly these sites, so that
        ``poutine.condition(target.model, data=target.sites(x))`` scores ``x`` and
        ``TraceEnum_ELBO(model, guide)`` compares the two.

        Parameters
        ----------
        x : Tensor, shape (N, T), long
            Complete sequences.

        Returns
        -------
        dict of str to Tensor
            Site name to value, with the leading axis ``N`` (the model's
            ``"sequences"`` plate).

        Raises
        ------
        NotImplementedError
            In this base class: the site names belong to each subclass's model.
        """
        raise NotImplementedError(
            f"{type(self).__name__}.sites: a Target subclass must map sequences to "
            "the sample sites of its own model"
        )

    def dependency_graph(self) -> nx.DiGraph:
        """The target's factorization as a DAG over latent and token nodes.

        Token ``i`` is the node ``("x", i)``; see :mod:`pmdm.models.graph` for the
        conventions and :func:`pmdm.models.graph.mutually_independent` for its use.
        This base version asserts no independence (a complete DAG over the tokens
        in position order); subclasses with structure override it.

        Returns
        -------
        networkx.DiGraph
            A fresh graph that the caller may modify.
        """
        return complete_token_graph(self.length)

    # -- derived --------------------------------------------------------------------

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)`` of complete sequences, shape ``(*batch,)``."""
        x = self._check_x(x)
        return self.log_evidence(x, torch.ones_like(x, dtype=torch.bool))

    def conditionals(self, x: Tensor, revealed: Tensor) -> Tensor:
        """``log p(x_i = v | x_S)`` for every position ``i`` and value ``v``.

        Parameters
        ----------
        x : Tensor, shape (*batch, T), long
        revealed : Tensor, shape (*batch, T), bool

        Returns
        -------
        Tensor, shape (*batch, T, V), float64
            Normalized over ``V``. Rows of revealed positions are one-hot on the
            revealed value. Given an impossible context (``p(x_S) = 0``) the rows are
            uniform (the convention of :func:`pmdm.ops.logspace.log_normalize`).
        """
        x = self._check_x(x)
        revealed = torch.as_tensor(revealed, dtype=torch.bool).expand(x.shape)
        T, V = self.length, self.vocab_size
        eye = torch.eye(T, dtype=torch.bool).view(T, 1, T)
        # (*batch, T, V, T): row (i, v) sets position i to v and reveals it.
        xs = torch.where(eye, torch.arange(V).view(1, V, 1), x[..., None, None, :])
        rs = revealed[..., None, None, :] | eye
        out = log_normalize(self.log_evidence(xs, rs.expand(xs.shape)))
        one_hot = torch.nn.functional.one_hot(x, V).to(torch.bool)
        fixed = torch.where(one_hot, 0.0, -torch.inf).to(out.dtype)
        return torch.where(revealed.unsqueeze(-1), fixed, out)

    def joint(self, x: Tensor, revealed: Tensor, positions: list[int]) -> Tensor:
        """``log p(x_A = c | x_S)`` for a small set ``A`` of hidden positions.

        Parameters
        ----------
        x : Tensor, shape (*batch, T), long
        revealed : Tensor, shape (*batch, T), bool
            ``S``; must not contain any position of ``A``.
        positions : list of int
            ``A``, in the order of the returned axes.

        Returns
        -------
        Tensor, shape (*batch, V, ..., V) with one axis per position of ``A``
            Normalized over the ``V^|A|`` configurations; uniform given an
            impossible context.
        """
        x = self._check_x(x)
        revealed = torch.as_tensor(revealed, dtype=torch.bool).expand(x.shape)
        positions = [check_int("positions[]", i, minimum=0) for i in positions]
        if len(set(positions)) != len(positions) or any(
            i >= self.length for i in positions
        ):
            raise ValueError(
                f"positions={positions!r}: expected distinct positions in "
                f"[0, {self.length})"
            )
        if revealed[..., positions].any():
            raise ValueError(f"positions={positions!r}: expected hidden positions")
        V, k = self.vocab_size, len(positions)
        configs = torch.tensor(list(itertools.product(range(V), repeat=k)))
        configs = configs.reshape(-1, k)
        # (*batch, V^k, T): every configuration of A written into x.
        xs = x.unsqueeze(-2).expand(x.shape[:-1] + (configs.shape[0], self.length))
        xs = xs.clone()
        xs[..., positions] = configs.expand(xs.shape[:-1] + (k,))
        rs = revealed.clone()
        rs[..., positions] = True
        log_w = self.log_evidence(xs, rs.unsqueeze(-2).expand(xs.shape))
        return log_normalize(log_w).reshape(x.shape[:-1] + (V,) * k)

    def enumerate_sequences(self, max_sequences: int = MAX_ENUMERATION) -> Tensor:
        """All ``V^T`` sequences in lexicographic order, shape ``(V^T, T)``.

        Raises
        ------
        ValueError
            If ``V^T`` exceeds ``max_sequences``.
        """
        count = self.vocab_size**self.length
        if count > max_sequences:
            raise ValueError(
                f"the target has V^T = {self.vocab_size}^{self.length} = {count} "
                f"sequences: expected at most max_sequences={max_sequences} for "
                "exact enumeration; use a Monte Carlo estimate instead"
            )
        grids = torch.cartesian_prod(*[torch.arange(self.vocab_size)] * self.length)
        return grids.reshape(count, self.length)

    def _check_x(self, x: Tensor) -> Tensor:
        return check_tokens("x", x, length=self.length, vocab_size=self.vocab_size)

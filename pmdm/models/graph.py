"""Dependency structure of targets: which masked tokens are independent given others.

Every target describes its factorization as a directed acyclic graph (a networkx
``DiGraph``) with token nodes ``("x", i)`` and latent nodes (``("z", m)`` for the
hidden chains). A set of masked positions can be decoded in one factorized step
without error exactly when its tokens are mutually independent given the revealed
ones; d-separation in the graph certifies this for every distribution that
factorizes along the graph.

Graph conventions
-----------------
* ``graph.graph["length"]`` is ``T``; token nodes carry ``kind="token"`` and
  ``position=i``, latent nodes ``kind="latent"``.
* A node may carry ``determined_by``: a list of node sets, each of which fixes the
  node's value with probability one (a visible Markov chain's latent state is a
  function of its token; under a hard parity constraint every bit of a block is a
  function of the block's other bits). Conditioning on a set then also conditions
  on every node it determines, which is the D-separation of Geiger, Verma and Pearl
  (1990); it is sound because conditioning on a function of what is already known
  changes no conditional law.

From pairwise to mutual independence
------------------------------------
d-separation obeys composition (Pearl 1988, Ch. 3): if ``i`` is d-separated from
each ``j`` of a set ``J`` given ``Z``, it is d-separated from ``J`` as a whole. So a
set ``A`` whose members are pairwise d-separated given ``Z`` has every ``i ∈ A``
d-separated from ``A \\ {i}``, and by the chain rule
``p(x_A | x_Z) = Π_{i∈A} p(x_i | x_Z)``: the factorized step (paper, Eq. 5) equals
the joint step. (Pairwise *independence* of random variables would not be enough, as
``X ⊕ Y`` shows; pairwise *d-separation* is, because it is a property of every
distribution on the graph at once.) The tests check the set form with
:func:`networkx.is_d_separator` on every set this module returns.

References
----------
Pearl (1988), "Probabilistic Reasoning in Intelligent Systems", Morgan Kaufmann,
Ch. 3 (d-separation, graphoid axioms). Geiger, Verma, Pearl (1990), "Identifying
independence in Bayesian networks", Networks 20(5). Shachter (1998), "Bayes-ball",
UAI. Koller and Friedman (2009), "Probabilistic Graphical Models", Algorithm 3.1.
Zhang et al. (2026), arXiv 2602.00286, Sec. 3 (conditional independence inside a
block makes the factorized step exact).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Sequence

import networkx as nx

from pmdm.ops.validation import check_int

#: Largest candidate set for which :func:`mutually_independent` is exact.
EXACT_LIMIT = 16


def token_node(position: int) -> tuple[str, int]:
    """The graph node of token position ``i``: ``("x", i)``."""
    return ("x", position)


def new_graph(length: int) -> nx.DiGraph:
    """An empty dependency graph with the token nodes ``("x", 0..T-1)``."""
    graph = nx.DiGraph(length=length)
    for i in range(length):
        graph.add_node(token_node(i), kind="token", position=i)
    return graph


def complete_token_graph(length: int) -> nx.DiGraph:
    """The graph that asserts no independence: ``x_i → x_j`` for every ``i < j``.

    Examples
    --------
    >>> complete_token_graph(3).number_of_edges()
    3
    """
    graph = new_graph(length)
    graph.add_edges_from(
        (token_node(i), token_node(j))
        for i in range(length)
        for j in range(i + 1, length)
    )
    return graph


def hidden_chain_graph(length: int, *, state_from_token: bool = False) -> nx.DiGraph:
    """Graph of a token-level HMM: ``z_{t-1} → z_t`` and ``z_t → x_t``.

    Parameters
    ----------
    length : int
        ``T``.
    state_from_token : bool
        Whether each token fixes its latent state (every token has at most one
        state that can emit it, e.g. identity emissions): then ``z_t`` is
        ``determined_by`` ``x_t`` and the tokens form a visible Markov chain.
    """
    graph = new_graph(length)
    for t in range(length):
        graph.add_node(("z", t), kind="latent")
        if t:
            graph.add_edge(("z", t - 1), ("z", t))
        graph.add_edge(("z", t), token_node(t))
        if state_from_token:
            graph.nodes["z", t]["determined_by"] = [frozenset({token_node(t)})]
    return graph


def closure(graph: nx.DiGraph, given: Iterable[Hashable]) -> set:
    """``given`` together with every node it determines (``determined_by``),
    repeated until nothing is added."""
    known = set(given)
    rules = [
        (node, sets)
        for node, sets in graph.nodes(data="determined_by")
        if sets is not None
    ]
    changed = True
    while changed:
        changed = False
        for node, sets in rules:
            if node not in known and any(s <= known for s in sets):
                known.add(node)
                changed = True
    return known


def d_connected(graph: nx.DiGraph, source: Hashable, given: set, ancestors: set) -> set:
    """Nodes d-connected to ``source`` given ``given`` (Bayes-ball reachability).

    Parameters
    ----------
    graph : networkx.DiGraph
    source : node
        Not in ``given``.
    given : set of nodes
        The conditioning set ``Z``.
    ancestors : set of nodes
        ``Z`` and all its ancestors: a collider passes the ball when it is in
        this set.

    Returns
    -------
    set of nodes
        Every node ``y ∉ Z`` with an active trail from ``source`` given ``Z``
        (``source`` included).

    Notes
    -----
    Koller and Friedman (2009), Algorithm 3.1: the ball travels up (arriving from
    a child) or down (arriving from a parent); a node outside ``Z`` passes it on
    in every direction except back up after arriving down, and a node in
    ``ancestors`` bounces a downward ball back up. The tests check it against
    :func:`networkx.is_d_separator`.
    """
    reached, seen = set(), set()
    queue = deque([(source, True)])
    while queue:
        node, up = queue.popleft()
        if (node, up) in seen:
            continue
        seen.add((node, up))
        if node not in given:
            reached.add(node)
        if up and node not in given:
            queue.extend((parent, True) for parent in graph.pred[node])
            queue.extend((child, False) for child in graph.succ[node])
        elif not up:
            if node not in given:
                queue.extend((child, False) for child in graph.succ[node])
            if node in ancestors:
                queue.extend((parent, True) for parent in graph.pred[node])
    return reached


def _check_positions(
    graph: nx.DiGraph, name: str, positions: Iterable[int]
) -> list[int]:
    length = graph.graph.get("length")
    if length is None:
        raise ValueError(
            f"graph={graph!r}: expected a dependency graph with graph['length'] set "
            "(build it with Target.dependency_graph())"
        )
    out = [check_int(f"{name}[]", i, minimum=0) for i in positions]
    if len(set(out)) != len(out) or any(i >= length for i in out):
        raise ValueError(
            f"{name}={out!r}: expected distinct positions in [0, {length})"
        )
    return out


def dependence_graph(
    graph: nx.DiGraph,
    revealed_positions: Iterable[int],
    candidate_positions: Iterable[int],
) -> nx.Graph:
    """Which candidate tokens may depend on each other given the revealed ones.

    Parameters
    ----------
    graph : networkx.DiGraph
        A target's :meth:`~pmdm.models.base.Target.dependency_graph`.
    revealed_positions : iterable of int
        ``S``.
    candidate_positions : iterable of int
        Masked positions, disjoint from ``S``.

    Returns
    -------
    networkx.Graph
        Nodes: the candidate positions (ints); an edge ``i - j`` when ``x_i`` and
        ``x_j`` are *not* d-separated given ``x_S`` and what it determines. A
        candidate fixed by ``x_S`` has no edges and the node attribute
        ``determined=True``.
    """
    revealed = _check_positions(graph, "revealed_positions", revealed_positions)
    candidates = _check_positions(graph, "candidate_positions", candidate_positions)
    overlap = sorted(set(revealed) & set(candidates))
    if overlap:
        raise ValueError(
            f"candidate_positions: expected masked positions, actual {overlap!r} "
            "also in revealed_positions"
        )
    given = closure(graph, (token_node(i) for i in revealed))
    ancestors = set(given)
    for node in given:
        ancestors |= nx.ancestors(graph, node)
    dep = nx.Graph()
    for i in candidates:
        dep.add_node(i, determined=token_node(i) in given)
    free = {token_node(i): i for i in candidates if token_node(i) not in given}
    for node, i in free.items():
        reached = d_connected(graph, node, given, ancestors)
        dep.add_edges_from(
            (i, free[other]) for other in reached & free.keys() if other != node
        )
    return dep


def _max_independent(adjacency: list[int]) -> list[int]:
    # Lexicographically first maximum independent set of vertices 0..n-1 (bit
    # masks of neighbours); branching "take the lowest vertex" before "skip it"
    # meets the sets of each size in lexicographic order.
    n = len(adjacency)
    best: list[int] = []

    def search(remaining: int, chosen: list[int]) -> None:
        nonlocal best
        if len(chosen) + remaining.bit_count() <= len(best):
            return
        if not remaining:
            best = list(chosen)
            return
        v = (remaining & -remaining).bit_length() - 1
        chosen.append(v)
        search(remaining & ~adjacency[v] & ~(1 << v), chosen)
        chosen.pop()
        search(remaining & ~(1 << v), chosen)

    search((1 << n) - 1, [])
    return best


def _greedy_independent(adjacency: list[int]) -> list[int]:
    # Minimum-degree greedy: take the vertex with fewest remaining neighbours
    # (lowest index on ties), drop it and its neighbours, repeat.
    remaining = (1 << len(adjacency)) - 1
    chosen = []
    while remaining:
        vertices = [v for v in range(len(adjacency)) if remaining >> v & 1]
        v = min(vertices, key=lambda u: ((adjacency[u] & remaining).bit_count(), u))
        chosen.append(v)
        remaining &= ~adjacency[v] & ~(1 << v)
    return chosen


def mutually_independent(
    graph: nx.DiGraph,
    revealed_positions: Iterable[int],
    candidate_positions: Iterable[int],
    *,
    priority: Sequence[int] | None = None,
    exact_limit: int = EXACT_LIMIT,
) -> list[int]:
    """A largest set of candidate positions whose tokens are mutually independent
    given the revealed tokens.

    Parameters
    ----------
    graph : networkx.DiGraph
        A target's :meth:`~pmdm.models.base.Target.dependency_graph`.
    revealed_positions : iterable of int
        ``S``.
    candidate_positions : iterable of int
        Masked positions to choose from; at least one, disjoint from ``S``.
    priority : sequence of int, optional
        Preference order for ties: listed positions first, in the given order, then
        the other candidates in increasing position. Default: lowest positions
        first. :func:`separating_priority` gives an order that prefers positions
        which separate the others.
    exact_limit : int
        Up to this many candidates the set is a maximum one (branch and bound on
        the dependence graph); beyond, a minimum-degree greedy set.

    Returns
    -------
    list of int
        Sorted positions, never empty. Among maximum sets, the first in the
        lexicographic order of ``priority``. Candidates fixed by the revealed
        tokens are independent of everything and always included.

    Notes
    -----
    Two candidates are joined when they are not d-separated given the revealed
    tokens (and the nodes those determine); an independent set of that dependence
    graph is mutually independent given ``x_S`` by composition (see the module
    notes), so ``p(x_A | x_S) = Π_{i∈A} p(x_i | x_S)``.

    Examples
    --------
    A visible Markov chain of 7 tokens with position 3 revealed: one token on each
    side can be decoded together.

    >>> g = hidden_chain_graph(7, state_from_token=True)
    >>> mutually_independent(g, [3], [0, 1, 2, 4, 5, 6])
    [0, 4]
    >>> mutually_independent(g, [3], [0, 1, 2, 4, 5, 6], priority=[2, 5])
    [2, 5]
    """
    candidates = _check_positions(graph, "candidate_positions", candidate_positions)
    if not candidates:
        raise ValueError("candidate_positions=[]: expected at least one position")
    exact_limit = check_int("exact_limit", exact_limit, minimum=0)
    dep = dependence_graph(graph, revealed_positions, candidates)
    order = list(priority) if priority is not None else []
    order = [i for i in dict.fromkeys(order) if i in dep]
    order += sorted(set(candidates) - set(order))
    # Vertices renumbered by preference: vertex r is position order[r].
    rank = {i: r for r, i in enumerate(order)}
    adjacency = [sum(1 << rank[j] for j in dep.adj[i]) for i in order]
    if len(order) <= exact_limit:
        chosen = _max_independent(adjacency)
    else:
        chosen = _greedy_independent(adjacency)
    return sorted(order[r] for r in chosen)


def separating_priority(
    graph: nx.DiGraph,
    revealed_positions: Iterable[int],
    candidate_positions: Iterable[int],
) -> list[int]:
    """Candidates ordered by how many dependent candidate pairs revealing them would
    separate, most first (lowest position on ties).

    Used as ``priority`` in :func:`mutually_independent`, it makes a dependency-
    aware decoder reveal separators first: on a visible Markov chain of ``T``
    tokens the middle token goes first and the number of steps drops from ``T`` to
    about ``log2 T``. Cost: one dependence graph per candidate.

    Examples
    --------
    >>> g = hidden_chain_graph(5, state_from_token=True)
    >>> separating_priority(g, [], range(5))[0]
    2
    """
    revealed = list(revealed_positions)
    candidates = list(candidate_positions)
    dep = dependence_graph(graph, revealed, candidates)
    score = {}
    for c in candidates:
        rest = [i for i in candidates if i != c]
        after = dependence_graph(graph, revealed + [c], rest).number_of_edges()
        # Pairs among the others that were joined before and are not after.
        score[c] = dep.number_of_edges() - dep.degree(c) - after
    return sorted(candidates, key=lambda c: (-score[c], c))

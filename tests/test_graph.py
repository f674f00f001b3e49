"""Dependency graphs and mutually independent sets, against networkx and enumeration."""

import itertools
import random

import networkx as nx
import pytest
import torch

from pmdm.models.block_hmm import BlockHMM
from pmdm.models.graph import (
    _max_independent,
    complete_token_graph,
    d_connected,
    dependence_graph,
    hidden_chain_graph,
    mutually_independent,
    new_graph,
    separating_priority,
    token_node,
)
from pmdm.models.hmm import TokenHMM
from pmdm.models.table import TableTarget


def random_dag(seed, tokens=7, latents=3, p=0.3):
    """Latents and tokens in a random order; edges only forward in that order."""
    rng = random.Random(seed)
    graph = new_graph(tokens)
    nodes = [token_node(i) for i in range(tokens)]
    nodes += [("z", m) for m in range(latents)]
    rng.shuffle(nodes)
    for a, b in itertools.combinations(nodes, 2):
        if rng.random() < p:
            graph.add_edge(a, b)
    return graph, rng


def visible_chain(length, seed=0, states=3):
    gen = torch.Generator().manual_seed(seed)
    trans = torch.rand(states, states, generator=gen, dtype=torch.float64) + 0.2
    init = torch.ones(states, dtype=torch.float64) / states
    return TokenHMM(
        init, trans / trans.sum(-1, keepdim=True), torch.eye(states), length
    )


@pytest.mark.parametrize("seed", range(12))
def test_d_connected_agrees_with_networkx(seed):
    graph, rng = random_dag(seed)
    nodes = list(graph)
    given = set(rng.sample(nodes, rng.randint(0, 4)))
    ancestors = set(given).union(*(nx.ancestors(graph, z) for z in given))
    for source in nodes:
        if source in given:
            continue
        reached = d_connected(graph, source, given, ancestors)
        for other in nodes:
            if other in given or other == source:
                continue
            separated = nx.is_d_separator(graph, {source}, {other}, given)
            assert (other in reached) == (not separated), (source, other, given)


@pytest.mark.parametrize("seed", range(12))
def test_returned_sets_are_d_separated_as_sets_and_maximum(seed):
    graph, rng = random_dag(seed, tokens=8)
    revealed = rng.sample(range(8), rng.randint(0, 3))
    candidates = [i for i in range(8) if i not in revealed]
    chosen = mutually_independent(graph, revealed, candidates)
    given = {token_node(i) for i in revealed}
    # Each member is d-separated from the rest of the set (the set form).
    for i in chosen:
        rest = {token_node(j) for j in chosen if j != i}
        assert not rest or nx.is_d_separator(graph, {token_node(i)}, rest, given)

    # No larger set of candidates is pairwise d-separated (brute force).
    def independent(subset):
        return all(
            nx.is_d_separator(graph, {token_node(a)}, {token_node(b)}, given)
            for a, b in itertools.combinations(subset, 2)
        )

    larger = itertools.combinations(candidates, len(chosen) + 1)
    assert not any(independent(s) for s in larger)
    assert independent(chosen) and chosen


@pytest.mark.parametrize("seed", range(20))
def test_max_independent_is_the_lexicographically_first_maximum_set(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 9)
    edges = {
        (a, b) for a, b in itertools.combinations(range(n), 2) if rng.random() < 0.4
    }
    adjacency = [
        sum(1 << b for b in range(n) if (a, b) in edges or (b, a) in edges)
        for a in range(n)
    ]
    sets = [
        s
        for k in range(n + 1)
        for s in itertools.combinations(range(n), k)
        if not any((a, b) in edges for a, b in itertools.combinations(s, 2))
    ]
    size = max(len(s) for s in sets)
    expected = min(s for s in sets if len(s) == size)
    assert _max_independent(adjacency) == list(expected)


def test_visible_chain_revealed_tokens_cut_the_chain():
    graph = visible_chain(8).dependency_graph()
    dep = dependence_graph(graph, [0, 4], [1, 2, 3, 5, 6, 7])
    # Inside a gap every pair depends; across a revealed token none does.
    assert {frozenset(e) for e in dep.edges} == {
        frozenset(e)
        for gap in ([1, 2, 3], [5, 6, 7])
        for e in itertools.combinations(gap, 2)
    }
    assert mutually_independent(graph, [0, 4], [1, 2, 3]) == [1]
    assert mutually_independent(graph, [0, 4], [1, 6]) == [1, 6]
    assert mutually_independent(graph, [0, 4], [1, 2, 3, 5, 6, 7]) == [1, 5]


def test_without_the_state_from_token_rule_a_hidden_chain_never_separates():
    graph = hidden_chain_graph(8)
    assert mutually_independent(graph, [0, 4], [1, 6]) == [1]


def brute_joint(target, x, revealed, positions):
    """p(x_A | x_S) by enumerating every sequence."""
    allx = target.enumerate_sequences()
    probs = target.log_prob(allx).exp()
    match = (allx == x)[:, revealed].all(-1)
    V = target.vocab_size
    out = torch.zeros((V,) * len(positions), dtype=torch.float64)
    for config in itertools.product(range(V), repeat=len(positions)):
        hit = match & (allx[:, positions] == torch.tensor(config)).all(-1)
        out[config] = probs[hit].sum()
    return out / out.sum()


def outer(marginals):
    out = marginals[0]
    for m in marginals[1:]:
        out = out.unsqueeze(-1) * m
    return out


@pytest.mark.parametrize(
    ("revealed", "expected"), [([2, 5], [0, 3, 6]), ([0, 4], [1, 5])]
)
def test_factorized_joint_of_an_independent_set_is_the_true_joint(revealed, expected):
    chain = visible_chain(8, seed=1, states=2)
    graph = chain.dependency_graph()
    x = chain.sample(3)
    mask = torch.zeros(8, dtype=torch.bool)
    mask[revealed] = True
    candidates = [i for i in range(8) if i not in revealed]
    chosen = mutually_independent(graph, revealed, candidates)
    assert chosen == expected
    for row in x:
        truth = brute_joint(chain, row, mask, chosen)
        assert torch.allclose(chain.joint(row, mask, chosen).exp(), truth, atol=1e-12)
        cond = chain.conditionals(row, mask).exp()
        assert torch.allclose(outer([cond[i] for i in chosen]), truth, atol=1e-12)
    # A dependent pair does not factorize.
    row = x[0]
    pair = [revealed[0] + 1, revealed[0] + 2]
    cond = chain.conditionals(row, mask).exp()
    truth = brute_joint(chain, row, mask, pair)
    assert (outer([cond[i] for i in pair]) - truth).abs().max() > 1e-3


def test_block_hmm_graph_has_the_parity_collider_and_the_latent_chain():
    hmm = BlockHMM(num_states=2, block_size=3, length=6, eta=0.1)
    graph = hmm.dependency_graph()
    x = token_node
    assert set(graph.edges) == {
        (("z", 0), ("z", 1)),
        *((("z", 0), x(i)) for i in range(3)),
        *((("z", 1), x(i)) for i in range(3, 6)),
        (x(1), x(0)),
        (x(2), x(0)),
        (x(4), x(3)),
        (x(5), x(3)),
    }
    assert nx.is_directed_acyclic_graph(graph)
    # The latent chain joins every pair whatever is revealed: one token per step.
    assert mutually_independent(graph, [0, 1, 2], [3, 4, 5]) == [3]


def test_a_hard_parity_fixes_the_last_bit_of_a_block():
    hmm = BlockHMM(num_states=2, rho=(0.9, 0.2), block_size=3, length=6, eta=0.0)
    graph = hmm.dependency_graph()
    dep = dependence_graph(graph, [1, 2], [0, 3, 4, 5])
    assert dep.nodes[0]["determined"] and dep.degree(0) == 0
    chosen = mutually_independent(graph, [1, 2], [0, 3, 4, 5])
    assert chosen == [0, 3]
    row = torch.tensor([0, 1, 1, 0, 0, 0])
    mask = torch.tensor([False, True, True, False, False, False])
    cond = hmm.conditionals(row, mask).exp()
    truth = brute_joint(hmm, row, mask, chosen)
    assert torch.allclose(outer([cond[i] for i in chosen]), truth, atol=1e-12)


def test_a_table_asserts_no_independence():
    table = TableTarget(2, torch.tensor([[0, 1, 0], [1, 0, 1]]), torch.ones(2) / 2)
    graph = table.dependency_graph()
    assert nx.utils.graphs_equal(graph, complete_token_graph(3))
    assert mutually_independent(graph, [1], [0, 2]) == [0]


def test_separating_priority_decodes_a_visible_chain_in_log_steps():
    T = 15
    graph = visible_chain(T).dependency_graph()
    revealed, steps = [], []
    while len(revealed) < T:
        candidates = [i for i in range(T) if i not in revealed]
        priority = separating_priority(graph, revealed, candidates)
        step = mutually_independent(graph, revealed, candidates, priority=priority)
        steps.append(step)
        revealed += step
    assert steps[:3] == [[7], [3, 11], [1, 5, 9, 13]]
    assert len(steps) == 4


def test_greedy_beyond_the_exact_limit_is_valid_and_here_maximum():
    graph = visible_chain(12).dependency_graph()
    candidates = [i for i in range(12) if i not in (3, 7)]
    exact = mutually_independent(graph, [3, 7], candidates)
    greedy = mutually_independent(graph, [3, 7], candidates, exact_limit=0)
    assert exact == [0, 4, 8] and len(greedy) == 3


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([], []), ValueError, r"candidate_positions=\[\]: expected at least one"),
        (([1], [1, 2]), ValueError, r"candidate_positions: expected masked positions"),
        (([], [9]), ValueError, r"candidate_positions=\[9\]: expected distinct"),
        (([], [1, 1]), ValueError, r"candidate_positions=\[1, 1\]"),
        (([-1], [0]), ValueError, r"revealed_positions\[\]=-1"),
        (([], [0.5]), TypeError, r"candidate_positions\[\]=0.5"),
    ],
)
def test_bad_positions_are_refused_by_name(args, error, match):
    graph = hidden_chain_graph(4)
    with pytest.raises(error, match=match):
        mutually_independent(graph, *args)


def test_a_graph_without_length_is_refused():
    with pytest.raises(ValueError, match=r"graph\['length'\]"):
        mutually_independent(nx.DiGraph(), [], [0])

"""Information quantities of joint tables against hand values and brute-force loops."""

import itertools
import math

import pytest
import torch

from pmdm.metrics.information import (
    check_joint_table,
    conditional_entropy,
    conditional_total_correlation,
    conditional_total_correlation_table,
    dual_total_correlation,
    factorized_decoder_log_probs,
    information_curve,
    joint_entropy,
    joint_kl_divergence,
    log_max_ratio,
    marginal,
    max_ratio,
    mutual_information,
    product_of_marginals,
    subset_entropies,
    sum_mutual_information,
    total_correlation,
)

LN2 = math.log(2)


def table(probs):
    return torch.tensor(probs, dtype=torch.float64).log()


def copies2():
    return table([[0.5, 0.0], [0.0, 0.5]])


def xor3():
    p = torch.zeros(2, 2, 2, dtype=torch.float64)
    for a, b in itertools.product(range(2), repeat=2):
        p[a, b, a ^ b] = 0.25
    return p.log()


# -- brute force: dictionaries over configurations -----------------------------------


def configs(shape):
    return list(itertools.product(*[range(v) for v in shape]))


def as_dict(log_p):
    probs = log_p.exp()
    return {x: probs[x].item() for x in configs(tuple(probs.shape))}


def brute_marginal(p, keep):
    out = {}
    for x, w in p.items():
        key = tuple(x[i] for i in keep)
        out[key] = out.get(key, 0.0) + w
    return out


def brute_h(p, keep):
    return -sum(w * math.log(w) for w in brute_marginal(p, keep).values() if w > 0)


def brute_kl(p, q):
    total = 0.0
    for x, w in p.items():
        if w == 0:
            continue
        if q.get(x, 0.0) == 0:
            return math.inf
        total += w * math.log(w / q[x])
    return total


def random_table(shape, seed, zero_rate=0.0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(shape, generator=gen, dtype=torch.float64) ** 3
    if zero_rate:
        w = w * (torch.rand(shape, generator=gen, dtype=torch.float64) > zero_rate)
    w.view(-1)[0] += 0.01
    return (w / w.sum()).log()


SHAPES = [(2,), (3,), (2, 2), (2, 3), (3, 2, 2), (2, 2, 2, 2), (2, 3, 2)]
CASES = [
    (shape, seed, rate) for shape in SHAPES for seed in (0, 1) for rate in (0, 0.4)
]


# -- hand values -----------------------------------------------------------------------


def test_two_perfectly_correlated_bits_by_hand():
    p = copies2()
    assert total_correlation(p).item() == pytest.approx(LN2, abs=1e-12)
    assert dual_total_correlation(p).item() == pytest.approx(LN2, abs=1e-12)
    assert joint_entropy(p).item() == pytest.approx(LN2, abs=1e-12)
    assert mutual_information(p, [0], [1]).item() == pytest.approx(LN2, abs=1e-12)
    assert sum_mutual_information(p).item() == pytest.approx(2 * LN2, abs=1e-12)
    # M = sup p / (p_1 p_2) = 0.5 / 0.25.
    assert max_ratio(p, product_of_marginals(p)).item() == pytest.approx(2.0)


def test_xor_of_three_bits_by_hand():
    p = xor3()
    assert total_correlation(p).item() == pytest.approx(LN2, abs=1e-12)
    assert dual_total_correlation(p).item() == pytest.approx(2 * LN2, abs=1e-12)
    assert mutual_information(p, [0], [1]).item() == 0.0
    assert mutual_information(p, [0], [1], [2]).item() == pytest.approx(LN2, abs=1e-12)
    assert conditional_entropy(p, [2], [0, 1]).item() == 0.0
    assert conditional_entropy(p, [2], [0]).item() == pytest.approx(LN2, abs=1e-12)


def test_independent_positions_have_no_correlation():
    p = table([0.2, 0.8]).view(2, 1) + table([0.1, 0.3, 0.6]).view(1, 3)
    assert total_correlation(p).item() == pytest.approx(0.0, abs=1e-14)
    assert dual_total_correlation(p).item() == pytest.approx(0.0, abs=1e-14)
    assert torch.allclose(product_of_marginals(p), p, atol=1e-14)


def test_reverse_tc_is_infinite_under_support_mismatch_and_never_nan():
    fwd, rev = conditional_total_correlation(copies2(), [0, 1])
    assert fwd.item() == pytest.approx(LN2)
    assert rev.item() == math.inf
    # Given x_0 = 1 only x_1 = 1 is possible: a single position has no correlation.
    fwd, rev = conditional_total_correlation(xor3(), [1, 2], {0: 1})
    assert fwd.item() == pytest.approx(LN2)
    assert rev.item() == math.inf


def test_conditional_tc_at_an_impossible_context_is_zero():
    p = table([[[0.5, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.5]]])
    fwd, rev = conditional_total_correlation_table(p, [1, 2], [0])
    assert fwd.tolist() == [0.0, 0.0] and rev.tolist() == [0.0, 0.0]
    fwd, rev = conditional_total_correlation(p, [0, 2], {1: 1})
    assert fwd.item() == 0.0 and not torch.isnan(rev)


def test_factorized_decoder_of_copies():
    q = factorized_decoder_log_probs(copies2(), [[0, 1]]).exp()
    assert torch.allclose(q, torch.full((2, 2), 0.25, dtype=torch.float64))
    assert joint_kl_divergence(q.log(), copies2()).item() == math.inf
    assert joint_kl_divergence(copies2(), q.log()).item() == pytest.approx(LN2)


def test_information_curve_of_xor_and_its_sum():
    # Z_1 = 0, Z_2 = I(X_i; X_j) = 0, Z_3 = I(X_i; X_jk) = log 2 = TC.
    curve = information_curve(xor3())
    assert torch.allclose(curve, torch.tensor([0.0, 0.0, LN2], dtype=torch.float64))


# -- brute force -----------------------------------------------------------------------


@pytest.mark.parametrize("shape, seed, rate", CASES)
def test_entropies_and_mutual_information_match_brute_force(shape, seed, rate):
    log_p = random_table(shape, seed, rate)
    p = as_dict(log_p)
    T = len(shape)
    h = subset_entropies(log_p)
    for mask in range(1 << T):
        keep = [i for i in range(T) if mask >> i & 1]
        assert h[mask].item() == pytest.approx(brute_h(p, keep), abs=1e-12)
        assert joint_entropy(log_p, keep).item() == pytest.approx(
            brute_h(p, keep), abs=1e-12
        )
    for a, b in itertools.permutations(range(T), 2):
        rest = [i for i in range(T) if i not in (a, b)]
        expected = (
            brute_h(p, [a] + rest)
            + brute_h(p, [b] + rest)
            - brute_h(p, range(T))
            - brute_h(p, rest)
        )
        got = mutual_information(log_p, [a], [b], rest).item()
        assert got == pytest.approx(max(expected, 0.0), abs=1e-12)


@pytest.mark.parametrize("shape, seed, rate", CASES)
def test_tc_dtc_and_sum_of_mi_match_brute_force(shape, seed, rate):
    log_p = random_table(shape, seed, rate)
    p = as_dict(log_p)
    T = len(shape)
    every = list(range(T))
    h_all = brute_h(p, every)
    tc = sum(brute_h(p, [i]) for i in every) - h_all
    leave_one_out = [h_all - brute_h(p, [j for j in every if j != i]) for i in every]
    dtc = h_all - sum(leave_one_out)
    mi = sum(
        brute_h(p, [i]) + brute_h(p, [j for j in every if j != i]) - h_all
        for i in every
    )
    assert total_correlation(log_p).item() == pytest.approx(tc, abs=1e-12)
    assert dual_total_correlation(log_p).item() == pytest.approx(max(dtc, 0), abs=1e-12)
    assert sum_mutual_information(log_p).item() == pytest.approx(mi, abs=1e-12)


@pytest.mark.parametrize("shape, seed, rate", CASES)
def test_product_of_marginals_and_max_ratio_match_brute_force(shape, seed, rate):
    log_p = random_table(shape, seed, rate)
    p = as_dict(log_p)
    T = len(shape)
    marginals = [brute_marginal(p, [i]) for i in range(T)]
    q = {x: math.prod(marginals[i][(x[i],)] for i in range(T)) for x in p}
    log_q = product_of_marginals(log_p)
    for x, w in q.items():
        assert log_q[x].exp().item() == pytest.approx(w, abs=1e-14)
    m = max(w / q[x] for x, w in p.items() if w > 0)
    assert max_ratio(log_p, log_q).item() == pytest.approx(m, rel=1e-12)
    assert joint_kl_divergence(log_p, log_q).item() == pytest.approx(
        brute_kl(p, q), abs=1e-12
    )
    assert joint_kl_divergence(log_q, log_p).item() == pytest.approx(
        brute_kl(q, p), abs=1e-12
    )


def brute_conditional_tc(p, shape, block, given):
    # {context: (forward, reverse)} straight from the definitions (Eq. 15, 17).
    out = {}
    for ctx in itertools.product(*[range(shape[i]) for i in given]):
        rows = {
            tuple(x[i] for i in block): w
            for x, w in p.items()
            if tuple(x[i] for i in given) == ctx
        }
        total = sum(rows.values())
        if total == 0:
            out[ctx] = (0.0, 0.0)
            continue
        cond = {k: w / total for k, w in rows.items()}
        margs = [brute_marginal(cond, [j]) for j in range(len(block))]
        prod = {
            k: math.prod(margs[j][(k[j],)] for j in range(len(block))) for k in cond
        }
        out[ctx] = (brute_kl(cond, prod), brute_kl(prod, cond))
    return out


@pytest.mark.parametrize("shape, seed, rate", CASES)
def test_conditional_tc_matches_brute_force(shape, seed, rate):
    log_p = random_table(shape, seed, rate)
    p = as_dict(log_p)
    T = len(shape)
    for size in range(1, T + 1):
        for block in itertools.combinations(range(T), size):
            given = [i for i in range(T) if i not in block][:2]
            expected = brute_conditional_tc(p, shape, list(block), given)
            fwd, rev = conditional_total_correlation_table(log_p, block, given)
            for ctx, (f, r) in expected.items():
                assert fwd[ctx].item() == pytest.approx(f, abs=1e-12)
                assert rev[ctx].item() == pytest.approx(r, abs=1e-12)
                single = conditional_total_correlation(
                    log_p, block, dict(zip(given, ctx, strict=True))
                )
                assert single[0].item() == pytest.approx(f, abs=1e-12)


def brute_decoder(p, shape, blocks):
    # q(x) = Π_m Π_{i∈B_m} p(x_i | x_P), uniform given an impossible prefix.
    T = len(shape)
    q = {}
    for x in configs(shape):
        prob, prefix = 1.0, []
        for block in blocks:
            ctx = tuple(x[j] for j in prefix)
            z = sum(w for y, w in p.items() if tuple(y[j] for j in prefix) == ctx)
            for i in block:
                if z == 0:
                    prob *= 1 / shape[i]
                    continue
                num = sum(
                    w
                    for y, w in p.items()
                    if tuple(y[j] for j in prefix) == ctx and y[i] == x[i]
                )
                prob *= num / z
            prefix = prefix + list(block)
        q[x] = prob
    assert abs(sum(q.values()) - 1) < 1e-12 and len(q) == math.prod(shape)
    assert T == len(shape)
    return q


@pytest.mark.parametrize("shape, seed, rate", CASES)
def test_factorized_decoder_matches_brute_force(shape, seed, rate):
    log_p = random_table(shape, seed, rate)
    p = as_dict(log_p)
    T = len(shape)
    order = list(range(T))[::-1]
    for blocks in (
        [order],
        [[i] for i in order],
        [order[: T // 2 + 1], order[T // 2 + 1 :]],
    ):
        blocks = [b for b in blocks if b]
        q = brute_decoder(p, shape, blocks)
        log_q = factorized_decoder_log_probs(log_p, blocks)
        for x, w in q.items():
            assert log_q[x].exp().item() == pytest.approx(w, abs=1e-14)


@pytest.mark.parametrize("shape, seed, rate", CASES)
def test_information_curve_matches_brute_force(shape, seed, rate):
    log_p = random_table(shape, seed, rate)
    p = as_dict(log_p)
    T = len(shape)
    curve = information_curve(log_p)
    for j in range(1, T + 1):
        terms = []
        for s in itertools.combinations(range(T), j - 1):
            for i in range(T):
                if i in s:
                    continue
                mi = brute_h(p, [i]) + brute_h(p, s) - brute_h(p, [i, *s])
                terms.append(mi)
        assert curve[j - 1].item() == pytest.approx(
            max(sum(terms) / len(terms), 0), abs=1e-12
        )
    assert curve.sum().item() == pytest.approx(
        total_correlation(log_p).item(), abs=1e-12
    )


def test_batch_axes_give_the_same_values_as_single_tables():
    tables = torch.stack([random_table((2, 3, 2), seed, 0.3) for seed in range(4)])
    batch = tables.view(2, 2, 2, 3, 2)
    for fn in (joint_entropy, total_correlation, dual_total_correlation):
        out = fn(batch, length=3)
        assert out.shape == (2, 2)
        expected = torch.stack([fn(t) for t in tables]).view(2, 2)
        assert torch.allclose(out, expected, atol=1e-14)
    fwd, rev = conditional_total_correlation_table(batch, [1, 2], [0], length=3)
    assert fwd.shape == (2, 2, 2)
    expected = torch.stack(
        [conditional_total_correlation_table(t, [1, 2], [0])[0] for t in tables]
    )
    assert torch.allclose(fwd, expected.view(2, 2, 2), atol=1e-14)
    q = factorized_decoder_log_probs(batch, [[2], [0, 1]], length=3)
    assert torch.allclose(
        q[1, 0], factorized_decoder_log_probs(tables[2], [[2], [0, 1]]), atol=1e-14
    )
    m = log_max_ratio(batch, product_of_marginals(batch, length=3), length=3)
    assert m.shape == (2, 2)


def test_marginal_keeps_positions_in_increasing_order():
    log_p = random_table((2, 3, 2), 0)
    m = marginal(log_p, [2, 1])
    assert m.shape == (3, 2)
    assert marginal(log_p, [1], keepdim=True).shape == (1, 3, 1)


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: joint_entropy(torch.zeros(2, 2)),
            ValueError,
            "normalized joint table",
        ),
        (
            lambda: joint_entropy(torch.tensor([float("nan"), 0.0])),
            ValueError,
            "NaN or \\+inf",
        ),
        (lambda: joint_entropy(copies2(), length=3), ValueError, "length=3"),
        (lambda: joint_entropy([0.0]), TypeError, "expected a torch.Tensor"),
        (lambda: joint_entropy(copies2(), [0, 0]), ValueError, "distinct positions"),
        (lambda: joint_entropy(copies2(), [2]), ValueError, "positions=\\[2\\]"),
        (
            lambda: conditional_total_correlation_table(copies2(), [0], [0]),
            ValueError,
            "disjoint",
        ),
        (
            lambda: conditional_total_correlation_table(copies2(), [], [0]),
            ValueError,
            "at least one position",
        ),
        (
            lambda: conditional_total_correlation(copies2(), [0], {1: 2}),
            ValueError,
            "context\\[1\\]=2",
        ),
        (
            lambda: factorized_decoder_log_probs(copies2(), [[0]]),
            ValueError,
            "ordered partition",
        ),
        (
            lambda: factorized_decoder_log_probs(copies2(), [[0], [], [1]]),
            ValueError,
            "non-empty blocks",
        ),
        (
            lambda: check_joint_table(copies2(), 0),
            ValueError,
            "length=0",
        ),
        (
            lambda: subset_entropies(torch.full((2,) * 17, -17 * math.log(2))),
            ValueError,
            "at most 16 positions",
        ),
        (
            lambda: factorized_decoder_log_probs(copies2(), [0, 1]),
            TypeError,
            "sequence of sequences",
        ),
        (
            lambda: conditional_total_correlation(copies2(), [0], {1: -1}),
            ValueError,
            "context\\[1\\]=-1",
        ),
    ],
)
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()

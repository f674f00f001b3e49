"""Decoders against values computed by hand and by brute-force enumeration."""

import math

import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from pmdm.decoding.decoder import Decoder, Remask
from pmdm.decoding.exact import output_distribution
from pmdm.decoding.orders import GraphOrder
from pmdm.decoding.samplers import Rejection
from pmdm.decoding.schedules import (
    EntropyBudget,
    FactorSchedule,
    FixedSize,
    StepsSchedule,
    ThresholdSchedule,
)
from pmdm.metrics.decoding import exact_decoder_measures, monte_carlo_decoder_measures
from pmdm.models.block_hmm import BlockHMM
from pmdm.models.hmm import TokenHMM
from pmdm.models.table import TableTarget
from pmdm.predictors.noisy import NoisyPredictor
from pmdm.predictors.oracle import OraclePredictor

LN2 = math.log(2)


def abab():
    """{ABAB, BABA} at 1/2 each (A = 0, B = 1)."""
    return TableTarget(
        2,
        torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0]]),
        torch.tensor([0.5, 0.5], dtype=torch.float64),
    )


def ab_ba():
    return TableTarget(
        2, torch.tensor([[0, 1], [1, 0]]), torch.tensor([0.5, 0.5], dtype=torch.float64)
    )


def measures(target, decoder, predictor=None):
    return {
        k: v.estimate
        for k, v in exact_decoder_measures(target, decoder, predictor).items()
    }


def test_abab_all_four_tokens_in_one_factorized_step():
    # q is uniform over 16 sequences: 14 of them impossible, and KL(p ‖ q) =
    # log(1/2 / (1/16)) = 3 ln 2.
    out = measures(abab(), Decoder("l2r", FixedSize(4)))
    assert out["incoherence"] == pytest.approx(7 / 8, abs=1e-12)
    assert out["forward_kl"] == pytest.approx(3 * LN2, abs=1e-12)
    assert out["reverse_kl"] == math.inf
    assert out["nfe"] == 1 and out["steps"] == 1


def test_abab_two_tokens_per_step_left_to_right():
    # Step 1 draws x1, x2 independently (uniform over 4, half impossible); step 2 is
    # then determined. KL(p ‖ q) = log(1/2 / (1/4)) = ln 2.
    out = measures(abab(), Decoder("l2r", FixedSize(2)))
    assert out["incoherence"] == pytest.approx(1 / 2, abs=1e-12)
    assert out["forward_kl"] == pytest.approx(LN2, abs=1e-12)
    assert out["nfe"] == 2


@pytest.mark.parametrize(
    "order",
    [
        "l2r",
        "r2l",
        "random",
        "entropy",
        "confidence",
        "margin",
        "sampled-confidence",
        (2, 0, 3, 1),
    ],
)
def test_abab_one_token_per_step_in_any_order_is_exact(order):
    out = measures(abab(), Decoder(order, FixedSize(1)))
    assert out["incoherence"] == pytest.approx(0, abs=1e-12)
    assert out["forward_kl"] == pytest.approx(0, abs=1e-12)
    assert out["reverse_kl"] == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("sampler", ["joint", "rejection"])
def test_abab_joint_and_rejection_samplers_are_exact_at_any_block_size(k, sampler):
    out = measures(abab(), Decoder("l2r", FixedSize(k), sampler))
    assert out["incoherence"] == pytest.approx(0, abs=1e-12)
    assert out["forward_kl"] == pytest.approx(0, abs=1e-12)
    assert out["reverse_kl"] == pytest.approx(0, abs=1e-12)


class FixedConfidences:
    """A predictor whose top probabilities are fixed per position: (0.5, 0.6, 0.7)."""

    vocab_size, mask_id = 2, 2

    def __init__(self):
        self.top = torch.tensor([0.5, 0.6, 0.7], dtype=torch.float64)

    def __call__(self, tokens):
        probs = torch.stack([self.top, 1 - self.top], -1)
        return probs.log().expand(tokens.shape + (2,))


def test_threshold_below_every_confidence_reveals_one_token_per_step():
    predictor = FixedConfidences()
    decoder = Decoder("confidence", ThresholdSchedule(0.9), temperature=0)
    out = decoder.decode(predictor, num_sequences=1, length=3)
    traj = out.trajectory
    assert traj.steps.item() == 3 and traj.nfe.item() == 3
    # Most confident first: position 2, then 1, then 0.
    assert traj.reveal_step[0].tolist() == [2, 1, 0]
    assert traj.kendall_tau().item() == pytest.approx(-1.0)


def test_rejection_on_ab_ba_needs_two_proposals_per_block_and_is_exact():
    # q uniform over 4 pairs, p = 1/2 on two: M = sup p/q = 2.
    target = ab_ba()
    decoder = Decoder("l2r", FixedSize(2), Rejection())
    exact = exact_decoder_measures(target, decoder)
    assert exact["proposals"].estimate == pytest.approx(2.0, abs=1e-12)
    assert exact["reverse_kl"].estimate == pytest.approx(0.0, abs=1e-12)
    gen = torch.Generator().manual_seed(3)
    out = decoder.decode(
        OraclePredictor(target), num_sequences=20_000, length=2, generator=gen
    )
    props = out.trajectory.proposals.double()
    # Geometric(1/2): mean 2, standard deviation sqrt(2).
    assert abs(props.mean().item() - 2.0) < 4 * math.sqrt(2) / math.sqrt(20_000)
    assert torch.isfinite(target.log_prob(out.tokens)).all()


def test_rejection_gives_up_with_a_clear_error():
    decoder = Decoder("l2r", FixedSize(4), Rejection(max_tries=1))
    with pytest.raises(RuntimeError, match=r"max_tries=1 proposals were not enough"):
        decoder.decode(
            OraclePredictor(abab()),
            num_sequences=200,
            length=4,
            generator=torch.Generator().manual_seed(0),
        )


def hmm_target(length=6, V=2, K=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    init = torch.rand(K, generator=gen, dtype=torch.float64) + 0.2
    trans = torch.rand(K, K, generator=gen, dtype=torch.float64) ** 3 + 0.05
    emit = torch.rand(K, V, generator=gen, dtype=torch.float64) ** 2 + 0.05
    return TokenHMM(
        init / init.sum(),
        trans / trans.sum(-1, keepdim=True),
        emit / emit.sum(-1, keepdim=True),
        length,
    )


DECODERS = [
    Decoder("l2r"),
    Decoder("entropy", FixedSize(2)),
    Decoder("margin", FixedSize(3), "joint"),
    Decoder("random", FixedSize(2)),
    Decoder("sampled-confidence", StepsSchedule(4, 3)),
    Decoder("confidence", ThresholdSchedule(0.7)),
    Decoder("l2r", FactorSchedule(1.0)),
    Decoder("entropy", EntropyBudget(0.4)),
    Decoder("r2l", FixedSize(2), "rejection"),
    Decoder("confidence", FixedSize(2), remask=Remask(rounds=2, count=2)),
    Decoder("l2r", FixedSize(3), temperature=0.5),
]


def random_table(length, seed, V=2):
    """A random joint over V^length with about a third of the sequences impossible."""
    gen = torch.Generator().manual_seed(seed)
    probs = torch.rand((V,) * length, generator=gen, dtype=torch.float64)
    probs = torch.where(probs < 0.33, 0.0, probs)
    return TableTarget.from_dense(probs / probs.sum())


TARGETS = [
    hmm_target(),
    BlockHMM(num_states=2, block_size=3, length=6, eta=0.05),
    random_table(length=6, seed=3),
]


def brute_frequencies(tokens, V, T):
    weights = V ** torch.arange(T - 1, -1, -1)
    index = (tokens * weights).sum(-1)
    return torch.bincount(index, minlength=V**T).double() / tokens.shape[0]


@pytest.mark.parametrize("target", TARGETS, ids=["hmm", "block-hmm", "table"])
@pytest.mark.parametrize(
    "decoder",
    DECODERS,
    ids=lambda d: f"{d.order.name}-{d.schedule.name}-{d.sampler.name}",
)
def test_monte_carlo_agrees_with_enumeration(target, decoder):
    predictor = OraclePredictor(target)
    exact = exact_decoder_measures(target, decoder, predictor, tau=1e-3)
    n = 3000
    mc = monte_carlo_decoder_measures(
        target,
        decoder,
        n,
        predictor,
        tau=1e-3,
        generator=torch.Generator().manual_seed(5),
    )
    for name, value in mc.items():
        if value is None:
            assert not decoder.replayable and name in ("forward_kl", "reverse_kl")
            continue
        ref = exact[name].estimate
        if math.isinf(ref):
            # Infinite exactly: Monte Carlo finds the impossible sample or, rarely,
            # misses it; it never reports a finite value far from the truth.
            assert value.estimate == ref or math.isfinite(value.estimate)
            continue
        assert abs(value.estimate - ref) <= 4.5 * value.stderr + 1e-6, (
            name,
            value,
            ref,
        )
    # The distribution itself: frequencies within 5 standard errors of q.
    q = output_distribution(decoder, predictor, target.length).log_q.exp()
    out = decoder.decode(
        predictor,
        num_sequences=n,
        length=target.length,
        generator=torch.Generator().manual_seed(6),
    )
    freq = brute_frequencies(out.tokens, target.vocab_size, target.length)
    # Binomial standard errors, floored at 1/n for cells rarer than one sample.
    stderr = (q.clamp(min=1 / n) * (1 - q) / n).sqrt()
    assert ((freq - q).abs() <= 5 * stderr).all()
    assert q.sum().item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "decoder",
    # (StepsSchedule(4, 3) needs a multiple of 3 positions; this target has 5.)
    [d for d in DECODERS if d.replayable and not isinstance(d.schedule, StepsSchedule)],
    ids=lambda d: f"{d.order.name}-{d.schedule.name}",
)
def test_replayed_log_q_equals_enumerated_q(decoder):
    target = hmm_target(length=5, V=3, K=2, seed=2)
    predictor = OraclePredictor(target)
    q = output_distribution(decoder, predictor, target.length).log_q
    replayed = decoder.log_prob(predictor, target.enumerate_sequences())
    assert torch.allclose(replayed.exp(), q.exp(), atol=1e-12)


def test_trace_enum_elbo_of_a_decoder_guide_is_its_reverse_kl():
    target = hmm_target(length=6, V=2, K=3, seed=4)
    decoder = Decoder("entropy", FixedSize(2))
    exact = exact_decoder_measures(target, decoder)["reverse_kl"].estimate
    guide = decoder.guide(target, generator=torch.Generator().manual_seed(0))
    elbo = TraceEnum_ELBO(max_plate_nesting=1, num_particles=1)
    n = 20_000
    loss = elbo.loss(target.model, guide, num_sequences=n) / n
    log_ratio = guide.last_result.trajectory.log_q_path - target.log_prob(
        guide.last_result.tokens
    )
    stderr = log_ratio.std().item() / math.sqrt(n)
    assert abs(loss - exact) <= 4.5 * stderr


def test_one_token_per_step_with_an_oracle_is_exact_in_every_order():
    # Sec. 3 of the paper: perfect model, one token per step, q = p.
    target = hmm_target(length=6, V=3, K=2, seed=1)
    for order in ["l2r", "r2l", "random", "entropy", "confidence", "margin"]:
        out = measures(target, Decoder(order))
        assert out["reverse_kl"] == pytest.approx(0, abs=1e-10), order


def test_graph_order_on_a_visible_markov_chain_is_exact_in_few_steps():
    K, T = 3, 9
    trans = torch.full((K, K), 0.1, dtype=torch.float64).fill_diagonal_(0.8)
    chain = TokenHMM(
        torch.full((K,), 1 / K, dtype=torch.float64),
        trans,
        torch.eye(K, dtype=torch.float64),
        T,
    )
    out = measures(chain, Decoder(GraphOrder(chain)))
    assert out["reverse_kl"] == pytest.approx(0, abs=1e-10)
    assert out["forward_kl"] == pytest.approx(0, abs=1e-10)
    assert out["steps"] == pytest.approx(4) and T == 9


def test_trajectory_order_statistics_by_hand():
    target = hmm_target(length=4)
    l2r = Decoder("l2r", FixedSize(2)).decode(
        OraclePredictor(target), num_sequences=3, length=4
    )
    assert l2r.trajectory.reveal_step[0].tolist() == [0, 0, 1, 1]
    assert torch.allclose(
        l2r.trajectory.tokens_per_step(), torch.full((3,), 2.0, dtype=torch.float64)
    )
    # τ-b with ties: 4 concordant pairs, 2 tied, sqrt(4 * 6) in the denominator.
    assert l2r.trajectory.kendall_tau()[0].item() == pytest.approx(4 / math.sqrt(24))


def test_prompt_positions_are_kept_and_not_counted():
    target = hmm_target(length=5)
    start = torch.tensor([[1, 2, 0, 2, 2]])  # mask id is 2
    out = Decoder("entropy").decode(OraclePredictor(target), start)
    assert out.tokens[0, 0] == 1 and out.tokens[0, 2] == 0
    assert out.trajectory.reveal_step[0, 0] == -1 and out.trajectory.nfe.item() == 3


def test_noisy_predictor_decoders_run_and_stay_normalized():
    target = hmm_target(length=5)
    noisy = NoisyPredictor(OraclePredictor(target), level=1.0, seed=0)
    q = output_distribution(Decoder("entropy", FixedSize(2)), noisy, 5).log_q.exp()
    assert q.sum().item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: FixedSize(0), ValueError, r"tokens_per_step=0"),
        (lambda: StepsSchedule(0), ValueError, r"steps=0"),
        (lambda: ThresholdSchedule(1.5), ValueError, r"threshold=1.5"),
        (lambda: EntropyBudget(-1), ValueError, r"gamma=-1"),
        (lambda: Decoder("sideways"), ValueError, r"order='sideways'"),
        (lambda: Decoder("l2r", sampler="magic"), ValueError, r"sampler='magic'"),
        (lambda: Decoder("l2r", temperature=-1), ValueError, r"temperature=-1"),
        (lambda: Decoder((0, 0, 1)), ValueError, r"permutation=\[0, 0, 1\]"),
        (lambda: Remask(rounds=-1), ValueError, r"rounds=-1"),
        (lambda: Decoder("l2r", schedule="fixed"), TypeError, r"schedule='fixed'"),
    ],
)
def test_bad_configurations_are_refused(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_invalid_schedule_combinations_are_refused_at_decode():
    predictor = OraclePredictor(hmm_target(length=6))
    with pytest.raises(
        ValueError, match=r"block_length=4: expected a divisor of the 6"
    ):
        Decoder("l2r", StepsSchedule(3, 4)).decode(predictor, num_sequences=1, length=6)
    with pytest.raises(ValueError, match=r"steps=3: expected a multiple of the number"):
        Decoder("l2r", StepsSchedule(3, 3)).decode(predictor, num_sequences=1, length=6)
    with pytest.raises(ValueError, match=r"block_length=8"):
        Decoder("l2r", StepsSchedule(1, 8)).decode(predictor, num_sequences=1, length=6)
    with pytest.raises(ValueError, match=r"log q\(x\) has no single path"):
        Decoder("random").log_prob(predictor, torch.zeros(1, 6, dtype=torch.long))


def test_more_steps_than_tokens_never_loops_or_leaves_masks():
    predictor = OraclePredictor(hmm_target(length=4))
    out = Decoder("l2r", StepsSchedule(8)).decode(predictor, num_sequences=2, length=4)
    assert (out.tokens != predictor.mask_id).all()
    assert out.trajectory.nfe.tolist() == [4, 4]


def test_steps_schedule_splits_like_llada():
    # 7 masked positions, 3 steps: 3, 2, 2 tokens (earliest steps take the remainder).
    predictor = OraclePredictor(hmm_target(length=7))
    out = Decoder("l2r", StepsSchedule(3)).decode(predictor, num_sequences=1, length=7)
    counts = torch.bincount(out.trajectory.reveal_step[0]).tolist()
    assert counts == [3, 2, 2]
    # Two blocks of 4 with 4 steps: 2 steps per block, 2 tokens each.
    out = Decoder("r2l", StepsSchedule(4, 4)).decode(
        OraclePredictor(hmm_target(length=8)), num_sequences=1, length=8
    )
    assert out.trajectory.reveal_step[0].tolist() == [1, 1, 0, 0, 3, 3, 2, 2]


def test_same_generator_seed_same_tokens():
    predictor = OraclePredictor(hmm_target(length=6))
    runs = [
        Decoder("random", FixedSize(2))
        .decode(
            predictor,
            num_sequences=50,
            length=6,
            generator=torch.Generator().manual_seed(9),
        )
        .tokens
        for _ in range(2)
    ]
    assert torch.equal(*runs)

"""The statement registry, the comparison of sides, and ``check``."""

import json
import math

import pytest
import torch

from pmdm.metrics.estimate import Estimate
from pmdm.theory import (
    Assumption,
    Source,
    Statement,
    get,
    names,
    register,
    statements,
)
from pmdm.theory.check import check
from pmdm.theory.instances import (
    BlockedTable,
    ConditionalTable,
    JointTable,
    MarkovInstance,
    ScheduleInstance,
    SimulationInstance,
    ThresholdInstance,
)

EXPECTED = {
    "regime-one-token-per-step",
    "regime-conditional-independence",
    "forward-decomposition",
    "reverse-decomposition",
    "lemma-c1",
    "lemma-c1-forward",
    "corollary-c2",
    "lemma-c3",
    "proposition-5.1",
    "proposition-5.1-rejection",
    "dtc-identity",
    "parallelbench",
    "fast-dllm-greedy",
    "eb-sampler",
    "li-cai",
    "chen-cong-li-schedule",
    "chen-cong-li-schedule-shifted",
    "lemma-4.1",
    "eq-11",
    "eq-11-printed",
    "eq-11-intermediate-sum",
    "regime-one-token-per-step-decoder",
    "regime-one-token-per-step-sampled-confidence",
    "regime-conditional-independence-decoder",
    "proposition-c5",
    "proposition-c5-first-round",
    "fast-dllm-decoder",
    "eb-sampler-decoder",
}


def test_every_statement_is_registered_with_its_metadata():
    assert set(names()) == EXPECTED
    for statement in statements():
        assert statement.kind in ("identity", "inequality", "claimed-form")
        assert statement.relation in ("==", "<=", ">=")
        assert statement.source.arxiv and statement.source.where
        assert statement.summary and statement.__doc__
        assert "References" in statement.__doc__
        assert get(statement.name) is statement


def test_get_names_the_registered_statements():
    with pytest.raises(ValueError, match="name='nope': expected a registered"):
        get("nope")


class _Dummy(Statement):
    name = "dtc-identity"
    source = Source("A", 2000, "0000.00000", "Eq. 1")
    kind = "identity"
    relation = "=="
    summary = "dummy"

    def evaluate(self, instance):
        return instance, 0.0

    def generate(self, generator):
        return 0.0


def test_register_refuses_duplicates_and_unknown_kinds():
    with pytest.raises(ValueError, match="already registered"):
        register(_Dummy)
    bad = type("Bad", (_Dummy,), {"name": "bad", "kind": "theorem"})
    with pytest.raises(ValueError, match="kind='theorem'"):
        register(bad)
    bad = type("Bad", (_Dummy,), {"name": "bad", "relation": "<"})
    with pytest.raises(ValueError, match="relation='<'"):
        register(bad)
    assert "bad" not in names()


# -- comparisons -------------------------------------------------------------------


def make(kind, relation):
    return type("S", (_Dummy,), {"name": "s", "kind": kind, "relation": relation})()


def test_identity_margin_is_the_absolute_error_and_infinities_match():
    s = make("identity", "==")
    assert s.compare(1.0, 1.0 + 5e-10).ok
    assert not s.compare(1.0, 1.0 + 2e-9).ok
    assert s.compare(1.0, 3.0).margin == 2.0
    assert s.compare(math.inf, math.inf) == s.compare(0.0, 0.0)
    assert s.compare(math.inf, math.inf).margin == 0.0
    assert not s.compare(5.0, math.inf).ok
    # The tolerance scales with |rhs|: 1e-9 relative for large values.
    assert s.compare(1e6, 1e6 + 1e-4).ok


def test_monte_carlo_identity_uses_the_standard_error():
    s = make("identity", "==")
    near = Estimate(2.1, 0.05, "monte-carlo", 100)
    assert s.compare(near, 2.0).ok and s.compare(near, 2.0).margin_kind == "z-score"
    assert s.compare(near, 2.0).margin == pytest.approx(2.0)
    far = Estimate(2.5, 0.05, "monte-carlo", 100)
    assert not s.compare(far, 2.0).ok
    exact_run = Estimate(1.0, 0.0, "monte-carlo", 50)
    assert s.compare(exact_run, 1.0).ok and not s.compare(exact_run, 1.5).ok


def test_inequality_margin_is_the_ratio_of_smaller_to_larger_side():
    le, ge = make("inequality", "<="), make("inequality", ">=")
    assert le.compare(1.0, 4.0).margin == 0.25 and le.compare(1.0, 4.0).ok
    assert ge.compare(4.0, 1.0).ok and not ge.compare(1.0, 4.0).ok
    assert not le.compare(4.0, 1.0).ok
    assert le.compare(0.0, 0.0).margin == 1.0 and le.compare(0.0, 0.0).degenerate
    assert not le.compare(1.0, 1.0).degenerate
    assert le.compare(2.0, math.inf).margin == 0.0 and le.compare(2.0, math.inf).ok
    assert le.compare(math.inf, math.inf).ok and not le.compare(math.inf, 3.0).ok
    with pytest.raises(ValueError, match="non-negative sides"):
        le.compare(-1.0, 2.0)


# -- check -------------------------------------------------------------------------


class _Le(_Dummy):
    name = "le"
    kind = "claimed-form"
    relation = "<="
    assumptions = (Assumption("positive", lambda inst: inst.size()[0] > 0),)

    def evaluate(self, instance):
        return instance.lhs, instance.rhs


class _Pair:
    def __init__(self, lhs, rhs, size):
        self.lhs, self.rhs, self._size = lhs, rhs, size

    def size(self):
        return (self._size,)

    def to_dict(self):
        return {"lhs": self.lhs, "size": self._size}


def test_check_reports_the_smallest_counterexample_and_skips():
    cases = [_Pair(1, 2, 3), _Pair(5, 1, 4), _Pair(3, 2, 2), _Pair(9, 1, 0)]
    result = check(_Le(), cases)
    assert (result.verdict, result.examples, result.skipped) == ("fails", 3, 1)
    assert result.counterexample["instance"] == {"lhs": 3, "size": 2}
    assert result.counterexample["lhs"] == 3.0
    assert result.margin == pytest.approx(2 / 3)
    json.dumps(result.to_dict(), allow_nan=False)


def test_degenerate_examples_stay_out_of_the_margin():
    result = check(_Le(), [_Pair(0, 0, 1), _Pair(1, 4, 1), _Pair(0, 0, 2)])
    assert (result.margin, result.degenerate) == (0.25, 2)
    assert check(_Le(), [_Pair(0, 0, 1)]).margin == 1.0


def test_check_without_valid_examples_is_untested():
    result = check(_Le(), [_Pair(1, 2, 0)])
    assert result.verdict == "untested" and result.margin is None


def test_check_accepts_a_name():
    p = JointTable.from_probs(torch.tensor([0.25, 0.75]))
    assert check("dtc-identity", [p]).examples == 1


# -- generators ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_generators_are_seeded_and_mostly_meet_the_assumptions(name):
    statement = get(name)
    draws = []
    for seed in (0, 0, 1):
        gen = torch.Generator().manual_seed(seed)
        draws.append([statement.generate(gen) for _ in range(12)])
    assert [d.to_dict() for d in draws[0]] == [d.to_dict() for d in draws[1]]
    valid = sum(not statement.failed_assumptions(inst) for inst in draws[2])
    assert valid >= 6
    for inst in draws[2]:
        json.dumps(inst.to_dict(), allow_nan=False)


# -- instance validation -------------------------------------------------------------


LOG_HALF = torch.tensor([0.5, 0.5], dtype=torch.float64).log()


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: JointTable(torch.zeros(2)), ValueError, "normalized"),
        (lambda: BlockedTable(LOG_HALF, ((0,), (0,))), ValueError, "ordered partition"),
        (
            lambda: MarkovInstance(LOG_HALF, torch.zeros(1), 0.1),
            ValueError,
            "log_q: expected the shape",
        ),
        (lambda: MarkovInstance(LOG_HALF, LOG_HALF, 1.0), ValueError, "eps=1.0"),
        (lambda: SimulationInstance(LOG_HALF, 1, 0), ValueError, "num_runs=1"),
        (lambda: ThresholdInstance(LOG_HALF, -1.0), ValueError, "threshold=-1.0"),
        (lambda: ThresholdInstance(LOG_HALF, math.inf), ValueError, "finite"),
        (lambda: ScheduleInstance(LOG_HALF, (2,)), ValueError, "summing to the length"),
        (lambda: ScheduleInstance(LOG_HALF, (0, 1)), ValueError, "sizes\\[\\]=0"),
        (
            lambda: ConditionalTable(LOG_HALF, torch.zeros(3, 2), torch.zeros(3, 1, 2)),
            ValueError,
            "log_cond: expected shape \\(2, V",
        ),
        (
            lambda: ConditionalTable(
                LOG_HALF, LOG_HALF.expand(2, 2), LOG_HALF.expand(2, 2, 2)
            ),
            ValueError,
            "log_model: expected shape \\(2, 1, 2\\)",
        ),
    ],
)
def test_instances_validate_their_fields(build, error, match):
    with pytest.raises(error, match=match):
        build()

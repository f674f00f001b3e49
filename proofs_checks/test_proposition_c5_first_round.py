"""Prop. C.5 with C.4 read as "the first round reaches an impossible sequence": later
lowest-confidence rounds can repair every impossible sequence."""

import math

import torch

from pmdm.models.table import TableTarget
from pmdm.theory import get
from pmdm.theory.check import check
from pmdm.theory.decoder_instances import DecoderInstance, DecoderSpec

STATEMENT = get("proposition-c5-first-round")

#: The docstring's three bits (rounded weights; the zeros are what matters).
PROBS = {(0, 0, 0): 0.467, (0, 1, 1): 0.145, (1, 1, 0): 0.171, (1, 1, 1): 0.217}


def counterexample(rounds=2):
    p = torch.zeros(2, 2, 2, dtype=torch.float64)
    for x, v in PROBS.items():
        p[x] = v
    spec = DecoderSpec("l2r", "fixed", 2, "factorized", 1.0, rounds, 1)
    return DecoderInstance(TableTarget.from_dense(p / p.sum()), spec)


def test_one_round_reaches_impossible_two_rounds_repair_everything():
    instance = counterexample()
    assert math.isinf(instance.reverse_kl(remask_rounds=1))
    assert math.isfinite(instance.reverse_kl())
    assert STATEMENT.failed_assumptions(instance) == []
    assert check(STATEMENT, [instance]).verdict == "fails"


def test_without_remasking_the_factorized_pass_is_already_incoherent():
    assert math.isinf(counterexample().reverse_kl(remask_rounds=0))


def test_the_uniform_statement_does_not_apply_here():
    # One remasked position given a possible rest is always repaired: the uniform
    # Assumption C.4 of proposition-c5 fails, as it must.
    assert "C.4-from-every-state" in get("proposition-c5").failed_assumptions(
        counterexample()
    )

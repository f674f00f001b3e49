"""Targets, decoders and predictors from TOML files (``pmdm evaluate``).

Target files::

    kind = "table"                     # or "hmm", "block-hmm"
    vocab_size = 2
    sequences = [[0, 1, 0, 1], [1, 0, 1, 0]]
    probs = [0.5, 0.5]

    kind = "hmm"                       # length, init (K), trans (K×K), emit (K×V)
    length = 8
    init = [0.5, 0.5]
    trans = [[0.9, 0.1], [0.1, 0.9]]
    emit = [[0.9, 0.1], [0.2, 0.8]]

    kind = "block-hmm"                 # the Block-HMM's parameters (paper defaults)
    num_states = 2
    stay = 0.9
    rho = [0.9, 0.1]
    block_size = 4
    length = 12
    eta = 1e-3

Decoder files::

    order = "entropy"                  # l2r, r2l, random, entropy, confidence, margin,
                                       # sampled-confidence, graph, or a permutation list
    sampler = "factorized"             # factorized, joint, rejection
    temperature = 1.0
    [schedule]
    kind = "fixed"                     # fixed, steps, threshold, factor, entropy-budget
    tokens_per_step = 2                # fixed: tokens_per_step; steps: steps, block_length;
                                       # threshold: threshold; factor: factor;
                                       # entropy-budget: gamma
    [remask]                           # optional
    rounds = 1
    count = 2
    [predictor]                        # optional; default the oracle
    kind = "noisy"                     # oracle or noisy
    level = 0.5
    seed = 0
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from pmdm.decoding.decoder import Decoder, Remask
from pmdm.decoding.samplers import Rejection
from pmdm.decoding.schedules import (
    EntropyBudget,
    FactorSchedule,
    FixedSize,
    StepsSchedule,
    ThresholdSchedule,
)
from pmdm.models.base import Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def load_toml(path: str | Path) -> dict:
    """Read a TOML file, with the file named in any error."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None


def _take(config: dict, where: str, allowed: set[str]) -> dict:
    unknown = set(config) - allowed
    if unknown:
        raise ValueError(
            f"{where}: unknown keys {sorted(unknown)}; expected some of {sorted(allowed)}"
        )
    return config


def _need(config: dict, key: str, where: str):
    if key not in config:
        raise ValueError(f"{where}: missing key {key!r}")
    return config[key]


def _tensor(config: dict, key: str, where: str, dtype=None) -> torch.Tensor:
    value = _need(config, key, where)
    try:
        return torch.tensor(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{where}: {key}={value!r} is not a rectangular array of numbers ({error})"
        ) from None


def target_from_config(config: dict) -> Target:
    """Build a target from a parsed target file (see the module docstring)."""
    config = dict(config)
    kind = config.pop("kind", None)
    where = f"target kind={kind!r}"
    if kind == "table":
        from pmdm.models.table import TableTarget

        _take(config, where, {"vocab_size", "sequences", "probs"})
        return TableTarget(
            _need(config, "vocab_size", where),
            _tensor(config, "sequences", where),
            _tensor(config, "probs", where, torch.float64),
        )
    if kind == "hmm":
        from pmdm.models.hmm import TokenHMM

        _take(config, where, {"init", "trans", "emit", "length"})
        return TokenHMM(
            _tensor(config, "init", where, torch.float64),
            _tensor(config, "trans", where, torch.float64),
            _tensor(config, "emit", where, torch.float64),
            _need(config, "length", where),
        )
    if kind == "block-hmm":
        from pmdm.models.block_hmm import BlockHMM

        keys = {"num_states", "stay", "rho", "block_size", "length", "eta"}
        return BlockHMM(**_take(config, where, keys))
    raise ValueError(f"target kind={kind!r}: expected 'table', 'hmm' or 'block-hmm'")


_SCHEDULES = {
    "fixed": (FixedSize, {"tokens_per_step"}),
    "steps": (StepsSchedule, {"steps", "block_length"}),
    "threshold": (ThresholdSchedule, {"threshold"}),
    "factor": (FactorSchedule, {"factor"}),
    "entropy-budget": (EntropyBudget, {"gamma"}),
}


def decoder_from_config(config: dict, target: Target | None = None) -> Decoder:
    """Build a decoder from a parsed decoder file (see the module docstring).

    ``target`` is needed for the ``graph`` order (its dependency graph).
    """
    config = dict(config)
    _take(
        config,
        "decoder",
        {
            "order",
            "schedule",
            "sampler",
            "temperature",
            "remask",
            "predictor",
            "max_tries",
        },
    )
    schedule_config = dict(config.get("schedule", {"kind": "fixed"}))
    kind = schedule_config.pop("kind", None)
    if kind not in _SCHEDULES:
        raise ValueError(
            f"schedule kind={kind!r}: expected one of {sorted(_SCHEDULES)}"
        )
    cls, keys = _SCHEDULES[kind]
    schedule = cls(**_take(schedule_config, f"schedule kind={kind!r}", keys))
    order = config.get("order", "l2r")
    if order == "graph":
        from pmdm.decoding.orders import GraphOrder

        if target is None:
            raise ValueError("order='graph': needs the target's dependency graph")
        order = GraphOrder(target)
    sampler = config.get("sampler", "factorized")
    if sampler == "rejection" and "max_tries" in config:
        sampler = Rejection(max_tries=config["max_tries"])
    remask = config.get("remask")
    if remask is not None:
        remask = Remask(**_take(dict(remask), "remask", {"rounds", "count"}))
    return Decoder(
        order=order,
        schedule=schedule,
        sampler=sampler,
        temperature=config.get("temperature", 1.0),
        remask=remask,
    )


def predictor_from_config(config: dict, target: Target):
    """The predictor of a decoder file's ``[predictor]`` table (default: oracle)."""
    from pmdm.predictors.oracle import OraclePredictor

    config = dict(config.get("predictor", {"kind": "oracle"}))
    kind = config.pop("kind", "oracle")
    oracle = OraclePredictor(target)
    if kind == "oracle":
        _take(config, "predictor kind='oracle'", set())
        return oracle
    if kind == "noisy":
        from pmdm.predictors.noisy import NoisyPredictor

        _take(config, "predictor kind='noisy'", {"level", "seed", "support"})
        return NoisyPredictor(oracle, **config)
    raise ValueError(f"predictor kind={kind!r}: expected 'oracle' or 'noisy'")

"""``pmdm evaluate``: one decoder on one target, exactly or by Monte Carlo."""

from __future__ import annotations

from pathlib import Path

import pyro
import torch

from pmdm.metrics.blockwise import DEFAULT_TAU
from pmdm.metrics.decoding import exact_decoder_measures, monte_carlo_decoder_measures
from pmdm.models.base import MAX_ENUMERATION
from pmdm.ops.validation import check_int
from pmdm.studies.configs import (
    decoder_from_config,
    load_toml,
    predictor_from_config,
    target_from_config,
)
from pmdm.studies.runner import format_estimate, markdown_table

#: Measures in the order they are reported.
REPORTED = (
    "forward_kl",
    "reverse_kl",
    "cross_entropy",
    "incoherence",
    "block_incoherence",
    "nfe",
    "proposals",
)


def evaluate(
    target_path: str | Path,
    decoder_path: str | Path,
    *,
    exact: bool | None = None,
    n_sequences: int = 10_000,
    seed: int = 0,
    tau: float = DEFAULT_TAU,
) -> dict:
    """Measure the decoder of ``decoder_path`` on the target of ``target_path``.

    Parameters
    ----------
    exact : bool, optional
        Enumerate (True), Monte Carlo (False), or enumerate when ``V^T`` is at most
        :data:`~pmdm.models.base.MAX_ENUMERATION` (None).
    n_sequences : int
        Monte Carlo sample size.
    seed : int
        Fixes every number (target samples and the decoder's randomness).

    Returns
    -------
    dict
        ``{measure: {"estimate", "stderr"} or None}`` for the measures of
        :data:`REPORTED` that apply, ``exact``, ``n_sequences``, ``seed`` and, where
        a Monte Carlo KL is unavailable, ``note``.
    """
    seed = check_int("seed", seed, minimum=0)
    target = target_from_config(load_toml(target_path))
    decoder_config = load_toml(decoder_path)
    decoder = decoder_from_config(decoder_config, target)
    predictor = predictor_from_config(decoder_config, target)
    if exact is None:
        exact = target.vocab_size**target.length <= MAX_ENUMERATION
    pyro.set_rng_seed(seed)
    if exact:
        measures = exact_decoder_measures(target, decoder, predictor, tau)
    else:
        n_sequences = check_int("n_sequences", n_sequences, minimum=2)
        generator = torch.Generator().manual_seed(seed)
        measures = monte_carlo_decoder_measures(
            target, decoder, n_sequences, predictor, tau, generator
        )
    out: dict = {}
    for name in REPORTED:
        if name not in measures:
            continue
        value = measures[name]
        if value is None:
            out[name] = None
            continue
        out[name] = {
            "estimate": value.to_dict()["estimate"],
            "stderr": value.to_dict()["stderr"],
        }
    out["exact"] = bool(exact)
    out["n_sequences"] = None if exact else n_sequences
    out["seed"] = seed
    if any(measures.get(name) is None for name in ("forward_kl", "reverse_kl")):
        out["note"] = (
            "forward_kl and reverse_kl need log q(x): this decoder has no single path "
            "to replay (random order or remasking); use --exact on a small target"
        )
    return out


def evaluation_table(result: dict) -> str:
    """A Markdown table of an :func:`evaluate` result."""
    body = []
    for name in REPORTED:
        if name in result:
            value = result[name]
            body.append([name, "n/a" if value is None else format_estimate(value)])
    method = "exact" if result["exact"] else f"Monte Carlo, N={result['n_sequences']}"
    text = markdown_table(["measure", "value"], body)
    text += f"\n{method}; seed {result['seed']} fixes every number.\n"
    if "note" in result:
        text += f"Note: {result['note']}\n"
    return text

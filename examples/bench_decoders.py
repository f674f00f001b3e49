"""Benchmarks of the decoders (issue targets in parentheses).

1. The exact output distribution of an entropy-ordered, two-tokens-per-step decoder
   on a 12-token binary HMM (at most 2 s).
2. Decoding 10000 sequences of 64 tokens from the Block-HMM with an oracle, one token
   per step, in several orders (at most 20 s each).

Each figure is printed with its ratio to the target and to a same-run reference:
one batched predictor call on the same batch, times the number of calls made.

    python examples/bench_decoders.py [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch

from pmdm.decoding.decoder import Decoder
from pmdm.decoding.exact import output_distribution
from pmdm.decoding.schedules import FixedSize
from pmdm.models.block_hmm import BlockHMM
from pmdm.models.hmm import TokenHMM
from pmdm.predictors.oracle import OraclePredictor


def binary_hmm(length: int) -> TokenHMM:
    init = torch.tensor([0.5, 0.5], dtype=torch.float64)
    trans = torch.tensor([[0.85, 0.15], [0.2, 0.8]], dtype=torch.float64)
    emit = torch.tensor([[0.9, 0.1], [0.25, 0.75]], dtype=torch.float64)
    return TokenHMM(init, trans, emit, length)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--orders", nargs="+", default=["l2r", "entropy", "random"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads: {args.threads}; seeds fixed (generator seed 0)")

    target = binary_hmm(12)
    oracle = OraclePredictor(target)
    decoder = Decoder("entropy", FixedSize(2))
    seconds, dist = timed(lambda: output_distribution(decoder, oracle, 12))
    print(
        f"exact q, entropy order, 2 tokens/step, 12-token binary HMM: {seconds:.3f} s "
        f"(target 2 s, ratio {seconds / 2:.2f}); sum q = {dist.log_q.exp().sum():.12f}"
    )

    hmm = BlockHMM()
    oracle = OraclePredictor(hmm)
    n = 10_000
    tokens = torch.full((n, hmm.length), oracle.mask_id)
    tokens[:, ::2] = hmm.sample(n)[:, ::2]
    ref, _ = timed(lambda: oracle(tokens))
    for order in args.orders:
        gen = torch.Generator().manual_seed(0)
        seconds, out = timed(
            lambda order=order, gen=gen: Decoder(order).decode(
                oracle, num_sequences=n, length=hmm.length, generator=gen
            )
        )
        calls = int(out.trajectory.nfe[0])
        print(
            f"Block-HMM, {n} x {hmm.length} tokens, one per step, order {order}: "
            f"{seconds:.2f} s (target 20 s, ratio {seconds / 20:.2f}); reference "
            f"{calls} oracle calls x {ref:.3f} s = {calls * ref:.2f} s, ratio "
            f"{seconds / (calls * ref):.2f}"
        )


if __name__ == "__main__":
    main()

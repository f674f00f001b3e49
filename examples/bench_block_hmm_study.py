"""Benchmark: the default Block-HMM study (5 η × 2 decoders × 10000 sequences).

Target: at most 10 s on a 2-core machine. Prints the study's wall time, the ratio to
that target, and a same-run reference: the time to draw the study's target samples
alone (2 × 5 × 10000 sequences), the least work any such study does.

    python examples/bench_block_hmm_study.py [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pyro
import torch

from pmdm.studies.block_hmm import PAPER_ETAS, BlockHMMStudy, run_block_hmm_study

TARGET_SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    study = BlockHMMStudy()

    # Reference: target samples only, as many as the study draws.
    pyro.set_rng_seed(0)
    start = time.perf_counter()
    for eta in PAPER_ETAS:
        for _ in study.decoders:
            study.target(eta).sample(study.n_sequences)
    reference = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_block_hmm_study(study, out)
        elapsed = time.perf_counter() - start

    print(f"threads: {args.threads}; seed {study.seed} fixes every number")
    print(
        f"default Block-HMM study: {elapsed:.2f} s (target {TARGET_SECONDS:.0f} s, "
        f"ratio {elapsed / TARGET_SECONDS:.2f})"
    )
    print(
        f"reference (target sampling only): {reference:.2f} s; study / reference = "
        f"{elapsed / reference:.1f}"
    )


if __name__ == "__main__":
    main()

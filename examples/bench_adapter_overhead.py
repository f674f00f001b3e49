"""Benchmark: pmdm's decoding loop over a model against a bare loop of the same calls.

The adapter loop is LLaDA's sampler as a pmdm decoder (``llada_decoder``: the
sampled-confidence order, the steps schedule, the factorized sampler at temperature
0) over :class:`pmdm.adapters.HFPredictor`. The bare loop makes the same forward
passes on the same shapes and does nothing else but an argmax and a write of the
step's positions. Target: adapter / bare <= 1.10. Single-threaded, alternating
repetitions, medians.

The default model is the issue's tiny one (V = 32, hidden 256, 2 layers, batch 8 x
128 positions), where the forward pass dominates. The decoder's own work is
float64 over the whole ``(N, T, V)`` prediction at every step (noise, tempering,
entropies), so the ratio grows with ``--vocab-size``; ``--profile`` shows where.

    python examples/bench_adapter_overhead.py [--vocab-size V] [--reps R] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

import torch

from pmdm.adapters import HFPredictor, TinyMDM, TinyMDMConfig, llada_decoder

TARGET_RATIO = 1.10


@torch.no_grad()
def bare_loop(model, canvas, prompt_length, block_length, steps_per_block, mask_id):
    """LLaDA's number of forward passes on the same shapes: argmax and write only."""
    x = canvas.clone()
    gen_length = x.shape[-1] - prompt_length
    base, rem = divmod(block_length, steps_per_block)
    counts = [base + (j < rem) for j in range(steps_per_block)]
    for start in range(prompt_length, prompt_length + gen_length, block_length):
        position = start
        for k in counts:
            if k == 0:
                continue  # pmdm skips steps that reveal nothing; so does this loop
            logits = model(x).logits
            x[:, position : position + k] = logits[:, position : position + k].argmax(
                -1
            )
            position += k
    assert not x.eq(mask_id).any()
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--prompt-length", type=int, default=32)
    parser.add_argument("--gen-length", type=int, default=96)
    parser.add_argument("--block-length", type=int, default=32)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile pmdm's loop")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    length = args.prompt_length + args.gen_length
    mask_id = args.vocab_size - 1
    config = TinyMDMConfig(
        vocab_size=args.vocab_size,
        mask_token_id=mask_id,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        num_heads=4,
        max_length=length,
    )
    model = TinyMDM(config)
    predictor = HFPredictor(model)
    generator = torch.Generator().manual_seed(0)
    prompt = torch.randint(
        0, mask_id, (args.batch, args.prompt_length), generator=generator
    )
    canvas = torch.cat(
        [prompt, torch.full((args.batch, args.gen_length), mask_id)], dim=-1
    )
    decoder = llada_decoder(args.steps, args.block_length)
    steps_per_block = args.steps // (args.gen_length // args.block_length)

    def adapter() -> torch.Tensor:
        return decoder.decode(predictor, canvas, generator=generator).tokens

    def bare() -> torch.Tensor:
        return bare_loop(
            model,
            canvas,
            args.prompt_length,
            args.block_length,
            steps_per_block,
            mask_id,
        )

    # Warm up, check the call counts agree, then time alternately.
    predictor.nfe = 0
    adapter()
    calls = predictor.nfe
    bare()
    times: dict[str, list[float]] = {"adapter": [], "bare": []}
    for _ in range(args.reps):
        for name, fn in (("bare", bare), ("adapter", adapter)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    adapter_s = statistics.median(times["adapter"])
    bare_s = statistics.median(times["bare"])
    ratio = adapter_s / bare_s

    print(
        f"TinyMDM V={args.vocab_size} hidden={args.hidden_size} "
        f"layers={args.num_layers}; batch {args.batch} x {length} positions; "
        f"{calls} forward passes per run; threads {args.threads}; "
        f"median of {args.reps}"
    )
    print(f"bare loop (argmax + write):        {bare_s:.4f} s")
    print(f"pmdm Decoder over HFPredictor:     {adapter_s:.4f} s")
    verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(
        f"ratio adapter / bare:              {ratio:.3f} "
        f"(target <= {TARGET_RATIO}) {verdict}"
    )

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(adapter)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()

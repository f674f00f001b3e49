"""Use your own model: pmdm's decoders and measurements on a Hugging Face masked LM.

Runs offline in a few seconds on a tiny random model with LLaDA's interface
(``TinyMDM``: ``model(input_ids).logits``, mask id in the vocabulary) and a tokenizer
built from a hand-written vocabulary; the model makes no sense of text, the plumbing
is what this shows. Any ``AutoModelForMaskedLM`` works the same way (try
``tiny_bert_mlm()``). The lines for LLaDA-8B-Instruct are at the end, commented out.

    python examples/use_your_own_model.py

Needs the ``hf`` extra (``pip install 'pmdm[hf]'``) for the tokenizer and BERT.
"""

from __future__ import annotations

import torch
import transformers

from pmdm.adapters import (
    HFPredictor,
    TinyMDM,
    TinyMDMConfig,
    generate,
    llada_decoder,
    prompt_canvas,
    trace_decode,
)
from pmdm.decoding.decoder import Decoder
from pmdm.decoding.schedules import ThresholdSchedule


def tiny_tokenizer() -> transformers.BertTokenizer:
    """A BERT tokenizer over 64 ids, [MASK] last (id 63)."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat"]
    words += [f"w{i}" for i in range(64 - len(words) - 1)] + ["[MASK]"]
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(words)})


def main() -> None:
    # 1. The predictor: any module called as model(input_ids).logits. Its mask id
    #    comes from the config (or tokenizer, or mask_id=...) and is validated.
    model = TinyMDM(TinyMDMConfig(vocab_size=64, mask_token_id=63, hidden_size=32))
    predictor = HFPredictor(model, tokenizer=tiny_tokenizer())
    prompt = predictor.encode("the cat sat")
    print(f"{predictor}; prompt ids {prompt.tolist()}")

    # 2. LLaDA's sampler: 16 tokens in blocks of 8, 8 steps, low-confidence
    #    remasking, greedy. Prompt positions are never changed.
    generator = torch.Generator().manual_seed(0)
    out = generate(
        predictor,
        prompt,
        gen_length=16,
        steps=8,
        block_length=8,
        order="low_confidence",
        temperature=0.0,
        cfg_scale=0.0,
        generator=generator,
        tc_samples=64,
    )
    print("text:", predictor.decode(out.generated[0]))

    # 3. What the run measured.
    print(
        f"NFE {int(out.nfe[0])}, forward passes {out.forward_passes}, tokens/step "
        f"{float(out.tokens_per_step()[0]):.2f}, "
        f"Kendall tau {float(out.kendall_tau()[0]):.3f}"
    )
    for step in out.per_step.row(0):
        print(
            f"  step {step['step']}: {step['revealed']} revealed, mean entropy "
            f"{step['entropy']:.3f} nats, confidence {step['confidence']:.3f}"
        )
    for m, estimate in enumerate(out.block_tc[0]):
        print(
            f"  model's TC of block {m} given its context: {estimate.value:.3f} "
            f"± {estimate.stderr:.3f} nats (N={estimate.num_samples})"
        )

    # 4. Any other pmdm decoder runs on the same predictor unchanged: Easy-First
    #    (lowest entropy first) with Fast-dLLM's confidence threshold.
    canvas, _ = prompt_canvas(prompt, 16, predictor.mask_id)
    easy_first = Decoder("entropy", ThresholdSchedule(0.5), "factorized", 1.0)
    other = easy_first.decode(predictor, canvas.unsqueeze(0), generator=generator)
    print(
        f"entropy order + threshold: {int(other.trajectory.nfe[0])} steps,",
        predictor.decode(other.tokens[0, len(prompt) :]),
    )

    # 5. A decoder is a Pyro guide: one Delta site per generated position, the
    #    path's log q on the first.
    trace = trace_decode(
        llada_decoder(steps=8, block_length=8, temperature=1.0),
        predictor,
        canvas,
        generator,
    )
    sites = [name for name in trace.nodes if name.startswith("x_")]
    print(
        f"Pyro trace: sites {sites[0]}..{sites[-1]}, "
        f"log q {float(trace.log_prob_sum()):.2f}"
    )


# LLaDA-8B-Instruct, with its weights on disk (fetched beforehand, e.g. with
# `huggingface-cli download GSAI-ML/LLaDA-8B-Instruct --local-dir /models/llada`):
#
#     predictor = HFPredictor.from_pretrained(
#         "/models/llada", trust_remote_code=True, dtype=torch.bfloat16, device="cuda"
#     )
#     prompt = predictor.encode("What is 12 * 7? Think step by step.", chat=True)
#     out = generate(
#         predictor, prompt, gen_length=128, steps=128, block_length=32,
#         order="low_confidence", temperature=0.0, cfg_scale=0.0,
#     )
#     print(predictor.decode(out.generated[0]))
#
# or from the shell:
#
#     pmdm generate --model /models/llada --trust-remote-code --device cuda \
#         --dtype bfloat16 --chat --prompt "What is 12 * 7?" --gen-length 128 \
#         --steps 128 --block-length 32 --trace llada-trace.json


if __name__ == "__main__":
    main()

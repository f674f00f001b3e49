"""Prompts: canvas, no padding (batch equals apart), guidance, chat templates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pmdm.adapters import (
    GuidedPredictor,
    HFPredictor,
    TinyMDM,
    TinyMDMConfig,
    encode_prompt,
    prompt_canvas,
    run_by_length,
    stack_prompts,
    tiny_llada,
)

V, MASK = 16, 15


class Counting(nn.Module):
    """Wraps a model and counts forward calls and the rows they carried."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config
        self.calls: list[int] = []

    def forward(self, input_ids):
        self.calls.append(input_ids.shape[0])
        return self.model(input_ids)


def tiny(seed: int = 0) -> TinyMDM:
    return TinyMDM(
        TinyMDMConfig(vocab_size=V, mask_token_id=MASK, hidden_size=16, seed=seed)
    )


def greedy_decode(predictor, tokens: torch.Tensor) -> torch.Tensor:
    """Reveal, one per step and row, the masked position of highest top probability.

    A stand-in for pmdm's decoders, batched over rows; ties go to the lowest position.
    """
    tokens = tokens.clone()
    while bool(tokens.eq(predictor.mask_id).any()):
        log_probs = predictor(tokens)  # (n, T, V)
        best_log_prob, best_token = log_probs.max(-1)  # (n, T)
        is_hole = tokens.eq(predictor.mask_id)
        score = best_log_prob.masked_fill(~is_hole, -torch.inf)
        position = score.argmax(-1)  # (n,)
        rows = torch.arange(tokens.shape[0])
        has_hole = is_hole.any(-1)
        tokens[rows[has_hole], position[has_hole]] = best_token[rows, position][
            has_hole
        ]
    return tokens


# The canvas and batching without padding.


def test_prompt_canvas_batch():
    tokens, prompt_mask = prompt_canvas(torch.tensor([[1, 2], [3, 4]]), 2, mask_id=9)
    assert tokens.tolist() == [[1, 2, 9, 9], [3, 4, 9, 9]]
    assert prompt_mask.tolist() == [True, True, False, False]


@pytest.mark.parametrize(
    ("prompt", "gen_length", "error", "match"),
    [
        (
            torch.tensor([1, 9, 2]),
            3,
            ValueError,
            r"prompt: contains the mask id 9 at positions \[1\]",
        ),
        (
            torch.tensor([1, 2]),
            0,
            ValueError,
            r"gen_length=0: expected an integer >= 1",
        ),
        (torch.tensor([1.0, 2.0]), 3, TypeError, r"prompt: expected integer token ids"),
    ],
)
def test_prompt_canvas_errors(prompt, gen_length, error, match):
    with pytest.raises(error, match=match):
        prompt_canvas(prompt, gen_length, mask_id=9)


def test_stack_prompts_refuses_different_lengths():
    assert stack_prompts([torch.tensor([1, 2]), torch.tensor([3, 4])]).shape == (2, 2)
    with pytest.raises(ValueError, match=r"actual lengths \[2, 3\].*run_by_length"):
        stack_prompts([torch.tensor([1, 2]), torch.tensor([3, 4, 5])])
    with pytest.raises(ValueError, match=r"prompts=\[\]"):
        stack_prompts([])


def test_run_by_length_groups_and_keeps_order():
    prompts = [
        torch.tensor([1, 2]),
        torch.tensor([3]),
        torch.tensor([4, 5]),
        torch.tensor([6]),
    ]
    seen = []

    def fn(group):
        seen.append(group.tolist())
        return group * 10

    out = run_by_length(prompts, fn)

    assert [o.tolist() for o in out] == [[10, 20], [30], [40, 50], [60]]
    assert seen == [[[1, 2], [4, 5]], [[3], [6]]]


def test_run_by_length_checks_rows():
    with pytest.raises(ValueError, match=r"fn: expected a result with 2 rows"):
        run_by_length([torch.tensor([1]), torch.tensor([2])], lambda g: g[:1])
    with pytest.raises(ValueError, match=r"prompts\[0\]: expected shape \(P,\)"):
        run_by_length([torch.tensor([[1]])], lambda g: g)


@pytest.mark.parametrize(
    "model_maker",
    [tiny, lambda seed: tiny_llada(seed=seed)],
    ids=["tiny", "tiny_llada"],
)
def test_batch_of_prompts_equals_each_prompt_alone(model_maker):
    predictor = HFPredictor(model_maker(1))
    vocab = 12 if predictor.vocab_size == V else 500
    generator = torch.Generator().manual_seed(0)
    lengths = [3, 5, 3, 4, 5]
    prompts = [torch.randint(0, vocab, (n,), generator=generator) for n in lengths]

    def decode(group):
        return greedy_decode(predictor, prompt_canvas(group, 4, predictor.mask_id)[0])

    together = run_by_length(prompts, decode)
    calls_together = predictor.nfe
    alone = [decode(p.unsqueeze(0))[0] for p in prompts]

    for prompt, batched, single in zip(prompts, together, alone, strict=True):
        assert torch.equal(batched, single)
        assert torch.equal(batched[: len(prompt)], prompt)
        assert batched.ne(predictor.mask_id).all()
    # Three lengths, four holes each: 3 groups x 4 steps.
    assert calls_together == 12


def test_log_probs_of_a_batch_equal_each_row_alone():
    predictor = HFPredictor(tiny(2))
    tokens, _ = prompt_canvas(torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), 3, MASK)
    together = predictor(tokens)
    for row in range(3):
        torch.testing.assert_close(
            together[row], predictor(tokens[row]), atol=1e-5, rtol=0
        )


# Classifier-free guidance.


def test_guidance_makes_one_batched_pass_and_none_extra_at_scale_zero():
    model = Counting(tiny())
    base = HFPredictor(model)
    tokens, prompt_mask = prompt_canvas(torch.tensor([[1, 2, 3], [4, 5, 6]]), 3, MASK)

    unguided = GuidedPredictor(base, prompt_mask, cfg_scale=0.0)
    unguided(tokens)
    unguided(tokens)
    assert model.calls == [2, 2]

    model.calls.clear()
    guided = GuidedPredictor(base, prompt_mask, cfg_scale=2.0)
    guided(tokens)
    assert model.calls == [4]
    assert (guided.nfe, unguided.nfe) == (1, 2)


def test_guidance_at_scale_zero_is_the_plain_prediction():
    base = HFPredictor(tiny())
    tokens, prompt_mask = prompt_canvas(torch.tensor([1, 2, 3]), 4, MASK)
    out = GuidedPredictor(base, prompt_mask, cfg_scale=0.0)(tokens)
    assert torch.equal(out, base(tokens))


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_guidance_formula_against_raw_logits(scale):
    model = tiny(seed=4)
    tokens, prompt_mask = prompt_canvas(torch.tensor([[1, 2, 3], [6, 7, 8]]), 4, MASK)

    guided = GuidedPredictor(HFPredictor(model), prompt_mask, cfg_scale=scale)(tokens)

    # By hand, as LLaDA combines raw logits, then the mask column dropped.
    conditional = model(tokens).logits.double()
    unconditional = model(tokens.masked_fill(prompt_mask, MASK)).logits.double()
    combined = unconditional + (scale + 1) * (conditional - unconditional)
    keep = [v for v in range(V) if v != MASK]
    expected = torch.log_softmax(combined[..., keep], dim=-1)
    holes = ~prompt_mask

    torch.testing.assert_close(
        guided[:, holes][..., keep], expected[:, holes], atol=1e-5, rtol=0
    )
    assert torch.isneginf(guided[..., MASK]).all()
    # Rows of revealed (prompt) positions are the conditional prediction.
    plain = HFPredictor(model)(tokens)
    torch.testing.assert_close(guided[:, prompt_mask], plain[:, prompt_mask])


def test_guidance_changes_the_argmax_when_it_should():
    class Fixed:
        """c prefers token 1 narrowly; u prefers it as much, so guidance picks 0."""

        vocab_size, mask_id = 3, 3

        def __call__(self, tokens):
            prompt_seen = tokens[..., :1].ne(self.mask_id).unsqueeze(-1)  # (..., 1, 1)
            c = torch.tensor([1.0, 1.1, 0.0], dtype=torch.float64)
            u = torch.tensor([0.0, 1.1, 0.0], dtype=torch.float64)
            logits = torch.where(prompt_seen, c, u).expand(*tokens.shape, 3)
            return torch.log_softmax(logits, -1)

    tokens = torch.tensor([0, 3])
    prompt_mask = torch.tensor([True, False])
    assert GuidedPredictor(Fixed(), prompt_mask, 0.0)(tokens)[1].argmax() == 1
    assert GuidedPredictor(Fixed(), prompt_mask, 1.0)(tokens)[1].argmax() == 0


def test_guidance_errors():
    base = HFPredictor(tiny())
    tokens, prompt_mask = prompt_canvas(torch.tensor([1, 2]), 2, MASK)
    with pytest.raises(
        ValueError, match=r"cfg_scale=-1.0: expected a real number >= 0"
    ):
        GuidedPredictor(base, prompt_mask, cfg_scale=-1.0)
    with pytest.raises(TypeError, match=r"prompt_mask: expected a bool tensor"):
        GuidedPredictor(base, prompt_mask.long(), cfg_scale=1.0)
    with pytest.raises(
        ValueError, match=r"tokens: a prompt position holds the mask id"
    ):
        GuidedPredictor(base, prompt_mask, cfg_scale=1.0)(
            tokens.masked_fill(prompt_mask, MASK)
        )

    class Disjoint:
        """The unconditional pass rules out a token that the conditional allows."""

        vocab_size, mask_id = 2, 2

        def __call__(self, tokens):
            seen = tokens[..., :1].ne(2).unsqueeze(-1)
            c = torch.tensor([0.5, 0.5], dtype=torch.float64).log()
            u = torch.tensor([1.0, 0.0], dtype=torch.float64).log()
            return torch.where(seen, c, u).expand(*tokens.shape, 2)

    with pytest.raises(ValueError, match=r"cfg_scale: the unconditional pass gives"):
        GuidedPredictor(Disjoint(), torch.tensor([True, False]), 1.0)(
            torch.tensor([0, 2])
        )


def test_guided_decoding_on_llada_sized_model_gives_real_tokens():
    base = HFPredictor(tiny_llada(seed=3))
    tokens, prompt_mask = prompt_canvas(
        torch.tensor([126080, 10, 20, 30]), 5, base.mask_id
    )
    out = greedy_decode(
        GuidedPredictor(base, prompt_mask, cfg_scale=1.0), tokens.unsqueeze(0)
    )
    assert torch.equal(out[0, :4], tokens[:4])
    assert out.ne(base.mask_id).all()
    assert base.sequences == 2 * 5


# Chat templates through the tokenizer.


@pytest.fixture
def tokenizer():
    transformers = pytest.importorskip("transformers")
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "hello",
        "world",
        "user",
        ":",
        "assistant",
    ]
    words += ["[MASK]"]
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(words)})


def test_encode_prompt_plain_and_chat(tokenizer):
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant :{% endif %}"
    )
    # [CLS] hello world [SEP], by the vocabulary above.
    assert encode_prompt(tokenizer, "hello world").tolist() == [2, 4, 5, 3]
    # "user : hello world assistant :", no [CLS]/[SEP] added to the rendered template.
    assert encode_prompt(tokenizer, "hello world", chat=True).tolist() == [
        6,
        7,
        4,
        5,
        8,
        7,
    ]
    messages = [{"role": "user", "content": "hello"}]
    assert encode_prompt(tokenizer, messages, chat=True).tolist() == [6, 7, 4, 8, 7]


def test_encode_prompt_errors(tokenizer):
    with pytest.raises(
        ValueError, match=r"chat=True: the tokenizer BertTokenizer has no chat_template"
    ):
        encode_prompt(tokenizer, "hello", chat=True)
    with pytest.raises(ValueError, match=r"the prompt contains the mask id 9"):
        encode_prompt(tokenizer, "hello [MASK]", mask_id=9)
    with pytest.raises(ValueError, match=r"a list of messages needs chat=True"):
        encode_prompt(tokenizer, [{"role": "user", "content": "hello"}])

"""HFPredictor: the predictor contract, mask-id validation, interface and load errors.

Every model is built from a config with a seed; nothing is downloaded.
"""

from __future__ import annotations

import json
import math
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from pmdm.adapters import (
    AdapterLoadError,
    HFPredictor,
    MaskArgmaxMDM,
    TinyMDM,
    TinyMDMConfig,
    tiny_bert_mlm,
    tiny_llada,
)
from pmdm.adapters.hf import require_transformers
from pmdm.predictors.base import Predictor

transformers = pytest.importorskip("transformers")

V, MASK = 12, 11


def tiny(seed: int = 0, **kwargs) -> TinyMDM:
    config = dict(vocab_size=V, mask_token_id=MASK, hidden_size=16, seed=seed)
    return TinyMDM(TinyMDMConfig(**{**config, **kwargs}))


def random_canvas(shape, vocab_size, mask_id, seed=0, mask_frac=0.5):
    """Random real tokens with about ``mask_frac`` of the positions masked."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab_size, shape, generator=generator)
    tokens = torch.where(tokens == mask_id, 0, tokens)
    holes = torch.rand(shape, generator=generator) < mask_frac
    return tokens.masked_fill(holes, mask_id)


def bert_tokenizer(vocab_size: int = 64):
    """A BERT tokenizer over a hand-written vocabulary, ``[MASK]`` last."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "user", ":"]
    words += ["assistant"] + [f"[unused{i}]" for i in range(vocab_size - 10)]
    words += ["[MASK]"]
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(words)})


# The contract: shape, dtype, normalization, the mask column, NFE.


@pytest.mark.parametrize("batch_shape", [(1,), (3,), (2, 3)])
def test_contract_shape_normalization_and_mask_column(batch_shape):
    predictor = HFPredictor(tiny())
    tokens = random_canvas((*batch_shape, 7), V, MASK)

    log_probs = predictor(tokens)

    assert isinstance(predictor, Predictor)
    assert log_probs.shape == (*batch_shape, 7, V)
    assert log_probs.dtype == torch.float64
    assert torch.isneginf(log_probs[..., MASK]).all()
    real = torch.cat([log_probs[..., :MASK], log_probs[..., MASK + 1 :]], dim=-1)
    assert torch.isfinite(real).all()
    total = torch.logsumexp(log_probs, dim=-1)
    torch.testing.assert_close(total, torch.zeros_like(total), atol=1e-12, rtol=0)
    assert predictor.nfe == 1
    assert not log_probs.requires_grad


def test_batch_shape_is_flattened_and_restored():
    predictor = HFPredictor(tiny())
    tokens = random_canvas((2, 3, 5), V, MASK)

    together = predictor(tokens)
    alone = torch.stack([predictor(row) for row in tokens.reshape(6, 5)])

    torch.testing.assert_close(together.reshape(6, 5, V), alone, atol=1e-5, rtol=0)


def test_log_probs_are_the_softmax_of_the_logits_without_the_mask():
    model = tiny(seed=3)
    predictor = HFPredictor(model)
    tokens = random_canvas((2, 6), V, MASK, seed=1)

    # By hand: drop the mask column, normalize in float64, compare.
    logits = model(tokens).logits.double()
    keep = [v for v in range(V) if v != MASK]
    expected = torch.log_softmax(logits[..., keep], dim=-1)

    torch.testing.assert_close(predictor(tokens)[..., keep], expected)


def test_nfe_and_sequences_count_model_calls():
    predictor = HFPredictor(tiny())
    predictor(random_canvas((4, 5), V, MASK))
    predictor(random_canvas((5,), V, MASK))
    assert (predictor.nfe, predictor.sequences) == (2, 5)


def test_low_precision_model_gives_float64_log_probs():
    model = tiny().to(torch.bfloat16)
    log_probs = HFPredictor(model)(random_canvas((2, 5), V, MASK))
    assert log_probs.dtype == torch.float64
    total = torch.logsumexp(log_probs, dim=-1)
    torch.testing.assert_close(total, torch.zeros_like(total), atol=1e-12, rtol=0)


def test_compute_dtype_float32():
    predictor = HFPredictor(tiny(), compute_dtype=torch.float32)
    assert predictor(random_canvas((5,), V, MASK)).dtype == torch.float32


def test_llada_sized_tiny_model():
    predictor = HFPredictor(tiny_llada(seed=0))
    tokens = torch.tensor([[126080, 17, 42, 126336, 126336, 126336]])

    log_probs = predictor(tokens)

    assert (predictor.vocab_size, predictor.mask_id) == (126464, 126336)
    assert log_probs.shape == (1, 6, 126464)
    assert torch.isneginf(log_probs[..., 126336]).all()
    torch.testing.assert_close(
        torch.logsumexp(log_probs, -1), torch.zeros(1, 6, dtype=torch.float64)
    )


def test_mask_argmax_model_still_yields_real_tokens():
    model = MaskArgmaxMDM(TinyMDMConfig(vocab_size=V, mask_token_id=MASK, seed=2))
    predictor = HFPredictor(model)
    tokens = torch.full((3, 8), MASK)

    raw = model(tokens).logits
    log_probs = predictor(tokens)
    generator = torch.Generator().manual_seed(0)
    draws = torch.multinomial(
        log_probs.exp().reshape(-1, V), 1000, True, generator=generator
    )

    assert raw.argmax(-1).eq(MASK).all()
    assert log_probs.argmax(-1).ne(MASK).all()
    assert draws.ne(MASK).all()


def test_tiny_bert_from_config():
    model = tiny_bert_mlm(seed=0, vocab_size=64)
    predictor = HFPredictor(model)
    tokens = torch.tensor([[2, 4, 63, 63, 5, 3]])

    log_probs = predictor(tokens)

    assert isinstance(model, transformers.BertForMaskedLM)
    assert (predictor.vocab_size, predictor.mask_id) == (64, 63)
    assert log_probs.shape == (1, 6, 64)
    assert torch.isneginf(log_probs[..., 63]).all()


def test_tiny_models_are_seeded_and_leave_global_rng_alone():
    state = torch.random.get_rng_state()
    first = tiny_bert_mlm(seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = tiny_bert_mlm(seed=4)
    tokens = torch.tensor([[2, 63, 4, 3]])
    assert torch.equal(first(tokens).logits, second(tokens).logits)
    assert torch.equal(tiny(seed=5)(tokens % V).logits, tiny(seed=5)(tokens % V).logits)
    assert not torch.equal(
        tiny(seed=5)(tokens % V).logits, tiny(seed=6)(tokens % V).logits
    )


def test_tiny_model_attends_both_ways():
    model = tiny(seed=1)
    base = torch.tensor([[1, 2, 3, MASK, 4]])
    changed = torch.tensor([[1, 2, 3, MASK, 5]])
    # Changing the last token moves the prediction at the first position.
    assert not torch.allclose(model(base).logits[0, 0], model(changed).logits[0, 0])


# Mask id: where it comes from, and every way it can be wrong.


def test_mask_id_from_config_argument_and_tokenizer():
    assert HFPredictor(tiny()).mask_id == MASK
    assert HFPredictor(tiny(), mask_id=MASK).mask_id == MASK
    plain = tiny_bert_mlm(vocab_size=64)
    plain.config.mask_token_id = None
    assert HFPredictor(plain, tokenizer=bert_tokenizer(64)).mask_id == 63


class ConfigModule(nn.Module):
    """Returns fixed logits; its config is whatever the test gives."""

    def __init__(self, config=None, vocab_size=8):
        super().__init__()
        self.config = config
        self.weight = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, input_ids):
        logits = self.weight.expand(*input_ids.shape, -1)
        return SimpleNamespace(logits=logits)


@pytest.mark.parametrize(
    ("model", "kwargs", "error", "match"),
    [
        (tiny(), dict(mask_id=12), ValueError, r"mask_id=12: expected an id inside"),
        (tiny(), dict(mask_id=-1), ValueError, r"mask_id=-1: expected an integer >= 0"),
        (tiny(), dict(mask_id=1.5), TypeError, r"mask_id=1.5: expected an integer"),
        (tiny(), dict(mask_id=True), TypeError, r"mask_id=True: expected an integer"),
        (tiny(), dict(mask_id=3), ValueError, r"mask_id=3: the model config says"),
        (
            tiny(mask_token_id=5, pad_token_id=5),
            {},
            ValueError,
            r"mask_id \(from the model config\)=5: equals the model config's pad_token_id",
        ),
        (
            ConfigModule(
                SimpleNamespace(vocab_size=8, mask_token_id=6, eos_token_id=[2, 6])
            ),
            {},
            ValueError,
            r"=6: equals the model config's eos_token_id",
        ),
        (
            ConfigModule(None),
            dict(
                mask_id=3,
                vocab_size=8,
                tokenizer=SimpleNamespace(mask_token_id=None, pad_token_id=3),
            ),
            ValueError,
            r"mask_id=3: equals the tokenizer's pad_token_id",
        ),
        (
            ConfigModule(None),
            dict(mask_id=3, vocab_size=8, tokenizer=SimpleNamespace(mask_token_id=4)),
            ValueError,
            r"mask_id=3: the tokenizer says mask_token_id=4",
        ),
        (
            ConfigModule(None),
            dict(vocab_size=8),
            ValueError,
            r"mask_id=None: the model config has no",
        ),
        (
            ConfigModule(SimpleNamespace(mask_token_id=9, vocab_size=8)),
            {},
            ValueError,
            r"mask_id \(from the model config\)=9: expected an id inside the vocabulary "
            r"\[0, 8\)",
        ),
    ],
)
def test_mask_id_validation(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        HFPredictor(model, **kwargs)


def test_vocab_size_is_required_when_the_model_does_not_say():
    class Bare(nn.Module):
        def forward(self, input_ids):
            return SimpleNamespace(logits=torch.zeros(*input_ids.shape, 8))

    with pytest.raises(ValueError, match=r"vocab_size=None: the model has no"):
        HFPredictor(Bare(), mask_id=7)
    assert HFPredictor(Bare(), mask_id=7, vocab_size=8).vocab_size == 8


def test_vocab_size_from_output_embeddings():
    class Headed(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 9)

        def get_output_embeddings(self):
            return self.head

    assert HFPredictor(Headed(), mask_id=8).vocab_size == 9


@pytest.mark.parametrize(
    ("model", "compute_dtype", "error", "match"),
    [
        (lambda x: x, torch.float64, TypeError, r"model: expected a torch.nn.Module"),
        (
            tiny(),
            torch.int64,
            TypeError,
            r"compute_dtype=torch.int64: expected a floating",
        ),
    ],
)
def test_constructor_type_errors(model, compute_dtype, error, match):
    with pytest.raises(error, match=match):
        HFPredictor(model, compute_dtype=compute_dtype)


# Interface of the model output, and of the tokens.


class Returns(nn.Module):
    """A module whose output the test chooses."""

    def __init__(self, make):
        super().__init__()
        self.make = make
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids):
        return self.make(input_ids)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda ids: torch.zeros(*ids.shape, 8),
            TypeError,
            r"expected model\(input_ids\).logits of shape \(batch, T, vocab\), actual a "
            r"Tensor without a .logits tensor",
        ),
        (
            lambda ids: (torch.zeros(*ids.shape, 8),),
            TypeError,
            r"actual a tuple without a .logits tensor",
        ),
        (
            lambda ids: SimpleNamespace(logits=torch.zeros(*ids.shape, 9)),
            ValueError,
            r"expected model\(input_ids\).logits of shape \(batch, T, vocab\) = "
            r"\(2, 3, 8\) .* actual logits of shape \(2, 3, 9\)",
        ),
        (
            lambda ids: SimpleNamespace(logits=torch.zeros(ids.shape[-1], 8)),
            ValueError,
            r"actual logits of shape \(3, 8\)",
        ),
    ],
)
def test_wrong_interface_is_named(make, error, match):
    predictor = HFPredictor(Returns(make), mask_id=7, vocab_size=8)
    with pytest.raises(error, match=match):
        predictor(torch.zeros(2, 3, dtype=torch.long))


def test_mapping_output_with_logits_is_accepted():
    model = Returns(lambda ids: {"logits": torch.zeros(*ids.shape, 8)})
    log_probs = HFPredictor(model, mask_id=7, vocab_size=8)(
        torch.zeros(1, 2, dtype=torch.long)
    )
    torch.testing.assert_close(
        log_probs[..., 0], torch.full((1, 2), -math.log(7.0), dtype=torch.float64)
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_model_output_is_never_edited(dtype):
    # The mask column is set on the predictor's own copy, even when the model's
    # logits are already in the compute dtype.
    stored = torch.arange(2 * 3 * 8, dtype=dtype).reshape(1, 2 * 3, 8) / 10
    model = Returns(lambda ids: SimpleNamespace(logits=stored.view(*ids.shape, 8)))
    before = stored.clone()
    log_probs = HFPredictor(model, mask_id=7, vocab_size=8)(
        torch.zeros(2, 3, dtype=torch.long)
    )
    assert torch.equal(stored, before)
    assert torch.isneginf(log_probs[..., 7]).all()
    expected = torch.log_softmax(before.double().view(2, 3, 8)[..., :7], dim=-1)
    torch.testing.assert_close(log_probs[..., :7], expected)


@pytest.mark.parametrize(
    ("tokens", "error", "match"),
    [
        (
            torch.tensor([[0, 12]]),
            ValueError,
            r"tokens: expected ids in \[0, 12\), actual range \[0, 12\]",
        ),
        (torch.tensor([[0.0, 1.0]]), TypeError, r"tokens: expected integer token ids"),
        (torch.tensor(3), ValueError, r"tokens: expected shape \(\*batch, T\)"),
        ([[0, 1]], TypeError, r"tokens: expected a torch.Tensor"),
    ],
)
def test_bad_tokens(tokens, error, match):
    with pytest.raises(error, match=match):
        HFPredictor(tiny())(tokens)


# Loading from disk: round trip, and errors carrying the transformers version.


def test_from_pretrained_round_trip(tmp_path):
    model = tiny_bert_mlm(seed=1, vocab_size=64)
    model.save_pretrained(tmp_path)
    bert_tokenizer(64).save_pretrained(tmp_path)

    loaded = HFPredictor.from_pretrained(tmp_path, dtype=torch.float32)
    tokens = torch.tensor([[2, 4, 63, 63, 5, 3]])

    assert loaded.mask_id == 63 and loaded.tokenizer.mask_token_id == 63
    assert not loaded.model.training
    torch.testing.assert_close(loaded(tokens), HFPredictor(model)(tokens))


def test_from_pretrained_refuses_anything_but_a_local_directory(tmp_path):
    with pytest.raises(
        ValueError, match=r"path='GSAI-ML/LLaDA-8B-Instruct': expected a local"
    ):
        HFPredictor.from_pretrained("GSAI-ML/LLaDA-8B-Instruct")
    with pytest.raises(ValueError, match=r"loader='causal': expected 'auto'"):
        HFPredictor.from_pretrained(tmp_path, loader="causal")


def test_load_error_names_the_transformers_version(tmp_path):
    version = transformers.__version__
    with pytest.raises(
        AdapterLoadError, match=rf"config .* with transformers {version}:"
    ):
        HFPredictor.from_pretrained(tmp_path)


def test_load_error_for_missing_weights(tmp_path):
    tiny_bert_mlm().config.save_pretrained(tmp_path)
    version = transformers.__version__
    with pytest.raises(
        AdapterLoadError,
        match=rf"loading the model \(AutoModelForMaskedLM\) .* transformers {version}",
    ) as info:
        HFPredictor.from_pretrained(tmp_path, load_tokenizer=False)
    assert info.value.__cause__ is not None


def test_missing_transformers_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "transformers", None)
    for call in (
        require_transformers,
        tiny_bert_mlm,
        lambda: HFPredictor.from_pretrained(tmp_path),
    ):
        with pytest.raises(ImportError, match=r"pip install 'pmdm\[hf\]'"):
            call()


# LLaDA's loading path: a remote-code model (AutoModel + trust_remote_code), written
# to a temporary directory as LLaDA's snapshot is: config.json with an auto_map,
# the configuration and modeling files, and the weights.

REMOTE_CONFIGURATION = """
from transformers import PretrainedConfig


class TinyLLaDAConfig(PretrainedConfig):
    model_type = "tinyllada"

    def __init__(self, vocab_size=16, mask_token_id=15, hidden_size=8, **kwargs):
        self.vocab_size = vocab_size
        self.mask_token_id = mask_token_id
        self.hidden_size = hidden_size
        super().__init__(**kwargs)
"""

REMOTE_MODELING = """
import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .configuration_tinyllada import TinyLLaDAConfig


class TinyLLaDAModelLM(PreTrainedModel):
    config_class = TinyLLaDAConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed = torch.nn.Embedding(config.vocab_size, config.hidden_size)
        self.head = torch.nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids, **kwargs):
        h = self.embed(input_ids)
        return MaskedLMOutput(logits=self.head(h + h.mean(1, keepdim=True)))
"""


@pytest.fixture
def remote_code_snapshot(tmp_path, monkeypatch):
    """A LLaDA-like snapshot directory; dynamic modules go to a temporary cache."""
    dynamic_module_utils = pytest.importorskip("transformers.dynamic_module_utils")
    monkeypatch.setattr(
        dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "modules")
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "configuration_tinyllada.py").write_text(REMOTE_CONFIGURATION)
    (snapshot / "modeling_tinyllada.py").write_text(REMOTE_MODELING)
    config = {
        "model_type": "tinyllada",
        "vocab_size": 16,
        "mask_token_id": 15,
        "hidden_size": 8,
        "eos_token_id": 14,
        "pad_token_id": 14,
        "auto_map": {
            "AutoConfig": "configuration_tinyllada.TinyLLaDAConfig",
            "AutoModel": "modeling_tinyllada.TinyLLaDAModelLM",
            "AutoModelForCausalLM": "modeling_tinyllada.TinyLLaDAModelLM",
        },
    }
    (snapshot / "config.json").write_text(json.dumps(config))
    loaded_config = transformers.AutoConfig.from_pretrained(
        snapshot, trust_remote_code=True, local_files_only=True
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.AutoModel.from_config(
            loaded_config, trust_remote_code=True
        )
    model.save_pretrained(snapshot)
    return snapshot


def test_remote_code_model_loads_through_automodel(remote_code_snapshot):
    predictor = HFPredictor.from_pretrained(
        remote_code_snapshot,
        trust_remote_code=True,
        dtype=torch.bfloat16,
        load_tokenizer=False,
    )
    log_probs = predictor(torch.tensor([[1, 15, 15, 2]]))

    assert type(predictor.model).__name__ == "TinyLLaDAModelLM"
    assert predictor.model.dtype == torch.bfloat16
    assert (predictor.vocab_size, predictor.mask_id) == (16, 15)
    assert log_probs.dtype == torch.float64
    assert torch.isneginf(log_probs[..., 15]).all()


def test_remote_code_needs_explicit_trust(remote_code_snapshot):
    version = transformers.__version__
    with pytest.raises(
        AdapterLoadError, match=rf"(?s)transformers {version}: .*trust_remote_code"
    ):
        HFPredictor.from_pretrained(remote_code_snapshot, load_tokenizer=False)


# Details: dropout in training mode, tokenizer files, encode/decode, tiny configs.


def test_training_mode_with_dropout_warns_with_the_remedy():
    model = tiny_bert_mlm()
    model.train()
    with pytest.warns(UserWarning, match=r"training mode with dropout.*model.eval\(\)"):
        HFPredictor(model)


def test_directory_without_tokenizer_files(tmp_path):
    tiny_bert_mlm(seed=2).save_pretrained(tmp_path)
    assert HFPredictor.from_pretrained(tmp_path).tokenizer is None
    with pytest.raises(ValueError, match=r"load_tokenizer=True: path=.* holds none"):
        HFPredictor.from_pretrained(tmp_path, load_tokenizer=True)


def test_encode_and_decode_through_the_tokenizer():
    predictor = HFPredictor(tiny_bert_mlm(vocab_size=64), tokenizer=bert_tokenizer(64))
    ids = predictor.encode("hello world")
    assert ids.tolist() == [2, 4, 5, 3]
    assert predictor.decode(ids) == "hello world"
    with pytest.raises(ValueError, match=r"tokens: expected shape \(T,\)"):
        predictor.decode(ids.unsqueeze(0))
    bare = HFPredictor(tiny_bert_mlm(vocab_size=64))
    with pytest.raises(
        ValueError, match=r"tokenizer=None: this predictor has no tokenizer"
    ):
        bare.encode("hello")
    with pytest.raises(
        ValueError, match=r"tokenizer=None: this predictor has no tokenizer"
    ):
        bare.decode(ids)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            dict(vocab_size=8, mask_token_id=8),
            ValueError,
            r"mask_token_id=8: expected an id in \[0, 8\)",
        ),
        (dict(vocab_size=1), ValueError, r"vocab_size=1: expected an integer >= 2"),
        (
            dict(hidden_size=10, num_heads=3),
            ValueError,
            r"hidden_size=10: expected a multiple of num_heads=3",
        ),
        (dict(seed=1.5), TypeError, r"seed=1.5: expected an integer"),
    ],
)
def test_tiny_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        TinyMDMConfig(**kwargs)


def test_tiny_model_input_and_margin_errors():
    model = TinyMDM(TinyMDMConfig(max_length=4))
    with pytest.raises(
        ValueError,
        match=r"input_ids: expected at most max_length=4 positions, actual 5",
    ):
        model(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(
        ValueError, match=r"margin=0.0: expected a positive real number"
    ):
        MaskArgmaxMDM(TinyMDMConfig(), margin=0.0)
    with pytest.raises(ValueError, match=r"margin=inf: expected a finite real number"):
        MaskArgmaxMDM(TinyMDMConfig(), margin=math.inf)
    with pytest.raises(TypeError, match=r"margin='big': expected a real number"):
        MaskArgmaxMDM(TinyMDMConfig(), margin="big")

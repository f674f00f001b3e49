"""Tiny masked models for trying the adapter without any weights.

Every model here is built from a config and a seed, on the CPU, in well under a
second, and downloads nothing. :class:`TinyMDM` has LLaDA's interface (a
bidirectional transformer called as ``model(input_ids)`` that returns an object with
``.logits``); :func:`tiny_llada` is one with LLaDA's mask id ``126336`` in a
``126464``-wide vocabulary; :func:`tiny_bert_mlm` is a BERT masked LM from a
``transformers`` config; :class:`MaskArgmaxMDM` always puts its highest logit on the
mask token, to check that the adapter never decodes the mask.

The weights are random: these models make no sense of text. They exist to test the
plumbing (shapes, ids, prompts, guidance, decoders) offline.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmdm.ops.validation import check_finite, check_int

#: LLaDA-8B's mask token id (``<|mdm_mask|>``) and the width of its logits.
LLADA_MASK_ID = 126336
LLADA_VOCAB_SIZE = 126464
#: LLaDA-8B's beginning- and end-of-text ids (its end of text doubles as padding).
LLADA_BOS_ID = 126080
LLADA_EOS_ID = 126081

__all__ = [
    "LLADA_BOS_ID",
    "LLADA_EOS_ID",
    "LLADA_MASK_ID",
    "LLADA_VOCAB_SIZE",
    "MaskArgmaxMDM",
    "TinyMDM",
    "TinyMDMConfig",
    "TinyMDMOutput",
    "load_tiny_mdm",
    "save_tiny_mdm",
    "tiny_bert_mlm",
    "tiny_llada",
]

#: File that marks a directory written by :func:`save_tiny_mdm`.
TINY_MDM_FILE = "pmdm_tiny_mdm.json"
_TINY_WEIGHTS_FILE = "pmdm_tiny_mdm.pt"


@dataclass(frozen=True)
class TinyMDMConfig:
    """Configuration of a :class:`TinyMDM`.

    Parameters
    ----------
    vocab_size : int
        ``V``, the width of the logits.
    mask_token_id : int
        The mask id, inside ``[0, V)`` as in LLaDA (the model has a row for it).
    hidden_size : int
        Width of the residual stream; a multiple of ``num_heads``.
    num_layers : int
        Number of bidirectional attention blocks.
    num_heads : int
        Attention heads per block.
    max_length : int
        Longest sequence the learned position embedding covers.
    seed : int
        Seed of the random weights; equal configs give equal models.
    bos_token_id, eos_token_id, pad_token_id : int or None
        Special ids the mask must not shadow; ``None`` when the model has none.
    """

    vocab_size: int = 32
    mask_token_id: int = 31
    hidden_size: int = 16
    num_layers: int = 1
    num_heads: int = 2
    max_length: int = 128
    seed: int = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None

    def __post_init__(self) -> None:
        vocab_size = check_int("vocab_size", self.vocab_size, minimum=2)
        mask_id = check_int("mask_token_id", self.mask_token_id, minimum=0)
        if mask_id >= vocab_size:
            raise ValueError(
                f"mask_token_id={mask_id!r}: expected an id in [0, {vocab_size}) "
                f"(vocab_size={vocab_size})"
            )
        hidden = check_int("hidden_size", self.hidden_size, minimum=1)
        heads = check_int("num_heads", self.num_heads, minimum=1)
        if hidden % heads:
            raise ValueError(
                f"hidden_size={hidden!r}: expected a multiple of num_heads={heads}"
            )
        check_int("num_layers", self.num_layers, minimum=0)
        check_int("max_length", self.max_length, minimum=1)
        check_int("seed", self.seed)


@dataclass
class TinyMDMOutput:
    """What :class:`TinyMDM` returns: ``logits`` of shape ``(batch, T, V)``."""

    logits: Tensor


class _Block(nn.Module):
    """Pre-norm bidirectional self-attention and MLP, without any attention mask."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden)
        )

    def forward(self, h: Tensor) -> Tensor:
        n, length, hidden = h.shape

        # Every position attends to every position: no causal and no padding mask.
        qkv = self.qkv(self.norm1(h)).view(n, length, 3, self.heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (n, heads, T, hidden / heads)
        attended = F.scaled_dot_product_attention(q, k, v)
        h = h + self.out(attended.transpose(1, 2).reshape(n, length, hidden))
        return h + self.mlp(self.norm2(h))


class TinyMDM(nn.Module):
    """A tiny bidirectional transformer with LLaDA's calling convention.

    ``model(input_ids)`` with ``input_ids`` of shape ``(batch, T)`` returns a
    :class:`TinyMDMOutput` whose ``logits`` have shape ``(batch, T, V)``, like the
    remote-code ``LLaDAModelLM``. ``model.config`` carries ``vocab_size`` and
    ``mask_token_id`` where the adapter looks for them.

    Parameters
    ----------
    config : TinyMDMConfig
        Sizes, ids and the seed of the random weights.

    Notes
    -----
    Weights are drawn from a ``torch.Generator`` seeded with ``config.seed``: the
    global random state is neither read nor changed. The output layer has a larger
    scale than usual so that the predicted distributions are far from uniform, which
    makes decoding orders and confidences differ between positions.

    Examples
    --------
    >>> model = TinyMDM(TinyMDMConfig(vocab_size=8, mask_token_id=7, seed=1))
    >>> model(torch.tensor([[7, 2, 7]])).logits.shape
    torch.Size([1, 3, 8])
    """

    def __init__(self, config: TinyMDMConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.embed = nn.Embedding(config.vocab_size, hidden)
        self.position = nn.Embedding(config.max_length, hidden)
        self.blocks = nn.ModuleList(
            _Block(hidden, config.num_heads) for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, config.vocab_size, bias=False)
        self._init_weights(config.seed)
        self.eval()

    @torch.no_grad()
    def _init_weights(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        for name, param in self.named_parameters():
            if name.startswith("norm") or ".norm" in name:
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                param.normal_(0.0, 0.1, generator=generator)
            elif name.startswith("embed") or name.startswith("position"):
                param.normal_(0.0, 1.0, generator=generator)
            elif name.startswith("head"):
                param.normal_(0.0, 1.0, generator=generator)
            else:
                std = 1.0 / math.sqrt(param.shape[1])
                param.normal_(0.0, std, generator=generator)

    @property
    def device(self) -> torch.device:
        """The device of the weights, as on a ``transformers`` model."""
        return self.head.weight.device

    def forward(self, input_ids: Tensor) -> TinyMDMOutput:
        """Return the logits of every position given every other.

        Parameters
        ----------
        input_ids : Tensor, shape (batch, T)
            Token ids in ``[0, V)``; masked positions hold ``config.mask_token_id``.

        Returns
        -------
        TinyMDMOutput
            ``logits`` of shape ``(batch, T, V)``, in the dtype of the weights.
        """
        length = input_ids.shape[-1]
        if length > self.config.max_length:
            raise ValueError(
                f"input_ids: expected at most max_length={self.config.max_length} "
                f"positions, actual {length}"
            )
        positions = torch.arange(length, device=input_ids.device)
        h = self.embed(input_ids) + self.position(positions)
        for block in self.blocks:
            h = block(h)
        return TinyMDMOutput(logits=self.head(self.norm(h)))


class MaskArgmaxMDM(TinyMDM):
    """A :class:`TinyMDM` whose highest logit is always the mask token's.

    The mask logit is the largest real-token logit plus ``margin``, at every position
    and for every input. A decoder that let the mask logit take part in sampling
    would keep "revealing" masks; through the adapter, whose mask log-probability is
    ``-inf``, every position still decodes to a real token.

    Parameters
    ----------
    config : TinyMDMConfig
        As for :class:`TinyMDM`.
    margin : float
        How far the mask logit sits above the best real token, ``> 0``.

    Examples
    --------
    >>> model = MaskArgmaxMDM(TinyMDMConfig(vocab_size=8, mask_token_id=3))
    >>> model(torch.tensor([[3, 3]])).logits.argmax(-1).tolist()
    [[3, 3]]
    """

    def __init__(self, config: TinyMDMConfig, margin: float = 10.0) -> None:
        super().__init__(config)
        self.margin = check_finite("margin", margin)
        if self.margin <= 0:
            raise ValueError(f"margin={margin!r}: expected a positive real number")

    def forward(self, input_ids: Tensor) -> TinyMDMOutput:
        logits = super().forward(input_ids).logits
        is_mask = torch.arange(logits.shape[-1], device=logits.device)
        is_mask = is_mask == self.config.mask_token_id
        best_real = logits.masked_fill(is_mask, -torch.inf).amax(-1, keepdim=True)
        return TinyMDMOutput(
            logits=torch.where(is_mask, best_real + self.margin, logits)
        )


def tiny_llada(seed: int = 0, hidden_size: int = 8, max_length: int = 128) -> TinyMDM:
    """A :class:`TinyMDM` with LLaDA-8B's ids and vocabulary width.

    The mask id is ``126336`` inside a ``126464``-wide vocabulary, the end of text
    ``126081`` doubles as padding and the beginning of text is ``126080``, as in
    LLaDA-8B's config and tokenizer. The hidden size is tiny so that a forward pass
    on a few dozen positions takes milliseconds.

    Parameters
    ----------
    seed : int
        Seed of the random weights.
    hidden_size : int
        Width of the residual stream (one layer, two heads).
    max_length : int
        Longest sequence accepted.

    Returns
    -------
    TinyMDM
        In evaluation mode, on the CPU, in float32.

    References
    ----------
    Nie et al., "Large Language Diffusion Models", 2025, arXiv:2502.09992.
    """
    config = TinyMDMConfig(
        vocab_size=LLADA_VOCAB_SIZE,
        mask_token_id=LLADA_MASK_ID,
        hidden_size=hidden_size,
        num_layers=1,
        num_heads=2,
        max_length=max_length,
        seed=seed,
        bos_token_id=LLADA_BOS_ID,
        eos_token_id=LLADA_EOS_ID,
        pad_token_id=LLADA_EOS_ID,
    )
    return TinyMDM(config)


def tiny_bert_mlm(
    seed: int = 0, vocab_size: int = 64, hidden_size: int = 32, max_length: int = 64
):
    """A tiny ``BertForMaskedLM`` built from a ``transformers`` ``BertConfig``.

    Nothing is downloaded: the model is constructed from the config with random
    weights drawn under ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``,
    so the caller's global random state is left as it was.

    Parameters
    ----------
    seed : int
        Seed of the random weights.
    vocab_size : int
        ``V``; the ids follow BERT's layout where they fit: pad ``0``, and the mask
        is the last id ``V - 1`` (stored as ``config.mask_token_id``).
    hidden_size : int
        Hidden width (one layer, two heads).
    max_length : int
        ``max_position_embeddings``.

    Returns
    -------
    transformers.BertForMaskedLM
        In evaluation mode, on the CPU.

    Raises
    ------
    ImportError
        If ``transformers`` is not installed (the ``pmdm[hf]`` extra).
    """
    from pmdm.adapters.hf import require_transformers

    transformers = require_transformers()
    vocab_size = check_int("vocab_size", vocab_size, minimum=4)
    config = transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=max_length,
        pad_token_id=0,
        mask_token_id=vocab_size - 1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.BertForMaskedLM(config)
    return model.eval()


def save_tiny_mdm(model: TinyMDM, directory: str | os.PathLike[str]) -> Path:
    """Write a :class:`TinyMDM` (or :class:`MaskArgmaxMDM`) to a directory.

    The directory gets ``pmdm_tiny_mdm.json`` (class, config, margin) and the
    weights; a tokenizer saved beside them with ``save_pretrained`` is picked up by
    :func:`load_tiny_mdm`. This is how tests run ``pmdm generate`` offline on a
    tiny model.

    Parameters
    ----------
    model : TinyMDM
    directory : str or os.PathLike
        Created if missing.

    Returns
    -------
    Path
        The directory.
    """
    if not isinstance(model, TinyMDM):
        raise TypeError(
            f"model: expected a TinyMDM or MaskArgmaxMDM, actual {type(model).__name__}"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"class": type(model).__name__, "config": asdict(model.config)}
    if isinstance(model, MaskArgmaxMDM):
        meta["margin"] = model.margin
    (directory / TINY_MDM_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    torch.save(model.state_dict(), directory / _TINY_WEIGHTS_FILE)
    return directory


def load_tiny_mdm(directory: str | os.PathLike[str]) -> TinyMDM:
    """Read a model written by :func:`save_tiny_mdm`, in evaluation mode.

    Raises
    ------
    ValueError
        If ``directory`` holds no ``pmdm_tiny_mdm.json`` or names an unknown class.
    """
    directory = Path(directory)
    path = directory / TINY_MDM_FILE
    if not path.is_file():
        raise ValueError(f"directory={str(directory)!r}: holds no {TINY_MDM_FILE}")
    meta = json.loads(path.read_text())
    config = TinyMDMConfig(**meta["config"])
    if meta.get("class") == "TinyMDM":
        model = TinyMDM(config)
    elif meta.get("class") == "MaskArgmaxMDM":
        model = MaskArgmaxMDM(config, margin=meta["margin"])
    else:
        raise ValueError(
            f"{path}: class={meta.get('class')!r}, expected 'TinyMDM' or 'MaskArgmaxMDM'"
        )
    weights = directory / _TINY_WEIGHTS_FILE
    if weights.is_file():
        model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()

"""A small pre-norm transformer shared by the masked diffusion adder and NanoAdder.

Pure torch: token and learned absolute position embeddings, ``n_layers`` blocks of
multi-head self-attention and a GELU MLP (pre-LayerNorm, residual), a final
LayerNorm and a linear head. Attention is bidirectional for the masked diffusion
model and causal for the autoregressive NanoAdder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmdm.ops.validation import check_int


@dataclass(frozen=True)
class TransformerConfig:
    """Shape of a :class:`Transformer`.

    Attributes
    ----------
    vocab_size : int
        ``V``, number of input token ids and of output logits.
    max_len : int
        Largest sequence length ``T`` (number of position embeddings).
    d_model : int
        Width of the residual stream; a multiple of ``n_heads``.
    n_layers : int
        Number of blocks.
    n_heads : int
        Attention heads per block.
    d_ff : int
        Hidden width of the MLP.
    causal : bool
        Causal (autoregressive) attention instead of bidirectional.
    mask_token_id, pad_token_id : int, optional
        Ids of the mask and pad tokens, named as in a Hugging Face config so that
        adapters find them (``HFPredictor`` reads ``config.mask_token_id``).
    """

    vocab_size: int
    max_len: int
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    causal: bool = False
    mask_token_id: int | None = None
    pad_token_id: int | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_len", "d_model", "n_layers", "n_heads", "d_ff"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("mask_token_id", "pad_token_id"):
            if getattr(self, name) is not None:
                check_int(
                    name, getattr(self, name), minimum=0, maximum=self.vocab_size - 1
                )
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model must be a multiple of n_heads, got d_model={self.d_model} "
                f"and n_heads={self.n_heads}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TransformerConfig:
        """Rebuild from :meth:`to_dict`; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(
                f"unknown TransformerConfig keys {unknown!r} in {payload!r}"
            )
        return cls(**payload)


@dataclass
class TransformerOutput:
    """Output of :class:`Transformer`, shaped like a Hugging Face model output.

    Attributes
    ----------
    logits : Tensor, shape (*batch, T, V)
        Unnormalized scores of each token at each position.
    """

    logits: Tensor


class _Block(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.causal = config.causal
        self.norm_attn = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.norm_mlp = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff),
            nn.GELU(),
            nn.Linear(config.d_ff, config.d_model),
        )

    def forward(self, h: Tensor) -> Tensor:
        # Split heads: (N, T, 3 * D) -> 3 x (N, heads, T, D / heads)
        n, t, d = h.shape
        qkv = self.qkv(self.norm_attn(h)).view(n, t, 3, self.n_heads, d // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        h = h + self.proj(attn.transpose(1, 2).reshape(n, t, d))
        return h + self.mlp(self.norm_mlp(h))


class Transformer(nn.Module):
    """Token + position embeddings, ``n_layers`` pre-norm blocks, a linear head.

    Parameters
    ----------
    config : TransformerConfig
        Its shape.

    Notes
    -----
    ``model(input_ids).logits`` has shape ``(*batch, T, V)``, as for a Hugging Face
    masked or causal language model, so the same adapter code wraps this model and
    LLaDA.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.max_len, config.d_model)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # GPT-2 style initialization: N(0, 0.02) weights, zero biases
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, input_ids: Tensor, **unused: Any) -> TransformerOutput:
        """Logits of every position.

        Parameters
        ----------
        input_ids : Tensor, shape (*batch, T)
            Long token ids, ``T <= max_len``.
        **unused
            Ignored (accepts e.g. ``attention_mask`` like a Hugging Face model).

        Returns
        -------
        TransformerOutput
            With ``logits`` of shape ``(*batch, T, V)``.
        """
        if input_ids.shape[-1] > self.config.max_len:
            raise ValueError(
                f"input_ids may have at most max_len={self.config.max_len} positions, "
                f"got shape {tuple(input_ids.shape)}"
            )
        batch_shape, t = input_ids.shape[:-1], input_ids.shape[-1]
        ids = input_ids.reshape(-1, t)
        h = self.tok_emb(ids) + self.pos_emb(torch.arange(t, device=ids.device))
        for block in self.blocks:
            h = block(h)
        logits = self.head(self.norm(h))
        return TransformerOutput(logits=logits.reshape(*batch_shape, t, -1))

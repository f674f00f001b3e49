"""Hugging Face masked models (LLaDA, BERT-family masked LMs) as pmdm predictors.

:class:`HFPredictor` turns any module called as ``model(input_ids).logits`` into a
predictor of ``pmdm.predictors.base.Predictor``: token ids in, normalized
log-probabilities over the model's vocabulary out, with the mask token's own
log-probability ``-inf``. ``transformers`` is imported only when a function needs it
(install the ``pmdm[hf]`` extra); wrapping an already constructed module needs no
``transformers`` at all.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from pmdm.ops.validation import check_int, check_token_tensor

logger = logging.getLogger(__name__)

__all__ = [
    "AdapterLoadError",
    "HFPredictor",
    "require_transformers",
    "transformers_version",
]

#: Config and tokenizer attributes holding ids that the mask id must not equal.
SHADOWED_ID_NAMES = (
    "pad_token_id",
    "eos_token_id",
    "bos_token_id",
    "cls_token_id",
    "sep_token_id",
    "unk_token_id",
)

_INTERFACE = "model(input_ids).logits of shape (batch, T, vocab)"

#: Files of which at least one is present in a directory that holds a tokenizer.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
)


class AdapterLoadError(RuntimeError):
    """Loading a model or tokenizer failed; the message names transformers' version."""


def require_transformers() -> Any:
    """Import and return ``transformers``, or raise an ImportError naming the extra.

    Returns
    -------
    module
        The ``transformers`` package.

    Raises
    ------
    ImportError
        If ``transformers`` is not installed.
    """
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(
            "the Hugging Face adapter needs the optional dependency transformers; "
            "install it with: pip install 'pmdm[hf]'"
        ) from exc
    return transformers


def transformers_version() -> str:
    """The installed ``transformers`` version, or ``"not installed"``."""
    try:
        import transformers
    except ImportError:
        return "not installed"
    return str(transformers.__version__)


def _dtype_keyword() -> str:
    """``from_pretrained`` takes ``dtype`` from transformers 4.56 on, ``torch_dtype``
    before (and warns about ``torch_dtype`` after)."""
    from packaging.version import Version

    return (
        "dtype" if Version(transformers_version()) >= Version("4.56") else "torch_dtype"
    )


def _as_id_list(value: object) -> list[int]:
    """Config ids are an int, a list of ints (several eos ids) or None."""
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


def _config_get(config: object, name: str) -> object:
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def _infer_vocab_size(model: nn.Module) -> int | None:
    """The logits width: ``config.vocab_size``, else the output embedding rows."""
    vocab_size = _config_get(getattr(model, "config", None), "vocab_size")
    if isinstance(vocab_size, int) and not isinstance(vocab_size, bool):
        return vocab_size
    get_output = getattr(model, "get_output_embeddings", None)
    if callable(get_output):
        head = get_output()
        weight = getattr(head, "weight", None)
        if isinstance(weight, Tensor) and weight.dim() == 2:
            return int(weight.shape[0])
    return None


def _resolve_mask_id(
    mask_id: object, config: object, tokenizer: object, vocab_size: int
) -> int:
    """Pick the mask id (argument, else config, else tokenizer) and validate it."""
    from_config = _config_get(config, "mask_token_id")
    from_tokenizer = getattr(tokenizer, "mask_token_id", None)
    if mask_id is None:
        mask_id = from_config if from_config is not None else from_tokenizer
        source = "model config" if from_config is not None else "tokenizer"
        if mask_id is None:
            raise ValueError(
                "mask_id=None: the model config has no mask_token_id and no tokenizer "
                "with a mask_token_id was given; pass mask_id=<the model's mask id>"
            )
        name = f"mask_id (from the {source})"
    else:
        name = "mask_id"
    mask_id = check_int(name, mask_id, minimum=0)
    if mask_id >= vocab_size:
        raise ValueError(
            f"{name}={mask_id!r}: expected an id inside the vocabulary "
            f"[0, {vocab_size}) (vocab_size={vocab_size})"
        )

    # Config and tokenizer, where they name a mask id, must agree with it.
    for source, known in (("model config", from_config), ("tokenizer", from_tokenizer)):
        if known is not None and known != mask_id:
            raise ValueError(
                f"{name}={mask_id!r}: the {source} says mask_token_id={known!r}; "
                "pass the id the model was trained with, or mask_id=None to use it"
            )

    # The mask must not stand for a token the model also uses as a real one.
    for source, holder in (("model config", config), ("tokenizer", tokenizer)):
        for attr in SHADOWED_ID_NAMES:
            if mask_id in _as_id_list(_config_get(holder, attr)):
                raise ValueError(
                    f"{name}={mask_id!r}: equals the {source}'s {attr}; the mask id "
                    "must be distinct from padding, end/beginning of text and the "
                    "other special ids"
                )
    return mask_id


_DROPOUT = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


def _has_active_dropout(model: nn.Module) -> bool:
    return any(
        isinstance(m, _DROPOUT) and m.training and m.p > 0 for m in model.modules()
    )


def _model_device(model: nn.Module) -> torch.device | None:
    for param in model.parameters():
        return param.device
    return None


class HFPredictor:
    """A masked model seen through pmdm's predictor contract.

    ``predictor(tokens)`` runs the model once on ``tokens`` (masked positions equal
    to :attr:`mask_id`) and returns normalized log-probabilities over the model's
    vocabulary, computed with ``log_softmax`` in :attr:`compute_dtype` (float64 by
    default) whatever the model's dtype, and with the mask token's log-probability
    set to ``-inf``: the mask's own logit takes part neither in the normalization nor
    in any sample or score built on the result, so a model whose highest logit is
    the mask still yields real tokens.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(input_ids)`` with ``input_ids`` of shape ``(batch, T)``;
        must return an object with ``.logits`` of shape ``(batch, T, V)``. LLaDA's
        remote-code ``LLaDAModelLM``, any ``AutoModelForMaskedLM`` and
        :class:`pmdm.adapters.tiny.TinyMDM` qualify. Put it in evaluation mode.
    mask_id : int, optional
        The mask token id. If omitted, ``model.config.mask_token_id``, else
        ``tokenizer.mask_token_id``. It must lie in ``[0, V)``, agree with the
        config and tokenizer when they name one, and differ from their pad, eos,
        bos, cls, sep and unk ids.
    tokenizer : optional
        A ``transformers`` tokenizer, used for the mask id, for the ids the mask
        must not shadow, and by :func:`pmdm.adapters.prompts.encode_prompt`.
    vocab_size : int, optional
        ``V``. If omitted, ``model.config.vocab_size``, else the number of rows of
        ``model.get_output_embeddings()``.
    compute_dtype : torch.dtype
        Floating dtype of the log-softmax and of the returned log-probabilities.

    Attributes
    ----------
    vocab_size : int
        ``V``, the width of the returned log-probabilities.
    mask_id : int
        The model's mask id; its column of every result is ``-inf``.
    nfe : int
        Number of calls so far (function evaluations); one call is one forward
        pass of the model on the whole batch.
    sequences : int
        Number of sequences passed through the model so far (rows of all batches).

    Raises
    ------
    TypeError
        If ``model`` is not a torch module or ``mask_id`` is not an integer.
    ValueError
        If the vocabulary size cannot be found or the mask id is invalid.

    Warns
    -----
    UserWarning
        If the model holds dropout layers in training mode (predictions would be
        random); the remedy is ``model.eval()``.

    Notes
    -----
    The model runs under ``torch.no_grad()``. It attends without a padding mask
    (LLaDA has none), so every sequence of a batch must have the same length and no
    position is padding. Prompts of different lengths are run apart: see
    :func:`pmdm.adapters.prompts.run_by_length`. The log-softmax runs on the model's
    device (except MPS, which lacks float64); the model runs on its own device and
    the result is on the device of ``tokens``.

    Examples
    --------
    >>> from pmdm.adapters.tiny import TinyMDM, TinyMDMConfig
    >>> predictor = HFPredictor(TinyMDM(TinyMDMConfig(vocab_size=8, mask_token_id=7)))
    >>> log_probs = predictor(torch.tensor([[1, 7, 7]]))
    >>> log_probs.shape, log_probs.dtype, predictor.nfe
    (torch.Size([1, 3, 8]), torch.float64, 1)
    >>> bool(log_probs[..., 7].eq(-torch.inf).all())
    True
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        mask_id: int | None = None,
        tokenizer: Any = None,
        vocab_size: int | None = None,
        compute_dtype: torch.dtype = torch.float64,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"model: expected a torch.nn.Module called as {_INTERFACE}, "
                f"actual {type(model).__name__}"
            )
        if not (
            isinstance(compute_dtype, torch.dtype) and compute_dtype.is_floating_point
        ):
            raise TypeError(
                f"compute_dtype={compute_dtype!r}: expected a floating torch.dtype "
                "such as torch.float64 or torch.float32"
            )
        if vocab_size is None:
            vocab_size = _infer_vocab_size(model)
            if vocab_size is None:
                raise ValueError(
                    "vocab_size=None: the model has no config.vocab_size and no output "
                    "embeddings; pass vocab_size=<width of the logits>"
                )
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=2)
        self.config = getattr(model, "config", None)
        self.mask_id = _resolve_mask_id(
            mask_id, self.config, tokenizer, self.vocab_size
        )
        if _has_active_dropout(model):
            warnings.warn(
                f"model: {type(model).__name__} is in training mode with dropout, so "
                "its predictions are random; call model.eval() before wrapping it",
                UserWarning,
                stacklevel=2,
            )
        self.model = model
        self.tokenizer = tokenizer
        self.compute_dtype = compute_dtype
        self.nfe = 0
        self.sequences = 0

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        mask_id: int | None = None,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
        trust_remote_code: bool = False,
        loader: Literal["auto", "model", "masked_lm"] = "auto",
        load_tokenizer: bool | None = None,
        compute_dtype: torch.dtype = torch.float64,
    ) -> HFPredictor:
        """Load a model (and its tokenizer) from a local directory.

        Nothing is downloaded: ``path`` must be a directory on disk and loading runs
        with ``local_files_only=True``.

        Parameters
        ----------
        path : str or os.PathLike
            A local directory written by ``save_pretrained`` or a hub snapshot.
        mask_id : int, optional
            As for :class:`HFPredictor`; by default from the config or tokenizer.
        dtype : torch.dtype, optional
            Weight dtype, e.g. ``torch.bfloat16`` for LLaDA-8B on a GPU; by default
            the one ``transformers`` picks.
        device : str or torch.device, optional
            Where to move the model after loading.
        trust_remote_code : bool
            Must be ``True`` for LLaDA, whose model class ships with the weights as
            Python code; only set it for code you trust.
        loader : {"auto", "model", "masked_lm"}
            ``"model"`` uses ``AutoModel`` (LLaDA's remote code), ``"masked_lm"``
            ``AutoModelForMaskedLM``; ``"auto"`` uses ``AutoModel`` when the config's
            ``auto_map`` names one and no ``AutoModelForMaskedLM``, else
            ``AutoModelForMaskedLM``.
        load_tokenizer : bool, optional
            Load the tokenizer from ``path`` (for the mask id, the ids it must not
            shadow, and prompts). ``None`` (default): if ``path`` holds tokenizer
            files; ``True``: required; ``False``: never.
        compute_dtype : torch.dtype
            As for :class:`HFPredictor`.

        Returns
        -------
        HFPredictor
            Around the loaded model, in evaluation mode.

        Raises
        ------
        ImportError
            If ``transformers`` is not installed.
        ValueError
            If ``path`` is not a local directory, or ``loader`` is unknown.
        AdapterLoadError
            If ``transformers`` fails to load the config, model or tokenizer; the
            message carries the installed ``transformers`` version and the original
            error is chained.
        """
        transformers = require_transformers()
        if loader not in ("auto", "model", "masked_lm"):
            raise ValueError(
                f"loader={loader!r}: expected 'auto', 'model' or 'masked_lm'"
            )
        directory = Path(path)
        if not directory.is_dir():
            raise ValueError(
                f"path={str(path)!r}: expected a local directory; pmdm never downloads "
                "weights (fetch them first, e.g. `huggingface-cli download "
                "GSAI-ML/LLaDA-8B-Instruct --local-dir DIR`, and pass DIR)"
            )
        common = {"local_files_only": True, "trust_remote_code": trust_remote_code}
        version = transformers.__version__

        def fail(what: str, exc: Exception) -> AdapterLoadError:
            return AdapterLoadError(
                f"loading the {what} from path={str(path)!r} failed with transformers "
                f"{version}: {type(exc).__name__}: {exc}"
            )

        try:
            config = transformers.AutoConfig.from_pretrained(directory, **common)
        except Exception as exc:
            raise fail("config", exc) from exc
        if loader == "auto":
            auto_map = getattr(config, "auto_map", None) or {}
            remote = "AutoModel" in auto_map and "AutoModelForMaskedLM" not in auto_map
            loader = "model" if remote else "masked_lm"
        auto_class = (
            transformers.AutoModel
            if loader == "model"
            else transformers.AutoModelForMaskedLM
        )
        kwargs: dict[str, Any] = dict(common)
        if dtype is not None:
            kwargs[_dtype_keyword()] = dtype
        try:
            model = auto_class.from_pretrained(directory, config=config, **kwargs)
        except Exception as exc:
            raise fail(f"model ({auto_class.__name__})", exc) from exc
        if device is not None:
            model = model.to(device)
        model.eval()
        tokenizer = None
        has_files = any((directory / name).is_file() for name in TOKENIZER_FILES)
        if load_tokenizer and not has_files:
            raise ValueError(
                f"load_tokenizer=True: path={str(path)!r} holds none of the tokenizer "
                f"files {list(TOKENIZER_FILES)}"
            )
        if has_files and load_tokenizer is not False:
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(
                    directory, **common
                )
            except Exception as exc:
                raise fail("tokenizer", exc) from exc
        logger.debug("loaded %s from %s", type(model).__name__, directory)
        return cls(
            model, mask_id=mask_id, tokenizer=tokenizer, compute_dtype=compute_dtype
        )

    def logits(self, tokens: Tensor) -> Tensor:
        """Run the model once and return its raw logits, checked, on ``tokens``' device.

        Parameters
        ----------
        tokens : Tensor, shape (*batch, T)
            Token ids in ``[0, V)``, masked positions equal to :attr:`mask_id`.

        Returns
        -------
        Tensor, shape (*batch, T, V)
            The model's logits, including the mask column, in the model's dtype.

        Raises
        ------
        TypeError
            If the model output has no ``.logits`` tensor.
        ValueError
            If ``tokens`` holds ids outside ``[0, V)`` or the logits have the wrong
            shape.
        """
        logits = self._forward(tokens)
        return logits.to(tokens.device)

    def _forward(self, tokens: Tensor) -> Tensor:
        """:meth:`logits` left on the model's device."""
        tokens = check_token_tensor("tokens", tokens)
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(
                f"tokens: expected ids in [0, {self.vocab_size}), actual range "
                f"[{int(tokens.min())}, {int(tokens.max())}]"
            )
        batch_shape, length = tokens.shape[:-1], tokens.shape[-1]
        device = _model_device(self.model)
        device = tokens.device if device is None else device
        input_ids = tokens.reshape(-1, length).to(device)  # (n, T)
        with torch.no_grad():
            output = self.model(input_ids)
        self.nfe += 1
        self.sequences += input_ids.shape[0]

        # Check the interface: an object with .logits of shape (n, T, V).
        logits = getattr(output, "logits", None)
        if logits is None and isinstance(output, Mapping):
            logits = output.get("logits")
        if not isinstance(logits, Tensor):
            raise TypeError(
                f"model output: expected {_INTERFACE}, actual a "
                f"{type(output).__name__} without a .logits tensor"
            )
        expected = (input_ids.shape[0], length, self.vocab_size)
        if tuple(logits.shape) != expected:
            raise ValueError(
                f"model output: expected {_INTERFACE} = {expected} for input_ids of "
                f"shape {tuple(input_ids.shape)}, actual logits of shape "
                f"{tuple(logits.shape)}; if the model pads its vocabulary (e.g. a "
                "config.embedding_size above vocab_size), pass vocab_size=<logits width>"
            )
        return logits.reshape(*batch_shape, length, self.vocab_size)

    def log_probs_from_logits(self, logits: Tensor) -> Tensor:
        """Normalize logits over the real tokens: the mask column becomes ``-inf``.

        Parameters
        ----------
        logits : Tensor, shape (..., V)
            Unnormalized scores, any floating dtype.

        Returns
        -------
        Tensor, shape (..., V)
            ``log_softmax`` in :attr:`compute_dtype` over every column but the mask,
            whose entry is ``-inf``.
        """
        # A copy in compute_dtype (the model's own tensor is never edited), then the
        # mask column: one pass over (..., V) fewer than a masked_fill.
        scores = logits.to(self.compute_dtype, copy=True)
        scores[..., self.mask_id] = -torch.inf
        return torch.log_softmax(scores, dim=-1)

    def __call__(self, tokens: Tensor) -> Tensor:
        """Predicted distributions of every position given the revealed ones.

        Parameters
        ----------
        tokens : Tensor, shape (*batch, T)
            Token ids, masked positions equal to :attr:`mask_id`.

        Returns
        -------
        Tensor, shape (*batch, T, V)
            Normalized log-probabilities in :attr:`compute_dtype`; the mask column is
            ``-inf``. Rows of revealed positions are returned too but carry no
            meaning for decoding.
        """
        # Normalize where the model runs (a GPU for LLaDA-8B), then move the result;
        # MPS has no float64, so there the logits move first.
        logits = self._forward(tokens)
        if logits.device.type == "mps":
            logits = logits.to(tokens.device)
        return self.log_probs_from_logits(logits).to(tokens.device)

    def encode(
        self, text: str | Sequence[dict[str, str]], *, chat: bool = False
    ) -> Tensor:
        """Prompt token ids through :attr:`tokenizer`; see
        :func:`pmdm.adapters.prompts.encode_prompt`.

        Parameters
        ----------
        text : str or sequence of dict
            The prompt, or chat messages.
        chat : bool
            Apply the tokenizer's chat template (instruct models).

        Returns
        -------
        Tensor, shape (P,)
            Long ids, none equal to :attr:`mask_id`.

        Raises
        ------
        ValueError
            If the predictor has no tokenizer, or as ``encode_prompt``.
        """
        from pmdm.adapters.prompts import encode_prompt

        if self.tokenizer is None:
            raise ValueError(
                "tokenizer=None: this predictor has no tokenizer; pass tokenizer= or "
                "load from a directory that holds one"
            )
        return encode_prompt(self.tokenizer, text, chat=chat, mask_id=self.mask_id)

    def decode(self, tokens: Tensor, *, skip_special_tokens: bool = True) -> str:
        """Text of a 1-d tensor of token ids through :attr:`tokenizer`.

        Parameters
        ----------
        tokens : Tensor, shape (T,)
        skip_special_tokens : bool
            Drop special tokens such as end of text and padding.

        Returns
        -------
        str

        Raises
        ------
        ValueError
            If the predictor has no tokenizer or ``tokens`` is not 1-d.
        """
        if self.tokenizer is None:
            raise ValueError(
                "tokenizer=None: this predictor has no tokenizer to decode"
            )
        tokens = check_token_tensor("tokens", tokens)
        if tokens.dim() != 1:
            raise ValueError(
                f"tokens: expected shape (T,), actual {tuple(tokens.shape)}"
            )
        return self.tokenizer.decode(
            tokens.tolist(), skip_special_tokens=skip_special_tokens
        )

    def __repr__(self) -> str:
        return (
            f"HFPredictor(model={type(self.model).__name__}, vocab_size="
            f"{self.vocab_size}, mask_id={self.mask_id}, nfe={self.nfe})"
        )

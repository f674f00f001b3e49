"""Real masked models as pmdm predictors, and what can be measured on them.

- :mod:`pmdm.adapters.hf`: :class:`HFPredictor`, LLaDA and any Hugging Face masked
  LM behind the predictor contract (``transformers`` imported lazily: the
  ``pmdm[hf]`` extra).
- :mod:`pmdm.adapters.prompts`: prompt encoding (chat templates), the canvas,
  batching without padding, classifier-free guidance.
- :mod:`pmdm.adapters.measure`: entropy, confidence and margin of revealed tokens,
  and the model's own forward conditional total correlation of a block.
- :mod:`pmdm.adapters.tiny`: tiny random models with LLaDA's interface, for trying
  everything offline.

Importing this package does not import ``transformers``.
"""

from pmdm.adapters.hf import AdapterLoadError, HFPredictor, transformers_version
from pmdm.adapters.measure import (
    ChainTCEstimate,
    RevealedMeasures,
    chain_total_correlation,
    confidence,
    entropy,
    margin,
    revealed_measures,
    token_log_prob,
)
from pmdm.adapters.prompts import (
    GuidedPredictor,
    encode_prompt,
    prompt_canvas,
    run_by_length,
    stack_prompts,
)
from pmdm.adapters.tiny import (
    MaskArgmaxMDM,
    TinyMDM,
    TinyMDMConfig,
    tiny_bert_mlm,
    tiny_llada,
)

__all__ = [
    "AdapterLoadError",
    "ChainTCEstimate",
    "GuidedPredictor",
    "HFPredictor",
    "MaskArgmaxMDM",
    "RevealedMeasures",
    "TinyMDM",
    "TinyMDMConfig",
    "chain_total_correlation",
    "confidence",
    "encode_prompt",
    "entropy",
    "margin",
    "prompt_canvas",
    "revealed_measures",
    "run_by_length",
    "stack_prompts",
    "tiny_bert_mlm",
    "tiny_llada",
    "token_log_prob",
    "transformers_version",
]

"""Real masked models as pmdm predictors, and what can be measured on them.

- :mod:`pmdm.adapters.hf`: :class:`HFPredictor`, LLaDA and any Hugging Face masked
  LM behind the predictor contract (``transformers`` imported lazily: the
  ``pmdm[hf]`` extra).
- :mod:`pmdm.adapters.prompts`: prompt encoding (chat templates), the canvas,
  batching without padding, classifier-free guidance.
- :mod:`pmdm.adapters.measure`: entropy, confidence and margin of revealed tokens,
  and the model's own forward conditional total correlation of a block.
- :mod:`pmdm.adapters.generate`: LLaDA's sampler as a pmdm decoder
  (:func:`llada_decoder`), :func:`generate` from prompts with per-step measurements,
  the model's block TC, and :func:`trace_decode` (a decoder run as a Pyro guide).
- :mod:`pmdm.adapters.tiny`: tiny random models with LLaDA's interface, for trying
  everything offline.
- :mod:`pmdm.adapters.cli`: the ``pmdm generate`` command (``register_cli``).

Importing this package does not import ``transformers``.
"""

from pmdm.adapters.generate import (
    GenerateResult,
    StepMeasures,
    block_total_correlation,
    decoder_guide,
    generate,
    llada_decoder,
    resolve_order,
    step_measures,
    trace_decode,
)
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
    load_tiny_mdm,
    save_tiny_mdm,
    tiny_bert_mlm,
    tiny_llada,
)

__all__ = [
    "AdapterLoadError",
    "ChainTCEstimate",
    "GenerateResult",
    "GuidedPredictor",
    "HFPredictor",
    "MaskArgmaxMDM",
    "RevealedMeasures",
    "StepMeasures",
    "TinyMDM",
    "TinyMDMConfig",
    "block_total_correlation",
    "chain_total_correlation",
    "confidence",
    "decoder_guide",
    "encode_prompt",
    "entropy",
    "generate",
    "llada_decoder",
    "load_tiny_mdm",
    "margin",
    "prompt_canvas",
    "resolve_order",
    "revealed_measures",
    "run_by_length",
    "save_tiny_mdm",
    "stack_prompts",
    "step_measures",
    "tiny_bert_mlm",
    "tiny_llada",
    "token_log_prob",
    "trace_decode",
    "transformers_version",
]

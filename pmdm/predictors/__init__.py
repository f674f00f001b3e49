"""Any-order conditional predictors: what a decoder sees of a model.

- :mod:`pmdm.predictors.base`: the :class:`Predictor` protocol and input checks.
- :mod:`pmdm.predictors.oracle`: :class:`OraclePredictor`, a target's exact
  conditionals, with joint queries for exact and rejection-verified steps.
- :mod:`pmdm.predictors.noisy`: :class:`NoisyPredictor`, model error of one
  adjustable level around any predictor, and its realized local KL.
"""

from pmdm.predictors.base import Predictor, check_masked_tokens
from pmdm.predictors.noisy import LocalKL, NoisyPredictor
from pmdm.predictors.oracle import OraclePredictor

__all__ = [
    "LocalKL",
    "NoisyPredictor",
    "OraclePredictor",
    "Predictor",
    "check_masked_tokens",
]

"""The arithmetic study: 10-digit addition, scored by exact match.

- :mod:`~pmdm.arithmetic.suite`: the fixed 1000-problem test suite (shipped JSON).
- :mod:`~pmdm.arithmetic.scoring`: exact match overall and per category, with
  reversal for answers written least significant digit first.
- :mod:`~pmdm.arithmetic.tokenizer`: the character vocabulary and the fixed-width
  layout ``a+b=`` + answer field.
- :mod:`~pmdm.arithmetic.mdm`: a small masked diffusion model trained here, with a
  shipped checkpoint.
- :mod:`~pmdm.arithmetic.nanoadder`: small causal transformers writing the sum left to
  right or right to left, and their size sweep.
- :mod:`~pmdm.arithmetic.evaluate`: small greedy decoders for development checks.

"""

from pmdm.arithmetic.scoring import ArithmeticScore, parse_answer, score
from pmdm.arithmetic.suite import CATEGORIES, Problem, generate_suite, load_suite
from pmdm.arithmetic.tokenizer import AdditionLayout

__all__ = [
    "CATEGORIES",
    "AdditionLayout",
    "ArithmeticScore",
    "Problem",
    "generate_suite",
    "load_suite",
    "parse_answer",
    "score",
]

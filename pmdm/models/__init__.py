"""Target distributions with exact conditionals, each a Pyro model.

- :mod:`pmdm.models.base`: :class:`Target`, the contract (log-evidence of any
  revealed set, conditionals, small joints, ``sites``, ``dependency_graph``).
- :mod:`pmdm.models.block_hmm`: :class:`BlockHMM`, the Block-HMM of Zhang et al.
  (2026), arXiv 2602.00286, Sec. 6.1.
- :mod:`pmdm.models.hmm`: :class:`TokenHMM`, one latent state and one token per
  position (a visible Markov chain with identity emissions).
- :mod:`pmdm.models.table`: :class:`TableTarget`, an explicit joint over short
  sequences.
- :mod:`pmdm.models.graph`: dependency graphs and largest sets of masked positions
  that are mutually independent given the revealed ones.
"""

from pmdm.models.base import Target
from pmdm.models.block_hmm import BlockHMM
from pmdm.models.graph import (
    dependence_graph,
    mutually_independent,
    separating_priority,
)
from pmdm.models.hmm import TokenHMM
from pmdm.models.table import TableTarget

__all__ = [
    "BlockHMM",
    "TableTarget",
    "Target",
    "TokenHMM",
    "dependence_graph",
    "mutually_independent",
    "separating_priority",
]

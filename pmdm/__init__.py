"""pmdm: exact and Monte Carlo measurement of masked-diffusion decoders.

Targets are Pyro models with exact conditionals, decoders are Pyro guides, and every
error the literature discusses (order sensitivity, factorization bias, incoherence,
verification cost) is a number computed exactly where enumeration allows and by Monte
Carlo with a standard error where it does not.

Glossary of dimensions, used in every docstring and shape comment:

========  ===============================================================
``*batch``  any leading batch shape; event dimensions are indexed from the right
``T``       sequence length (number of token positions)
``V``       vocabulary size (number of real token ids)
``K``       number of latent states of a hidden Markov target
``B``       block size (positions per block)
``M``       number of blocks, ``T = M * B`` for blockwise targets
``N``       number of Monte Carlo samples
========  ===============================================================

Information quantities are in nats unless a name ends in ``_bits``. ``log_*`` names a
normalized log-probability, ``logits`` an unnormalized score, ``probs`` a probability.
"""

__version__ = "0.1.0"

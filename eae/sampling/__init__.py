"""Ex-post latent densities and the torch generator (sampler + decoder).

The sampler names are defined here, once (no numpy or torch: parameter validation imports them).
"""

SAMPLERS = ("isotropic", "mvg", "gmm")  # mixtures: every objective has them
TWO_STAGE = "two_stage"  # the two-stage VAE's second stage
ALL_SAMPLERS = (*SAMPLERS, TWO_STAGE)

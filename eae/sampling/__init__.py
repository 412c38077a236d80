"""Ex-post latent densities and the torch generator (sampler + decoder).

The sampler names are defined here, once (no numpy or torch: parameter validation imports them).
"""

SAMPLERS = ("isotropic", "mvg", "gmm")  # the Gaussian mixtures: every objective has them
FLOW = "flow"  # beyond the paper: a RealNVP flow fitted to the codes (every objective, when density.flow.enabled)
TWO_STAGE = "two_stage"  # the two-stage VAE's second stage
ALL_SAMPLERS = (*SAMPLERS, FLOW, TWO_STAGE)
GMM_KINDS = ("full", "bayesian")  # maximum likelihood (EM) | variational Bayes with a weight prior (the RAE code)
WEIGHT_PRIORS = ("dirichlet_process", "dirichlet_distribution")  # the Bayesian GMM's weight prior (scikit-learn)

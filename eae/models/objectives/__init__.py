"""The training objectives of the paper's Table 1, behind one registry.

Every objective shares the networks of ``eae.models.networks`` and the interface of
``eae.models.objectives.base.Objective``; ``registry.OBJECTIVES`` maps each ``model.objective`` value
to its class and ``weights`` declares each one's loss weights (torch-free: parameter validation
imports it alone, which is why this package's ``__init__`` imports nothing). Adding an objective is
one module defining a subclass, its weights model, one registry entry and its params.yaml section.

| name            | family  | loss (recon = squared error summed over pixels)                 |
|-----------------|---------|------------------------------------------------------------------|
| eae             | eae     | recon - entropy_weight * H_KL(BN(E(x)))   [+ decoder L2]          |
| ae              | ae      | recon                                                            |
| ae_l2           | ae      | recon + decoder_l2 ||θ_D||²                                      |
| rae             | ae      | recon + embedding_weight ½||z||²                                 |
| rae_l2          | ae      | rae + decoder_l2 ||θ_D||²                                        |
| rae_gp          | ae      | rae + gp_weight ||∇_z D(z)||²_F                                  |
| rae_sn          | ae      | rae with a spectrally normalised decoder                         |
| vae             | vae     | recon(D(z ~ q)) + kl_weight KL(q(z|x) || N(0, I))                |
| cv_vae          | vae     | as vae with q(z|x) = N(mu(x), sigma² I), sigma fixed             |
| two_stage_vae   | vae     | recon / 2γ + D/2 log 2πγ + KL (γ learned), + a second-stage VAE  |
| wae             | wae     | recon + mmd_weight MMD²_IMQ(z, N(0, I))                          |
"""

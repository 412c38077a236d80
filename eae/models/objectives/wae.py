"""The Wasserstein autoencoder with an MMD penalty (Tolstikhin et al. 2018, "Wasserstein
auto-encoders", WAE-MMD), inverse multiquadratic kernel as in the authors' code:

    z    = E(x)  (deterministic),  p ~ N(0, I) drawn afresh for every batch
    loss = recon(D(z), x) + mmd_weight * MMD²(z, p)
    k(a, b) = C / (C + ||a - b||²),  C = 2 d σ_p² s  for s in (0.1, 0.2, 0.5, 1, 2, 5, 10), σ_p = 1,
    summed over the scales s.

MMD² is the unbiased U-statistic (``mmd_imq``) over the whole minibatch (gathered over the ranks
when distributed; every rank draws the same prior sample). The prior N(0, I) is the model's own,
so the isotropic sampler is its prior.
"""

from __future__ import annotations

import torch

from eae.models.objectives.base import Objective, Stats, reconstruction_loss
from eae.models.objectives.weights import WAEWeights

IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def mmd_imq(
    x: torch.Tensor, y: torch.Tensor, scales: tuple[float, ...] = IMQ_SCALES, prior_var: float = 1.0
) -> torch.Tensor:
    """Unbiased MMD² between samples x [n, d] and y [m, d] (n, m >= 2) with the inverse
    multiquadratic kernel k(a, b) = C / (C + ||a - b||²), summed over C = 2 d prior_var s:

        MMD² = Σ_{i≠j} k(x_i, x_j) / (n(n-1)) + Σ_{i≠j} k(y_i, y_j) / (m(m-1)) - 2 Σ_{i,j} k(x_i, y_j) / (nm)
    """
    n, d = x.shape
    m = y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"mmd_imq needs at least 2 samples on each side, got {n} and {m}")
    dxx = torch.cdist(x, x).pow(2)
    dyy = torch.cdist(y, y).pow(2)
    dxy = torch.cdist(x, y).pow(2)
    off_x = 1.0 - torch.eye(n, dtype=x.dtype, device=x.device)
    off_y = 1.0 - torch.eye(m, dtype=y.dtype, device=y.device)
    total = x.new_zeros(())
    for s in scales:
        c = 2.0 * d * prior_var * s
        kxx = (c / (c + dxx) * off_x).sum() / (n * (n - 1))
        kyy = (c / (c + dyy) * off_y).sum() / (m * (m - 1))
        kxy = (c / (c + dxy)).sum() / (n * m)
        total = total + kxx + kyy - 2.0 * kxy
    return total


class WAE(Objective):
    name = "wae"
    series = ("loss", "recon", "mmd")
    isotropic_prior = True

    Weights = WAEWeights

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        z, x_hat = self(x)
        recon = reconstruction_loss(x_hat.float(), x.float())
        codes = self.shard.gather(z.float())  # the whole (global) batch
        prior = torch.randn(codes.shape, dtype=torch.float32, device=z.device)
        mmd = mmd_imq(codes, prior)
        loss = recon + self.weights.mmd_weight * mmd
        return loss, {"loss": loss.detach(), "recon": recon.detach(), "mmd": mmd.detach()}

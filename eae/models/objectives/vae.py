"""The variational family: VAE, constant-variance VAE and the two-stage VAE.

VAE (Kingma & Welling 2014; the β-weighted form of the RAE reference code):
    q(z|x) = N(mu(x), diag exp(logvar(x))),  z = mu + exp(logvar / 2) * eps
    loss = recon(D(z), x) + kl_weight * KL(q(z|x) || N(0, I))
    KL   = ½ Σ_j (exp(logvar_j) + mu_j² - 1 - logvar_j)         (per image, mean over the batch)
  With a Gaussian decoder of per-pixel variance σ², the ELBO is recon / (2σ²) + KL, i.e.
  kl_weight = 2σ²: the weight is independent of the image size.

CV-VAE (constant-variance VAE, Ghosh et al. 2019 §2): the encoder gives only mu; the posterior
    variance is a fixed sigma² for every dimension, so KL = ½ Σ_j (sigma² + mu_j² - 1 - log sigma²).

Two-stage VAE (Dai & Wipf 2019, "Diagnosing and enhancing VAE models"): stage one is a VAE whose
    decoder variance γ is learned,
        loss = recon / (2γ) + (D/2) log(2πγ) + KL,      D = C*H*W,
    stage two (``SecondStageVAE``, fitted to the stage-one codes after training) is a small VAE
    on the codes themselves; sampling draws u ~ N(0, I), decodes it with the second stage to a
    code, then with the first-stage decoder to an image.

For every member the deterministic code (``encode``, what MVG/GMM are fitted to) is the posterior
mean, and the isotropic sampler is the model's prior N(0, I).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from eae.models.networks import ArchConfig
from eae.models.objectives.base import Objective, Stats, reconstruction_loss
from eae.models.objectives.weights import CVVAEWeights, TwoStageWeights, VAEWeights

# Log-variances are clamped to this range before exp(): exp(±30) is finite in float32, and a
# posterior variance outside [1e-13, 1e13] means training has diverged anyway.
LOGVAR_RANGE = (-30.0, 30.0)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) = ½ Σ_j (exp(logvar_j) + mu_j² - 1 - logvar_j),
    summed over code dimensions and averaged over the batch (nats)."""
    logvar = logvar.clamp(*LOGVAR_RANGE)
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(1).mean()


class VAE(Objective):
    name = "vae"
    series = ("loss", "recon", "kl")
    isotropic_prior = True

    Weights = VAEWeights

    def encoder_outputs(self, arch: ArchConfig) -> int:
        return 2 * arch.latent_dim  # mu and logvar

    @property
    def kl_weight(self) -> float:
        return self.weights.kl_weight

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each [N, latent_dim]."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def sample_posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) from torch's global generator (this rank's rows
        of the draw for the global batch, ``eae.training.distributed``); (z, mu, logvar)."""
        mu, logvar = self.posterior(x)
        return mu + torch.exp(0.5 * logvar) * self.shard.randn_like(mu), mu, logvar

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        z, mu, logvar = self.sample_posterior(x)
        recon = reconstruction_loss(self.decoder(z).float(), x.float())
        kl = gaussian_kl(mu.float(), logvar.float())
        loss = recon + self.kl_weight * kl
        return loss, {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}


class CVVAE(Objective):
    """Constant-variance VAE: q(z|x) = N(mu(x), sigma² I) with a fixed sigma."""

    name = "cv_vae"
    series = ("loss", "recon", "kl")
    isotropic_prior = True

    Weights = CVVAEWeights

    def __init__(self, arch: ArchConfig, weights=None, **overrides):
        super().__init__(arch, weights, **overrides)
        self.kl_weight, self.sigma = self.weights.kl_weight, self.weights.sigma

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        mu = self.encoder(x)
        z = mu + self.sigma * self.shard.randn_like(mu)
        recon = reconstruction_loss(self.decoder(z).float(), x.float())
        logvar = torch.full_like(mu, 2.0 * math.log(self.sigma), dtype=torch.float32)
        kl = gaussian_kl(mu.float(), logvar)
        loss = recon + self.kl_weight * kl
        return loss, {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}


class TwoStageVAE(VAE):
    """Stage one of the two-stage VAE: a VAE with a learned decoder variance γ (log_gamma)."""

    name = "two_stage_vae"
    series = ("loss", "recon", "kl", "gamma")

    Weights = TwoStageWeights  # the second stage's settings only: stage one's KL weight is 1

    def __init__(self, arch: ArchConfig, weights=None, **overrides):
        super().__init__(arch, weights, **overrides)
        self.log_gamma = nn.Parameter(torch.zeros(()))

    @property
    def kl_weight(self) -> float:
        return 1.0

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        z, mu, logvar = self.sample_posterior(x)
        recon = reconstruction_loss(self.decoder(z).float(), x.float())
        kl = gaussian_kl(mu.float(), logvar.float())
        loss = gaussian_nll(recon, self.log_gamma, x[0].numel()) + kl
        return loss, {
            "loss": loss.detach(),
            "recon": recon.detach(),
            "kl": kl.detach(),
            "gamma": self.log_gamma.detach().exp(),
        }


def gaussian_nll(sq_error: torch.Tensor, log_gamma: torch.Tensor, dim: int) -> torch.Tensor:
    """-log N(x | x_hat, γ I) in D = ``dim`` dimensions from the squared error ||x - x_hat||²:
    sq_error / (2γ) + (D/2) log(2πγ), with γ = exp(log_gamma) (no division by zero)."""
    return 0.5 * sq_error * torch.exp(-log_gamma) + 0.5 * dim * (math.log(2 * math.pi) + log_gamma)


class SecondStageVAE(nn.Module):
    """Dai & Wipf's second stage: a VAE on the first-stage codes z [N, d] with MLP encoder and
    decoder (``layers`` hidden layers of ``hidden`` units, ReLU) and a learned output variance γ.
    ``forward(u)`` maps u ~ N(0, I) [N, latent_dim] to codes (the decoder's mean)."""

    def __init__(self, dim: int, latent_dim: int, hidden: int, layers: int):
        super().__init__()
        self.config = {"dim": dim, "latent_dim": latent_dim, "hidden": hidden, "layers": layers}

        def mlp(n_in: int, n_out: int) -> nn.Sequential:
            parts: list[nn.Module] = []
            for _ in range(layers):
                parts += [nn.Linear(n_in, hidden), nn.ReLU()]
                n_in = hidden
            return nn.Sequential(*parts, nn.Linear(n_in, n_out))

        self.encoder = mlp(dim, 2 * latent_dim)
        self.decoder = mlp(latent_dim, dim)
        self.log_gamma = nn.Parameter(torch.zeros(()))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.decoder(u)

    def loss(self, z: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.encoder(z).chunk(2, dim=1)
        logvar = logvar.clamp(*LOGVAR_RANGE)
        u = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        sq_error = (self.decoder(u) - z).pow(2).sum(1).mean()
        return gaussian_nll(sq_error, self.log_gamma, z.shape[1]) + gaussian_kl(mu, logvar)


def fit_second_stage(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    latent_dim: int,
    hidden: int,
    layers: int,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    progress=None,
) -> tuple[SecondStageVAE, list[float]]:
    """Train a ``SecondStageVAE`` on codes drawn from the first stage's posteriors
    z = mu + exp(logvar / 2) * eps (fresh eps every epoch, from ``generator``), with Adam.
    Runs on ``mu``'s device; returns the model (eval mode) and the mean loss of each epoch."""
    n, d = mu.shape
    if n < 2:
        raise ValueError(f"need at least 2 codes to fit the second stage, got {n}")
    model = SecondStageVAE(d, latent_dim, hidden, layers).to(mu.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    std = torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE))
    batch_size = min(batch_size, n)
    history = []
    for _ in range(epochs):
        model.train()
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        z = mu + std * eps
        order = torch.randperm(n, generator=generator).to(mu.device)
        total, steps = 0.0, 0
        for start in range(0, n - n % batch_size, batch_size):
            loss = model.loss(z[order[start : start + batch_size]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps = total + loss.item(), steps + 1
        history.append(total / steps)
        if not math.isfinite(history[-1]):
            raise FloatingPointError(f"second stage diverged at epoch {len(history)}: loss {history[-1]}")
        if progress is not None:
            progress.update(1)
    return model.eval(), history

"""A learned latent prior (beyond the paper): a small RealNVP normalising flow fitted to the codes.

The flow is a bijection f from codes x in R^d to y = f(x) with a base density p_base, so

    log p(x) = log p_base(f(x)) + log |det df/dx|      (the layers' log-determinants summed)

and sampling is feed-forward: x = f^-1(y), y ~ p_base (Dinh, Sohl-Dickstein & Bengio 2017, "Density
estimation using Real NVP"). The base is N(0, I), log p_base(y) = -1/2 |y|^2 - (d/2) log(2 pi), or a
Gaussian mixture (weights, means, covariances; torch.distributions' MixtureSameFamily), as in FlowGMM
(Izmailov et al. 2020): clustered codes (ten digit classes) are what a mixture fits and a small flow
fitted to a thousand codes does not (on the digits EAE an N(0, I) base is barely better in held-out
log-likelihood than one Gaussian, a GMM better than both; figures: docs/results.md). f is a fixed
standardisation followed by affine coupling layers; each keeps the dimensions where its binary ``mask`` is 1 and
transforms the others given them:

    standardise:  x' = (x - loc) / scale                         log-det = -sum log scale
    coupling:     y  = m * x + (1 - m) * (x * exp(s) + t)        log-det = sum (1 - m) * s
                  (s, t) = conditioner(m * x),  s = gain * tanh(raw s) (bounded: a stable fit)
    inverse:      x  = m * y + (1 - m) * (y - t) * exp(-s)       (m * y = m * x: same s and t)

The conditioners' last linear layers start at zero, so an unfitted flow is the standardisation alone
(with the normal base exactly N(loc, diag(scale^2)); N(0, I) with loc 0, scale 1; with a mixture base,
that mixture mapped back to the codes' scale). ``fit_flow`` fits the base mixture to the standardised
codes, then trains the couplings by maximum likelihood with early stopping on a held-out share of the
codes (a thousand codes overfit a flow within tens of epochs): when no epoch beats the start on them,
the flow stays the identity over its base. The parameters travel as named arrays + a JSON config
(``eae.sampling.density.FlowDensity``).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from eae.sampling.mixture import Mixture, split_heldout

LOG_2PI = math.log(2.0 * math.pi)
MIN_SCALE = 1e-6  # floor of the standardisation's scale: a constant code dimension has std 0


def coupling_masks(dim: int, layers: int) -> torch.Tensor:
    """[layers, dim] binary masks (1 = kept) cycling through even/odd dimensions, odd/even, first
    half/second half and second/first, so every dimension is transformed and conditions the others."""
    idx = torch.arange(dim)
    half = idx < dim // 2
    patterns = [idx % 2 == 0, idx % 2 == 1, half, ~half]
    return torch.stack([patterns[i % len(patterns)] for i in range(layers)]).float()


class AffineCoupling(nn.Module):
    """One affine coupling layer (see the module doc) with an MLP conditioner: ``depth`` hidden layers
    of ``hidden`` units (ReLU) from m * x to (raw s, t)."""

    def __init__(self, mask: torch.Tensor, hidden: int, depth: int):
        super().__init__()
        dim = mask.numel()
        self.register_buffer("mask", mask.clone())
        parts: list[nn.Module] = []
        n_in = dim
        for _ in range(depth):
            parts += [nn.Linear(n_in, hidden), nn.ReLU()]
            n_in = hidden
        last = nn.Linear(n_in, 2 * dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*parts, last)
        self.gain = nn.Parameter(torch.ones(dim))

    def _shift_scale(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(kept).chunk(2, dim=1)
        free = 1.0 - self.mask
        return free * self.gain * torch.tanh(raw_s), free * t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> (y, log |det dy/dx| per row)."""
        s, t = self._shift_scale(self.mask * x)
        return self.mask * x + (1.0 - self.mask) * (x * torch.exp(s) + t), s.sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t = self._shift_scale(self.mask * y)
        return self.mask * y + (1.0 - self.mask) * (y - t) * torch.exp(-s)


class RealNVP(nn.Module):
    """Codes [N, dim] <-> the base: a fixed standardisation (``loc``, ``scale``), ``layers`` affine
    couplings and a base density, N(0, I) (``components`` 0) or a Gaussian mixture of ``components``
    (buffers ``base_weights``, ``base_means``, ``base_covariances``; ``set_base``). ``forward(y)`` maps
    base points to codes (the inverse direction, feed-forward; with the normal base, y is the noise);
    ``log_prob(x)`` is the exact log-density of the codes (nats per code)."""

    def __init__(self, dim: int, layers: int = 6, hidden: int = 64, depth: int = 2, components: int = 0):
        super().__init__()
        if dim < 2:
            raise ValueError(f"a coupling flow needs at least 2 dimensions (latent_dim >= 2), got {dim}")
        if layers < 1 or hidden < 1 or depth < 1 or components < 0:
            raise ValueError(
                f"layers, hidden and depth must be >= 1 and components >= 0, got {layers}, {hidden}, {depth}, "
                f"{components}"
            )
        self.config = {"dim": dim, "layers": layers, "hidden": hidden, "depth": depth, "components": components}
        self.register_buffer("loc", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.couplings = nn.ModuleList(AffineCoupling(m, hidden, depth) for m in coupling_masks(dim, layers))
        if components:
            self.register_buffer("base_weights", torch.full((components,), 1.0 / components))
            self.register_buffer("base_means", torch.zeros(components, dim))
            self.register_buffer("base_covariances", torch.eye(dim).repeat(components, 1, 1))

    def set_base(self, mixture: Mixture) -> None:
        """Use ``mixture`` (in the standardised space, with ``components`` components) as the base."""
        k = self.config["components"]
        if len(mixture.weights) != k or mixture.dim != self.config["dim"]:
            raise ValueError(f"the base must have {k} components of dimension {self.config['dim']}")
        for name, value in zip(
            ("weights", "means", "covariances"), (mixture.weights, mixture.means, mixture.covariances)
        ):
            getattr(self, f"base_{name}").copy_(torch.as_tensor(np.asarray(value)))

    def base_mixture(self) -> Mixture | None:
        """The base mixture (float64 arrays), or None for the N(0, I) base."""
        if not self.config["components"]:
            return None
        return Mixture(
            *(getattr(self, f"base_{n}").detach().cpu().double().numpy() for n in ("weights", "means", "covariances"))
        )

    def base_log_prob(self, y: torch.Tensor) -> torch.Tensor:
        if not self.config["components"]:
            return -0.5 * (y.pow(2).sum(dim=1) + y.shape[1] * LOG_2PI)
        from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

        base = MixtureSameFamily(
            Categorical(probs=self.base_weights), MultivariateNormal(self.base_means, self.base_covariances)
        )
        return base.log_prob(y)

    def standardise_to(self, x: torch.Tensor) -> None:
        """Set the standardisation to the codes' per-dimension mean and standard deviation (floored)."""
        self.loc.copy_(x.mean(0))
        self.scale.copy_(x.std(0, unbiased=False).clamp_min(MIN_SCALE))

    def to_base(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> (f(x), log |det df/dx| per row)."""
        y = (x - self.loc) / self.scale
        log_det = -torch.log(self.scale).sum().expand(len(x))
        for layer in self.couplings:
            y, ld = layer(y)
            log_det = log_det + ld
        return y, log_det

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        y, log_det = self.to_base(x)
        return self.base_log_prob(y) + log_det

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """f^-1(y): codes from base points."""
        for layer in reversed(self.couplings):
            y = layer.inverse(y)
        return y * self.scale + self.loc


@dataclass
class FlowFit:
    """How ``fit_flow`` went: mean log-likelihoods (nats per code) per epoch, the epoch kept."""

    train_log_lik: list[float] = field(default_factory=list)
    heldout_log_lik: list[float] = field(default_factory=list)
    best_epoch: int = 0  # 1-based; 0 = the unfitted flow (the standardisation alone) was best
    stopped_early: bool = False
    n_train: int = 0
    n_heldout: int = 0

    @property
    def best_heldout_log_lik(self) -> float:
        return self.heldout_log_lik[self.best_epoch]  # index 0 holds the unfitted flow's score

    def summary(self) -> dict:
        return {
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.train_log_lik),
            "stopped_early": self.stopped_early,
            "heldout_log_lik": self.best_heldout_log_lik,
            "heldout_start": self.heldout_log_lik[0],
            "n_train": self.n_train,
            "n_heldout": self.n_heldout,
        }


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch's CPU ops on one intra-op thread within the block, the previous count restored after it.
    The flow's matrices are too small to split: on busy cores a training step with several threads is
    many times slower than with one (figures: docs/performance.md)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _mean_log_lik(flow: RealNVP, x: torch.Tensor, chunk: int = 65536) -> float:
    with torch.no_grad():
        return float(sum(flow.log_prob(x[i : i + chunk]).double().sum() for i in range(0, len(x), chunk)) / len(x))


def fit_flow(
    latents: np.ndarray,
    *,
    layers: int = 6,
    hidden: int = 64,
    depth: int = 2,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 128,
    max_epochs: int = 1000,
    patience: int = 30,
    heldout_fraction: float = 0.2,
    seed: int = 0,
    base: Callable[[np.ndarray], Mixture] | None = None,
    device: torch.device | str = "cpu",
    progress=None,
) -> tuple[RealNVP, FlowFit]:
    """Fit a ``RealNVP`` to ``latents`` [N, d] by maximum likelihood (Adam, minibatches of ``batch_size``)
    on all but a seeded ``heldout_fraction`` of them; after every epoch the held-out mean log-likelihood
    is measured, and training stops when it has not improved for ``patience`` epochs (or after
    ``max_epochs``). ``base``: None for the N(0, I) base, or a function fitting the base mixture to the
    standardised codes that are fitted (e.g. ``eae.sampling.density.fit_gmm``; it stays fixed while the
    couplings train). Trains on ``device`` (on the CPU with one thread: ``one_thread``); returns the flow
    of the best held-out epoch (eval mode, moved to the CPU, float32; epoch 0 is the base alone) and the
    record.

    Seeded and self-contained: the initialisation and the minibatch order come from ``seed`` inside a
    forked RNG, so the caller's global torch RNG state is left as it was. ``progress``: a tqdm-like
    object (``update(1)`` per epoch, ``set_postfix``)."""
    x = torch.as_tensor(np.asarray(latents, np.float32)).to(device)
    if x.ndim != 2:
        raise ValueError(f"latents must be [N, d], got shape {list(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("latents hold NaN or infinite values")
    fit_rows, held_rows = split_heldout(len(x), heldout_fraction, seed)
    x_fit, x_held = x[torch.from_numpy(fit_rows).to(device)], x[torch.from_numpy(held_rows).to(device)]
    mixture = None
    if base is not None:
        loc, scale = x_fit.mean(0), x_fit.std(0, unbiased=False).clamp_min(MIN_SCALE)
        mixture = base(((x_fit - loc) / scale).cpu().double().numpy())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        flow = RealNVP(x.shape[1], layers, hidden, depth, len(mixture.weights) if mixture else 0).to(device)
        order_rng = torch.Generator().manual_seed(seed)
    flow.standardise_to(x_fit)
    if mixture is not None:
        flow.set_base(mixture)
    record = FlowFit(n_train=len(x_fit), n_heldout=len(x_held))
    with one_thread() if x.device.type == "cpu" else contextlib.nullcontext():
        _train(flow, x_fit, x_held, record, order_rng, lr, weight_decay, batch_size, max_epochs, patience, progress)
    return flow.cpu().eval(), record


def _train(flow, x_fit, x_held, record, order_rng, lr, weight_decay, batch_size, max_epochs, patience, progress):
    """``fit_flow``'s loop: epochs of Adam steps, early stopping, the best state loaded at the end."""
    opt = torch.optim.Adam(flow.parameters(), lr=lr, weight_decay=weight_decay)
    record.heldout_log_lik.append(_mean_log_lik(flow, x_held))
    best_state, since_best = copy.deepcopy(flow.state_dict()), 0
    batch_size = min(batch_size, len(x_fit))
    for epoch in range(1, max_epochs + 1):
        flow.train()
        order = torch.randperm(len(x_fit), generator=order_rng).to(x_fit.device)
        total = 0.0
        for start in range(0, len(x_fit), batch_size):
            batch = x_fit[order[start : start + batch_size]]
            loss = -flow.log_prob(batch).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        record.train_log_lik.append(-total / len(x_fit))
        flow.eval()
        held = _mean_log_lik(flow, x_held)
        if not math.isfinite(held) or not math.isfinite(record.train_log_lik[-1]):
            raise FloatingPointError(f"the flow diverged at epoch {epoch}: held-out log-likelihood {held}")
        record.heldout_log_lik.append(held)
        if held > record.best_heldout_log_lik:
            record.best_epoch, best_state, since_best = epoch, copy.deepcopy(flow.state_dict()), 0
        else:
            since_best += 1
        if progress is not None:
            progress.update(1)
            progress.set_postfix(heldout=f"{held:.3f}", best=f"{record.best_heldout_log_lik:.3f}", refresh=False)
        if since_best >= patience:
            record.stopped_early = epoch < max_epochs
            break
    flow.load_state_dict(best_state)

"""Stage fit_density: encode the training split (eval mode) and fit the samplers' densities to the
codes -> models/density.npz.

Every objective gets isotropic N(0, I), MVG and GMM densities, fitted to its deterministic codes
(the EAE's BatchNorm'd codes, a VAE's posterior means), and with ``density.flow.enabled`` the learned
prior (beyond the paper): a RealNVP flow with early stopping on held-out codes. The two-stage VAE
also gets its second stage: a small VAE trained on codes drawn from the first stage's posteriors
(Dai & Wipf 2019). The sampling temperature ``density.temperature`` (beyond the paper) is stored
with them, so evaluate and export sample the same generator.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from eae.data.prepared import read_manifest, split_shards
from eae.models.inference import encode, posterior
from eae.models.objectives.vae import fit_second_stage
from eae.sampling.density import (
    FlowDensity,
    Mixture,
    SecondStage,
    fit_gmm,
    fit_isotropic,
    fit_mvg,
    save_densities,
    select_gmm,
)
from eae.sampling.flow import fit_flow
from eae.training.checkpoint import load_checkpoint, model_from_checkpoint
from eae.training.seed import seed_everything
from pipelines._stage import CHECKPOINT, DENSITY, PREPARED, log, resolve_device, run
from pipelines.config import ConfigError, Params, load_params


def over_train_split(fn, model, what: str) -> list:
    """``fn(model, shard, progress=bar)`` for each shard of the training split in turn, with one progress
    bar: only one shard of images is in memory (the codes of all of them are what is kept)."""
    total = read_manifest(PREPARED)["splits"]["train"]["count"]
    with tqdm(total=total, desc=what, unit="img", mininterval=2) as bar:
        return [fn(model, torch.from_numpy(shard), progress=bar) for shard in split_shards(PREPARED, "train")]


def second_stage(p: Params, model) -> SecondStage:
    s = p.objectives.two_stage_vae.second_stage
    parts = over_train_split(posterior, model, "posteriors")
    mu, logvar = torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])
    with tqdm(total=s.epochs, desc="second stage", unit="epoch", mininterval=2) as bar:
        net, history = fit_second_stage(
            mu,
            logvar,
            latent_dim=s.latent_dim or mu.shape[1],
            hidden=s.hidden,
            layers=s.layers,
            epochs=s.epochs,
            batch_size=s.batch_size,
            lr=s.lr,
            generator=torch.Generator().manual_seed(p.seed),
            progress=bar,
        )
    log.info("second stage: final loss %.4f, gamma %.3g", history[-1], float(net.log_gamma.exp()))
    return SecondStage(net.config, {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()})


def gmm(p: Params, latents) -> Mixture:
    d = p.density
    options = {"kind": d.gmm_kind, "n_init": d.gmm_n_init, "weight_prior": d.gmm_weight_prior}
    if d.gmm_selection == "fixed":
        if d.gmm_components > len(latents):
            raise ConfigError(
                f"density.gmm_components ({d.gmm_components}) exceeds the {len(latents)} training "
                "codes: a mixture needs at least one code per component"
            )
        return fit_gmm(latents, d.gmm_components, seed=p.seed, reg=d.reg_covar, max_iter=d.gmm_max_iter, **options)
    # K in 1 .. min(gmm_components, number of codes)
    mixture, choice = select_gmm(
        latents, d.gmm_components, d.gmm_selection, seed=p.seed, reg=d.reg_covar, max_iter=d.gmm_max_iter, **options
    )
    log.info(
        "GMM components by %s: K = %d (scores %s)",
        d.gmm_selection,
        choice["chosen"],
        ", ".join(f"{k}: {v:.4g}" for k, v in choice["scores"].items()),
    )
    return mixture


def flow_prior(p: Params, latents, device: torch.device, components: int) -> FlowDensity:
    """The learned prior; with ``density.flow.base`` gmm its base is a ``components``-component mixture
    fitted with the gmm sampler's options to the standardised codes it fits."""
    f, d = p.density.flow, p.density
    if len(latents) < 2:
        raise ConfigError(f"density.flow.enabled: the flow needs at least 2 training codes, got {len(latents)}")

    def base(codes):
        options = {"kind": d.gmm_kind, "n_init": d.gmm_n_init, "weight_prior": d.gmm_weight_prior}
        return fit_gmm(codes, min(components, len(codes)), p.seed, d.reg_covar, d.gmm_max_iter, **options)

    with tqdm(total=f.max_epochs, desc="flow prior", unit="epoch", mininterval=2) as bar:
        flow, record = fit_flow(
            latents,
            layers=f.layers,
            hidden=f.hidden,
            depth=f.depth,
            lr=f.lr,
            weight_decay=f.weight_decay,
            batch_size=f.batch_size,
            max_epochs=f.max_epochs,
            patience=f.patience,
            heldout_fraction=f.heldout_fraction,
            seed=p.seed,
            base=base if f.base == "gmm" else None,
            device=device,
            progress=bar,
        )
    fit = record.summary()
    log.info(
        "flow prior (%s base): held-out log-likelihood %.4f nats/code at the start, best %.4f at epoch %d of %d%s "
        "(%d codes fitted, %d held out)",
        f"{components}-component gmm" if f.base == "gmm" else "N(0, I)",
        fit["heldout_start"],
        fit["heldout_log_lik"],
        fit["best_epoch"],
        fit["epochs_run"],
        " (stopped early)" if fit["stopped_early"] else "",
        fit["n_train"],
        fit["n_heldout"],
    )
    return FlowDensity({"model": flow.config, "fit": fit}, {k: v.numpy() for k, v in flow.state_dict().items()})


def main() -> None:
    p = load_params()
    seed_everything(p.seed)
    device = resolve_device(p.train.device)
    model = model_from_checkpoint(load_checkpoint(CHECKPOINT)).to(device)
    latents = training_codes(model)
    densities, flow, seconds = fit_priors(p, latents, device)
    extra = second_stage(p, model) if model.name == "two_stage_vae" else None
    save_densities(DENSITY, densities, extra, flow=flow, temperature=p.density.temperature)
    log.info(
        "wrote %s (%s%s%s; sampling temperature %g); fit in %s",
        DENSITY,
        ", ".join(f"{k}: {len(v.weights)} component(s)" for k, v in densities.items()),
        ", flow" if flow else "",
        ", second stage" if extra else "",
        p.density.temperature,
        ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()),
    )


def training_codes(model) -> np.ndarray:
    """The codes of the training split (float64, [N, latent_dim])."""
    latents = torch.cat(over_train_split(encode, model, "encode")).cpu().double().numpy()
    log.info(
        "encoded %d training images: latent mean |%.3f|, mean variance %.3f",
        len(latents),
        abs(latents.mean(0)).mean(),
        latents.var(0).mean(),
    )
    return latents


def fit_priors(p: Params, latents: np.ndarray, device: torch.device) -> tuple[dict, FlowDensity | None, dict]:
    """(the isotropic, MVG and GMM densities, the flow prior or None, seconds each fit took)."""
    d = p.density
    seconds = {}
    t0 = time.perf_counter()
    densities = {"isotropic": fit_isotropic(latents.shape[1]), "mvg": fit_mvg(latents, reg=d.reg_covar)}
    log.info(
        "fitting GMMs (%s %s, up to %d components, %d initialisation(s) of up to %d EM iterations) to %d codes",
        d.gmm_kind,
        d.gmm_selection,
        d.gmm_components,
        d.gmm_n_init,
        d.gmm_max_iter,
        len(latents),
    )
    densities["gmm"] = gmm(p, latents)
    seconds["mixtures"] = time.perf_counter() - t0
    flow = None
    if d.flow.enabled:
        t0 = time.perf_counter()
        flow = flow_prior(p, latents, device, len(densities["gmm"].weights))
        seconds["flow"] = time.perf_counter() - t0
    return densities, flow, seconds


if __name__ == "__main__":
    run(main)

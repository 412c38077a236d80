"""Stage fit_density: encode the training split (eval mode) and fit the samplers' densities to the
codes -> models/density.npz.

Every objective gets isotropic N(0, I), MVG and GMM densities, fitted to its deterministic codes
(the EAE's BatchNorm'd codes, a VAE's posterior means). The two-stage VAE also gets its second
stage: a small VAE trained on codes drawn from the first stage's posteriors (Dai & Wipf 2019).
"""

from __future__ import annotations

import time

import torch
from tqdm import tqdm

from eae.data.prepared import read_manifest, split_shards
from eae.models.inference import encode, posterior
from eae.models.objectives.vae import fit_second_stage
from eae.sampling.density import SecondStage, fit_gmm, fit_isotropic, fit_mvg, save_densities, select_gmm
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


def main() -> None:
    p = load_params()
    seed_everything(p.seed)
    device = resolve_device(p.train.device)
    model = model_from_checkpoint(load_checkpoint(CHECKPOINT)).to(device)
    latents = torch.cat(over_train_split(encode, model, "encode")).cpu().double().numpy()
    log.info(
        "encoded %d training images: latent mean |%.3f|, mean variance %.3f",
        len(latents),
        abs(latents.mean(0)).mean(),
        latents.var(0).mean(),
    )
    d = p.density
    start = time.perf_counter()
    log.info(
        "fitting GMMs (%s, up to %d components, up to %d EM iterations each) to %d codes",
        d.gmm_selection,
        d.gmm_components,
        d.gmm_max_iter,
        len(latents),
    )
    if d.gmm_selection == "fixed":
        if d.gmm_components > len(latents):
            raise ConfigError(
                f"density.gmm_components ({d.gmm_components}) exceeds the {len(latents)} training "
                "codes: a mixture needs at least one code per component"
            )
        gmm = fit_gmm(latents, d.gmm_components, seed=p.seed, reg=d.reg_covar, max_iter=d.gmm_max_iter)
    else:  # K in 1 .. min(gmm_components, number of codes)
        gmm, choice = select_gmm(
            latents, d.gmm_components, d.gmm_selection, seed=p.seed, reg=d.reg_covar, max_iter=d.gmm_max_iter
        )
        log.info(
            "GMM components by %s: K = %d (scores %s)",
            d.gmm_selection,
            choice["chosen"],
            ", ".join(f"{k}: {v:.4g}" for k, v in choice["scores"].items()),
        )
    log.info("GMM fitted in %.1f s", time.perf_counter() - start)
    densities = {"isotropic": fit_isotropic(latents.shape[1]), "mvg": fit_mvg(latents, reg=d.reg_covar), "gmm": gmm}
    extra = second_stage(p, model) if model.name == "two_stage_vae" else None
    save_densities(DENSITY, densities, extra)
    log.info(
        "wrote %s (%s%s)",
        DENSITY,
        ", ".join(f"{k}: {len(v.weights)} component(s)" for k, v in densities.items()),
        ", second stage" if extra else "",
    )


if __name__ == "__main__":
    run(main)

"""Stage fit_density: encode the training split (eval mode) and fit isotropic / MVG / GMM
densities to the codes -> models/density.npz."""

from __future__ import annotations

import torch

from eae.checkpoint import load_checkpoint, model_from_checkpoint
from eae.data import read_split
from eae.density import fit_gmm, fit_isotropic, fit_mvg, save_densities
from eae.seed import seed_everything
from eae.train import encode
from pipelines._stage import CHECKPOINT, DENSITY, PREPARED, log, resolve_device, run
from pipelines.config import load_params


def main() -> None:
    p = load_params()
    seed_everything(p.seed)
    device = resolve_device(p.train.device)
    model = model_from_checkpoint(load_checkpoint(CHECKPOINT)).to(device)
    images = torch.from_numpy(read_split(PREPARED, "train").images).to(device)
    latents = encode(model, images).cpu().double().numpy()
    log.info("encoded %d training images: latent mean |%.3f|, mean variance %.3f", len(latents),
             abs(latents.mean(0)).mean(), latents.var(0).mean())
    densities = {
        "isotropic": fit_isotropic(latents.shape[1]),
        "mvg": fit_mvg(latents, reg=p.density.reg_covar),
        "gmm": fit_gmm(latents, p.density.gmm_components, seed=p.seed, reg=p.density.reg_covar,
                       max_iter=p.density.gmm_max_iter),
    }
    save_densities(DENSITY, densities)
    log.info("wrote %s (%s)", DENSITY, ", ".join(f"{k}: {len(v.weights)} component(s)" for k, v in densities.items()))


if __name__ == "__main__":
    run(main)

"""Stage train: data/prepared -> models/eae.pt, reports/train_metrics.json, dvclive/ curves."""

from __future__ import annotations

import time

import torch
from dvclive import Live
from tqdm import tqdm

from eae.checkpoint import save_checkpoint
from eae.data import read_manifest, read_split
from eae.io import write_json
from eae.model import EAE, EAEConfig
from eae.seed import seed_everything
from eae.train import reconstruct, train_epoch
from pipelines._stage import CHECKPOINT, DVCLIVE, PREPARED, TRAIN_METRICS, log, resolve_device, run
from pipelines.config import ConfigError, load_params


def main() -> None:
    p = load_params()
    seed_everything(p.seed)
    device = resolve_device(p.train.device)
    manifest = read_manifest(PREPARED)
    train = torch.from_numpy(read_split(PREPARED, "train").images).to(device)
    test = torch.from_numpy(read_split(PREPARED, "test").images).to(device)
    if len(train) < p.train.batch_size:
        raise ConfigError(f"train.batch_size {p.train.batch_size} exceeds the {len(train)} training images")

    arch = EAEConfig(image_shape=tuple(manifest["image_shape"]), latent_dim=p.model.latent_dim,
                     encoder_channels=tuple(p.model.encoder_channels),
                     decoder_channels=tuple(p.model.decoder_channels),
                     kernel_size=p.model.kernel_size, spectral_norm=p.model.spectral_norm)
    model = EAE(arch).to(device)
    log.info("EAE %s: %.2fM parameters, entropy_weight %g", arch.to_dict(),
             sum(x.numel() for x in model.parameters()) / 1e6, p.entropy_weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=p.train.lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=p.train.lr_decay)
    order = torch.Generator().manual_seed(p.seed)

    history: dict[str, list[float]] = {"loss": [], "recon": [], "entropy": [], "lr": []}
    steps = len(train) // p.train.batch_size
    start = time.perf_counter()
    with Live(DVCLIVE, save_dvc_exp=False, dvcyaml=None) as live, \
            tqdm(total=p.train.epochs * steps, desc="train", unit="step", mininterval=2) as bar:
        for epoch in range(p.train.epochs):
            lr = optimizer.param_groups[0]["lr"]
            stats = train_epoch(model, optimizer, train, p.train.batch_size, p.entropy_weight,
                                k=p.train.entropy_k, decoder_l2=p.train.decoder_l2, generator=order, progress=bar)
            scheduler.step()
            stats["lr"] = lr
            for key, value in stats.items():
                history[key].append(value)
                live.log_metric(f"train/{key}", value)
            live.next_step()
            bar.set_postfix(epoch=epoch + 1, recon=f"{stats['recon']:.3f}", entropy=f"{stats['entropy']:.3f}")
            log.debug("epoch %d %s", epoch + 1, stats)

    n_pix = arch.image_shape[0] * arch.image_shape[1] * arch.image_shape[2]
    test_mse = float((reconstruct(model, test) - test.float() / 255).pow(2).mean())
    final = {key: values[-1] for key, values in history.items() if key != "lr"}
    metrics = {
        "final_loss": final["loss"],
        "final_recon": final["recon"],
        "final_entropy": final["entropy"],
        "train_mse_per_pixel": final["recon"] / n_pix,
        "test_mse_per_pixel": test_mse,
        "epochs": p.train.epochs,
        "train_seconds": round(time.perf_counter() - start, 2),
    }
    save_checkpoint(CHECKPOINT, model, params=p.model_dump(), metrics={**metrics, "history": history},
                    extra={"dataset": manifest["source"], "data_hash": manifest["content_hash"]})
    write_json(TRAIN_METRICS, metrics)
    log.info("wrote %s; test MSE/pixel %.5f, final entropy %.3f nats", CHECKPOINT, test_mse, final["entropy"])


if __name__ == "__main__":
    run(main)

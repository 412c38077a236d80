"""Training throughput against a peer library: this project's training loop vs pythae 0.1.2's
trainer, the same network, the same data, measured side by side in one run.

    python benchmarks/vs_pythae.py [--rounds 5] [--json out.json]

pythae is a benchmark-only dependency (``make bench`` installs it: requirements-bench.txt).
Data: scikit-learn's digits at 16x16 (the default configuration's training split). Network: the
default digits encoder/decoder (eae.models.networks), wrapped as pythae's BaseEncoder/BaseDecoder, both
initialised from the same seed. Per round, one epoch of each, interleaved:

  pythae AE     pythae.trainers.BaseTrainer.train_step (its DataLoader, its AE loss, Adam)
  eae (ae)      eae.training.loop.train_epoch with the plain AE objective (same loss as pythae's AE)
  eae (eae)     eae.training.loop.train_epoch with the EAE objective (the default: BatchNorm code + entropy)

Images/s = images in the epoch / wall time, median over rounds; the ratios divide by pythae's.
Each loop runs with the options the train stage uses (train.channels_last from params.yaml's
defaults). Goal: eae (eae) >= 1.5x pythae AE.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from _results import add_json_argument, row, write

from eae.data.sources import load_source
from eae.models.networks import ArchConfig, Decoder, Encoder
from eae.models.objectives.registry import build_objective
from eae.training.loop import adam, train_epoch

ARCH = ArchConfig((1, 16, 16), 8, (32, 64, 128), (128, 64, 32), 4)
GOAL = 1.5


def pythae_trainer(images: np.ndarray):
    os.environ.setdefault("TQDM_DISABLE", "1")  # pythae's per-epoch progress bars
    from pythae.models import AE, AEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    class PythaeEncoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = Encoder(ARCH)

        def forward(self, x):
            return ModelOutput(embedding=self.net(x))

    class PythaeDecoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = Decoder(ARCH)

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    torch.manual_seed(0)
    model = AE(
        AEConfig(input_dim=ARCH.image_shape, latent_dim=ARCH.latent_dim, reconstruction_loss="mse"),
        encoder=PythaeEncoder(),
        decoder=PythaeDecoder(),
    )
    config = BaseTrainerConfig(
        output_dir=tempfile.mkdtemp(prefix="pythae-"),
        per_device_train_batch_size=100,
        num_epochs=1,
        learning_rate=1e-3,
        optimizer_cls="Adam",
        no_cuda=True,
        train_dataloader_num_workers=0,
    )
    from pythae.data.preprocessors import DataProcessor

    data = DataProcessor().to_dataset(torch.from_numpy(images.astype(np.float32) / 255.0))
    trainer = BaseTrainer(model=model, train_dataset=data, training_config=config)
    trainer.prepare_training()
    return trainer, len(images)


def eae_loop(images: torch.Tensor, objective: str, channels_last: bool):
    torch.manual_seed(0)
    weights = {"entropy_weight": 0.2} if objective == "eae" else {}
    model = build_objective(objective, ARCH, weights)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = adam(model.parameters(), lr=1e-3)
    shuffle = torch.Generator().manual_seed(0)
    return lambda: train_epoch(model, opt, images, 100, generator=shuffle, channels_last=channels_last)


def measure(rounds: int = 5, channels_last: bool | None = None) -> dict:
    if channels_last is None:
        from pipelines.config import TrainParams

        channels_last = TrainParams().channels_last
    split = load_source("digits", image_size=16, test_fraction=0.2, seed=0)["train"]
    trainer, n_pythae = pythae_trainer(split.images)  # pythae as users get it (contiguous NCHW)
    images = torch.from_numpy(split.images)
    n_ours = len(images) - len(images) % 100  # full batches (pythae also trains on the last, partial one)
    runs = {
        "pythae AE": (lambda epoch=[0]: trainer.train_step(epoch[0]), n_pythae),
        "eae (ae)": (eae_loop(images, "ae", channels_last), n_ours),
        "eae (eae)": (eae_loop(images, "eae", channels_last), n_ours),
    }
    for fn, _ in runs.values():  # warm-up epoch
        fn()
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (fn, n) in runs.items():
            t = time.perf_counter()
            fn()
            rates[name].append(n / (time.perf_counter() - t))
    med = {name: statistics.median(v) for name, v in rates.items()}
    details = {
        "images_per_s": med,
        "rounds": rounds,
        "channels_last": channels_last,
        "threads": torch.get_num_threads(),
    }
    rows = []
    for name, goal in (("eae (eae)", (">=", GOAL)), ("eae (ae)", None)):
        per_round = [a / b for a, b in zip(rates[name], rates["pythae AE"])]
        rows.append(
            row(
                f"training images/s: {name} / pythae AE (same network, data)",
                med[name] / med["pythae AE"],
                "x",
                goal,
                (min(per_round), max(per_round)),
                details,
            )
        )
    return {"rows": rows, "details": details}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto")
    add_json_argument(ap)
    args = ap.parse_args()
    result = measure(args.rounds, None if args.channels_last == "auto" else args.channels_last == "on")
    d = result["details"]
    print(f"threads {d['threads']}, channels_last {d['channels_last']}, {d['rounds']} rounds (median)")
    for name, rate in d["images_per_s"].items():
        print(f"{name:10s} {rate:8.1f} img/s   x{rate / d['images_per_s']['pythae AE']:.2f} vs pythae")
    r = result["rows"][0]
    print(
        f"goal >= {GOAL}x: {'met' if r['met'] else 'NOT met'} (x{r['value']:.2f}, per-round "
        f"x{r['spread'][0]:.2f}-x{r['spread'][1]:.2f})"
    )
    write(args.json, "vs_pythae", result["rows"])


if __name__ == "__main__":
    main()

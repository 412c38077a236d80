"""How much float rounding moves an EAE training run: the default digits training with 1 BLAS/OpenMP
thread against the same with 2 threads (only the order of float sums differs), before and after the
encoder lost the bias its code BatchNorm subtracts (issue: "no parameter without a gradient").

    python benchmarks/rounding.py [--epochs 60] [--short 2] [--json out.json]

Per variant (``bias``: the encoder's last linear layer keeps its bias, the layout of checkpoints
before the change; ``no_bias``: today's EAE) and thread count, one training process (each in its own
interpreter, so the thread count holds from the first operation), seeded as the train stage seeds it:
- after ``--short`` epochs: the largest |w_1thread - w_2threads| over every weight (BatchNorm running
  statistics left out: they are not what the optimiser moves);
- after ``--epochs`` epochs: the same, and the classifier-feature Fréchet distance of the GMM and
  isotropic samplers (fit_density and evaluate stages of a prepared workspace), so the spread rounding
  alone causes in the quality numbers is measured.
The training loop is the library's (``eae.training.loop.train_epoch``) with the stage's settings
(Adam, lr, batch size, shuffling generator, the same seed), not the stage itself, because the ``bias``
variant is not a configuration the stage offers any more. It keeps the loop the stage ran when the
bias was removed (per-parameter Adam, NCHW), so its figures in reports/bench.json stay comparable;
the stage now trains with fused Adam and channels_last, which reorder float sums the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's eae and pipelines, also when the script is run from elsewhere

from _results import add_json_argument, row, write  # noqa: E402

VARIANTS = ("bias", "no_bias")


def train_one(workspace: Path, variant: str, epochs: int, out: Path) -> None:
    """Runs in a child process whose thread count was set by the environment."""
    import torch

    from eae.data.prepared import read_manifest, read_split
    from eae.models.objectives.eae import EAE
    from eae.training.checkpoint import save_checkpoint
    from eae.training.loop import train_epoch
    from eae.training.seed import seed_everything
    from eae.training.setup import arch_for
    from pipelines.config import load_params

    class BiasEAE(EAE):  # the layout before the change: a bias before the code BatchNorm
        code_is_batch_normalised = False

    os.chdir(workspace)
    p = load_params()
    seed_everything(p.seed)
    manifest = read_manifest("data/prepared")
    images = torch.from_numpy(read_split("data/prepared", "train").images)
    model = (BiasEAE if variant == "bias" else EAE)(
        arch_for(manifest, **p.model.model_dump(exclude={"objective"})), **p.objective_weights()
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=p.train.lr)
    shuffle = torch.Generator().manual_seed(p.seed)
    for epoch in range(epochs):
        model.start_epoch(epoch)
        train_epoch(model, optimizer, images, p.train.batch_size, generator=shuffle)
    save_checkpoint(
        out,
        model,
        params=p.model_dump(),
        metrics={},
        extra={"dataset": manifest["source"], "data_hash": manifest["content_hash"]},
    )


def child(workspace: Path, variant: str, epochs: int, threads: int, out: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAE_")}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    subprocess.run(
        [sys.executable, __file__, "--train-one", str(workspace), variant, str(epochs), str(out)], env=env, check=True
    )


def max_diff(a: Path, b: Path) -> tuple[float, str]:
    import torch

    sa, sb = (torch.load(p, weights_only=True)["state_dict"] for p in (a, b))
    # the weights (parameters), not the BatchNorm running statistics: their variances are large and are
    # what eval mode reads, not what the optimiser moves
    weights = [k for k in sa if sa[k].is_floating_point() and ".running_" not in k]
    return max((float((sa[k] - sb[k]).abs().max()), k) for k in weights)


def stage(name: str, workspace: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAE_")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")  # scoring: the same way for every checkpoint
    subprocess.run(
        [sys.executable, "-m", f"pipelines.{name}"],
        cwd=workspace,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def fd_of(workspace: Path, checkpoint: Path) -> dict:
    from eae.evaluation.results import read_results

    shutil.copy(checkpoint, workspace / "models/eae.pt")
    stage("fit_density", workspace)
    stage("evaluate", workspace)
    return read_results(workspace / "reports/fid.json").metrics["fd"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=60, help="the full run (the digits default)")
    ap.add_argument("--short", type=int, default=2, help="the short run (2 epochs = 28 steps on digits)")
    ap.add_argument("--train-one", nargs=4, help=argparse.SUPPRESS)
    add_json_argument(ap)
    args = ap.parse_args()
    if args.train_one:
        workspace, variant, epochs, out = args.train_one
        train_one(Path(workspace), variant, int(epochs), Path(out))
        return
    with tempfile.TemporaryDirectory(prefix="eae-rounding-") as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        shutil.copy(ROOT / "params.yaml", ws / "params.yaml")
        for name in ("fetch", "prepare", "feature_stats"):
            stage(name, ws)
        (ws / "models").mkdir(exist_ok=True)
        rows, details = [], {}
        for variant in VARIANTS:
            result = {}
            for label, epochs in (("short", args.short), ("full", args.epochs)):
                paths = [Path(tmp) / f"{variant}-{label}-{t}.pt" for t in (1, 2)]
                for threads, path in zip((1, 2), paths):
                    child(ws, variant, epochs, threads, path)
                diff, where = max_diff(*paths)
                result[f"max_dw_{label}"], result[f"where_{label}"] = diff, where
                if label == "full":
                    fds = [fd_of(ws, path) for path in paths]
                    result["fd"] = {"1 thread": fds[0], "2 threads": fds[1]}
                    result["fd_spread"] = {k: abs(fds[0][k] - fds[1][k]) / fds[0][k] for k in ("gmm", "isotropic")}
            details[variant] = result
            print(
                f"{variant:8s} max|dw| after {args.short} epochs {result['max_dw_short']:.2e} ({result['where_short']}),"
                f" after {args.epochs} {result['max_dw_full']:.2e}; FD gmm {result['fd']['1 thread']['gmm']:.3f} vs "
                f"{result['fd']['2 threads']['gmm']:.3f}, isotropic {result['fd']['1 thread']['isotropic']:.3f} vs "
                f"{result['fd']['2 threads']['isotropic']:.3f}"
            )
        for variant in VARIANTS:
            r = details[variant]
            rows.append(
                row(
                    f"rounding: max |w_1thread - w_2threads| after {args.short} epochs, {variant}",
                    r["max_dw_short"],
                    "",
                    None,
                    None,
                    r,
                )
            )
            rows.append(
                row(
                    f"rounding: relative FD gmm spread, 1 vs 2 threads after {args.epochs} epochs, {variant}",
                    r["fd_spread"]["gmm"],
                    "",
                    None,
                    None,
                    {},
                )
            )
        write(args.json, "rounding", rows)
        print(json.dumps(details, indent=1, default=str)[:2000])


if __name__ == "__main__":
    main()

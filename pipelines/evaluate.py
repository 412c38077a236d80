"""Stage evaluate: sample-quality metrics per sampler and for reconstructions -> reports/fid.json (and the same
numbers one row per sampler -> reports/scores.json, the per-sampler chart of `dvc plots show`).

For every sampler (and the test reconstructions): the Fréchet distance, KID (mean ± std over
subsets), precision and recall (k = 3), and on labelled data with the classifier extractor the
class coverage (share of each predicted class and its entropy); ``protocol`` records how
(extractor and its weights' sha256, sizes, reference split, quantisation, implementations). The
record's schema and its reader: ``eae.evaluation.results``.

Generated images (eval.n_samples, the seeded inputs the ONNX generator would get) and test
reconstructions are quantised to 8 bits, as saved images would be, and fed to the feature
extractor in batches on the stage's device; nothing is written to disk. The test split's
features come from the feature_stats stage. With the classifier extractor (digits) the
values are classifier-feature distances, not Inception FIDs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm

from eae.data.prepared import read_manifest, split_shards
from eae.errors import EAEError
from eae.evaluation.features import features_of
from eae.evaluation.fid import check_same_dims, feature_statistics, frechet_distance, load_statistics
from eae.evaluation.metrics import KID_SUBSETS, PR_NEIGHBOURHOOD, class_coverage, kid, precision_recall
from eae.evaluation.results import METRICS, RECONSTRUCTION, Results
from eae.export.card import sha256_file
from eae.io import write_json
from eae.models.inference import reconstruction_batches
from eae.sampling.density import load_samplers, load_temperature
from eae.sampling.generator import Generator, generated_batches
from eae.training.checkpoint import load_checkpoint, model_from_checkpoint
from eae.training.seed import seed_everything
from pipelines._stage import (
    CHECKPOINT,
    DENSITY,
    FID,
    PREPARED,
    SCORES,
    TEST_FEATURES,
    TEST_STATS,
    log,
    resolve_device,
    run,
)
from pipelines.config import Params, load_params
from pipelines.feature_stats import Extractor, load_extractor

METRIC_NAMES = {
    "classifier": "Fréchet distance in digits-classifier features (not Inception FID)",
    "inception": "FID (Inception-v3 features, pytorch-fid)",
}
QUANTISATION = "8-bit: round(x * 255) / 255, as a saved PNG holds it"
IMPLEMENTATIONS = {
    "classifier": "digits classifier penultimate layer (eae.evaluation.classifier); Fréchet distance in float64 "
    "(eae.evaluation.fid)",
    "inception": "pytorch-fid 0.3.0 FID Inception-v3 (pool3 unless inception_dims says otherwise), images "
    "bilinearly resized to 299x299 inside the network as pytorch-fid does; Fréchet distance in float64 "
    "(eae.evaluation.fid)",
}

# Every score's protocol names its implementation (the Fréchet distance's is the top-level "implementation").
KID_IMPLEMENTATION = (
    "torch-fidelity 0.4.0 kid_features_to_metric on the features of feature_extractor, generated vs the reference "
    "split (eae.evaluation.metrics.kid)"
)
PR_IMPLEMENTATION = (
    "torch-fidelity 0.4.0 prc_features_to_metric (Kynkäänniemi et al. 2019) on the features of feature_extractor, "
    "the first min(n_generated, reference n) of each set (eae.evaluation.metrics.precision_recall)"
)
COVERAGE_IMPLEMENTATION = (
    "argmax of the digits classifier (eae.evaluation.classifier) per generated image; shares of each class and "
    "their entropy in nats (eae.evaluation.metrics.class_coverage)"
)


def quantised(image_batches):
    """Round to the 256 levels of an 8-bit image, as a PNG of the sample would hold."""
    for x in image_batches:
        yield torch.round(x * 255.0) / 255.0


class Scores:
    """The metrics of each scored column, collected into one ``Results``."""

    def __init__(self, extractor: Extractor, real, real_features: np.ndarray, seed: int):
        self.extractor, self.real, self.real_features, self.seed = extractor, real, real_features, seed
        self.metrics: dict[str, dict[str, float]] = {m: {} for m in METRICS}
        self.class_shares: dict[str, list[float]] = {}

    def add(self, column: str, image_batches, total: int) -> None:
        with tqdm(total=total, desc=f"evaluate {column}", unit="img", mininterval=2) as bar:
            feats = features_of(self.extractor.features, quantised(image_batches), progress=bar)
        n = min(len(feats), len(self.real_features))  # equal sizes: k-NN radii of both manifolds on the same footing
        log.info("%s: Fréchet distance, KID and precision/recall (k-NN over %d x %d features)", column, n, n)
        stats = feature_statistics(feats)
        check_same_dims(stats, self.real, column, TEST_STATS)
        m = self.metrics
        m["fd"][column] = frechet_distance(*stats, *self.real)
        k = kid(feats, self.real_features, seed=self.seed)
        m["kid"][column], m["kid_std"][column] = k["mean"], k["std"]
        m["precision"][column], m["recall"][column] = precision_recall(feats[:n], self.real_features[:n]).values()
        if self.extractor.classify is not None:
            coverage = class_coverage(self.extractor.classify(feats), self.extractor.n_classes)
            m["class_entropy"][column], self.class_shares[column] = coverage["entropy"], coverage["shares"]
        log.info(
            "%s: FD %.4f, KID %.5f, precision %.3f, recall %.3f",
            column,
            m["fd"][column],
            m["kid"][column],
            m["precision"][column],
            m["recall"][column],
        )

    def results(self, protocol: dict) -> Results:
        return Results({k: v for k, v in self.metrics.items() if v}, protocol, self.class_shares)


def protocol_of(p: Params, extractor: Extractor, real_features: np.ndarray, scored: dict | None = None) -> dict:
    """How the scores were measured: everything a reader needs to know what they compare with, and
    ``scored``: the sha256 of the checkpoint and density that were scored (``scored_files``)."""
    n_real = len(real_features)
    n_pr = min(p.eval.n_samples, n_real)
    protocol = {
        **(scored or {}),
        "feature_extractor": p.eval.feature_extractor,
        "metric_name": METRIC_NAMES[p.eval.feature_extractor],
        "weights_sha256": extractor.weights_sha256,
        "feature_dim": int(real_features.shape[1]),
        "n_generated": p.eval.n_samples,
        "reference": {"split": "test", "n": n_real},
        "quantisation": QUANTISATION,
        "implementation": IMPLEMENTATIONS[p.eval.feature_extractor],
        **extractor.facts,
        "kid": {
            "subsets": KID_SUBSETS,
            "subset_size": min(1000, p.eval.n_samples, n_real),
            "kernel": "(x.y / D + 1)^3",
            "estimator": "unbiased MMD^2 (torch-fidelity)",
            "seed": p.seed,
            "implementation": KID_IMPLEMENTATION,
        },
        "precision_recall": {
            "k": PR_NEIGHBOURHOOD,
            "n_generated": n_pr,
            "n_real": n_pr,
            "implementation": PR_IMPLEMENTATION,
        },
    }
    if extractor.classify is not None:
        protocol["class_coverage"] = {
            "classes": extractor.n_classes,
            "max_entropy": float(np.log(extractor.n_classes)),
            "implementation": COVERAGE_IMPLEMENTATION,
        }
    return protocol


def scored_files() -> dict:
    """The sha256 of the checkpoint and density this run scores (``eae.evaluation.results``:
    ``Results.provenance_problem`` compares them with the files a reader shows)."""
    return {"checkpoint_sha256": sha256_file(CHECKPOINT), "density_sha256": sha256_file(DENSITY)}


def load_real_features() -> np.ndarray:
    try:
        return np.load(TEST_FEATURES, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EAEError(
            f"cannot read {TEST_FEATURES} ({exc}): rerun the feature_stats stage (dvc repro feature_stats)"
        ) from None


def test_reconstructions(model, batch_size: int) -> tuple[Iterator[torch.Tensor], int]:
    """(batches of the test split's reconstructions, how many images): the split streamed shard by
    shard (memory: one shard, whatever the split's size)."""
    n_test = read_manifest(PREPARED)["splits"]["test"]["count"]
    batches = (
        x
        for shard in split_shards(PREPARED, "test")
        for x in reconstruction_batches(model, torch.from_numpy(shard), batch_size)
    )
    return batches, n_test


def main() -> None:
    p = load_params()
    seed_everything(p.seed)
    device = resolve_device(p.eval.device)
    extractor = load_extractor(p, device)
    real_features = load_real_features()
    scores = Scores(extractor, load_statistics(TEST_STATS), real_features, p.seed)
    ckpt = load_checkpoint(CHECKPOINT)
    samplers = load_samplers(DENSITY)
    scored = scored_files()  # of the files just loaded and checked
    model = model_from_checkpoint(ckpt).to(device)
    scores.add(RECONSTRUCTION, *test_reconstructions(model, p.eval.batch_size))
    temperature = load_temperature(DENSITY)  # the generator export ships (beyond the paper; 1 = none)
    for name, density in samplers.items():
        generator = Generator(density, model.decoder, temperature).to(device)
        scores.add(name, generated_batches(generator, p.eval.n_samples, p.eval.batch_size, p.seed), p.eval.n_samples)
    protocol = protocol_of(p, extractor, real_features, scored)
    if temperature != 1.0:
        protocol["sampling_temperature"] = temperature
    results = scores.results(protocol)
    write_json(FID, results.to_dict())
    write_json(SCORES, results.per_column())
    log.info("wrote %s and %s", FID, SCORES)


if __name__ == "__main__":
    run(main)

"""Stage evaluate: sample-quality metrics per sampler and for reconstructions -> reports/fid.json.

For every sampler (and the test reconstructions): the Fréchet distance (top-level keys, as
before: ``gmm``, ``isotropic``, ...), KID (mean ± std over subsets), precision and recall
(k = 3), and on labelled data with the classifier extractor the class coverage (share of each
predicted class and its entropy); ``protocol`` records how (extractor and its weights' sha256,
sizes, reference split, quantisation). See eae.metrics.

Generated images (eval.n_samples, the seeded inputs the ONNX generator would get) and test
reconstructions are quantised to 8 bits, as saved images would be, and fed to the feature
extractor in batches on the stage's device; nothing is written to disk. The test split's
features come from the feature_stats stage. With the classifier extractor (digits) the
values are classifier-feature distances, not Inception FIDs.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from eae.checkpoint import load_checkpoint, model_from_checkpoint
from eae.density import load_samplers
from eae.errors import EAEError
from eae.evaluation import features_of
from eae.fid import check_same_dims, feature_statistics, frechet_distance, load_statistics
from eae.generator import Generator, generated_batches
from eae.inference import reconstruction_batches
from eae.io import write_json
from eae.metrics import KID_SUBSETS, PR_NEIGHBOURHOOD, class_coverage, kid, precision_recall
from eae.prepared import read_split
from eae.seed import seed_everything
from pipelines._stage import CHECKPOINT, DENSITY, FID, PREPARED, TEST_FEATURES, TEST_STATS, log, resolve_device, run
from pipelines.config import load_params
from pipelines.feature_stats import load_extractor

METRIC_NAMES = {
    "classifier": "Fréchet distance in digits-classifier features (not Inception FID)",
    "inception": "FID (Inception-v3 features, pytorch-fid)",
}
QUANTISATION = "8-bit: round(x * 255) / 255, as a saved PNG holds it"


def quantised(image_batches):
    """Round to the 256 levels of an 8-bit image, as a PNG of the sample would hold."""
    for x in image_batches:
        yield torch.round(x * 255.0) / 255.0


def main() -> None:
    p = load_params()
    seed_everything(p.seed)
    device = resolve_device(p.eval.device)
    extractor = load_extractor(p, device)
    real = load_statistics(TEST_STATS)
    try:
        real_features = np.load(TEST_FEATURES, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EAEError(f"cannot read {TEST_FEATURES} ({exc}): rerun the feature_stats stage (dvc repro feature_stats)") from None
    model = model_from_checkpoint(load_checkpoint(CHECKPOINT)).to(device)
    samplers = load_samplers(DENSITY)
    test = torch.from_numpy(read_split(PREPARED, "test").images)
    bs = p.eval.batch_size
    result: dict = {"feature_extractor": p.eval.feature_extractor, "metric": METRIC_NAMES[p.eval.feature_extractor],
                    "n_samples": p.eval.n_samples, "n_test": len(test), **extractor.facts}
    extra: dict[str, dict] = {"kid": {}, "precision": {}, "recall": {}}
    if extractor.classify is not None:
        extra.update(class_entropy={}, class_shares={})

    def score(image_batches, total: int, what: str) -> None:
        with tqdm(total=total, desc=f"evaluate {what}", unit="img", mininterval=2) as bar:
            feats = features_of(extractor.features, quantised(image_batches), progress=bar)
        stats = feature_statistics(feats)
        check_same_dims(stats, real, what, TEST_STATS)
        result[what] = frechet_distance(*stats, *real)
        extra["kid"][what] = {k: v for k, v in kid(feats, real_features, seed=p.seed).items() if k in ("mean", "std")}
        n = min(len(feats), len(real_features))  # equal sizes: k-NN radii of both manifolds on the same footing
        extra["precision"][what], extra["recall"][what] = precision_recall(feats[:n], real_features[:n]).values()
        if extractor.classify is not None:
            coverage = class_coverage(extractor.classify(feats), extractor.n_classes)
            extra["class_entropy"][what], extra["class_shares"][what] = coverage["entropy"], coverage["shares"]
        log.info("%s: FD %.4f, KID %.5f, precision %.3f, recall %.3f", what, result[what], extra["kid"][what]["mean"],
                 extra["precision"][what], extra["recall"][what])

    score(reconstruction_batches(model, test, bs), len(test), "reconstruction")
    for name, density in samplers.items():
        generator = Generator(density, model.decoder).to(device)
        score(generated_batches(generator, p.eval.n_samples, bs, p.seed), p.eval.n_samples, name)
    n_pr = min(p.eval.n_samples, len(real_features))
    result.update(extra)
    result["protocol"] = {
        "feature_extractor": p.eval.feature_extractor, "weights_sha256": extractor.weights_sha256,
        "feature_dim": int(real_features.shape[1]), "n_generated": p.eval.n_samples,
        "reference": {"split": "test", "n": len(real_features)}, "quantisation": QUANTISATION,
        "kid": {"subsets": KID_SUBSETS, "subset_size": min(1000, p.eval.n_samples, len(real_features)),
                "kernel": "(x.y / D + 1)^3", "estimator": "unbiased MMD^2 (torch-fidelity)", "seed": p.seed},
        "precision_recall": {"k": PR_NEIGHBOURHOOD, "n_generated": n_pr, "n_real": n_pr,
                             "implementation": "torch-fidelity"},
    }
    if extractor.classify is not None:
        result["protocol"]["class_coverage"] = {"classes": extractor.n_classes, "max_entropy": float(np.log(extractor.n_classes))}
    write_json(FID, result)
    log.info("wrote %s", FID)


if __name__ == "__main__":
    run(main)

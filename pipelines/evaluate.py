"""Stage evaluate: Fréchet distance per sampler and for reconstructions -> reports/fid.json.

Generated images (eval.n_samples, the seeded inputs the ONNX generator would get) and test
reconstructions are quantised to 8 bits, as saved images would be, and fed to the feature
extractor in batches on the stage's device; nothing is written to disk. The test split's
statistics come from the feature_stats stage. With the classifier extractor (digits) the
values are classifier-feature Fréchet distances, not Inception FIDs.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from eae.checkpoint import load_checkpoint, model_from_checkpoint
from eae.prepared import read_split
from eae.density import load_samplers
from eae.evaluation import features_of
from eae.fid import check_same_dims, feature_statistics, frechet_distance, load_statistics
from eae.generator import Generator, generated_batches
from eae.io import write_json
from eae.seed import seed_everything
from eae.inference import reconstruction_batches
from pipelines._stage import CHECKPOINT, DENSITY, FID, PREPARED, TEST_STATS, log, resolve_device, run
from pipelines.config import load_params
from pipelines.feature_stats import load_extractor

METRIC_NAMES = {
    "classifier": "Fréchet distance in digits-classifier features (not Inception FID)",
    "inception": "FID (Inception-v3 features, pytorch-fid)",
}


def quantised(image_batches):
    """Round to the 256 levels of an 8-bit image, as a PNG of the sample would hold."""
    for x in image_batches:
        yield torch.round(x * 255.0) / 255.0


def main() -> None:
    p = load_params()
    seed_everything(p.seed)
    device = resolve_device(p.eval.device)
    extract, facts = load_extractor(p, device)
    real = load_statistics(TEST_STATS)
    model = model_from_checkpoint(load_checkpoint(CHECKPOINT)).to(device)
    samplers = load_samplers(DENSITY)
    test = torch.from_numpy(read_split(PREPARED, "test").images)
    bs = p.eval.batch_size

    def distance(image_batches, total: int, what: str) -> float:
        with tqdm(total=total, desc=f"evaluate {what}", unit="img", mininterval=2) as bar:
            stats = feature_statistics(features_of(extract, quantised(image_batches), progress=bar))
        check_same_dims(stats, real, what, TEST_STATS)
        value = frechet_distance(*stats, *real)
        log.info("%s: %.4f", what, value)
        return value

    result = {"feature_extractor": p.eval.feature_extractor, "metric": METRIC_NAMES[p.eval.feature_extractor],
              "n_samples": p.eval.n_samples, "n_test": len(test), **facts}
    result["reconstruction"] = distance(reconstruction_batches(model, test, bs), len(test), "reconstruction")
    for name, density in samplers.items():
        generator = Generator(density, model.decoder).to(device)
        result[name] = distance(generated_batches(generator, p.eval.n_samples, bs, p.seed), p.eval.n_samples, name)
    write_json(FID, result)
    log.info("wrote %s", FID)


if __name__ == "__main__":
    run(main)

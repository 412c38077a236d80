"""Stage evaluate: Fréchet distance per sampler and for reconstructions -> reports/fid.json.

For digits the features are the penultimate layer of the digits classifier (the
train_classifier stage): a *classifier-feature* Fréchet distance, not an Inception FID.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from eae.checkpoint import load_checkpoint, model_from_checkpoint
from eae.classifier import load_classifier
from eae.data import read_split
from eae.density import SAMPLERS, load_densities
from eae.evaluation import features_of, generated_batches, reconstruction_batches
from eae.fid import feature_statistics, frechet_distance
from eae.generator import Generator
from eae.io import write_json
from eae.seed import seed_everything
from eae.train import batches
from pipelines._stage import CHECKPOINT, CLASSIFIER, DENSITY, FID, PREPARED, log, resolve_device, run
from pipelines.config import load_params

METRIC_NAMES = {"classifier": "Fréchet distance in digits-classifier features (not Inception FID)"}


def feature_extractor(name: str, device: torch.device):
    """The configured feature extractor as (callable on float images, facts to report about it)."""
    if name == "classifier":
        model, metrics = load_classifier(CLASSIFIER)
        model.to(device)
        log.info("classifier features, classifier test accuracy %.4f", metrics["test_accuracy"])
        return model.features, {"classifier_test_accuracy": metrics["test_accuracy"]}
    raise ValueError(f"unknown feature extractor {name!r}")  # unreachable: the config validates it


def main() -> None:
    p = load_params()
    seed_everything(p.seed)
    device = resolve_device(p.eval.device)
    extract, extractor_facts = feature_extractor(p.eval.feature_extractor, device)
    model = model_from_checkpoint(load_checkpoint(CHECKPOINT)).to(device)
    densities = load_densities(DENSITY)
    test = torch.from_numpy(read_split(PREPARED, "test").images).to(device)
    bs = p.eval.batch_size

    real = feature_statistics(features_of(extract, batches(test, bs, shuffle=False, drop_last=False)))
    result = {"feature_extractor": p.eval.feature_extractor, "metric": METRIC_NAMES[p.eval.feature_extractor],
              "n_samples": p.eval.n_samples, "n_test": len(test), **extractor_facts}
    recon = feature_statistics(features_of(extract, reconstruction_batches(model, test, bs)))
    result["reconstruction"] = frechet_distance(*recon, *real)
    for name in SAMPLERS:
        generator = Generator(densities[name], model.decoder).to(device)
        with tqdm(total=p.eval.n_samples, desc=f"evaluate {name}", unit="img", mininterval=2) as bar:
            feats = features_of(extract, generated_batches(generator, p.eval.n_samples, bs, p.seed), progress=bar)
        result[name] = frechet_distance(*feature_statistics(feats), *real)
        log.info("%s: %.4f", name, result[name])
    write_json(FID, result)
    log.info("wrote %s: %s", FID, {k: round(result[k], 4) for k in (*SAMPLERS, "reconstruction")})


if __name__ == "__main__":
    run(main)

"""Stage feature_stats: the feature extractor for the sample-quality metrics and the test split's
features -> models/features/ (test_stats.npz in pytorch-fid's --save-stats format, the features
themselves in test_features.npy for KID and precision/recall, plus classifier.pt for the
classifier extractor), reports/feature_extractor.json.

Computed once per dataset and extractor: experiments on entropy_weight reuse it.
- classifier (digits): a small CNN trained on the labels; its penultimate layer is the feature
  space. The resulting distances are *not* Inception FIDs.
- inception: pytorch-fid's InceptionV3 with the weights file from eval.inception_weights or
  the torch hub cache; the stage fails with one line naming the file if it is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from eae.data.batches import batches
from eae.data.prepared import read_manifest, read_split
from eae.errors import EAEError
from eae.evaluation.classifier import (
    Classifier,
    ClassifierConfig,
    accuracy,
    load_classifier,
    save_classifier,
    train_classifier,
)
from eae.evaluation.features import features_of
from eae.evaluation.fid import feature_statistics, save_statistics
from eae.export.card import sha256_file
from eae.io import atomic_dir, write_json
from eae.training.seed import seed_everything
from pipelines._stage import CLASSIFIER, FEATURE_METRICS, FEATURES, PREPARED, TEST_STATS, log, resolve_device, run
from pipelines.config import Params, load_params


def fit_classifier(p: Params, device: torch.device, out_path) -> tuple[Classifier, dict]:
    manifest = read_manifest(PREPARED)
    train, test = read_split(PREPARED, "train"), read_split(PREPARED, "test")
    if train.labels is None or test.labels is None:
        raise EAEError(
            f"data source {manifest['source']!r} has no labels: the classifier feature "
            "extractor needs a labelled dataset (use eval.feature_extractor: inception)"
        )
    n_classes = int(max(train.labels.max(), test.labels.max())) + 1
    arch = ClassifierConfig(
        tuple(manifest["image_shape"]),
        n_classes=n_classes,
        channels=tuple(p.classifier.channels),
        feature_dim=p.classifier.feature_dim,
    )
    model = Classifier(arch).to(device)
    to = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    with tqdm(total=p.classifier.epochs, desc="classifier", unit="epoch") as bar:
        history = train_classifier(
            model,
            to(train.images),
            to(train.labels),
            p.classifier.epochs,
            p.classifier.batch_size,
            p.classifier.lr,
            generator=torch.Generator().manual_seed(p.classifier.seed),
            progress=bar,
        )
    metrics = {
        "test_accuracy": accuracy(model, to(test.images), to(test.labels)),
        "train_accuracy": accuracy(model, to(train.images), to(train.labels)),
        "final_loss": history[-1],
    }
    save_classifier(out_path, model, metrics)
    log.info("classifier: test accuracy %.4f", metrics["test_accuracy"])
    return model, metrics


def main() -> None:
    p = load_params()
    seed_everything(p.classifier.seed)
    device = resolve_device(p.eval.device)
    test = torch.from_numpy(read_split(PREPARED, "test").images).to(device)
    with atomic_dir(FEATURES) as tmp:
        if p.eval.feature_extractor == "classifier":
            model, facts = fit_classifier(p, device, tmp / "classifier.pt")
            extract = model.features
        else:
            from eae.evaluation.inception import inception_extractor

            extract = inception_extractor(device, p.eval.inception_dims, p.eval.inception_weights)
            facts = {"dims": p.eval.inception_dims}
        with tqdm(total=len(test), desc="test features", unit="img", mininterval=2) as bar:
            feats = features_of(extract, batches(test, p.eval.batch_size, shuffle=False, drop_last=False), bar)
        save_statistics(tmp / "test_stats.npz", *feature_statistics(feats))
        np.save(tmp / "test_features.npy", feats.astype(np.float32))
    write_json(
        FEATURE_METRICS,
        {
            "feature_extractor": p.eval.feature_extractor,
            "n_test": len(test),
            "feature_dim": int(feats.shape[1]),
            **facts,
        },
    )
    log.info("wrote %s (%d test images, %d-d features)", TEST_STATS, len(test), feats.shape[1])


@dataclass
class Extractor:
    """What evaluate needs of the fitted extractor: ``features`` (float images -> [N, D]),
    ``classify`` (features -> predicted classes, classifier only), ``facts`` for fid.json and the
    sha256 of its weights file."""

    features: Callable[[torch.Tensor], torch.Tensor]
    classify: Callable[[np.ndarray], np.ndarray] | None
    n_classes: int | None
    facts: dict
    weights_sha256: str


def load_extractor(p: Params, device: torch.device) -> Extractor:
    """The extractor this stage fitted (classifier) or configured (Inception)."""
    if p.eval.feature_extractor == "classifier":
        model, metrics = load_classifier(CLASSIFIER)
        model = model.to(device)

        @torch.no_grad()
        def classify(features: np.ndarray) -> np.ndarray:
            return model.head(torch.from_numpy(np.asarray(features, np.float32)).to(device)).argmax(1).cpu().numpy()

        return Extractor(
            model.features,
            classify,
            model.arch.n_classes,
            {"classifier_test_accuracy": metrics["test_accuracy"]},
            sha256_file(CLASSIFIER),
        )
    from eae.evaluation.inception import default_weights_path, inception_extractor

    weights = p.eval.inception_weights or default_weights_path()
    return Extractor(
        inception_extractor(device, p.eval.inception_dims, p.eval.inception_weights),
        None,
        None,
        {"inception_dims": p.eval.inception_dims},
        sha256_file(weights),
    )


if __name__ == "__main__":
    run(main)

"""Stage train_classifier: the digits feature extractor for the Fréchet distance
-> models/classifier.pt, reports/classifier_metrics.json.

Independent of the autoencoder, so experiments on entropy_weight reuse it."""

from __future__ import annotations

import torch
from tqdm import tqdm

from eae.classifier import Classifier, ClassifierConfig, accuracy, save_classifier, train_classifier
from eae.data import read_manifest, read_split
from eae.errors import EAEError
from eae.io import write_json
from eae.seed import seed_everything
from pipelines._stage import CLASSIFIER, CLASSIFIER_METRICS, PREPARED, log, resolve_device, run
from pipelines.config import load_params

def main() -> None:
    p = load_params()
    seed_everything(p.seed)
    device = resolve_device(p.eval.device)
    manifest = read_manifest(PREPARED)
    train, test = read_split(PREPARED, "train"), read_split(PREPARED, "test")
    if train.labels is None or test.labels is None:
        raise EAEError(f"data source {manifest['source']!r} has no labels: the classifier feature "
                       "extractor needs a labelled dataset (use eval.feature_extractor: inception)")
    n_classes = int(max(train.labels.max(), test.labels.max())) + 1
    cfg = ClassifierConfig(tuple(manifest["image_shape"]), n_classes=n_classes, feature_dim=p.classifier.feature_dim)
    model = Classifier(cfg).to(device)
    to = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    with tqdm(total=p.classifier.epochs, desc="classifier", unit="epoch") as bar:
        history = train_classifier(model, to(train.images), to(train.labels), p.classifier.epochs,
                                   p.classifier.batch_size, p.classifier.lr,
                                   generator=torch.Generator().manual_seed(p.seed), progress=bar)
    metrics = {"test_accuracy": accuracy(model, to(test.images), to(test.labels)),
               "train_accuracy": accuracy(model, to(train.images), to(train.labels)),
               "final_loss": history[-1]}
    save_classifier(CLASSIFIER, model, metrics)
    write_json(CLASSIFIER_METRICS, metrics)
    log.info("wrote %s: test accuracy %.4f", CLASSIFIER, metrics["test_accuracy"])


if __name__ == "__main__":
    run(main)

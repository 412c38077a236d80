"""The generator's model card for people: ``README.md`` beside the .onnx files, in the Hugging Face
model-card format (YAML front matter, then Markdown sections).

One source of truth: ``render_model_card(card)`` renders the same dict that ``generator.json``
holds (``eae.export.card.make_card``), through ``templates/model_card.md.j2``. The front matter's
``model-index`` carries every metric ``reports/fid.json`` holds for the exported sampler
(``evaluation_results`` reads Fréchet distances and any other per-sampler metric, such as KID,
precision or recall, without a fixed list), with the evaluation protocol as each metric's ``args``.

No torch here (the card is rendered from plain data).
"""

from __future__ import annotations

import re

from eae.errors import EAEError
from eae.evaluation.results import LABELS, parse_results

LICENSE = "mit"  # the project's license (pyproject.toml); the training data's own terms also apply
TEMPLATE = "model_card.md.j2"
TASK = {"type": "unconditional-image-generation", "name": "Unconditional image generation"}
# project data source -> (dataset id for the card; a Hub id where one exists, human name)
DATASETS = {
    "digits": ("digits", "scikit-learn digits (UCI handwritten digits, 8x8 upsampled)"),
    "mnist": ("ylecun/mnist", "MNIST"),
    "cifar10": ("uoft-cs/cifar10", "CIFAR-10"),
    "celeba": ("celeba", "CelebA (aligned and cropped faces)"),
    "folder": ("image-folder", "a folder of images"),
}
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def evaluation_results(evaluation: dict) -> tuple[list[dict], dict]:
    """An evaluation record (reports/fid.json, read by ``eae.evaluation.results``) as result rows
    ``{"sampler", "metric", "value"}`` and the protocol's scalar entries (plus ``n_test``, the size of
    the reference split), which the card shows and the Hub metadata carries as each metric's args."""
    results = parse_results(evaluation)
    protocol = {k: v for k, v in results.protocol.items() if isinstance(v, (str, bool, int, float))}
    reference = results.protocol.get("reference")
    if isinstance(reference, dict) and "n" in reference:
        protocol["n_test"] = reference["n"]
    return results.rows(), protocol


def metric_type(metric: str, feature_extractor: str | None) -> str:
    """The card's metric id: ``fid`` only for Inception features (comparable with the literature);
    otherwise the metric named with its feature space, e.g. ``frechet_distance_classifier``."""
    if metric == "fd":
        return "fid" if feature_extractor == "inception" else f"frechet_distance_{feature_extractor or 'unknown'}"
    return metric if feature_extractor == "inception" else f"{metric}_{feature_extractor or 'unknown'}"


def metric_label(metric: str, protocol: dict) -> str:
    """A metric's name with its feature space, e.g. 'kid (classifier features)'."""
    if metric == "fd":
        return str(protocol.get("metric_name") or LABELS["fd"])
    features = (
        "Inception-v3"
        if protocol.get("feature_extractor") == "inception"
        else protocol.get("feature_extractor", "unknown")
    )
    return f"{metric} ({features} features)"


def dataset_names(source: str) -> tuple[str, str]:
    """(dataset id, human name) of a project data source."""
    return DATASETS.get(source, (source, source))


def front_matter(card: dict) -> dict:
    """The Hugging Face model-card metadata for a generator card."""
    rows, protocol = evaluation_results(card.get("evaluation") or {})
    extractor = protocol.get("feature_extractor")
    dataset_id, dataset_name = dataset_names(card["dataset"])
    objective = (card.get("training") or {}).get("objective", {}).get("name", "eae")
    mine = [r for r in rows if r["sampler"] == card["sampler"]]
    metrics = [
        {
            "type": metric_type(r["metric"], extractor),
            "value": round(r["value"], 6),
            "name": f"{metric_label(r['metric'], protocol)}, {card['sampler']} sampler",
            "args": {**{k: v for k, v in protocol.items() if k != "metric_name"}, "sampler": card["sampler"]},
            "verified": False,
        }
        for r in mine
    ]
    return {
        "license": LICENSE,
        "library_name": "onnx",
        "pipeline_tag": TASK["type"],
        "tags": sorted(
            {
                "onnx",
                "image-generation",
                "autoencoder",
                "entropic-autoencoder",
                objective,
                f"sampler-{card['sampler']}",
                card["dataset"],
            }
        ),
        "datasets": [dataset_id],
        "metrics": sorted({m["type"] for m in metrics}),
        "model-index": [
            {
                "name": f"{objective}-{card['dataset']}-{card['sampler']}",
                "results": [
                    {
                        "task": dict(TASK),
                        "dataset": {"type": dataset_id, "name": dataset_name, "split": "test"},
                        "metrics": metrics,
                    }
                ]
                if metrics
                else [],
            }
        ],
    }


def render_model_card(card: dict) -> str:
    """README.md for a generator card: YAML front matter + the Markdown sections of the template."""
    import yaml
    from jinja2 import Environment, PackageLoader, StrictUndefined

    meta = front_matter(card)
    rows, protocol = evaluation_results(card.get("evaluation") or {})
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    table = {}
    for r in rows:
        table.setdefault(r["sampler"], {})[r["metric"]] = r["value"]
    env = Environment(
        loader=PackageLoader("eae.export", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    body = env.get_template(TEMPLATE).render(
        card=card,
        meta=meta,
        c=card["image_shape"][0],
        h=card["image_shape"][1],
        w=card["image_shape"][2],
        dataset_name=dataset_names(card["dataset"])[1],
        metrics=metrics,
        labels={m: LABELS[m] for m in metrics},
        table=table,
        protocol=protocol,
        inception=protocol.get("feature_extractor") == "inception",
        training=card.get("training") or {},
        z=card.get("z_generator"),
    )
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + body


def read_front_matter(text: str) -> dict:
    """The YAML front matter of a model card README (what the Hugging Face Hub parses)."""
    import yaml

    match = FRONT_MATTER.match(text)
    if not match:
        raise EAEError("model card has no YAML front matter (a block between '---' lines at the top)")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise EAEError(f"model card front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise EAEError("model card front matter is not a mapping")
    return meta

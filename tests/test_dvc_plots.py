"""After `dvc repro` (a tiny copy): `dvc plots show` renders the training curves, the logged sample grids and
the per-sampler score charts of dvc.yaml; every score of reports/fid.json names its implementation in the
protocol, and the model card carries that protocol."""

import json

import pytest

from tests.helpers.repos import reproduced_tiny_repo, sh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return reproduced_tiny_repo(tmp_path_factory.mktemp("plots") / "repo")


def test_plots_show_renders_grids_and_score_charts(repo, tmp_path):
    shown = json.loads(sh(["dvc", "plots", "show", "--json"], repo))
    assert not shown.get("errors"), shown["errors"]
    data = shown["data"]
    images = [key for key in data if key.startswith("dvclive/plots/images/samples/epoch_") and key.endswith(".png")]
    assert images, sorted(data)  # the sample grids training logged
    assert all(entry["type"] == "image" for key in images for entry in data[key])
    for metric in ("fd", "kid", "precision", "recall"):
        rendered = data[f"{metric}_per_sampler"][0]
        assert rendered["type"] == "vega", rendered
        rows = rendered["content"]["data"]["values"]
        assert {"isotropic", "mvg", "gmm", "reconstruction"} <= {r["sampler"] for r in rows}
        assert all(isinstance(r[metric], (int, float, str)) for r in rows)
    sh(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], repo)
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "Recall per sampler (higher is better)" in page and "epoch_" in page  # titles as JSON strings


def test_every_score_names_its_implementation_and_the_card_carries_it(repo):
    fid = json.loads((repo / "reports/fid.json").read_text())
    protocol = fid["protocol"]
    assert "Fréchet distance in float64" in protocol["implementation"]  # the Fréchet distance's
    for section in ("kid", "precision_recall", "class_coverage"):
        assert "eae.evaluation" in protocol[section]["implementation"], section
    assert protocol["n_generated"] == 300 and protocol["reference"]["split"] == "test"
    card = json.loads((repo / "models/generator.json").read_text())
    assert card["evaluation"]["protocol"] == protocol
    scores = json.loads((repo / "reports/scores.json").read_text())
    assert {r["sampler"]: r["fd"] for r in scores} == {c: v for c, v in fid["metrics"]["fd"].items()}

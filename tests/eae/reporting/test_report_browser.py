"""The report in a real browser (headless Chromium): every image decodes, no script errors, no
external requests, no horizontal overflow at 1280 px; a full-page screenshot is taken.

Skips when Chromium is missing and CI is not set; fails under CI. Set REPORT_SCREENSHOT_DIR
to keep the screenshots.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eae.reporting.report import png_data_uri, render_report, report_context
from tests.helpers.browser import WIDTH, check_page, require_chromium, screenshot
from tests.helpers.report_inputs import synthetic_inputs


@pytest.fixture(scope="module")
def chromium():
    return require_chromium()


def keep(path: Path) -> None:
    target = os.environ.get("REPORT_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(target) / path.name)


def assert_clean(verdict: dict, n_images: int) -> None:
    assert verdict["images"] == n_images, verdict
    assert verdict["broken"] == [], f"broken images: {verdict['broken']}"
    assert verdict["errors"] == [], f"script/resource errors: {verdict['errors']}"
    assert verdict["external"] == [], f"external requests: {verdict['external']}"
    assert verdict["width"] <= WIDTH, f"page is {verdict['width']} px wide: horizontal overflow"


@pytest.mark.parametrize("variant", ["complete", "missing_pieces"])
def test_report_renders_in_chromium(chromium, tmp_path, variant):
    inputs = synthetic_inputs()
    if variant == "missing_pieces":
        inputs.update(fid=None, experiments=None, experiments_error=None, generator=None, gmm_weights=None)
        inputs["samples"].pop("mvg")
    html = render_report(report_context(**inputs))
    page = tmp_path / f"report-{variant}.html"
    page.write_text(html, encoding="utf-8")

    verdict = check_page(chromium, page, tmp_path)
    assert_clean(verdict, html.count("<img"))
    assert verdict["title"].startswith("EAE report")

    shot = screenshot(chromium, page, tmp_path / f"report-{variant}.png", verdict["height"])
    keep(shot)
    img = Image.open(shot)
    assert img.format == "PNG" and img.width == WIDTH and img.height >= min(verdict["height"], 16000) - 1
    pixels = np.asarray(img.convert("L"))
    assert pixels.min() < 60 and pixels.max() > 240 and pixels.std() > 10  # text and figures, not blank


def test_checker_catches_broken_images_and_script_errors(chromium, tmp_path):
    good = png_data_uri(np.zeros((2, 2, 3), np.uint8))
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><head><title>bad</title></head><body>"
        '<img alt="truncated" src="data:image/png;base64,iVBORw0KGgo=">'
        f'<img alt="ok" src="{good}">'
        "<script>undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    verdict = check_page(chromium, page, tmp_path)
    assert verdict["images"] == 2
    assert verdict["broken"] == ["truncated"]
    assert any("undefinedFunction" in e for e in verdict["errors"])


@pytest.mark.parametrize(
    "ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception), ("false", pytest.skip.Exception)]
)
def test_missing_chromium_skips_locally_and_fails_in_ci(monkeypatch, ci, outcome):
    import tests.helpers.browser as browser

    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="scripts/install-chromium.sh"):
        browser.require_chromium()

"""Headless Chromium for the report tests: load a page, check every image and script, screenshot it.

Chromium comes from Debian's packages (scripts/install-chromium.sh). Without it the browser
tests skip, except under CI (``CI`` set and not false/0), where they fail.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
WIDTH = 1280
MAX_HEIGHT = 16000  # Chromium's screenshot limit is 16384 px

# Registered first: records script errors, failed resources and unhandled rejections.
_TRAP = """<script>window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  if (t && t !== window && t.tagName) {
    window.__errors.push('failed to load ' + t.tagName + ' ' + String(t.src || t.href || '').slice(0, 80));
  } else {
    window.__errors.push('script error: ' + e.message + ' at ' + e.filename + ':' + e.lineno);
  }
}, true);
window.addEventListener('unhandledrejection', function (e) {
  window.__errors.push('unhandled rejection: ' + e.reason);
});
</script>"""
# Runs on load: every <img> must have decoded (complete, naturalWidth > 0); no resource may come
# from anywhere but a data: URI. The verdict goes into the DOM for --dump-dom.
_CHECK = """<script>window.addEventListener('load', function () {
  var imgs = [].slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                   .map(function (i) { return i.alt || String(i.src).slice(0, 60); });
  var external = performance.getEntriesByType('resource').map(function (r) { return r.name; })
                            .filter(function (n) { return !/^data:/.test(n); });
  var out = {images: imgs.length, broken: broken, errors: window.__errors, external: external,
             width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
             title: document.title};
  var pre = document.createElement('pre');
  pre.id = 'browser-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium() -> str:
    """Chromium's path; skips the test when it is missing, fails instead under CI."""
    path = find_chromium()
    if path is None:
        message = "headless Chromium not found (install it with scripts/install-chromium.sh)"
        if in_ci():
            pytest.fail(f"{message}; CI is set, so the browser test must run")
        pytest.skip(f"{message}; CI is not set")
    return path


def _run(chromium: str, args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={profile}",
            *args,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return proc


def check_page(chromium: str, page: Path, workdir: Path) -> dict:
    """Load a copy of ``page`` with the checker injected; returns its verdict: images (count),
    broken (alts of images that did not decode), errors (script / resource errors), external
    (non-data: resources fetched), width/height (document size at 1280 px wide), title."""
    source = page.read_text(encoding="utf-8")
    if "<head>" not in source or "</body>" not in source:
        raise AssertionError(f"{page} has no <head> or </body>")
    probe = workdir / f"{page.stem}.checked.html"
    probe.write_text(
        source.replace("<head>", "<head>" + _TRAP, 1).replace("</body>", _CHECK + "</body>", 1), encoding="utf-8"
    )
    proc = _run(
        chromium, [f"--window-size={WIDTH},900", "--virtual-time-budget=10000", "--dump-dom", probe.resolve().as_uri()]
    )
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', proc.stdout, re.S)
    if proc.returncode != 0 or not found:
        raise AssertionError(
            f"chromium --dump-dom gave no verdict (exit {proc.returncode}):\n"
            f"{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(html.unescape(found.group(1)))


def dump_dom(chromium: str, url: str, budget_ms: int = 20000) -> str:
    """The DOM of ``url`` (e.g. a page on a local HTTP server) once its scripts ran, within ``budget_ms`` of
    Chromium's virtual time (which waits for pending fetches)."""
    proc = _run(chromium, [f"--window-size={WIDTH},900", f"--virtual-time-budget={budget_ms}", "--dump-dom", url])
    if proc.returncode != 0:
        raise AssertionError(f"chromium --dump-dom {url} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def screenshot(chromium: str, page: Path | str, out: Path, height: int, budget_ms: int | None = None) -> Path:
    """Full-page PNG of ``page`` (a file, or a URL) at 1280 px wide (``height`` from ``check_page``, capped);
    ``budget_ms``: virtual time for its scripts to finish first."""
    height = max(600, min(int(height), MAX_HEIGHT))
    target = page if isinstance(page, str) else page.resolve().as_uri()
    budget = [f"--virtual-time-budget={budget_ms}"] if budget_ms else []
    proc = _run(chromium, [f"--window-size={WIDTH},{height}", *budget, f"--screenshot={out.resolve()}", target])
    if proc.returncode != 0 or not out.is_file():
        raise AssertionError(f"chromium --screenshot failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return out

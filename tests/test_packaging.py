"""What an app that embeds the generator installs: `pip install .` is the torch-free runtime, with console
scripts, type information, an MIT license and a citation of the paper."""

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from eae.export.runtime import Generator
from tests.helpers.processes import free_port, stop
from tests.helpers.repos import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PAPER_TITLE = "Batch norm with entropic regularization turns deterministic autoencoders into generative models"


def test_base_dependencies_are_the_runtimes():
    base = {re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    assert base == {"numpy", "onnxruntime", "onnx", "pillow"}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"fastapi<0.155", "uvicorn"} <= set(extras["serve"])
    assert {"torch>=2.4", "dvc", "gto", "prefect>=3.8,<3.9"} <= set(extras["pipeline"])


def test_console_scripts_resolve():
    import importlib

    scripts = PYPROJECT["project"]["scripts"]
    assert set(scripts) == {"eae-sample", "eae-info", "eae-serve"}
    for target in scripts.values():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), target


def test_license_is_the_declared_mit():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Permission is hereby granted, free of charge" in text
    assert PYPROJECT["project"]["license"] == {"text": "MIT"}
    from eae.export.readme import LICENSE

    assert LICENSE == "mit"  # what the model card declares


def test_citation_cites_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["message"] and cff["authors"] and cff["title"]
    assert cff["version"] == PYPROJECT["project"]["version"] and cff["license"] == "MIT"
    paper = cff["preferred-citation"]
    assert paper["type"] == "conference-paper" and paper["year"] == 2020
    assert [a["family-names"] for a in paper["authors"]] == ["Ghose", "Rashwan", "Poupart"]
    paper_text = ROOT.parent / "shared" / "paper" / "eae-uai2020.txt"
    if paper_text.exists():  # the paper as text, where the workspace has it
        assert PAPER_TITLE in paper_text.read_text()
    assert paper["title"] == PAPER_TITLE


def test_py_typed_ships():
    assert (ROOT / "eae" / "py.typed").exists()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["eae"]


@pytest.mark.slow
def test_runtime_only_install_samples_without_torch(tiny_generator, tmp_path):
    """A fresh venv with only `pip install .` (from the registry and the local wheels): eae-sample writes
    the runtime's images, `import torch` fails, eae-serve says which extra it needs."""
    src = tmp_path / "src"
    files = subprocess.run(
        ["git", "ls-files", "-z", "pyproject.toml", "README.md", "LICENSE", "eae", "pipelines"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, files.decode().split("\0")):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    venv = tmp_path / "venv"
    python = shutil.which("python3.11") or sys.executable
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([python, "-m", "venv", str(venv)], check=True, env=env)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(src)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)

    model = tiny_generator.folder / "generator.onnx"
    sample = run(str(venv / "bin" / "eae-sample"), str(model), "-n", "16", "-o", "x.png", "--npy", "x.npy")
    assert sample.returncode == 0, sample.stderr
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    images = np.load(tmp_path / "x.npy")
    # the registry's onnxruntime may be a newer release than the lock's: equal within one level
    assert np.abs(images.astype(int) - Generator(model).sample(16, seed=0).astype(int)).max() <= 1
    torch = run(str(venv / "bin" / "python"), "-c", "import torch")
    assert torch.returncode != 0 and "No module named 'torch'" in torch.stderr
    installed = run(str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze").stdout.lower()
    for heavy in ("torch", "scikit-learn", "matplotlib", "onnxscript", "dvc", "prefect"):
        assert f"\n{heavy}==" not in f"\n{installed}", heavy
    info = run(str(venv / "bin" / "eae-info"), str(model))
    assert info.returncode == 0 and '"noise_dim": 3' in info.stdout
    serve = run(str(venv / "bin" / "eae-serve"), str(model))
    assert serve.returncode == 2 and serve.stderr.strip() == "error: eae-serve needs fastapi: pip install 'eae[serve]'"
    assert list(Path(venv).glob("lib/python3*/site-packages/eae/py.typed"))

    # The Docker runtime image's install line (Dockerfile, stage runtime): the serve extra at the lock's versions.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text((ROOT / "requirements.lock").read_text().replace("onnxruntime-gpu==", "onnxruntime=="))
    pip = run(
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--constraint",
        str(constraints),
        f"{src}[serve]",
    )
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    assert run(str(venv / "bin" / "python"), "-c", "import torch").returncode != 0
    port = free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "eae-serve"), str(model), "--port", str(port), "--workers", "1", "--log-level", "warning"],
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/samples.png", params={"n": 16}, timeout=10)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "eae-serve did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and r.content == (tmp_path / "x.png").read_bytes()
    finally:
        stop(server)

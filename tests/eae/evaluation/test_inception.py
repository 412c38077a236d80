"""FID Inception features and the ``python -m eae.evaluation.fid`` command line against pytorch-fid.

There is no network: the tests save *random* FID-Inception weights (seeded, same
architecture as pytorch-fid's ``fid_inception_v3``) where torch hub caches the real ones,
under a temporary TORCH_HOME, and run both pytorch-fid and eae on them. Inception at
299x299 is slow on a CPU, so the command lines use ``--dims 64`` (first block only) and
20 small images per folder; the 2048-d path is checked in-process on a few images.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pf_inception = pytest.importorskip("pytorch_fid.inception")

from eae.errors import EAEError  # noqa: E402
from eae.evaluation.fid import load_statistics, main, save_statistics  # noqa: E402
from tests.helpers.inception import WEIGHTS_NAME, random_fid_inception_state  # noqa: E402
from tests.helpers.repos import ROOT as REPO  # noqa: E402


def write_images(folder: Path, n: int, seed: int, offset: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = np.clip(rng.integers(0, 200, (32, 32, 3)) + offset, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def fid_env(tmp_path_factory):
    """TORCH_HOME with random FID weights in torch hub's cache, and two image folders."""
    root = tmp_path_factory.mktemp("fid")
    weights = root / "torch" / "hub" / "checkpoints" / WEIGHTS_NAME
    weights.parent.mkdir(parents=True)
    torch.save(random_fid_inception_state(), weights)
    a = write_images(root / "a", 20, seed=1, offset=0)
    b = write_images(root / "b", 20, seed=2, offset=55)
    return {"root": root, "torch_home": root / "torch", "weights": weights, "a": a, "b": b}


@pytest.fixture
def torch_home(fid_env, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(fid_env["torch_home"]))
    return fid_env


def run_cli(module: str, *args, torch_home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TORCH_HOME=str(torch_home), PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )


def fid_of(output: str) -> float:
    found = re.findall(r"^FID:\s+(\S+)$", output, flags=re.M)
    assert len(found) == 1, output
    return float(found[0])


def cli_error(capsys, argv) -> str:
    """Run ``main(argv)`` in-process; it must fail with exit code 2 and one stderr line."""
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


def test_image_extensions_are_pytorch_fids():
    from pytorch_fid.fid_score import IMAGE_EXTENSIONS

    from eae.evaluation.folders import IMAGE_EXTENSIONS as ours

    assert set(ours) == set(IMAGE_EXTENSIONS)


def test_features_match_pytorch_fid_inception_2048(torch_home):
    """Same weights, same resize/normalisation, same pooled block as pytorch-fid's model."""
    from eae.evaluation.folders import image_batches, image_files
    from eae.evaluation.inception import default_weights_path, inception_extractor

    assert default_weights_path() == torch_home["weights"]
    images = next(iter(image_batches(image_files(torch_home["a"])[:2], batch_size=2)))
    state = torch.random.get_rng_state()
    extract = inception_extractor(torch.device("cpu"), dims=2048)
    assert torch.equal(torch.random.get_rng_state(), state)  # building the model draws no random numbers
    reference = pf_inception.InceptionV3([3]).eval()  # pytorch-fid's own loader, from the hub cache file
    ours_state, their_state = extract.model.state_dict(), reference.state_dict()
    assert ours_state.keys() == their_state.keys()
    assert all(torch.equal(ours_state[k], their_state[k]) for k in ours_state)
    assert extract.model.resize_input and extract.model.normalize_input

    ours = extract(images)
    assert ours.shape == (2, 2048) and ours.dtype == torch.float32
    with torch.no_grad():
        theirs = reference(images)[0].squeeze(3).squeeze(2)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7 * float(theirs.abs().max()))


def test_grayscale_explicit_weights_and_bad_input(fid_env, monkeypatch, tmp_path):
    from eae.evaluation.inception import inception_extractor

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))  # the default file is absent here
    extract = inception_extractor("cpu", dims=64, weights_path=fid_env["weights"])
    gray = torch.rand(2, 1, 20, 24, generator=torch.Generator().manual_seed(0))
    out = extract(gray)
    assert out.shape == (2, 64)
    torch.testing.assert_close(out, extract(gray.repeat(1, 3, 1, 1)), rtol=0, atol=0)
    with pytest.raises(EAEError, match="images"):
        extract(torch.rand(2, 4, 8, 8))
    with pytest.raises(TypeError):
        extract(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


def test_a_large_batch_goes_through_in_passes_of_max_batch(fid_env):
    from eae.evaluation.inception import inception_extractor

    extract = inception_extractor("cpu", dims=64, weights_path=fid_env["weights"], max_batch=2)
    images = torch.rand(5, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    one_by_one = torch.cat([extract(images[i : i + 1]) for i in range(5)])
    passes = []
    extract.model.register_forward_pre_hook(lambda _, args: passes.append(len(args[0])))
    out = extract(images)
    assert passes == [2, 2, 1] and out.shape == (5, 64)
    torch.testing.assert_close(out, one_by_one, rtol=1e-5, atol=1e-6)  # eval mode: each image's own features
    with pytest.raises(EAEError, match="max_batch"):
        inception_extractor("cpu", dims=64, weights_path=fid_env["weights"], max_batch=0)


def test_missing_corrupt_or_wrong_weights(tmp_path, monkeypatch):
    from pytorch_fid import inception as pf

    from eae.evaluation.inception import FID_WEIGHTS_URL, load_inception

    loader = pf.load_state_dict_from_url
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    expected = tmp_path / "th" / "hub" / "checkpoints" / WEIGHTS_NAME
    with pytest.raises(EAEError) as err:
        load_inception(2048)
    message = str(err.value)
    assert "\n" not in message and str(expected) in message and FID_WEIGHTS_URL in message
    assert FID_WEIGHTS_URL == pf.FID_WEIGHTS_URL
    assert not expected.exists()  # nothing downloaded, nothing created

    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(EAEError, match="cannot read FID Inception weights"):
        load_inception(64, corrupt)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(EAEError, match="does not hold FID Inception weights") as err:
        load_inception(64, wrong)
    assert "\n" not in str(err.value)
    with pytest.raises(EAEError, match="dims"):
        load_inception(100, wrong)
    assert pf.load_state_dict_from_url is loader  # pytorch-fid's loader is put back


def test_cli_matches_pytorch_fid(fid_env, tmp_path, monkeypatch):
    """``python -m eae.evaluation.fid`` prints pytorch-fid's value for two folders, and its --save-stats
    file holds pytorch-fid's statistics."""
    from pytorch_fid.fid_score import compute_statistics_of_path

    from eae.evaluation.fid import frechet_distance

    common = ["--device", "cpu", "--batch-size", "8", "--num-workers", "0", "--dims", "64"]
    th = fid_env["torch_home"]
    a, b = fid_env["a"], fid_env["b"]

    theirs = run_cli("pytorch_fid", a, b, *common, torch_home=th)
    assert theirs.returncode == 0, theirs.stderr
    ours = run_cli("eae.evaluation.fid", a, b, *common, torch_home=th)
    assert ours.returncode == 0, ours.stderr
    fid_theirs, fid_ours = fid_of(theirs.stdout), fid_of(ours.stdout)
    print(f"FID eae {fid_ours!r} pytorch-fid {fid_theirs!r} abs diff {abs(fid_ours - fid_theirs):.3g}")
    assert fid_ours > 0
    assert fid_ours == pytest.approx(fid_theirs, rel=1e-6)

    stats_a = tmp_path / "a.npz"
    done = run_cli("eae.evaluation.fid", "--save-stats", a, stats_a, *common, torch_home=th)
    assert done.returncode == 0, done.stderr

    # pytorch-fid's statistics, computed in-process, and its reading of our file
    monkeypatch.setenv("TORCH_HOME", str(th))
    model = pf_inception.InceptionV3([0])
    mu_a, sigma_a = compute_statistics_of_path(str(a), model, 8, 64, "cpu", 0)
    mu_b, sigma_b = compute_statistics_of_path(str(b), model, 8, 64, "cpu", 0)
    mu_o, sigma_o = compute_statistics_of_path(str(stats_a), model, 8, 64, "cpu", 0)
    assert mu_o.shape == (64,) and sigma_o.shape == (64, 64)
    np.testing.assert_allclose(mu_o, mu_a, rtol=1e-6, atol=0)
    np.testing.assert_allclose(sigma_o, sigma_a, rtol=1e-6, atol=1e-6 * np.abs(sigma_a).max())
    assert frechet_distance(*load_statistics(stats_a), mu_b, sigma_b) == pytest.approx(fid_ours, rel=1e-6)


def test_cli_errors_are_one_line_exit_2(fid_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    a, b = fid_env["a"], fid_env["b"]
    missing = tmp_path / "no-weights" / "hub" / "checkpoints" / WEIGHTS_NAME
    line = cli_error(capsys, [a, b, "--device", "cpu", "--dims", "64"])
    assert str(missing) in line and "missing FID Inception weights" in line

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    assert "no images" in cli_error(capsys, [empty, b, "--device", "cpu"])

    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip archive")
    assert "corrupt statistics file" in cli_error(capsys, [corrupt, b])
    nokeys = tmp_path / "nokeys.npz"
    np.savez(nokeys, mean=np.zeros(3))
    assert "lacks mu, sigma" in cli_error(capsys, [nokeys, b])

    rng = np.random.default_rng(0)
    s64, s192 = tmp_path / "s64.npz", tmp_path / "s192.npz"
    save_statistics(s64, rng.standard_normal(64), np.eye(64))
    save_statistics(s192, rng.standard_normal(192), np.eye(192))
    assert "different dimensions" in cli_error(capsys, [s64, s192])
    assert "--dims is 2048" in cli_error(capsys, [s64, b, "--device", "cpu"])  # before any Inception work
    assert "no such file or folder" in cli_error(capsys, [tmp_path / "nowhere", s64])
    existing = tmp_path / "exists.npz"
    existing.write_bytes(b"")
    assert "exists" in cli_error(capsys, ["--save-stats", s64, existing])

    # the real entry point: exit status 2, one line on stderr, no traceback
    done = run_cli("eae.evaluation.fid", corrupt, s64, torch_home=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: corrupt statistics file {corrupt}: "), done.stderr


def test_statistics_round_trip_and_pytorch_fid_format(tmp_path):
    rng = np.random.default_rng(3)
    mu, x = rng.standard_normal(16), rng.standard_normal((40, 16))
    sigma = np.cov(x, rowvar=False)
    path = tmp_path / "sub" / "stats.npz"
    save_statistics(path, mu, sigma)
    with np.load(path) as f:  # exactly what pytorch-fid's compute_statistics_of_path reads
        assert sorted(f.files) == ["mu", "sigma"]
        np.testing.assert_array_equal(f["mu"][:], mu)
        np.testing.assert_array_equal(f["sigma"][:], sigma)
    mu2, sigma2 = load_statistics(path)
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)
    assert [p.name for p in path.parent.iterdir()] == ["stats.npz"]  # no temporary file left behind

    bad_shape = tmp_path / "bad.npz"
    np.savez(bad_shape, mu=np.zeros(3), sigma=np.zeros((3, 4)))
    with pytest.raises(EAEError, match="expected"):
        load_statistics(bad_shape)
    not_npz = tmp_path / "array.npz"
    with open(not_npz, "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(EAEError, match="not an .npz"):
        load_statistics(not_npz)

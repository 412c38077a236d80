"""Export: a broken density is refused, and the generator, decoder and card are replaced as one set
(all or nothing), even when the export is killed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from eae.errors import EAEError
from eae.export.card import sha256_file
from eae.export.runtime import Generator
from tests.helpers.workspace import assert_refused, copy_workspace, env, fingerprint, hidden_temporaries, module

pytestmark = pytest.mark.reliability

SET = ("models/generator.onnx", "models/decoder.onnx", "models/generator.json")


def rewrite_density(ws, change) -> None:
    path = ws / "models/density.npz"
    with np.load(path) as f:
        arrays = {k: f[k].copy() for k in f.files}
    change(arrays)
    np.savez(path, **arrays)


def assert_consistent_set(ws) -> None:
    """The card pins both files and the runtime accepts the pair."""
    card = json.loads((ws / "models/generator.json").read_text())
    assert card["sha256"] == sha256_file(ws / "models/generator.onnx")
    assert card["decoder"]["sha256"] == sha256_file(ws / "models/decoder.onnx")
    gen = Generator(ws / "models/generator.onnx")
    assert gen.sample(3, seed=0).shape[0] == 3
    assert gen.decode(np.zeros((2, gen.latent_dim), np.float32)).shape[0] == 2


@pytest.mark.parametrize(
    "sampler, key, culprit",
    [
        ("gmm", "covariances", r"models/density\.npz \(gmm\): covariances hold NaN or infinite values"),
        ("gmm", "means", r"models/density\.npz \(gmm\): means hold NaN or infinite values"),
        ("mvg", "weights", r"models/density\.npz \(mvg\): weights hold NaN or infinite values"),
    ],
)
def test_non_finite_density_is_refused_and_the_last_export_kept(workspace, sampler, key, culprit):
    """Item 2: a NaN covariance passed the parity check (nan > atol is False) and exported black images."""
    rewrite_density(workspace, lambda a: a[f"{sampler}_{key}"].__setitem__((0,) * a[f"{sampler}_{key}"].ndim, np.nan))
    before = fingerprint(workspace)
    assert_refused(module("pipelines.export", cwd=workspace), 1, culprit)
    assert fingerprint(workspace) == before
    assert_consistent_set(workspace)


def test_density_with_wrong_shapes_is_refused(workspace):
    """Item 6: a traceback before."""
    rewrite_density(workspace, lambda a: a.__setitem__("gmm_means", a["gmm_means"][:, :2]))
    before = fingerprint(workspace)
    assert_refused(
        module("pipelines.export", cwd=workspace),
        1,
        r"models/density\.npz \(gmm\): shapes do not fit together: weights \[3\], means \[3, 2\], "
        r"covariances \[3, 4, 4\]",
    )
    assert fingerprint(workspace) == before


def test_density_of_another_model_is_refused(workspace):
    def six_dims(a):
        for name in ("isotropic", "mvg", "gmm"):
            k = len(a[f"{name}_weights"])
            a[f"{name}_means"] = np.zeros((k, 6))
            a[f"{name}_covariances"] = np.tile(np.eye(6), (k, 1, 1))

    rewrite_density(workspace, six_dims)
    before = fingerprint(workspace)
    assert_refused(
        module("pipelines.export", cwd=workspace), 1, r"samples 6-dimensional codes but models/eae\.pt has latent_dim 4"
    )
    assert fingerprint(workspace) == before


def test_failing_export_replaces_nothing(workspace):
    """Item 4 (a failure rather than a kill): before, generator.onnx and decoder.onnx of the new
    export were already in place when the card could not be written."""
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["export"]["sampler"] = "mvg"  # a different generator than the one in place
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (workspace / "reports/fid.json").unlink()
    before = fingerprint(workspace)
    assert_refused(module("pipelines.export", cwd=workspace), 1, r"missing file reports/fid\.json")
    assert fingerprint(workspace) == before
    assert_consistent_set(workspace)
    assert hidden_temporaries(workspace / "models") == []


def test_parity_check_refuses_non_finite_output(tmp_path):
    """Item 2 at its root: export_onnx certified a graph whose outputs are NaN."""
    from eae.export.onnx import export_onnx

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w", torch.full((3,), float("nan")))

        def forward(self, latent):
            return torch.sigmoid(latent * self.w)

    with pytest.raises(EAEError, match=r"torch output holds NaN or infinite values") as info:
        export_onnx(Broken(), (torch.randn(2, 3),), ["latent"], tmp_path / "broken.onnx", {})
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the set writer

WRITER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import eae.io as io
    folder, version, crash_after = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    renames = 0
    real = os.replace
    def replace(src, dst):
        global renames
        real(src, dst)
        renames += 1
        if renames == crash_after:
            os._exit(137)  # as abrupt as kill -9: no cleanup runs
    with io.atomic_files([folder / "a.onnx", folder / "b.onnx", folder / "a.json"]) as paths:
        for p in paths:
            p.write_text(f"{version} {p.name}")
        if crash_after == 0:
            os._exit(137)
        io.os.replace = replace
""")


def write_set(folder, version: str, crash_after: int) -> int:
    """Write a.onnx, b.onnx, a.json as ``version`` in a fresh process that dies abruptly before the
    commit (0) or right after the n-th rename (1, 2); -1: no crash."""
    return subprocess.run(
        [sys.executable, "-c", WRITER, str(folder), version, str(crash_after)],
        env=env(),
        capture_output=True,
        text=True,
    ).returncode


def contents(folder) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("crash_after, expected", [(0, "v1"), (1, "v2"), (2, "v2")])
def test_set_is_all_or_nothing_when_the_writer_dies(tmp_path, crash_after, expected):
    """Item 4: a kill before the commit leaves the old set; a kill during the renames is finished by
    the next writer (or recover_sets); no temporaries are left either way."""
    from eae.io import recover_sets

    assert write_set(tmp_path, "v1", -1) == 0
    assert contents(tmp_path) == {n: f"v1 {n}" for n in ("a.json", "a.onnx", "b.onnx")}
    assert write_set(tmp_path, "v2", crash_after) == 137
    recover_sets(tmp_path)
    assert contents(tmp_path) == {n: f"{expected} {n}" for n in ("a.json", "a.onnx", "b.onnx")}
    assert write_set(tmp_path, "v3", -1) == 0
    assert contents(tmp_path) == {n: f"v3 {n}" for n in ("a.json", "a.onnx", "b.onnx")}


def test_set_writer_refuses_an_incomplete_set(tmp_path):
    from eae.io import atomic_files

    (tmp_path / "a.onnx").write_text("old")
    with pytest.raises(FileNotFoundError, match="b.onnx not written; nothing replaced"):
        with atomic_files([tmp_path / "a.onnx", tmp_path / "b.onnx"]) as (a, _):
            a.write_text("new")
    assert contents(tmp_path) == {"a.onnx": "old"}


@pytest.mark.slow
def test_kill_9_during_export_never_leaves_a_mismatched_set(workspace):
    """Item 4: kill -9 at several moments of a real export; each time the files on disk are one
    export's set (the card pins both .onnx files and the runtime accepts them), never a new
    generator beside an old card, and the next export leaves no temporary files behind."""
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["export"]["sampler"] = "mvg"  # the new export differs from the one in place
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    old = fingerprint(workspace, SET)
    start = time.monotonic()
    probe = module("pipelines.export", cwd=copy_workspace(workspace, workspace.parent / "probe"))
    assert probe.returncode == 0, probe.stderr[-2000:]
    duration = time.monotonic() - start
    for fraction in (0.5, 0.8, 0.9):  # mid-trace, and late: around the writes of the set
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.export"],
            cwd=workspace,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(duration * fraction)
        proc.kill()
        proc.wait()
        assert_consistent_set(workspace)
        if fingerprint(workspace, SET) != old:
            break  # that export had finished: later kills would only test the new set against itself
    assert module("pipelines.export", cwd=workspace).returncode == 0
    assert fingerprint(workspace, SET) != old
    assert hidden_temporaries(workspace / "models") == []
    assert_consistent_set(workspace)


# --------------------------------------------------------------------------- issue 22


def set_export(ws, **values) -> None:
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["export"].update(values)
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_density_of_absurd_scale_is_refused_before_anything_is_replaced(workspace):
    """Class 2: gmm means x 1e30 exported a generator that passed the parity check and drew only 0/255
    pixels, replacing the good export. The checkpoint of this workspace predates the code statistics, so
    the GMM is measured against the MVG of the same file (the codes' mean and covariance)."""
    rewrite_density(workspace, lambda a: a.__setitem__("gmm_means", a["gmm_means"] * 1e30))
    before = fingerprint(workspace)
    assert_refused(
        module("pipelines.export", cwd=workspace),
        1,
        r"^error: models/density\.npz \(gmm\): component \d's mean .* lies .* standard deviations from the codes' mean",
    )
    assert fingerprint(workspace) == before
    assert_consistent_set(workspace)


def test_whole_density_of_absurd_scale_is_caught_by_the_sampled_images(workspace):
    """Every sampler scaled alike (the MVG too): the plausibility check has nothing sane to compare with,
    the sampled-image check sees that every pixel is 0 or 255."""

    def scale(a):
        for name in ("mvg", "gmm"):
            a[f"{name}_means"] = a[f"{name}_means"] * 1e30
            a[f"{name}_covariances"] = a[f"{name}_covariances"] * 1e60

    rewrite_density(workspace, scale)
    before = fingerprint(workspace)
    assert_refused(
        module("pipelines.export", cwd=workspace),
        1,
        r"^error: models/density\.npz \(gmm\) with models/eae\.pt: 100\.0% of the pixels of 256 sampled images are "
        r"0 or 255 \(at most 99% expected\)",
    )
    assert fingerprint(workspace) == before


def test_recorded_code_statistics_are_what_a_density_is_measured_against(workspace):
    """A checkpoint the train stage wrote records its codes' statistics; a density fitted to other codes
    (here: codes 100 times smaller) is refused even though it matches its own MVG."""
    ckpt = workspace / "models/eae.pt"
    payload = torch.load(ckpt, weights_only=True)
    with np.load(workspace / "models/density.npz") as f:
        mean, var = f["mvg_means"][0], np.diagonal(f["mvg_covariances"][0])
    payload["code_stats"] = {"mean": (mean / 100).tolist(), "std": (np.sqrt(var) / 100).tolist(), "n": 1438}
    torch.save(payload, ckpt)
    before = fingerprint(workspace)
    assert_refused(
        module("pipelines.export", cwd=workspace),
        1,
        r"^error: models/density\.npz \(gmm\): component \d's (mean|variance)",
    )
    assert fingerprint(workspace) == before


def test_scores_of_another_checkpoint_are_not_carded(workspace):
    """Class 2: after a retrain without evaluate, the card carried the previous model's scores as this one's."""
    fid = json.loads((workspace / "reports/fid.json").read_text())
    fid = {"schema": "eae-results/2", "metrics": {"fd": {"gmm": 1.0}}, "protocol": {"checkpoint_sha256": "0" * 64}}
    (workspace / "reports/fid.json").write_text(json.dumps(fid))
    set_export(workspace, sampler="mvg")
    before = fingerprint(workspace)
    current = sha256_file(workspace / "models/eae.pt")
    assert_refused(
        module("pipelines.export", cwd=workspace),
        1,
        rf"^error: reports/fid\.json: its scores belong to another checkpoint \(sha256 000000000000…\), not the "
        rf"current one \({current[:12]}…\): run the evaluate stage first",
    )
    assert fingerprint(workspace) == before
    fid["protocol"] = {"checkpoint_sha256": current, "density_sha256": sha256_file(workspace / "models/density.npz")}
    (workspace / "reports/fid.json").write_text(json.dumps(fid))
    assert module("pipelines.export", cwd=workspace).returncode == 0
    assert json.loads((workspace / "models/generator.json").read_text())["sampler"] == "mvg"


def test_an_opset_the_exporter_did_not_write_is_an_error(tmp_path):
    """Class 3 at its root: asked for opset 17, torch.onnx kept 18 for this graph (ConvTranspose) and the
    card named 17; export_onnx now compares the file's opset with the one asked for."""
    from eae.export.onnx import export_onnx
    from eae.models.networks import ArchConfig, Decoder

    decoder = Decoder(ArchConfig((1, 16, 16), 4, (8, 16), (16, 8))).eval()
    with pytest.raises(EAEError, match=r"asked for opset 17, the exporter wrote opset 18 \(torch\.onnx cannot"):
        export_onnx(decoder, (torch.randn(2, 4),), ["latent"], tmp_path / "d.onnx", {}, opset=17)
    assert list(tmp_path.iterdir()) == []
    export_onnx(decoder, (torch.randn(2, 4),), ["latent"], tmp_path / "d.onnx", {}, opset=26)  # MAX_OPSET


def _mount_tmpfs(path, size: int) -> bool:
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return proc.returncode == 0


def _limit_file_size(limit: int):
    def apply():
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("how", ["full tmpfs", "file size limit"])
def test_full_disk_during_export_is_one_line_naming_the_file(workspace, tmp_path, how):
    """Class 4: a full disk during export was a traceback (OSError from onnx's writer, or torch's
    'unexpected pos'), with a bare errno line at best. Now: one line naming the output and the reason;
    the previous set stays."""
    set_export(workspace, sampler="mvg")
    if how == "full tmpfs":
        used = sum(-(-f.stat().st_size // 4096) * 4096 for f in workspace.rglob("*") if f.is_file())
        mnt = tmp_path / "small"
        if not _mount_tmpfs(mnt, used + 64 * 1024):  # room for the workspace, not for a second export set
            pytest.skip("cannot mount a tmpfs here (needs root)")
        try:
            ws = copy_workspace(workspace, mnt / "ws")
            before = fingerprint(ws)
            proc = subprocess.run(
                [sys.executable, "-m", "pipelines.export"], cwd=ws, env=env(), capture_output=True, text=True
            )
            assert_refused(proc, 1, r"^error: cannot write models/\S+: No space left on device \[ENOSPC\]")
            assert fingerprint(ws) == before
            assert hidden_temporaries(ws / "models") == []
        finally:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
    else:
        before = fingerprint(workspace)
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines.export"],
            cwd=workspace,
            env=env(),
            capture_output=True,
            text=True,
            preexec_fn=_limit_file_size(20_000),
        )
        assert_refused(proc, 1, r"^error: cannot write models/\S+: File too large \[EFBIG\]")
        assert fingerprint(workspace) == before
        assert hidden_temporaries(workspace / "models") == []

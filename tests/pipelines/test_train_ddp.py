"""The train stage as two gloo processes on CPU, launched by the stage itself through torchrun, on
one "machine" or two: the weights of one process, rank 0 alone writing the outputs, and a failing
rank that fails the stage with its own error, without hanging, after which a rerun resumes to the
weights of an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.repos import ROOT, TINY

pytestmark = pytest.mark.slow
# The Kozachenko–Leonenko estimator's gradient jumps when a nearest neighbour changes, so EAE
# training is chaotic over many steps: the comparison runs 2 epochs of one step (the whole
# training split of 1438 digits as one global batch).
EQUIVALENCE = {"train": {"batch_size": 1438, "epochs": 2}}


def stage(cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAE_")}
    env.update({"PYTHONPATH": str(ROOT), **(extra_env or {})})
    return subprocess.run(
        [sys.executable, "-m", "pipelines.train"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


def workspace(prepared: Path, dst: Path, **changes: dict) -> Path:
    """A copy of the prepared workspace whose params.yaml has ``changes`` (section -> values)."""
    shutil.copytree(prepared, dst)
    params = yaml.safe_load((dst / "params.yaml").read_text())
    for section, values in changes.items():
        params[section].update(values)
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dst


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("prepared")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    params["train"].update({"device": "cpu", "sample_every": 1, "checkpoint_every": 1})
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.prepare"],
        cwd=d,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    ok(proc)
    return d


def agree(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """The weights of two training runs that differ only in how the batch's sums are ordered (1 vs 2
    processes): per step they agree to ~1e-6 (tests/eae/training/test_distributed.py, with SGD), but Adam
    divides each gradient element by its own scale, so an element whose gradient is at the level of float
    rounding moves by up to lr in a direction the summation order decides. Hence: no element further apart
    than that (2 lr a step), and on average within 5e-5 (measured 8e-6 with 1 thread a process, 1e-5 with
    2). A wiring error (a batch statistic not gathered, a BatchNorm not synced) moves every element by a
    good part of lr a step."""
    lr, steps = 1e-3, EQUIVALENCE["train"]["epochs"]  # one step an epoch
    assert a.keys() == b.keys()
    diffs = torch.cat([(a[k] - b[k]).abs().flatten() for k in a if a[k].is_floating_point()])
    print(f"|w_2proc - w_1proc| after {steps} epochs: mean {float(diffs.mean()):.2e}, max {float(diffs.max()):.2e}")
    assert float(diffs.mean()) <= 5e-5
    assert float(diffs.max()) <= 2 * lr * steps


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def one(prepared, tmp_path_factory) -> Path:
    """The single-process run the data-parallel ones are compared with."""
    d = workspace(prepared, tmp_path_factory.mktemp("single") / "one", **EQUIVALENCE)
    ok(stage(d))
    return d


def test_two_processes_give_the_weights_of_one(prepared, one, tmp_path):
    two = workspace(prepared, tmp_path / "two", train={**EQUIVALENCE["train"], "nproc_per_node": 2})
    out = ok(stage(two))
    assert "torchrun --nproc-per-node=2" in out and "rank 0 of 2 on cpu (gloo)" in out
    a, b = weights(one / "models/eae.pt"), weights(two / "models/eae.pt")
    assert a.keys() == b.keys()
    agree(a, b)
    # rank 0 alone wrote the curves and samples: one row and one picture per epoch
    assert len((two / "dvclive/plots/metrics/train/loss.tsv").read_text().strip().splitlines()) == 1 + 2
    assert sorted(p.name for p in (two / "dvclive/plots/images/samples").iterdir()) == [
        "epoch_0001.png",
        "epoch_0002.png",
    ]
    history = [torch.load(d / "models/eae.pt", weights_only=True)["metrics"]["history"] for d in (one, two)]
    for key in history[0]:
        assert history[1][key] == pytest.approx(history[0][key], rel=1e-4), key


def test_two_machines_each_running_the_stage(prepared, one, tmp_path):
    """Two "machines" (workspaces) of one process each, joined by a static rendezvous at node 0's
    endpoint: node 0 writes the outputs, node 1 none; the weights are those of one process."""
    from tests.helpers.processes import free_port

    layout = {**EQUIVALENCE["train"], "nnodes": 2, "rdzv_endpoint": f"127.0.0.1:{free_port()}"}
    nodes = [workspace(prepared, tmp_path / f"node{i}", train=layout) for i in range(2)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAE_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pipelines.train"],
            cwd=node,
            text=True,
            env={**env, "PYTHONPATH": str(ROOT), "EAE_TRAIN__NODE_RANK": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i, node in enumerate(nodes)
    ]
    outs = [proc.communicate(timeout=600)[0] for proc in procs]
    for proc, out in zip(procs, outs):
        assert proc.returncode == 0, out[-4000:]
    assert "--rdzv-backend=static" in outs[0] and "rank 0 of 2" in outs[0]
    assert (nodes[0] / "models/eae.pt").exists() and not (nodes[1] / "models").exists()
    assert not (nodes[1] / "dvclive").exists() and not (nodes[1] / "reports").exists()
    a, b = weights(one / "models/eae.pt"), weights(nodes[0] / "models/eae.pt")
    agree(a, b)


INJECT = """
import os
if os.environ.get("RANK") == "1":  # torchrun's worker of global rank 1 fails in its third epoch
    import eae.training.loop
    from eae.errors import EAEError

    _epoch, _calls = eae.training.loop.train_epoch, []

    def train_epoch(*args, **kwargs):
        _calls.append(1)
        if len(_calls) == 3:
            raise EAEError("cannot read shard 7 (injected on rank 1)")
        return _epoch(*args, **kwargs)

    eae.training.loop.train_epoch = train_epoch
"""


def test_a_failing_rank_fails_the_stage_and_the_rerun_resumes(prepared, tmp_path):
    changes = {"train": {"epochs": 4, "nproc_per_node": 2, "sample_every": 0}}
    reference = workspace(prepared, tmp_path / "reference", **changes)
    ok(stage(reference))
    d = workspace(prepared, tmp_path / "failing", **changes)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(INJECT)
    failed = stage(d, {"PYTHONPATH": f"{inject}{os.pathsep}{ROOT}"})  # bounded by the timeout: no hang
    assert failed.returncode == 1, failed.stdout + failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last == (
        "error: training process rank 1 failed (exit code 1): EAEError: cannot read shard 7 (injected on rank 1)"
    ), failed.stderr[-3000:]
    assert not (d / "models/eae.pt").exists() and not (d / "reports/train_metrics.json").exists()

    out = ok(stage(d))  # without the fault: resumes from rank 0's last state
    assert "resuming from" in out
    resumed = torch.load(d / "models/eae.pt", weights_only=True)
    assert resumed["metrics"]["resumed_from_epoch"] >= 1
    ref = torch.load(reference / "models/eae.pt", weights_only=True)
    assert resumed["metrics"]["history"] == ref["metrics"]["history"]
    for name, tensor in ref["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name


def test_bad_process_layouts_are_config_errors(prepared, tmp_path):
    d = workspace(prepared, tmp_path / "bad", train={"nproc_per_node": 3})
    proc = stage(d)
    assert proc.returncode == 2
    assert "train.batch_size (100) must be a multiple of the number of training processes" in proc.stderr
    assert "Traceback" not in proc.stderr

"""benchmarks/scale.py's measuring and its growth arithmetic (the stage runs themselves are what the
benchmark does: minutes)."""

import sys
import textwrap

import pytest

from tests.helpers.repos import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks import each other as scripts do
import scale  # noqa: E402

CFG = {"shard_size": 10000, "latent_dim": 64, "dims": 64, "eval_batch_size": 1000}


def test_exponent_of_a_power_law():
    assert scale.exponent([1000, 10000, 100000], [3.0, 3.0 * 10**1.5, 3.0 * 10**3]) == pytest.approx(1.5)
    assert scale.exponent([1000, 2000], [5.0, 5.0]) == pytest.approx(0.0)
    assert scale.exponent([1000], [1.0]) is None and scale.exponent([1000, 2000], [None, 1.0]) is None


def run(label, sizes, seconds, peaks, cpu=None):
    return {
        n: {label: {"seconds": s, "cpu_seconds": c, "peak_mb": m}}
        for n, s, c, m in zip(sizes, seconds, cpu or seconds, peaks)
    }


def test_growth_flags_super_linear_time_and_memory_beyond_the_model():
    sizes = [2000, 20000]
    # fit_density: its shard (1,607 -> 10,000 images) and codes are modelled; 1 GB more is not
    quadratic = scale.growth(run("fit_density", sizes, [1.0, 100.0], [700, 1700]), CFG)
    s = quadratic["fit_density"]
    assert s["time_exponent"] == pytest.approx(2.0)
    assert any("super-linear" in f for f in s["flags"])
    assert any("memory grows" in f for f in s["flags"])
    shard = (10000 - 1607) * scale.IMAGE_BYTES / 2**20
    streamed = scale.growth(run("fit_density", sizes, [1.0, 10.0], [700, 700 + shard + 20]), CFG)
    assert streamed["fit_density"]["flags"] == []
    # wall time multiplied by the load while CPU time grew linearly: not flagged
    loaded = scale.growth(run("fit_density", sizes, [1.0, 100.0], [700, 705], cpu=[1.0, 10.0]), CFG)
    assert loaded["fit_density"]["flags"] == []
    # prepare's shard buffer fills up to data.shard_size images: growth the memory model expects
    prepare = scale.growth(run("prepare (workers 0)", sizes, [4, 40], [77, 77 + shard + 5]), CFG)
    assert prepare["prepare (workers 0)"]["flags"] == []
    # train keeps its training split by design; more while its test-split batches fill up is a note
    split = (16068 - 1607) * scale.IMAGE_BYTES / 2**20
    train = scale.growth(run("train epoch (projected)", sizes, [10, 95], [1200, 1200 + split]), CFG)
    assert train["train epoch (projected)"]["flags"] == train["train epoch (projected)"]["notes"] == []
    filling = scale.growth(run("train epoch (projected)", sizes, [10, 95], [1200, 1200 + split + 300]), CFG)
    assert filling["train epoch (projected)"]["flags"] == []
    assert "inference batches (up to 500): 197 -> 500 images" in filling["train epoch (projected)"]["notes"][0]
    # ... and growth beyond the model between sizes whose batches are all full is flagged
    split = (scale.celeba_counts(200000)[0] - 16068) * scale.IMAGE_BYTES / 2**20
    full = scale.growth(run("train epoch (projected)", [20000, 200000], [95, 950], [1700, 1700 + split + 900]), CFG)
    assert (
        full["train epoch (projected)"]["notes"] == [] and "memory grows" in full["train epoch (projected)"]["flags"][0]
    )


def test_measure_reads_the_stage_peak_and_its_workers(tmp_path):
    child = textwrap.dedent(
        """
        import multiprocessing as mp, time
        def work():
            block = bytearray(120 * 2**20)  # 120 MB, touched
            time.sleep(0.5)
        if __name__ == "__main__":
            p = mp.get_context("spawn").Process(target=work)
            p.start(); p.join()
            block = bytearray(200 * 2**20)
            time.sleep(0.3)  # long enough for the 50 ms polling when ru_maxrss carries a larger parent's peak
        """
    )
    (tmp_path / "child.py").write_text(child)
    m = scale.measure([sys.executable, "child.py"], tmp_path, None, tmp_path / "log")
    assert 200 < m["peak_mb"] < 300  # exact (ru_maxrss) when this process is smaller, else polled VmHWM
    assert m["workers"] >= 1 and 120 < m["workers_peak_mb"] < 200
    assert m["seconds"] > 0.5 and m["cpu_seconds"] > 0 and len(m["load_1min"]) == 2
    (tmp_path / "fail.py").write_text("raise SystemExit(3)")
    with pytest.raises(RuntimeError, match="exit code 3"):
        scale.measure([sys.executable, "fail.py"], tmp_path, None, tmp_path / "log")


def test_fit_density_super_linear_only_through_em_iterations_is_a_note():
    def fit(em, gmm_seconds):
        return {
            n: {"fit_density": {"seconds": s, "cpu_seconds": s, "peak_mb": 800, "em_iterations": k, "gmm_seconds": g}}
            for n, s, k, g in zip([2000, 20000], [6.8, 146.3], em, gmm_seconds)
        }

    iterations = scale.growth(fit([11, 81], [3.5, 131.0]), CFG)["fit_density"]
    assert iterations["flags"] == [] and "EM iteration count (11 -> 81" in iterations["notes"][0]
    per_iteration = scale.growth(fit([11, 11], [3.5, 131.0]), CFG)["fit_density"]  # each iteration N^1.6
    assert per_iteration["flags"] == ["time super-linear (N^1.33)"] and per_iteration["notes"] == []


def test_reuse_takes_the_other_sizes_of_an_earlier_run_with_the_same_settings(tmp_path):
    import json

    settings = {"inception_dims": 64, "eval_samples": (100, 500), **CFG}
    measured = run("prepare (workers 0)", [2000, 20000], [1.0, 10.0], [80, 90])
    stages = scale.growth(measured, CFG)
    rows = [
        {"name": f"scale: {k}, time ~ N^a", "details": {**s, "per_size": {str(n): measured[n][k] for n in s["sizes"]}}}
        for k, s in stages.items()
    ]
    entry = {"benchmark": "scale", "profile": "cpu", "settings": settings, "rows": rows, "generated_at": "then"}
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"benchmarks": [{"benchmark": "vs_pythae", "rows": []}, entry]}))

    got, when = scale.reused_sizes(bench, "cpu", settings, skip={20000})
    assert when == "then" and got == {2000: measured[2000]}  # the size this run measures is not taken
    with pytest.raises(SystemExit, match="eval_samples"):  # other settings: not one growth curve
        scale.reused_sizes(bench, "cpu", {**settings, "eval_samples": (100, 1000)}, skip=set())
    with pytest.raises(SystemExit, match="profile gpu"):
        scale.reused_sizes(bench, "gpu", settings, skip=set())
    bench.write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(SystemExit, match="no scale result"):
        scale.reused_sizes(bench, "cpu", settings, skip=set())

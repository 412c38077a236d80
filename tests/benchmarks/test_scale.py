"""benchmarks/scale.py's measuring and its growth arithmetic (the stage runs themselves are what the
benchmark does: minutes)."""

import sys
import textwrap

import pytest

from tests.helpers.repos import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks import each other as scripts do
import scale  # noqa: E402

SETTINGS = {"inception_dims": 64}


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
    quadratic = scale.growth(run("fit_density", sizes, [1.0, 100.0], [700, 1700]), SETTINGS, 10000, 64)
    s = quadratic["fit_density"]
    assert s["time_exponent"] == pytest.approx(2.0)
    assert any("super-linear" in f for f in s["flags"])
    assert any("memory grows" in f for f in s["flags"])  # 1 GB for 18,000 images: ~57 KB each, codes are 0.5
    # wall time doubled by the load while CPU time grew linearly: not flagged
    loaded = scale.growth(run("fit_density", sizes, [1.0, 100.0], [700, 705], cpu=[1.0, 10.0]), SETTINGS, 10000, 64)
    assert loaded["fit_density"]["flags"] == []
    # prepare's shard buffer fills up to data.shard_size images: growth the memory model expects
    shard = (10000 - 1607) * scale.IMAGE_BYTES / 2**20
    prepare = scale.growth(run("prepare (workers 0)", sizes, [4, 40], [77, 77 + shard + 5]), SETTINGS, 10000, 64)
    assert prepare["prepare (workers 0)"]["flags"] == []
    # train keeps its training split by design
    split = (16068 - 1607) * scale.IMAGE_BYTES / 2**20
    train = scale.growth(run("train epoch (projected)", sizes, [10, 95], [1200, 1200 + split]), SETTINGS, 10000, 64)
    assert train["train epoch (projected)"]["flags"] == []


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

"""benchmarks/run_all.py's merging of a run's results into an existing bench.json."""

import sys

from tests.helpers.repos import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks import each other as scripts do
import run_all  # noqa: E402


def test_entries_not_rerun_are_kept_in_order_and_the_scale_entry_survives_a_full_run():
    previous = {
        "generated_at": "then",
        "benchmarks": [
            {"benchmark": "scale", "rows": ["s"]},
            {"benchmark": "onnx_generator", "rows": ["old onnx"]},
            {"benchmark": "vs_pythae", "rows": ["old pythae"]},
        ],
    }
    new = [{"benchmark": "vs_pythae", "rows": ["new pythae"]}]
    got = run_all.merged(previous, new, ["vs_pythae"])  # --only vs_pythae
    assert [(b["benchmark"], b["rows"]) for b in got] == [
        ("vs_pythae", ["new pythae"]),
        ("onnx_generator", ["old onnx"]),
        ("scale", ["s"]),  # not one of make bench's: after them
    ]
    assert got[1]["generated_at"] == "then" and "generated_at" not in got[0]
    full = run_all.merged(previous, new, list(run_all.BENCHMARKS))  # make bench: scale.py's entry stays
    assert [b["benchmark"] for b in full] == ["vs_pythae", "scale"]
    assert run_all.merged({}, new, ["vs_pythae"]) == new

"""The rows every benchmark can write with ``--json FILE`` and ``benchmarks/run_all.py`` collects
into reports/bench.json: one row per measured ratio (or overhead), with its goal and spread."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def row(
    name: str,
    value: float,
    unit: str,
    goal: tuple[str, float] | None = None,
    spread: tuple[float, float] | None = None,
    details: dict | None = None,
) -> dict:
    """One measurement. goal: (">=" or "<=", threshold) or None (informative); spread: the lowest and
    highest value over the benchmark's rounds (each round measures every contender side by side)."""
    met = None
    if goal is not None:
        op, threshold = goal
        met = value >= threshold if op == ">=" else value <= threshold
    return {
        "name": name,
        "value": float(value),
        "unit": unit,
        "goal": None if goal is None else {"op": goal[0], "value": goal[1]},
        "met": met,
        "spread": None if spread is None else [float(spread[0]), float(spread[1])],
        "details": details or {},
    }


def write(path: str | os.PathLike | None, benchmark: str, rows: list[dict]) -> None:
    """Write the rows of ``benchmark`` to ``path`` (nothing when path is None)."""
    if path:
        Path(path).write_text(json.dumps({"benchmark": benchmark, "rows": rows}, indent=2) + "\n")


def add_json_argument(parser) -> None:
    parser.add_argument("--json", metavar="FILE", help="also write the result rows to FILE (make bench collects them)")


def machine() -> dict:
    """What the numbers were measured on."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info

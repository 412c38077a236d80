"""Load test of the HTTP endpoint (eae-serve) on 127.0.0.1: requests/s, p50/p99 latency, failed requests
and the server's memory over a bounded run.

    python benchmarks/serve_load.py [--models DIR] [--seconds 30] [--clients 8] [--n 16] [--workers 0]

The server runs as users start it (``python -m eae.export.serve MODEL``, one worker process per core unless
--workers) on a free loopback port, never another interface. ``--clients`` threads, each with its own
keep-alive connection, send requests back to back for ``--seconds`` after a 3 s warm-up: half
``GET /samples.png?n=N&seed=i`` (a PNG grid), half ``POST /samples {"n": N, "seed": i, "format": "npy"}``,
each seed different. Every answer must be 200 with the expected content type and size, else it counts as
failed. The resident memory of the server's processes (parent and workers, psutil) is sampled every 0.5 s;
its growth is the median of the last tenth of the run over the median of the first tenth. Goals: no
failed request, memory growth <= 5 %. The clients share the machine's cores with the server, so requests/s
is the machine's, clients included.

With ``--models`` the run's exported generator is served; without it the default digits network (random
weights) exported by benchmarks/onnx_generator.py's fixture.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
from _results import add_json_argument, row, write

ROOT = Path(__file__).resolve().parents[1]
WARMUP_S = 3.0
MAX_MEMORY_GROWTH = 5.0  # percent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, workers: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "eae.export.serve", str(model), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--workers", str(workers), "--log-level", "warning"], cwd=ROOT, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"eae-serve exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("eae-serve did not answer /healthz within 120 s")


def server_rss(proc: subprocess.Popen) -> int:
    """Bytes resident in the server's process and its workers."""
    try:
        parent = psutil.Process(proc.pid)
        return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


class Client(threading.Thread):
    """Requests back to back until ``stop``; records (start time, latency s, ok) of each."""

    def __init__(self, index: int, url: str, n: int, image_shape: tuple[int, int, int], stop: threading.Event):
        super().__init__(daemon=True)
        self.index, self.url, self.n, self.stop = index, url, n, stop
        self.npy_shape = (n, image_shape[1], image_shape[2], image_shape[0])
        self.records: list[tuple[float, float, bool]] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                seed = self.index * 1_000_000 + i
                start = time.perf_counter()
                try:
                    if i % 2 == 0:
                        r = client.get("/samples.png", params={"n": self.n, "seed": seed})
                        ok = (
                            r.status_code == 200
                            and r.headers["content-type"] == "image/png"
                            and r.content[:4] == b"\x89PNG"
                        )
                    else:
                        r = client.post("/samples", json={"n": self.n, "seed": seed, "format": "npy"})
                        ok = r.status_code == 200 and np.load(io.BytesIO(r.content)).shape == self.npy_shape
                except (httpx.HTTPError, ValueError):
                    ok = False
                self.records.append((start, time.perf_counter() - start, ok))
                i += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="a models/ folder of a completed run (default: an exported fixture)")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured time after the warm-up")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (threads, one connection each)")
    ap.add_argument("--n", type=int, default=16, help="images per request")
    ap.add_argument("--workers", type=int, default=0, help="server worker processes (0 = one per core)")
    add_json_argument(ap)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.models:
            model = Path(args.models) / "generator.onnx"
        else:
            from onnx_generator import fixture_generator

            fixture_generator(Path(tmp))
            model = Path(tmp) / "generator.onnx"
        port = free_port()
        server = start_server(model, port, args.workers)
        try:
            url = f"http://127.0.0.1:{port}"
            health = httpx.get(f"{url}/healthz", timeout=5).json()
            stop, memory = threading.Event(), []
            clients = [Client(i, url, args.n, tuple(health["image_shape"]), stop) for i in range(args.clients)]
            t0 = time.perf_counter()
            for c in clients:
                c.start()
            measure_from = t0 + WARMUP_S
            end = measure_from + args.seconds
            while time.perf_counter() < end:
                if time.perf_counter() >= measure_from:
                    memory.append(server_rss(server))
                time.sleep(0.5)
            stop.set()
            for c in clients:
                c.join(60)
            workers = sum(  # uvicorn's workers (multiprocessing spawn), not its resource tracker
                "spawn_main" in " ".join(p.cmdline()) for p in psutil.Process(server.pid).children(recursive=True)
            )
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()

    measured = [r for c in clients for r in c.records if measure_from <= r[0] < end]
    latencies_ms = np.array([r[1] for r in measured]) * 1000
    failed = sum(not r[2] for r in measured)
    rps = len(measured) / args.seconds
    p50, p99 = np.percentile(latencies_ms, [50, 99])
    tenth = max(1, len(memory) // 10)
    rss_start, rss_end = statistics.median(memory[:tenth]), statistics.median(memory[-tenth:])
    growth = 100 * (rss_end - rss_start) / rss_start
    details = {
        "clients": args.clients,
        "images_per_request": args.n,
        "server_processes": workers,
        "seconds": args.seconds,
        "requests": len(measured),
        "images_per_s": round(rps * args.n, 1),
        "rss_mb_start": round(rss_start / 2**20, 1),
        "rss_mb_end": round(rss_end / 2**20, 1),
        "rss_mb_max": round(max(memory) / 2**20, 1),
        "rss_mb_by_tenth": [  # the median of each tenth of the run: a leak climbs, warm-up flattens
            round(statistics.median(part) / 2**20, 1) for part in np.array_split(np.array(memory, float), 10)
        ],
        "model": str(model.name) if args.models else "digits fixture (random weights)",
        "requests_mix": "GET /samples.png and POST /samples npy, alternating",
    }
    label = f"{args.clients} clients, {args.n} images/request, 127.0.0.1"
    rows = [
        row(f"serve: requests/s ({label})", rps, "req/s", details=details),
        row(f"serve: p50 latency ({label})", float(p50), "ms"),
        row(f"serve: p99 latency ({label})", float(p99), "ms"),
        row(f"serve: failed requests of {len(measured)}", failed, "count", goal=("<=", 0)),
        row(
            f"serve: server memory growth over {args.seconds:.0f} s",
            growth,
            "%",
            goal=("<=", MAX_MEMORY_GROWTH),
        ),
    ]
    print(
        f"{len(measured)} requests in {args.seconds:.0f} s: {rps:.1f} req/s ({rps * args.n:.0f} images/s), "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {failed} failed; server RSS {rss_start / 2**20:.1f} -> "
        f"{rss_end / 2**20:.1f} MB ({growth:+.2f} %, max {max(memory) / 2**20:.1f} MB), {workers} worker(s)"
    )
    write(args.json, "serve_load", rows)


if __name__ == "__main__":
    main()

"""How each stage's cost grows with the data: wall time and peak memory of the pipeline's stages on
synthetic CelebA folders of N images, the growth exponent of each (time ~ N^a), and flags for
super-linear time or memory that grows with N where it should not.

    python benchmarks/scale.py [--sizes 2000,20000] [--cache DIR] [--profile auto|cpu|gpu]
                               [--json FILE] [--into reports/bench.json] [--reuse reports/bench.json]

For every size N: a CelebA root of N generated 178x218 JPEGs with the official partition's proportions
(benchmarks/synthetic.py; the images are generated in parallel once, kept under ``--cache`` and shared
by all sizes), and a workspace whose params.yaml is ``python -m pipelines.config --compose
configs/celeba.yaml`` with the profile's changes. Each stage then runs as ``dvc repro`` runs it,
``python -m pipelines.<stage>`` in the workspace, one after the other:

- prepare with data.workers 0, then again with 2 (the two must write the same content hash);
- feature_stats (the test split's Inception features: random-init weights in a temporary TORCH_HOME;
  the numbers, not the FIDs, matter);
- train with ``train.max_steps`` steps on the full training split: the epoch is projected as the
  stage's time outside its training loop plus the loop's time (train_metrics.json) scaled to a whole epoch;
- fit_density; evaluate with each ``--eval-samples`` value.

Peak memory is each stage process's VmHWM (the kernel's high-water mark of its resident memory),
read from /proc every 50 ms while it runs and, exactly, from wait4()'s ru_maxrss whenever that exceeds
this process's own peak (ru_maxrss also carries the peak of the process that started it, which is why
this script stays small: it never imports torch). Worker processes (prepare's decoders) are reported apart.

Profiles (every value can be overridden): ``gpu`` is the paper's setting (the CelebA network, batch
100, Inception pool3, eval.n_samples 10,000 and 50,000, 50 training steps); ``cpu`` shrinks what a
2-core CPU cannot do in minutes, so that 2k and 20k finish in one sitting: networks with an eighth
of the channels, Inception's 64-d block (the same 299x299 input), 100 and 500 samples, 10 steps.
``auto``: gpu when torch sees CUDA. The load average is recorded with every
stage: on a shared machine the times are upper bounds.

``--reuse FILE`` (a bench.json or a ``--json`` file of an earlier run with the same profile and settings)
takes the sizes that run measured and this one does not, so a large size can join the small ones
without measuring them again (``--sizes 200000 --reuse reports/bench.json``): the exponents are then
computed over all of them, and the result names the run each size came from.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from _results import row
from synthetic import celeba_counts, celeba_folder, generate_celeba_images

ROOT = Path(__file__).resolve().parents[1]
IMAGE_BYTES = 3 * 64 * 64  # one prepared CelebA image (uint8 3x64x64)
SUPERLINEAR = 1.15  # a growth exponent above this is flagged (fixed start-up costs push small sizes below 1)
MEMORY_SLACK_KB = 1.0  # unexplained peak-memory growth per image above this (and above MEMORY_SLACK_MB) is flagged
MEMORY_SLACK_MB = 64.0
POLL_S = 0.05
ROW_NAME = ("scale: ", ", time ~ N^a")  # a stage's row in bench.json: prefix + stage label + suffix

PROFILES = {
    "gpu": {
        "model": None,  # configs/celeba.yaml's networks
        "inception_dims": 2048,
        "eval_samples": (10_000, 50_000),
        "eval_batch": None,  # the config's eval.batch_size
        "train_steps": 50,
        "device": "cuda",
    },
    "cpu": {
        "model": {"encoder_channels": [16, 32, 64, 128], "decoder_channels": [128, 64, 32, 16]},
        "inception_dims": 64,
        "eval_samples": (100, 500),
        "eval_batch": None,
        "train_steps": 10,
        "device": "cpu",
    },
}


# ------------------------------------------------------------------ measuring one stage process


def _status_kb(pid: int, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else None


def _children(pid: int) -> list[int]:
    try:
        out = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
        return out
    except OSError:
        return []


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def measure(cmd: list[str], cwd: Path, env: dict, log: Path) -> dict:
    """Run ``cmd``; its wall time, peak RSS (MB) and its descendants' largest peak RSS (MB)."""
    own_peak_kb = _status_kb(os.getpid(), "VmHWM") or 0
    load = os.getloadavg()[0]
    peaks: dict[int, int] = {}
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                for pid in (proc.pid, *_descendants(proc.pid)):
                    kb = _status_kb(pid, "VmHWM")
                    if kb is not None:
                        peaks[pid] = max(peaks.get(pid, 0), kb)
                done.wait(POLL_S)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {proc.returncode} (log {log}):\n{tail}")
    polled = peaks.get(proc.pid, 0)
    exact = usage.ru_maxrss > own_peak_kb  # ru_maxrss is the stage's own peak when it exceeds ours
    peak_kb = usage.ru_maxrss if exact else polled
    workers = [kb for pid, kb in peaks.items() if pid != proc.pid]
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,  # the stage and the workers it waited for
        "peak_mb": peak_kb / 1024,
        "peak_exact": bool(exact),
        "workers_peak_mb": max(workers) / 1024 if workers else None,
        "workers": len(workers),
        "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


# ------------------------------------------------------------------ workspaces


def stage_env(torch_home: Path) -> dict:
    """This interpreter's environment first on PATH, this checkout's packages, no EAE_ overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["TORCH_HOME"] = str(torch_home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def make_workspace(ws: Path, data_root: Path, settings: dict, env: dict) -> None:
    """ws/params.yaml: the defaults with configs/celeba.yaml composed over them (the pipeline's own
    command), then the benchmark's changes."""
    ws.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "params.yaml", ws / "params.yaml")
    subprocess.run(
        [sys.executable, "-m", "pipelines.config", "--compose", str(ROOT / "configs" / "celeba.yaml"), "params.yaml"],
        cwd=ws,
        env=env,
        check=True,
        capture_output=True,
    )
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["data"]["root"] = str(data_root)
    if settings["model"]:
        params["model"].update(settings["model"])
    params["train"].update(
        {
            "epochs": 1,
            "max_steps": settings["train_steps"],
            "device": settings["device"],
            "sample_every": 0,
            "checkpoint_every": 0,
        }
    )
    params["eval"].update({"inception_dims": settings["inception_dims"], "device": settings["device"]})
    if settings["eval_batch"]:
        params["eval"]["batch_size"] = settings["eval_batch"]
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def set_params(ws: Path, section: str, **values) -> None:
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params[section].update(values)
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_size(n: int, root: Path, ws: Path, settings: dict, env: dict) -> dict[str, dict]:
    """Every stage on the workspace of size n; {stage label: measurement}."""
    make_workspace(ws, root, settings, env)
    (ws / "logs").mkdir(exist_ok=True)
    out: dict[str, dict] = {}

    def stage(label: str, module: str) -> dict:
        print(f"  {label} ...", end="", flush=True)
        m = measure([sys.executable, "-m", f"pipelines.{module}"], ws, env, ws / "logs" / f"{label}.log")
        print(f" {m['seconds']:.1f} s, peak {m['peak_mb']:.0f} MB (load {m['load_1min'][0]:.1f})", flush=True)
        out[label] = m
        return m

    hashes = []
    for workers in (0, 2):
        set_params(ws, "data", workers=workers)
        shutil.rmtree(ws / "data" / "prepared", ignore_errors=True)
        stage(f"prepare (workers {workers})", "prepare")
        hashes.append(json.loads((ws / "data/prepared/manifest.json").read_text())["content_hash"])
    if hashes[0] != hashes[1]:
        raise RuntimeError(f"prepare with 0 and 2 workers wrote different data: {hashes}")
    stage("feature_stats", "feature_stats")
    m = stage("train", "train")
    metrics = json.loads((ws / "reports/train_metrics.json").read_text())
    n_train, batch = celeba_counts(n)[0], yaml.safe_load((ws / "params.yaml").read_text())["train"]["batch_size"]
    steps_per_epoch = n_train // batch
    loop = metrics["train_seconds"]
    epoch = (m["seconds"] - loop) + loop * steps_per_epoch / metrics["steps"]
    out["train epoch (projected)"] = {
        **m,
        "seconds": epoch,
        "cpu_seconds": None,  # the stage's CPU time covers max_steps steps, not an epoch
        "stage_seconds": m["seconds"],
        "loop_seconds": loop,
        "steps": metrics["steps"],
        "steps_per_epoch": steps_per_epoch,
    }
    del out["train"]
    m = stage("fit_density", "fit_density")
    text = (ws / "logs" / "fit_density.log").read_text()  # the stage's log lines (eae.sampling.density)
    iterations = [int(k) for k in re.findall(r"(\d+) EM iterations", text)]
    fitted = re.findall(r"fit in mixtures ([\d.]+) s", text)
    # scikit-learn reports the iterations of the best initialisation only: the time per iteration is
    # known when there was one initialisation.
    single = re.search(r"\b1 initialisation\(s\)", text) is not None
    if iterations and fitted and single:
        m.update({"em_iterations": sum(iterations), "gmm_seconds": float(fitted[-1])})
    for k in settings["eval_samples"]:
        set_params(ws, "eval", n_samples=k)
        stage(f"evaluate (n_samples {k:,})", "evaluate")
    return out


# ------------------------------------------------------------------ growth


def exponent(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y on log x: y ~ x^a (None with fewer than two usable points; None values skip)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x and y and x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx > 0 else None


INFERENCE_BATCH = 500  # eae.models.inference's default batch (train's test MSE, fit_density's codes)


def expected_bytes(label: str, n: int, cfg: dict) -> float:
    """What a stage holds that grows with n, in bytes (the memory model the flags compare with): uint8
    images at IMAGE_BYTES each, float features and codes. prepare: its shard buffer (up to data.shard_size
    images); train: the training split (kept by design, on the GPU when it fits); fit_density: one shard
    and the codes (float32 and float64); feature_stats: the test split and its float64 features (twice:
    the batches and their concatenation); evaluate: the test split, its float32 features and the float64
    features of the reconstruction column (twice)."""
    n_train, _, n_test = celeba_counts(n)
    shard, dims = cfg["shard_size"], cfg["dims"]
    if label.startswith("prepare"):
        return min(shard, n_train) * IMAGE_BYTES
    if label.startswith("train"):
        return (n_train + min(shard, n_test)) * IMAGE_BYTES
    if label == "fit_density":
        return min(shard, n_train) * IMAGE_BYTES + n_train * cfg["latent_dim"] * 12
    if label == "feature_stats":
        return n_test * (IMAGE_BYTES + dims * 16)
    return min(shard, n_test) * IMAGE_BYTES + n_test * dims * 20  # evaluate


def working_sets(label: str, n: int, cfg: dict) -> dict[str, int]:
    """Images per batch of the stage's passes whose activations it holds at once (their bytes per image
    depend on the network, so the model cannot count them): while one of them fills up between two
    sizes, growth of the peak is bounded by that batch size, not proportional to N."""
    n_train, _, n_test = celeba_counts(n)
    if label.startswith("train"):
        return {f"the test split's inference batches (up to {INFERENCE_BATCH})": min(INFERENCE_BATCH, n_test)}
    if label == "fit_density":
        return {f"the encoder's batches (up to {INFERENCE_BATCH})": min(INFERENCE_BATCH, n_train)}
    if label == "feature_stats" or label.startswith("evaluate"):
        b = cfg["eval_batch_size"]
        return {f"the test split's eval.batch_size batches (up to {b})": min(b, n_test)}
    return {}


def growth(results: dict[int, dict[str, dict]], cfg: dict) -> dict[str, dict]:
    """Per stage: sizes, seconds, peaks, the time exponents, the memory not explained by the memory
    model (``expected_bytes``), flags (super-linear time; unexplained memory growth of more than
    MEMORY_SLACK_KB per image and MEMORY_SLACK_MB in all) and notes (such growth while a working set
    fills up: bounded by a batch size). ``cfg``: shard_size, latent_dim, dims, eval_batch_size."""
    sizes = sorted(results)
    out = {}
    for label in results[sizes[0]]:
        secs = [results[n][label]["seconds"] for n in sizes]
        cpu = [results[n][label].get("cpu_seconds") for n in sizes]
        peaks = [results[n][label]["peak_mb"] for n in sizes]
        a = exponent(sizes, secs)
        a_cpu = exponent(sizes, cpu) if None not in cpu else None
        flags, notes, unexplained = [], [], []
        # Wall time moves with the machine's load; CPU time much less: both must grow faster than N^1.15.
        if a is not None and a > SUPERLINEAR and (a_cpu is None or a_cpu > SUPERLINEAR):
            flags.append(f"time super-linear (N^{a:.2f})")
            em = [results[n][label].get("em_iterations") for n in sizes]
            if None not in em:  # fit_density: the GMM's time is EM iterations x (linear in N per iteration)
                per = exponent(sizes, [results[n][label]["gmm_seconds"] / k for n, k in zip(sizes, em)])
                if per is not None and per <= SUPERLINEAR:
                    flags.pop()
                    notes.append(
                        f"time N^{a:.2f} from the GMM's EM iteration count ({' -> '.join(map(str, em))}; at most "
                        f"density.gmm_max_iter per fit), per iteration N^{per:.2f}: linear"
                    )
        for lo, hi in zip(sizes, sizes[1:]):
            model = (expected_bytes(label, hi, cfg) - expected_bytes(label, lo, cfg)) / 2**20
            extra = results[hi][label]["peak_mb"] - results[lo][label]["peak_mb"] - model
            u = {"from": lo, "to": hi, "mb": extra, "kb_per_image": extra * 1024 / (hi - lo)}
            unexplained.append(u)
            if u["mb"] <= MEMORY_SLACK_MB or u["kb_per_image"] <= MEMORY_SLACK_KB:
                continue
            text = f"memory grows {u['kb_per_image']:.1f} KB/image beyond its model ({lo:,} -> {hi:,})"
            ws_lo, ws_hi = working_sets(label, lo, cfg), working_sets(label, hi, cfg)
            filling = [f"{k}: {ws_lo[k]} -> {ws_hi[k]} images" for k in ws_hi if ws_lo[k] != ws_hi[k]]
            if filling:
                notes.append(f"{text} while {'; '.join(filling)} fill up: bounded by the batch size")
            else:
                flags.append(text)
        out[label] = {
            "sizes": sizes,
            "seconds": secs,
            "peak_mb": peaks,
            "time_exponent": a,
            "cpu_seconds": cpu,
            "cpu_time_exponent": a_cpu,
            "memory_exponent": exponent(sizes, peaks),
            "expected_mb": [expected_bytes(label, n, cfg) / 2**20 for n in sizes],
            "unexplained_memory": unexplained,
            "flags": flags,
            "notes": notes,
        }
    evals = sorted((int(re.sub(r"\D", "", k)), k) for k in results[sizes[0]] if k.startswith("evaluate (n_samples"))
    if len(evals) >= 2:
        for n in sizes:
            ks = [k for k, _ in evals]
            b = exponent(ks, [results[n][label]["seconds"] for _, label in evals])
            b_cpu = exponent(ks, [results[n][label]["cpu_seconds"] for _, label in evals])
            out[evals[-1][1]].setdefault("n_samples_exponent", {})[n] = b
            out[evals[-1][1]].setdefault("n_samples_cpu_exponent", {})[n] = b_cpu
            if b is not None and b > SUPERLINEAR and b_cpu is not None and b_cpu > SUPERLINEAR:
                out[evals[-1][1]]["flags"].append(f"time super-linear in n_samples at N = {n:,} (n^{b:.2f})")
    return out


# ------------------------------------------------------------------ main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000,20000", help="comma-separated image counts (e.g. 2000,20000,200000)")
    ap.add_argument("--cache", default=None, help="folder for the generated images, kept between runs (default: temp)")
    ap.add_argument("--work", default=None, help="folder for the workspaces, kept (default: a temporary one)")
    ap.add_argument("--profile", choices=["auto", "cpu", "gpu"], default="auto")
    ap.add_argument("--eval-samples", help="comma-separated eval.n_samples values (profile's default)")
    ap.add_argument("--train-steps", type=int, help="train.max_steps of the epoch projection (profile's default)")
    ap.add_argument("--inception-dims", type=int, choices=[64, 192, 768, 2048])
    ap.add_argument("--gen-workers", type=int, default=os.cpu_count() or 1, help="processes generating the images")
    ap.add_argument("--json", metavar="FILE", help="also write the result rows to FILE (as every benchmark does)")
    ap.add_argument("--reuse", metavar="FILE", help="take the other sizes from an earlier run's bench.json/--json file")
    ap.add_argument(
        "--into",
        default=str(ROOT / "reports" / "bench.json"),
        help="merge the rows into this bench.json (replacing an earlier scale entry); '' = no",
    )
    args = ap.parse_args()
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    if not sizes or min(sizes) < 1000:
        ap.error("--sizes: image counts of at least 1000 (a train split of 10 batches)")
    profile = args.profile
    if profile == "auto":
        probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"], **_text)
        profile = "gpu" if probe.stdout.strip() == "True" else "cpu"
    settings = dict(PROFILES[profile])
    if args.eval_samples:
        settings["eval_samples"] = tuple(int(k) for k in args.eval_samples.split(","))
    if args.train_steps:
        settings["train_steps"] = args.train_steps
    if args.inception_dims:
        settings["inception_dims"] = args.inception_dims

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="eae-scale-") as tmp:
        tmp = Path(tmp)
        cache = Path(args.cache) if args.cache else tmp / "cache"
        work = Path(args.work) if args.work else tmp / "work"
        torch_home = tmp / "torch-home"
        env = stage_env(torch_home)
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "synthetic.py"), "inception", str(torch_home)],
            env=env,
            check=True,
            capture_output=True,
        )
        t = time.perf_counter()
        wrote = generate_celeba_images(cache / "img_align_celeba", max(sizes), args.gen_workers)
        gen_s = time.perf_counter() - t
        print(
            f"images: {max(sizes):,} under {cache} ({wrote:,} generated in {gen_s:.0f} s, {args.gen_workers} "
            f"processes); profile {profile}: {json.dumps(settings)}",
            flush=True,
        )
        results: dict[int, dict[str, dict]] = {}
        for n in sizes:
            root = celeba_folder(cache / f"celeba-{n}", n, images=cache / "img_align_celeba")
            print(f"N = {n:,} (train/valid/test {celeba_counts(n)})", flush=True)
            results[n] = run_size(n, root, work / f"n{n}", settings, env)
        ws_params = yaml.safe_load((work / f"n{sizes[0]}" / "params.yaml").read_text())
    cfg = {
        "shard_size": ws_params["data"]["shard_size"],
        "latent_dim": ws_params["model"]["latent_dim"],
        "dims": settings["inception_dims"],
        "eval_batch_size": ws_params["eval"]["batch_size"],
    }
    measured_now = {str(n): "this run" for n in sizes}
    if args.reuse:
        earlier, generated_at = reused_sizes(Path(args.reuse), profile, {**settings, **cfg}, skip=set(sizes))
        results.update(earlier)
        measured_now.update({str(n): generated_at for n in earlier})
        sizes = sorted(results)
        print(f"reused from {args.reuse} ({generated_at}): N = {', '.join(f'{n:,}' for n in sorted(earlier))}")
    stages = growth(results, cfg)
    wall = time.perf_counter() - started
    print_table(stages, sizes)
    print(
        f"\n{len(sizes)} sizes in {wall / 60:.1f} min (image generation {gen_s:.0f} s); load average now {os.getloadavg()}"
    )

    rows = []
    for label, s in stages.items():
        details = {**s, "per_size": {str(n): results[n][label] for n in sizes}}
        rows.append(
            row(label.join(ROW_NAME), s["time_exponent"] or 0.0, "exponent", ("<=", SUPERLINEAR), None, details)
        )
    result = {
        "benchmark": "scale",
        "rows": rows,
        "seconds": round(wall, 1),
        "profile": profile,
        "settings": {**settings, **cfg},
        "sizes": sizes,
        "measured": measured_now,
        "image_generation_seconds": round(gen_s, 1),
        "load_average_end": list(os.getloadavg()),
        "machine": machine_info(),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.into:
        merge_into(Path(args.into), result)
        print(f"merged into {args.into}")
    return 0


_text = {"capture_output": True, "text": True}


def print_table(stages: dict[str, dict], sizes: list[int]) -> None:
    def fmt(x, spec):
        return "—" if x is None else format(x, spec)

    head = "".join(f" {f'N={n:,}':>29s}" for n in sizes)
    print(f"\n{'stage':28s}{head}  {'exp':>5s} {'cpu':>5s}  flags")
    print(f"{'':28s}" + "".join(f" {'wall s':>9s} {'cpu s':>9s} {'peak MB':>9s}" for _ in sizes))
    for label, s in stages.items():
        cells = "".join(
            f" {sec:9.1f} {fmt(c, '9.1f'):>9s} {mb:9.0f}"
            for sec, c, mb in zip(s["seconds"], s["cpu_seconds"], s["peak_mb"])
        )
        a, a_cpu = fmt(s["time_exponent"], ".2f"), fmt(s["cpu_time_exponent"], ".2f")
        print(f"{label:28s}{cells}  {a:>5s} {a_cpu:>5s}  {'; '.join(s['flags']) or 'ok'}")
        for note in s["notes"]:
            print(f"{'':28s} note: {note}")
        for n, b in (s.get("n_samples_exponent") or {}).items():
            print(
                f"{'':28s} time ~ n_samples^{fmt(b, '.2f')} at N = {n:,} (cpu {fmt(s['n_samples_cpu_exponent'][n], '.2f')})"
            )


def machine_info() -> dict:
    """``_results.machine()`` from a child process (importing torch here would raise this process's peak
    memory, which ru_maxrss of every later stage would carry)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import json, _results; print(json.dumps(_results.machine()))"],
        cwd=ROOT / "benchmarks",
        **_text,
    )
    return json.loads(probe.stdout) if probe.returncode == 0 else {}


def scale_entry(path: Path) -> dict:
    """The scale result in a bench.json (make bench's file) or in a scale ``--json`` file."""
    data = json.loads(path.read_text())
    entries = [data] if data.get("benchmark") == "scale" else data.get("benchmarks", [])
    for entry in entries:
        if entry.get("benchmark") == "scale":
            return entry
    raise SystemExit(f"--reuse {path}: no scale result in it")


def reused_sizes(path: Path, profile: str, settings: dict, skip: set[int]) -> tuple[dict[int, dict], str]:
    """Per size (those not in ``skip``), the stage measurements of an earlier run, which must have run
    with the same profile and settings (the figures of different settings do not form one growth curve)."""
    entry = scale_entry(path)
    same = json.loads(json.dumps(settings))  # tuples as lists, as the file stores them
    if entry.get("profile") != profile or entry.get("settings") != same:
        raise SystemExit(
            f"--reuse {path}: its run used profile {entry.get('profile')} with {json.dumps(entry.get('settings'))}, "
            f"this one profile {profile} with {json.dumps(same)}"
        )
    out: dict[int, dict] = {}
    for r in entry["rows"]:
        label = r["name"].removeprefix(ROW_NAME[0]).removesuffix(ROW_NAME[1])
        for n, measured in r["details"]["per_size"].items():
            if int(n) not in skip:
                out.setdefault(int(n), {})[label] = measured
    return out, entry.get("generated_at", "an earlier run")


def merge_into(path: Path, result: dict) -> None:
    """Put the scale result into a bench.json (make bench's file), replacing an earlier one."""
    bench = json.loads(path.read_text()) if path.exists() else {"benchmarks": []}
    bench["benchmarks"] = [b for b in bench.get("benchmarks", []) if b.get("benchmark") != "scale"] + [result]
    bench.setdefault("machine", result["machine"])
    bench.setdefault("generated_at", result["generated_at"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(bench, indent=2) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())

"""Run the exported ONNX generator with numpy, onnxruntime and Pillow only (no torch).

    python -m eae.export.runtime sample models/generator.onnx -n 64 --seed 0 -o samples.png [--npy out.npy]
    python -m eae.export.runtime info models/generator.onnx
    eae-sample models/generator.onnx -n 64 -o samples.png      # the same two, as installed console scripts
    eae-info models/generator.onnx                             # (the command line: eae.export.cli)

    from eae.export.runtime import Generator
    gen = Generator("models/generator.onnx")                 # CPU; device="cuda" to run there
    images = gen.sample(16, seed=0)          # uint8 [16, H, W, C]
    images = gen.decode(latents)             # through decoder.onnx beside it

Input contract of generator.onnx: ``noise`` float32 [N, noise_dim] ~ N(0, I) (noise_dim is
the latent size, or the two-stage sampler's own latent size) and ``u`` float32 [N] ~ U[0, 1)
(picks the mixture component; unused by the flow and two-stage samplers); output ``images`` float32
[N, C, H, W] in [0, 1]. A sampling temperature, when the export has one, is inside the graph (the card's
``temperature``): the inputs stay N(0, I) and U[0, 1). ``sample(n, seed)`` draws them with ``draw_inputs``, so the
same seed gives the same images on any machine.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eae.errors import EAEError, StaleArtifact
from eae.export.card import card_path, decoder_sha256, read_card, verify_file

DEFAULT_CHUNK = 1024
MIN_SHARD = 16  # images per shard below which a batch runs in one call (see ShardedRun)
# sample -n: with streaming, memory stays flat whatever n is; the bound catches typos (200 x the
# 50,000 images an FID needs; 10 million 64x64 RGB images are a 123 GB .npy, and take hours).
MAX_SAMPLES = 10_000_000
# sample -o: the PNG grid is built in memory; 4096 images make a 64 x 64 grid (~52 MB at 64x64 RGB).
MAX_GRID = 4096


def draw_inputs(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The generator's randomness: noise ~ N(0, I) [n, d] and u ~ U[0, 1) [n], both float32,
    from numpy's PCG64 (``np.random.default_rng(seed)``), noise drawn first."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, d), dtype=np.float32)
    u = rng.random(n, dtype=np.float32)
    return noise, u


def iter_inputs(n: int, d: int, seed: int, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``draw_inputs(n, d, seed)`` in consecutive chunks of at most ``chunk`` rows, bit for bit, with
    memory flat in n: one generator draws the noise chunk by chunk, a second one first skips the
    n * d normals (drawn in chunks and dropped) to reach where ``u`` starts."""
    if n < 0 or chunk < 1:
        raise EAEError(f"need n >= 0 and chunk >= 1, got n={n}, chunk={chunk}")
    noise_rng, u_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    for start in range(0, n, chunk):
        u_rng.standard_normal((min(chunk, n - start), d), dtype=np.float32)
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        yield noise_rng.standard_normal((rows, d), dtype=np.float32), u_rng.random(rows, dtype=np.float32)


def to_uint8_nhwc(images: np.ndarray) -> np.ndarray:
    """float [N, C, H, W] in [0, 1] -> uint8 [N, H, W, C] (rounded, clipped)."""
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def _cuda_driver_present() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def cuda_usable() -> bool:
    """Whether onnxruntime has its CUDA provider and a CUDA driver is present (what ``--device auto``
    of the command line asks before choosing cuda)."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers() and _cuda_driver_present()


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class ShardedRun:
    """``run`` of a model with the batch split into ``workers`` contiguous shards run at once by a
    single-threaded session (``make_single()``, created at the first batch large enough to split;
    onnxruntime's ``run`` is thread-safe and releases the GIL); batches too small to split run in
    one call of ``whole`` (intra-op threads).

    On CPU this beats one call with ``workers`` intra-op threads for the EAE decoder
    (benchmarks/onnx_generator.py measures it; figures: docs/performance.md). The shards
    are concatenated in order; the images equal those of one single-threaded run of the whole batch
    (tested)."""

    def __init__(self, whole, make_single, workers: int):
        from concurrent.futures import ThreadPoolExecutor

        self.whole, self.make_single, self.single, self.workers = whole, make_single, None, workers
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="eae-onnx") if workers > 1 else None

    def __call__(self, outputs: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        n = len(next(iter(feeds.values())))
        shards = min(self.workers, n // MIN_SHARD)
        if self.pool is None or shards < 2:
            return self.whole.run(outputs, feeds)
        if self.single is None:
            self.single = self.make_single()
        bounds = np.linspace(0, n, shards + 1).astype(int)
        futures = [
            self.pool.submit(self.single.run, outputs, {k: v[a:b] for k, v in feeds.items()})
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
        parts = [f.result() for f in futures]
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def make_session(path: str | Path, device: str = "cpu", threads: int = 0):
    """An onnxruntime session on ``device`` (cpu | cuda; the caller chooses). For cuda, onnxruntime may
    still fall back to CPU when its CUDA libraries are missing: then this raises.
    ``session.get_providers()`` says what is used."""
    import onnxruntime as ort

    if device not in ("cpu", "cuda"):
        raise EAEError(f"device must be cpu or cuda, got {device!r}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if not cuda_usable():
            raise EAEError("device 'cuda' requested but onnxruntime cannot run on CUDA here")
        providers.insert(0, "CUDAExecutionProvider")
    try:
        if len(providers) > 1:
            # onnxruntime logs loudly when CUDA libraries are missing; it then falls back to CPU.
            ort.set_default_logger_severity(4)
        session = ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for invalid models
        raise EAEError(
            f"cannot load ONNX model {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    finally:
        ort.set_default_logger_severity(2)
    if device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        raise EAEError("device 'cuda' requested but onnxruntime cannot run on CUDA here")
    return session


class Generator:
    """The EAE generator (sampler + decoder) as an onnxruntime session.

    Args:
        path: generator.onnx. Its model card (generator.json beside it) must pin its sha256
            unless ``verify=False``.
        decoder_path: decoder.onnx for ``decode``; default: beside ``path``.
        device: cpu | cuda (the caller chooses; the command line's ``--device auto`` picks cuda
            when ``cuda_usable()``).
        chunk_size: images per onnxruntime call; larger requests are streamed in chunks so
            memory stays flat.
        threads: CPU cores to use (0 = all this process may run on). On CPU, a batch of at least
            2 x MIN_SHARD images is split over that many single-threaded runs (``ShardedRun``);
            smaller batches use one run with that many intra-op threads.
    """

    def __init__(
        self,
        path: str | Path,
        decoder_path: str | Path | None = None,
        device: str = "cpu",
        chunk_size: int = DEFAULT_CHUNK,
        verify: bool = True,
        threads: int = 0,
    ):
        self.path = Path(path)
        if not self.path.is_file():
            raise EAEError(f"no such model file: {self.path}")
        if chunk_size < 1:
            raise EAEError(f"chunk_size must be >= 1, got {chunk_size}")
        self.card = read_card(self.path) if verify else None
        if self.card is not None:
            verify_file(self.path, self.card["sha256"])
        self.decoder_path = Path(decoder_path) if decoder_path else self.path.with_name("decoder.onnx")
        self.device, self.threads, self.chunk_size = device, threads, chunk_size
        self.session = make_session(self.path, device, threads)
        self._run = self.session.run
        if device == "cpu" and (threads or cpu_count()) > 1:
            self._run = ShardedRun(self.session, lambda: make_session(self.path, device, 1), threads or cpu_count())
        self._decoder = None
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        meta = self.session.get_modelmeta().custom_metadata_map
        if set(inputs) != {"noise", "u"} or outputs != ["images"] or "latent_dim" not in meta:
            raise EAEError(
                f"{self.path} is not an EAE generator (inputs {sorted(inputs)}, outputs {outputs}; "
                "expected noise, u -> images with latent_dim metadata)"
            )
        self.metadata = dict(meta)
        self.latent_dim = int(meta["latent_dim"])
        self.noise_dim = int(
            meta.get("noise_dim", self.latent_dim)
        )  # generators exported before noise_dim: = latent_dim
        self.image_shape = tuple(json.loads(meta["image_shape"]))  # (C, H, W)

    @property
    def providers(self) -> list[str]:
        """The execution providers onnxruntime actually uses for this model."""
        return self.session.get_providers()

    def generate(self, noise: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Run the graph on explicit inputs; returns float32 [N, C, H, W] in [0, 1]."""
        noise = np.asarray(noise)
        u = np.asarray(u)
        if noise.ndim != 2 or noise.shape[1] != self.noise_dim:
            raise EAEError(f"noise must have shape [N, {self.noise_dim}], got {list(noise.shape)}")
        if u.shape != (noise.shape[0],):
            raise EAEError(f"u must have shape [{noise.shape[0]}], got {list(u.shape)}")
        noise = noise.astype(np.float32, copy=False)
        u = u.astype(np.float32, copy=False)
        out = [
            self._run(["images"], {"noise": noise[i : i + self.chunk_size], "u": u[i : i + self.chunk_size]})[0]
            for i in range(0, len(noise), self.chunk_size)
        ]
        images = np.concatenate(out) if out else np.zeros((0, *self.image_shape), np.float32)
        if not np.isfinite(images).all():
            raise StaleArtifact(
                f"{self.path} produced NaN or infinite pixels: the exported density or weights are broken", "generator"
            )
        return images

    def iter_samples(self, n: int, seed: int = 0) -> Iterator[np.ndarray]:
        """Yield uint8 NHWC chunks of ``sample(n, seed)``, at most chunk_size images each; memory
        stays flat in n."""
        check_request(n, seed)
        for noise, u in iter_inputs(n, self.noise_dim, seed, self.chunk_size):
            yield to_uint8_nhwc(self.generate(noise, u))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n images as uint8 [n, H, W, C]; the same seed gives the same images everywhere."""
        return np.concatenate(list(self.iter_samples(n, seed)))

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """Latents [N, latent_dim] -> uint8 [N, H, W, C] through decoder.onnx."""
        if self._decoder is None:
            if not self.decoder_path.is_file():
                raise EAEError(f"no decoder model {self.decoder_path}")
            if self.card is not None:  # the card pins both files: a decoder from another export is refused
                verify_file(self.decoder_path, decoder_sha256(self.card, card_path(self.path)))
            self._decoder = make_session(self.decoder_path, self.device, self.threads)
            meta = self._decoder.get_modelmeta().custom_metadata_map
            if (
                meta.get("latent_dim") != str(self.latent_dim)
                or tuple(json.loads(meta.get("image_shape", "[]"))) != self.image_shape
            ):
                raise EAEError(
                    f"{self.decoder_path} does not pair with {self.path} (decoder latent_dim "
                    f"{meta.get('latent_dim')}, image_shape {meta.get('image_shape')}; generator "
                    f"{self.latent_dim}, {list(self.image_shape)})"
                )
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim:
            raise EAEError(f"latents must have shape [N, {self.latent_dim}], got {list(latents.shape)}")
        out = [
            self._decoder.run(None, {"latent": latents[i : i + self.chunk_size]})[0]
            for i in range(0, len(latents), self.chunk_size)
        ]
        return to_uint8_nhwc(np.concatenate(out))

    def info(self) -> dict:
        return {
            "path": str(self.path),
            "providers": self.providers,
            "latent_dim": self.latent_dim,
            "noise_dim": self.noise_dim,
            "image_shape": list(self.image_shape),
            "model": model_fields(self.path, self.session),
            "metadata": self.metadata,
            "inputs": [{"name": i.name, "type": i.type, "shape": i.shape} for i in self.session.get_inputs()],
            "outputs": [{"name": o.name, "type": o.type, "shape": o.shape} for o in self.session.get_outputs()],
            "card": self.card,
        }


def model_fields(path: str | Path, session) -> dict:
    """The ONNX ModelProto's own fields: producer, model_version, doc_string, and the output's type
    denotation (what the ``Image.*`` metadata keys describe). onnxruntime exposes all but
    producer_version and the denotation, which need the ``onnx`` package (read when it is installed)."""
    meta = session.get_modelmeta()
    fields = {
        "producer_name": meta.producer_name,
        "producer_version": None,
        "model_version": meta.version,
        "doc_string": meta.description,
        "output_denotation": None,
    }
    try:
        import onnx
    except ImportError:
        return fields
    proto = onnx.load(str(path), load_external_data=False)
    fields["producer_version"] = proto.producer_version
    fields["output_denotation"] = proto.graph.output[0].type.denotation or None
    return fields


def check_request(n: int, seed: int) -> None:
    """``n`` images from ``seed``: 1 <= n <= MAX_SAMPLES, 0 <= seed < 2**63."""
    if not 1 <= n <= MAX_SAMPLES:
        raise EAEError(f"number of images must be positive and at most {MAX_SAMPLES:,}, got {n:,}")
    if not 0 <= seed < 2**63:
        raise EAEError(f"seed must be between 0 and 2**63 - 1, got {seed}")


def grid_png(images_nhwc: np.ndarray, ncol: int | None = None) -> bytes:
    """Tile uint8 NHWC images into one PNG (ncol: images per row, default the ceiling of sqrt(n))."""
    import io

    from PIL import Image

    from eae.images import image_grid

    n = len(images_nhwc)
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    grid = image_grid(images_nhwc.transpose(0, 3, 1, 2), ncol=ncol)
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    return buf.getvalue()


if __name__ == "__main__":  # python -m eae.export.runtime: the command line of eae.export.cli
    from eae.export.cli import main

    sys.exit(main())

"""FID Inception features, exactly as pytorch-fid computes them.

Uses pytorch-fid's own ``InceptionV3`` (``use_fid_inception=True``, ``resize_input=True``,
``normalize_input=True``), so images are bilinearly resized to 299x299 and scaled from
[0, 1] to [-1, 1] by the same code that ``python -m pytorch_fid`` runs.

Weights are the TF-ported FID Inception weights pytorch-fid uses,
``pt_inception-2015-12-05-6726825d.pth``, read from a local file only: ``weights_path``
when given, else torch hub's cache (``$TORCH_HOME/hub/checkpoints/``, where pytorch-fid
looks too). Nothing is ever downloaded and there is no fallback to other weights: a
missing file is an ``EAEError`` saying which file to put where.

    extract = inception_extractor(torch.device("cpu"), dims=2048)
    features = extract(images)      # float [N, 1 or 3, H, W] in [0, 1] -> [N, 2048]

The caller chooses the device; the library never does.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import torch
import torch.nn.functional as F

from eae.errors import EAEError

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILENAME
DEFAULT_DIMS = 2048
# Images per forward pass. At 299x299 the network's activations grow linearly with the images of a pass,
# so one pass of the pipeline's eval.batch_size would need many GB, while larger passes are hardly faster
# on a CPU: a larger batch is cut into passes of this size (figures: docs/performance.md).
MAX_BATCH = 100

_build_lock = threading.Lock()


def default_weights_path() -> Path:
    """Where torch hub (and so pytorch-fid) caches the FID Inception weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILENAME


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_state_dict(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a bad file
        raise EAEError(f"cannot read FID Inception weights {path}: {_one_line(exc)}") from None
    if not isinstance(state, dict):
        raise EAEError(f"{path} does not hold a state dict of FID Inception weights")
    return state


def load_inception(dims: int = DEFAULT_DIMS, weights_path: str | os.PathLike | None = None) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3`` returning the ``dims``-d block, in eval mode, on the CPU.

    ``weights_path`` defaults to ``default_weights_path()``. The model is built by
    pytorch-fid's own constructor; only its weight loader (which would download) is
    replaced, for the duration of the call, by a read of the local file. Building the
    model does not disturb torch's global random state.
    """
    try:
        from pytorch_fid import inception as pf_inception
    except ImportError:
        raise EAEError("pytorch-fid is not installed: pip install pytorch-fid==0.3.0") from None

    if dims not in pf_inception.InceptionV3.BLOCK_INDEX_BY_DIM:
        raise EAEError(
            f"Inception feature dims must be one of {sorted(pf_inception.InceptionV3.BLOCK_INDEX_BY_DIM)}, got {dims}"
        )
    path = Path(weights_path) if weights_path is not None else default_weights_path()
    if not path.is_file():
        raise EAEError(f"missing FID Inception weights {path}: download {FID_WEIGHTS_URL} and save it as that file")
    state = _read_state_dict(path)

    def local_weights(url, *args, **kwargs):
        if url != pf_inception.FID_WEIGHTS_URL:  # only the FID weights may be "downloaded"
            raise EAEError(f"refusing to download {url}")
        return state

    block = pf_inception.InceptionV3.BLOCK_INDEX_BY_DIM[dims]
    with _build_lock, torch.random.fork_rng(devices=[]):
        saved = pf_inception.load_state_dict_from_url
        pf_inception.load_state_dict_from_url = local_weights
        try:
            model = pf_inception.InceptionV3(
                [block], resize_input=True, normalize_input=True, requires_grad=False, use_fid_inception=True
            )
        except RuntimeError as exc:  # load_state_dict: missing / unexpected keys, wrong shapes
            raise EAEError(f"{path} does not hold FID Inception weights: {_one_line(exc)}") from None
        finally:
            pf_inception.load_state_dict_from_url = saved
    return model.eval()


class InceptionExtractor:
    """Feature extractor (``eae.evaluation.features.FeatureExtractor``): float images [N, C, H, W]
    in [0, 1] with C = 3 (or 1, repeated to RGB) -> float32 features [N, dims] on ``device``.

    Same computation as pytorch-fid's ``get_activations`` for one batch: the model's
    output block, global-average-pooled when it is not already 1x1. A batch larger than
    ``max_batch`` goes through the network in passes of at most that many images (peak memory grows
    with the images of a pass; eval mode, so every image's features are its own).
    """

    def __init__(self, model: torch.nn.Module, dims: int, device: torch.device | str, max_batch: int = MAX_BATCH):
        if max_batch < 1:
            raise EAEError(f"max_batch must be >= 1, got {max_batch}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.dims = dims
        self.max_batch = max_batch

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise EAEError(f"Inception needs images [N, 3 or 1, H, W], got shape {list(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"Inception needs float images in [0, 1], got {images.dtype}")
        if len(images) > self.max_batch:
            return torch.cat([self(part) for part in images.split(self.max_batch)])
        x = images.to(device=self.device, dtype=torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)  # what PIL's convert('RGB') does to a grayscale image
        pred = self.model(x)[0]
        if pred.shape[2] != 1 or pred.shape[3] != 1:
            pred = F.adaptive_avg_pool2d(pred, output_size=(1, 1))
        return pred.squeeze(3).squeeze(2)


def inception_extractor(
    device: torch.device | str,
    dims: int = DEFAULT_DIMS,
    weights_path: str | os.PathLike | None = None,
    max_batch: int = MAX_BATCH,
) -> InceptionExtractor:
    """``load_inception(dims, weights_path)`` moved to ``device``, as a feature extractor."""
    return InceptionExtractor(load_inception(dims, weights_path), dims, device, max_batch)

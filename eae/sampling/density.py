"""Ex-post latent densities (the samplers' parameters), shared by evaluation and export.

The mixtures are stored as Gaussian mixtures (weights [K], means [K, d], covariances [K, d, d]);
isotropic N(0, I) and the full-covariance Gaussian ("mvg") are mixtures with K = 1, the GMM a
maximum-likelihood or Bayesian mixture (fitted in ``eae.sampling.mixture``, whose names this module
re-exports). Two samplers are small networks, stored as named
arrays plus a JSON config: the learned prior of any objective (beyond the paper: a RealNVP flow,
``eae.sampling.flow``) and the two-stage VAE's second stage (``eae.models.objectives.vae.SecondStageVAE``).
A sampling temperature tau (beyond the paper) scales every sampler's noise. Everything lives in one
.npz (no pickle):

    <sampler>_weights, <sampler>_means, <sampler>_covariances     for each mixture
    flow.config (JSON string), flow.<parameter>                    when there is a flow
    second_stage.config (JSON string), second_stage.<parameter>    when there is a second stage
    temperature (float64 scalar)                                   when tau != 1 (absent: tau = 1)

No torch here.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eae.errors import EAEError
from eae.io import atomic_path, check_regular_file
from eae.sampling import ALL_SAMPLERS, FLOW, SAMPLERS, TWO_STAGE
from eae.sampling.mixture import (
    PLAUSIBLE_SIGMAS,
    Mixture,
    _real,
    check_mixture,
    check_plausible,
    fit_gmm,
    fit_isotropic,
    fit_mvg,
    mixture_log_prob,
    n_parameters,
    select_gmm,
    split_heldout,
)

# The sampler names, and the mixtures' fitting (eae.sampling.mixture), for this module's readers.
__all__ = [
    "ALL_SAMPLERS",
    "FLOW",
    "PLAUSIBLE_SIGMAS",
    "SAMPLERS",
    "TWO_STAGE",
    "Mixture",
    "check_mixture",
    "check_plausible",
    "fit_gmm",
    "fit_isotropic",
    "fit_mvg",
    "mixture_log_prob",
    "n_parameters",
    "select_gmm",
    "split_heldout",
]
_SECOND = "second_stage."
_FLOW = "flow."
TEMPERATURE = "temperature"


@dataclass
class NetworkDensity:
    """A sampler that is a small network: ``config`` (JSON-like) and float arrays by parameter name."""

    config: dict
    arrays: dict[str, np.ndarray]

    def _config_dim(self, config: object) -> int:
        dim = config.get("dim") if isinstance(config, dict) else None
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise EAEError(f"{type(self).__name__}: its config names no code dimension ('dim'): {self.config}")
        return dim


class SecondStage(NetworkDensity):
    """The two-stage VAE's second stage (``eae.models.objectives.vae.SecondStageVAE``)."""

    @property
    def dim(self) -> int:
        """The dimension of the codes it samples."""
        return self._config_dim(self.config)


class FlowDensity(NetworkDensity):
    """The learned prior (beyond the paper): a RealNVP flow (``eae.sampling.flow.RealNVP``); ``config``
    holds its constructor arguments under "model" and how its fit went under "fit"."""

    @property
    def dim(self) -> int:
        """The dimension of the codes it samples."""
        return self._config_dim(self.config.get("model"))

    @property
    def components(self) -> int:
        """Components of its base mixture (0: the N(0, I) base)."""
        return int((self.config.get("model") or {}).get("components", 0))


NETWORKS: dict[str, tuple[str, type[NetworkDensity]]] = {TWO_STAGE: (_SECOND, SecondStage), FLOW: (_FLOW, FlowDensity)}


def save_densities(
    path: str | Path,
    densities: dict[str, Mixture],
    second_stage: SecondStage | None = None,
    flow: FlowDensity | None = None,
    temperature: float = 1.0,
) -> None:
    """One .npz (no pickle) with the mixtures, the networks given and the sampling temperature (written
    only when it is not 1, so a file of the default parameters is what it was before temperatures)."""
    arrays = {}
    for name, m in densities.items():
        arrays.update({f"{name}_weights": m.weights, f"{name}_means": m.means, f"{name}_covariances": m.covariances})
    for prefix, network in ((_SECOND, second_stage), (_FLOW, flow)):
        if network is not None:
            arrays[prefix + "config"] = np.array(json.dumps(network.config, sort_keys=True))
            arrays.update({prefix + k: np.asarray(v) for k, v in network.arrays.items()})
    if temperature != 1.0:
        arrays[TEMPERATURE] = np.array(check_temperature(temperature, str(path)), np.float64)
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


# What np.load raises for a truncated, damaged or crafted .npz (zip members, headers, array data).
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile, NotImplementedError)
SECOND_STAGE_CONFIG = ("dim", "latent_dim", "hidden", "layers")  # positive ints, SecondStageVAE's arguments


def read_density_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a density file, read without pickle; one EAEError line naming the file for a missing,
    irregular (a FIFO, a device), truncated or damaged file."""
    path = check_regular_file(path, "density file", "density")
    try:
        f = np.load(path, allow_pickle=False)
        if isinstance(f, np.ndarray):
            raise ValueError("a single .npy array, not an .npz archive of named arrays")
        with f:
            return {k: f[k] for k in f.files}
    except _UNREADABLE as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise EAEError(f"corrupt density file {path}: {reason}") from None


def _check_second_stage(path: Path, config: dict, params: dict[str, np.ndarray]) -> None:
    """The second stage's config names positive sizes and its arrays have the shapes that network has."""
    if not isinstance(config, dict) or not all(
        isinstance(config.get(k), int) and not isinstance(config.get(k), bool) and config[k] >= 1
        for k in SECOND_STAGE_CONFIG
    ):
        raise EAEError(f"{path}: second_stage.config must give positive integers {', '.join(SECOND_STAGE_CONFIG)}")
    from eae.models.objectives.vae import SecondStageVAE

    expected = {
        k: tuple(v.shape) for k, v in SecondStageVAE(*(config[k] for k in SECOND_STAGE_CONFIG)).state_dict().items()
    }
    wrong = sorted(set(expected) ^ set(params)) or [k for k in expected if tuple(params[k].shape) != expected[k]]
    if wrong:
        k = wrong[0]
        have = list(params[k].shape) if k in params else "nothing"
        need = list(expected[k]) if k in expected else "nothing"
        raise EAEError(f"{path}: second stage parameter '{k}' is {have}, its config {config} needs {need}")


def _load_network(path: str | Path, name: str) -> NetworkDensity | None:
    """The network sampler ``name`` (a key of ``NETWORKS``) stored in a density file, or None; its config
    must be a JSON object and its parameters finite real numbers (the second stage's also of the shapes its
    config gives)."""
    path = Path(path)
    prefix, cls = NETWORKS[name]
    arrays = read_density_arrays(path)
    if prefix + "config" not in arrays:
        return None
    try:
        config = json.loads(str(arrays[prefix + "config"]))
    except ValueError as exc:
        raise EAEError(f"{path}: {prefix}config is not JSON ({exc})") from None
    params = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix) and k != prefix + "config"}
    if name == TWO_STAGE:
        _check_second_stage(path, config, params)
    elif not isinstance(config, dict):
        raise EAEError(f"{path}: {prefix}config must be a JSON object")
    bad = [k for k, v in params.items() if not (_real(v) and np.isfinite(v).all())]
    if bad:
        raise EAEError(f"{path}: {name} parameters {', '.join(bad)} hold NaN, infinite or non-numeric values")
    return cls(config, params)


def load_second_stage(path: str | Path) -> SecondStage | None:
    """The second stage stored in a density file, or None when it has none."""
    return _load_network(path, TWO_STAGE)


def load_flow(path: str | Path) -> FlowDensity | None:
    """The flow stored in a density file, or None when it has none."""
    return _load_network(path, FLOW)


def check_temperature(tau: float, where: str) -> float:
    if not (np.isfinite(tau) and tau > 0):
        raise EAEError(f"{where}: the sampling temperature must be a finite number > 0, got {tau}")
    return float(tau)


def load_temperature(path: str | Path) -> float:
    """The sampling temperature tau stored in a density file (1 when it stores none): every sampler
    draws its noise from N(0, tau^2 I) instead of N(0, I) (``eae.sampling.generator``)."""
    path = Path(path)
    value = read_density_arrays(path).get(TEMPERATURE)
    if value is None:
        return 1.0
    if value.shape != () or not _real(value):
        raise EAEError(f"{path}: temperature must be one number, got {value.dtype} {list(value.shape)}")
    return check_temperature(float(value), str(path))


def load_densities(path: str | Path) -> dict[str, Mixture]:
    """The mixtures stored in a density file, by sampler name (each checked by ``check_mixture``)."""
    path = Path(path)
    arrays = read_density_arrays(path)
    networks = tuple(prefix for prefix, _ in NETWORKS.values())
    names = sorted({k.rsplit("_", 1)[0] for k in arrays if not k.startswith(networks) and k != TEMPERATURE})
    mixtures = {}
    for n in names:
        missing = [f"{n}_{part}" for part in ("weights", "means", "covariances") if f"{n}_{part}" not in arrays]
        if missing:
            raise EAEError(f"{path}: sampler {n!r} lacks {', '.join(missing)}")
        mixtures[n] = Mixture(arrays[f"{n}_weights"], arrays[f"{n}_means"], arrays[f"{n}_covariances"])
    return {n: check_mixture(m, f"{path} ({n})") for n, m in mixtures.items()}


def load_samplers(path: str | Path) -> dict[str, Mixture | NetworkDensity]:
    """Every sampler a density file holds, in ``ALL_SAMPLERS`` order: the mixtures, then the flow
    (``FLOW``) and the second stage (``TWO_STAGE``) when it has them."""
    found: dict[str, Mixture | NetworkDensity] = dict(load_densities(path))
    for name in NETWORKS:
        network = _load_network(path, name)
        if network is not None:
            found[name] = network
    return {name: found[name] for name in sorted(found, key=lambda n: (ALL_SAMPLERS + (n,)).index(n))}

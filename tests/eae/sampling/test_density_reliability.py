"""Issue 22, classes 2 and 4: hostile density files (one loader: one line naming the file and what is
wrong) and implausible densities (``check_plausible``: a density of absurd scale is refused)."""

from __future__ import annotations

import json
import os
import re
import threading

import numpy as np
import pytest

from eae.errors import EAEError
from eae.sampling.density import load_samplers, save_densities
from eae.sampling.mixture import PLAUSIBLE_SIGMAS, Mixture, check_plausible, fit_gmm, fit_isotropic, fit_mvg

pytestmark = pytest.mark.reliability

CODES = np.random.default_rng(0).normal(loc=[0.0, 3.0, -1.0], scale=[1.0, 0.5, 2.0], size=(500, 3))


@pytest.fixture
def density(tmp_path):
    path = tmp_path / "density.npz"
    save_densities(path, {"isotropic": fit_isotropic(3), "mvg": fit_mvg(CODES), "gmm": fit_gmm(CODES, 3)})
    return path


def rewrite(path, change) -> None:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(path, **arrays)


def refused(path) -> str:
    with pytest.raises(EAEError) as info:
        load_samplers(path)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("keep", [100, 2000, -22])
def test_truncated_density_file(density, keep):
    """Before: zipfile.BadZipFile came out as a traceback (it is no OSError)."""
    density.write_bytes(density.read_bytes()[:keep])
    assert refused(density).startswith(f"corrupt density file {density}: ")


def test_npy_instead_of_npz(density):
    np.save(density.with_suffix(".npy"), np.zeros(3))
    os.replace(density.with_suffix(".npy"), density)
    assert (
        refused(density) == f"corrupt density file {density}: a single .npy array, not an .npz archive of named arrays"
    )


@pytest.mark.parametrize(
    "change, culprit",
    [
        (lambda a: a.__setitem__("gmm_means", a["gmm_means"].astype(np.complex128)), r"means complex128: expected"),
        (lambda a: a.__setitem__("gmm_weights", np.array(["a", "b", "c"])), r"weights <U1: expected arrays of real"),
        (lambda a: a.__setitem__("gmm_weights", np.ones(3, bool)), r"weights bool: expected arrays of real numbers"),
        (lambda a: a.pop("gmm_covariances"), r"sampler 'gmm' lacks gmm_covariances"),
        (
            lambda a: a.__setitem__("gmm_covariances", -a["gmm_covariances"]),
            r"\(gmm\): covariance 0 is not symmetric positive definite",
        ),
        (
            lambda a: a["mvg_covariances"].__setitem__((0, 0, 1), 5.0),
            r"\(mvg\): covariance 0 is not symmetric positive definite",
        ),
    ],
)
def test_oddly_typed_density_arrays(density, change, culprit):
    """Complex means passed as numbers (their imaginary part silently dropped by the sampler); a
    non-symmetric covariance was factorised from its lower triangle."""
    rewrite(density, change)
    message = refused(density)
    assert message.startswith(str(density)) and re.search(culprit, message), message


def test_float16_and_integer_arrays_still_load(density):
    rewrite(density, lambda a: a.__setitem__("gmm_weights", (a["gmm_weights"] * 100).astype(np.int64)))
    rewrite(density, lambda a: a.__setitem__("mvg_means", a["mvg_means"].astype(np.float16)))
    assert set(load_samplers(density)) == {"isotropic", "mvg", "gmm"}


@pytest.mark.parametrize(
    "config, culprit",
    [
        ("not json", r"second_stage\.config is not JSON"),
        (json.dumps([1, 2]), r"second_stage\.config must give positive integers dim, latent_dim, hidden, layers"),
        (json.dumps({"dim": 3, "latent_dim": 2, "hidden": True, "layers": 1}), r"must give positive integers"),
        (
            json.dumps({"dim": 3, "latent_dim": 2, "hidden": 5, "layers": 1}),
            r"second stage parameter 'encoder\.0\.weight' is \[4, 3\], its config .* needs \[5, 3\]",
        ),
    ],
)
def test_broken_second_stage(density, config, culprit):
    """Before: a TypeError or a size-mismatch RuntimeError from SecondStageVAE in whichever stage sampled it."""
    from eae.models.objectives.vae import SecondStageVAE

    net = SecondStageVAE(3, 2, 4, 1)
    rewrite(
        density,
        lambda a: a.update(
            {
                "second_stage.config": np.array(config),
                **{f"second_stage.{k}": v.numpy() for k, v in net.state_dict().items()},
            }
        ),
    )
    message = refused(density)
    assert message.startswith(str(density)) and re.search(culprit, message), message


def test_fifo_density_does_not_block(tmp_path):
    fifo = tmp_path / "density.npz"
    os.mkfifo(fifo)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("error", refused(fifo)), daemon=True)
    thread.start()
    thread.join(10)
    assert result.get("error") == f"density file {fifo} is a FIFO (named pipe), not a regular file"


# --------------------------------------------------------------------------- plausibility


def stats(codes=CODES):
    return codes.mean(0), codes.std(0)


def test_fitted_densities_are_plausible():
    """Known answer: every density fitted to the codes passes, however many components."""
    for m in (fit_mvg(CODES), fit_gmm(CODES, 3), fit_gmm(CODES, 20, seed=1)):
        assert check_plausible(m, *stats(), "d") is m


@pytest.mark.parametrize("scale", [1e30, 20.0])
def test_density_of_absurd_scale_is_refused(scale):
    """Class 2: means x 1e30 exported a generator that drew only 0/255 pixels and replaced the good export."""
    gmm = fit_gmm(CODES, 3)
    far = Mixture(gmm.weights, gmm.means * scale + scale, gmm.covariances)
    with pytest.raises(EAEError, match=r"^d: component \d's mean .* in dimension \d lies .* standard deviations"):
        check_plausible(far, *stats(), "d")


def test_covariance_of_absurd_scale_is_refused():
    gmm = fit_gmm(CODES, 3)
    wide = Mixture(gmm.weights, gmm.means, gmm.covariances * (2 * PLAUSIBLE_SIGMAS) ** 2)
    with pytest.raises(EAEError, match=r"component \d's variance .* in dimension \d is .* times the codes'"):
        check_plausible(wide, *stats(), "d")


def test_a_dead_code_dimension_divides_by_nothing():
    """A dimension whose codes are constant (std 0) is measured against 1e-3 of the widest one."""
    codes = CODES.copy()
    codes[:, 1] = 2.0
    assert check_plausible(fit_mvg(codes), *stats(codes), "d")
    with pytest.raises(EAEError, match=r"dimension 1 lies"):
        check_plausible(Mixture(np.ones(1), np.array([[0.0, 2.5, 0.0]]), np.eye(3)[None]), *stats(codes), "d")


def test_statistics_of_another_size_or_junk_are_one_line():
    with pytest.raises(EAEError, match=r"the codes' statistics do not fit a 3-dimensional density"):
        check_plausible(fit_mvg(CODES), np.zeros(4), np.ones(4), "d")
    with pytest.raises(EAEError, match=r"the codes' statistics are not numbers"):
        check_plausible(fit_mvg(CODES), ["a", "b", "c"], np.ones(3), "d")

"""The generator's model card: a JSON file beside the .onnx that says what it is and pins its sha256.

No torch here: the runtime reads cards, the export stage writes them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from eae.errors import EAEError, StaleArtifact

FORMAT = "eae-generator-card/1"

RANDOMNESS = (
    "rng = numpy.random.default_rng(seed)  (PCG64 seeded through SeedSequence); "
    "noise = rng.standard_normal((N, latent_dim), dtype=float32); then u = rng.random(N, dtype=float32). "
    "Other languages: feed any N(0,1) noise and U[0,1) u; bit-identical images need numpy's PCG64 stream."
)


def card_path(onnx_path: str | Path) -> Path:
    """models/generator.onnx -> models/generator.json"""
    return Path(onnx_path).with_suffix(".json")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def read_card(onnx_path: str | Path) -> dict:
    """The card beside ``onnx_path``, checked to be one and to pin the generator's sha256."""
    path = card_path(onnx_path)
    try:
        card = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise EAEError(
            f"no model card {path} beside {Path(onnx_path).name} (pass verify=False / --no-verify "
            "to load an unverified model)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EAEError(f"corrupt model card {path}: {exc}") from None
    except OSError as exc:
        raise EAEError(f"cannot read model card {path}: {exc.strerror or exc}") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise EAEError(f"{path} is not an EAE generator card (expected format {FORMAT!r})")
    if not _is_sha256(card.get("sha256")):
        raise StaleArtifact(f"model card {path} pins no valid sha256 for {Path(onnx_path).name}", "generator")
    return card


def decoder_sha256(card: dict, card_file: str | Path) -> str:
    """The decoder's sha256 a card pins (the generator and decoder of one export are a pair)."""
    sha = (card.get("decoder") or {}).get("sha256") if isinstance(card.get("decoder"), dict) else None
    if not _is_sha256(sha):
        raise StaleArtifact(f"model card {card_file} pins no valid sha256 for the decoder", "generator")
    return sha


def verify_file(path: str | Path, expected_sha256: str) -> None:
    """Refuse a file whose sha256 is not the one its card pins (or that cannot be read)."""
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise EAEError(f"cannot read {path}: {exc.strerror or exc}") from None
    if actual != expected_sha256:
        raise EAEError(
            f"{path}: sha256 {actual[:16]}… does not match its model card ({expected_sha256[:16]}…); "
            "the file was modified or belongs to another export"
        )


def make_card(
    onnx_path: str | Path,
    decoder_path: str | Path,
    *,
    latent_dim: int,
    image_shape: list[int],
    sampler: str,
    n_components: int,
    dataset: str,
    opset: int,
    training: dict,
    evaluation: dict,
    noise_dim: int | None = None,
    u_meaning: str | None = None,
    z_path: str | Path | None = None,
    temperature: float = 1.0,
) -> dict:
    """The card for an exported generator (call after the .onnx files are final). ``noise_dim``:
    columns of ``noise`` when they differ from latent_dim (the two-stage sampler's own latent size).
    ``z_path``: the same generator in torch-fidelity's contract (``eae.sampling.generator.ZGenerator``).
    ``temperature``: the sampling temperature tau inside the graph (beyond the paper; 1 = none): the
    inputs stay N(0, I), the sampler uses tau x noise."""
    onnx_path, decoder_path = Path(onnx_path), Path(decoder_path)
    c, h, w = image_shape
    card = {
        "format": FORMAT,
        "file": onnx_path.name,
        "sha256": sha256_file(onnx_path),
        "bytes": onnx_path.stat().st_size,
        "opset": opset,
        "inputs": [
            {
                "name": "noise",
                "dtype": "float32",
                "shape": ["N", noise_dim or latent_dim],
                "meaning": "standard normal noise, one row per image",
            },
            {
                "name": "u",
                "dtype": "float32",
                "shape": ["N"],
                "meaning": u_meaning or "uniform in [0, 1); picks the mixture component (inverse CDF of the weights)",
            },
        ],
        "outputs": [
            {
                "name": "images",
                "dtype": "float32",
                "shape": ["N", c, h, w],
                "meaning": "pixel intensities in [0, 1], channels first",
            }
        ],
        "randomness": RANDOMNESS,
        "sampler": sampler,
        "n_components": n_components,
        "temperature": temperature,
        "latent_dim": latent_dim,
        "noise_dim": noise_dim or latent_dim,
        "image_shape": list(image_shape),
        "dataset": dataset,
        "training": training,
        "evaluation": evaluation,
        "decoder": {
            "file": decoder_path.name,
            "sha256": sha256_file(decoder_path),
            "inputs": [{"name": "latent", "dtype": "float32", "shape": ["N", latent_dim]}],
            "outputs": [{"name": "images", "dtype": "float32", "shape": ["N", c, h, w]}],
        },
    }
    if z_path is not None:
        z_size = (noise_dim or latent_dim) + 1
        card["z_generator"] = {
            "file": Path(z_path).name,
            "sha256": sha256_file(z_path),
            "z_size": z_size,
            "z_type": "normal",
            "inputs": [
                {
                    "name": "z",
                    "dtype": "float32",
                    "shape": ["N", z_size],
                    "meaning": f"standard normal; columns 1..{z_size - 1} are noise, the last gives "
                    "u = Phi(z_last) (the normal CDF)",
                }
            ],
            "outputs": [
                {
                    "name": "images",
                    "dtype": "uint8",
                    "shape": ["N", 3, h, w],
                    "meaning": "round(255 * images), RGB (grayscale repeated); torch-fidelity's generator output",
                }
            ],
        }
    return card

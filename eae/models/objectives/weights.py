"""Each objective's loss weights, declared once: the objective validates its weights with its model
(``Objective.Weights``), the checkpoint records them (``Objective.describe``) and params.yaml's
``objectives.<name>`` section is the same model (``pipelines.config`` imports these).

No torch here: parameter validation imports this module without the networks.

Defaults are the digits configuration's values. Every loss is on our scale: squared error summed over
the C*H*W pixel values (``eae.models.objectives.base.reconstruction_loss``); params.yaml lists each
weight next to the RAE reference value it was converted from.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from eae.schema import StrictModel

#: beta in loss = recon - beta * H(z). The EAE's only weight that is a top-level key of params.yaml
#: (``entropy_weight``), so that ``dvc exp run -S entropy_weight=0.5`` reads as the paper does.
EntropyWeight = Annotated[float, Field(ge=0, description="beta in loss = recon - beta * H(z)")]
DEFAULT_ENTROPY_WEIGHT = 0.2


class EAEWeights(StrictModel):
    """The EAE's own settings (params.yaml ``objectives.eae``); its entropy weight is the top-level
    ``entropy_weight``."""

    entropy_k: int = Field(1, ge=1, description="which nearest neighbour the entropy estimate uses")
    decoder_l2: float = Field(0.0, ge=0, description="L2 penalty on the decoder weights (paper: CIFAR-10)")
    spectral_norm: bool = Field(False, description="spectrally normalised decoder (paper: CelebA)")
    entropy_start_weight: float | None = Field(
        None,
        ge=0,
        description="beyond the paper: the entropy weight at "
        "epoch 0, ramped linearly to entropy_weight; null = constant",
    )
    entropy_ramp_epochs: int = Field(0, ge=0, description="epochs of that ramp; 0 = no schedule")
    entropy_queue: int = Field(
        0,
        ge=0,
        le=100_000,
        description="beyond the paper: codes of this epoch's earlier "
        "minibatches (detached, newest first) added to the entropy estimate's sample; "
        "0 = the minibatch alone",
    )


class NoWeights(StrictModel):
    """An objective without weights (the plain AE)."""


class AEL2Weights(StrictModel):
    decoder_l2: float = Field(2.56e-5, ge=0, description="weight of the decoder's squared weights")


class RAEWeights(StrictModel):
    embedding_weight: float = Field(0.032, ge=0, description="weight of ½||z||²")


class RAEL2Weights(StrictModel):
    embedding_weight: float = Field(0.0064, ge=0, description="weight of ½||z||²")
    decoder_l2: float = Field(2.56e-5, ge=0, description="weight of the decoder's squared weights")


class RAEGPWeights(StrictModel):
    embedding_weight: float = Field(0.0064, ge=0, description="weight of ½||z||²")
    gp_weight: float = Field(0.01, ge=0, description="weight of the decoder Jacobian's squared Frobenius norm")
    gp_probes: int = Field(1, ge=0, description="Hutchinson probes per image; 0 = exact (one pass per pixel)")


class RAESNWeights(StrictModel):
    embedding_weight: float = Field(0.576, ge=0, description="weight of ½||z||² (the decoder is spectrally normalised)")


class VAEWeights(StrictModel):
    kl_weight: float = Field(0.312, gt=0, description="weight of KL(q(z|x) || N(0, I))")


class CVVAEWeights(StrictModel):
    kl_weight: float = Field(0.039, gt=0, description="weight of KL(q(z|x) || N(0, I))")
    sigma: float = Field(0.7, gt=0, description="the fixed posterior standard deviation")


class WAEWeights(StrictModel):
    mmd_weight: float = Field(0.6, ge=0, description="weight of MMD²_IMQ(z, N(0, I))")


class SecondStageParams(StrictModel):
    """The two-stage VAE's second stage, fitted to the first stage's codes by fit_density."""

    latent_dim: int | None = Field(None, ge=1, description="null = model.latent_dim")
    hidden: int = Field(256, ge=1)
    layers: int = Field(2, ge=1)
    epochs: int = Field(300, ge=1)
    batch_size: int = Field(100, ge=2)
    lr: float = Field(1e-3, gt=0)


class TwoStageWeights(StrictModel):
    """Stage one has no weight (its decoder variance is learned); stage two's settings."""

    second_stage: SecondStageParams = Field(default_factory=SecondStageParams)


#: ``model.objective`` value -> its weights model: the one list of objective names (the registry,
#: params.yaml's ``objectives`` section and ``model.objective``'s choices follow it).
WEIGHTS: dict[str, type[StrictModel]] = {
    "eae": EAEWeights,
    "ae": NoWeights,
    "ae_l2": AEL2Weights,
    "rae": RAEWeights,
    "rae_l2": RAEL2Weights,
    "rae_gp": RAEGPWeights,
    "rae_sn": RAESNWeights,
    "vae": VAEWeights,
    "cv_vae": CVVAEWeights,
    "wae": WAEWeights,
    "two_stage_vae": TwoStageWeights,
}

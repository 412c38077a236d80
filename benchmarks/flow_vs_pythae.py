"""Learned latent priors against a peer library: this project's RealNVP flow (``density.flow``, beyond
the paper) vs pythae 0.1.2's MAF and IAF samplers, fitted to the same codes, scored by held-out
log-likelihood; the mixtures fit_density makes are listed beside them.

    python benchmarks/flow_vs_pythae.py [--checkpoint models/eae.pt] [--prepared data/prepared] [--json out.json]

Codes: the training split encoded in eval mode, as fit_density encodes it (run the pipeline first:
``dvc repro fit_density``). A seeded 20 % of them is the test set, which no contender sees. Every
contender fits the other 80 %; the two flow families split those once more the same way (a seeded
20 % held out for model selection: early stopping for ours, the trainer's best-eval-loss model for
pythae's), so both select on the same codes.

  eae flow      eae.sampling.flow.fit_flow with params.yaml's density.flow settings and a GMM base (K =
                density.gmm_components, max_iter 2000); "eae flow N(0,I)" the same with the normal base
  pythae MAF    pythae.samplers.MAFSampler (its default config: 2 MADE blocks of 3 x 128 units), fitted
                through its own ``fit`` and BaseTrainer (its defaults: Adam, lr 1e-4, batch 64, 100 epochs;
                ``--pythae-epochs``) on an autoencoder whose encoder returns the codes (pythae's samplers
                take images in [0, 1]: the codes are min-max scaled in and the encoder scales them back)
  pythae IAF    pythae.samplers.IAFSampler, the same way
  gmm, bayesian gmm, mvg   eae.sampling.density fits (K = density.gmm_components, max_iter 2000)

Test log-likelihood in nats per code (higher is better; a density on codes, so comparable only between
contenders on the same codes), fit wall time (each contender on one CPU thread, as fit_flow runs).
Goal: eae flow >= the better pythae sampler (both eae flows are compared; the row reports the
default, gmm-base one). pythae is a benchmark-only dependency (``make bench``
installs it from requirements-bench.txt).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import add_json_argument, row, write

from eae.data.prepared import read_split
from eae.models.inference import encode
from eae.sampling.density import fit_gmm, fit_mvg, mixture_log_prob, split_heldout
from eae.sampling.flow import fit_flow, one_thread
from eae.training.checkpoint import load_checkpoint, model_from_checkpoint
from pipelines.config import load_params


def codes_of(checkpoint: Path, prepared: Path) -> np.ndarray:
    model = model_from_checkpoint(load_checkpoint(checkpoint))
    return encode(model, torch.from_numpy(read_split(prepared, "train").images)).double().numpy()


def pythae_sampler(kind: str, fit_codes: np.ndarray, eval_codes: np.ndarray, epochs: int, seed: int):
    """pythae's MAF or IAF sampler fitted through its own ``fit`` to the codes; returns its flow and prior."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    from pythae.models import AE, AEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.samplers import IAFSampler, IAFSamplerConfig, MAFSampler, MAFSamplerConfig
    from pythae.trainers import BaseTrainerConfig

    d = fit_codes.shape[1]
    everything = np.concatenate([fit_codes, eval_codes])
    lo, span = everything.min(0), np.maximum(everything.max(0) - everything.min(0), 1e-12)
    lo_t, span_t = torch.from_numpy(lo).float(), torch.from_numpy(span).float()

    class CodeEncoder(BaseEncoder):  # images in [0, 1] -> the codes they scale
        def forward(self, x):
            return ModelOutput(embedding=x.reshape(len(x), d) * span_t + lo_t)

    class CodeDecoder(BaseDecoder):
        def forward(self, z):
            return ModelOutput(reconstruction=(z - lo_t) / span_t)

    model = AE(AEConfig(input_dim=(d,), latent_dim=d), encoder=CodeEncoder(), decoder=CodeDecoder())
    sampler_cls, config_cls = (MAFSampler, MAFSamplerConfig) if kind == "maf" else (IAFSampler, IAFSamplerConfig)
    sampler = sampler_cls(model, config_cls())
    torch.manual_seed(seed)
    scaled = [torch.from_numpy((c - lo) / span).float() for c in (fit_codes, eval_codes)]
    with tempfile.TemporaryDirectory(prefix="pythae-flow-") as out:
        config = BaseTrainerConfig(output_dir=out, num_epochs=epochs, no_cuda=True, seed=seed)
        sampler.fit(scaled[0], eval_data=scaled[1], training_config=config)
    flow = sampler.maf_model if kind == "maf" else sampler.iaf_model
    return flow.eval(), sampler.prior


def pythae_log_prob(flow, prior, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = flow(torch.from_numpy(x).float())
        return (prior.log_prob(out.out) + out.log_abs_det_jac).double().numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="models/eae.pt", type=Path)
    ap.add_argument("--prepared", default="data/prepared", type=Path)
    ap.add_argument("--pythae-epochs", type=int, default=100, help="pythae's BaseTrainerConfig default: 100")
    ap.add_argument("--seed", type=int, default=0)
    add_json_argument(ap)
    args = ap.parse_args()
    p = load_params()
    codes = codes_of(args.checkpoint, args.prepared)
    train_rows, test_rows = split_heldout(len(codes), 0.2, args.seed)
    train, test = codes[train_rows], codes[test_rows]
    f = p.density.flow
    fit_rows, eval_rows = split_heldout(len(train), f.heldout_fraction, args.seed)
    print(
        f"{len(codes)} codes of d = {codes.shape[1]}: {len(train)} to fit ({len(eval_rows)} of them held out for "
        f"model selection), {len(test)} to test"
    )

    results: dict[str, dict] = {}

    def timed(name: str, fit, score) -> None:
        start = time.perf_counter()
        with one_thread():
            fitted = fit()
        seconds = time.perf_counter() - start
        results[name] = {"test_log_lik": float(np.mean(score(fitted))), "fit_seconds": seconds}
        print(f"{name:>16}: test log-likelihood {results[name]['test_log_lik']:8.4f} nats/code, fit {seconds:6.1f} s")

    k = p.density.gmm_components
    timed("mvg", lambda: fit_mvg(train), lambda m: mixture_log_prob(m, test))
    timed("gmm", lambda: fit_gmm(train, k, seed=args.seed, max_iter=2000), lambda m: mixture_log_prob(m, test))
    timed(
        "bayesian gmm",
        lambda: fit_gmm(train, k, seed=args.seed, max_iter=2000, kind="bayesian"),
        lambda m: mixture_log_prob(m, test),
    )
    flow_options = {key: v for key, v in f.model_dump().items() if key not in ("enabled", "base")}
    records = []

    def ours(base: str):
        def gmm_base(y):
            return fit_gmm(y, k, seed=args.seed, max_iter=2000)

        flow, record = fit_flow(train, **flow_options, seed=args.seed, base=gmm_base if base == "gmm" else None)
        records.append(record.summary())
        return flow

    def ours_log_prob(flow):
        with torch.no_grad():
            return flow.log_prob(torch.from_numpy(test).float()).double().numpy()

    timed("eae flow", lambda: ours("gmm"), ours_log_prob)
    results["eae flow"]["fit"] = records[-1]
    timed("eae flow N(0,I)", lambda: ours("normal"), ours_log_prob)
    results["eae flow N(0,I)"]["fit"] = records[-1]
    for kind in ("maf", "iaf"):
        timed(
            f"pythae {kind.upper()}",
            lambda kind=kind: pythae_sampler(kind, train[fit_rows], train[eval_rows], args.pythae_epochs, args.seed),
            lambda fitted: pythae_log_prob(*fitted, test),
        )

    peer = max(results["pythae MAF"]["test_log_lik"], results["pythae IAF"]["test_log_lik"])
    margin = results["eae flow"]["test_log_lik"] - peer
    print(f"eae flow - best pythae sampler: {margin:+.4f} nats/code (goal >= 0)")
    details = {"n_codes": len(codes), "dim": int(codes.shape[1]), "n_test": len(test), "contenders": results}
    write(
        args.json,
        "flow_vs_pythae",
        [
            row(
                "learned prior: eae flow - best pythae MAF/IAF, test log-likelihood",
                margin,
                "nats/code",
                (">=", 0.0),
                details=details,
            )
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Exact data-parallel training: one global minibatch split over the ranks of a process group.

The objectives' batch statistics (BatchNorm, the EAE's Kozachenko–Leonenko entropy, the WAE's
MMD) are functions of the whole minibatch, so per-rank estimates would be a different objective.
A ``BatchShard`` lets an objective compute them on the global batch: ``LOCAL`` (the default) is
one process holding the whole batch, where every helper is the identity or a plain draw.

Why the gradients come out exact. Rank r holds rows B_r of the global batch B (equal sizes
n = N / W) and back-propagates its own loss L_r; DistributedDataParallel averages the parameter
gradients over the W ranks, and the backward pass of an autograd all-gather sums, into each
rank's rows, the gradients that every rank's graph sends to them. The gradient applied is
therefore that of (1/W) Σ_r L_r as a function of all the data, and it equals the single-process
gradient of the loss L on B exactly when Σ_r L_r = W·L. Each term of the objectives satisfies
this without further scaling:

* a per-image mean, (1/N) Σ_{i∈B} f_i (reconstruction, KL, ½||z||², the gradient penalty):
  rank r takes its local mean (1/n) Σ_{i∈B_r} f_i, and Σ_r of those is W times the global mean;
* a function of the whole batch (entropy, MMD) or of the parameters only (decoder L2): every
  rank computes the same value from the gathered codes (``BatchShard.gather``), W copies;
* BatchNorm: ``sync_batchnorm`` makes every BatchNorm layer normalise with the global batch's
  mean and variance (torch's SyncBatchNorm on CUDA, ``GlobalBatchNorm`` elsewhere).

Random draws match the single process too: ``BatchShard.randn_like`` draws the noise of the
whole global batch from the same generator on every rank (the ranks' generators stay in step)
and keeps this rank's rows.

Nothing here chooses a device or starts processes: the caller initialises the process group
(``torch.distributed.init_process_group``) and builds ``BatchShard.from_process_group()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# torch 2.14 marks the public autograd all-gather deprecated in favour of a private module
# (torch.distributed._functional_collectives); the public one is kept, without the warning.
warnings.filterwarnings(
    "ignore", message=r"torch\.distributed\.nn\.functional\.all_gather is deprecated", category=FutureWarning
)


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous: the all-gather backward
    drops gradients that arrive non-contiguous on NCCL (pytorch#120386)."""

    @staticmethod
    def forward(ctx, x):  # noqa: D102 - autograd.Function protocol
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return grad.contiguous()


@dataclass(frozen=True)
class BatchShard:
    """This process's rows of a global minibatch: rank ``rank`` of ``world_size`` in ``group``
    (None: the default process group). Every rank holds the same number of rows."""

    rank: int = 0
    world_size: int = 1
    group: Any = None

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, {self.world_size})")

    @classmethod
    def from_process_group(cls, group: Any = None) -> BatchShard:
        """The shard of this process in ``group`` (an initialised torch.distributed group)."""
        import torch.distributed as dist

        return cls(dist.get_rank(group), dist.get_world_size(group), group)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def rows(self, global_rows: int) -> slice:
        """This rank's rows of a global batch of ``global_rows`` (a multiple of world_size)."""
        if global_rows % self.world_size:
            raise ValueError(f"a global batch of {global_rows} does not split evenly over {self.world_size} ranks")
        n = global_rows // self.world_size
        return slice(self.rank * n, (self.rank + 1) * n)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """The global batch: every rank's ``x`` concatenated along dim 0 in rank order, differentiable
        (the backward pass sends each rank the summed gradients of its rows). Identity in one process."""
        if not self.distributed:
            return x
        import torch.distributed as dist
        from torch.distributed.nn.functional import all_gather

        parts = all_gather(x.contiguous(), group=self.group or dist.group.WORLD)
        return _ContiguousGrad.apply(torch.cat(parts))

    def randn_like(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal noise shaped like the local batch ``x``: this rank's rows of one draw for
        the whole global batch, so the values equal the single-process draw on the concatenated
        batch and every rank's generator advances alike."""
        if not self.distributed:
            return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        full = torch.randn(
            (x.shape[0] * self.world_size, *x.shape[1:]), generator=generator, dtype=x.dtype, device=x.device
        )
        return full[self.rows(len(full))]

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The average of ``values`` over the ranks (no gradient): per-batch statistics of the
        global batch from the ranks' local means."""
        if not self.distributed:
            return values
        import torch.distributed as dist

        out = values.detach().clone()
        dist.all_reduce(out, group=self.group)
        return out / self.world_size


LOCAL = BatchShard()


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (any input [N, C, ...]) that, in training mode over a distributed ``shard``,
    normalises with the statistics of the global batch, computed with differentiable collectives:
    per-rank mean and centred sum of squares, gathered and combined exactly (Chan et al.:
    M2 = Σ_r M2_r + n Σ_r (mean_r - mean)², n rows per rank), var = M2 / N for the normalisation
    and M2 / (N - 1) for the running estimate, as single-process BatchNorm does. Unlike torch's
    SyncBatchNorm it runs on any device (torch's kernels and DistributedDataParallel refuse it on
    CPU) and has a second derivative (RAE-GP differentiates through a gradient). Otherwise it is
    plain BatchNorm, with the same state_dict.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        shard: BatchShard = LOCAL,
    ):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.shard = shard

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected an input [N, C, ...], got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.shard.distributed):
            return super().forward(x)
        self._check_input_dim(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        xf = x.float()
        n = xf.numel() // c
        mean_r = xf.mean(dims)
        m2_r = (xf - mean_r.view(shape)).pow(2).sum(dims)
        stats = self.shard.gather(torch.stack([mean_r, m2_r])[None])  # [W, 2, C]
        means = stats[:, 0]
        mean = means.mean(0)
        m2 = stats[:, 1].sum(0) + n * (means - mean).pow(2).sum(0)
        total = n * self.shard.world_size
        var = m2 / total
        y = (xf - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - f).add_(f * mean.to(self.running_mean.dtype))
                self.running_var.mul_(1 - f).add_(f * (var * total / max(total - 1, 1)).to(self.running_var.dtype))
        return y.to(x.dtype)


def sync_batchnorm(module: nn.Module, shard: BatchShard, differentiable: bool = False) -> nn.Module:
    """Replace every BatchNorm layer of ``module`` (in place) by one that normalises over the global
    batch of ``shard``, keeping its parameters and running statistics (same state_dict keys):
    torch's ``SyncBatchNorm`` (fused kernels) for layers on CUDA, ``GlobalBatchNorm`` elsewhere or
    when a second derivative is needed (``differentiable``). Returns ``module``."""
    for name, child in module.named_children():
        if isinstance(child, (nn.SyncBatchNorm, GlobalBatchNorm)):
            continue
        if not isinstance(child, nn.modules.batchnorm._BatchNorm):
            sync_batchnorm(child, shard, differentiable)
            continue
        on_cuda = any(t.is_cuda for t in (*child.parameters(), *child.buffers()))
        if on_cuda and not differentiable:
            new: nn.Module = nn.SyncBatchNorm(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
                process_group=shard.group,
            )
        else:
            new = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats, shard=shard
            )
        if child.affine:
            new.weight, new.bias = child.weight, child.bias
        if child.track_running_stats:
            new.running_mean, new.running_var = child.running_mean, child.running_var
            new.num_batches_tracked = child.num_batches_tracked
        new.train(child.training)
        setattr(module, name, new)
    return module


class _Loss(nn.Module):
    """DistributedDataParallel synchronises the gradients of the forward it wraps: this forward is
    the objective's loss."""

    def __init__(self, objective: nn.Module):
        super().__init__()
        self.objective = objective

    def forward(self, x: torch.Tensor):
        return self.objective.loss(x)


def data_parallel_loss(objective: nn.Module, device_ids: list[int] | None = None, **ddp_kwargs: Any) -> Callable:
    """``objective.loss`` behind torch's DistributedDataParallel (gradients averaged over the ranks
    of the default group); the objective must already be distributed (``Objective.distribute``)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(_Loss(objective), device_ids=device_ids, **ddp_kwargs)

"""Training on several processes: torchrun's environment, DistributedDataParallel, rank 0 writes.

``torchrun --nproc-per-node N -m engine.cli train ...`` starts N copies of the same command with
RANK / WORLD_SIZE / LOCAL_RANK (and the rendezvous) in the environment. :func:`current` reads
them; the one training loop (engine.train.loop) then

- joins the process group (NCCL on GPUs, gloo on CPUs) with a timeout, so a rank that dies
  ends the others' collectives with an error instead of a hang;
- gives each rank its own GPU (``cuda:LOCAL_RANK``) or the CPU;
- makes BatchNorm see the whole batch across ranks (``nn.SyncBatchNorm`` on GPUs, the
  :class:`DistBatchNorm2d` below on CPUs, where ``SyncBatchNorm`` does not run), so two
  processes with batch B compute what one process computes with batch 2B;
- wraps the model in ``DistributedDataParallel`` for the families whose training forward goes
  through ``Trainer.model``; families that drive several modules in their own ``step`` get
  their gradients averaged before each optimiser step (the same arithmetic DDP does);
- lets rank 0 alone write checkpoints, previews, logs and the resume state.

Outside torchrun every helper here is a no-op (world size 1). See docs/adr/0029-scale-out.md.
"""
from __future__ import annotations

import datetime
import itertools
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from torch.nn.parallel import DistributedDataParallel

__all__ = ["Dist", "DistBatchNorm2d", "ModelDDP", "all_sum", "average_gradients", "current", "sync_batchnorm"]

_JOINS = itertools.count()  # process groups this process has joined (the same count on every rank)


class ModelDDP(DistributedDataParallel):
    """DDP that also answers for the wrapped model's own attributes (a family's loss reads e.g.
    ``self.model.boxes_per_cell`` while the loop has put the wrapper in its place)."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


@dataclass(frozen=True)
class Dist:
    """Where this process stands in a run: rank, world size, local rank (its GPU)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, wanted: torch.device) -> torch.device:
        """This rank's device: its own GPU under CUDA, else what was picked."""
        if self.active and wanted.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return wanted

    def init(self, device: torch.device, timeout_s: float = 300.0) -> None:
        """Join the process group (once). NCCL for CUDA, gloo otherwise."""
        if not self.active or dist.is_initialized():
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        timeout = datetime.timedelta(seconds=timeout_s)
        if "MASTER_ADDR" not in os.environ:
            dist.init_process_group(backend, timeout=timeout)
            return
        # torchrun keeps one key-value store across restarts; the addresses the ranks of a failed
        # attempt left in it would be read again (connection refused). Each attempt gets keys of its own.
        agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
        base = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), self.world,
                             is_master=not agent_store and self.rank == 0, timeout=timeout)
        # A process that trains twice (the group closed after the first run) joins under new keys too.
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        join = next(_JOINS)
        dist.init_process_group(backend, store=dist.PrefixStore(f"visionbench/attempt-{attempt}/join-{join}", base),
                                rank=self.rank, world_size=self.world, timeout=timeout)

    def all_mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean of each value over the ranks (the loss terms of one step, for the logs)."""
        if not self.active or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (stop decisions stay in step)."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def all_max(self, values: list[float]) -> list[float]:
        """The largest of each value over the ranks, in one all-reduce (flags as 0/1)."""
        if not self.active:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.tolist()

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def shard(self, n: int, block: int = 1) -> range:
        """This rank's share of ``n`` items: a contiguous run of whole blocks of ``block`` items
        (the last block may be short), the blocks split as evenly as the ranks allow. In rank
        order the shares cover 0..n-1 once; one process has them all."""
        block = max(1, int(block))
        blocks = -(-int(n) // block)
        first, last = self.rank * blocks // self.world, (self.rank + 1) * blocks // self.world
        return range(min(n, first * block), min(n, last * block))

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group (after a run's last collective): its connections and threads
        end here, not in the interpreter's teardown."""
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def current() -> Dist:
    """This process's place in a torchrun run (rank 0 of 1 outside torchrun)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return Dist()
    return Dist(rank, world, local) if world > 1 else Dist()


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks; its gradient is the sum over the ranks of the incoming gradients
    (every rank's loss depends on every rank's share of the sum)."""

    @staticmethod
    def forward(ctx, t):
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the ranks, differentiably: a loss of the whole batch (a Dice) computed
    from it on every rank gets, once DDP has averaged the gradients, the gradient one process
    holding the whole batch gets. ``t`` itself outside a distributed run."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return t
    return _AllReduceSum.apply(t)


class DistBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose batch statistics are those of all ranks' batches together, on any device.

    Each rank's mean and variance go through a differentiable all-reduce (:func:`all_sum`'s), so
    the backward pass carries every rank's share of the gradient through the shared mean and
    variance: the same gradient as one process holding the whole batch. In eval mode, or when
    the layer is frozen, it is a plain BatchNorm. Same parameters and buffers as nn.BatchNorm2d,
    so checkpoints do not change.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        # Each rank's mean and variance (two passes over its own batch), gathered in one
        # all-reduce (rank r fills row r), then combined as the parallel-variance formula does:
        # no E[x^2] - mean^2, whose cancellation costs digits in float32.
        var_r, mean_r = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
        rows = x.new_zeros((dist.get_world_size(), 2 * c + 1))
        rows[dist.get_rank()] = torch.cat([mean_r, var_r, x.new_full((1,), x.numel() / c)])
        rows = _AllReduceSum.apply(rows)
        means, variances, counts = rows[:, :c], rows[:, c:2 * c], rows[:, 2 * c:]
        n = counts.sum()
        share = counts / n
        mean = (share * means).sum(0)
        var = (share * (variances + (means - mean) ** 2)).sum(0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * n / (n - 1).clamp_min(1.0)
                self.running_mean.mul_(1 - m).add_(mean.detach() * m)
                self.running_var.mul_(1 - m).add_(unbiased.detach() * m)
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm over the ranks' whole batch: SyncBatchNorm on CUDA; on other devices each
    BatchNorm2d becomes a DistBatchNorm2d in place (same object, same state, same mode)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = DistBatchNorm2d
    return model


def average_gradients(params, world: int) -> None:
    """All-reduce and average the gradients of ``params`` (what DDP does, for families that drive
    several modules from their own ``step``). Parameters without a gradient are skipped on
    every rank alike, since every rank runs the same graph."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or world <= 1:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n

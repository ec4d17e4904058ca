"""Under torchrun (2 gloo processes): the pieces that make several processes compute what one
computes, each against one process holding the whole batch. ``python ddp_checks.py OUT.json``
writes the largest differences (rank 0)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository

import torch
import torch.distributed as dist
from torch import nn

from engine.models.unet import dice_loss
from engine.train import distributed


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def batchnorm(dtype: torch.dtype, offset: float, rank: int, world: int) -> dict:
    """DistBatchNorm2d on each rank's share (rank r: images r, r + world, ...) against BatchNorm2d
    on the whole batch: output, input gradient, the summed weight gradient, the running stats."""
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(8, 6, 5, 7, generator=g, dtype=dtype) * 0.5 + offset)
    up = torch.randn(8, 6, 5, 7, generator=g, dtype=dtype)
    ref = nn.BatchNorm2d(6).to(dtype)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5, generator=g)
        ref.bias.uniform_(-0.5, 0.5, generator=g)
    mine = nn.BatchNorm2d(6).to(dtype)
    mine.load_state_dict(ref.state_dict())
    distributed.sync_batchnorm(mine, torch.device("cpu"))
    assert type(mine) is distributed.DistBatchNorm2d
    xr = x.clone().requires_grad_()
    y_ref = ref(xr)
    (y_ref * up).sum().backward()
    xs = x[rank::world].clone().requires_grad_()
    y = mine(xs)
    (y * up[rank::world]).sum().backward()  # the ranks' losses add up to the whole batch's
    dw = torch.cat([mine.weight.grad, mine.bias.grad])
    dist.all_reduce(dw)
    return {"y": rel(y.detach(), y_ref.detach()[rank::world]), "dx": rel(xs.grad, xr.grad[rank::world]),
            "dw": rel(dw, torch.cat([ref.weight.grad, ref.bias.grad])),
            "running": max(rel(mine.running_mean, ref.running_mean), rel(mine.running_var, ref.running_var))}


def dice(rank: int, world: int) -> dict:
    """The Dice of the whole batch on every rank (sums over all ranks), and its gradient: a rank's
    logit gradient over the world size (DDP's averaging) is the whole batch's."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 3, 6, 6, generator=g, dtype=torch.float64)
    target = torch.randint(0, 3, (4, 6, 6), generator=g)
    odd = target[1::2]
    odd[odd == 2] = 1  # class 2 is absent from rank 1's share: the shares' Dice differ from the whole's
    whole = logits.clone().requires_grad_()
    ref = dice_loss(whole, target)
    ref.backward()
    share = logits[rank::world].clone().requires_grad_()
    got = dice_loss(share, target[rank::world], all_sum=distributed.all_sum)
    got.backward()
    alone = dice_loss(logits[rank::world], target[rank::world])  # without the sums over the ranks
    ref = float(ref.detach())
    return {"loss": abs(float(got.detach()) - ref), "grad": rel(share.grad / world, whole.grad[rank::world]),
            "alone": abs(float(alone) - ref)}


def main() -> int:
    torch.set_num_threads(1)
    d = distributed.current()
    d.init(torch.device("cpu"))
    out = {"world": d.world,
           "bn_float64": batchnorm(torch.float64, 0.0, d.rank, d.world),
           "bn_float32_offset": batchnorm(torch.float32, 50.0, d.rank, d.world),
           "dice": dice(d.rank, d.world)}
    parts = d.gather(out)
    if d.main:
        Path(sys.argv[1]).write_text(json.dumps(parts))
    d.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The order in which a training run visits its data: one permutation per epoch, from the seed
and the epoch alone, split between the ranks of a distributed run, and resumable mid-epoch.

- Epoch e visits ``randperm(n, seed + e)`` (or 0..n-1 unshuffled). Nothing else draws from that
  generator, so the order does not depend on augmentation or on how many steps came before: a
  resumed run sees the same batches as an uninterrupted one.
- With W ranks the permutation is padded (by repeating its start) to a multiple of W and rank r
  takes every W-th index from r, as ``torch.utils.data.DistributedSampler`` does; every rank
  then has the same number of batches, so no rank waits for a step the others never take.
  Two ranks with batch B together see exactly the indices one process sees with batch 2B.
- ``set_epoch(e, skip=k)`` starts epoch e after its first k batches (resume). A dataset with
  random draws of its own (crops, flips, noise) has a ``set_epoch(e)`` that the sampler calls and
  takes them from :func:`item_rng` ``(seed, e, index)``: an item's draws then depend on nothing
  else either, so they too are the same after a resume and on whichever rank the item lands.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["EpochSampler", "item_rng", "make_loader"]


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random draws of item ``index`` in ``epoch`` (a function of the three numbers alone)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])


class EpochSampler(Sampler[int]):
    def __init__(self, n: int, batch_size: int, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 world: int = 1, drop_last: bool = False, on_epoch=None) -> None:
        self.n = int(n)
        self.batch_size = max(1, int(batch_size))
        self.shuffle = shuffle
        self.seed = int(seed)
        self.rank = int(rank)
        self.world = max(1, int(world))
        self.drop_last = drop_last
        self.epoch = 0
        self.skip = 0
        self.on_epoch = on_epoch  # e.g. the dataset's set_epoch

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch = int(epoch)
        self.skip = max(0, int(skip))
        if self.on_epoch is not None:
            self.on_epoch(self.epoch)

    def _mine(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        per_rank = math.ceil(self.n / self.world) if self.n else 0
        total = per_rank * self.world
        if order and total > len(order):
            order = (order * math.ceil(total / len(order)))[:total]
        return order[self.rank:total:self.world]

    def batches_per_epoch(self) -> int:
        per_rank = math.ceil(self.n / self.world) if self.n else 0
        if self.drop_last:
            return per_rank // self.batch_size
        return math.ceil(per_rank / self.batch_size)

    def __iter__(self) -> Iterator[int]:
        mine = self._mine()
        if self.drop_last:
            mine = mine[:len(mine) - len(mine) % self.batch_size]
        return iter(mine[self.skip * self.batch_size:])

    def __len__(self) -> int:
        per_rank = math.ceil(self.n / self.world) if self.n else 0
        if self.drop_last:
            per_rank -= per_rank % self.batch_size
        return max(0, per_rank - self.skip * self.batch_size)


def make_loader(dataset: Dataset, batch_size: int, seed: int, *, shuffle: bool = True, drop_last: bool = False,
                collate_fn=None, rank: int = 0, world: int = 1) -> DataLoader:
    """A DataLoader (in-process) over ``dataset`` with an :class:`EpochSampler`; the training loop
    sets its epoch (and the batches to skip when resuming), and the dataset's own ``set_epoch``
    when it has one."""
    sampler = EpochSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed, rank=rank, world=world,
                           drop_last=drop_last, on_epoch=getattr(dataset, "set_epoch", None))
    # A generator of its own: each new iterator draws a base seed from it, which would otherwise come
    # from the global torch RNG and shift a resumed run's augmentations and dropout by one draw.
    return DataLoader(dataset, batch_size=int(batch_size), sampler=sampler, drop_last=drop_last,
                      collate_fn=collate_fn, num_workers=0, generator=torch.Generator().manual_seed(int(seed)))

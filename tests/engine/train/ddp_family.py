"""A tiny family for distributed and resume tests, run in-process or under torchrun by
``python tests/engine/train/ddp_main.py``: a conv + BatchNorm + linear classifier on a fixed
synthetic dataset (no project needed), trained by the loop's default ``step`` through the loader
every family uses (``Trainer.make_loader``)."""
from __future__ import annotations

import hashlib
import os

import torch
from torch import nn
from torch.utils.data import TensorDataset

from engine.train.loop import Trainer

N_SAMPLES = 48


def dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(N_SAMPLES, 3, 8, 8, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long()
    return TensorDataset(x, y)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 2)
        self.num_classes = 2  # read by the loss through whatever the loop put in self.model

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


class TinyTrainer(Trainer):
    family = "tiny_ddp"
    kind = "classification"
    metric = "accuracy"
    defaults = {"batch_size": 4, "lr": 0.05, "warmup_steps": 2, "epochs": 3}

    def setup(self):
        torch.manual_seed(7)  # the same initial weights in every process and every run
        self.model = TinyNet().to(self.device)
        self.optimizers = [torch.optim.SGD(self.model.parameters(), lr=float(self.cfg["lr"]), momentum=0.9)]
        self.data = dataset()
        self.loader = self.make_loader(self.data, int(self.cfg["batch_size"]), drop_last=True)
        return iter(())

    def batches(self):
        return self.loader

    def steps_per_epoch(self):
        return len(self.loader)

    def loss(self, batch):
        kill_at = int(os.environ.get("TINY_DDP_KILL_RANK1_AT", "0"))
        if os.environ.get("TINY_DDP_KILL_ONCE") and int(os.environ.get("TORCHELASTIC_RESTART_COUNT") or 0) > 0:
            kill_at = 0  # the restarted workers run through
        if kill_at and self.dist.rank == 1 and getattr(self, "_steps", 0) + 1 >= kill_at:
            os._exit(3)  # a process that dies mid-run
        self._steps = getattr(self, "_steps", 0) + 1
        x, y = batch
        logits = self.model(x)
        assert logits.shape[1] == self.model.num_classes
        return {"loss": nn.functional.cross_entropy(logits, y)}

    # validation through the shared hooks: under torchrun each rank scores its share
    val_block = 8  # scored in batches of 8

    def val_items(self):
        return len(self.data)

    def validate_part(self, items):
        self.scored = getattr(self, "scored", []) + [[items.start, items.stop]]
        x, y = self.data.tensors
        self.model.eval()
        right = 0
        with torch.no_grad():
            for start in range(items.start, items.stop, self.val_block):
                stop = min(items.stop, start + self.val_block)
                right += int((self.model(x[start:stop]).argmax(1) == y[start:stop]).sum())
        self.model.train()
        return right, len(items)

    def validate_merge(self, parts):
        return {"accuracy": sum(p[0] for p in parts) / sum(p[1] for p in parts)}

    def result(self):
        """What each rank's run ended with: the validation shares it scored, and a digest of its
        weights (every rank of a distributed run must end with the same weights)."""
        digest = hashlib.sha256()
        for t in self.model.state_dict().values():
            digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        return {"scored": getattr(self, "scored", []), "weights": digest.hexdigest()}

    def previews(self, step):
        from engine.viz import previews as pv

        yield pv.heatmap("weights", self.model.conv.weight.detach()[:, 0].cpu().numpy(), [f"filter {i}" for i in
                                                                                      range(8)], None, step)

    def meta(self):
        return {"classes": ["neg", "pos"]}

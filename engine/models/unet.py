"""U-Net (Ronneberger et al. 2015) for semantic segmentation (registered in engine.families).

Two encoders:
- "plain": the paper's encoder, ``depth`` down-steps of (conv3x3-BN-ReLU) x2 + max-pool,
  channels ``width * 2**level``;
- "efficientnet_lite0": the pretrained ImageNet backbone (features at strides 4..32) with the
  same decoder, plus two light full- and half-resolution convolutions for fine boundaries.
Both use "same" padding, transposed-convolution up-sampling and skip concatenation. The
network outputs ``num_classes + 1`` logits per pixel (channel 0 = background).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

ENCODERS = ("plain", "efficientnet_lite0")
LOSSES = ("wce", "dice", "wce+dice")

DEFAULT_CONFIG = {
    "encoder": "plain", "pretrained": True, "depth": 4, "width": 8,
    "loss": "wce", "w0": 10.0, "sigma": 5.0, "balance_power": 0.5,
    "epochs": 20, "batch_size": 8, "crop": 128, "lr": 3e-3, "weight_decay": 1e-4,
    "augment": True, "val_limit": 200, "preview_every": 10, "classes": None,
    # All cores but one: the GUI (and the OS) keep a core, and on a busy machine fewer torch
    # threads than cores avoids OpenMP oversubscription (measured 6x slower steps with 2 threads
    # than with 1 on a loaded 2-core machine).
    "cpu_threads": -1,
}
# On the CPU the pretrained encoder learns far faster than the plain one within minutes, Dice
# beats the weighted cross-entropy there, and the pretrained weights want a gentler LR
# (docs/adr/0014: val mIoU on demo shapes after 300 s, 0.74 vs 0.09 plain and 0.59 with
# wce+dice; 0.87 vs 0.83 with lr 1e-3 instead of 3e-3).
# A CPU run is bounded by time, not epochs: 10 minutes (the loop validates and saves within it),
# and without augmentation, which needs more steps than a short run has (docs/adr/0018).
# lr 2e-3: with one thread for 10 minutes (~900 steps) it learns faster than 1e-3 (0.846 at 850
# steps against 0.847 at 920; batch 4 instead of 8 gave 0.805).
CPU_PRESET = dict(DEFAULT_CONFIG, encoder="efficientnet_lite0", width=16, loss="dice", lr=2e-3, augment=False,
                  epochs=200, max_seconds=600.0)
GPU_PRESET = dict(DEFAULT_CONFIG, depth=4, width=32, epochs=60, batch_size=16, crop=256, cpu_threads=None,
                  max_seconds=None)


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


class UpStep(nn.Module):
    """x2 transposed-convolution up-sampling, concatenation with the skip, then two convs."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2)
        self.conv = _double_conv(c_out + c_skip, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = self.up(x)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    """images float [N, 3, H, W] in 0..1 -> logits [N, num_classes + 1, H, W].

    H and W need not be multiples of ``multiple``: inputs are padded (edge replicate) and the
    output cropped back. For exact, tile-independent results use ``engine.infer.overlap_tile``.
    """

    def __init__(self, num_classes: int, depth: int = 3, width: int = 16, encoder: str = "plain",
                 pretrained: bool = True) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"config field 'encoder': {encoder!r} is not one of {', '.join(ENCODERS)}")
        if encoder == "plain" and not 1 <= int(depth) <= 6:
            raise ValueError(f"config field 'depth': {depth} must be between 1 and 6")
        if int(width) < 1:
            raise ValueError(f"config field 'width': {width} must be positive")
        self.num_classes = int(num_classes)
        self.encoder_name = encoder
        self.depth = int(depth)
        width = int(width)
        out_ch = self.num_classes + 1
        if encoder == "plain":
            chans = [width * 2**i for i in range(self.depth + 1)]
            self.down = nn.ModuleList([_double_conv(3, chans[0])] +
                                      [_double_conv(chans[i - 1], chans[i]) for i in range(1, self.depth + 1)])
            self.up = nn.ModuleList([UpStep(chans[i], chans[i - 1], chans[i - 1]) for i in range(self.depth, 0, -1)])
            self.multiple = 2**self.depth
            self.head = nn.Conv2d(chans[0], out_ch, 1)
        else:
            from engine.models.backbones import efficientnet_lite0

            self.backbone = efficientnet_lite0(pretrained=pretrained)
            fc = self.backbone.feature_channels
            self.full = _double_conv(3, width)  # stride 1 skip
            self.half_res = nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False),
                                      nn.BatchNorm2d(width), nn.ReLU(inplace=True))  # stride 2 skip
            dec = [width * 8, width * 4, width * 2, width, width]
            self.up = nn.ModuleList([
                UpStep(fc["c5"], fc["c4"], dec[0]), UpStep(dec[0], fc["c3"], dec[1]),
                UpStep(dec[1], fc["c2"], dec[2]), UpStep(dec[2], width, dec[3]), UpStep(dec[3], width, dec[4]),
            ])
            self.multiple = 32
            self.head = nn.Conv2d(dec[4], out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        y = self._forward_padded(x)
        return y[..., :h, :w]

    def _forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoder_name == "plain":
            skips = []
            y = (x - 0.5) / 0.25  # roughly zero-mean, unit-variance pixels
            for level, block in enumerate(self.down):
                if level:
                    y = F.max_pool2d(y, 2)
                y = block(y)
                skips.append(y)
            for step, skip in zip(self.up, reversed(skips[:-1])):
                y = step(y, skip)
            return self.head(y)
        from engine.models.backbones import preprocess

        feats = self.backbone.features(preprocess(x))
        full = self.full(x)
        half = self.half_res(full)
        y = feats["c5"]
        for step, skip in zip(self.up, (feats["c4"], feats["c3"], feats["c2"], half, full)):
            y = step(y, skip)
        return self.head(y)


# ------------------------------------------------------------------------------------ losses
def _loss_precision(logits: torch.Tensor) -> torch.Tensor:
    """Half-precision logits (autocast) in float32 for the loss; float32 and float64 as they are."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Pixel-weighted cross-entropy: logits [N, C, H, W], target int64 [N, H, W], weight [N, H, W].

    Mean over pixels of w(x) * -log p_target(x) (the U-Net paper's energy, averaged).
    """
    ce = F.cross_entropy(_loss_precision(logits), target, reduction="none")
    if weight is None:
        return ce.mean()
    return (ce * weight).mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0,
              all_sum: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """1 - mean soft Dice over classes present in the batch (target or prediction).

    The Dice of the batch is not a mean over its images. In a distributed run ``all_sum`` (a
    differentiable sum over the processes, engine.train.distributed.all_sum) adds up the
    per-class sums of every process's share first, so each process computes the Dice of the whole
    batch, as one process would.
    """
    probs = _loss_precision(logits).softmax(dim=1)
    c = probs.shape[1]
    onehot = F.one_hot(target, c).permute(0, 3, 1, 2).to(probs.dtype)
    sums = torch.cat([(probs * onehot).sum(dim=(0, 2, 3)), probs.sum(dim=(0, 2, 3)), onehot.sum(dim=(0, 2, 3))])
    if all_sum is not None:
        sums = all_sum(sums)
    inter, predicted, true = sums[:c], sums[c:2 * c], sums[2 * c:]
    dice = (2 * inter + eps) / (predicted + true + eps)
    present = true > 0
    return 1.0 - (dice[present].mean() if present.any() else dice.mean())


def segmentation_loss(kind: str, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
                      all_sum: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The loss ``kind`` names; ``all_sum`` as in :func:`dice_loss` (a distributed run)."""
    if kind == "wce":
        return weighted_cross_entropy(logits, target, weight)
    if kind == "dice":
        return dice_loss(logits, target, all_sum=all_sum)
    if kind == "wce+dice":
        return weighted_cross_entropy(logits, target, weight) + dice_loss(logits, target, all_sum=all_sum)
    raise ValueError(f"config field 'loss': {kind!r} is not one of {', '.join(LOSSES)}")


# ---------------------------------------------------------------------------------- registry
def build_unet(config: dict, num_classes: int) -> UNet:
    """num_classes = foreground classes; the model predicts num_classes + 1 channels."""
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    return UNet(num_classes, depth=cfg["depth"], width=cfg["width"], encoder=cfg["encoder"],
                pretrained=bool(cfg["pretrained"]))

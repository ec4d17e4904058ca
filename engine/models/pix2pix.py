"""pix2pix (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator, conditioned on the input.

- Generator: an encoder-decoder with skips. ``depth`` down-steps of conv 4x4 stride 2
  (LeakyReLU 0.2, norm), channels ``width * 2**level`` capped at ``8 * width``; the decoder mirrors
  it with transposed convolutions 4x4 stride 2 (ReLU, norm), concatenating the encoder's features of
  the same scale. Dropout (p = 0.5) in the ``dropout`` innermost up-steps is the generator's noise,
  kept at test time as in the paper only when asked (``eval_dropout``). The output is tanh: pixels
  in [-1, 1]. An input's sides must be multiples of ``2**depth`` (the predictor pads).
- Discriminator: a PatchGAN of ``n_layers`` conv 4x4 stride 2 layers, one conv 4x4 stride 1 and a
  conv 4x4 stride 1 to one logit per patch. It sees the input and an output (real or generated)
  concatenated along channels, so it judges whether the output fits the input. Its receptive
  field (:func:`receptive_field`, computed from the layers) is 70 px for ``n_layers = 3``.
- Losses: ``gan_loss`` is "vanilla" (BCE on logits) or "lsgan" (least squares); the generator
  minimises GAN + ``lambda_l1`` * L1 (λ = 100), the discriminator half the sum of its real and fake
  terms. Adam, lr 2e-4, β1 = 0.5.

Tensor shapes: images [N, C, H, W] in [-1, 1]; patch logits [N, 1, H', W'].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GAN_LOSSES = ("vanilla", "lsgan")
NORMS = ("batch", "instance")
PAIRS = ("targets", "labels2photo", "edges2photo", "gray2color", "denoise", "deblur", "colorize")

DEFAULT_CONFIG = {
    "pairs": "targets", "folder": "",
    "size": 128, "load_size": 0, "jitter": False, "hflip": True,
    "width": 64, "depth": 7, "dropout": 3, "norm": "batch", "eval_dropout": False,
    "ndf": 64, "n_layers": 3,
    "gan_loss": "vanilla", "lambda_l1": 100.0, "gan_weight": 1.0,
    "lr": 2e-4, "beta1": 0.5, "batch_size": 1,
    "noise_sigma": 25.0, "blur_sigma": 2.0,
    "epochs": 200, "epoch_size": 0, "warmup_steps": 0, "val_limit": 64, "preview_every": 25, "preview_images": 3,
    "cpu_threads": -1,
}
# On the CPU a run is bounded by time (12 minutes here): smaller and shallower nets at 128 px
# (a 4 x 4 bottleneck), batches of 4 and a higher rate learn the demo sets within it; see
# docs/adr/0026-pix2pix.md for the measurements behind these numbers.
# epoch_size 256: a set of a few photos still validates every 64 steps, not after every step.
CPU_PRESET = dict(DEFAULT_CONFIG, width=32, depth=5, dropout=1, ndf=32, batch_size=4, lr=5e-4, epochs=10_000,
                  epoch_size=256, max_seconds=600.0, preview_every=50)
GPU_PRESET = dict(DEFAULT_CONFIG, size=256, jitter=True, cpu_threads=None, max_seconds=None)
# Colorization: a*b* from L*, L1 only by default (the GAN term is optional: gan_weight > 0). With the
# few photos of a project the GAN term paints confident wrong colours (a blue night sky in the
# sepia of the training photos: val PSNR 18.07 dB against 18.43 for gray, ADR 0026). Photos are
# read at 256 px (short side) and cropped to 128, so the model learns colour from texture at one
# scale, and the predictor colours a photo of any size at that scale (a*b* are smooth).
COLORIZE_CPU_PRESET = dict(CPU_PRESET, pairs="colorize", load_size=256, gan_weight=0.0)
COLORIZE_GPU_PRESET = dict(GPU_PRESET, pairs="colorize")


def channels_for(pairs: str) -> tuple[int, int]:
    """(input channels, output channels) of the generator for a pair kind."""
    if pairs == "colorize":
        return 1, 2  # L* -> a*b*
    if pairs in ("gray2color", "edges2photo"):
        return 1, 3
    return 3, 3


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels) if kind == "instance" else nn.BatchNorm2d(channels)


class UNetGenerator(nn.Module):
    """[N, in_ch, H, W] -> [N, out_ch, H, W] in [-1, 1]; H and W multiples of 2**depth."""

    def __init__(self, in_ch: int, out_ch: int, width: int = 64, depth: int = 7, dropout: int = 3,
                 norm: str = "batch") -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        chans = [min(width * 2 ** level, width * 8) for level in range(depth)]
        self.depth = depth
        self.down = nn.ModuleList()
        c_prev = in_ch
        for level, c in enumerate(chans):
            layers: list[nn.Module] = []
            if level > 0:
                layers.append(nn.LeakyReLU(0.2))
            # no norm on the outermost layer (the image) nor on the 1 x 1 bottleneck
            plain = level == 0 or level == depth - 1
            layers.append(nn.Conv2d(c_prev, c, 4, 2, 1, bias=plain))
            if not plain:
                layers.append(_norm(norm, c))
            self.down.append(nn.Sequential(*layers))
            c_prev = c
        self.up = nn.ModuleList()
        for level in reversed(range(depth)):
            c_in = chans[level] if level == depth - 1 else chans[level] * 2
            layers = [nn.ReLU()]
            if level == 0:
                layers += [nn.ConvTranspose2d(c_in, out_ch, 4, 2, 1), nn.Tanh()]
            else:
                c_out = chans[level - 1]
                layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), _norm(norm, c_out)]
                if depth - 1 - level < dropout:
                    layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](skips[-1])
        for block, skip in zip(self.up[1:], reversed(skips[:-1])):
            x = block(torch.cat([x, skip], dim=1))
        return x


class PatchDiscriminator(nn.Module):
    """[N, in_ch + out_ch, H, W] (input and output concatenated) -> patch logits [N, 1, H', W']."""

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = ndf
        for n in range(1, n_layers + 1):
            c_next = ndf * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(c, c_next, 4, stride, 1, bias=False), _norm(norm, c_next), nn.LeakyReLU(0.2)]
            c = c_next
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(module: nn.Module) -> int:
    """Receptive field (pixels, one side) of one output unit of a chain of convolutions, from their
    kernels, strides and dilations in order: r = 1 + sum_i (k_i - 1) * d_i * prod_{j<i} s_j."""
    r, jump = 1, 1
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) and not isinstance(layer, nn.ConvTranspose2d):
            k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
            s = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
            d = getattr(layer, "dilation", 1)
            d = d if isinstance(d, int) else d[0]
            r += (k - 1) * d * jump
            jump *= s
    return r


class Pix2Pix(nn.Module):
    """Both networks in one module, so one state dict holds the pair (``G.*`` and ``D.*``)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        in_ch, out_ch = channels_for(str(config.get("pairs", "targets")))
        norm = str(config.get("norm", "batch"))
        self.G = UNetGenerator(in_ch, out_ch, int(config["width"]), int(config["depth"]), int(config["dropout"]),
                               norm)
        self.D = PatchDiscriminator(in_ch + out_ch, int(config["ndf"]), int(config["n_layers"]), norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.G(x)


def build_pix2pix(config: dict, num_classes: int = 0) -> Pix2Pix:
    """The registry's builder; ``num_classes`` is unused (an image-to-image model has no classes)."""
    return Pix2Pix({**DEFAULT_CONFIG, **config})


def gan_loss(logits: torch.Tensor, real: bool, kind: str = "vanilla") -> torch.Tensor:
    """Mean over patches of the loss of calling every patch ``real`` (True) or fake."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def generator_losses(D: nn.Module, a: torch.Tensor, fake: torch.Tensor, b: torch.Tensor, kind: str,
                     lambda_l1: float, gan_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """{"loss", "g_gan", "g_l1"}: fool D on (a, fake), and stay near the target b (λ·L1)."""
    g_gan = gan_loss(D(torch.cat([a, fake], 1)), True, kind) if gan_weight > 0 else fake.new_zeros(())
    g_l1 = F.l1_loss(fake, b)
    return {"loss": gan_weight * g_gan + lambda_l1 * g_l1, "g_gan": g_gan, "g_l1": g_l1}


def discriminator_losses(D: nn.Module, a: torch.Tensor, fake: torch.Tensor, b: torch.Tensor,
                         kind: str) -> dict[str, torch.Tensor]:
    """{"loss", "d_real", "d_fake"}: half the sum of the real and fake terms (the paper halves D's
    objective so it learns slower than G)."""
    d_real = gan_loss(D(torch.cat([a, b], 1)), True, kind)
    d_fake = gan_loss(D(torch.cat([a, fake.detach()], 1)), False, kind)
    return {"loss": 0.5 * (d_real + d_fake), "d_real": d_real, "d_fake": d_fake}

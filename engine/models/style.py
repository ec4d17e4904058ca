"""Style transfer: feature networks with named layers, Gram matrices, the perceptual losses of
Gatys et al., and the feed-forward transformer network of Johnson et al. (fast style).

Feature networks (chosen by :func:`feature_network`):
- ``vgg19``: torchvision's VGG-19 with ImageNet weights, only when they are already on this
  machine (torch's hub cache, under torchvision's file name, or a file the user picks). The state
  dict is checked key by key before use. Max pooling is replaced by average pooling, as the paper
  recommends. Layer names are the paper's: ``conv1_1`` .. ``conv5_4`` (after their ReLU).
- both know ``rgb``, the pixels themselves: its Gram is the picture's colour moments, a style
  layer that carries the style's palette (a texture's Gram alone can be matched by an orange
  suit beside a blue face; the pixels' Gram cannot);
- ``lite0``: the shipped EfficientNet-Lite0 (engine.models.backbones); layers ``stem``,
  ``block0`` .. ``block15`` (block outputs) and ``expand1`` .. ``expand15`` (the ReLU6 of each
  block's 1x1 expansion: wide, non-negative maps, the closest Lite0 has to VGG's ReLU layers).

Losses (per image; F is a layer's feature map flattened to [N channels, M positions]):
- Gram matrix ``G = F Fᵀ``;
- style loss of a layer ``E = Σ (G - A)² / (4 N² M²)``, with A the style image's Gram scaled to
  M positions (``A = M · A_style / M_style``), so style and content images may differ in size;
- content loss ``½ Σ (F - P)²``;
- total ``α · content + β · Σ_l w_l E_l + tv · total variation``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from engine.annotations.errors import BadInput

NETWORKS = ("auto", "vgg19", "lite0")
VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's file name for the ImageNet weights
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# VGG-19 "features" indices of each conv layer (the ReLU after it is index + 1).
_VGG_CONVS = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7,
              "conv3_1": 10, "conv3_2": 12, "conv3_3": 14, "conv3_4": 16,
              "conv4_1": 19, "conv4_2": 21, "conv4_3": 23, "conv4_4": 25,
              "conv5_1": 28, "conv5_2": 30, "conv5_3": 32, "conv5_4": 34}

# torchvision's VGG-19 "features": 16 convs (channels) and 5 poolings ("M").
_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def vgg_feature_shapes(cfg: Sequence = _VGG19_CFG) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors of a torchvision VGG "features" block of layout ``cfg``."""
    shapes: dict[str, tuple[int, ...]] = {}
    index, cin = 0, 3
    for item in cfg:
        if item == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (int(item), cin, 3, 3)
        shapes[f"features.{index}.bias"] = (int(item),)
        index, cin = index + 2, int(item)  # the conv and its ReLU
    return shapes


# The defaults of each network: the paper's layers for VGG-19; for Lite0, the pixels (the palette),
# the stem and expansions at strides 2, 4, 8 and 16 for style (they carry colour and texture) and a
# stride-8 block for content.
DEFAULT_LAYERS = {
    "vgg19": {"content": "conv4_2", "style": ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")},
    "lite0": {"content": "block5", "style": ("rgb", "stem", "expand1", "expand3", "expand5", "expand8")},
}


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``F Fᵀ`` of feature maps [B, N, H, W] (or [N, H, W]) -> [B, N, N] (or [N, N]), unnormalised."""
    flat = features.flatten(-2)
    return flat @ flat.transpose(-1, -2)


def style_layer_loss(gram: torch.Tensor, target_per_position: torch.Tensor, channels: int,
                     positions: int) -> torch.Tensor:
    """Gatys' E_l = Σ (G - A)² / (4 N² M²) for one image: ``gram`` [N, N] = F Fᵀ of the picture,
    ``target_per_position`` [N, N] = the style Gram divided by the style image's positions."""
    diff = gram - target_per_position * positions
    return (diff * diff).sum() / (4.0 * channels * channels * positions * positions)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """½ Σ (F - P)²."""
    return 0.5 * ((features - target) ** 2).sum()


def total_variation(picture: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels of [B, 3, H, W] (independent of size)."""
    dy = picture[..., 1:, :] - picture[..., :-1, :]
    dx = picture[..., :, 1:] - picture[..., :, :-1]
    return (dy * dy).mean() + (dx * dx).mean()


class FeatureNetwork(nn.Module):
    """A frozen network that returns the activations of named layers of RGB images in [0, 1].

    ``forward(images [B, 3, H, W], names) -> {name: [B, N, h, w]}``; it stops after the deepest
    layer asked for. ``layers`` lists every name it knows, shallow to deep.
    """

    name = ""
    layers: tuple[str, ...] = ()

    def describe(self) -> str:
        return self.name

    def forward(self, images: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class Vgg19Features(FeatureNetwork):
    name = "vgg19"
    layers = ("rgb",) + tuple(_VGG_CONVS)

    def __init__(self, state_dict: dict[str, torch.Tensor], source: str = "") -> None:
        super().__init__()
        from torchvision.models import vgg19

        features = vgg19(weights=None).features
        features.load_state_dict({k[len("features."):]: v for k, v in state_dict.items()
                                  if k.startswith("features.")})
        for k, module in enumerate(features):
            if isinstance(module, nn.MaxPool2d):
                features[k] = nn.AvgPool2d(2, 2)
        self.features = features.eval().requires_grad_(False)
        self.source = source
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self._index = {name: index + 1 for name, index in _VGG_CONVS.items()}

    def describe(self) -> str:
        return f"VGG-19 ({self.source})" if self.source else "VGG-19"

    def forward(self, images: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        wanted = {self._index[n]: n for n in names if n != "rgb"}
        x = (images - self.mean) / self.std
        out: dict[str, torch.Tensor] = {"rgb": images} if "rgb" in names else {}
        if not wanted:
            return out
        for k, module in enumerate(self.features):
            x = module(x)
            if k in wanted:
                out[wanted[k]] = x
                if len(out) == len(set(names)):
                    break
        return out


class Lite0Features(FeatureNetwork):
    name = "lite0"
    layers = ("rgb", "stem") + tuple(f"{kind}{k}" for k in range(16) for kind in ("expand", "block") if
                               not (kind == "expand" and k == 0))

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        from engine.models.backbones import efficientnet_lite0

        self.net = efficientnet_lite0(pretrained=pretrained).eval().requires_grad_(False)

    def describe(self) -> str:
        return "EfficientNet-Lite0 (shipped ImageNet weights)"

    def forward(self, images: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        from engine.models.backbones import preprocess

        wanted = set(names)
        out: dict[str, torch.Tensor] = {}
        net = self.net
        if "rgb" in wanted:
            out["rgb"] = images
        x = F.relu6(net._bn0(net._conv_stem(preprocess(images))))
        if "stem" in wanted:
            out["stem"] = x
        for k, block in enumerate(net._blocks):
            if len(out) == len(wanted):
                break
            if block.has_expand and f"expand{k}" in wanted:
                # the block's own computation, with its expansion kept on the way
                e = F.relu6(block._bn0(block._expand_conv(x)))
                out[f"expand{k}"] = e
                y = F.relu6(block._bn1(block._depthwise_conv(e)))
                y = block._bn2(block._project_conv(y))
                x = y + x if block.use_residual else y
            else:
                x = block(x)
            if f"block{k}" in wanted:
                out[f"block{k}"] = x
        return out


def vgg19_cache_path() -> Path:
    """Where torchvision keeps the VGG-19 ImageNet weights once downloaded (may not exist)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def load_vgg19_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read and check a VGG-19 state dict; BadInput naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(str(path), "vgg19 weights", "file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's bad input
        raise BadInput(str(path), "vgg19 weights", f"not a readable torch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInput(str(path), "vgg19 weights", "not a state dict of tensors")
    expected = vgg_feature_shapes()
    missing = sorted(k for k in expected if k not in state)
    if missing:
        raise BadInput(str(path), "vgg19 weights",
                       f"not VGG-19 ImageNet weights: {len(missing)} of its {len(expected)} feature tensors are "
                       f"missing (first: {missing[0]})")
    for key, shape in expected.items():
        if tuple(state[key].shape) != tuple(shape):
            raise BadInput(str(path), "vgg19 weights",
                           f"not VGG-19 weights: {key} has shape {list(state[key].shape)}, VGG-19 has {list(shape)}")
    return state


def feature_network(network: str = "auto", vgg19_weights: str | os.PathLike | None = None) -> FeatureNetwork:
    """The feature network to use: ``vgg19`` needs weights (the file given, else torch's hub
    cache; never downloaded), ``lite0`` always works, ``auto`` takes VGG-19 when present."""
    if network not in NETWORKS:
        raise BadInput(str(network), "network", f"must be one of {', '.join(NETWORKS)}")
    if network in ("auto", "vgg19"):
        path = Path(vgg19_weights) if vgg19_weights else vgg19_cache_path()
        if vgg19_weights or path.is_file():
            return Vgg19Features(load_vgg19_state_dict(path), str(path))
        if network == "vgg19":
            raise BadInput(str(path), "vgg19 weights",
                           "VGG-19 ImageNet weights are not on this machine (nothing is downloaded); pick the "
                           "file, put it at this path, or use the shipped network lite0")
    return Lite0Features()


def check_layers(net: FeatureNetwork, names: Sequence[str], field: str) -> list[str]:
    names = [str(n).strip() for n in names if str(n).strip()]
    unknown = [n for n in names if n not in net.layers]
    if unknown or not names:
        raise BadInput(net.name, field, f"unknown layer {unknown[0] if unknown else '(none)'}; "
                       f"{net.name} has {', '.join(net.layers)}")
    return names


# ---- fast style (Johnson et al.) --------------------------------------------------------------
class _ConvLayer(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> None:
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride),
                                   nn.InstanceNorm2d(cout, affine=True)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_ConvLayer(channels, channels, 3), _ConvLayer(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Upsample(nn.Sequential):
    """Nearest-neighbour upsampling then a convolution (no checkerboard of transposed convs)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), _ConvLayer(cin, cout, 3))


# The version of the network's output mapping, written into each checkpoint: a checkpoint of
# another version holds weights for another mapping and is refused (engine.infer.faststyle_predictor).
TRANSFORMER_VERSION = 2
NOISE_SIDE = 1024  # the side of the fixed noise field of eval mode (tiled beyond)


class TransformerNet(nn.Module):
    """Johnson's image transformation network: 9x9 conv, two stride-2 downsamplings, residual
    blocks, two upsamplings, 9x9 conv; instance norm after every conv but the last.

    ``forward(images [B, 3, H, W] in [0, 1]) -> [B, 3, H, W]`` = ``C·x + body(x, z)``:
    - C, a learnt affine colour map of each pixel (1x1 conv), set by the trainer to the colour
      transfer from the project's photos to the style image (:func:`colour_transfer`): the style's
      palette from the first step, the same map everywhere in the picture;
    - body, the network above with one output channel added to R, G and B alike: the texture, as
      light and shade. A body with three outputs painted blobs and swirls of colours in neither
      photo nor style (dark areas, flat backgrounds) that the feature network's Grams accepted;
    - z, a noise channel beside the picture (as in Ulyanov et al.'s texture networks): a flat sky
      or wall gives a convolution nothing to vary, so without it the network could only blow up
      the faint variations there into blobs; with it, the texture covers flat areas too. Training
      draws new noise for each batch; eval mode takes a fixed noise field (:data:`NOISE_SIDE`
      pixels, made from a fixed seed and tiled beyond), so an image always gives the same result.
    In eval mode the output is clamped to [0, 1]; in training it is not (the trainer penalises
    what lies outside, so no pixel sits where a clamp or a squashing function stops its gradient).
    """

    def __init__(self, width: int = 32, residual_blocks: int = 5) -> None:
        super().__init__()
        w = int(width)
        self.body = nn.Sequential(
            _ConvLayer(4, w, 9), _ConvLayer(w, 2 * w, 3, 2), _ConvLayer(2 * w, 4 * w, 3, 2),
            *[_Residual(4 * w) for _ in range(int(residual_blocks))],
            _Upsample(4 * w, 2 * w), _Upsample(2 * w, w),
            nn.ReflectionPad2d(4), nn.Conv2d(w, 1, 9))
        self.colour = nn.Conv2d(3, 3, 1)
        self.set_colour(torch.eye(3), torch.zeros(3))
        noise = torch.rand(1, 1, NOISE_SIDE, NOISE_SIDE, generator=torch.Generator().manual_seed(0))
        self.register_buffer("noise", noise, persistent=False)

    @torch.no_grad()
    def set_colour(self, matrix: torch.Tensor, bias: torch.Tensor) -> None:
        self.colour.weight.copy_(matrix.view(3, 3, 1, 1))
        self.colour.bias.copy_(bias.view(3))

    def _noise(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.training:
            return torch.rand(b, 1, h, w, device=x.device, dtype=x.dtype)
        z = self.noise
        if h > NOISE_SIDE or w > NOISE_SIDE:
            z = z.repeat(1, 1, -(-h // NOISE_SIDE), -(-w // NOISE_SIDE))
        return z[..., :h, :w].expand(b, 1, h, w).to(x.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        x = F.pad(images, (0, pw, 0, ph), mode="reflect") if ph or pw else images
        y = self.colour(x) + self.body(torch.cat([x, self._noise(x)], 1))
        if not self.training:
            y = y.clamp(0.0, 1.0)
        return y[..., :h, :w] if ph or pw else y


def colour_transfer(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-4
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine map ``y = A x + b`` that gives pixels of ``content`` [N, 3] the colour mean and
    covariance of the pixels of ``style`` [M, 3], moving the colours least (the Monge-Kantorovich
    map of the two Gaussians): ``A = Σc^-½ (Σc^½ Σs Σc^½)^½ Σc^-½`` (symmetric, ``A Σc Aᵀ = Σs``),
    ``b = μs - A μc``. A grey style gives a map to greys."""
    def moments(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = p.double()
        mean = p.mean(0)
        centred = p - mean
        return mean, centred.T @ centred / max(1, p.shape[0] - 1) + eps * torch.eye(3, dtype=p.dtype)

    def power(cov: torch.Tensor, exponent: float) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(cov)
        return vectors @ torch.diag(values.clamp_min(eps if exponent < 0 else 0.0) ** exponent) @ vectors.T

    mc, cc = moments(content)
    ms, cs = moments(style)
    root, inverse_root = power(cc, 0.5), power(cc, -0.5)
    matrix = inverse_root @ power(root @ cs @ root, 0.5) @ inverse_root
    return matrix.float(), (ms - matrix @ mc).float()


def out_of_range(pictures: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the pixels to [0, 1] (0 inside)."""
    excess = pictures - pictures.clamp(0.0, 1.0)
    return (excess * excess).mean()


# CPU preset: small crops buy steps; they are cut from images at 256 px and the style is seen at
# 256 px, the scale of Gatys' runs (a whole image shrunk to the crop turned the stones into dots).
# The losses are balanced as in Gatys' defaults, with a lighter β: with its noise channel the network
# makes texture cheaply, and β 30-100 buried the content within a 5-minute run (ADR 0025 addendum).
FASTSTYLE_CPU_PRESET = {
    "style": "gravel", "network": "lite0", "width": 16, "residual_blocks": 3, "crop": 96, "batch_size": 2,
    "image_side": 256, "style_side": 256,
    "lr": 5e-3, "alpha": 1.0, "beta": 10.0, "tv_weight": 0.0, "balance": True, "range_weight": 1000.0,
    "epochs": 100, "steps_per_epoch": 50,
    "max_seconds": 300.0, "warmup_steps": 10, "preview_every": 25, "val_images": 3, "content_layer": "block2",
    "style_layers": "", "style_weights": "",
}
FASTSTYLE_GPU_PRESET = {**FASTSTYLE_CPU_PRESET, "width": 32, "residual_blocks": 5, "crop": 256, "batch_size": 4,
                        "image_side": 320,
                        "epochs": 200, "max_seconds": 1800.0}


def build_transformer(config: dict, num_classes: int = 0) -> TransformerNet:
    """The registry's model builder (``num_classes`` is unused: the output is an image)."""
    return TransformerNet(int(config.get("width", 32)), int(config.get("residual_blocks", 5)))


class PerceptualLoss(nn.Module):
    """α · content + β · Σ_l w_l E_l + tv · TV of pictures [B, 3, H, W] in [0, 1].

    ``set_style(style [1, 3, H, W])`` fixes the style targets; the content target is given per
    call (fast style: each batch's own inputs) or fixed with ``set_content`` (Gatys).
    ``forward`` returns ``(terms, grams)``: terms "loss", "content", "style", "tv" and
    "style/<layer>" (each weighted), grams {layer: [B, N, N] per position} of the picture.
    """

    def __init__(self, net: FeatureNetwork, content_layer: str, style_layers: Sequence[str],
                 style_weights: Sequence[float] | None = None, alpha: float = 1.0, beta: float = 1.0,
                 tv_weight: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.content_layer = check_layers(net, [content_layer], "content_layer")[0]
        self.style_layers = check_layers(net, style_layers, "style_layers")
        weights = list(style_weights) if style_weights else [1.0 / len(self.style_layers)] * len(self.style_layers)
        if len(weights) != len(self.style_layers):
            raise BadInput(net.name, "style_weights",
                           f"{len(weights)} weights for {len(self.style_layers)} style layers")
        self.style_weights = [float(w) for w in weights]
        self.alpha, self.beta, self.tv_weight = float(alpha), float(beta), float(tv_weight)
        self.style_targets: dict[str, torch.Tensor] = {}
        self.content_target: torch.Tensor | None = None
        self._names = list(dict.fromkeys([*self.style_layers, self.content_layer]))

    @torch.no_grad()
    def set_style(self, style: torch.Tensor) -> None:
        feats = self.net(style, self.style_layers)
        self.style_targets = {n: gram_matrix(f)[0] / f.shape[-1] / f.shape[-2] for n, f in feats.items()}

    @torch.no_grad()
    def balance(self, picture: torch.Tensor, content: torch.Tensor | None = None) -> dict[str, float]:
        """Make the terms scale-free at ``picture`` (the start of a run): each style layer's weight
        is divided by that layer's loss there, so every layer starts at its own weight whatever its
        size, and α by the content features' energy ½ Σ P², so the content term is a relative error.
        Without this the raw layers differ by orders of magnitude and the largest one alone is
        matched. Returns the raw values it divided by."""
        terms, _ = self(picture, content)
        raw: dict[str, float] = {}
        for k, name in enumerate(self.style_layers):
            weight = self.style_weights[k]
            value = float(terms[f"style/{name}"]) / weight if weight else 0.0
            raw[name] = value
            if value > 0:
                self.style_weights[k] = weight / value
        target = self.content_target if content is None else self.net(content, [self.content_layer])[self.content_layer]
        energy = 0.5 * float((target ** 2).sum()) / picture.shape[0]
        raw["content_energy"] = energy
        if energy > 0:
            self.alpha /= energy
        return raw

    @torch.no_grad()
    def set_content(self, content: torch.Tensor) -> None:
        self.content_target = self.net(content, [self.content_layer])[self.content_layer]

    def forward(self, picture: torch.Tensor, content: torch.Tensor | None = None
                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        feats = self.net(picture, self._names)
        if content is not None:
            with torch.no_grad():
                target = self.net(content, [self.content_layer])[self.content_layer]
        else:
            target = self.content_target
        batch = picture.shape[0]
        terms: dict[str, torch.Tensor] = {}
        c_loss = content_loss(feats[self.content_layer], target) / batch
        style_total = picture.new_zeros(())
        grams: dict[str, torch.Tensor] = {}
        for name, weight in zip(self.style_layers, self.style_weights):
            f = feats[name]
            n, m = f.shape[1], f.shape[-1] * f.shape[-2]
            g = gram_matrix(f)
            grams[name] = g.detach() / m
            layer = sum(style_layer_loss(g[b], self.style_targets[name], n, m) for b in range(batch)) / batch
            terms[f"style/{name}"] = weight * layer
            style_total = style_total + weight * layer
        tv = total_variation(picture)
        terms["content"] = c_loss
        terms["style"] = style_total
        terms["tv"] = tv
        terms["loss"] = self.alpha * c_loss + self.beta * style_total + self.tv_weight * tv
        return terms, grams


# The Gatys job's defaults under the loop (engine.train.gatys adds the loop keys).
GATYS_PRESET = {
    "content": "astronaut", "style": "brick", "network": "auto", "optimizer": "lbfgs", "init": "content",
    "size": 256, "steps": 200, "alpha": 1.0, "beta": 100.0, "balance": True, "tv_weight": 0.0, "style_layers": "",
    "style_weights": "", "content_layer": "",
}


def build_feature_network(config: dict, num_classes: int = 0) -> FeatureNetwork:
    """The registry's model builder for Gatys' method: the feature network the config names."""
    return feature_network(str(config.get("network") or "auto"), config.get("vgg19_weights") or None)

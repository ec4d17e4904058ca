"""Faster R-CNN and Mask R-CNN (torchvision) on a small FPN backbone; families "fasterrcnn", "maskrcnn".

The default backbone is the pretrained EfficientNet-Lite0 (offline weights, see
``engine.models.backbones``) with a ``torchvision.ops.FeaturePyramidNetwork`` over its c3, c4, c5
maps (strides 8, 16, 32) plus a max-pooled level (stride 64): four levels named "0".."3" and
"pool". MobileNetV3-Large and ResNet-50 FPN backbones are config options; torchvision cannot
download here, so they start from random weights unless the user's torch hub cache holds the
ImageNet file (then it is loaded).

Why two presets: on the 2-core CPU here a training step of 4 images at 256 px costs ~5 s with
torchvision's default heads (512 sampled RoIs per image, 1024-wide box head) and ~1.5 s with 128
RoIs and a 256-wide head (docs/adr/0005-detector-presets.md). The CPU preset trades head capacity
for steps per minute; the GPU preset keeps torchvision's defaults.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from engine.models.backbones import INPUT_MEAN, INPUT_STD, efficientnet_lite0

__all__ = ["BACKBONES", "CPU_PRESET", "GPU_PRESET", "LiteFPNBackbone", "build_rcnn", "preset_for"]

BACKBONES = ("lite0", "mobilenet_v3", "resnet50")

# Shared by both families; Mask R-CNN adds the mask_* keys.
CPU_PRESET: dict = {
    "backbone": "lite0", "pretrained": True, "fpn_channels": 64, "trainable_backbone": True,
    "min_size": 256, "max_size": 320,
    "anchor_sizes": [[32], [64], [128], [256]], "aspect_ratios": [0.5, 1.0, 2.0],
    "rpn_pre_nms_top_n_train": 600, "rpn_post_nms_top_n_train": 300,
    "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_test": 100,
    "rpn_batch_size_per_image": 128,
    "box_batch_size_per_image": 128, "representation_size": 256,
    "box_detections_per_img": 100, "mask_head_channels": 64,
    # bounded by time on the CPU (10 minutes; docs/adr/0018), by epochs on a GPU
    "epochs": 100, "max_seconds": 600.0, "batch_size": 4, "lr": 0.02, "momentum": 0.9, "weight_decay": 1e-4,
    "warmup_steps": 50, "hflip": True, "vflip": False, "seed": 0,
}
GPU_PRESET: dict = {
    **CPU_PRESET,
    "fpn_channels": 128, "min_size": 512, "max_size": 1024,
    "rpn_pre_nms_top_n_train": 2000, "rpn_post_nms_top_n_train": 2000,
    "rpn_pre_nms_top_n_test": 1000, "rpn_post_nms_top_n_test": 1000,
    "rpn_batch_size_per_image": 256,
    "box_batch_size_per_image": 512, "representation_size": 1024, "mask_head_channels": 256,
    "epochs": 24, "max_seconds": None, "batch_size": 8,
}

# ImageNet files torchvision would have downloaded for the optional backbones (looked up, never fetched).
_BACKBONE_FILES = {"mobilenet_v3": "mobilenet_v3_large-8738ca79.pth", "resnet50": "resnet50-0676ba61.pth"}


def preset_for(device_type: str) -> dict:
    return dict(GPU_PRESET if device_type == "cuda" else CPU_PRESET)


class LiteFPNBackbone(nn.Module):
    """EfficientNet-Lite0 c3/c4/c5 + FPN.

    Input: images normalised by the R-CNN transform (see ``image_mean``/``image_std`` below),
    [N, 3, H, W]. Output: dict "0": [N, C, H/8, W/8], "1": H/16, "2": H/32,
    "pool": H/64, with C = ``out_channels``.
    """

    def __init__(self, out_channels: int = 64, pretrained: bool = True, trainable: bool = True) -> None:
        super().__init__()
        # frozen BN: detector batches of 1-4 images give useless batch statistics
        self.body = efficientnet_lite0(pretrained=pretrained, frozen_bn=True)
        self.body._conv_head = nn.Identity()  # the classifier head is not used: save its weights
        self.body._bn1 = nn.Identity()
        self.body._fc = nn.Identity()
        if not trainable:
            for p in self.body.parameters():
                p.requires_grad_(False)
        channels = self.body.feature_channels
        self.fpn = FeaturePyramidNetwork([channels["c3"], channels["c4"], channels["c5"]], out_channels,
                                         extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.body.features(x)
        return self.fpn({"0": feats["c3"], "1": feats["c4"], "2": feats["c5"]})  # dicts keep their order


def _hub_file(name: str) -> Path | None:
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    return path if path.is_file() else None


def _torchvision_backbone(kind: str, out_channels: int, trainable: bool) -> tuple[nn.Module, int]:
    """MobileNetV3-Large or ResNet-50 FPN from torchvision; ImageNet weights if cached locally.

    Returns (backbone, number of feature levels it produces).
    """
    from torchvision.models import mobilenet_v3_large, resnet50
    from torchvision.models.detection.backbone_utils import _mobilenet_extractor, _resnet_fpn_extractor

    cached = _hub_file(_BACKBONE_FILES[kind])
    if kind == "resnet50":
        from torchvision.ops import misc

        body = resnet50(weights=None, norm_layer=misc.FrozenBatchNorm2d)
        if cached is not None:
            body.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
        layers = 5 if trainable else 0
        backbone = _resnet_fpn_extractor(body, layers)
        return backbone, 5
    body = mobilenet_v3_large(weights=None)
    if cached is not None:
        body.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
    backbone = _mobilenet_extractor(body, True, 6 if trainable else 0)
    return backbone, 3


def _anchor_generator(config: dict, levels: int) -> AnchorGenerator:
    sizes = [tuple(int(s) for s in level) for level in config["anchor_sizes"]]
    if len(sizes) != levels:
        # e.g. ResNet-50 FPN has 5 levels: extend the list by doubling the last size
        while len(sizes) < levels:
            sizes.append(tuple(2 * s for s in sizes[-1]))
        sizes = sizes[:levels]
    if len({len(s) for s in sizes}) != 1:
        # one RPN head serves every level, so it predicts the same number of anchors everywhere
        raise ValueError(f"config field 'anchor_sizes': every level needs the same number of sizes, "
                         f"got {[list(s) for s in sizes]}")
    ratios = tuple(float(r) for r in config["aspect_ratios"])
    return AnchorGenerator(tuple(sizes), (ratios,) * levels)


def build_rcnn(config: dict, num_classes: int, masks: bool = False) -> nn.Module:
    """A torchvision FasterRCNN (or MaskRCNN with ``masks``) for ``num_classes`` object classes.

    ``config`` keys: see CPU_PRESET (missing keys take the CPU preset's values). The model
    predicts num_classes + 1 classes (0 = background), labels 1..num_classes.
    """
    cfg = {**CPU_PRESET, **(config or {})}
    kind = cfg["backbone"]
    if kind not in BACKBONES:
        raise ValueError(f"config field 'backbone': {kind!r} is not one of {', '.join(BACKBONES)}")
    if num_classes < 1:
        raise ValueError("num_classes must be at least 1")
    trainable = bool(cfg["trainable_backbone"])
    if kind == "lite0":
        backbone = LiteFPNBackbone(int(cfg["fpn_channels"]), bool(cfg["pretrained"]), trainable)
        levels = 4
        mean, std = [INPUT_MEAN / 255.0] * 3, [INPUT_STD / 255.0] * 3
    else:
        backbone, levels = _torchvision_backbone(kind, int(cfg["fpn_channels"]), trainable)
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    # The RoI poolers read the stride-8..32 levels ("pool" is for the RPN only), as torchvision does.
    names = [str(i) for i in range(levels - 1)]
    out_ch = backbone.out_channels
    rep = int(cfg["representation_size"])
    box_roi_pool = MultiScaleRoIAlign(featmap_names=names, output_size=7, sampling_ratio=2)
    common = dict(
        min_size=int(cfg["min_size"]), max_size=int(cfg["max_size"]), image_mean=mean, image_std=std,
        rpn_anchor_generator=_anchor_generator(cfg, levels),
        rpn_pre_nms_top_n_train=int(cfg["rpn_pre_nms_top_n_train"]),
        rpn_post_nms_top_n_train=int(cfg["rpn_post_nms_top_n_train"]),
        rpn_pre_nms_top_n_test=int(cfg["rpn_pre_nms_top_n_test"]),
        rpn_post_nms_top_n_test=int(cfg["rpn_post_nms_top_n_test"]),
        rpn_batch_size_per_image=int(cfg["rpn_batch_size_per_image"]),
        box_roi_pool=box_roi_pool,
        box_head=TwoMLPHead(out_ch * 7 * 7, rep),
        box_predictor=FastRCNNPredictor(rep, num_classes + 1),
        box_batch_size_per_image=int(cfg["box_batch_size_per_image"]),
        box_detections_per_img=int(cfg["box_detections_per_img"]),
    )
    if not masks:
        return FasterRCNN(backbone, num_classes=None, **common)
    mch = int(cfg["mask_head_channels"])
    return MaskRCNN(
        backbone, num_classes=None,
        mask_roi_pool=MultiScaleRoIAlign(featmap_names=names, output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(out_ch, (mch,) * 4, 1),
        mask_predictor=MaskRCNNPredictor(mch, mch, num_classes + 1),
        **common)


def build_fasterrcnn(config: dict, num_classes: int) -> nn.Module:
    return build_rcnn(config, num_classes, masks=False)


def build_maskrcnn(config: dict, num_classes: int) -> nn.Module:
    return build_rcnn(config, num_classes, masks=True)

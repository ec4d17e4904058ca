"""Our YOLO: a single-stage grid detector in the spirit of YOLOv1 on EfficientNet-Lite0; family "yolo".

The image is resized to ``input_size`` x ``input_size`` (no letterbox, as in YOLOv1) and the
backbone's ``feature`` map ("c4", stride 16, or "c5", stride 32) is cut into S x S cells
(S = input_size // stride unless ``grid`` is set). Every cell predicts

- B boxes, each ``(x, y, sqrt_w, sqrt_h, conf)``: x, y = the box centre as offsets in the cell
  (0..1), sqrt_w, sqrt_h = square roots of the box size relative to the image (0..1), conf = the
  predicted IoU of that box with an object (0 when the cell holds no object centre);
- C class probabilities shared by its B boxes (softmax).

All outputs pass through a sigmoid (or the softmax) so every number of the grid stays in 0..1;
the loss is YOLOv1's sum of squared errors on those values (:func:`yolo_loss`). At test time the
score of box b for class c is ``conf_b * p_c``; candidates above a floor then go through
class-wise NMS (``torchvision.ops.batched_nms``, in the predictor).

Layout of one cell's vector (length ``B * 5 + C``): ``[x, y, sw, sh, conf] * B + [p_1 .. p_C]``.
Boxes here are normalised xyxy (0..1 of the image width/height) unless a name says pixels.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.backbones import FEATURE_CHANNELS, FEATURE_STRIDES, efficientnet_lite0

__all__ = ["CPU_PRESET", "GPU_PRESET", "YoloGridNet", "build_yolo", "decode_grid", "encode_targets",
           "grid_candidates", "preset_for", "yolo_loss"]

# CPU: 160 px through c4 gives a 10 x 10 grid at a fraction of the c5 cost (128 px / 8 x 8 until
# 2026-12-04: see ADR 0012 for the measurements behind the change); GPU: YOLOv1's 448 px through
# c5 (14 x 14 grid). On the CPU a run is bounded by time (10 minutes, docs/adr/0018), on a GPU
# by epochs.
CPU_PRESET: dict = {
    "input_size": 160, "feature": "c4", "grid": None, "boxes_per_cell": 2, "head_channels": 128,
    "pretrained": True, "lambda_coord": 5.0, "lambda_noobj": 0.5,
    "epochs": 200, "batch_size": 16, "lr": 1e-3, "backbone_lr_scale": 0.3, "weight_decay": 1e-4,
    "warmup_steps": 30, "hflip": True, "vflip": True, "max_seconds": 600.0, "seed": 0,
    "max_detections": 100,
}
GPU_PRESET: dict = {**CPU_PRESET, "input_size": 448, "feature": "c5", "head_channels": 256,
                    "epochs": 60, "batch_size": 32, "max_seconds": None}


def preset_for(device_type: str) -> dict:
    return dict(GPU_PRESET if device_type == "cuda" else CPU_PRESET)


def grid_size(config: dict) -> int:
    """S of the grid this config gives."""
    cfg = {**CPU_PRESET, **(config or {})}
    if cfg.get("grid"):
        return int(cfg["grid"])
    return max(1, -(-int(cfg["input_size"]) // FEATURE_STRIDES[cfg["feature"]]))


class YoloGridNet(nn.Module):
    """Backbone feature map -> small conv head -> the S x S grid.

    Input: images normalised by ``engine.models.backbones.preprocess``, [N, 3, input, input].
    Output: float [N, S, S, B * 5 + C], every value in 0..1 (see the module docstring).
    """

    def __init__(self, num_classes: int, boxes_per_cell: int = 2, feature: str = "c4",
                 head_channels: int = 128, grid: int | None = None, pretrained: bool = True) -> None:
        super().__init__()
        if feature not in ("c4", "c5"):
            raise ValueError(f"config field 'feature': {feature!r} is not 'c4' or 'c5'")
        if num_classes < 1 or boxes_per_cell < 1:
            raise ValueError("num_classes and boxes_per_cell must be at least 1")
        self.num_classes = int(num_classes)
        self.boxes_per_cell = int(boxes_per_cell)
        self.feature = feature
        self.grid = grid
        # frozen BN: batches of a few images give noisy statistics; the pretrained ones are better
        self.backbone = efficientnet_lite0(pretrained=pretrained, frozen_bn=True)
        self.backbone._conv_head = nn.Identity()  # the ImageNet classifier is unused: drop it
        self.backbone._bn1 = nn.Identity()
        self.backbone._fc = nn.Identity()
        if feature == "c4":
            self.backbone._blocks = self.backbone._blocks[:11]  # stages after c4 would be wasted work
        ch = FEATURE_CHANNELS[feature]
        self.head = nn.Sequential(
            nn.Conv2d(ch, head_channels, 3, padding=1, bias=False), nn.BatchNorm2d(head_channels),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(head_channels, head_channels, 3, padding=1, bias=False), nn.BatchNorm2d(head_channels),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(head_channels, self.boxes_per_cell * 5 + self.num_classes, 1))
        # start with low confidences: most cells are empty, so a 0.5 start would flood the
        # no-object term in the first steps
        with torch.no_grad():
            bias = self.head[-1].bias
            bias.zero_()
            for b in range(self.boxes_per_cell):
                bias[b * 5 + 4] = -4.0

    @property
    def channels(self) -> int:
        return self.boxes_per_cell * 5 + self.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.backbone.features(x)[self.feature]
        if self.grid:
            feat = F.adaptive_avg_pool2d(feat, int(self.grid))
        raw = self.head(feat).permute(0, 2, 3, 1)  # [N, S, S, B*5 + C]
        nb = self.boxes_per_cell * 5
        return torch.cat([torch.sigmoid(raw[..., :nb]), torch.softmax(raw[..., nb:], dim=-1)], dim=-1)


def build_yolo(config: dict, num_classes: int) -> YoloGridNet:
    """A YoloGridNet from a config (missing keys take the CPU preset's values)."""
    cfg = {**CPU_PRESET, **(config or {})}
    return YoloGridNet(num_classes, int(cfg["boxes_per_cell"]), str(cfg["feature"]),
                       int(cfg["head_channels"]), cfg.get("grid"), bool(cfg["pretrained"]))


# --------------------------------------------------------------------------- target encoding
def encode_targets(boxes: list[torch.Tensor], labels: list[torch.Tensor], grid: int,
                   num_classes: int) -> torch.Tensor:
    """Ground truth -> target grid float [N, S, S, 5 + C].

    boxes[i]: float [K, 4] normalised xyxy of image i; labels[i]: int [K] in 0..C-1.
    Per cell: ``[x, y, sqrt_w, sqrt_h, has_object, one-hot class (C)]``. The cell holding a box
    centre is responsible for it; when two centres fall in one cell the larger box wins (YOLOv1
    keeps one object per cell).
    """
    n = len(boxes)
    out = torch.zeros((n, grid, grid, 5 + num_classes))
    for i, (bx, lb) in enumerate(zip(boxes, labels)):
        if len(bx) == 0:
            continue
        bx = bx.float().clamp(0.0, 1.0)
        w, h = bx[:, 2] - bx[:, 0], bx[:, 3] - bx[:, 1]
        cx, cy = (bx[:, 0] + bx[:, 2]) / 2, (bx[:, 1] + bx[:, 3]) / 2
        col = (cx * grid).floor().clamp(0, grid - 1).long()
        row = (cy * grid).floor().clamp(0, grid - 1).long()
        # write small boxes first so a larger box in the same cell overwrites them
        for k in torch.argsort(w * h).tolist():
            if w[k] <= 0 or h[k] <= 0:
                continue
            r, c = int(row[k]), int(col[k])
            cell = out[i, r, c]
            cell.zero_()
            cell[0] = cx[k] * grid - c
            cell[1] = cy[k] * grid - r
            cell[2], cell[3] = w[k].sqrt(), h[k].sqrt()
            cell[4] = 1.0
            cell[5 + int(lb[k])] = 1.0
    return out


def cell_boxes(xywh: torch.Tensor) -> torch.Tensor:
    """Cell-relative ``[..., S, S, B, 4]`` (x, y, sqrt_w, sqrt_h) -> normalised xyxy, same shape."""
    s = xywh.shape[-4]
    idx = torch.arange(s, device=xywh.device, dtype=xywh.dtype)
    cx = (xywh[..., 0] + idx.view(1, s, 1)) / s  # column index varies along the second grid axis
    cy = (xywh[..., 1] + idx.view(s, 1, 1)) / s
    w, h = xywh[..., 2] ** 2, xywh[..., 3] ** 2
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def _pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching boxes a[..., 4] and b[..., 4] (xyxy) -> [...]."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter).clamp(min=1e-9)


def split_grid(pred: torch.Tensor, boxes_per_cell: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[..., S, S, B*5 + C] -> (boxes [..., S, S, B, 5], class probs [..., S, S, C])."""
    nb = boxes_per_cell * 5
    return pred[..., :nb].unflatten(-1, (boxes_per_cell, 5)), pred[..., nb:]


def responsible(pred_boxes: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which predictor answers for each object, YOLOv1's rule: the one with the highest IoU.

    pred_boxes [N, S, S, B, 5]; target [N, S, S, 5 + C].
    Returns (mask float [N, S, S, B] = 1 for the responsible predictor of a cell with an
    object, IoU float [N, S, S, B] of every predicted box with its cell's target box).
    """
    xyxy_pred = cell_boxes(pred_boxes[..., :4])  # [N, S, S, B, 4]
    xyxy_true = cell_boxes(target[..., None, :4])  # [N, S, S, 1, 4]
    iou = _pairwise_iou(xyxy_pred, xyxy_true.expand_as(xyxy_pred))
    best = iou.argmax(dim=-1)  # ties -> the first predictor
    mask = F.one_hot(best, pred_boxes.shape[-2]).to(pred_boxes.dtype) * target[..., 4:5]
    return mask, iou


def yolo_loss(pred: torch.Tensor, target: torch.Tensor, boxes_per_cell: int, lambda_coord: float = 5.0,
              lambda_noobj: float = 0.5) -> dict[str, torch.Tensor]:
    """YOLOv1's loss, summed over cells and averaged over the batch.

    pred [N, S, S, B*5 + C] (model output, values 0..1); target [N, S, S, 5 + C] from
    :func:`encode_targets`. Terms:
    - ``loss_coord``: lambda_coord * squared error of x, y, sqrt_w, sqrt_h of responsible predictors;
    - ``loss_obj``: (conf - IoU(pred box, target box))^2 of responsible predictors (IoU detached);
    - ``loss_noobj``: lambda_noobj * conf^2 of every other predictor;
    - ``loss_class``: squared error of the class probabilities in cells holding an object.
    Returns those four and ``loss`` (their sum), each a scalar tensor.
    """
    n = max(pred.shape[0], 1)
    boxes, probs = split_grid(pred, boxes_per_cell)
    resp, iou = responsible(boxes.detach(), target)
    coord = ((boxes[..., :4] - target[..., None, :4]) ** 2).sum(-1)
    conf = boxes[..., 4]
    terms = {
        "loss_coord": lambda_coord * (resp * coord).sum() / n,
        "loss_obj": (resp * (conf - iou.detach()) ** 2).sum() / n,
        "loss_noobj": lambda_noobj * ((1 - resp) * conf ** 2).sum() / n,
        "loss_class": (target[..., 4] * ((probs - target[..., 5:]) ** 2).sum(-1)).sum() / n,
    }
    terms["loss"] = terms["loss_coord"] + terms["loss_obj"] + terms["loss_noobj"] + terms["loss_class"]
    return terms


# --------------------------------------------------------------------------- decoding
def decode_grid(pred: torch.Tensor, boxes_per_cell: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image's grid [S, S, B*5 + C] -> every box of every cell.

    Returns (boxes float [S*S*B, 4] normalised xyxy, conf [S*S*B], class probs [S*S*B, C]);
    rows run over cells in row-major order, then over the B predictors of a cell.
    """
    boxes, probs = split_grid(pred, boxes_per_cell)
    xyxy = cell_boxes(boxes[..., :4])  # [S, S, B, 4]
    b = boxes_per_cell
    c = probs.shape[-1]
    return (xyxy.reshape(-1, 4), boxes[..., 4].reshape(-1),
            probs.unsqueeze(-2).expand(*probs.shape[:-1], b, c).reshape(-1, c))


@functools.lru_cache(maxsize=16)
def _cell_geometry(s: int, width: int, height: int, device: torch.device,
                   dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixel geometry of an S x S grid on a width x height image, for :func:`grid_candidates`.

    Returns (cell size [2] = (width / S, height / S), every cell's top-left corner [S*S, 1, 2] in
    row-major order (cell k: column k % S, row k // S), half the image size [2], the image size [2]).
    """
    size = torch.tensor([width, height], dtype=torch.float64)
    cell = size / s
    k = torch.arange(s * s)
    corner = torch.stack([k % s, k // s], dim=-1).to(torch.float64)[:, None] * cell
    return tuple(t.to(device, dtype) for t in (cell, corner, size / 2, size))


def grid_candidates(pred: torch.Tensor, boxes_per_cell: int, width: int, height: int,
                    score_threshold: float = 0.05) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class-specific candidates of one image before NMS, in pixels.

    pred [S, S, B*5 + C]. Every (box, class) pair whose score conf * p_class is >= the
    threshold is a candidate, as in YOLOv1's test-time scoring. Returns (boxes float [K, 4]
    xyxy pixels clipped to the image, scores [K], labels int64 [K] in 0..C-1), rows in the
    order of :func:`decode_grid` (cell, then predictor), then by class.

    The predictor calls this right after a forward pass, when every library's code and data are
    out of the CPU caches and each distinct call costs 10-50 us instead of 1-5 (measured): so it
    scores first and decodes every box of the grid with a handful of elementwise torch ops (whose
    kernels the forward pass has just used) before picking the candidates, instead of many small
    numpy calls.
    """
    s = pred.shape[0]
    nb = boxes_per_cell * 5
    cells = pred.reshape(s * s, -1)
    boxes = cells[:, :nb].unflatten(-1, (boxes_per_cell, 5))  # [S*S, B, 5]
    scores = boxes[..., 4:5] * cells[:, None, nb:]  # [S*S, B, C]
    cell, b, labels = torch.nonzero(scores >= score_threshold, as_tuple=True)
    cell_size, corner, half_size, size = _cell_geometry(s, int(width), int(height), pred.device, pred.dtype)
    centre = boxes[..., :2] * cell_size + corner
    half = boxes[..., 2:4] * boxes[..., 2:4] * half_size  # sizes are stored as square roots
    px = torch.cat([(centre - half).clamp(min=0), torch.minimum(centre + half, size)], dim=-1)
    return px[cell, b], scores[cell, b, labels], labels

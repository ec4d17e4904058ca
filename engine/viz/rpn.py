"""Inside a two-stage detector: anchors, RPN objectness, proposals around the RPN's NMS, RoI Align vs RoI Pool.

``RcnnInspection(model, image)`` runs a torchvision Faster/Mask R-CNN's first stage once on one
image and answers the teaching views' questions with numpy arrays (the GUI never sees a tensor):

- ``anchors_at(x, y)``: every anchor (all sizes x aspect ratios, every FPN level) whose grid cell
  holds the clicked pixel; torchvision centres a cell's anchors on the cell's top-left corner
  (shift = col * stride), which the view makes visible;
- ``objectness(level)``: sigmoid of the RPN logits, max over the anchors of each cell;
- ``proposals(top_k)``: the RPN's candidates before its NMS (best ``pre_nms_top_n`` per level,
  decoded and clipped) and after it (what the box head receives);
- ``roi_sampling(box)``: where RoI Align samples the feature map (bins, bilinear sampling points)
  versus the integer cells RoI Pool takes a max over, with both 7x7 outputs from torchvision.ops
  and from our own numpy re-implementation (``roi_align_numpy``/``roi_pool_numpy``) to compare.

Coordinates: boxes and points are in ORIGINAL image pixels unless a name says ``_fm`` (feature-map
units, where the value of cell (r, c) sits at (r, c), torchvision's sampling convention; add 0.5
to draw it on an image whose cell r spans [r, r + 1)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.ops import roi_align, roi_pool

__all__ = ["RcnnInspection", "RoiSampling", "bilinear_sample", "roi_align_numpy", "roi_align_points",
           "roi_pool_cells", "roi_pool_numpy"]


# -- pure functions: the two RoI operators, written out ------------------------------------------
def roi_align_points(box_xyxy, spatial_scale: float, output_size: int = 7, sampling_ratio: int = 2,
                     aligned: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where ``torchvision.ops.roi_align`` samples for one box.

    box_xyxy: image pixels; spatial_scale: feature cells per image pixel (1/stride).
    Returns (ys [output_size, gh], xs [output_size, gw], y_edges [output_size + 1],
    x_edges [output_size + 1]) in feature-map units: sample (ph, iy, pw, ix) is at
    (ys[ph, iy], xs[pw, ix]); bin ph spans y_edges[ph]..y_edges[ph + 1]. With sampling_ratio <= 0
    the grid adapts to the box (ceil(roi size / output size) points per bin), as torchvision does.
    """
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) * spatial_scale - offset for v in box_xyxy)
    w, h = x2 - x1, y2 - y1
    if not aligned:  # legacy mode: tiny boxes are forced to one cell
        w, h = max(w, 1.0), max(h, 1.0)
    bin_w, bin_h = w / output_size, h / output_size
    gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(h / output_size))
    gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(w / output_size))
    p = np.arange(output_size, dtype=np.float64)[:, None]
    ys = y1 + p * bin_h + (np.arange(gh)[None, :] + 0.5) * bin_h / max(gh, 1)
    xs = x1 + p * bin_w + (np.arange(gw)[None, :] + 0.5) * bin_w / max(gw, 1)
    edges = np.arange(output_size + 1, dtype=np.float64)
    return ys, xs, y1 + edges * bin_h, x1 + edges * bin_w


def bilinear_sample(feature: np.ndarray, y: float, x: float) -> np.ndarray:
    """Value of feature [C, H, W] at (y, x) with roi_align's rules: zero beyond one cell outside
    the map, clamped to the border inside that margin. Returns [C]."""
    _, height, width = feature.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(feature.shape[0], feature.dtype)
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (hy * hx * feature[:, y_low, x_low] + hy * lx * feature[:, y_low, x_high]
            + ly * hx * feature[:, y_high, x_low] + ly * lx * feature[:, y_high, x_high])


def roi_align_numpy(feature: np.ndarray, box_xyxy, spatial_scale: float, output_size: int = 7,
                    sampling_ratio: int = 2, aligned: bool = False) -> np.ndarray:
    """RoI Align of one box: average of the bilinear samples in each bin -> [C, out, out]."""
    ys, xs, _, _ = roi_align_points(box_xyxy, spatial_scale, output_size, sampling_ratio, aligned)
    out = np.zeros((feature.shape[0], output_size, output_size), np.float64)
    count = max(ys.shape[1] * xs.shape[1], 1)
    for ph in range(output_size):
        for pw in range(output_size):
            acc = np.zeros(feature.shape[0], np.float64)
            for y in ys[ph]:
                for x in xs[pw]:
                    acc += bilinear_sample(feature, float(y), float(x))
            out[:, ph, pw] = acc / count
    return out


def _round_half_away(v: float) -> int:
    """C's round(): halves go away from zero (numpy rounds them to even)."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def roi_pool_cells(box_xyxy, spatial_scale: float, feature_hw: tuple[int, int], output_size: int = 7
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The integer cells ``torchvision.ops.roi_pool`` maxes over: (h_start, h_end, w_start, w_end),
    each int [output_size]; bin (ph, pw) covers rows h_start[ph]:h_end[ph], cols w_start[pw]:w_end[pw]
    (empty when end <= start). The box corners are first rounded to whole cells: the quantization
    that RoI Align removes."""
    height, width = feature_hw
    x1, y1, x2, y2 = (_round_half_away(float(v) * spatial_scale) for v in box_xyxy)
    roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    bin_w, bin_h = roi_w / output_size, roi_h / output_size
    p = np.arange(output_size)
    hs = np.clip(np.floor(p * bin_h).astype(int) + y1, 0, height)
    he = np.clip(np.ceil((p + 1) * bin_h).astype(int) + y1, 0, height)
    ws = np.clip(np.floor(p * bin_w).astype(int) + x1, 0, width)
    we = np.clip(np.ceil((p + 1) * bin_w).astype(int) + x1, 0, width)
    return hs, he, ws, we


def roi_pool_numpy(feature: np.ndarray, box_xyxy, spatial_scale: float, output_size: int = 7) -> np.ndarray:
    """RoI Pool of one box: max over each quantized bin (0 for an empty bin) -> [C, out, out]."""
    hs, he, ws, we = roi_pool_cells(box_xyxy, spatial_scale, feature.shape[1:], output_size)
    out = np.zeros((feature.shape[0], output_size, output_size), feature.dtype)
    for ph in range(output_size):
        for pw in range(output_size):
            if he[ph] > hs[ph] and we[pw] > ws[pw]:
                out[:, ph, pw] = feature[:, hs[ph]:he[ph], ws[pw]:we[pw]].max(axis=(1, 2))
    return out


@dataclass
class RoiSampling:
    """RoI Align vs RoI Pool for one box on one FPN level (see module docstring for units).

    level: FPN level name; stride: image px per feature cell (resized image);
    feature_fm: float32 [h, w] channel-mean of the level's feature map (what the view shows);
    box_fm: the box in feature-map units; align_ys/align_xs, align_y_edges/align_x_edges: see
    ``roi_align_points``; pool_cells: (h_start, h_end, w_start, w_end) from ``roi_pool_cells``;
    align_out / pool_out: float32 [C, 7, 7] from torchvision.ops; align_mean / pool_mean: their
    channel means [7, 7]; align_numpy: our re-implementation of align_out (should match it).
    """

    level: str
    stride: float
    feature_fm: np.ndarray
    box_fm: np.ndarray
    align_ys: np.ndarray
    align_xs: np.ndarray
    align_y_edges: np.ndarray
    align_x_edges: np.ndarray
    pool_cells: tuple
    align_out: np.ndarray
    pool_out: np.ndarray
    align_numpy: np.ndarray

    @property
    def align_mean(self) -> np.ndarray:
        return self.align_out.mean(axis=0)

    @property
    def pool_mean(self) -> np.ndarray:
        return self.pool_out.mean(axis=0)


# -- one image through the first stage -----------------------------------------------------------
class RcnnInspection:
    """The first stage of a torchvision Faster/Mask R-CNN on one image, kept for cheap questions.

    model: torchvision ``FasterRCNN``/``MaskRCNN`` (put in eval mode here); image: uint8 RGB
    [H, W, 3]. The constructor does the expensive part (backbone + RPN head); every method after
    that is a few milliseconds, fit for mouse clicks.
    """

    @torch.inference_mode()
    def __init__(self, model, image: np.ndarray) -> None:
        self.model = model.eval()
        self.image = np.ascontiguousarray(image)
        device = next(model.parameters()).device
        tensor = torch.from_numpy(self.image).to(device).permute(2, 0, 1).float().div_(255.0)
        self.images, _ = model.transform([tensor])
        self.features = model.backbone(self.images.tensors)
        self.level_names = list(self.features.keys())
        feats = list(self.features.values())
        rpn = model.rpn
        self._objectness, deltas = rpn.head(feats)
        anchors = rpn.anchor_generator(self.images, feats)[0]
        self.num_anchors_per_level = [int(o[0].numel()) for o in self._objectness]
        self.anchors_per_cell = [int(o.shape[1]) for o in self._objectness]
        obj_flat, deltas_flat = concat_box_prediction_layers(self._objectness, deltas)
        self._obj_flat = obj_flat.view(1, -1)
        self._decoded = rpn.box_coder.decode(deltas_flat, [anchors]).view(1, -1, 4)
        self._anchors = anchors
        pad_h, pad_w = self.images.tensors.shape[-2:]
        self.strides = [(pad_h / f.shape[-2], pad_w / f.shape[-1]) for f in feats]
        rh, rw = self.images.image_sizes[0]
        self.scale_yx = (rh / self.image.shape[0], rw / self.image.shape[1])  # resized px per original px
        self.sizes = [tuple(s) for s in rpn.anchor_generator.sizes]
        self.aspect_ratios = [tuple(r) for r in rpn.anchor_generator.aspect_ratios]

    # -- coordinate frames ------------------------------------------------------------------------
    def _to_original(self, boxes: torch.Tensor) -> np.ndarray:
        sy, sx = self.scale_yx
        return (boxes.cpu().numpy().astype(np.float32) / np.array([sx, sy, sx, sy], np.float32))

    def level_rect(self, level: str) -> tuple[float, float, float, float]:
        """(x, y, width, height) in original px that the level's map [h, w] covers (padding included)."""
        i = self.level_names.index(level)
        h, w = self.features[level].shape[-2:]
        sh, sw = self.strides[i]
        sy, sx = self.scale_yx
        return 0.0, 0.0, w * sw / sx, h * sh / sy

    # -- anchors ----------------------------------------------------------------------------------
    def anchors_at(self, x: float, y: float) -> list[dict]:
        """Anchors of the cell holding original pixel (x, y), one dict per FPN level:
        {"level", "stride" (resized px), "cell": (row, col), "boxes": float32 [A, 4] original px,
        "sizes", "aspect_ratios"}; A = len(sizes) * len(aspect_ratios) of that level."""
        sy, sx = self.scale_yx
        out, start = [], 0
        for i, name in enumerate(self.level_names):
            h, w = self.features[name].shape[-2:]
            a = self.anchors_per_cell[i]
            level = self._anchors[start:start + self.num_anchors_per_level[i]].view(h, w, a, 4)
            start += self.num_anchors_per_level[i]
            sh, sw = self.strides[i]
            row = int(min(max(y * sy // sh, 0), h - 1))
            col = int(min(max(x * sx // sw, 0), w - 1))
            out.append({"level": name, "stride": float(sh), "cell": (row, col),
                        "boxes": self._to_original(level[row, col]), "sizes": self.sizes[i],
                        "aspect_ratios": self.aspect_ratios[i]})
        return out

    # -- objectness -------------------------------------------------------------------------------
    def objectness(self, level: str) -> np.ndarray:
        """float32 [h, w]: per cell, the highest objectness probability over its anchors."""
        logits = self._objectness[self.level_names.index(level)][0]  # [A, h, w]
        return torch.sigmoid(logits).amax(dim=0).cpu().numpy().astype(np.float32)

    # -- proposals --------------------------------------------------------------------------------
    @torch.inference_mode()
    def proposals(self, top_k: int | None = None) -> dict:
        """RPN candidates before and after its NMS, best first.

        Returns {"before_nms": {"boxes" [K, 4], "scores" [K], "levels" [K] (index into
        level_names)}, "after_nms": {"boxes", "scores"}, "nms_iou": float}; scores are objectness
        probabilities, boxes original px; each list cut to ``top_k`` when given.
        """
        rpn = self.model.rpn
        idx = rpn._get_top_n_idx(self._obj_flat, self.num_anchors_per_level)[0]
        levels = torch.cat([torch.full((n,), i) for i, n in enumerate(self.num_anchors_per_level)])
        boxes = self._decoded[0, idx]
        h, w = self.images.image_sizes[0]
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        scores = torch.sigmoid(self._obj_flat[0, idx])
        order = torch.argsort(scores, descending=True)[:top_k]
        after_boxes, after_scores = rpn.filter_proposals(self._decoded.clone(), self._obj_flat.clone(),
                                                         self.images.image_sizes, self.num_anchors_per_level)
        after_order = torch.argsort(after_scores[0], descending=True)[:top_k]
        return {"before_nms": {"boxes": self._to_original(boxes[order]),
                               "scores": scores[order].cpu().numpy().astype(np.float32),
                               "levels": levels[idx][order].cpu().numpy()},
                "after_nms": {"boxes": self._to_original(after_boxes[0][after_order]),
                              "scores": after_scores[0][after_order].cpu().numpy().astype(np.float32)},
                "nms_iou": float(rpn.nms_thresh)}

    # -- RoI Align vs RoI Pool ----------------------------------------------------------------------
    def level_for_box(self, box_xyxy) -> str:
        """The FPN level the box head pools this box from (torchvision's LevelMapper rule:
        k = floor(4 + log2(sqrt(area) / 224)), clamped to the pooled levels)."""
        pooled = list(self.model.roi_heads.box_roi_pool.featmap_names)
        sy, sx = self.scale_yx
        x1, y1, x2, y2 = box_xyxy
        size = math.sqrt(max((x2 - x1) * sx * (y2 - y1) * sy, 1e-6))
        k_of = {n: round(math.log2(self.strides[self.level_names.index(n)][0])) for n in pooled}
        k_min, k_max = min(k_of.values()), max(k_of.values())
        k = int(min(max(math.floor(4 + math.log2(size / 224) + 1e-6), k_min), k_max))
        return next(n for n in pooled if k_of[n] == k)

    @torch.inference_mode()
    def roi_sampling(self, box_xyxy, level: str | None = None, output_size: int = 7,
                     sampling_ratio: int = 2, aligned: bool = False) -> RoiSampling:
        """RoI Align and RoI Pool of one box (original px) on ``level`` (default: the level the
        model would use). aligned=False is what torchvision's MultiScaleRoIAlign uses."""
        level = level or self.level_for_box(box_xyxy)
        i = self.level_names.index(level)
        feat = self.features[level][0].float()  # [C, h, w]
        sy, sx = self.scale_yx
        box = torch.tensor([[float(box_xyxy[0]) * sx, float(box_xyxy[1]) * sy,
                             float(box_xyxy[2]) * sx, float(box_xyxy[3]) * sy]], device=feat.device)
        scale = 1.0 / self.strides[i][0]
        rois = torch.cat([torch.zeros(1, 1, device=feat.device), box], dim=1)
        align = roi_align(feat[None], rois, output_size, scale, sampling_ratio, aligned)[0]
        pooled = roi_pool(feat[None], rois, output_size, scale)[0]
        feat_np = feat.cpu().numpy()
        box_r = box[0].cpu().numpy()
        ys, xs, y_edges, x_edges = roi_align_points(box_r, scale, output_size, sampling_ratio, aligned)
        return RoiSampling(
            level=level, stride=float(self.strides[i][0]), feature_fm=feat_np.mean(axis=0),
            box_fm=(box_r * scale).astype(np.float32), align_ys=ys, align_xs=xs,
            align_y_edges=y_edges, align_x_edges=x_edges,
            pool_cells=roi_pool_cells(box_r, scale, feat_np.shape[1:], output_size),
            align_out=align.cpu().numpy(), pool_out=pooled.cpu().numpy(),
            align_numpy=roi_align_numpy(feat_np, box_r, scale, output_size, sampling_ratio,
                                        aligned).astype(np.float32))


def inspection_job(token, source, image, device: str = "cpu"):
    """Job: open ``source`` (a fasterrcnn/maskrcnn checkpoint path, or a predictor with ``.model``)
    and run the first stage on ``image`` (any array ``RcnnPredictor`` accepts). Returns an
    :class:`RcnnInspection`; the GUI calls its cheap methods afterwards."""
    from engine.infer.rcnn_predictor import RcnnPredictor, as_rgb_uint8
    from engine.jobs.events import Progress

    yield Progress(0, 2, "loading the detector")
    predictor = source if hasattr(source, "model") else RcnnPredictor.from_checkpoint(source, device)
    rgb = as_rgb_uint8(image)
    token.raise_if_cancelled()
    yield Progress(1, 2, "running the backbone and the RPN")
    inspection = RcnnInspection(predictor.model, rgb)
    yield Progress(2, 2, "done")
    return inspection

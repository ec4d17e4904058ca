"""Run a torchvision single-stage detector (RetinaNet, FCOS, SSDlite) behind the common interface.

These models score anchors (or points) directly: no proposals, no RoI head. Their
``postprocess_detections`` keeps, per FPN level, the ``topk_candidates`` best scores above
``score_thresh``, decodes the boxes, then runs class-wise NMS at ``nms_thresh`` and keeps the
best ``detections_per_img``. The candidates before the final NMS (what the NMS view steps
through) are what it returns with the NMS switched off (IoU threshold 1.0, no top-k); ``predict``
runs ``batched_nms`` on them at the requested IoU. With the model's own thresholds this gives
exactly what the bare model returns (tested).
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torchvision.ops import batched_nms

from engine.device import pick_device
from engine.infer.detections import Detections, RawCandidates
from engine.infer.rcnn_predictor import as_rgb_uint8
from engine.infer.thresholds import DEFAULT_NMS_IOU, DEFAULT_SCORE_THRESHOLD

__all__ = ["SingleStagePredictor"]


class SingleStagePredictor:
    """model: a torchvision ``RetinaNet``/``FCOS``/``SSD`` whose labels are 1..C (0 = background,
    never predicted); class_names: the C names, ``Detections.labels`` = model label - 1."""

    has_masks = False

    def __init__(self, model, class_names, name: str = "detector", device="auto") -> None:
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.class_names = list(class_names)
        self.name = name
        self._latency = 0.0
        self.meta: dict = {}

    def _candidates(self, image, score_threshold: float):
        """(boxes [K, 4] xyxy original pixels, scores [K], labels [K] 1..C) before the final NMS."""
        rgb = as_rgb_uint8(image)
        tensor = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1).float().div_(255.0)
        model = self.model
        saved = model.score_thresh, model.nms_thresh, model.detections_per_img
        # torchvision keeps scores > thresh (float32); every detector here keeps scores >= threshold
        floor = float(np.nextafter(np.float32(score_threshold), np.float32(-np.inf)))
        try:
            model.score_thresh, model.nms_thresh, model.detections_per_img = floor, 1.0, 10**9
            out = model([tensor])[0]
        finally:
            model.score_thresh, model.nms_thresh, model.detections_per_img = saved
        return out["boxes"], out["scores"], out["labels"]

    @torch.inference_mode()
    def raw_candidates(self, image_rgb_uint8, score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> RawCandidates:
        t0 = time.perf_counter()
        boxes, scores, labels = self._candidates(image_rgb_uint8, score_threshold)
        out = RawCandidates(boxes.cpu().numpy(), scores.cpu().numpy(), (labels - 1).cpu().numpy())
        self._latency = (time.perf_counter() - t0) * 1e3
        return out

    @torch.inference_mode()
    def predict(self, image_rgb_uint8, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                nms_iou: float = DEFAULT_NMS_IOU, max_detections: int | None = None) -> Detections:
        """Class-wise NMS at ``nms_iou`` of the candidates, the best ``max_detections`` kept
        (None: the model's ``detections_per_img``)."""
        t0 = time.perf_counter()
        boxes, scores, labels = self._candidates(image_rgb_uint8, score_threshold)
        top = self.model.detections_per_img if max_detections is None else int(max_detections)
        keep = batched_nms(boxes, scores, labels, float(nms_iou))[:top]
        out = Detections(boxes[keep].cpu().numpy(), scores[keep].cpu().numpy(), (labels[keep] - 1).cpu().numpy(),
                         self.class_names)
        self._latency = (time.perf_counter() - t0) * 1e3
        return out

    @property
    def last_latency_ms(self) -> float:
        return self._latency

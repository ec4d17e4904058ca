"""Run our YOLO on one image: the grid, the candidates before NMS, and the final detections.

Pipeline: resize to the square network input (as YOLOv1, no letterbox: the grid is relative to
the image, so boxes scale back per axis) -> normalise -> YoloGridNet -> the S x S grid ->
class-specific candidates (conf * p_class >= score floor) -> ``batched_nms`` (class-wise) -> the
best ``max_detections``. The grid itself is kept (``last_grid``) for the grid view.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.ops import batched_nms

from engine.device import pick_device
from engine.infer.detections import Detections, RawCandidates
from engine.infer.onnx_yolo import DetectorLoadError
from engine.infer.rcnn_predictor import as_rgb_uint8
from engine.infer.thresholds import DEFAULT_NMS_IOU, DEFAULT_SCORE_THRESHOLD, YOLO_MAX_DETECTIONS
from engine.models.backbones import INPUT_MEAN, INPUT_STD
from engine.models.yolo import CPU_PRESET, build_yolo, grid_candidates

__all__ = ["YoloPredictor"]


class YoloPredictor:
    """Our YOLO behind the common ``DetectorPredictor`` interface.

    model: a ``YoloGridNet``; class_names: its C names (``Detections.labels`` index them);
    input_size: side of the square network input in pixels.
    """

    def __init__(self, model, class_names, input_size: int, name: str = "yolo", device="auto",
                 max_detections: int = YOLO_MAX_DETECTIONS) -> None:
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.class_names = list(class_names)
        self.input_size = int(input_size)
        self.name = name
        self.max_detections = int(max_detections)
        self.boxes_per_cell = int(model.boxes_per_cell)
        self.meta: dict = {}
        self._last_grid: torch.Tensor | None = None  # float32 [S, S, B*5 + C] of the last image
        self._latency = 0.0

    @classmethod
    def from_checkpoint(cls, path, device="auto") -> "YoloPredictor":
        """Load a Visionbench "yolo" checkpoint; DetectorLoadError naming the file and field."""
        from engine.models.checkpoint import CheckpointError, load_checkpoint

        path = Path(path)
        try:
            state, meta = load_checkpoint(path)
        except CheckpointError as exc:
            raise DetectorLoadError(str(exc)) from exc
        if meta.get("family") != "yolo":
            raise DetectorLoadError(f"{path}: field 'family' is {meta.get('family')!r}, not 'yolo'")
        classes = meta["classes"]
        if not isinstance(classes, list) or not classes:
            raise DetectorLoadError(f"{path}: field 'classes' must be a non-empty list of names")
        # every weight comes from the checkpoint: skip reading the ImageNet file
        config = {**CPU_PRESET, **dict(meta.get("config") or {}), "pretrained": False}
        try:
            model = build_yolo(config, len(classes))
            model.load_state_dict(state, strict=True)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0][:300]
            raise DetectorLoadError(f"{path}: field 'state_dict' does not fit a yolo model built from the "
                                    f"checkpoint's config ({first})") from exc
        predictor = cls(model, classes, int(config["input_size"]), name=f"yolo:{path.name}", device=device,
                        max_detections=int(config.get("max_detections", YOLO_MAX_DETECTIONS)))
        predictor.meta = meta
        return predictor

    # -- the pipeline -------------------------------------------------------------------------
    def preprocess(self, image) -> tuple[torch.Tensor, tuple[int, int]]:
        """uint8 RGB [H, W, 3] -> (network input float [1, 3, in, in], (H, W))."""
        rgb = as_rgb_uint8(image)
        h, w = rgb.shape[:2]
        # one OpenCV call: bilinear resize of the uint8 image, then (pixel - mean) / std into a
        # float32 NCHW blob (equal to resize + normalise in numpy, measured 0.1 ms cheaper per image)
        n = self.input_size
        x = cv2.dnn.blobFromImage(rgb, 1.0 / INPUT_STD, (n, n), (INPUT_MEAN,) * 3, False, False)
        return torch.from_numpy(x).to(self.device), (h, w)

    def _grid(self, image) -> tuple[torch.Tensor, tuple[int, int]]:
        x, hw = self.preprocess(image)
        self._last_grid = self.model(x)[0].float()
        return self._last_grid, hw

    @property
    def last_grid(self) -> np.ndarray | None:
        """The grid of the last image run, float32 [S, S, B*5 + C] (None before the first)."""
        return None if self._last_grid is None else self._last_grid.cpu().numpy()

    @torch.inference_mode()
    def grid(self, image) -> np.ndarray:
        """The raw grid of one image: float32 [S, S, B*5 + C] (see ``engine.models.yolo``)."""
        t0 = time.perf_counter()
        self._grid(image)
        self._latency = (time.perf_counter() - t0) * 1e3
        return self.last_grid

    @torch.inference_mode()
    def raw_candidates(self, image_rgb_uint8, score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> RawCandidates:
        """Every (box, class) with conf * p_class >= ``score_threshold``, before NMS.

        boxes float32 [K, 4] xyxy pixels of the original image; labels 0..C-1.
        """
        t0 = time.perf_counter()
        grid, (h, w) = self._grid(image_rgb_uint8)
        out = RawCandidates(*(t.cpu().numpy() for t in grid_candidates(grid, self.boxes_per_cell, w, h,
                                                                           score_threshold)))
        self._latency = (time.perf_counter() - t0) * 1e3
        return out

    @torch.inference_mode()
    def predict(self, image_rgb_uint8, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                nms_iou: float = DEFAULT_NMS_IOU, max_detections: int | None = None) -> Detections:
        """Final detections: class-wise NMS at ``nms_iou`` of the raw candidates, the best
        ``max_detections`` kept (None: the checkpoint's), highest score first."""
        t0 = time.perf_counter()
        grid, (h, w) = self._grid(image_rgb_uint8)
        boxes, scores, labels = grid_candidates(grid, self.boxes_per_cell, w, h, score_threshold)
        top = self.max_detections if max_detections is None else int(max_detections)
        keep = batched_nms(boxes, scores, labels, float(nms_iou))[:top]
        out = Detections(boxes[keep].cpu().numpy(), scores[keep].cpu().numpy(), labels[keep].cpu().numpy(),
                         self.class_names)
        self._latency = (time.perf_counter() - t0) * 1e3
        return out

    @property
    def last_latency_ms(self) -> float:
        return self._latency

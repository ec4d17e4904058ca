"""Our own detectors exported with ``visionbench export-model --format onnx``, opened again as
detectors (compare view, NMS view, predict), beside Ultralytics exports.

The file says what it is in its metadata (key ``visionbench``: family, kind, classes, input);
engine.infer.deploy describes the inputs and outputs. The model's NMS is inside the graph, so its
"raw candidates" are its final detections; a lower ``nms_iou`` than the model's is applied again
on them, a higher one cannot bring back what the graph suppressed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

from engine.infer.detections import Detections, RawCandidates
from engine.infer.onnx_yolo import DetectorLoadError, _providers
from engine.infer.thresholds import DEFAULT_NMS_IOU, DEFAULT_SCORE_THRESHOLD

__all__ = ["OnnxExportDetector", "export_metadata", "letterbox"]


def letterbox(rgb: np.ndarray, size: tuple[int, int], pad: list[float]) -> tuple[np.ndarray, tuple[int, int]]:
    """``rgb`` uint8 [h, w, 3] as the float32 [3, H, W] input (RGB / 255) of a fixed-size R-CNN
    export: scaled by min(H / h, W / w) the way torchvision's transform scales (bilinear, the
    size floored), at the top left, the rest ``pad`` (the model's mean colour). Returns the input
    and the scaled picture's (height, width) inside it."""
    import torch
    import torch.nn.functional as F

    H, W = int(size[0]), int(size[1])
    h, w = rgb.shape[:2]
    scale = min(H / h, W / w)
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255.0)
    y = F.interpolate(x[None], scale_factor=scale, mode="bilinear", recompute_scale_factor=True,
                      align_corners=False)[0, :, :H, :W]
    out = np.empty((3, H, W), np.float32)
    out[:] = np.asarray(pad, np.float32)[:, None, None]
    nh, nw = y.shape[-2:]
    out[:, :nh, :nw] = y.numpy()
    return out, (int(nh), int(nw))


def export_metadata(session) -> dict | None:
    """The ``visionbench`` metadata of an onnxruntime session's model, or None."""
    text = (session.get_modelmeta().custom_metadata_map or {}).get("visionbench")
    if not text:
        return None
    try:
        meta = json.loads(text)
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


class OnnxExportDetector:
    def __init__(self, path, session, meta: dict) -> None:
        self.path = Path(path)
        self.session = session
        self.meta = meta
        if meta.get("kind") not in ("detection", "instance"):
            raise DetectorLoadError(f"{self.path}: metadata field 'kind' is {meta.get('kind')!r}, not a detector")
        self.class_names = [str(c) for c in meta.get("classes") or []]
        self.family = str(meta.get("family"))
        self.name = f"onnx:{self.path.name}"
        self.letterbox = meta.get("resize") == "letterbox"  # R-CNN: one fixed H x W
        self.input_size = meta.get("input_size") or None
        self.has_masks = len(session.get_outputs()) >= 4
        self._latency = 0.0

    @classmethod
    def open(cls, path, device: str = "auto"):
        """The detector when ``path`` is one of our exports, else None (an Ultralytics file)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=_providers(device))
        except Exception:  # noqa: BLE001 - the Ultralytics loader then gives its own clear message
            return None
        meta = export_metadata(session)
        return None if meta is None else cls(path, session, meta)

    def _run(self, rgb: np.ndarray):
        h, w = rgb.shape[:2]
        if self.letterbox:
            return self._run_letterboxed(rgb)
        if self.input_size:  # YOLO: the graph takes the resized network input
            s = int(self.input_size)
            x = cv2.resize(rgb, (s, s), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
            out = self.session.run(None, {"image": x.transpose(2, 0, 1)[None]})
            out[0] = out[0] * np.array([w / s, h / s, w / s, h / s], np.float32)
        else:
            x = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0
            out = self.session.run(None, {"image": x})
        boxes, labels, scores = out[0], out[1].astype(np.int64) - 1, out[2]
        masks = out[3][:, 0] > 0.5 if self.has_masks and len(out) > 3 else None
        return boxes, scores, labels, masks

    def _run_letterboxed(self, rgb: np.ndarray):
        """An R-CNN export of one fixed size: the picture letterboxed into it, boxes and masks
        mapped back (per axis, as torchvision's postprocess does) and clipped to the picture."""
        h, w = rgb.shape[:2]
        x, (nh, nw) = letterbox(rgb, self.input_size, self.meta.get("pad_value") or [0.0, 0.0, 0.0])
        out = self.session.run(None, {"image": x})
        boxes = out[0] * np.array([w / nw, h / nh, w / nw, h / nh], np.float32)
        boxes = np.clip(boxes, 0, np.array([w, h, w, h], np.float32)).astype(np.float32)
        labels, scores = out[1].astype(np.int64) - 1, out[2]
        masks = None
        if self.has_masks and len(out) > 3:
            probs = out[3][:, 0, :nh, :nw]
            masks = np.zeros((len(probs), h, w), bool)
            for k, p in enumerate(probs):
                masks[k] = cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
        return boxes, scores, labels, masks

    def raw_candidates(self, image_rgb_uint8: np.ndarray,
                       score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> RawCandidates:
        t0 = time.perf_counter()
        boxes, scores, labels, _ = self._run(np.asarray(image_rgb_uint8))
        keep = scores >= score_threshold
        self._latency = (time.perf_counter() - t0) * 1e3
        return RawCandidates(boxes[keep], scores[keep], labels[keep])

    def predict(self, image_rgb_uint8: np.ndarray, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                nms_iou: float = DEFAULT_NMS_IOU, max_detections: int | None = None) -> Detections:
        import torch
        from torchvision.ops import batched_nms

        t0 = time.perf_counter()
        boxes, scores, labels, masks = self._run(np.asarray(image_rgb_uint8))
        keep = np.flatnonzero(scores >= score_threshold)
        if keep.size and nms_iou < DEFAULT_NMS_IOU:
            kept = batched_nms(torch.from_numpy(boxes[keep]), torch.from_numpy(scores[keep]),
                               torch.from_numpy(labels[keep]), float(nms_iou)).numpy()
            keep = keep[kept]
        keep = keep[np.argsort(-scores[keep], kind="stable")]
        if max_detections is not None:
            keep = keep[: int(max_detections)]
        out = Detections(boxes[keep], scores[keep], labels[keep], self.class_names,
                         masks=masks[keep] if masks is not None else None)
        self._latency = (time.perf_counter() - t0) * 1e3
        return out

    @property
    def last_latency_ms(self) -> float:
        return self._latency

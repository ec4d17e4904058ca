"""Run YOLO detectors that users exported to ONNX with Ultralytics (``yolo export format=onnx``).

Three output layouts exist and are told apart from the model's output shape (and the class
count in the metadata, when present):
- raw ``[1, 4 + nc, A]``: for each of A anchors cx, cy, w, h (input pixels) then nc class scores
  (already sigmoid). Needs NMS: we take the best class per anchor, drop scores below ``conf``,
  and run ``torchvision.ops.batched_nms`` (class-wise, like Ultralytics' default).
- end-to-end ``[1, D, 6]`` (``nms=True`` exports, YOLOv10/YOLO26 heads): D rows of
  x1, y1, x2, y2 (input pixels), score, class; no NMS needed.
- YOLOv5 ``[1, A, 5 + nc]``: cx, cy, w, h, objectness, class probabilities per anchor; the
  score is objectness * class probability, then NMS as for raw.

Preprocessing is Ultralytics' letterbox: scale to fit the model's square-or-not input keeping
the aspect ratio, pad the rest with grey 114 split evenly on both sides, RGB, /255, NCHW float32.
Boxes are mapped back to pixels of the original image and clipped to it.

Class names come from the model's metadata ``names`` (Ultralytics writes a Python dict literal
like ``{0: 'person', 1: 'bicycle'}``), otherwise ``class_0..class_{nc-1}``.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.infer.detections import Detections, RawCandidates
from engine.infer.thresholds import ONNX_MAX_DETECTIONS

__all__ = ["DetectorLoadError", "Letterbox", "OnnxYoloDetector", "letterbox"]

PAD_VALUE = 114
_DEFAULT_SIZE = 640


class DetectorLoadError(ValueError):
    """The file is not a usable detector; the message names the file and what was expected."""


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the model input: input = original * scale + (pad_x, pad_y)."""

    scale: float
    pad_x: int
    pad_y: int

    def to_original(self, boxes_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
        """Map float [N, 4] xyxy boxes from model-input pixels to original pixels, clipped."""
        out = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
        return out


def letterbox(image: np.ndarray, size_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Fit uint8 RGB [H, W, 3] into ``size_hw`` keeping the aspect ratio, pad grey 114.

    Returns (uint8 [h_in, w_in, 3], Letterbox). Padding is split evenly (odd pixel at the
    bottom/right), the same rounding Ultralytics uses, so exported models see what they trained on.
    """
    h, w = image.shape[:2]
    h_in, w_in = size_hw
    scale = min(h_in / h, w_in / w)
    new_w, new_h = int(round(w * scale)), int(round(h * scale))
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (w_in - new_w) / 2, (h_in - new_h) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                value=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    return padded, Letterbox(scale=scale, pad_x=left, pad_y=top)


def _as_rgb_uint8(image, what: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{what}: expected an RGB array [H, W, 3] (or gray [H, W]), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"{what}: expected dtype uint8 (0..255), got {arr.dtype}")
    return np.ascontiguousarray(arr[:, :, :3])


def _parse_names(text: str | None) -> list[str] | None:
    """Ultralytics ``names`` metadata (dict or list literal) -> list ordered by class index."""
    if not text:
        return None
    try:
        value = ast.literal_eval(text)  # literal_eval: never executes code from the file
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, dict):
        try:
            return [str(value[k]) for k in sorted(value, key=int)]
        except (TypeError, ValueError):
            return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return None


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = {"auto": ["CUDAExecutionProvider", "CoreMLExecutionProvider"],
              "cuda": ["CUDAExecutionProvider"], "mps": ["CoreMLExecutionProvider"], "cpu": []}
    if device not in wanted:
        raise ValueError(f"device {device!r} is not one of auto, cpu, cuda, mps")
    if device in ("cuda", "mps") and not any(p in available for p in wanted[device]):
        raise ValueError(f"device {device!r} was requested but onnxruntime offers only {available}")
    return [p for p in wanted[device] if p in available] + ["CPUExecutionProvider"]


class OnnxYoloDetector:
    """A user's Ultralytics YOLO ONNX detector.

    ``predict(image)`` -> Detections in original-image pixels; ``raw_candidates(image)`` -> the
    candidates before NMS (for the NMS view). ``last_timing`` holds the last call's
    preprocess/inference/postprocess milliseconds; ``latency_ms`` their sum.
    """

    def __init__(self, path, conf: float = 0.25, iou: float = 0.7, max_det: int = ONNX_MAX_DETECTIONS,
                 device: str = "auto", threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        self.conf, self.iou, self.max_det = float(conf), float(iou), int(max_det)
        if not self.path.is_file():
            raise DetectorLoadError(f"{self.path}: file not found")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # our own messages say what is wrong
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options,
                                                providers=_providers(device))
        except Exception as exc:  # onnxruntime raises several private exception types
            raise DetectorLoadError(f"{self.path}: not a readable ONNX model "
                                    f"({type(exc).__name__}: {str(exc).strip()[:200]})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        task = meta.get("task")
        if task and task != "detect":
            raise DetectorLoadError(f"{self.path}: metadata says task '{task}'; expected a YOLO "
                                    f"'detect' model")
        self._read_input(meta)
        self._read_output(meta)
        self.last_timing: dict[str, float] = {}

    # -- model inspection ---------------------------------------------------------------------
    def _read_input(self, meta: dict) -> None:
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [i.shape for i in inputs]
            raise DetectorLoadError(f"{self.path}: inputs {shapes}; expected one image input "
                                    f"[1, 3, height, width]")
        inp = inputs[0]
        if isinstance(inp.shape[1], int) and inp.shape[1] != 3:
            raise DetectorLoadError(f"{self.path}: input '{inp.name}' has {inp.shape[1]} channels; "
                                    f"expected 3 (RGB) in [1, 3, height, width]")
        if "float" not in inp.type:
            raise DetectorLoadError(f"{self.path}: input '{inp.name}' is {inp.type}; expected float")
        self.input_name = inp.name
        self._input_dtype = np.float16 if "float16" in inp.type else np.float32
        h, w = inp.shape[2], inp.shape[3]
        if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
            # Dynamic input: use the size the model was exported for, if recorded.
            size = None
            try:
                size = ast.literal_eval(meta.get("imgsz", "None"))
            except (ValueError, SyntaxError):
                pass
            if isinstance(size, int):
                size = [size, size]
            h, w = (size if isinstance(size, (list, tuple)) and len(size) == 2
                    else (_DEFAULT_SIZE, _DEFAULT_SIZE))
        self.input_size = (int(h), int(w))

    def _read_output(self, meta: dict) -> None:
        out = self.session.get_outputs()[0]
        shape = list(out.shape)
        self.output_name = out.name
        if any(not isinstance(d, int) for d in shape):
            # Dynamic dims: ask the model once (also warms it up).
            dummy = np.full((1, 3, *self.input_size), PAD_VALUE / 255, self._input_dtype)
            shape = list(self.session.run([out.name], {self.input_name: dummy})[0].shape)
        names = _parse_names(meta.get("names"))
        expected = ("expected a YOLO detector output [1, 4+classes, anchors] (YOLOv8/11), "
                    "[1, anchors, 5+classes] (YOLOv5) or [1, detections, 6] (end-to-end)")
        if len(shape) != 3 or shape[0] != 1:
            raise DetectorLoadError(f"{self.path}: output '{out.name}' has shape {shape}; {expected}")
        self.layout, nc = self._layout(shape[1], shape[2], len(names) if names else None)
        if self.layout is None:
            hint = (f" (metadata names {len(names)} classes; a segmentation or pose model?)"
                    if names else "")
            raise DetectorLoadError(f"{self.path}: output '{out.name}' has shape {shape}{hint}; "
                                    f"{expected}")
        if names is None:
            names = [f"class_{i}" for i in range(nc)]
        self.class_names: list[str] = names

    @staticmethod
    def _layout(rows: int, cols: int, nc: int | None) -> tuple[str | None, int]:
        """Name the output layout of a [1, rows, cols] output; nc: classes named in metadata.

        Anchors vastly outnumber classes in real exports, which separates [1, 4+nc, A] from
        [1, A, 5+nc] when the metadata does not give the class count.
        """
        if cols == 6 and (nc is None or rows != 4 + nc):
            return "end2end", nc or 0
        if rows >= 5 and (rows == 4 + nc if nc else rows < cols):
            return "raw", rows - 4
        if cols >= 7 and (cols == 5 + nc if nc else cols < rows):
            return "yolov5", cols - 5
        return None, 0

    # -- running ------------------------------------------------------------------------------
    def _forward(self, image) -> tuple[np.ndarray, Letterbox, tuple[int, int], float]:
        """Letterbox + run. Returns (output[0] as float32, letterbox, (H, W), t_start)."""
        t0 = time.perf_counter()
        rgb = _as_rgb_uint8(image)
        padded, box = letterbox(rgb, self.input_size)
        blob = (padded.transpose(2, 0, 1)[None].astype(np.float32) / 255.0).astype(self._input_dtype)
        t1 = time.perf_counter()
        out = self.session.run([self.output_name], {self.input_name: blob})[0]
        t2 = time.perf_counter()
        self.last_timing = {"preprocess_ms": (t1 - t0) * 1e3, "inference_ms": (t2 - t1) * 1e3}
        return np.asarray(out[0], dtype=np.float32), box, rgb.shape[:2], t2

    def _candidates(self, out, box: Letterbox, hw, conf: float):
        h, w = hw
        if self.layout == "raw":
            pred = out.T  # [A, 4 + nc]
            cls_scores = pred[:, 4:]
            labels = cls_scores.argmax(axis=1)
            scores = cls_scores[np.arange(len(pred)), labels]
            keep = scores >= conf
            cx, cy, bw, bh = pred[keep, :4].T
            boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
            return box.to_original(boxes, w, h), scores[keep], labels[keep]
        if self.layout == "yolov5":
            # rows: cx, cy, w, h, objectness, class probabilities; score = obj * class prob
            cls_scores = out[:, 5:] * out[:, 4:5]
            labels = cls_scores.argmax(axis=1)
            scores = cls_scores[np.arange(len(out)), labels]
            keep = scores >= conf
            cx, cy, bw, bh = out[keep, :4].T
            boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
            return box.to_original(boxes, w, h), scores[keep], labels[keep]
        keep = out[:, 4] >= conf
        rows = out[keep]
        return box.to_original(rows[:, :4], w, h), rows[:, 4], rows[:, 5].round().astype(np.int64)

    def raw_candidates(self, image, conf: float | None = None) -> RawCandidates:
        """Candidates before NMS with score >= ``conf`` (default: the detector's ``conf``).

        For end-to-end models the model has no NMS stage; its rows are returned as they are.
        """
        out, box, hw, t2 = self._forward(image)
        boxes, scores, labels = self._candidates(out, box, hw, self.conf if conf is None else conf)
        self.last_timing["postprocess_ms"] = (time.perf_counter() - t2) * 1e3
        self._name_unknown_classes(labels)
        return RawCandidates(boxes, scores, labels)

    def predict(self, image) -> Detections:
        """Detections of one uint8 RGB image [H, W, 3], boxes xyxy in its pixels."""
        out, box, hw, t2 = self._forward(image)
        boxes, scores, labels = self._candidates(out, box, hw, self.conf)
        if self.layout != "end2end" and len(boxes):
            import torch
            from torchvision.ops import batched_nms

            keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores.astype(np.float32)),
                               torch.from_numpy(labels.astype(np.int64)), self.iou).numpy()
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        order = np.argsort(-scores, kind="stable")[: self.max_det]
        self.last_timing["postprocess_ms"] = (time.perf_counter() - t2) * 1e3
        self._name_unknown_classes(labels)
        return Detections(boxes[order], scores[order], labels[order], list(self.class_names))

    def _name_unknown_classes(self, labels: np.ndarray) -> None:
        # End-to-end exports without metadata do not say how many classes exist.
        if len(labels) and int(labels.max()) >= len(self.class_names):
            self.class_names += [f"class_{i}" for i in range(len(self.class_names),
                                                              int(labels.max()) + 1)]

    @property
    def latency_ms(self) -> float:
        """Total milliseconds of the last ``predict``/``raw_candidates`` call (0 before any)."""
        return float(sum(self.last_timing.values()))

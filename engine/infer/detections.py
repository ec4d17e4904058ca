"""What a detector returns: final detections, and the raw candidates before NMS.

Every detector family (Faster/Mask R-CNN, our YOLO, ONNX-exported YOLO) produces these two plain
numpy containers, so the evaluation code, the NMS teaching view and the comparison view never
depend on which model made them. Coordinates are pixels of the original image, boxes are xyxy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["Detections", "RawCandidates"]


def _as_boxes(boxes, what: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{what}.boxes: expected shape [N, 4] (x1, y1, x2, y2), got {arr.shape}")
    return arr


def _as_vector(values, n: int, dtype, what: str, field_name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{what}.{field_name}: expected {n} values (one per box), got {arr.shape[0]}")
    return arr


@dataclass
class Detections:
    """Final detections of one image.

    boxes: float32 [N, 4] xyxy in pixels of the original image.
    scores: float32 [N] confidence in [0, 1].
    labels: int64 [N] category index 0..C-1 into ``class_names``.
    masks: optional bool [N, H, W] instance masks at image resolution.
    class_names: C names; index i names label i.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: list[str] = field(default_factory=list)
    masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = _as_boxes(self.boxes, "Detections")
        n = self.boxes.shape[0]
        self.scores = _as_vector(self.scores, n, np.float32, "Detections", "scores")
        self.labels = _as_vector(self.labels, n, np.int64, "Detections", "labels")
        self.class_names = list(self.class_names)
        if self.masks is not None:
            masks = np.asarray(self.masks)
            if masks.ndim != 3 or masks.shape[0] != n:
                raise ValueError(f"Detections.masks: expected shape [{n}, H, W], got {masks.shape}")
            self.masks = masks.astype(bool, copy=False)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, class_names: Sequence[str] = ()) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   list(class_names))

    def select(self, index) -> "Detections":
        """A new Detections with the rows picked by ``index`` (bool mask or int indices)."""
        index = np.asarray(index)
        masks = None if self.masks is None else self.masks[index]
        return Detections(self.boxes[index], self.scores[index], self.labels[index],
                          list(self.class_names), masks)

    def filter(self, score_thr: float) -> "Detections":
        """Keep detections whose score is >= ``score_thr``."""
        return self.select(self.scores.astype(np.float64) >= score_thr)

    def to_coco_results(self, image_id: int, category_ids: Sequence[int] | None = None) -> list[dict]:
        """COCO "results" entries for this image.

        ``category_ids[label]`` is the COCO category id of label index ``label``; when omitted, the
        COCO id is ``label + 1`` (COCO ids start at 1). bbox is [x, y, w, h] in pixels; with masks
        each entry also has an RLE ``segmentation`` whose ``counts`` is a str (JSON-ready).
        """
        from pycocotools import mask as mask_utils  # local: only needed when exporting results

        out: list[dict] = []
        for i in range(len(self)):
            x1, y1, x2, y2 = (float(v) for v in self.boxes[i])
            label = int(self.labels[i])
            if category_ids is None:
                cat = label + 1
            else:
                if not 0 <= label < len(category_ids):
                    raise ValueError(f"Detections.labels: label {label} has no entry in category_ids "
                                     f"(length {len(category_ids)})")
                cat = int(category_ids[label])
            entry = {"image_id": int(image_id), "category_id": cat,
                     "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(self.scores[i])}
            if self.masks is not None:
                rle = mask_utils.encode(np.asfortranarray(self.masks[i].astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                entry["segmentation"] = rle
            out.append(entry)
        return out


@dataclass
class RawCandidates:
    """A detector's candidates BEFORE non-maximum suppression (what the NMS view steps through).

    boxes: float32 [N, 4] xyxy pixels of the original image; scores: float32 [N];
    labels: int64 [N] category index 0..C-1.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = _as_boxes(self.boxes, "RawCandidates")
        n = self.boxes.shape[0]
        self.scores = _as_vector(self.scores, n, np.float32, "RawCandidates", "scores")
        self.labels = _as_vector(self.labels, n, np.int64, "RawCandidates", "labels")

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def filter(self, score_thr: float) -> "RawCandidates":
        """Keep candidates whose score is >= ``score_thr``."""
        keep = self.scores.astype(np.float64) >= score_thr
        return RawCandidates(self.boxes[keep], self.scores[keep], self.labels[keep])

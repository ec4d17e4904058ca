"""What our YOLO's grid says about one image, in pixels, for the grid view (numpy only).

From the raw grid ``[S, S, B*5 + C]`` (``engine.models.yolo``; ``YoloPredictor.grid(image)``)
this computes what a teacher points at:
- the S x S cell rectangles;
- each cell's B boxes with their confidences (the view draws them with opacity = confidence);
- each cell's most probable class and its probability (the class map);
- for every ground-truth object, the cell that is responsible for it (the one holding its
  centre) and, inside that cell, the responsible predictor: the box with the highest IoU with
  the object (YOLOv1's training rule), with that IoU.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.eval.coco_eval import box_iou_matrix

__all__ = ["GridExplanation", "Responsibility", "explain_grid", "explain_image"]


@dataclass(frozen=True)
class Responsibility:
    """The cell (row, col) and predictor b responsible for ground-truth object ``gt_index``."""

    gt_index: int
    row: int
    col: int
    predictor: int
    iou: float


@dataclass
class GridExplanation:
    """One image seen through the grid; every coordinate is in pixels of the image.

    grid: S. cell_size: (width, height) of a cell in pixels.
    boxes: float32 [S, S, B, 4] xyxy of every predictor's box (clipped to the image).
    confidence: float32 [S, S, B]. class_index: int64 [S, S] argmax class of each cell;
    class_prob: float32 [S, S] its probability. responsible: one entry per ground-truth box.
    """

    grid: int
    image_size: tuple[int, int]  # (height, width)
    boxes: np.ndarray
    confidence: np.ndarray
    class_index: np.ndarray
    class_prob: np.ndarray
    responsible: list[Responsibility] = field(default_factory=list)

    @property
    def cell_size(self) -> tuple[float, float]:
        h, w = self.image_size
        return w / self.grid, h / self.grid

    def cell_rect(self, row: int, col: int) -> tuple[float, float, float, float]:
        """xyxy pixels of cell (row, col)."""
        cw, ch = self.cell_size
        return col * cw, row * ch, (col + 1) * cw, (row + 1) * ch

    def boxes_above(self, min_confidence: float) -> list[tuple[int, int, int, np.ndarray, float]]:
        """(row, col, b, box xyxy, confidence) of every predictor box with confidence >= the floor."""
        rows, cols, bs = np.nonzero(self.confidence >= min_confidence)
        return [(int(r), int(c), int(b), self.boxes[r, c, b], float(self.confidence[r, c, b]))
                for r, c, b in zip(rows, cols, bs)]


def explain_grid(grid_output, width: int, height: int, boxes_per_cell: int,
                 gt_boxes=None) -> GridExplanation:
    """Turn a raw grid into a :class:`GridExplanation`.

    grid_output: float [S, S, B*5 + C] (values 0..1, layout of ``engine.models.yolo``).
    width, height: the image size in pixels. gt_boxes: optional [G, 4] xyxy pixels.
    """
    g = np.asarray(grid_output, dtype=np.float32)
    if g.ndim != 3 or g.shape[0] != g.shape[1] or g.shape[2] <= boxes_per_cell * 5:
        raise ValueError(f"grid_output: expected [S, S, {boxes_per_cell} * 5 + C], got shape {g.shape}")
    s = g.shape[0]
    pred = g[..., : boxes_per_cell * 5].reshape(s, s, boxes_per_cell, 5)
    probs = g[..., boxes_per_cell * 5:]
    col = np.arange(s, dtype=np.float32)[None, :, None]
    row = np.arange(s, dtype=np.float32)[:, None, None]
    cx = (pred[..., 0] + col) / s * width
    cy = (pred[..., 1] + row) / s * height
    bw, bh = pred[..., 2] ** 2 * width, pred[..., 3] ** 2 * height
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)
    boxes[..., 0::2] = boxes[..., 0::2].clip(0, width)
    boxes[..., 1::2] = boxes[..., 1::2].clip(0, height)
    out = GridExplanation(grid=s, image_size=(int(height), int(width)), boxes=boxes.astype(np.float32),
                          confidence=pred[..., 4].copy(), class_index=probs.argmax(-1).astype(np.int64),
                          class_prob=probs.max(-1))
    if gt_boxes is not None:
        gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        for i, box in enumerate(gt):
            c = int(np.clip(np.floor((box[0] + box[2]) / 2 / width * s), 0, s - 1))
            r = int(np.clip(np.floor((box[1] + box[3]) / 2 / height * s), 0, s - 1))
            ious = box_iou_matrix(boxes[r, c], box[None])[:, 0]
            b = int(np.argmax(ious))
            out.responsible.append(Responsibility(i, r, c, b, float(ious[b])))
    return out


def explain_image(predictor, image_rgb: np.ndarray, gt_boxes=None) -> GridExplanation:
    """Run a ``YoloPredictor`` on one image and explain its grid (see :func:`explain_grid`)."""
    grid = predictor.grid(image_rgb)
    h, w = np.asarray(image_rgb).shape[:2]
    return explain_grid(grid, w, h, predictor.boxes_per_cell, gt_boxes)

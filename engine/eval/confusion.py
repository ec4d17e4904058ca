"""Detection confusion matrix with a background row and column.

Rows are the true class, columns the predicted class; index C (the last) is "background":
- a detection matched to a ground-truth box counts at [true class, predicted class]
  (off-diagonal: right place, wrong class);
- an unmatched detection counts at [background, predicted class] (a false alarm);
- an unmatched ground-truth box counts at [true class, background] (a miss).

Matching ignores classes (so class mix-ups show up): detections by descending score each take the
unmatched ground-truth box with the highest IoU, if IoU >= the threshold. Labels are category
indices 0..C-1 on both sides.
"""

from __future__ import annotations

import numpy as np

from engine.eval.coco_eval import box_iou_matrix

__all__ = ["DetectionConfusion", "confusion_matrix", "confusion_over"]


def confusion_matrix(gt_boxes, gt_labels, det_boxes, det_labels, det_scores, num_classes: int,
                     iou: float = 0.5, score_threshold: float = 0.0) -> np.ndarray:
    """int64 [C+1, C+1] matrix of one image (see module doc). Boxes are xyxy pixels.

    Detections scoring below ``score_threshold`` are ignored.
    """
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    det_labels = np.asarray(det_labels, dtype=np.int64).reshape(-1)
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    if len(gt_labels) != len(gt_boxes):
        raise ValueError(f"gt_labels: {len(gt_labels)} labels for {len(gt_boxes)} boxes")
    if not (len(det_labels) == len(det_scores) == len(det_boxes)):
        raise ValueError(f"det_labels/det_scores: need one per box ({len(det_boxes)})")
    for name, lab in (("gt_labels", gt_labels), ("det_labels", det_labels)):
        if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
            raise ValueError(f"{name}: class indices must be in 0..{num_classes - 1}, "
                             f"got {int(lab.min())}..{int(lab.max())}")
    keep = det_scores >= score_threshold
    det_boxes, det_labels, det_scores = det_boxes[keep], det_labels[keep], det_scores[keep]

    bg = num_classes
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    ious = box_iou_matrix(det_boxes, gt_boxes)
    matched = np.zeros(len(gt_boxes), bool)
    for d in np.argsort(-det_scores, kind="stable"):
        row = np.where(matched, -1.0, ious[d]) if len(gt_boxes) else np.zeros(0)
        if row.size and row.max() >= iou:
            g = int(np.argmax(row))
            matched[g] = True
            matrix[gt_labels[g], det_labels[d]] += 1
        else:
            matrix[bg, det_labels[d]] += 1
    for g in np.flatnonzero(~matched):
        matrix[gt_labels[g], bg] += 1
    return matrix


def confusion_over(pairs, num_classes: int, iou: float = 0.5, score_threshold: float = 0.0) -> np.ndarray:
    """The matrix summed over images, from each image's ``(gt_boxes, gt_labels, det_boxes,
    det_labels, det_scores)``: recounting at other cut-offs needs no detector run."""
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    for gt_boxes, gt_labels, det_boxes, det_labels, det_scores in pairs:
        matrix += confusion_matrix(gt_boxes, gt_labels, det_boxes, det_labels, det_scores, num_classes, iou,
                                   score_threshold)
    return matrix


class DetectionConfusion:
    """Accumulates ``confusion_matrix`` over a dataset, image by image."""

    def __init__(self, class_names, iou: float = 0.5, score_threshold: float = 0.0):
        self.class_names = list(class_names)
        self.iou = iou
        self.score_threshold = score_threshold
        n = len(self.class_names) + 1
        self.matrix = np.zeros((n, n), np.int64)

    @property
    def labels(self) -> list[str]:
        """Row/column names, background last."""
        return self.class_names + ["background"]

    def update(self, gt_boxes, gt_labels, det_boxes, det_labels, det_scores) -> None:
        self.matrix += confusion_matrix(gt_boxes, gt_labels, det_boxes, det_labels, det_scores,
                                        len(self.class_names), self.iou, self.score_threshold)

    def normalized(self) -> np.ndarray:
        """float64 [C+1, C+1]: each row divided by its total (rows with no entries stay 0)."""
        totals = self.matrix.sum(axis=1, keepdims=True)
        return np.divide(self.matrix, totals, out=np.zeros(self.matrix.shape), where=totals > 0)

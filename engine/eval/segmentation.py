"""Per-class IoU and Dice for semantic segmentation, accumulated over many images."""
from __future__ import annotations

import numpy as np


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 [K, K] counts, rows = ground truth class, columns = predicted class (K incl. background)."""
    pred = np.asarray(pred, np.int64).ravel()
    gt = np.asarray(gt, np.int64).ravel()
    if pred.shape != gt.shape:
        raise ValueError(f"prediction has {pred.size} pixels, ground truth {gt.size}")
    valid = (gt >= 0) & (gt < num_classes)
    idx = gt[valid] * num_classes + np.clip(pred[valid], 0, num_classes - 1)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_dice(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class IoU and Dice [K] from a confusion matrix; NaN where a class is absent in both."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (tp + fp + fn)
        dice = 2 * tp / (2 * tp + fp + fn)
    return iou, dice


def summarize(cm: np.ndarray, class_names: list[str]) -> dict:
    """JSON-ready metrics: ``miou`` and ``dice`` are means over the FOREGROUND classes that occur
    (background is reported in per_class but left out of the means, so a mostly empty image
    cannot look good by predicting nothing); ``per_class: {name: {iou, dice}}`` (None if absent).
    class_names: the K - 1 foreground names.
    """
    iou, dice = iou_dice(cm)
    names = ["background"] + list(class_names)
    per_class = {name: {"iou": None if np.isnan(iou[k]) else float(iou[k]),
                        "dice": None if np.isnan(dice[k]) else float(dice[k])} for k, name in enumerate(names)}
    fg_iou, fg_dice = iou[1:], dice[1:]
    ok = ~np.isnan(fg_iou)
    return {
        "miou": float(fg_iou[ok].mean()) if ok.any() else None,
        "dice": float(fg_dice[ok].mean()) if ok.any() else None,
        "per_class": per_class,
        "pixels": int(np.asarray(cm).sum()),
    }

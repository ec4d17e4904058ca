"""COCO-style detection metrics through pycocotools (the reference implementation).

``evaluate_detections`` builds the COCO ground-truth and results objects in memory, runs
``COCOeval`` with its printing silenced and returns plain numbers: mAP@[.5:.95], mAP@.5,
per-class AP and per-class precision/recall curves at IoU 0.5 for plotting.

``match_detections`` is the simple greedy matcher behind TP/FP/miss colouring of one image.

Pitfall handled here: annotation ids start at 1, because COCOeval uses 0 as its "unmatched" mark
(ids from 0 make a perfect prediction score below 1.0).
"""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Sequence

import numpy as np

from engine.infer.detections import Detections

__all__ = ["box_iou_matrix", "evaluate_detections", "match_detections", "normalize_categories"]


def normalize_categories(categories) -> list[dict]:
    """Categories as COCO dicts ``[{"id": int, "name": str}]``.

    Accepts such dicts, or a plain list of names (ids 1..C in order). The list order defines the
    category index used by ``Detections.labels`` (index i <-> ``categories[i]``).
    """
    out = []
    for i, cat in enumerate(categories):
        if isinstance(cat, str):
            out.append({"id": i + 1, "name": cat})
        elif isinstance(cat, dict) and "id" in cat:
            out.append({"id": int(cat["id"]), "name": str(cat.get("name", f"class_{cat['id']}"))})
        else:
            raise ValueError(f"categories[{i}]: expected a name or a dict with 'id' and 'name', "
                             f"got {cat!r}")
    if len({c["id"] for c in out}) != len(out):
        raise ValueError("categories: category ids must be unique")
    return out


def _xyxy_to_xywh(box) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _gt_dataset(gt: Sequence[dict], cats: list[dict], iou_type: str) -> dict:
    """COCO ground-truth dataset dict; annotation ids from 1."""
    cat_ids = {c["id"] for c in cats}
    images, anns = [], []
    for n, item in enumerate(gt):
        for key in ("image_id", "width", "height", "boxes", "labels"):
            if key not in item:
                raise ValueError(f"gt[{n}]: missing field '{key}'")
        boxes = np.asarray(item["boxes"], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(item["labels"], dtype=np.int64).reshape(-1)
        if len(labels) != len(boxes):
            raise ValueError(f"gt[{n}].labels: {len(labels)} labels for {len(boxes)} boxes")
        masks = item.get("masks")
        if iou_type == "segm":
            if masks is None and len(boxes):
                raise ValueError(f"gt[{n}].masks: iou_type 'segm' needs ground-truth masks")
            masks = np.zeros((0, item["height"], item["width"]), bool) if masks is None else masks
            if len(masks) != len(boxes):
                raise ValueError(f"gt[{n}].masks: {len(masks)} masks for {len(boxes)} boxes")
        crowd = np.asarray(item.get("iscrowd", np.zeros(len(boxes))), dtype=np.int64).reshape(-1)
        images.append({"id": int(item["image_id"]), "width": int(item["width"]),
                       "height": int(item["height"])})
        for j in range(len(boxes)):
            if int(labels[j]) not in cat_ids:
                raise ValueError(f"gt[{n}].labels[{j}]: category id {int(labels[j])} is not among "
                                 f"the categories {sorted(cat_ids)}")
            xywh = _xyxy_to_xywh(boxes[j])
            ann = {"id": len(anns) + 1, "image_id": int(item["image_id"]),
                   "category_id": int(labels[j]), "bbox": xywh, "area": xywh[2] * xywh[3],
                   "iscrowd": int(crowd[j]) if j < len(crowd) else 0}
            if iou_type == "segm":
                ann["segmentation"] = _rle(masks[j])
                ann["area"] = float(np.count_nonzero(masks[j]))
            anns.append(ann)
    return {"images": images, "annotations": anns, "categories": cats}


def _results(preds, gt: Sequence[dict], cats: list[dict], iou_type: str) -> list[dict]:
    if len(preds) == 0:
        return []  # an empty COCO results list: nothing detected anywhere
    if len(preds) and isinstance(preds[0], dict) and "category_id" in preds[0]:
        return copy.deepcopy(list(preds))  # already COCO results; loadRes mutates its input
    if len(preds) != len(gt):
        raise ValueError(f"preds: expected one Detections per ground-truth image ({len(gt)}), "
                         f"got {len(preds)}")
    ids = [c["id"] for c in cats]
    results: list[dict] = []
    for n, (det, item) in enumerate(zip(preds, gt)):
        if not isinstance(det, Detections):
            raise ValueError(f"preds[{n}]: expected Detections, got {type(det).__name__}")
        if iou_type == "segm" and det.masks is None and len(det):
            raise ValueError(f"preds[{n}].masks: iou_type 'segm' needs predicted masks")
        results.extend(det.to_coco_results(item["image_id"], ids))
    return results


def evaluate_detections(gt: Sequence[dict], preds, categories, iou_type: str = "bbox") -> dict:
    """COCO metrics of ``preds`` against ``gt``.

    gt: one dict per image: ``image_id``, ``width``, ``height``, ``boxes`` [G, 4] xyxy pixels,
        ``labels`` [G] COCO category ids, optional ``masks`` [G, H, W] bool, ``iscrowd`` [G].
    preds: one ``Detections`` per gt image (same order; labels are category indices into
        ``categories``), or a ready COCO results list.
    categories: names or ``{"id", "name"}`` dicts (see ``normalize_categories``).
    iou_type: "bbox" or "segm".

    Returns ``{"map", "map50", "stats", "per_class": {name: {"ap", "ap50", "num_gt"}},
    "pr_curves": {name: {"recall": [101], "precision": [101]}}}``, at IoU 0.5, area "all", 100
    detections per image (COCO's defaults). A value is None where COCO leaves it undefined
    (no ground truth for that class).
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type: expected 'bbox' or 'segm', got {iou_type!r}")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    cats = normalize_categories(categories)
    dataset = _gt_dataset(gt, cats, iou_type)
    results = _results(preds, gt, cats, iou_type)
    image_ids = {img["id"] for img in dataset["images"]}
    strangers = sorted({int(r["image_id"]) for r in results} - image_ids)
    if strangers:
        raise ValueError(f"preds: results refer to image ids {strangers[:5]} absent from gt")

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        if not results:
            return _empty_result(cats, dataset)
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return _summarise(ev, cats, dataset)


def _undefined(x: float) -> float | None:
    return None if x < 0 else float(x)


def _num_gt(dataset: dict) -> dict[int, int]:
    counts: dict[int, int] = {}
    for ann in dataset["annotations"]:
        if not ann.get("iscrowd", 0):
            counts[ann["category_id"]] = counts.get(ann["category_id"], 0) + 1
    return counts


def _summarise(ev, cats: list[dict], dataset: dict) -> dict:
    # precision: [T iou thresholds, R=101 recall points, K classes, A area ranges, M max dets]
    precision = ev.eval["precision"]
    recall_grid = [float(r) for r in ev.params.recThrs]
    counts = _num_gt(dataset)
    per_class, curves = {}, {}
    for k, cat in enumerate(cats):
        p_all = precision[:, :, k, 0, -1]
        p50 = precision[0, :, k, 0, -1]
        defined = p_all[p_all > -1]
        per_class[cat["name"]] = {
            "ap": float(defined.mean()) if defined.size else None,
            "ap50": float(p50[p50 > -1].mean()) if (p50 > -1).any() else None,
            "num_gt": counts.get(cat["id"], 0)}
        curves[cat["name"]] = {"recall": recall_grid,
                               "precision": [max(float(v), 0.0) for v in p50]}
    stats = [float(s) for s in ev.stats]
    return {"map": _undefined(stats[0]), "map50": _undefined(stats[1]), "stats": stats,
            "per_class": per_class, "pr_curves": curves}


def _empty_result(cats: list[dict], dataset: dict) -> dict:
    """No predictions at all: every class with ground truth scores 0 (pycocotools can't load [])."""
    counts = _num_gt(dataset)
    any_gt = bool(counts)
    recall_grid = [float(r) for r in np.linspace(0.0, 1.0, 101)]
    per_class, curves = {}, {}
    for cat in cats:
        has = counts.get(cat["id"], 0) > 0
        per_class[cat["name"]] = {"ap": 0.0 if has else None, "ap50": 0.0 if has else None,
                                  "num_gt": counts.get(cat["id"], 0)}
        curves[cat["name"]] = {"recall": recall_grid, "precision": [0.0] * 101}
    value = 0.0 if any_gt else None
    return {"map": value, "map50": value, "stats": [0.0 if any_gt else -1.0] * 12,
            "per_class": per_class, "pr_curves": curves}


def box_iou_matrix(a, b) -> np.ndarray:
    """IoU between xyxy boxes a [N, 4] and b [M, 4] -> float64 [N, M] (0 where union is 0)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]),
                0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]),
                0, None)
    inter = w * h
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_detections(gt_boxes, gt_labels, det_boxes, det_labels, det_scores, iou: float = 0.5
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy COCO-style matching of one image's detections to its ground truth.

    Detections are visited by descending score (ties: input order); each takes the still
    unmatched ground-truth box of the same label with the highest IoU, if that IoU >= ``iou``.
    Boxes are xyxy pixels; labels must use the same numbering on both sides.

    Returns (tp_mask bool [D], fp_mask bool [D], fn_mask bool [G]): true positives, false
    positives, and missed ground-truth boxes.
    """
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels).reshape(-1)
    det_labels = np.asarray(det_labels).reshape(-1)
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    if not (len(gt_labels) == len(gt_boxes)):
        raise ValueError(f"gt_labels: {len(gt_labels)} labels for {len(gt_boxes)} boxes")
    if not (len(det_labels) == len(det_scores) == len(det_boxes)):
        raise ValueError(f"det_labels/det_scores: need one per box ({len(det_boxes)}), got "
                         f"{len(det_labels)} and {len(det_scores)}")
    ious = box_iou_matrix(det_boxes, gt_boxes)
    tp = np.zeros(len(det_boxes), bool)
    matched = np.zeros(len(gt_boxes), bool)
    for d in np.argsort(-det_scores, kind="stable"):
        candidates = ~matched & (gt_labels == det_labels[d])
        if not candidates.any():
            continue
        row = np.where(candidates, ious[d], -1.0)
        g = int(np.argmax(row))
        if row[g] >= iou:
            tp[d] = True
            matched[g] = True
    return tp, ~tp, ~matched

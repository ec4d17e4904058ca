"""Box -> mask: the mask of the object inside a box the user drew, from GrabCut or from a model.

With a checkpoint (Mask R-CNN, a segmentation family, anything whose predictions hold masks or
polygons) the model predicts the whole image at a low score cut-off and the predicted mask that
best fits the box wins: the one whose bounding box overlaps the box most (IoU), the box's
category first. Without one, GrabCut segments the box from its colours. Either way the result is
clipped to the box, so the mask never leaks out of what the user outlined.

``box_mask_job`` is a job (a generator: load, predict, pick); it reads the image file and never
writes the project. Qt-free; torch is imported only by the model path.
"""
from __future__ import annotations

import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.geometry import bounds, geometry_to_mask
from engine.annotations.model import Annotation
from engine.jobs.events import Progress

MODEL_SCORE_FLOOR = 0.05  # the user asked for this object: take even a shy detection


def box_region(box_xyxy, height: int, width: int) -> np.ndarray:
    """uint8 {0, 1} [H, W]: the pixels whose centres lie inside the box (pixels, float xyxy)."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    out = np.zeros((height, width), np.uint8)
    c1, r1 = max(0, int(np.ceil(min(x1, x2) - 0.5))), max(0, int(np.ceil(min(y1, y2) - 0.5)))
    c2, r2 = min(width, int(np.ceil(max(x1, x2) - 0.5))), min(height, int(np.ceil(max(y1, y2) - 0.5)))
    out[r1:r2, c1:c2] = 1
    return out


def _box_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def best_fitting_mask(predicted: list[Annotation], box_xyxy, height: int, width: int,
                      category_id: int | None = None) -> np.ndarray | None:
    """The predicted mask (or polygon) that best fits the box, clipped to it: uint8 {0, 1} [H, W],
    or None when no prediction overlaps the box. Ranked by (same category, bounding-box IoU, score)."""
    box = tuple(float(v) for v in box_xyxy)
    region = box_region(box, height, width)
    best, best_key = None, None
    for a in predicted:
        if a.kind not in ("mask", "polygon"):
            continue
        m = geometry_to_mask(a.geometry, height, width).astype(np.uint8) & region
        if not m.any():
            continue
        key = (category_id is not None and a.category_id == category_id, _box_iou(bounds(a.geometry), box),
               a.score or 0.0)
        if best_key is None or key > best_key:
            best, best_key = m, key
    return best


def box_mask_job(token, image_path: str, box_xyxy, height: int, width: int, checkpoint: str | None = None,
                 category_name: str | None = None, device: str = "auto"):
    """Job: the mask inside ``box_xyxy`` on the image file ``image_path`` (``height`` x ``width``, the
    project's record). ``checkpoint`` None: GrabCut. Returns {"mask": uint8 [H, W] or None,
    "method": "grabcut" | "<family>:<checkpoint stem>", "message": why there is none}."""
    from engine.assist.grabcut import grabcut_mask
    from engine.infer.run import read_model_image

    yield Progress(0, 2, "reading the image")
    rgb = read_model_image(image_path)
    if rgb.shape[:2] != (height, width):
        raise BadInput(str(image_path), "image", f"is {rgb.shape[1]}x{rgb.shape[0]} px but the project records "
                       f"{width}x{height}")
    if checkpoint is None:
        mask = grabcut_mask(rgb, box_xyxy)
        yield Progress(2, 2, "GrabCut")
        return {"mask": mask if mask.any() else None, "method": "grabcut",
                "message": "" if mask.any() else "GrabCut found no object in the box"}
    from engine.infer.run import inference_threads, load_predictor, predict_annotations, prediction_source
    from engine.infer.thresholds import Thresholds

    predictor, meta, spec = load_predictor(checkpoint, device)
    classes = list(meta.get("classes") or [])
    token.raise_if_cancelled()
    yield Progress(1, 2, f"predicting with {spec.name}")
    # category ids here are class positions + 1: only "same class as the box" matters, by name
    category_ids = list(range(1, len(classes) + 1))
    wanted = classes.index(category_name) + 1 if category_name in classes else None
    thresholds = Thresholds(score_threshold=MODEL_SCORE_FLOOR) if spec.kind in ("detection", "instance") else None
    with inference_threads(predictor):
        anns, _ = predict_annotations(predictor, rgb, 0, category_ids, "box-mask", {}, 0, thresholds)
    mask = best_fitting_mask(anns, box_xyxy, height, width, wanted)
    yield Progress(2, 2, "picked the best fitting mask")
    return {"mask": mask, "method": prediction_source(checkpoint, meta),
            "message": "" if mask is not None else f"{spec.name} found no mask overlapping the box"}

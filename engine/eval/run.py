"""``visionbench eval``: score a checkpoint on a project split, dispatching by family kind."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.geometry import bounds, geometry_to_mask
from engine.annotations.store import ProjectStore
from engine.data.semantic import object_shapes, rasterize
from engine.eval.segmentation import confusion, summarize
from engine.infer.run import read_model_image
from engine.jobs.events import Progress


def _ground_truth(anns, source: str):
    """The checkpoint's own stored predictions are not ground truth for it."""
    return [a for a in anns if a.source != source]


def _eval_segmentation(predictor, store: ProjectStore, classes: list[str], images, on_event, source: str) -> dict:
    cats = [store.category_by_name(n) for n in classes]
    ids = [c.id if c is not None else -1 for c in cats]
    by_image = store.all_annotations()
    k = len(classes) + 1
    cm = np.zeros((k, k), np.int64)
    for n, rec in enumerate(images):
        gt, _ = rasterize(_ground_truth(by_image.get(rec.id, []), source), ids, rec.height, rec.width)
        pred = predictor.probabilities(read_model_image(store.image_path(rec))).argmax(axis=0)
        cm += confusion(pred, gt, k)
        on_event(Progress(n + 1, len(images), rec.path))
    return summarize(cm, classes)


def _eval_detection(predictor, store: ProjectStore, classes: list[str], images, on_event, kind: str,
                    source: str, category_ids: list[int | None], thresholds: dict) -> dict:
    from engine.eval.coco_eval import evaluate_detections

    # COCO ids 1..C in class order; project categories the model does not know are not scored
    label_of = {cid: i + 1 for i, cid in enumerate(category_ids) if cid is not None}
    by_image = store.all_annotations()
    gt, preds = [], []
    iou_type = "segm" if kind == "instance" else "bbox"
    for n, rec in enumerate(images):
        objs = [a for a in object_shapes(_ground_truth(by_image.get(rec.id, []), source)) if a.category_id in label_of]
        item = {"image_id": rec.id, "width": rec.width, "height": rec.height,
                "boxes": np.array([bounds(a.geometry) for a in objs], np.float64).reshape(-1, 4),
                "labels": np.array([label_of[a.category_id] for a in objs], np.int64)}
        if iou_type == "segm":
            item["masks"] = np.array([geometry_to_mask(a.geometry, rec.height, rec.width) > 0 for a in objs],
                                     bool).reshape(-1, rec.height, rec.width)
        gt.append(item)
        preds.append(predictor.predict(read_model_image(store.image_path(rec)), **thresholds))
        on_event(Progress(n + 1, len(images), rec.path))
    result = evaluate_detections(gt, preds, classes, iou_type=iou_type)
    # Named metrics: box mAP for every detector, mask mAP too for instance models.
    boxes = result if iou_type == "bbox" else evaluate_detections(gt, preds, classes, iou_type="bbox")
    result.update(box_map50=boxes["map50"], box_map=boxes["map"],
                  per_class_box_ap={k: v["ap"] for k, v in boxes["per_class"].items()},
                  per_class_box_ap50={k: v["ap50"] for k, v in boxes["per_class"].items()})
    if iou_type == "segm":
        result.update(mask_map50=result["map50"], mask_map=result["map"],
                      per_class_mask_ap={k: v["ap"] for k, v in result["per_class"].items()},
                      per_class_mask_ap50={k: v["ap50"] for k, v in result["per_class"].items()})
    return result


def eval_command(ckpt, project, split: str | None = "val", progress=None, device: str = "auto",
                 score_threshold: float | None = None, nms_iou: float | None = None,
                 max_detections: int | None = None) -> dict:
    """Metrics of checkpoint ``ckpt`` on the images of ``split`` as a JSON-ready dict.

    Segmentation: ``miou``, ``dice``, ``per_class: {name: {iou, dice}}`` (means over foreground
    classes). Detection/instance: COCO mAP from ``engine.eval.coco_eval`` of the detections the
    thresholds leave (None: the model's defaults, those of ``predict``; a segmentation model
    refuses them: it is scored per pixel).
    """
    from engine.infer.run import checkpoint_category_ids, inference_threads, load_predictor
    from engine.infer.thresholds import Thresholds
    from engine.train.run import event_sink

    thresholds = Thresholds(score_threshold, nms_iou, max_detections)
    predictor, meta, spec = load_predictor(ckpt, device)
    thresholds.check_for(spec.kind, ckpt, command="eval")
    classes = list(meta["classes"])
    source = f"{meta['family']}:{Path(ckpt).stem}"
    on_event, close = event_sink(progress, f"eval {Path(ckpt).name}")
    store = ProjectStore(project, readonly=True)
    try:
        category_ids = checkpoint_category_ids(store, meta, ckpt)  # trained for these categories?
        images = store.images(split=split)
        if not images:
            raise BadInput(str(project), "split", f"no images in split {split!r}")
        with inference_threads(predictor):
            if spec.kind == "segmentation":
                result = _eval_segmentation(predictor, store, classes, images, on_event, source)
            else:
                result = _eval_detection(predictor, store, classes, images, on_event, spec.kind, source,
                                         category_ids, thresholds.given())
    finally:
        store.close()
        close()
    return {"checkpoint": str(ckpt), "family": meta["family"], "split": split, "images": len(images),
            "thresholds": thresholds.given(), **result}

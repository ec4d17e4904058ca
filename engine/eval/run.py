"""``visionbench eval``: score a checkpoint on a project split, dispatching by family kind.

Ground truth is the one rule (``engine.data.truth``, ADR 0017): every annotation but unaccepted
proposals, hidden ones included. Predictions that ``visionbench predict`` stored WITHOUT
``--as-proposals`` are ground truth by request, so scoring the same checkpoint afterwards would
score it against itself: eval warns when it finds such annotations.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.store import ProjectStore
from engine.data.semantic import rasterize
from engine.data.truth import is_ground_truth
from engine.eval.segmentation import confusion, summarize
from engine.infer.run import read_model_image
from engine.jobs.events import Log, Progress


def _eval_segmentation(predictor, store: ProjectStore, classes: list[str], images, on_event) -> dict:
    cats = [store.category_by_name(n) for n in classes]
    ids = [c.id if c is not None else -1 for c in cats]
    by_image = store.all_annotations()
    k = len(classes) + 1
    cm = np.zeros((k, k), np.int64)
    for n, rec in enumerate(images):
        gt, _ = rasterize(by_image.get(rec.id, []), ids, rec.height, rec.width)
        pred = predictor.probabilities(read_model_image(store.image_path(rec))).argmax(axis=0)
        cm += confusion(pred, gt, k)
        on_event(Progress(n + 1, len(images), rec.path))
    return summarize(cm, classes)


def _eval_detection(predictor, store: ProjectStore, split: str | None, classes: list[str], on_event, kind: str,
                    category_ids: list[int | None], thresholds: dict | None = None) -> dict:
    from engine.eval.detection import evaluate_project_steps

    steps = evaluate_project_steps(predictor, store, split, classes, category_ids, masks=kind == "instance",
                                   thresholds=thresholds)
    while True:
        try:
            on_event(next(steps))
        except StopIteration as stop:
            scored = stop.value
            break
    # the named figures for every detector, and the primary COCO result (masks for instance models)
    primary = scored["mask"] if kind == "instance" else scored["box"]
    named = {k: v for k, v in scored.items() if k.startswith(("box_", "mask_", "per_class_box", "per_class_mask"))}
    return {**primary, **named}


def _own_ground_truth(store: ProjectStore, split: str | None, source: str) -> int:
    """How many ground-truth annotations of ``split`` this checkpoint wrote itself."""
    return sum(1 for anns in store.all_annotations(split=split).values() for a in anns
               if a.source == source and is_ground_truth(a))


def eval_command(ckpt, project, split: str | None = "val", progress=None, device: str = "auto",
                 score_threshold: float | None = None, nms_iou: float | None = None,
                 max_detections: int | None = None) -> dict:
    """Metrics of checkpoint ``ckpt`` on the images of ``split`` as a JSON-ready dict.

    Segmentation: ``miou``, ``dice``, ``per_class: {name: {iou, dice}}`` (means over foreground
    classes). Detection/instance: COCO mAP from ``engine.eval.detection`` of the detections the
    thresholds leave (None: the model's defaults, those of ``predict``; a segmentation model
    refuses them: it is scored per pixel).
    """
    from engine.infer.run import checkpoint_category_ids, inference_threads, load_predictor
    from engine.infer.thresholds import Thresholds
    from engine.train.run import event_sink

    thresholds = Thresholds(score_threshold, nms_iou, max_detections)
    predictor, meta, spec = load_predictor(ckpt, device)
    thresholds.check_for(spec.kind, ckpt, command="eval")
    if spec.kind == "embedding":  # verification figures, not per-image predictions
        from engine.infer.siamese_commands import eval_embedding

        with ProjectStore(project, readonly=True) as store:
            result = eval_embedding(predictor, store, split, meta)
        return {"checkpoint": str(ckpt), "family": meta["family"], "split": split, **result}
    if spec.kind == "image2image":  # scored against paired targets, not annotations
        from engine.eval.image2image import evaluate_pairs

        on_event, close = event_sink(progress, f"eval {Path(ckpt).name}")
        try:
            with inference_threads(predictor):
                result = evaluate_pairs(predictor, project, split, on_event)
        finally:
            close()
        return {"checkpoint": str(ckpt), "family": meta["family"], "split": split, **result}
    classes = list(meta["classes"])
    source = f"{meta['family']}:{Path(ckpt).stem}"
    on_event, close = event_sink(progress, f"eval {Path(ckpt).name}")
    store = ProjectStore(project, readonly=True)
    try:
        category_ids = checkpoint_category_ids(store, meta, ckpt)  # trained for these categories?
        images = store.images(split=split)
        if not images:
            raise BadInput(str(project), "split", f"no images in split {split!r}")
        own = _own_ground_truth(store, split, source)
        if own:
            on_event(Log(f"{own} annotations of this split were stored by {source} as ground truth (predict "
                         f"--store truth); they are scored as ground truth", level="warning"))
        with inference_threads(predictor):
            if spec.kind == "segmentation":
                result = _eval_segmentation(predictor, store, classes, images, on_event)
            else:
                result = _eval_detection(predictor, store, split, classes, on_event, spec.kind, category_ids,
                                         thresholds.given())
    finally:
        store.close()
        close()
    return {"checkpoint": str(ckpt), "family": meta["family"], "split": split, "images": len(images),
            "thresholds": thresholds.given(), **result}

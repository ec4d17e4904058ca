"""How good is a detector: the one place detections are scored against the ground truth.

``visionbench eval``, the workbench's Evaluate, and the detector trainers' validation all call
``evaluate_detector``: run the predictor on each sample (score floor 0.05, NMS 0.5, the settings
of ``visionbench predict``), then COCO box mAP (and mask mAP for instance models) through
pycocotools, per-class AP, precision-recall curves at IoU 0.5, and a detection confusion matrix.
The ground truth is ``engine.data.objects.ground_truth_objects`` (read through
``engine.data.detection``), so every caller scores against the same objects a detector trains on.

Labels: the samples' labels are 1..C with label k <-> ``class_names[k - 1]``, the predictor's own
class order (``Detections.labels`` are 0..C-1 into the same list); COCO category ids are 1..C.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Generator, Iterable

import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.model import Category
from engine.annotations.store import ProjectStore
from engine.data.detection import DetectionSample, iter_detection_samples
from engine.eval.coco_eval import evaluate_detections
from engine.eval.confusion import DetectionConfusion
from engine.jobs.events import Progress

__all__ = ["SCORE_FLOOR", "NMS_IOU", "coco_results", "evaluate_detector", "evaluate_detector_steps", "evaluate_job",
           "evaluate_project_steps", "project_classes", "score_coco_results"]

SCORE_FLOOR = 0.05  # detections below this do not enter AP (COCO practice; ``predict``'s default)
NMS_IOU = 0.5


def _named(result: dict, prefix: str) -> dict:
    """``box_map50``, ``box_map``, ``per_class_box_ap``, ``per_class_box_ap50`` (prefix "box") of a
    ``evaluate_detections`` result."""
    per_class = result["per_class"]
    return {f"{prefix}_map50": result["map50"], f"{prefix}_map": result["map"],
            f"per_class_{prefix}_ap": {k: v["ap"] for k, v in per_class.items()},
            f"per_class_{prefix}_ap50": {k: v["ap50"] for k, v in per_class.items()}}


def evaluate_detector_steps(predictor, samples: Iterable[DetectionSample], class_names: list[str],
                            masks: bool = False, total: int | None = None,
                            confusion_threshold: float = 0.3,
                            should_stop: Callable[[], None] | None = None,
                            thresholds: dict | None = None) -> Generator[Progress, None, dict]:
    """Generator: yields a Progress per image scored, returns the metrics (see ``evaluate_detector``).

    samples: ``DetectionSample``s (with masks when ``masks``), read lazily if an iterator; total:
    their number, for the progress bar, when known; thresholds: ``predict`` keywords the user set
    (score_threshold, nms_iou, max_detections) over the defaults below.
    """
    given = {"score_threshold": SCORE_FLOOR, "nms_iou": NMS_IOU, **(thresholds or {})}
    names = list(class_names)
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    confusion = DetectionConfusion(names, iou=0.5, score_threshold=confusion_threshold)
    gt, preds, n = [], [], 0
    pairs: list[tuple] = []  # per image, for recounting the confusion at other cut-offs (confusion_over)
    for n, s in enumerate(samples, start=1):
        if should_stop is not None:
            should_stop()
        det = predictor.predict(s.image, **given)
        gt.append(_ground_truth(s, masks))
        preds.append(det)
        confusion.update(s.boxes, s.labels - 1, det.boxes, det.labels, det.scores)
        pairs.append((np.asarray(s.boxes, np.float32).reshape(-1, 4), np.asarray(s.labels) - 1,
                      np.asarray(det.boxes, np.float32).reshape(-1, 4), np.asarray(det.labels),
                      np.asarray(det.scores, np.float32)))
        yield Progress(n, total, s.record.path)
    box = evaluate_detections(gt, preds, cats, "bbox")
    out = {"box": box, "mask": None, **_named(box, "box")}
    if masks:
        out["mask"] = evaluate_detections(gt, preds, cats, "segm")
        out.update(_named(out["mask"], "mask"))
    top = max((float(p[4].max()) for p in pairs if len(p[4])), default=None)
    out.update(confusion=confusion.matrix, labels=confusion.labels, class_names=names, images=n,
               confusion_pairs=pairs, confusion_score=confusion_threshold, confusion_iou=confusion.iou, top_score=top)
    return out


def _ground_truth(s: DetectionSample, masks: bool) -> dict:
    """One sample as ``evaluate_detections`` reads the ground truth (COCO category ids = labels 1..C)."""
    item = {"image_id": s.record.id, "width": s.record.width, "height": s.record.height,
            "boxes": s.boxes, "labels": s.labels}
    if masks:
        item["masks"] = s.masks.astype(bool)
    return item


def coco_results(predictor, samples: Iterable[DetectionSample], class_names: list[str],
                 should_stop: Callable[[], None] | None = None) -> list[dict]:
    """COCO result entries (boxes, and RLE masks when the predictor gives masks) of ``predictor``
    on ``samples``, with ``evaluate_detector``'s settings (score floor, NMS). Each image is
    predicted alone, so the entries of a split do not depend on how it is cut: the processes of a
    distributed validation each score a share and :func:`score_coco_results` scores them together."""
    ids = list(range(1, len(class_names) + 1))
    out: list[dict] = []
    for s in samples:
        if should_stop is not None:
            should_stop()
        det = predictor.predict(s.image, score_threshold=SCORE_FLOOR, nms_iou=NMS_IOU)
        out.extend(det.to_coco_results(s.record.id, ids))
    return out


def score_coco_results(samples: list[DetectionSample], results: list[dict], class_names: list[str],
                       masks: bool = False) -> dict:
    """COCO box (and mask) mAPs of :func:`coco_results` entries against ``samples``:
    "box_map50", "box_map", "per_class_box_ap", "per_class_box_ap50" (and "mask_..."), the figures
    ``evaluate_detector`` gives for the same predictions."""
    gt = [_ground_truth(s, masks) for s in samples]
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]
    out = _named(evaluate_detections(gt, results, cats, "bbox"), "box")
    if masks:
        out.update(_named(evaluate_detections(gt, results, cats, "segm"), "mask"))
    return out


def evaluate_detector(predictor, samples: Iterable[DetectionSample], class_names: list[str], masks: bool = False,
                      confusion_threshold: float = 0.3, should_stop: Callable[[], None] | None = None) -> dict:
    """Score ``predictor`` (anything with ``predict(rgb, score_threshold, nms_iou) -> Detections``)
    on ``samples``.

    Returns {"box": ``evaluate_detections`` result for boxes, "mask": the same for masks or None,
    "box_map50", "box_map", "per_class_box_ap", "per_class_box_ap50" (and "mask_..." likewise when
    ``masks``; None where COCO leaves a value undefined), "confusion": int64 [C+1, C+1] counting
    detections scoring >= ``confusion_threshold`` (rows true class, columns predicted, background
    last), "labels": class names + ["background"], "class_names", "images": number scored}.
    should_stop is called per image (cancel point).
    """
    steps = evaluate_detector_steps(predictor, samples, class_names, masks, None, confusion_threshold, should_stop)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def project_classes(store: ProjectStore, class_names: list[str],
                    category_ids: list[int | None]) -> list[Category | None]:
    """The project category of each detector class (None where the project lacks it)."""
    by_id = {c.id: c for c in store.categories()}
    if len(category_ids) != len(class_names):
        raise ValueError(f"category_ids: {len(category_ids)} ids for {len(class_names)} classes")
    return [by_id.get(cid) if cid is not None else None for cid in category_ids]


def evaluate_project_steps(predictor, store: ProjectStore, split: str | None, class_names: list[str],
                           category_ids: list[int | None], masks: bool = False, confusion_threshold: float = 0.3,
                           should_stop: Callable[[], None] | None = None,
                           thresholds: dict | None = None) -> Generator[Progress, None, dict]:
    """``evaluate_detector_steps`` over every image of ``split`` (None = all) of a project, images
    without objects included (a false alarm there counts).

    class_names: the predictor's classes (``Detections.labels`` index them); category_ids: the
    project category of each (None: the project lacks that class; it then has no ground truth).
    Images are read as the models read them (``engine.infer.run.read_model_image``). BadInput when
    the split holds no image.
    """
    from engine.infer.run import read_model_image

    names = list(class_names)
    images = store.images(split=split)
    if not images:
        raise BadInput(str(store.path), "split", f"the project has no images in the {split!r} split")
    samples = (s for s, _ in iter_detection_samples(store, project_classes(store, names, category_ids), split,
                                                    with_masks=masks, annotated_only=False,
                                                    read_image=read_model_image))
    return (yield from evaluate_detector_steps(predictor, samples, names, masks, len(images), confusion_threshold,
                                               should_stop, thresholds))


class _ThreadsPerCall:
    """A predictor whose every ``predict`` runs with all cores but one (ADR 0016: no OpenMP threads
    spinning against the GUI thread), torch's thread setting restored between images."""

    def __init__(self, predictor, threads) -> None:
        self.predictor, self.threads = predictor, threads
        self.class_names = list(predictor.class_names)

    def predict(self, image, **thresholds):
        with self.threads(self.predictor):
            return self.predictor.predict(image, **thresholds)


def evaluate_job(token, checkpoint: str, project: str, split: str | None = "val", device: str = "auto",
                 score_threshold: float = 0.3):
    """Job (the workbench's Evaluate): a detector file scored on a project split.

    Classes are matched to categories by name; classes the project lacks have no ground truth.
    Returns ``evaluate_detector``'s dict (masks too when the detector has them; the confusion
    matrix counts detections scoring >= ``score_threshold``) plus "seconds" (wall time). BadInput
    when no class of the detector is a project category, or the split holds no image.
    """
    from engine.infer.detector_api import load_detector, project_category_ids
    from engine.infer.run import inference_threads
    from engine.jobs.priority import yield_cpu_to_gui

    started = time.perf_counter()
    yield_cpu_to_gui()
    yield Progress(0, None, f"loading {Path(checkpoint).name}")
    predictor = load_detector(checkpoint, device)
    names = list(predictor.class_names)
    store = ProjectStore(project, readonly=True)
    try:
        ids = project_category_ids(names, store, checkpoint, strict=False)
        if not any(i is not None for i in ids):
            cats = sorted(c.name for c in store.categories())
            raise BadInput(str(checkpoint), "classes",
                           f"none of the detector's classes {names[:6]} is a category of the project "
                           f"{Path(project).name} ({', '.join(cats) or 'none'}); was it trained on another project?")
        result = yield from evaluate_project_steps(_ThreadsPerCall(predictor, inference_threads), store, split,
                                                   names, ids, bool(getattr(predictor, "has_masks", False)),
                                                   score_threshold, token.raise_if_cancelled)
    finally:
        store.close()
    return {**result, "seconds": time.perf_counter() - started}

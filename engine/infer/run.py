"""``visionbench predict``: run a checkpoint over a project's images (family-agnostic).

A predictor (``FamilySpec.predictor``) is used through one of two shapes:
- segmentation: ``annotate(rgb, image_id, category_ids, source, attributes) -> [Annotation]``
  (and ``probabilities(rgb)`` for live heatmaps);
- detection: ``predict(rgb) -> engine.infer.detections.Detections`` (boxes, optional masks).
Predictions are stored as model-sourced annotations (``source = "<family>:<ckpt stem>"``),
replacing that source's earlier predictions on the same image.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.geometry import bounds, encode_mask, geometry_to_mask
from engine.annotations.imageio import read_image_rgb
from engine.annotations.model import Annotation, Box
from engine.annotations.store import ProjectStore
from engine.jobs.events import Log, Preview, Progress
from engine.models.checkpoint import CheckpointError, load_checkpoint
from engine.models.registry import get_family


def inference_threads(predictor):
    """Torch CPU threads for inference: all cores but one (see engine.train.loop.cpu_threads)."""
    import torch

    from engine.train.loop import cpu_threads

    device = getattr(predictor, "device", None)
    return cpu_threads(torch.device(device) if device is not None else torch.device("cpu"), -1)


def load_predictor(ckpt: str | Path, device: str = "auto"):
    """(predictor, meta) for a checkpoint of any registered family; BadInput naming the file."""
    try:
        _, meta = load_checkpoint(ckpt)
        spec = get_family(str(meta["family"]))
        return spec.predictor(str(ckpt), device), meta, spec
    except CheckpointError as exc:
        raise BadInput(str(ckpt), "checkpoint", exc.message) from None
    except ValueError as exc:
        raise BadInput(str(ckpt), "family", str(exc)) from None


def _source(ckpt: str | Path, meta: dict) -> str:
    return f"{meta['family']}:{Path(ckpt).stem}"


def _category_ids(store: ProjectStore, classes: list[str], create: bool) -> list[int | None]:
    out: list[int | None] = []
    for name in classes:
        cat = store.category_by_name(name)
        if cat is None and create:
            cat = store.add_category(name)
        out.append(cat.id if cat is not None else None)
    return out


def _detections_to_annotations(det, image_id: int, category_ids, source: str, attributes: dict,
                               next_instance: int) -> tuple[list[Annotation], int]:
    anns = []
    for i in range(len(det)):
        cid = category_ids[int(det.labels[i])] if 0 <= int(det.labels[i]) < len(category_ids) else None
        if cid is None:
            continue
        x1, y1, x2, y2 = (float(v) for v in det.boxes[i])
        score = float(det.scores[i])
        inst = None
        if det.masks is not None:
            next_instance += 1
            inst = next_instance
            anns.append(Annotation(image_id, cid, encode_mask(det.masks[i]), instance_id=inst, source=source,
                                   score=score, attributes=dict(attributes)))
        anns.append(Annotation(image_id, cid, Box(x1, y1, x2, y2), instance_id=inst, source=source, score=score,
                               attributes=dict(attributes)))
    return anns, next_instance


def predict_annotations(predictor, rgb: np.ndarray, image_id: int, category_ids, source: str,
                        attributes: dict | None = None, next_instance: int = 0) -> tuple[list[Annotation], int]:
    """Annotations of one image from a predictor of either shape; returns (anns, last instance id)."""
    attributes = dict(attributes or {})
    if hasattr(predictor, "annotate"):
        return predictor.annotate(rgb, image_id, category_ids, source, attributes=attributes), next_instance
    return _detections_to_annotations(predictor.predict(rgb), image_id, category_ids, source, attributes,
                                      next_instance)


def paint_class_ids(anns: list[Annotation], height: int, width: int) -> np.ndarray:
    """Predicted annotations -> project category ids per pixel (0 background); higher scores on top."""
    dtype = np.uint8 if all(a.category_id < 256 for a in anns) else np.uint16
    out = np.zeros((height, width), dtype)
    for a in sorted(anns, key=lambda a: (a.score or 0.0, a.kind == "mask")):
        if a.kind in ("mask", "polygon", "box"):
            out[geometry_to_mask(a.geometry, height, width) > 0] = a.category_id
    return out


def coco_result_entries(anns: list[Annotation]) -> list[dict]:
    """COCO results entries (bbox xywh, optional RLE segmentation, score) for predicted annotations."""
    masked = {a.instance_id for a in anns if a.kind == "mask" and a.instance_id is not None}
    out = []
    for a in anns:
        if a.kind == "box" and a.instance_id in masked:
            continue  # the mask entry of this instance carries the box too
        if a.kind not in ("mask", "box"):
            continue
        x1, y1, x2, y2 = bounds(a.geometry)
        entry = {"image_id": a.image_id, "category_id": a.category_id, "bbox": [x1, y1, x2 - x1, y2 - y1],
                 "score": float(a.score if a.score is not None else 1.0)}
        if a.kind == "mask":
            entry["segmentation"] = {"size": list(a.geometry.size), "counts": a.geometry.counts}
        out.append(entry)
    return out


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def predict_command(ckpt, project, split: str | None = None, as_proposals: bool = False, masks_out=None,
                    coco_results=None, progress=None, device: str = "auto") -> dict:
    """Predict every image of ``split`` (None = all) and store the results in the project.

    as_proposals adds attributes {"proposal": true}; masks_out writes one PNG per image (image
    stem + .png) whose pixels are the PROJECT's category ids (0 = background); coco_results
    writes a COCO results JSON. Returns counts as a dict.
    """
    from engine.train.run import event_sink

    predictor, meta, spec = load_predictor(ckpt, device)
    source = _source(ckpt, meta)
    classes = list(meta["classes"])
    attributes = {"proposal": True} if as_proposals else {}
    masks_dir = Path(masks_out) if masks_out else None
    if masks_dir is not None:
        masks_dir.mkdir(parents=True, exist_ok=True)
    on_event, close = event_sink(progress, f"predict {Path(ckpt).name}")
    store = ProjectStore(project)
    results: list[dict] = []
    counts = {"images": 0, "annotations": 0, "replaced": 0}
    try:
        with inference_threads(predictor):
            category_ids = _category_ids(store, classes, create=True)
            next_instance = int(store.execute("SELECT COALESCE(MAX(instance_id), 0) FROM annotations").fetchone()[0])
            images = store.images(split=split)
            for n, rec in enumerate(images):
                rgb = read_image_rgb(store.image_path(rec))
                anns, next_instance = predict_annotations(predictor, rgb, rec.id, category_ids, source, attributes,
                                                          next_instance)
                with store.transaction():
                    for old in store.annotations(rec.id):
                        if old.source == source:
                            store.delete_annotation(old.id)
                            counts["replaced"] += 1
                    stored = store.add_annotations(anns)
                counts["images"] += 1
                counts["annotations"] += len(stored)
                if masks_dir is not None:
                    ids = paint_class_ids(stored, rgb.shape[0], rgb.shape[1])
                    target = masks_dir / (Path(rec.path).stem + ".png")
                    if not cv2.imwrite(str(target), ids):
                        raise BadInput(str(target), "masks_out", "could not write the mask PNG")
                if coco_results:
                    results.extend(coco_result_entries(stored))
                on_event(Progress(n + 1, len(images), rec.path))
    finally:
        store.close()
        close()
    if coco_results:
        _write_json_atomic(Path(coco_results), results)
    return {"checkpoint": str(ckpt), "family": meta["family"], "source": source, "split": split,
            "as_proposals": bool(as_proposals), **counts,
            "masks_out": str(masks_dir) if masks_dir else None, "coco_results": str(coco_results) if coco_results else None}


def predict_image_job(token, checkpoint, store_path, image_id: int, device: str = "auto"):
    """Job: predict one image for the workbench; returns (unsaved) annotations.

    Segmentation models also yield "heatmaps" and "argmax" previews. The caller adds the
    returned annotations through its edit history so they can be undone.
    """
    from engine.viz.heatmaps import segmentation_preview

    yield Progress(0, 3, "loading model")
    predictor, meta, _ = load_predictor(checkpoint, device)
    store = ProjectStore(store_path, readonly=True)
    try:
        rec = store.image(image_id)
        path = store.image_path(rec)
        category_ids = _category_ids(store, list(meta["classes"]), create=False)
        colors = [store.category(c).color if c is not None else "#808080" for c in category_ids]
    finally:
        store.close()
    rgb = read_image_rgb(path)
    yield Progress(1, 3, "predicting")
    source = _source(checkpoint, meta)
    if hasattr(predictor, "probabilities"):
        with inference_threads(predictor):
            probs = predictor.probabilities(rgb, should_stop=token.raise_if_cancelled)
        views = segmentation_preview(rgb, probs, list(meta["classes"]), colors)
        yield Preview("heatmaps", views["heatmaps"])
        yield Preview("argmax", views["argmax"])
        anns = predictor.annotate(rgb, image_id, category_ids, source, probs=probs)
    else:
        with inference_threads(predictor):
            anns, _ = predict_annotations(predictor, rgb, image_id, category_ids, source)
    missing = [c for c, cid in zip(meta["classes"], category_ids) if cid is None]
    if missing:
        yield Log(f"classes not in this project, skipped: {', '.join(missing)}", level="warning")
    yield Progress(3, 3, f"{len(anns)} regions")
    return anns

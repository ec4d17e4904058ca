"""``visionbench predict``: run a checkpoint over a project's images (family-agnostic).

A predictor (``FamilySpec.predictor``) is used through one of two shapes:
- segmentation: ``annotate(rgb, image_id, category_ids, source, attributes) -> [Annotation]``
  (and ``probabilities(rgb)`` for live heatmaps);
- detection: ``predict(rgb) -> engine.infer.detections.Detections`` (boxes, optional masks).
Predictions are model-sourced annotations (``source = "<family>:<ckpt stem>"``), stored as
proposals unless asked otherwise (see ``predict_command``); image files outside a project are
predicted by ``engine.infer.predict_files``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.formats.common import export_names
from engine.annotations.geometry import bounds, encode_mask, geometry_to_mask
from engine.annotations.imageio import probe_image, to_uint8_rgb
from engine.annotations.model import Annotation, Box
from engine.annotations.store import ProjectStore
from engine.data.truth import accepted, as_proposal, is_proposal
from engine.infer.detector_api import project_category_ids
from engine.infer.thresholds import Thresholds
from engine.infer.protocol import Annotator, PreviewSource, Translator
from engine.jobs.events import Log, Progress
from engine.models.checkpoint import CheckpointError, load_checkpoint
from engine.models.registry import get_family


def inference_threads(predictor):
    """Torch CPU threads for inference: all cores but one (see engine.train.loop.cpu_threads)."""
    import torch

    from engine.train.loop import cpu_threads

    device = getattr(predictor, "device", None)
    return cpu_threads(torch.device(device) if device is not None else torch.device("cpu"), -1)


def read_model_image(path: str | Path) -> np.ndarray:
    """The pixels of an image file as a model takes them: uint8 RGB [H, W, 3].

    Converted where the meaning is clear, the same way training read them
    (``engine.annotations.imageio.to_uint8_rgb``): grey [H, W] or [H, W, 1] is repeated, grey +
    alpha [H, W, 2] keeps the grey, RGBA drops alpha, 16-bit/float data are stretched to 0..255,
    a planar [3|4, H, W] TIFF is made interleaved. Refused with BadInput naming the file and the
    field ``image`` (the model would see a silently wrong picture): complex or non-numeric pixels,
    more than 4 channels, stacks of pages or volumes, images smaller than 2 x 2 px.
    """
    path = Path(path)
    w, h = probe_image(path)  # BadInput for missing, unreadable, decompression bombs
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is not None:
        if data.ndim == 3 and data.shape[2] in (3, 4):  # OpenCV decodes BGR(A)
            data = data[:, :, [2, 1, 0, 3][: data.shape[2]]]
    else:
        try:
            import tifffile

            data = tifffile.imread(str(path))
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
            raise BadInput(str(path), "image", f"cannot decode ({type(exc).__name__}: {exc})") from None
    data = np.asarray(data)
    if data.dtype.kind not in "buif":
        what = "complex" if data.dtype.kind == "c" else "non-numeric"
        raise BadInput(str(path), "image", f"{what} pixels ({data.dtype}) have no colour a model can take; "
                       "convert the image to 8/16-bit integers or real floats")
    if data.ndim == 3 and data.shape[0] in (1, 3, 4) and data.shape[1:] == (h, w) and data.shape[2] != data.shape[0]:
        data = np.moveaxis(data, 0, -1)  # planar TIFF (samples first)
    if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[2] > 4):
        raise BadInput(str(path), "image", f"pixel array of shape {list(data.shape)} (several pages, a volume "
                       "or more than 4 channels); the models take grey, RGB or RGBA images - save one "
                       "2-D grey or colour image per file")
    if data.shape[0] < 2 or data.shape[1] < 2:
        raise BadInput(str(path), "image", f"{data.shape[1]}x{data.shape[0]} px is too small for a model")
    return to_uint8_rgb(data)


def _load_error_field(message: str, default: str) -> str:
    """The field a loader's message is about ("... field 'state_dict' ..."), else ``default``."""
    m = re.search(r"field '([^']+)'", message)
    return m.group(1) if m else default


def _strip_path(path: Path, message: str) -> str:
    """Loader messages start with "<path>: "; BadInput adds the path itself."""
    for prefix in (f"{path}: ", f"{path.name}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def _load_foreign_detector(path: Path, device: str):
    """(predictor, meta, spec) for a detector file that is not a Visionbench checkpoint: an
    Ultralytics YOLO ``.onnx`` export or a torchvision COCO state dict (engine.infer.detector_api)."""
    from engine.infer.detector_api import DetectorLoadError, load_detector

    try:
        predictor = load_detector(path, device)
    except DetectorLoadError as exc:
        message = _strip_path(path, str(exc))
        field = "onnx model" if path.suffix.lower() == ".onnx" else _load_error_field(message, "checkpoint")
        raise BadInput(str(path), field, message) from None
    kind = "instance" if getattr(predictor, "has_masks", False) else "detection"
    family = "onnx" if path.suffix.lower() == ".onnx" else str(predictor.name).split(":")[0]
    meta = {"family": family, "classes": list(predictor.class_names), "foreign": True}
    return predictor, meta, SimpleNamespace(name=family, kind=kind)


def load_predictor(ckpt: str | Path, device: str = "auto"):
    """(predictor, meta, spec) for a checkpoint of any registered family, an ONNX YOLO export or a
    torchvision COCO detector file (meta["foreign"] = True for the last two); BadInput naming the
    file and the field otherwise. The project is never touched here."""
    path = Path(ckpt)
    if path.suffix.lower() == ".onnx":
        return _load_foreign_detector(path, device)
    try:
        _, meta = load_checkpoint(path)
    except CheckpointError as exc:
        if "not a Visionbench checkpoint" in exc.message:  # maybe a torchvision state dict
            return _load_foreign_detector(path, device)
        raise BadInput(str(path), "checkpoint", exc.message) from None
    try:
        spec = get_family(str(meta["family"]))
    except ValueError as exc:
        raise BadInput(str(path), "family", str(exc)) from None
    try:
        return spec.predictor(str(path), device), meta, spec
    except CheckpointError as exc:
        raise BadInput(str(path), _load_error_field(exc.message, "checkpoint"), exc.message) from None
    except ValueError as exc:  # DetectorLoadError and friends: "<path>: field 'x' ..."
        message = _strip_path(path, str(exc))
        raise BadInput(str(path), _load_error_field(message, "checkpoint"), message) from None


def checkpoint_category_ids(store: ProjectStore, meta: dict, ckpt) -> list[int | None]:
    """Project category id of each class of the model (matched by name); nothing is created.

    A Visionbench checkpoint must find ALL its classes in the project (otherwise it was trained
    for other categories: BadInput naming the checkpoint and its field ``classes``). A foreign
    detector (80 COCO classes, say) may use a few of them, but at least one.
    """
    classes = list(meta["classes"])
    if not meta.get("foreign"):
        return project_category_ids(classes, store, ckpt, strict=True)
    ids = project_category_ids(classes, store, ckpt, strict=False)
    if not any(i is not None for i in ids):
        known = ", ".join(sorted(c.name for c in store.categories())) or "(none)"
        raise BadInput(str(ckpt), "classes", f"none of the detector's {len(classes)} classes "
                       f"({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}) is a category of the "
                       f"project {store.path} (it has: {known})")
    return ids


def prediction_source(ckpt: str | Path, meta: dict) -> str:
    return f"{meta['family']}:{Path(ckpt).stem}"


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


def best_regions(anns: list[Annotation], thresholds: Thresholds | None) -> list[Annotation]:
    """A segmentation model's regions scoring at least the threshold, the best ``max_detections``
    (its detections are cut inside the detector, before NMS; a region needs no NMS)."""
    if thresholds is None:
        return anns
    floor = thresholds.score_threshold
    kept = [a for a in anns if floor is None or (a.score if a.score is not None else 1.0) >= floor]
    if thresholds.max_detections is not None and len(kept) > thresholds.max_detections:
        kept = sorted(kept, key=lambda a: -(a.score or 0.0))[: thresholds.max_detections]
    return kept


def predict_annotations(predictor, rgb: np.ndarray, image_id: int, category_ids, source: str,
                        attributes: dict | None = None, next_instance: int = 0,
                        thresholds: Thresholds | None = None) -> tuple[list[Annotation], int]:
    """Annotations of one image from a predictor of either shape; returns (anns, last instance id).

    ``thresholds``: what the user set (None: the model's defaults); a detector applies them itself."""
    attributes = dict(attributes or {})
    if isinstance(predictor, Annotator):
        anns = predictor.annotate(rgb, image_id, category_ids, source, attributes=attributes)
        return best_regions(anns, thresholds), next_instance
    det = predictor.predict(rgb, **(thresholds.given() if thresholds is not None else {}))
    return _detections_to_annotations(det, image_id, category_ids, source, attributes, next_instance)


def paint_class_ids(anns: list[Annotation], height: int, width: int) -> np.ndarray:
    """Predicted annotations -> project category ids per pixel (0 background); higher scores on top."""
    dtype = np.uint8 if all(a.category_id < 256 for a in anns) else np.uint16
    out = np.zeros((height, width), dtype)
    for a in sorted(anns, key=lambda a: (a.score or 0.0, a.kind == "mask")):
        if a.kind in ("mask", "polygon", "box"):
            out[geometry_to_mask(a.geometry, height, width) > 0] = a.category_id
    return out


def coco_result_entries(anns: list[Annotation]) -> list[dict]:
    """COCO results entries (image_id, category_id, bbox xywh, score, RLE segmentation for masks)
    of predicted annotations, one per predicted object.

    A Mask R-CNN object is stored as a mask and a box sharing an instance id: it becomes ONE
    entry whose bbox is the detector's box (not the mask's bounds, which differ), so box mAP of
    this file equals ``visionbench eval``'s box_map.
    """
    boxes = {a.instance_id: a.geometry for a in anns if a.kind == "box" and a.instance_id is not None}
    masked = {a.instance_id for a in anns if a.kind == "mask" and a.instance_id is not None}
    out = []
    for a in anns:
        if a.kind == "box" and a.instance_id in masked:
            continue  # the mask entry of this instance carries the box too
        if a.kind not in ("mask", "box"):
            continue
        x1, y1, x2, y2 = bounds(boxes.get(a.instance_id, a.geometry) if a.kind == "mask" else a.geometry)
        entry = {"image_id": a.image_id, "category_id": a.category_id, "bbox": [x1, y1, x2 - x1, y2 - y1],
                 "score": float(a.score if a.score is not None else 1.0)}
        if a.kind == "mask":
            entry["segmentation"] = {"size": list(a.geometry.size), "counts": a.geometry.counts}
        out.append(entry)
    return out


def write_class_names(folder: Path, store: ProjectStore) -> None:
    """``class_names.txt`` for category-id PNGs: line k names category id k ("_background_" at 0).

    Ids the project no longer uses get an empty line, so the file stays a plain index -> name list
    (the same as ``export masks`` writes when the ids are 1..N in project order).
    """
    by_id = {c.id: c.name for c in store.categories()}
    lines = ["_background_"] + [by_id.get(k, "") for k in range(1, max(by_id, default=0) + 1)]
    (folder / "class_names.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


STORE_MODES = ("proposals", "truth", "none")


def default_store(masks_out=None, coco_results=None) -> str:
    """What ``predict`` stores when not told: nothing when the results go to files (asking for a
    results file is not asking to change the project), otherwise proposals to review."""
    return "none" if (masks_out or coco_results) else "proposals"


def stored_form(anns: list[Annotation], store: str) -> list[Annotation]:
    """Predictions as the project keeps them: proposals to review, or (``truth``, only when asked)
    accepted ground truth with the model's score in ``attributes["model_score"]``."""
    if store == "proposals":
        return [as_proposal(a) for a in anns]
    return [accepted(as_proposal(a)) for a in anns]


def _replaces(old: Annotation, source: str, store: str) -> bool:
    """Which of this source's earlier annotations a new run replaces: its proposals not yet
    reviewed (accepted ones are the user's now), and, when storing truth, its earlier truth too."""
    return old.source == source and (store == "truth" or is_proposal(old))


def predict_command(ckpt, project, split: str | None = None, store: str | None = None, masks_out=None,
                    coco_results=None, progress=None, device: str = "auto", score_threshold: float | None = None,
                    nms_iou: float | None = None, max_detections: int | None = None,
                    as_proposals: bool = False) -> dict:
    """Predict every image of ``split`` (None = all) of a project; store and/or write the results.

    store: "proposals" (reviewable, rejectable; never train or score), "truth" (ground truth, the
    model's score kept as ``attributes["model_score"]``) or "none" (the project is opened read-only
    and stays byte-for-byte as it was); None = :func:`default_store`. ``as_proposals`` is the old
    spelling of store="proposals" (deprecated). A new run replaces what :func:`_replaces` says.
    score_threshold / nms_iou / max_detections: None = the model's defaults (engine.infer.thresholds).

    masks_out writes one PNG per image whose pixels are the PROJECT's category ids (0 =
    background), at the relative path where ``visionbench export masks`` puts that image's
    SegmentationClass PNG (images sharing a file name in different folders cannot overwrite each
    other), plus ``class_names.txt`` (line k = name of category id k); coco_results writes a COCO
    results JSON (image and category ids as ``visionbench export coco``). Returns what was
    predicted, stored and written, as a dict.

    All or nothing: the model's classes must be categories of the project (BadInput naming the
    checkpoint's ``classes`` otherwise; none are created), and every image is predicted inside
    ONE transaction, so an image the model cannot take (BadInput naming it) or any other failure
    leaves the project as it was. Mask PNGs and the results file appear only after the commit.
    """
    from engine.train.run import event_sink

    if as_proposals and store not in (None, "proposals"):
        raise ValueError(f"as_proposals contradicts store={store!r}")
    store = store or ("proposals" if as_proposals else default_store(masks_out, coco_results))
    if store not in STORE_MODES:
        raise ValueError(f"store must be one of {', '.join(STORE_MODES)}, got {store!r}")
    thresholds = Thresholds(score_threshold, nms_iou, max_detections)
    predictor, meta, spec = load_predictor(ckpt, device)
    thresholds.check_for(spec.kind, ckpt)
    source = prediction_source(ckpt, meta)
    masks_dir = Path(masks_out) if masks_out else None
    writes = store != "none"
    on_event, close = event_sink(progress, f"predict {Path(ckpt).name}")
    project_store = ProjectStore(project, readonly=not writes)
    staging: Path | None = None
    staged: list[tuple[Path, Path]] = []
    results: list[dict] = []
    counts = {"images": 0, "annotations": 0, "stored": 0, "replaced": 0}
    try:
        category_ids = checkpoint_category_ids(project_store, meta, ckpt)
        if masks_dir is not None:
            masks_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".predict-", dir=masks_dir))
        with inference_threads(predictor), (project_store.transaction() if writes else nullcontext()):
            next_instance = int(project_store.execute(
                "SELECT COALESCE(MAX(instance_id), 0) FROM annotations").fetchone()[0])
            images = project_store.images(split=split)
            mask_names = export_names(images) if staging is not None else {}
            for n, rec in enumerate(images):
                rgb = read_model_image(project_store.image_path(rec))
                anns, next_instance = predict_annotations(predictor, rgb, rec.id, category_ids, source, {},
                                                          next_instance, thresholds)
                if writes:
                    for old in project_store.annotations(rec.id):
                        if _replaces(old, source, store):
                            project_store.delete_annotation(old.id)
                            counts["replaced"] += 1
                    counts["stored"] += len(project_store.add_annotations(stored_form(anns, store)))
                counts["images"] += 1
                counts["annotations"] += len(anns)
                if staging is not None:
                    name = Path(mask_names[rec.id]).with_suffix(".png")
                    (staging / name).parent.mkdir(parents=True, exist_ok=True)
                    if not cv2.imwrite(str(staging / name), paint_class_ids(anns, rgb.shape[0], rgb.shape[1])):
                        raise BadInput(str(masks_dir / name), "masks_out", "could not write the mask PNG")
                    staged.append((staging / name, masks_dir / name))
                if coco_results:
                    results.extend(coco_result_entries(anns))
                on_event(Progress(n + 1, len(images), rec.path))
        for tmp, target in staged:  # committed: now the PNGs may appear
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        if masks_dir is not None:
            write_class_names(masks_dir, project_store)
        if coco_results:
            write_json_atomic(Path(coco_results), results)
    finally:
        project_store.close()
        close()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return {"checkpoint": str(ckpt), "family": meta["family"], "source": source, "split": split,
            "thresholds": thresholds.given(), **counts, "store": store,
            "project": str(project) if writes else None,
            "masks_out": str(masks_dir) if masks_dir else None,
            "coco_results": str(coco_results) if coco_results else None}


def predict_image_job(token, checkpoint, store_path, image_id: int, device: str = "auto",
                      score_threshold: float | None = None, nms_iou: float | None = None,
                      max_detections: int | None = None):
    """Job: pre-label one image for the workbench; returns (unsaved) proposals.

    Segmentation models also yield "heatmaps" and "argmax" previews. The caller adds the
    returned annotations through its edit history so they can be undone; they are proposals
    (``engine.data.truth``) until the user accepts them. Thresholds as ``predict_command``.
    """
    from engine.viz import previews as pv
    from engine.viz.heatmaps import segmentation_preview

    thresholds = Thresholds(score_threshold, nms_iou, max_detections)
    yield Progress(0, 3, "loading model")
    predictor, meta, spec = load_predictor(checkpoint, device)
    thresholds.check_for(spec.kind, checkpoint)
    if isinstance(predictor, Translator):  # an image-to-image model: a picture, shown as a live view
        from engine.infer.translate import translation_previews

        yield from translation_previews(predictor, store_path, image_id)
        return []
    store = ProjectStore(store_path, readonly=True)
    try:
        rec = store.image(image_id)
        path = store.image_path(rec)
        category_ids = project_category_ids(list(meta["classes"]), store, checkpoint, strict=False)
        colors = [store.category(c).color if c is not None else "#808080" for c in category_ids]
    finally:
        store.close()
    rgb = read_model_image(path)
    yield Progress(1, 3, "predicting")
    source = prediction_source(checkpoint, meta)
    if hasattr(predictor, "probabilities"):
        with inference_threads(predictor):
            probs = predictor.probabilities(rgb, should_stop=token.raise_if_cancelled)
        views = segmentation_preview(rgb, probs, list(meta["classes"]), colors)
        heat, arg = views["heatmaps"], views["argmax"]
        yield pv.heatmap("heatmaps", heat["probs"], heat["classes"], (0.0, 1.0), title="probability")
        yield pv.class_map("argmax", arg["image"], arg["class_map"], arg["palette"], arg["classes"], title="argmax")
        anns = best_regions(predictor.annotate(rgb, image_id, category_ids, source, probs=probs), thresholds)
    else:
        with inference_threads(predictor):
            anns, _ = predict_annotations(predictor, rgb, image_id, category_ids, source, thresholds=thresholds)
    if isinstance(predictor, PreviewSource):  # any family's live views of one prediction, drawn by kind
        for preview in predictor.previews(rgb):
            yield preview
    missing = [c for c, cid in zip(meta["classes"], category_ids) if cid is None]
    if missing:
        yield Log(f"classes not in this project, skipped: {', '.join(missing)}", level="warning")
    yield Progress(3, 3, f"{len(anns)} regions")
    return stored_form(anns, "proposals")

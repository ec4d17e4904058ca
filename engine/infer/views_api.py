"""Background jobs behind the workbench's detector views (compare, NMS, inside R-CNN, YOLO grid).

Each job reads the project image itself (a large photo must not be decoded on the GUI thread)
unless the view hands it the pixels it shows, opens the detector unless the view hands back the
predictor it got last time, and returns plain numpy results plus that predictor. Every job
yields a Progress between the slow parts, so a view that moved on to another image can cancel it.
Every job runs below the GUI thread's priority (``engine.jobs.priority``).

Job results are dicts; every one holds ``"image"`` (uint8 RGB [H, W, 3]) and ``"predictor"``
(None when no detector was asked for).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.jobs import Progress
from engine.jobs.priority import yield_cpu_to_gui

__all__ = ["DETECTOR_SUFFIXES", "candidates_job", "class_mismatch", "detect_job", "list_detector_files", "masks_for",
           "rcnn_inspection_job", "torchvision_cache_files", "yolo_grid_job"]

DETECTOR_SUFFIXES = (".ckpt", ".onnx", ".pth", ".pt")


def list_detector_files(folder, limit: int = 200) -> list[Path]:
    """Detector files (``.ckpt``, ``.onnx``, ``.pth``, ``.pt``) under ``folder``, newest first, at
    most ``limit``; [] when the folder does not exist. Meant for a project's small models/ folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.rglob("*") if p.suffix.lower() in DETECTOR_SUFFIXES and p.is_file()]
    found.sort(key=lambda p: (-p.stat().st_mtime, str(p)))
    return found[:limit]


def torchvision_cache_files(model_folder=None) -> list[Path]:
    """COCO detector weights the user has (never downloaded here), by file name: ``<arch>*.pth``
    for the architectures ``load_detector`` knows, in the user's model folder and torch's hub cache
    (``<TORCH_HOME or $XDG_CACHE_HOME/torch or ~/.cache/torch>/hub/checkpoints``). Found without
    importing torch (the GUI thread calls this)."""
    from engine.infer.detector_api import TORCHVISION_COCO_ARCHS
    from engine.infer.pretrained import weight_dirs

    found: list[Path] = []
    for folder in weight_dirs(model_folder):
        if folder.is_dir():
            found += sorted(p for p in folder.glob("*.pth") if p.name.lower().startswith(tuple(TORCHVISION_COCO_ARCHS)))
    return found


def class_mismatch(class_names, category_names) -> str | None:
    """A sentence when the detector's classes are not all categories of the project, else None.

    Classes are matched by name (as the compare view and ``visionbench eval`` do); a detector
    trained on another project finds nothing that counts as a true positive here.
    """
    names = list(class_names)
    known = set(category_names)
    missing = [n for n in names if n not in known]
    if not missing:
        return None
    if len(missing) == len(names):
        return (f"none of the detector's classes ({', '.join(names[:6])}{'…' if len(names) > 6 else ''}) is a "
                f"category of this project ({', '.join(sorted(known)) or 'none'}): was it trained on another "
                f"project?")
    return f"{len(missing)} of the detector's {len(names)} classes are not categories of this project"


def _threads(predictor):
    """torch CPU threads for one interactive run: all cores but one (``inference_threads``).
    With torch's default (every core) a 100 ms Faster R-CNN run in the workbench took 0.9-1.4 s
    now and then while other processes loaded the machine; with one thread fewer it stayed at
    60-120 ms (2 cores, measured 2026-11-22)."""
    from engine.infer.run import inference_threads

    return inference_threads(predictor)


def _read(image_path: str) -> np.ndarray:
    """uint8 RGB [H, W, 3] as the models take it (``visionbench predict`` reads the same way);
    BadInput naming the file for pixels a model cannot take."""
    from engine.infer.run import read_model_image

    return read_model_image(image_path)


def _open(detector_path: str, predictor, device: str):
    if predictor is not None:
        return predictor
    from engine.infer.detector_api import load_detector

    return load_detector(detector_path, device)


def detect_job(token, path: str, image: np.ndarray, predictor=None, device: str = "auto"):
    """Job (the compare view): (load, warm up and) run one detector on ``image``.

    Returns {"predictor", "raw": ``RawCandidates`` before NMS (xyxy pixels), "latency_ms"}. The
    predictor is returned so the view can keep it for the next image instead of loading the file
    again.
    """
    yield_cpu_to_gui()
    if predictor is None:
        yield Progress(0, 3, f"loading {Path(path).name}")
        predictor = _open(path, None, device)
        # the first call of a fresh model pays one-off costs (allocator, lazy init, ONNX session
        # warm-up): run once untimed, so the latency shown is that of a warm model
        yield Progress(1, 3, f"warming up {predictor.name}")
        with _threads(predictor):
            predictor.raw_candidates(image)
    yield Progress(2, 3, f"running {predictor.name}")
    with _threads(predictor):
        raw = predictor.raw_candidates(image)
    latency = float(predictor.last_latency_ms)
    masks = None
    if getattr(predictor, "has_masks", False):
        # a mask comes from the mask head on a final box, not from a candidate: the detections at
        # the model's defaults bring them, and the view pairs them with the boxes it keeps
        yield Progress(3, 4, f"masks of {predictor.name}")
        with _threads(predictor):
            det = predictor.predict(image)
        masks = {"boxes": det.boxes, "labels": det.labels, "masks": det.masks}
    return {"predictor": predictor, "raw": raw, "latency_ms": latency, "masks": masks}


def masks_for(boxes, labels, masks: dict | None, min_iou: float = 0.9) -> list:
    """The mask (bool [H, W]) of each kept box: that of the detection of the same label whose box
    overlaps it by IoU >= ``min_iou`` (the same box, found again), else None. ``masks`` is
    ``detect_job``'s "masks" entry (None for detectors without masks)."""
    from engine.eval.coco_eval import box_iou_matrix

    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if masks is None or masks.get("masks") is None or not len(masks["boxes"]) or not len(boxes):
        return [None] * len(boxes)
    ious = box_iou_matrix(boxes, np.asarray(masks["boxes"], np.float64).reshape(-1, 4))
    same = np.asarray(labels).reshape(-1, 1) == np.asarray(masks["labels"]).reshape(1, -1)
    ious = np.where(same, ious, 0.0)
    out = []
    for row in ious:
        j = int(np.argmax(row))
        out.append(masks["masks"][j] if row[j] >= min_iou else None)
    return out


def candidates_job(token, image_path: str, detector_path: str | None = None, predictor=None,
                   device: str = "auto"):
    """Job: the image and, when a detector is given, its candidates BEFORE the final NMS.

    Returns {"image", "predictor", "raw": RawCandidates | None (xyxy pixels), "latency_ms"}.
    """
    yield_cpu_to_gui()
    yield Progress(0, 3, f"reading {Path(image_path).name}")
    image = _read(image_path)
    if not detector_path and predictor is None:
        return {"image": image, "predictor": None, "raw": None, "latency_ms": None}
    yield Progress(1, 3, f"loading {Path(str(detector_path)).name}")
    predictor = _open(detector_path, predictor, device)
    yield Progress(2, 3, f"running {predictor.name}")
    with _threads(predictor):
        raw = predictor.raw_candidates(image)
    return {"image": image, "predictor": predictor, "raw": raw, "latency_ms": float(predictor.last_latency_ms)}


def rcnn_inspection_job(token, image_path: str, detector_path: str | None = None, predictor=None,
                        device: str = "auto"):
    """Job: the image and an ``engine.viz.rpn.RcnnInspection`` of a two-stage detector on it.

    Returns {"image", "predictor", "inspection" (None without a detector)}. A detector without a
    region proposal network (YOLO, ONNX) raises ValueError naming the file.
    """
    yield_cpu_to_gui()
    yield Progress(0, 3, f"reading {Path(image_path).name}")
    image = _read(image_path)
    if not detector_path and predictor is None:
        return {"image": image, "predictor": None, "inspection": None}
    yield Progress(1, 3, f"loading {Path(str(detector_path)).name}")
    predictor = _open(detector_path, predictor, device)
    model = getattr(predictor, "model", None)
    if model is None or not hasattr(model, "rpn"):
        raise ValueError(f"{detector_path}: {predictor.name} is not a two-stage detector (Faster/Mask R-CNN); "
                         f"it has no region proposal network to look inside")
    token.raise_if_cancelled()
    yield Progress(2, 3, "running the backbone and the RPN")
    from engine.viz.rpn import RcnnInspection

    with _threads(predictor):
        inspection = RcnnInspection(model, image)
    return {"image": image, "predictor": predictor, "inspection": inspection}


def yolo_grid_job(token, image_path: str | None = None, detector_path: str | None = None, predictor=None,
                  gt_boxes=None, device: str = "auto", image: np.ndarray | None = None):
    """Job: the image and our YOLO's grid on it (``engine.viz.yolo_grid.GridExplanation``).

    image: the pixels when the view has them already (uint8 RGB [H, W, 3]), else read from
    ``image_path``. gt_boxes: [G, 4] xyxy pixels, for the responsible cells. Returns {"image",
    "predictor", "explanation" (None without a detector)}. Anything but a Visionbench "yolo"
    checkpoint raises DetectorLoadError naming the file and its 'family' field.
    """
    yield_cpu_to_gui()
    if image is None:
        yield Progress(0, 3, f"reading {Path(str(image_path)).name}")
        image = _read(image_path)
    if not detector_path and predictor is None:
        return {"image": image, "predictor": None, "explanation": None}
    if predictor is None:
        yield Progress(1, 3, f"loading {Path(str(detector_path)).name}")
        from engine.infer.yolo_predictor import YoloPredictor

        predictor = YoloPredictor.from_checkpoint(detector_path, device)
    yield Progress(2, 3, "running the grid")
    from engine.viz.yolo_grid import explain_image

    with _threads(predictor):
        explanation = explain_image(predictor, image, gt_boxes)
    return {"image": image, "predictor": predictor, "explanation": explanation}

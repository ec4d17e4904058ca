"""``visionbench predict CKPT IMAGE|DIR|GLOB ...``: a model on image files, no project needed.

Per image, the results go where the user asked:
- ``out``: a LabelMe JSON (what LabelMe's own loader takes: version, flags, shapes, imagePath,
  imageData null, imageHeight, imageWidth) beside a copy of the image, or beside the image itself
  when it already lies there (``--out`` = the photos' folder gives LabelMe's own layout);
- ``masks_out``: a PNG whose pixels are class index + 1 (0 background), and ``class_names.txt``;
- ``coco_results``: a COCO results list (image ids 1..N in input order, category ids class
  index + 1) and, beside it, ``<name>_images.json``: the images and categories those ids mean,
  a COCO file without annotations (what ``pycocotools``' ``loadRes`` needs).
Relative paths under a folder or a glob's fixed part are kept, so ``a/x.jpg`` and ``b/x.jpg`` do
not meet. All or nothing: the outputs appear only once every image was predicted, and a LabelMe
file that ``predict`` did not write (a user's own labels) is never overwritten.
"""
from __future__ import annotations

import filecmp
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import cv2

from engine.annotations.errors import BadInput
from engine.annotations.formats.labelme import LABELME_VERSION, to_shape
from engine.annotations.imageio import IMAGE_EXTENSIONS
from engine.infer.run import (coco_result_entries, inference_threads, load_predictor, paint_class_ids,
                              predict_annotations, prediction_source, read_model_image, write_json_atomic)
from engine.infer.thresholds import Thresholds
from engine.jobs.events import Progress

__all__ = ["MARK", "collect_images", "predict_files_command"]

# Top-level key of the LabelMe files predict writes (LabelMe keeps unknown keys as "otherData"):
# a file without it holds someone's labels and is never overwritten.
MARK = "predictedBy"


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _glob_base(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard ("photos/**/*.jpg" -> photos)."""
    fixed = []
    for part in Path(pattern).parts:
        if _is_glob(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _skipped(path: Path, base: Path, skip: Path | None) -> bool:
    """True for copies an earlier run wrote into an output folder INSIDE the input folder (an
    output folder that is the input folder, or holds it, skips nothing)."""
    if skip is None:
        return False
    base = base.resolve()
    return skip != base and skip.is_relative_to(base) and path.resolve().is_relative_to(skip)


def _images_under(folder: Path, skip: Path | None) -> list[Path]:
    return [p for p in sorted(folder.rglob("*"))
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not _skipped(p, folder, skip)]


def collect_images(inputs: Sequence[str], skip: Path | None = None) -> list[tuple[Path, Path]]:
    """(image file, its relative output path) for each IMAGE, DIR (recursive) or GLOB argument.

    Folders and globs take files with an image suffix; a named file is taken as it is (a bad one
    fails when read). ``skip``: a folder whose files are left out (the output folder). BadInput
    naming the argument for a missing path, an empty folder or a glob matching no image, and
    naming the file when two inputs would write the same output.
    """
    skip = skip.resolve() if skip is not None else None
    chosen: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    by_output: dict[str, Path] = {}
    for text in inputs:
        path = Path(text)
        if path.is_file():
            found, base = [path], path.parent
        elif path.is_dir():
            found, base = _images_under(path, skip), path
            if not found:
                raise BadInput(text, "IMAGE",
                               f"the folder holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        elif _is_glob(text):
            base = _glob_base(text)
            found = [Path(p) for p in sorted(glob.glob(text, recursive=True))
                     if Path(p).suffix.lower() in IMAGE_EXTENSIONS and Path(p).is_file()
                     and not _skipped(Path(p), base, skip)]
            if not found:
                raise BadInput(text, "IMAGE", "the pattern matches no image file")
        else:
            raise BadInput(text, "IMAGE", "no such file or folder")
        for file in found:
            real = file.resolve()
            if real in seen:
                continue
            seen.add(real)
            rel = Path(os.path.relpath(file, base))
            key = rel.with_suffix("").as_posix()
            if key in by_output:
                raise BadInput(str(file), "IMAGE", f"its results would overwrite those of {by_output[key]} "
                               f"({key}.json); predict the two folders into different --out folders")
            by_output[key] = file
            chosen.append((file, rel))
    return chosen


def _check_masks(images: list[tuple[Path, Path]], masks_dir: Path, out: Path | None) -> None:
    """BadInput when a mask PNG would replace an input image (or a copy of one in ``out``)."""
    if out is not None and masks_dir.resolve() == out.resolve():
        raise BadInput(str(masks_dir), "--masks-out", "is the --out folder, where image copies go; choose another")
    inputs = {file.resolve() for file, _ in images}
    for _, rel in images:
        target = masks_dir / rel.with_suffix(".png")
        if target.exists() and target.resolve() in inputs:
            raise BadInput(str(target), "--masks-out", "is one of the input images; choose another --masks-out")


def _check_outputs(images: list[tuple[Path, Path]], out: Path) -> list[tuple[Path, Path]]:
    """Images to copy into ``out``; BadInput naming the file when an output would replace a
    LabelMe file predict did not write, or a different image of the same name."""
    copies = []
    for file, rel in images:
        label = out / rel.with_suffix(".json")
        if label.exists():
            try:
                ours = MARK in json.loads(label.read_text(encoding="utf-8"))
            except (OSError, ValueError, TypeError):
                ours = False
            if not ours:
                raise BadInput(str(label), "--out", "exists and was not written by visionbench predict (someone's "
                               "labels?); it is left alone: choose another --out")
        target = out / rel
        if not target.exists():
            copies.append((file, target))
        elif not (os.path.samefile(file, target) or filecmp.cmp(file, target, shallow=False)):
            raise BadInput(str(target), "--out", f"holds a different image of that name than {file}; "
                           "choose another --out")
    return copies


def predict_files_command(ckpt, inputs: Sequence[str], out=None, masks_out=None, coco_results=None,
                          progress=None, device: str = "auto", score_threshold: float | None = None,
                          nms_iou: float | None = None, max_detections: int | None = None) -> dict:
    """Predict image files (see the module docstring); returns what was written, as a dict."""
    from engine.train.run import event_sink

    if not (out or masks_out or coco_results):
        raise ValueError("predict_files_command needs out, masks_out or coco_results")
    out = Path(out) if out else None
    masks_dir = Path(masks_out) if masks_out else None
    images = collect_images(inputs, skip=out)
    copies = _check_outputs(images, out) if out is not None else []
    if masks_dir is not None:
        _check_masks(images, masks_dir, out)
    thresholds = Thresholds(score_threshold, nms_iou, max_detections)
    predictor, meta, spec = load_predictor(ckpt, device)
    thresholds.check_for(spec.kind, ckpt)
    classes = list(meta["classes"])
    source = prediction_source(ckpt, meta)
    category_ids = list(range(1, len(classes) + 1))  # class k is category k + 1: 0 stays background
    on_event, close = event_sink(progress, f"predict {Path(ckpt).name}")
    stagings: dict[Path, Path] = {}
    staged: list[tuple[Path, Path]] = []
    results: list[dict] = []
    coco_images: list[dict] = []
    n_annotations = 0
    try:
        for folder in (out, masks_dir):
            if folder is not None and folder not in stagings:
                folder.mkdir(parents=True, exist_ok=True)
                stagings[folder] = Path(tempfile.mkdtemp(prefix=".predict-", dir=folder))
        next_instance = 0
        with inference_threads(predictor):
            for n, (file, rel) in enumerate(images):
                rgb = read_model_image(file)
                height, width = rgb.shape[:2]
                anns, next_instance = predict_annotations(predictor, rgb, n + 1, category_ids, source, {},
                                                          next_instance, thresholds)
                n_annotations += len(anns)
                if out is not None:
                    doc = {"version": LABELME_VERSION, "flags": {},
                           "shapes": [to_shape(a, classes[a.category_id - 1], width, height) for a in anns],
                           "imagePath": rel.name, "imageData": None, "imageHeight": height, "imageWidth": width,
                           MARK: {"checkpoint": str(ckpt), "source": source, "thresholds": thresholds.given()}}
                    staged.append(_stage(stagings[out], out, rel.with_suffix(".json"),
                                         lambda p, d=doc: p.write_text(json.dumps(d, indent=2), encoding="utf-8")))
                if masks_dir is not None:
                    mask = paint_class_ids(anns, height, width)
                    staged.append(_stage(stagings[masks_dir], masks_dir, rel.with_suffix(".png"),
                                         lambda p, m=mask: _write_png(p, m)))
                if coco_results:
                    results.extend(coco_result_entries(anns))
                    coco_images.append({"id": n + 1, "file_name": str(file), "width": width, "height": height})
                on_event(Progress(n + 1, len(images), str(file)))
        for tmp, target in staged:  # every image predicted: now the outputs may appear
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        for file, target in copies:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)
        if masks_dir is not None:
            (masks_dir / "class_names.txt").write_text("\n".join(["_background_", *classes]) + "\n", encoding="utf-8")
        images_file = None
        if coco_results:
            images_file = Path(coco_results).with_name(Path(coco_results).stem + "_images.json")
            write_json_atomic(images_file, {"images": coco_images, "annotations": [], "categories": [
                {"id": k + 1, "name": name} for k, name in enumerate(classes)]})
            write_json_atomic(Path(coco_results), results)
    finally:
        close()
        for staging in stagings.values():
            shutil.rmtree(staging, ignore_errors=True)
    return {"checkpoint": str(ckpt), "family": meta["family"], "source": source, "inputs": list(inputs),
            "thresholds": thresholds.given(), "images": len(images), "annotations": n_annotations,
            "store": "none", "project": None, "stored": 0,
            "out": str(out) if out else None, "labelme_files": len(images) if out else 0,
            "images_copied": len(copies), "masks_out": str(masks_dir) if masks_dir else None,
            "coco_results": str(coco_results) if coco_results else None,
            "coco_images": str(images_file) if images_file else None}


def _stage(staging: Path, folder: Path, rel: Path, write) -> tuple[Path, Path]:
    tmp = staging / rel
    tmp.parent.mkdir(parents=True, exist_ok=True)
    write(tmp)
    return tmp, folder / rel


def _write_png(path: Path, mask) -> None:
    if not cv2.imwrite(str(path), mask):
        raise BadInput(str(path), "--masks-out", "could not write the mask PNG")

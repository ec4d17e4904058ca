"""Image-to-image models on a project's images: ``visionbench predict CKPT --project P --out DIR``
and the workbench's "Translate with…" (family-agnostic: any predictor offering
``engine.infer.protocol.Translator``).

A translation is a new picture, not an annotation: it goes to files (``--out DIR``, one PNG per
image under the name an export would give it) or, in the workbench, into the project as a new
image when the user asks. The project is only read here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.formats.common import export_names
from engine.annotations.store import ProjectStore
from engine.data.objects import ground_truth_objects
from engine.data.semantic import rasterize_objects
from engine.infer.protocol import Translator
from engine.jobs.events import Log, Progress

__all__ = ["class_map_for", "free_name", "load_translator", "translate_image", "translate_image_job",
           "translate_project", "translate_project_command", "write_png"]


def load_translator(ckpt: str | Path, device: str = "auto"):
    """(predictor, meta, spec) of an image-to-image checkpoint; BadInput naming the file otherwise."""
    from engine.infer.run import load_predictor

    predictor, meta, spec = load_predictor(ckpt, device)
    if spec.kind != "image2image" or not isinstance(predictor, Translator):
        raise BadInput(str(ckpt), "family", f"{meta['family']} is a {spec.kind} model; translating images needs an "
                       "image-to-image model (kind image2image)")
    return predictor, meta, spec


def class_map_for(store: ProjectStore, image_id: int, class_names: list[str], height: int, width: int) -> np.ndarray:
    """The ground-truth masks of one image as a class map [H, W] in the model's class order (0 = none).
    BadInput naming the image when it has none (a masks -> photo model has nothing to translate)."""
    by_name = {c.name: c.id for c in store.categories()}
    ids = [by_name.get(n, -1) for n in class_names]
    anns = store.annotations(image_id)
    objects = ground_truth_objects(anns, height, width, ids)
    if not objects:
        rec = store.image(image_id)
        raise BadInput(str(store.image_path(rec)), "masks", "the image has no ground-truth masks of the model's "
                       f"categories ({', '.join(class_names) or 'none'}) to translate into a photo")
    return rasterize_objects(objects, ids, height, width)[0]


def translate_image(predictor, store: ProjectStore, image_id: int) -> np.ndarray:
    """uint8 RGB [H, W, 3]: the model's translation of one project image (or of its masks)."""
    from engine.infer.run import read_model_image

    rec = store.image(image_id)
    rgb = read_model_image(store.image_path(rec))
    class_map = None
    if getattr(predictor, "needs_labels", False):
        class_map = class_map_for(store, image_id, list(getattr(predictor, "class_names", [])), rgb.shape[0],
                                  rgb.shape[1])
    return predictor.translate(rgb, class_map)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write uint8 RGB as PNG atomically (temp file, then replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    if not cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise OSError(f"could not write {path}")
    tmp.replace(path)


def translate_project(token, ckpt: str | Path, project: str | Path, out: str | Path, split: str | None = None,
                      device: str = "auto") -> Iterator:
    """Job generator: translate the images of ``split`` (all when None) into ``out``/<name>.png.
    Returns {"checkpoint", "family", "out", "images", "written", "skipped": [why, ...]}."""
    from engine.infer.run import inference_threads

    predictor, meta, _ = load_translator(ckpt, device)
    out = Path(out)
    store = ProjectStore(project, readonly=True)
    written, skipped = 0, []
    try:
        records = store.images(split=split)
        if not records:
            raise BadInput(str(project), "split", f"no images in split {split!r}" if split else "no images")
        names = export_names(records)
        with inference_threads(predictor):
            for n, rec in enumerate(records, start=1):
                token.raise_if_cancelled()
                try:
                    picture = translate_image(predictor, store, rec.id)
                except BadInput as exc:
                    skipped.append(str(exc))
                    yield Log(str(exc), level="warning")
                    continue
                write_png(out / Path(names[rec.id]).with_suffix(".png"), picture)
                written += 1
                yield Progress(n, len(records), rec.path)
    finally:
        store.close()
    return {"checkpoint": str(ckpt), "family": meta["family"], "out": str(out), "images": len(records),
            "written": written, "skipped": skipped}


def translate_project_command(ckpt, project, out, split: str | None = None, device: str = "auto",
                              progress=None) -> dict:
    """``visionbench predict CKPT --project P --out DIR`` for image-to-image models."""
    from engine.jobs.cancel import CancelToken
    from engine.train.run import drive, event_sink

    on_event, close = event_sink(progress, f"translate {Path(ckpt).name}")
    try:
        return drive(translate_project(CancelToken(), ckpt, project, out, split, device), on_event)
    finally:
        close()


def is_image2image(ckpt: str | Path) -> bool:
    """True when ``ckpt`` is a Visionbench checkpoint of an image-to-image family (never raises)."""
    from engine.models.checkpoint import load_checkpoint
    from engine.models.registry import get_family

    try:
        _, meta = load_checkpoint(ckpt)
        return get_family(str(meta["family"])).kind == "image2image"
    except Exception:  # noqa: BLE001 - anything else is for the other predict paths to report
        return False


def free_name(folder: Path, stem: str) -> Path:
    """``folder/stem.png``, or ``stem_2.png``, ``stem_3.png``... when taken."""
    path, k = folder / f"{stem}.png", 1
    while path.exists():
        k += 1
        path = folder / f"{stem}_{k}.png"
    return path


def translate_image_job(token, checkpoint: str, store_path: str, image_id: int, out_folder: str,
                        device: str = "auto"):
    """Job: translate one project image (or its masks) with an image-to-image checkpoint and write
    the result as a PNG in ``out_folder`` (a new name, never overwriting). The project is only read;
    the caller adds the file to it. Returns {"file", "width", "height", "source_image", "model",
    "input"} with input "masks" or "pixels"."""
    from engine.infer.run import inference_threads

    yield Progress(0, 3, "loading the model")
    predictor, meta, _ = load_translator(checkpoint, device)
    token.raise_if_cancelled()
    yield Progress(1, 3, "translating")
    store = ProjectStore(store_path, readonly=True)
    try:
        rec = store.image(image_id)
        with inference_threads(predictor):
            picture = translate_image(predictor, store, image_id)
    finally:
        store.close()
    token.raise_if_cancelled()
    yield Progress(2, 3, "writing")
    file = free_name(Path(out_folder), f"{Path(rec.path).stem}_{Path(checkpoint).stem}")
    write_png(file, picture)
    yield Progress(3, 3, file.name)
    return {"file": str(file), "width": int(picture.shape[1]), "height": int(picture.shape[0]),
            "source_image": rec.path, "model": f"{meta['family']}:{Path(checkpoint).stem}",
            "input": "masks" if getattr(predictor, "needs_labels", False) else "pixels"}


def translation_previews(predictor, store_path: str, image_id: int) -> Iterator:
    """Job steps: the live view "translation" (image_row: input | output) of one project image."""
    from engine.infer.run import inference_threads, read_model_image
    from engine.viz import previews as pv

    store = ProjectStore(store_path, readonly=True)
    try:
        rec = store.image(image_id)
        rgb = read_model_image(store.image_path(rec))
        class_map = None
        if getattr(predictor, "needs_labels", False):
            class_map = class_map_for(store, image_id, list(predictor.class_names), rgb.shape[0], rgb.shape[1])
    finally:
        store.close()
    yield Progress(1, 3, "translating")
    with inference_threads(predictor):
        if hasattr(predictor, "input_for"):
            a = predictor.input_for(rgb, class_map)
            out = predictor.translate_input(a)
        else:
            a, out = rgb, predictor.translate(rgb, class_map)
    yield pv.image_row("translation", [a, out], ["input", "output"], title=f"{rec.path}: input | output")
    yield Progress(3, 3, "done")

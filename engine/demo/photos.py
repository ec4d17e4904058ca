"""Real sample photos from scikit-image and scikit-learn, with a handful of hand-placed annotations.

Only images that the libraries ship inside their wheels are used (others need a download, which
is never done here); any that fail to load are left out. scikit-learn's two sample photos (a
temple under a blue sky among trees, a flower before foliage) have no annotations: they are there
for the families that learn from pixels alone (colorization, style), whose colours the other
photos lack (no blue sky, little green). Boxes were placed by eye on the
original images (xyxy pixels); the horse mask is exact (the image is a binary silhouette).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation, Box, Point
from engine.annotations.store import ProjectStore

from .shapes import DEMO_TIME

CATEGORIES = ("person", "cat", "cup", "coin", "rocket", "galaxy", "horse", "motorcycle", "eye")

# photo name -> [(category, geometry)], placed by eye on the original pixels
_BOXES: dict[str, list[tuple[str, object]]] = {
    "astronaut": [("person", Box(18, 14, 362, 512)), ("rocket", Box(352, 0, 470, 280))],
    "chelsea": [("cat", Box(0, 0, 405, 300)), ("eye", Point(172, 113)), ("eye", Point(320, 133))],
    "coffee": [("cup", Box(172, 17, 412, 305))],
    "coins": [("coin", Box(20, 33, 68, 80)), ("coin", Box(80, 38, 122, 78)), ("coin", Box(132, 27, 180, 77)),
              ("coin", Box(192, 29, 238, 76)), ("coin", Box(255, 35, 297, 75)), ("coin", Box(305, 13, 365, 85))],
    "rocket": [("rocket", Box(302, 125, 342, 405))],
    "hubble_deep_field": [("galaxy", Box(105, 378, 142, 420)), ("galaxy", Box(700, 450, 752, 500)),
                          ("galaxy", Box(272, 90, 310, 125)), ("galaxy", Box(400, 700, 442, 740)),
                          ("galaxy", Box(490, 425, 537, 452)), ("galaxy", Box(955, 468, 1000, 505))],
    "motorcycle": [("motorcycle", Box(92, 95, 685, 452))],
}
_VAL = ("coffee", "rocket")
_PARTLY = ("coins", "hubble_deep_field")  # only some objects labelled: left in progress


def _load(name: str) -> np.ndarray | None:
    """uint8 image [H, W] or [H, W, 3] (RGB) from skimage.data, or None if it is not available offline."""
    import skimage.data as data

    try:
        if name in SKLEARN_PHOTOS:
            from sklearn.datasets import load_sample_image

            return np.ascontiguousarray(load_sample_image(f"{name}.jpg"))
        if name == "motorcycle":
            return data.stereo_motorcycle()[0]
        img = getattr(data, name)()
    except Exception:  # noqa: BLE001 - missing optional data (pooch) must not break the demo
        return None
    if img.dtype == bool:
        img = np.where(img, 255, 0).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img)


SKLEARN_PHOTOS = ("china", "flower")  # sklearn.datasets.load_sample_image
PHOTOS = ("astronaut", "chelsea", "coffee", "coins", "rocket", "hubble_deep_field", "motorcycle", "horse",
          "camera", "immunohistochemistry", "page", "text", "moon") + SKLEARN_PHOTOS


def build_photos(out_dir: str | Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write OUT/photos/* and OUT/photos.vbproj; returns the project path."""
    out_dir = Path(out_dir)
    img_dir = out_dir / "photos"
    img_dir.mkdir(parents=True, exist_ok=True)
    project = out_dir / "photos.vbproj"
    store = ProjectStore.create(project)
    try:
        with store.transaction():
            cats = {name: store.add_category(name).id for name in CATEGORIES}
            anns: list[Annotation] = []
            for i, name in enumerate(PHOTOS):
                img = _load(name)
                if img is None:
                    continue
                colour = img.ndim == 3
                # JPEG for colour photos keeps the folder small; PNG keeps gray/binary ones exact
                f = img_dir / (f"{name}.jpg" if colour else f"{name}.png")
                bgr = img[:, :, ::-1] if colour else img
                params = [cv2.IMWRITE_JPEG_QUALITY, 92] if colour else []
                if not cv2.imwrite(str(f), bgr, params):
                    raise OSError(f"could not write {f}")
                h, w = img.shape[:2]
                labels = list(_BOXES.get(name, []))
                if name == "horse":
                    labels.append(("horse", encode_mask(img == 0)))  # the silhouette is black on white
                status = "new" if not labels else ("in_progress" if name in _PARTLY else "done")
                rec = store.add_image(f, w, h, split="val" if name in _VAL else "train", status=status)
                for cat, geom in labels:
                    anns.append(Annotation(rec.id, cats[cat], geom, created=DEMO_TIME, updated=DEMO_TIME))
                if progress:
                    progress(i + 1, len(PHOTOS))
            store.bulk_insert_annotations(anns)
    finally:
        store.close()
    return project

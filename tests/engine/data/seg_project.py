"""A tiny synthetic segmentation project for U-Net tests: bright discs and squares on noise.

Discs are stored as a Box AND a MaskRLE sharing an instance_id (like the demo project);
squares as polygons. Deterministic for a given seed.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation, Box, Polygon
from engine.annotations.store import ProjectStore


def draw_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[str, np.ndarray, tuple]]]:
    """An RGB uint8 image and its objects [(name, mask, extra)]: one disc and one square, apart."""
    image = (rng.normal(60, 12, (size, size, 3))).clip(0, 255).astype(np.uint8)
    objects = []
    r = int(rng.integers(size // 10, size // 6))
    cx, cy = int(rng.integers(r + 1, size // 2 - 1)), int(rng.integers(r + 1, size - r - 1))
    disc = np.zeros((size, size), np.uint8)
    cv2.circle(disc, (cx, cy), r, 1, -1)
    image[disc > 0] = (220, 80, 60)
    objects.append(("disc", disc, (cx - r, cy - r, cx + r + 1, cy + r + 1)))
    s = int(rng.integers(size // 6, size // 4))
    x0, y0 = int(rng.integers(size // 2 + 1, size - s - 1)), int(rng.integers(1, size - s - 1))
    square = np.zeros((size, size), np.uint8)
    square[y0:y0 + s, x0:x0 + s] = 1
    image[square > 0] = (60, 200, 90)
    objects.append(("square", square, (x0, y0, x0 + s, y0 + s)))
    return image, objects


def make_seg_project(folder: Path, n_train: int = 8, n_val: int = 4, size: int = 48, seed: int = 0) -> Path:
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.vbproj"
    rng = np.random.default_rng(seed)
    store = ProjectStore.create(path)
    try:
        disc = store.add_category("disc", "#e6194b")
        square = store.add_category("square", "#3cb44b")
        ids = {"disc": disc.id, "square": square.id}
        inst = 0
        for n in range(n_train + n_val):
            image, objects = draw_scene(rng, size)
            file = folder / "images" / f"img_{n:03d}.png"
            cv2.imwrite(str(file), image[:, :, ::-1])
            rec = store.add_image(file, size, size, split="train" if n < n_train else "val")
            anns = []
            for name, mask, (x1, y1, x2, y2) in objects:
                inst += 1
                if name == "disc":
                    anns.append(Annotation(rec.id, ids[name], Box(x1, y1, x2, y2), instance_id=inst))
                    anns.append(Annotation(rec.id, ids[name], encode_mask(mask), instance_id=inst))
                else:
                    poly = Polygon(((x1, y1), (x2, y1), (x2, y2), (x1, y2)))
                    anns.append(Annotation(rec.id, ids[name], poly))
            store.add_annotations(anns)
    finally:
        store.close()
    return path

"""Synthetic "shapes" set: circles, rectangles and triangles on textured backgrounds.

Every object is stored twice, sharing one `instance_id` (unique in the project):
- a `MaskRLE` of its VISIBLE pixels (later objects occlude earlier ones), exact to the pixel;
- a `Box`, the tight xyxy box of that visible mask (pixel-corner coordinates, so a mask covering
  columns 3..7 gives x1=3, x2=8).
Detectors train from the boxes, segmenters from the masks; pair them by `instance_id`.
Deterministic for a seed: the same seed gives the same pixels and annotations.

Appearance follows the class, as in a real scene (a road is grey, the sky is blue): each category
has its own colour family and shading grain (``APPEARANCE``), the background its own dark slate
with faint stripes. The random colours drawn per image and per object are only a moderate jitter
around those families, so a model of the masks can predict the picture (labels -> photo) while
no two objects look exactly alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation, Box
from engine.annotations.store import ProjectStore

CATEGORIES = (("circle", "#e6194b"), ("rectangle", "#3cb44b"), ("triangle", "#4363d8"))
# category -> (base RGB, shading grain: the factor on the per-pixel shading noise of sigma 8)
APPEARANCE = {"circle": ((235.0, 80.0, 60.0), 0.5), "rectangle": ((80.0, 200.0, 90.0), 1.0),
              "triangle": ((80.0, 120.0, 235.0), 1.5)}
BACKGROUND = (35.0, 40.0, 50.0)  # dark slate
# A drawn colour c (uniform 0..255 for objects, 40..215 for the background) moves its family's base
# by jitter * (c - 127.5): objects within about +-15 levels per channel, the background +-5.
JITTER, BACKGROUND_JITTER = 0.12, 0.06
BACKGROUND_TEXTURE = 0.2  # the background's gradient, stripes and grain at this fraction of their drawn size
SIZE = 128            # images are SIZE x SIZE pixels
VAL_FRACTION = 0.2
MIN_VISIBLE = 0.5     # an object keeps at least this fraction of its pixels visible
DEMO_TIME = 1_700_000_000.0  # fixed created/updated stamps keep the demo byte-for-byte reproducible

Progress = Callable[[int, int], None]


def family_colour(base, drawn: np.ndarray, jitter: float) -> np.ndarray:
    """A colour of the family ``base`` (RGB): the drawn random colour is its jitter."""
    return np.asarray(base, np.float64) + jitter * (np.asarray(drawn, np.float64) - 127.5)


def textured_background(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """The background's look: dark slate, with a faint linear gradient, faint random stripes and grain
    -> uint8 RGB [size, size, 3]. The random draws (and their order) are those of a fully random
    background; they now only jitter the slate."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    c0, c1 = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    k = BACKGROUND_TEXTURE
    img = (family_colour(BACKGROUND, c0, BACKGROUND_JITTER)[None, None, :]
           + (k * BACKGROUND_JITTER * (c1 - c0))[None, None, :] * ramp[:, :, None])
    if rng.random() < 0.7:
        period = rng.uniform(6, 24)
        theta = rng.uniform(0, np.pi)
        phase = (np.cos(theta) * xx + np.sin(theta) * yy) * size / period
        img += (k * rng.uniform(10, 35) * np.sign(np.sin(2 * np.pi * phase)))[:, :, None]
    img += k * rng.normal(0, rng.uniform(4, 14), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape_mask(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """Full (unoccluded) mask of one random shape, uint8 [size, size] in {0, 1}."""
    m = np.zeros((size, size), np.uint8)
    r = rng.uniform(0.08, 0.22) * size
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    if kind == "circle":
        # cv2 works on integer pixel centres; shift=4 gives 1/16-pixel precision
        cv2.circle(m, (int(cx * 16), int(cy * 16)), int(r * 16), 1, thickness=-1, lineType=cv2.LINE_8, shift=4)
    elif kind == "rectangle":
        w, h = r * rng.uniform(1.0, 2.0), r * rng.uniform(0.6, 1.6)
        pts = cv2.boxPoints(((cx, cy), (w, h), rng.uniform(0, 90)))
        cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    else:
        angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2]) + rng.uniform(-0.35, 0.35, 3)
        pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
        cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m


def render_scene(rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """One image and its objects: (uint8 RGB [size, size, 3], [(category name, visible mask [size, size])]).

    Objects are painted in order, so later ones occlude earlier ones; a new object that would hide
    more than half of an earlier one is redrawn elsewhere (up to a few tries, then dropped).
    """
    img = textured_background(rng, size)
    objects: list[tuple[str, np.ndarray, int]] = []  # (name, visible mask, full area)
    for _ in range(int(rng.integers(1, 5))):
        name = CATEGORIES[int(rng.integers(0, len(CATEGORIES)))][0]
        for _try in range(6):
            full = _shape_mask(rng, name, size)
            if full.sum() < 20:
                continue
            ok = all(((vis & (1 - full)).sum() >= MIN_VISIBLE * area) for _, vis, area in objects)
            if ok:
                break
        else:
            continue
        objects = [(n, vis & (1 - full), a) for n, vis, a in objects]
        objects.append((name, full, int(full.sum())))
        base, grain = APPEARANCE[name]
        colour = family_colour(base, rng.uniform(0, 255, 3), JITTER)
        # a little shading so objects are not flat decals; its grain is the class's texture
        shade = grain * rng.normal(0, 8, (size, size, 1)) + colour[None, None, :]
        sel = full.astype(bool)
        img[sel] = np.clip(shade[sel], 0, 255).astype(np.uint8)
    return img, [(n, vis) for n, vis, _ in objects if vis.any()]


def mask_box(mask: np.ndarray) -> Box:
    """Tight xyxy box of a non-empty mask [H, W], pixel-corner coordinates."""
    ys, xs = np.nonzero(mask)
    return Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def build_shapes(out_dir: str | Path, n_images: int = 400, seed: int = 0,
                 progress: Progress | None = None) -> Path:
    """Write OUT/shapes/*.png and OUT/shapes.vbproj; returns the project path."""
    out_dir = Path(out_dir)
    img_dir = out_dir / "shapes"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1])
    n_val = int(round(n_images * VAL_FRACTION))
    val = set(rng.permutation(n_images)[:n_val].tolist())
    project = out_dir / "shapes.vbproj"
    store = ProjectStore.create(project)
    try:
        with store.transaction():
            cats = {name: store.add_category(name, color).id for name, color in CATEGORIES}
            anns: list[Annotation] = []
            instance = 0
            for i in range(n_images):
                img, objects = render_scene(rng)
                f = img_dir / f"shape_{i:04d}.png"
                cv2.imwrite(str(f), img[:, :, ::-1])
                rec = store.add_image(f, SIZE, SIZE, split="val" if i in val else "train", status="done")
                for name, vis in objects:
                    instance += 1
                    common = dict(image_id=rec.id, category_id=cats[name], instance_id=instance,
                                  source="synthetic", created=DEMO_TIME, updated=DEMO_TIME)
                    anns.append(Annotation(geometry=mask_box(vis), **common))
                    anns.append(Annotation(geometry=encode_mask(vis), **common))
                if progress:
                    progress(i + 1, n_images)
            store.bulk_insert_annotations(anns)
    finally:
        store.close()
    return project

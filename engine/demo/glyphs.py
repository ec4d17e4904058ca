"""Synthetic "glyphs" set for one-shot learning (Omniglot-like): many identities, few images each.

A glyph identity is 2-3 pen strokes, each a smooth curve through 3-5 random control points in the
unit square (Catmull-Rom through them). A rendering is one person's handwriting of it: every
control point jittered, the whole glyph slightly rotated, scaled, sheared and shifted, a pen
width of its own, drawn antialiased in dark ink on light paper (SIZE x SIZE, 8-bit grey PNG).

Project: one category ``glyph``; each image carries one whole-image Box whose
``attributes["identity"]`` names its glyph (``glyph-0042``), so the whole image is the item a
Siamese model learns from. Splits are by identity: all renderings of a validation glyph are
in ``val`` (no validation glyph is ever seen in training). Deterministic for a seed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from engine.annotations.model import Annotation, Box
from engine.annotations.store import ProjectStore

from .shapes import DEMO_TIME, VAL_FRACTION

SIZE = 64
RENDERINGS = 10
CATEGORY = ("glyph", "#911eb4")
JITTER = 0.035         # control point jitter (share of the glyph box)
SUPERSAMPLE = 4        # drawn at 4x and reduced: smooth, sub-pixel strokes

Progress = Callable[[int, int], None]


def glyph_strokes(rng: np.random.Generator) -> list[np.ndarray]:
    """One identity: 2-3 strokes, each float [P, 2] control points in [0.12, 0.88]^2 (a single
    stroke is too often a plain line, which many identities would share)."""
    strokes = []
    for _ in range(int(rng.integers(2, 4))):
        n = int(rng.integers(3, 6))
        start = rng.uniform(0.15, 0.85, 2)
        steps = rng.normal(0, 0.28, (n - 1, 2))
        pts = np.vstack([start, start + np.cumsum(steps, axis=0)])
        strokes.append(np.clip(pts, 0.12, 0.88))
    return strokes


def _catmull_rom(points: np.ndarray, per_segment: int = 12) -> np.ndarray:
    """A smooth curve through ``points`` [P, 2] (ends repeated): [(P - 1) * per_segment + 1, 2]."""
    p = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for k in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[k - 1], p[k], p[k + 1], p[k + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(points[-1:])
    return np.vstack(out)


def render_glyph(strokes: list[np.ndarray], rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """One handwritten rendering: uint8 grey [size, size], dark ink on light paper."""
    angle = rng.uniform(-0.2, 0.2)
    scale = rng.uniform(0.88, 1.1)
    shear = rng.uniform(-0.15, 0.15)
    shift = rng.uniform(-0.05, 0.05, 2)
    c, s = np.cos(angle), np.sin(angle)
    affine = scale * np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    big = size * SUPERSAMPLE
    canvas = np.full((big, big), 255, np.uint8)
    width = int(round(rng.uniform(1.3, 3.0) * SUPERSAMPLE))
    for stroke in strokes:
        pts = stroke + rng.normal(0, JITTER, stroke.shape)
        curve = _catmull_rom(pts)
        curve = (curve - 0.5) @ affine.T + 0.5 + shift
        poly = np.round(curve * big).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [poly], False, 0, width, cv2.LINE_AA)
    img = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    paper = rng.uniform(225, 250)
    ink = rng.uniform(10, 60)
    out = ink + (paper - ink) * (img.astype(np.float32) / 255.0) + rng.normal(0, 3.0, img.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def build_glyphs(out_dir: str | Path, n_identities: int = 300, renderings: int = RENDERINGS, seed: int = 0,
                 progress: Progress | None = None) -> Path:
    """Write OUT/glyphs/*.png and OUT/glyphs.vbproj; returns the project path."""
    out_dir = Path(out_dir)
    img_dir = out_dir / "glyphs"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 3])
    val = set(rng.permutation(n_identities)[:int(round(n_identities * VAL_FRACTION))].tolist())
    project = out_dir / "glyphs.vbproj"
    store = ProjectStore.create(project)
    try:
        with store.transaction():
            cat = store.add_category(*CATEGORY).id
            rows, identities = [], []
            for g in range(n_identities):
                strokes = glyph_strokes(rng)
                for r in range(renderings):
                    f = img_dir / f"glyph_{g:04d}_{r:02d}.png"
                    cv2.imwrite(str(f), render_glyph(strokes, rng))
                    rows.append((store._rel(f), SIZE, SIZE, "val" if g in val else "train", "done"))
                    identities.append(f"glyph-{g:04d}")
                if progress:
                    progress(g + 1, n_identities)
            records = store.insert_images(rows)
            store.bulk_insert_annotations([
                Annotation(rec.id, cat, Box(0.0, 0.0, float(SIZE), float(SIZE)), attributes={"identity": name},
                           source="synthetic", created=DEMO_TIME, updated=DEMO_TIME)
                for rec, name in zip(records, identities)])
    finally:
        store.close()
    return project

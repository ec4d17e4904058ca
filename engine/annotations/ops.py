"""Pure shape operations behind the Edit menu: merge, split, convert, duplicate, paste.

Every function takes annotations (or geometries) and returns NEW, unstored annotations
(`id=None`); the caller records them through EditHistory so each operation is one undo step.
Masks are numpy uint8 [H, W]; coordinates are float pixels, origin at the top-left corner of
the top-left pixel (see model.py). No Qt, no torch.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Iterable

import numpy as np

from . import geometry as geo
from .model import Annotation, Box, Geometry, ImageRecord, MaskRLE, Point, Polygon, Polyline

AREA_KINDS = ("box", "polygon", "mask")


class ShapeOpError(ValueError):
    """An operation does not apply to the given shapes (the message says why, for the status bar)."""


def _fresh(ann: Annotation, geometry: Geometry, **changes) -> Annotation:
    """A new unstored annotation derived from `ann` (same category, source, attributes)."""
    now = time.time()
    return replace(ann, geometry=geometry, id=None, created=now, updated=now, **changes)


def area_mask(g: Geometry, height: int, width: int) -> np.ndarray:
    """Rasterize a box, polygon or mask to [height, width] uint8 in {0, 1}.

    A mask of another size (pasted from a different image) is cropped/padded at the top-left.
    """
    if isinstance(g, MaskRLE):
        return _fit_mask(geo.decode_mask(g), height, width)
    if isinstance(g, (Box, Polygon)):
        return geo.geometry_to_mask(g, height, width)
    raise ShapeOpError(f"a {g.kind} has no area")


def _fit_mask(m: np.ndarray, height: int, width: int, dx: int = 0, dy: int = 0) -> np.ndarray:
    """Place mask `m` shifted by (dx, dy) pixels on an empty [height, width] canvas, clipping."""
    out = np.zeros((height, width), np.uint8)
    sh, sw = m.shape
    x0, y0 = max(0, dx), max(0, dy)
    x1, y1 = min(width, sw + dx), min(height, sh + dy)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = m[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    return out


# ---- merge / split / convert -------------------------------------------------------------------
def merge(anns: list[Annotation], height: int, width: int) -> Annotation:
    """Union of boxes/polygons/masks of one image -> one mask annotation.

    The result takes the category and attributes of the first annotation.
    Raises ShapeOpError for fewer than two shapes, points/polylines, or shapes of several images.
    """
    if len(anns) < 2:
        raise ShapeOpError("select two or more shapes to merge")
    if len({a.image_id for a in anns}) > 1:
        raise ShapeOpError("shapes of different images cannot be merged")
    bad = sorted({a.kind for a in anns if a.kind not in AREA_KINDS})
    if bad:
        raise ShapeOpError(f"cannot merge {', '.join(bad)} shapes; only boxes, polygons and masks")
    union = np.zeros((height, width), np.uint8)
    for a in anns:
        union |= area_mask(a.geometry, height, width)
    return _fresh(anns[0], geo.encode_mask(union), score=None)


def connected_components(mask: np.ndarray, min_pixels: int = 1) -> list[np.ndarray]:
    """Split a binary mask [H, W] into its 8-connected components, largest first."""
    import cv2

    m = (np.asarray(mask) > 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [(labels == i).astype(np.uint8) for i in order if stats[i, cv2.CC_STAT_AREA] >= min_pixels]


def split(ann: Annotation, height: int, width: int) -> list[Annotation]:
    """Connected components of a mask or polygon, each as its own annotation of the same kind.

    Returns [] when there is nothing to split (one component, or a kind without area parts).
    """
    if ann.kind not in ("mask", "polygon"):
        return []
    parts = connected_components(area_mask(ann.geometry, height, width))
    if len(parts) < 2:
        return []
    if ann.kind == "mask":
        return [_fresh(ann, geo.encode_mask(p)) for p in parts]
    return [_fresh(ann, poly) for p in parts for poly in geo.mask_to_polygons(p)]


def to_mask(ann: Annotation, height: int, width: int) -> Annotation:
    """Polygon (or box) -> mask annotation of the image size."""
    if ann.kind not in ("polygon", "box"):
        raise ShapeOpError(f"a {ann.kind} cannot become a mask; only polygons and boxes")
    return _fresh(ann, geo.encode_mask(area_mask(ann.geometry, height, width)))


def to_polygons(ann: Annotation, min_area: float = 0.25) -> list[Annotation]:
    """Mask -> one polygon annotation per outer contour (holes kept)."""
    if ann.kind != "mask":
        raise ShapeOpError(f"a {ann.kind} is not a mask")
    return [_fresh(ann, p) for p in geo.mask_to_polygons(geo.decode_mask(ann.geometry), min_area=min_area)]


# ---- clipping ----------------------------------------------------------------------------------
def _clip_ring(ring, width: float, height: float) -> list[tuple[float, float]]:
    """Sutherland-Hodgman clip of a ring against the rectangle [0, width] x [0, height]."""
    edges = (
        (lambda p: p[0] >= 0, lambda p, q: _cross_x(p, q, 0.0)),
        (lambda p: p[0] <= width, lambda p, q: _cross_x(p, q, width)),
        (lambda p: p[1] >= 0, lambda p, q: _cross_y(p, q, 0.0)),
        (lambda p: p[1] <= height, lambda p, q: _cross_y(p, q, height)),
    )
    pts = [tuple(map(float, p)) for p in ring]
    for inside, cross in edges:
        if not pts:
            break
        out = []
        prev = pts[-1]
        for cur in pts:
            if inside(cur):
                if not inside(prev):
                    out.append(cross(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross(prev, cur))
            prev = cur
        pts = out
    # drop consecutive duplicates the clip leaves on the border
    clean = [p for i, p in enumerate(pts) if i == 0 or p != pts[i - 1]]
    if len(clean) > 1 and clean[0] == clean[-1]:
        clean.pop()
    return clean


def _cross_x(p, q, x: float) -> tuple[float, float]:
    t = (x - p[0]) / (q[0] - p[0])
    return (x, p[1] + t * (q[1] - p[1]))


def _cross_y(p, q, y: float) -> tuple[float, float]:
    t = (y - p[1]) / (q[1] - p[1])
    return (p[0] + t * (q[0] - p[0]), y)


def _clip_segment(p, q, width: float, height: float):
    """Liang-Barsky: the part of segment p->q inside the image rectangle, or None."""
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for pk, qk in ((-dx, p[0]), (dx, width - p[0]), (-dy, p[1]), (dy, height - p[1])):
        if pk == 0:
            if qk < 0:
                return None
            continue
        t = qk / pk
        if pk < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return ((p[0] + t0 * dx, p[1] + t0 * dy), (p[0] + t1 * dx, p[1] + t1 * dy))


def _clip_polyline(points, width: float, height: float) -> list[Polyline]:
    """Pieces of an open chain inside the image; leaving and re-entering starts a new piece."""
    pieces: list[list] = []
    cur: list = []
    for p, q in zip(points[:-1], points[1:]):
        seg = _clip_segment(p, q, width, height)
        if seg is None:
            if len(cur) >= 2:
                pieces.append(cur)
            cur = []
            continue
        a, b = seg
        if cur and cur[-1] == a:
            cur.append(b)
        else:
            if len(cur) >= 2:
                pieces.append(cur)
            cur = [a, b]
        if b != tuple(q):  # left the image in this segment
            pieces.append(cur)
            cur = []
    if len(cur) >= 2:
        pieces.append(cur)
    return [Polyline(tuple(pc)) for pc in pieces if len(set(pc)) >= 2]  # drop zero-length pieces


def clip_geometry(g: Geometry, width: int, height: int, dx: float = 0.0, dy: float = 0.0) -> list[Geometry]:
    """Move `g` by (dx, dy) pixels and clip it to a width x height image.

    Returns the pieces that remain (empty list when nothing is left; a polyline may break in
    several pieces). A mask is re-sized to (height, width) and shifted by whole pixels.
    """
    if isinstance(g, MaskRLE):
        m = _fit_mask(geo.decode_mask(g), height, width, int(round(dx)), int(round(dy)))
        return [geo.encode_mask(m)] if m.any() else []
    g = geo.translate(g, dx, dy) if (dx or dy) else g
    if isinstance(g, Box):
        b = geo.clip_box(g, width, height)
        return [b] if b.width > 0 and b.height > 0 else []
    if isinstance(g, Point):
        return [g] if 0 <= g.x <= width and 0 <= g.y <= height else []
    if isinstance(g, Polygon):
        outer = _clip_ring(g.points, width, height)
        if len(outer) < 3 or geo.ring_area(outer) <= 0:
            return []
        holes = tuple(tuple(h) for h in (_clip_ring(r, width, height) for r in g.holes) if len(h) >= 3)
        return [Polygon(tuple(outer), holes)]
    if isinstance(g, Polyline):
        return _clip_polyline([tuple(p) for p in g.points], width, height)
    raise TypeError(type(g))


# ---- duplicate / paste -------------------------------------------------------------------------
def paste(anns: Iterable[Annotation], target: ImageRecord, dx: float = 0.0, dy: float = 0.0) -> list[Annotation]:
    """Copies of `anns` on image `target`, moved by (dx, dy) and clipped to its size.

    Copies are unstored, visible and unlocked; shapes that fall entirely outside are dropped.
    """
    out = []
    for a in anns:
        for g in clip_geometry(a.geometry, target.width, target.height, dx, dy):
            out.append(_fresh(a, g, image_id=target.id, hidden=False, locked=False))
    return out


def duplicate(anns: Iterable[Annotation], image: ImageRecord, offset: float = 10.0) -> list[Annotation]:
    """Copies on the same image, moved right and down by `offset` pixels (clipped)."""
    return paste(anns, image, offset, offset)

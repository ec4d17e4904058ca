"""Pure geometry edits behind the canvas tools (no Qt): handles, vertices, resizing, brushing.

All coordinates are image pixels. A vertex is addressed as (ring, index): ring 0 is a polygon's
exterior (or a polyline's chain), rings 1.. are holes.
"""
from __future__ import annotations

import cv2
import numpy as np

from engine.annotations.geometry import decode_mask, encode_mask
from engine.annotations.model import Box, MaskRLE, Polygon, Polyline

# Box handles: which edges each handle moves, as (moves x1, moves y1, moves x2, moves y2).
BOX_HANDLES = {
    "nw": (1, 1, 0, 0), "n": (0, 1, 0, 0), "ne": (0, 1, 1, 0), "e": (0, 0, 1, 0),
    "se": (0, 0, 1, 1), "s": (0, 0, 0, 1), "sw": (1, 0, 0, 1), "w": (1, 0, 0, 0),
}


def box_handle_points(b: Box) -> dict[str, tuple[float, float]]:
    cx, cy = (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2
    return {"nw": (b.x1, b.y1), "n": (cx, b.y1), "ne": (b.x2, b.y1), "e": (b.x2, cy),
            "se": (b.x2, b.y2), "s": (cx, b.y2), "sw": (b.x1, b.y2), "w": (b.x1, cy)}


def resize_box(b: Box, handle: str, x: float, y: float) -> Box:
    """Move the edges named by `handle` to (x, y); the result is normalised (x1 <= x2)."""
    mx1, my1, mx2, my2 = BOX_HANDLES[handle]
    x1, y1, x2, y2 = b.x1, b.y1, b.x2, b.y2
    if mx1:
        x1 = x
    if my1:
        y1 = y
    if mx2:
        x2 = x
    if my2:
        y2 = y
    return Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def rings(g) -> list[list[tuple[float, float]]]:
    if isinstance(g, Polygon):
        return [list(g.points)] + [list(h) for h in g.holes]
    if isinstance(g, Polyline):
        return [list(g.points)]
    return []


def from_rings(g, rs) -> Polygon | Polyline:
    if isinstance(g, Polygon):
        return Polygon(tuple(tuple(p) for p in rs[0]), tuple(tuple(tuple(p) for p in h) for h in rs[1:]))
    return Polyline(tuple(tuple(p) for p in rs[0]))


def move_vertex(g, ring: int, index: int, x: float, y: float):
    rs = rings(g)
    rs[ring][index] = (float(x), float(y))
    return from_rings(g, rs)


def insert_vertex(g, ring: int, after: int, x: float, y: float):
    rs = rings(g)
    rs[ring].insert(after + 1, (float(x), float(y)))
    return from_rings(g, rs)


def delete_vertex(g, ring: int, index: int):
    """The geometry without that vertex, or None when too few would remain (polygon 3, polyline 2)."""
    rs = rings(g)
    minimum = 3 if isinstance(g, Polygon) else 2
    if len(rs[ring]) <= minimum:
        return None
    del rs[ring][index]
    return from_rings(g, rs)


def nearest_vertex(g, x: float, y: float, tol: float) -> tuple[int, int] | None:
    best, best_d = None, tol
    for r, ring in enumerate(rings(g)):
        for i, (vx, vy) in enumerate(ring):
            d = ((vx - x) ** 2 + (vy - y) ** 2) ** 0.5
            if d <= best_d:
                best, best_d = (r, i), d
    return best


def nearest_edge(g, x: float, y: float, tol: float) -> tuple[int, int, tuple[float, float]] | None:
    """(ring, index of the edge's first vertex, nearest point on it) within tol, else None."""
    from .shapes import segment_distance

    closed = isinstance(g, Polygon)
    best = None
    for r, ring in enumerate(rings(g)):
        d, k, p = segment_distance(np.asarray(ring, np.float64), x, y, closed=closed)
        if d <= tol and (best is None or d < best[0]):
            best = (d, r, k, p)
    return None if best is None else (best[1], best[2], best[3])


def paint_stroke(base: MaskRLE | None, size_hw: tuple[int, int], points, radius: float, value: int) -> MaskRLE:
    """Paint (value 1) or erase (value 0) a round brush of `radius` px along `points` (image px)."""
    h, w = size_hw
    m = decode_mask(base).copy() if base is not None else np.zeros((h, w), np.uint8)
    if m.shape != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
    r = max(1, int(round(radius)))
    pts = [(int(round(px - 0.5)), int(round(py - 0.5))) for px, py in points]  # pixel centres
    for p in pts:
        cv2.circle(m, p, r, int(value), -1)
    for a, b in zip(pts, pts[1:]):
        cv2.line(m, a, b, int(value), 2 * r + 1)
    return encode_mask(m)

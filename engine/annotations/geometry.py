"""The one geometry module: areas, bounds, rasterizing, contours, RLE, moves.

Masks are numpy uint8/bool arrays [H, W]; RLE is COCO compressed RLE via pycocotools.
Polygon vertices are in pixel-corner coordinates (see model.py); rasterizing fills the pixels
whose centres fall inside, like pycocotools' frPyObjects.
"""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from .model import Box, Geometry, MaskRLE, Point, Polygon, Polyline


def encode_mask(mask: np.ndarray) -> MaskRLE:
    """[H, W] bool/uint8 -> MaskRLE."""
    m = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    rle = mask_utils.encode(m)
    return MaskRLE((int(rle["size"][0]), int(rle["size"][1])), rle["counts"].decode("ascii"))


def decode_mask(rle: MaskRLE) -> np.ndarray:
    """MaskRLE -> [H, W] uint8 in {0, 1}."""
    return mask_utils.decode({"size": list(rle.size), "counts": rle.counts.encode("ascii")})


def rle_area(rle: MaskRLE) -> float:
    return float(mask_utils.area({"size": list(rle.size), "counts": rle.counts.encode("ascii")}))


def ring_area(points) -> float:
    """Absolute shoelace area of a ring."""
    if len(points) < 3:
        return 0.0
    # plain Python: for the few dozen vertices of an annotation this is ~20x faster than numpy
    # (COCO export computes it for every polygon)
    twice = 0.0
    x0, y0 = points[-1]
    for x1, y1 in points:
        twice += x0 * y1 - x1 * y0
        x0, y0 = x1, y1
    return abs(float(twice)) / 2.0


def area(g: Geometry) -> float:
    if isinstance(g, Box):
        return max(0.0, g.width) * max(0.0, g.height)
    if isinstance(g, Polygon):
        return max(0.0, ring_area(g.points) - sum(ring_area(h) for h in g.holes))
    if isinstance(g, MaskRLE):
        return rle_area(g)
    return 0.0


def bounds(g: Geometry) -> tuple[float, float, float, float]:
    """xyxy bounding box of any geometry (pixels)."""
    if isinstance(g, Box):
        return (g.x1, g.y1, g.x2, g.y2)
    if isinstance(g, (Polygon, Polyline)):
        p = np.asarray(g.points, dtype=np.float64).reshape(-1, 2)
        if len(p) == 0:
            return (0.0, 0.0, 0.0, 0.0)
        return (float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))
    if isinstance(g, Point):
        return (g.x, g.y, g.x, g.y)
    if isinstance(g, MaskRLE):
        x, y, w, h = mask_utils.toBbox({"size": list(g.size), "counts": g.counts.encode("ascii")})
        return (float(x), float(y), float(x + w), float(y + h))
    raise TypeError(type(g))


def polygon_to_mask(poly: Polygon, height: int, width: int) -> np.ndarray:
    """Rasterize exterior minus holes -> [H, W] uint8."""
    def ring_mask(ring) -> np.ndarray:
        if len(ring) < 3:
            return np.zeros((height, width), np.uint8)
        flat = [float(v) for xy in ring for v in xy]
        rles = mask_utils.frPyObjects([flat], height, width)
        return mask_utils.decode(mask_utils.merge(rles))

    m = ring_mask(poly.points)
    for h in poly.holes:
        m[ring_mask(h) > 0] = 0
    return m


def box_to_mask(box: Box, height: int, width: int) -> np.ndarray:
    m = np.zeros((height, width), np.uint8)
    x1, y1 = max(0, int(round(box.x1))), max(0, int(round(box.y1)))
    x2, y2 = min(width, int(round(box.x2))), min(height, int(round(box.y2)))
    m[y1:y2, x1:x2] = 1
    return m


def geometry_to_mask(g: Geometry, height: int, width: int) -> np.ndarray:
    if isinstance(g, MaskRLE):
        m = decode_mask(g)
        if m.shape != (height, width):
            raise ValueError(f"mask size {m.shape} differs from image size {(height, width)}")
        return m
    if isinstance(g, Polygon):
        return polygon_to_mask(g, height, width)
    if isinstance(g, Box):
        return box_to_mask(g, height, width)
    raise ValueError(f"a {g.kind} has no area to rasterize")


def mask_to_polygons(mask: np.ndarray, min_area: float = 0.25) -> list[Polygon]:
    """Outer contours (with their holes) of a binary mask [H, W] -> polygons whose rasterization is the mask.

    Tracing pixel centres would put the outline exactly on the border pixels' centres, where the
    fill rule is ambiguous (a half-pixel border is lost or gained). The mask is traced upsampled 2x
    instead, which puts the outline a quarter pixel inside the pixel edges: every pixel centre is
    0.25 px or more from it, so rasterizing the polygons gives back the mask exactly.
    Parts whose polygon area is below `min_area` px² are dropped (a lone pixel's is 0.25).
    """
    m = np.asarray(mask) > 0
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if len(rows) == 0:
        return []
    y0, x0 = int(rows[0]), int(cols[0])
    crop = m[y0:int(rows[-1]) + 1, x0:int(cols[-1]) + 1].astype(np.uint8)
    up = np.kron(crop, np.ones((2, 2), np.uint8))

    def move(ring):
        return tuple((x0 + x / 2.0, y0 + y / 2.0) for x, y in ring)

    return [Polygon(move(p.points), tuple(move(h) for h in p.holes))
            for p in _trace_pixel_centres(up, 4.0 * min_area)]


def _trace_pixel_centres(mask: np.ndarray, min_area: float) -> list[Polygon]:
    """Contours through the centres of the border pixels (cv2.findContours, RETR_CCOMP)."""
    import cv2

    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hierarchy = hierarchy[0]
    out: list[Polygon] = []

    def ring(c) -> tuple:
        return tuple((float(x) + 0.5, float(y) + 0.5) for x, y in c.reshape(-1, 2))

    for i, c in enumerate(contours):
        if hierarchy[i][3] != -1:
            continue  # a hole; attached to its parent below
        outer = ring(c)
        if len(outer) < 3:
            x, y, w, h = cv2.boundingRect(c)
            outer = ((x, y), (x + w, y), (x + w, y + h), (x, y + h))
        holes = []
        child = hierarchy[i][2]
        while child != -1:
            h = ring(contours[child])
            if len(h) >= 3:
                holes.append(h)
            child = hierarchy[child][0]
        poly = Polygon(outer, tuple(holes))
        if area(poly) >= min_area or len(contours) == 1:
            out.append(poly)
    return out


def translate(g: Geometry, dx: float, dy: float) -> Geometry:
    if isinstance(g, Box):
        return Box(g.x1 + dx, g.y1 + dy, g.x2 + dx, g.y2 + dy)
    if isinstance(g, Polygon):
        mv = lambda r: tuple((x + dx, y + dy) for x, y in r)  # noqa: E731
        return Polygon(mv(g.points), tuple(mv(h) for h in g.holes))
    if isinstance(g, Polyline):
        return Polyline(tuple((x + dx, y + dy) for x, y in g.points))
    if isinstance(g, Point):
        return Point(g.x + dx, g.y + dy)
    if isinstance(g, MaskRLE):
        m = decode_mask(g)
        h, w = m.shape
        out = np.zeros_like(m)
        ix, iy = int(round(dx)), int(round(dy))
        src = m[max(0, -iy): h - max(0, iy), max(0, -ix): w - max(0, ix)]
        out[max(0, iy): max(0, iy) + src.shape[0], max(0, ix): max(0, ix) + src.shape[1]] = src
        return encode_mask(out)
    raise TypeError(type(g))


def clip_box(box: Box, width: int, height: int) -> Box:
    return Box(min(max(box.x1, 0), width), min(max(box.y1, 0), height),
               min(max(box.x2, 0), width), min(max(box.y2, 0), height))


def rle_run_lengths_total(counts: str) -> int | None:
    """Sum of the run lengths in a compressed COCO RLE string (the pixels it covers), or None when
    the string is corrupt (a character out of range, a run that is negative).

    pycocotools decodes a string whose runs fall short of height * width without complaint,
    filling the rest with background, so a truncated mask would pass unnoticed.
    """
    runs: list[int] = []
    total = 0
    x = k = 0
    for ch in counts:
        c = ord(ch) - 48
        if not 0 <= c < 64:
            return None
        x |= (c & 0x1F) << (5 * k)
        k += 1
        if c & 0x20:
            continue
        if c & 0x10:
            x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            return None
        runs.append(x)
        total += x
        x = k = 0
    return None if k else total

"""Hypothesis strategies and helpers shared by the format round-trip tests (COCO, LabelMe,
masks, VOC, YOLO).

Typical use::

    from tests.engine.formats.strategies import project_specs, build_project, normalized

    @given(spec=project_specs(kinds=("box",)))
    def test_roundtrip(tmp_path_factory, spec):
        root = tmp_path_factory.mktemp("p")
        store = build_project(root / "a", spec)
        ...
        assert normalized(store_b) == normalized(store)

A spec is a list of ImageSpec(name, width, height, split, objects) where each object is
(category index into CATEGORY_NAMES, Geometry, instance_id or None). Coordinates are multiples of
1/4 px (exact in binary floats, so JSON round trips are exact; normalize with `decimals` when a
format rescales, e.g. YOLO).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation, Box, MaskRLE, Point, Polygon, Polyline
from engine.annotations.store import ProjectStore

CATEGORY_NAMES = ("cat", "dog", "traffic light")
ALL_KINDS = ("box", "polygon", "point", "polyline", "mask")


@dataclass(frozen=True)
class ImageSpec:
    name: str          # file name, e.g. "img_0.png"
    width: int
    height: int
    split: str
    objects: tuple     # ((category_index, Geometry, instance_id | None), ...)


def quarter(limit: int):
    """Floats in [0, limit] that are multiples of 0.25 px."""
    return st.integers(0, limit * 4).map(lambda v: v / 4.0)


@st.composite
def boxes(draw, width: int, height: int) -> Box:
    x1 = draw(st.integers(0, width * 4 - 4)) / 4.0
    y1 = draw(st.integers(0, height * 4 - 4)) / 4.0
    x2 = draw(st.integers(int(x1 * 4) + 4, width * 4)) / 4.0
    y2 = draw(st.integers(int(y1 * 4) + 4, height * 4)) / 4.0
    return Box(x1, y1, x2, y2)


@st.composite
def polygons(draw, width: int, height: int) -> Polygon:
    """Star-shaped (so simple, non-self-intersecting) polygons with 3..8 vertices and area > 0."""
    n = draw(st.integers(3, 8))
    cx = draw(st.integers(2, width - 2))
    cy = draw(st.integers(2, height - 2))
    rmax = max(1, min(cx, cy, width - cx, height - cy))
    pts = []
    for k in range(n):
        r = draw(st.integers(max(1, rmax // 2) * 4, rmax * 4)) / 4.0
        ang = 2 * np.pi * k / n
        x = min(max(round((cx + r * np.cos(ang)) * 4) / 4.0, 0.0), float(width))
        y = min(max(round((cy + r * np.sin(ang)) * 4) / 4.0, 0.0), float(height))
        pts.append((x, y))
    from engine.annotations.geometry import ring_area

    if ring_area(pts) < 1.0:  # degenerate after clipping: use a small triangle instead
        pts = [(float(cx - 1), float(cy - 1)), (float(cx + 1), float(cy - 1)), (float(cx), float(cy + 1))]
    return Polygon(tuple(pts))


@st.composite
def points(draw, width: int, height: int) -> Point:
    return Point(draw(quarter(width)), draw(quarter(height)))


@st.composite
def polylines(draw, width: int, height: int) -> Polyline:
    n = draw(st.integers(2, 6))
    return Polyline(tuple((draw(quarter(width)), draw(quarter(height))) for _ in range(n)))


@st.composite
def masks(draw, width: int, height: int) -> MaskRLE:
    """A non-empty blob: a union of 1..3 random rectangles (coarse, so contours stay simple)."""
    m = np.zeros((height, width), np.uint8)
    for _ in range(draw(st.integers(1, 3))):
        x1 = draw(st.integers(0, width - 2))
        y1 = draw(st.integers(0, height - 2))
        x2 = draw(st.integers(x1 + 2, width))
        y2 = draw(st.integers(y1 + 2, height))
        m[y1:y2, x1:x2] = 1
    return encode_mask(m)


GEOMETRY_STRATEGIES = {"box": boxes, "polygon": polygons, "point": points, "polyline": polylines, "mask": masks}


@st.composite
def image_specs(draw, index: int, kinds=ALL_KINDS, max_objects: int = 4) -> ImageSpec:
    w = draw(st.integers(8, 40))
    h = draw(st.integers(8, 40))
    split = draw(st.sampled_from(("train", "val", "test")))
    objects = []
    for _ in range(draw(st.integers(0, max_objects))):
        kind = draw(st.sampled_from(tuple(kinds)))
        geom = draw(GEOMETRY_STRATEGIES[kind](w, h))
        cat = draw(st.integers(0, len(CATEGORY_NAMES) - 1))
        objects.append((cat, geom, None))
    return ImageSpec(f"img_{index}.png", w, h, split, tuple(objects))


@st.composite
def project_specs(draw, kinds=ALL_KINDS, max_images: int = 3, max_objects: int = 4) -> list[ImageSpec]:
    n = draw(st.integers(1, max_images))
    return [draw(image_specs(i, kinds, max_objects)) for i in range(n)]


def write_png(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A small real PNG whose header says width x height."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def build_project(folder: Path, spec: list[ImageSpec], image_dir: str = "images") -> ProjectStore:
    """Write the images of `spec` under folder/image_dir and a project folder/project.vbproj holding
    all categories of CATEGORY_NAMES (in that order) and the objects. Caller closes the store."""
    folder.mkdir(parents=True, exist_ok=True)
    store = ProjectStore.create(folder / "project.vbproj")
    cats = [store.add_category(n) for n in CATEGORY_NAMES]
    for i, im in enumerate(spec):
        f = write_png(folder / image_dir / im.name, im.width, im.height, seed=i)
        rec = store.add_image(f, im.width, im.height, split=im.split)
        store.bulk_insert_annotations([
            Annotation(rec.id, cats[c].id, g, instance_id=inst) for c, g, inst in im.objects])
    return store


def _round(v, decimals):
    return round(float(v), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def geometry_key(g, decimals: int = 3):
    """A hashable, rounded form of a geometry for set comparison."""
    r = lambda v: _round(v, decimals)  # noqa: E731
    if isinstance(g, Box):
        return ("box", r(g.x1), r(g.y1), r(g.x2), r(g.y2))
    if isinstance(g, Polygon):
        return ("polygon", tuple((r(x), r(y)) for x, y in g.points),
                tuple(tuple((r(x), r(y)) for x, y in h) for h in g.holes))
    if isinstance(g, Point):
        return ("point", r(g.x), r(g.y))
    if isinstance(g, Polyline):
        return ("polyline", tuple((r(x), r(y)) for x, y in g.points))
    if isinstance(g, MaskRLE):
        from engine.annotations.geometry import decode_mask

        m = decode_mask(g)
        return ("mask", m.shape, np.packbits(m).tobytes())
    raise TypeError(type(g))


def normalized(store: ProjectStore, decimals: int = 3, with_split: bool = True,
               kinds=None) -> list:
    """Sorted [(image file name, (w, h), split, category name, geometry key)] for the whole project.

    Image names are basenames, so projects whose images live in different folders compare equal.
    """
    names = {c.id: c.name for c in store.categories()}
    out = []
    anns = store.all_annotations()
    for rec in store.images():
        for a in anns.get(rec.id, []):
            if kinds is not None and a.kind not in kinds:
                continue
            out.append((Path(rec.path).name, (rec.width, rec.height), rec.split if with_split else None,
                        names[a.category_id], geometry_key(a.geometry, decimals)))
    return sorted(out, key=repr)


def image_set(store: ProjectStore, with_split: bool = True) -> list:
    """Sorted [(image file name, w, h, split)] — images round-trip even when they have no objects."""
    return sorted((Path(r.path).name, r.width, r.height, r.split if with_split else None)
                  for r in store.images())


def write_bomb_png(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb), by hand:
    signature, IHDR, one small IDAT, IEND, each chunk with its CRC."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    idat = zlib.compress(b"\x00" * 64)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path

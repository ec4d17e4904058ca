"""LabelMe JSON (one file per image) <-> project.

Import (SRC = a folder, searched recursively for ``*.json``):
- ``imagePath`` is relative to the JSON file; it must stay inside SRC. When the image file is
  missing but ``imageData`` is embedded, the decoded image is written at import time to
  ``<project folder>/imported_images/<json stem>.<ext>`` (see ADR 0001) and referenced from there.
- shape_type: rectangle -> Box (bounds of its points: LabelMe writes 2, X-AnyLabeling 4);
  polygon -> Polygon; circle (centre, point on the rim) -> a 64-gon Polygon with
  ``attributes = {"labelme_shape": "circle", "circle": [cx, cy, r]}``; point -> Point;
  line / linestrip -> Polyline (``labelme_shape: "line"`` remembered); mask (base64 PNG of the
  region whose top-left pixel is ``points[0]``) -> full-image MaskRLE.
- ``group_id`` -> instance_id; ``score`` -> score; ``source`` (our extra key, written for
  annotations a model proposed; LabelMe keeps unknown shape keys) -> source; non-empty
  ``flags``, ``description``, ``difficult`` and a dict ``attributes`` -> attributes. Other keys
  (kie_linking, text, ...) are ignored. Coordinates are LabelMe's own: pixel-corner floats, the same as ours.

Export (DST = a folder): per image, a copy of the image at ``DST/<relative name>`` and
``DST/<relative name stem>.json`` next to it, ``imageData`` null.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import ImageEntry, ImportBundle
from ..errors import BadInput, Problem
from ..geometry import decode_mask, encode_mask, polygon_to_mask
from ..imageio import MAX_PIXELS
from ..limits import check_attributes, check_id, check_mask_pixels, check_name, check_text
from ..model import Annotation, Box, Category, MaskRLE, Point, Polygon, Polyline, default_color
from .common import (ProgressFn, as_points, atomic_write_bytes, atomic_write_json, check_image, check_inside,
                     copy_image, export_items, export_names, inside_source, load_json, resolve_inside, ticking)

CIRCLE_VERTICES = 64
IMPORTED_IMAGES_DIR = "imported_images"
LABELME_VERSION = "5.5.0"
_SHAPE_KEYS = {"label", "points", "group_id", "shape_type", "flags", "description", "mask", "score",
               "attributes", "difficult", "source"}


@dataclass
class LabelMeBundle(ImportBundle):
    """An ImportBundle plus images embedded as ``imageData``: (entry, file name, encoded bytes).

    Their files are written into the project folder by :func:`prepare` just before import.
    """

    embedded: list[tuple[ImageEntry, str, bytes]] = field(default_factory=list)


# ---- import ---------------------------------------------------------------------------------

def read(src: Path, *, skip_invalid: bool = False, progress: ProgressFn | None = None) -> LabelMeBundle:
    src = Path(src)
    if not src.is_dir():
        raise BadInput(str(src), "source", "LabelMe import expects a folder of .json files")
    bundle = LabelMeBundle()
    cat_ids: dict[str, int] = {}
    files = []
    for p in sorted(src.rglob("*.json")):
        if not inside_source(p, src):
            bundle.problems.append(Problem(str(p), "file", "a symlink out of the source folder"))
        elif p.is_file():
            files.append(p)
    if not files and not bundle.problems:
        raise BadInput(str(src), "source", "no .json files in this folder")
    described: dict[Path, Path] = {}  # image file -> the JSON that describes it
    for jf in ticking(files, progress, "read"):
        problems: list[Problem] = []
        entry = _read_file(src, jf, cat_ids, bundle, problems, described)
        bundle.problems.extend(problems)
        if entry is not None:
            bundle.images.append(entry)
    bundle.categories = [Category(i, name, default_color(i - 1)) for name, i in cat_ids.items()]
    return bundle


def _read_file(root: Path, jf: Path, cat_ids: dict[str, int], bundle: LabelMeBundle,
               problems: list[Problem], described: dict[Path, Path]) -> ImageEntry | None:
    """One LabelMe file -> ImageEntry (None when the file or its image is unusable, or when
    another JSON already described the same image: which one is right cannot be told)."""
    try:
        doc = load_json(jf)
        if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
            raise BadInput(str(jf), "shapes", "not a LabelMe file (no 'shapes' list)")
        n_embedded = len(bundle.embedded)
        entry = _image_entry(root, jf, doc, bundle)
        if len(bundle.embedded) == n_embedded:  # embedded images get their own file, never shared
            if entry.file in described:
                raise BadInput(str(jf), "imagePath", f"image {entry.file.name} is already described by "
                               f"{described[entry.file].relative_to(root)}")
            described[entry.file] = jf
    except BadInput as exc:
        problems.append(exc.problem)
        return None
    for i, shape in enumerate(doc["shapes"]):
        f = f"shapes[{i}]"
        try:
            ann = _shape(shape, entry, jf, f)
        except BadInput as exc:
            problems.append(exc.problem)
            continue
        label = check_name(shape["label"], str(jf), f"{f}.label")
        if label not in cat_ids:
            cat_ids[label] = len(cat_ids) + 1
        entry.annotations.append(ann.with_(category_id=cat_ids[label]))
    return entry


def _image_entry(root: Path, jf: Path, doc: dict, bundle: LabelMeBundle) -> ImageEntry:
    rel = doc.get("imagePath")
    if not rel and doc.get("imageData"):
        rel = jf.stem + ".png"  # some tools embed the image and leave imagePath empty
    file = resolve_inside(root, rel, jf, "imagePath", start=jf.parent)
    dw, dh = doc.get("imageWidth"), doc.get("imageHeight")
    if file.is_file() or not doc.get("imageData"):
        w, h = check_image(file, dw, dh, file=jf, field="imagePath")
        return ImageEntry(file, w, h, source=jf)
    data, ext, w, h = _decode_image_data(doc["imageData"], jf)
    for name, declared, actual in (("imageWidth", dw, w), ("imageHeight", dh, h)):
        if declared is not None and declared != actual:
            raise BadInput(str(jf), name, f"{declared!r} differs from the {actual} px of the embedded imageData")
    entry = ImageEntry(file, w, h, source=jf)  # file is replaced by prepare() with the decoded copy
    bundle.embedded.append((entry, jf.stem + ext, data))
    return entry


def _decode_image_data(b64: Any, jf: Path) -> tuple[bytes, str, int, int]:
    from PIL import Image

    try:
        data = base64.b64decode(b64, validate=False)
        Image.MAX_IMAGE_PIXELS = None  # our own limit below, on the header size
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            fmt = (im.format or "PNG").lower()
    except (binascii.Error, TypeError, ValueError, OSError) as exc:
        raise BadInput(str(jf), "imageData", f"not a base64-encoded image ({exc})") from None
    if w * h > MAX_PIXELS:
        raise BadInput(str(jf), "imageData", f"{w}x{h} pixels exceeds the limit (decompression bomb?)")
    ext = {"jpeg": ".jpg", "png": ".png", "bmp": ".bmp", "tiff": ".tif", "gif": ".gif",
           "webp": ".webp"}.get(fmt, ".png")
    return data, ext, w, h


def _shape(shape: Any, entry: ImageEntry, jf: Path, f: str) -> Annotation:
    if not isinstance(shape, dict):
        raise BadInput(str(jf), f, "expected an object")
    check_name(shape.get("label"), str(jf), f + ".label")
    st = shape.get("shape_type") or "polygon"
    pts = as_points(shape.get("points"), file=jf, field=f + ".points")
    w, h = entry.width, entry.height
    attrs: dict[str, Any] = {}
    if st == "rectangle":
        _need(pts, 2, jf, f, st)
        check_inside(pts, w, h, file=jf, field=f + ".points")
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        geom: Any = Box(min(xs), min(ys), max(xs), max(ys))
        if geom.width <= 0 or geom.height <= 0:  # COCO, VOC and YOLO cannot write an empty box back
            raise BadInput(str(jf), f + ".points", f"an empty rectangle ({geom.width:g} x {geom.height:g} px)")
    elif st == "polygon":
        _need(pts, 3, jf, f, st)
        check_inside(pts, w, h, file=jf, field=f + ".points")
        geom = Polygon(tuple(pts))
    elif st == "circle":
        _need(pts, 2, jf, f, st)
        (cx, cy), (px, py) = pts[0], pts[1]
        r = math.hypot(px - cx, py - cy)
        check_inside([(cx, cy)], w, h, file=jf, field=f + ".points")
        if not math.isfinite(r):
            raise BadInput(str(jf), f + ".points", "the circle's radius is not a finite number")
        geom = circle_polygon(cx, cy, r)
        try:  # the polygon is what is stored: it must lie in the image too, not only the centre
            check_inside(geom.points, w, h, file=jf, field=f + ".points")
        except BadInput:
            raise BadInput(str(jf), f + ".points", f"the circle of radius {r:g} around ({cx:g}, {cy:g}) "
                           f"leaves the {w}x{h} image") from None
        attrs = {"labelme_shape": "circle", "circle": [cx, cy, r]}
    elif st == "point":
        check_inside(pts[:1], w, h, file=jf, field=f + ".points")
        geom = Point(*pts[0])
    elif st in ("line", "linestrip"):
        _need(pts, 2, jf, f, st)
        check_inside(pts, w, h, file=jf, field=f + ".points")
        geom = Polyline(tuple(pts))
        if st == "line":
            attrs = {"labelme_shape": "line"}
    elif st == "mask":
        geom = _mask(shape.get("mask"), pts, w, h, jf, f)
    else:
        raise BadInput(str(jf), f + ".shape_type", f"unsupported shape type {st!r}")
    for key in ("flags", "attributes"):
        if isinstance(shape.get(key), dict) and shape[key]:
            value = check_attributes(shape[key], str(jf), f"{f}.{key}")
            if key == "flags":
                attrs["flags"] = value
            else:
                attrs.update({k: v for k, v in value.items() if k not in ("labelme_shape", "circle")})
    if isinstance(shape.get("description"), str) and shape["description"]:
        attrs["description"] = check_text(shape["description"], str(jf), f + ".description")
    if shape.get("difficult") in (True, 1):
        attrs["difficult"] = True
    gid = shape.get("group_id")
    gid = check_id(gid, str(jf), f + ".group_id") if isinstance(gid, int) and not isinstance(gid, bool) else None
    score = shape.get("score")
    score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
    if score is not None and not math.isfinite(score):
        raise BadInput(str(jf), f + ".score", f"not a finite number: {shape.get('score')!r}")
    source = shape.get("source")
    source = check_text(source.strip(), str(jf), f + ".source") if isinstance(source, str) and source.strip() else None
    return Annotation(0, 0, geom, instance_id=gid, attributes=attrs, source=source or "manual", score=score)


def _need(pts, n: int, jf: Path, f: str, st: str) -> None:
    if len(pts) < n:
        raise BadInput(str(jf), f + ".points", f"a {st} needs at least {n} points, got {len(pts)}")


def _mask(b64: Any, pts, w: int, h: int, jf: Path, f: str) -> MaskRLE:
    from PIL import Image

    if not isinstance(b64, str) or not b64:
        raise BadInput(str(jf), f + ".mask", "a mask shape needs a base64 PNG in 'mask'")
    try:
        with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
            check_mask_pixels(im.size[0], im.size[1], str(jf), f + ".mask")
            check_mask_pixels(w, h, str(jf), f + ".mask")
            region = np.asarray(im.convert("L")) > 0
    except (binascii.Error, ValueError, OSError) as exc:
        raise BadInput(str(jf), f + ".mask", f"not a base64-encoded PNG ({exc})") from None
    x0, y0 = int(round(pts[0][0])), int(round(pts[0][1]))
    rh, rw = region.shape
    if x0 < 0 or y0 < 0 or x0 + rw > w or y0 + rh > h:
        raise BadInput(str(jf), f + ".points", f"mask region {rw}x{rh} at ({x0}, {y0}) lies outside the "
                       f"{w}x{h} image")
    full = np.zeros((h, w), np.uint8)
    full[y0:y0 + rh, x0:x0 + rw] = region
    return encode_mask(full)


def circle_polygon(cx: float, cy: float, r: float, n: int = CIRCLE_VERTICES) -> Polygon:
    """The n-gon inscribed in the circle (centre cx, cy; radius r px), starting at angle 0."""
    return Polygon(tuple((cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n))
                         for k in range(n)))


def prepare(bundle: LabelMeBundle, store) -> list[Path]:
    """Write images embedded as imageData into ``<project>/imported_images/`` and point the bundle's
    entries at them. Returns the files written (so a failed import can remove them)."""
    written: list[Path] = []
    folder = Path(store.root) / IMPORTED_IMAGES_DIR
    if bundle.embedded and not folder.exists():
        folder.mkdir(parents=True)
        written.append(folder)  # removed again (when still empty) if the import fails
    for entry, name, data in bundle.embedded:
        target = folder / name
        stem, ext, k = Path(name).stem, Path(name).suffix, 1
        while target.exists() and target.read_bytes() != data:
            k += 1
            target = folder / f"{stem}_{k}{ext}"
        if not target.exists():
            atomic_write_bytes(target, data)
            written.append(target)
        entry.file = target
    return written


# ---- export ---------------------------------------------------------------------------------

def write(store, dst: Path, *, split: str | None = None, progress: ProgressFn | None = None) -> dict:
    """One LabelMe JSON per image next to a copy of the image in DST. Never modifies the store."""
    dst = Path(dst)
    names = {c.id: c.name for c in store.categories()}
    items = export_items(store, split)
    rel_names = export_names([rec for rec, _ in items])
    n_shapes = 0
    for rec, anns in ticking(items, progress, "write"):
        rel = Path(rel_names[rec.id])
        copy_image(store.image_path(rec), dst / rel)
        shapes = [to_shape(a, names[a.category_id], rec.width, rec.height) for a in anns]
        n_shapes += len(shapes)
        doc = {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": rel.name,
               "imageData": None, "imageHeight": rec.height, "imageWidth": rec.width}
        atomic_write_json(dst / rel.with_suffix(".json"), doc, indent=2)
    return {"format": "labelme", "folder": str(dst), "images": len(items), "shapes": n_shapes}


def to_shape(a: Annotation, label: str, width: int, height: int) -> dict:
    """One annotation -> a LabelMe shape dict."""
    g = a.geometry
    attrs = dict(a.attributes)
    memo = attrs.pop("labelme_shape", None)
    circle = attrs.pop("circle", None)
    mask_b64 = None
    if isinstance(g, Box):
        st, pts = "rectangle", [[g.x1, g.y1], [g.x2, g.y2]]
    elif isinstance(g, Polygon) and memo == "circle" and _still_circle(g, circle):
        cx, cy, r = circle
        st, pts = "circle", [[cx, cy], [cx + r, cy]]
    elif isinstance(g, Polygon) and not g.holes:
        st, pts = "polygon", [list(p) for p in g.points]
    elif isinstance(g, Point):
        st, pts = "point", [[g.x, g.y]]
    elif isinstance(g, Polyline):
        st = "line" if memo == "line" and len(g.points) == 2 else "linestrip"
        pts = [list(p) for p in g.points]
    else:  # masks, and polygons with holes (LabelMe polygons cannot have holes)
        m = decode_mask(g) if isinstance(g, MaskRLE) else polygon_to_mask(g, height, width)
        st, pts, mask_b64 = "mask", *_mask_region(m)
    flags = attrs.pop("flags", {})
    description = attrs.pop("description", "")
    shape: dict[str, Any] = {"label": label, "points": pts, "group_id": a.instance_id,
                             "description": description if isinstance(description, str) else "",
                             "shape_type": st, "flags": flags if isinstance(flags, dict) else {},
                             "mask": mask_b64}
    if a.score is not None:
        shape["score"] = a.score
    if a.source != "manual":
        shape["source"] = a.source
    if attrs.pop("difficult", False):
        shape["difficult"] = True
    if attrs:
        shape["attributes"] = attrs
    return shape


def _still_circle(g: Polygon, circle: Any) -> bool:
    """True when the polygon is still the approximation of the remembered circle (not edited since)."""
    if not (isinstance(circle, list) and len(circle) == 3):
        return False
    ref = circle_polygon(*circle, n=len(g.points))
    return len(g.points) == CIRCLE_VERTICES and np.allclose(np.asarray(ref.points), np.asarray(g.points), atol=1e-6)


def _mask_region(m: np.ndarray) -> tuple[list, str]:
    """Full-image mask -> (bbox points [[x1, y1], [x2, y2]] of its pixels (inclusive), base64 PNG of the crop)."""
    from PIL import Image

    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        x1 = y1 = x2 = y2 = 0
    else:
        x1, x2, y1, y2 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    crop = (m[y1:y2 + 1, x1:x2 + 1] > 0)
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG")
    return [[float(x1), float(y1)], [float(x2), float(y2)]], base64.b64encode(buf.getvalue()).decode("ascii")

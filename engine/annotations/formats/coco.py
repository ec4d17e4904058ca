"""COCO instance annotations (JSON) <-> project.

Import (SRC = the .json file, or a folder holding ``annotations.json``):
- ``images[].file_name`` is resolved relative to the JSON file's folder; when no file is there,
  relative to its ``images/`` subfolder. Paths leaving that folder are rejected.
- ``segmentation`` as polygon lists -> one ``Polygon`` per part; parts of one annotation share an
  ``instance_id``. RLE (compressed string or uncompressed list counts) -> ``MaskRLE``. No or empty
  segmentation -> ``Box`` from ``bbox`` (xywh).
- ``iscrowd`` = 1 is kept in ``attributes["iscrowd"]``; ``score`` (result files) -> score;
  a dict ``attributes`` (as CVAT writes) is merged into attributes; an integer ``instance_id``
  (our own extra key) -> instance_id, else multi-part annotations get a fresh one per image;
  a string ``source`` (our extra key: the model that proposed it) -> source.
- Annotation ids are not kept (the store numbers them); LabelMe's files number from 0.
- ``own_bbox: true`` (our extra key) next to a segmentation: the object also had a box of its own;
  it comes back as a ``Box`` from ``bbox`` sharing the shape's ``instance_id``.

Export (DST = a folder): ``DST/annotations.json`` + ``DST/images/<relative name>``. Image and
category ids are the project's (from 1), annotation ids count from 1 (pycocotools' evaluator
treats id 0 as "no match"). ONE annotation per object: the annotations sharing (image, category,
instance_id) are one object (``common.export_objects``), so the demo's box + mask is one COCO
annotation with ``bbox`` from the box and ``segmentation`` from the mask (``own_bbox: true``);
two would make pycocotools count the object twice. Several polygons of one object are a
multi-part polygon segmentation; a mask, a polygon with holes, or a mix of parts goes out as one
RLE of their union. Without a box, ``bbox`` is the segmentation's bounds. The instance_id is
written as the extra key ``instance_id`` (pycocotools ignores it), a source other than "manual"
as ``source``. ``area``: shoelace for polygons, pixel count for RLE, w x h for a box alone.
Points and polylines have no COCO form: they are counted in ``summary["skipped"]``; the objects
merged are counted in ``summary["merged_objects"]``. The split and status are written as
``images[].extra.split``/``.status`` (COCO has neither; pycocotools ignores them).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from ..bundle import ImageEntry, ImportBundle
from ..errors import BadInput, Problem
from ..geometry import bounds, encode_mask, ring_area, rle_area, rle_run_lengths_total
from ..limits import check_attributes, check_id, check_mask_pixels, check_name, check_text
from ..model import SPLITS, STATUSES, Annotation, Box, Category, MaskRLE, Polygon, default_color
from .common import (COORD_TOLERANCE, ExportObject, ProgressFn, atomic_write_json, check_image, copy_image,
                     export_items, export_names, export_objects, load_json, resolve_inside, shape_mask,
                     ticking)

ANNOTATIONS_FILE = "annotations.json"
IMAGES_DIR = "images"
BACKGROUND = "_background_"
# Our extra key: the object has a box of its own besides its segmentation (import restores both)
OWN_BBOX = "own_bbox"


# ---- import ---------------------------------------------------------------------------------

def read(src: Path, *, skip_invalid: bool = False, progress: ProgressFn | None = None) -> ImportBundle:
    """Parse a COCO JSON file into an ImportBundle (never touches a store); `progress` ticks per image."""
    src = Path(src)
    if src.is_dir():
        src = src / ANNOTATIONS_FILE
    doc = load_json(src)
    bundle = ImportBundle()
    if not isinstance(doc, dict):
        raise BadInput(str(src), "json", "expected a JSON object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key, []), list):
            raise BadInput(str(src), key, "expected a list")
    reader = _Reader(src, bundle, progress)
    reader.categories(doc.get("categories", []))
    reader.images(doc.get("images", []))
    reader.annotations(doc.get("annotations", []))
    # labelme2coco lists "_background_" as category 0 though no object has it: it is not a class
    used = {a.category_id for e in bundle.images for a in e.annotations}
    bundle.categories = [c for c in bundle.categories if c.name != BACKGROUND or c.id in used]
    return bundle


class _Reader:
    def __init__(self, src: Path, bundle: ImportBundle, progress: ProgressFn | None = None):
        self.src = src
        self.progress = progress
        self.file = str(src)
        self.base = src.parent
        self.bundle = bundle
        self.cat_ids: set[int] = set()
        self.bad_cats: set[int] = set()
        self.images_by_id: dict[int, ImageEntry] = {}
        self.bad_images: set[int] = set()  # ids of images left out: their annotations go silently
        self.next_instance: dict[int, int] = {}
        self.dirs: dict[str, str] = {}  # resolved folders, for resolve_inside

    def problem(self, field: str, message: str) -> None:
        self.bundle.problems.append(Problem(self.file, field, message))

    def categories(self, cats: list) -> None:
        for i, c in enumerate(cats):
            f = f"categories[{i}]"
            if not isinstance(c, dict):
                self.problem(f, "expected an object")
                continue
            cid, name = c.get("id"), c.get("name")
            if not _is_int(cid):
                self.problem(f + ".id", f"expected an integer, got {cid!r}")
                continue
            try:
                name = check_name(name, self.file, f + ".name")
            except BadInput as exc:
                self.bundle.problems.append(exc.problem)
                self.bad_cats.add(cid)  # its annotations go silently: the category's problem is listed
                continue
            if cid in self.cat_ids:
                self.problem(f + ".id", f"duplicate category id {cid}")
                continue
            self.cat_ids.add(cid)
            self.bundle.categories.append(Category(int(cid), name, default_color(len(self.cat_ids) - 1)))

    def images(self, images: list) -> None:
        seen_files: set[Path] = set()
        for i, im in ticking(list(enumerate(images)), self.progress, "read"):
            f = f"images[{i}]"
            if not isinstance(im, dict):
                self.problem(f, "expected an object")
                continue
            iid = im.get("id")
            if not _is_int(iid):
                self.problem(f + ".id", f"expected an integer, got {iid!r}")
                continue
            if iid in self.images_by_id or iid in self.bad_images:
                self.problem(f + ".id", f"duplicate image id {iid}")
                self.bad_images.add(iid)
                self.images_by_id.pop(iid, None)  # ambiguous: which image do its annotations belong to?
                continue
            try:
                file = self._image_file(im.get("file_name"), f + ".file_name")
                if file in seen_files:
                    raise BadInput(self.file, f + ".file_name", f"{im.get('file_name')!r} is listed twice")
                w, h = check_image(file, im.get("width"), im.get("height"), file=self.file, field=f)
            except BadInput as exc:
                self.bundle.problems.append(exc.problem)
                self.bad_images.add(iid)
                continue
            seen_files.add(file)
            extra = im.get("extra") if isinstance(im.get("extra"), dict) else {}
            split = extra.get("split") if extra.get("split") in SPLITS else "train"
            status = extra.get("status") if extra.get("status") in STATUSES else "new"
            entry = ImageEntry(file, w, h, split, status, source=self.src)
            self.images_by_id[iid] = entry
        # an image whose id turned out duplicated later was removed from images_by_id
        self.bundle.images.extend(self.images_by_id.values())

    def _image_file(self, name: Any, field: str) -> Path:
        first = resolve_inside(self.base, name, self.file, field, cache=self.dirs)
        if first.is_file():
            return first
        second = resolve_inside(self.base / IMAGES_DIR, name, self.file, field, cache=self.dirs)
        if second.is_file():
            return second
        raise BadInput(self.file, field, f"image {name!r} not found (looked in {self.base} and "
                       f"{self.base / IMAGES_DIR})")

    def annotations(self, anns: list) -> None:
        seen: set[int] = set()
        dup: set[int] = set()
        for a in anns:
            if isinstance(a, dict) and _is_int(a.get("id")):
                (dup if a["id"] in seen else seen).add(a["id"])
        images, cat_ids, bad_images = self.images_by_id, self.cat_ids, self.bad_images
        taken: dict[int, set] = {}  # image id -> instance ids given in the file (fresh ones avoid them)
        for a in anns:
            if isinstance(a, dict) and type(a.get("instance_id")) is int and type(a.get("image_id")) is int:
                taken.setdefault(a.get("image_id"), set()).add(a["instance_id"])
        # This loop runs once per annotation (100,000s): field names are only built on errors.
        for i, a in enumerate(anns):
            if not isinstance(a, dict):
                self.problem(f"annotations[{i}]", "expected an object")
                continue
            aid = a.get("id")
            if type(aid) is not int and aid is not None:
                self.problem(f"annotations[{i}].id", f"expected an integer, got {aid!r}")
                continue
            if aid in dup:
                self.problem(f"annotations[{i}].id", f"duplicate annotation id {aid}")
                continue
            iid = a.get("image_id")
            entry = images.get(iid) if type(iid) is int else None
            if entry is None:
                if type(iid) is not int or iid not in bad_images:  # else the image's problem is listed
                    self.problem(f"annotations[{i}].image_id", f"no image with id {iid!r}")
                continue
            cid = a.get("category_id")
            if type(cid) is not int or cid not in cat_ids:
                if type(cid) is not int or cid not in self.bad_cats:
                    self.problem(f"annotations[{i}].category_id", f"unknown category id {cid!r}")
                continue
            try:
                geoms = self._geometries(a, entry, i)
                if a.get(OWN_BBOX) is True and not isinstance(geoms[0], Box):
                    geoms.insert(0, self._bbox(a, entry, f"annotations[{i}]"))
                attributes = a.get("attributes")
                attributes = check_attributes(attributes, self.file, f"annotations[{i}].attributes") \
                    if type(attributes) is dict and attributes else {}
                score = a.get("score")
                score = float(score) if type(score) in (int, float) else None
                if score is not None and not math.isfinite(score):
                    raise BadInput(self.file, f"annotations[{i}].score", f"not a finite number: {a['score']!r}")
                instance = a.get("instance_id")
                if type(instance) is int:
                    check_id(instance, self.file, f"annotations[{i}].instance_id")
                source = a.get("source")
                if type(source) is str and source.strip():
                    source = check_text(source, self.file, f"annotations[{i}].source")
            except BadInput as exc:
                self.bundle.problems.append(exc.problem)
                continue
            if a.get("iscrowd") in (1, True):
                attributes["iscrowd"] = 1
            if type(instance) is not int:
                instance = None
                if len(geoms) > 1:
                    instance = self.next_instance.get(id(entry), 1)
                    used = taken.get(iid, ())
                    while instance in used:
                        instance += 1
                    self.next_instance[id(entry)] = instance + 1
            source = source if type(source) is str and source.strip() else "manual"
            for g in geoms:
                entry.annotations.append(Annotation(0, cid, g, instance_id=instance,
                                                    attributes=attributes, source=source, score=score))

    def _geometries(self, a: dict, entry: ImageEntry, i: int) -> list:
        w, h = entry.width, entry.height
        seg = a.get("segmentation")
        if isinstance(seg, list) and seg:
            out = []
            for k, part in enumerate(seg):
                if not isinstance(part, list) or len(part) < 6 or len(part) % 2:
                    raise BadInput(self.file, f"annotations[{i}].segmentation[{k}]",
                                   "a polygon needs an even number (>= 6) of coordinates")
                xs, ys = part[0::2], part[1::2]
                _check_range(xs, ys, w, h, self.file, lambda: f"annotations[{i}].segmentation[{k}]")
                out.append(Polygon(tuple(zip(xs, ys))))
            return out
        if isinstance(seg, dict):
            return [self._rle(seg, w, h, f"annotations[{i}].segmentation")]
        f = f"annotations[{i}]"
        if seg not in (None, []):
            raise BadInput(self.file, f + ".segmentation", "expected polygon lists or an RLE object")
        return [self._bbox(a, entry, f)]

    def _bbox(self, a: dict, entry: ImageEntry, f: str) -> Box:
        w, h = entry.width, entry.height
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise BadInput(self.file, f + ".bbox", "no segmentation and no [x, y, width, height] bbox")
        x, y, bw, bh = bbox
        _check_range([x, bw], [y, bh], math.inf, math.inf, self.file, lambda: f + ".bbox")
        if not (bw > 0 and bh > 0):
            raise BadInput(self.file, f + ".bbox", f"width and height must be > 0, got {bbox!r}")
        _check_range([x, x + bw], [y, y + bh], w, h, self.file, lambda: f + ".bbox")
        return Box(x, y, x + bw, y + bh)

    def _rle(self, seg: dict, w: int, h: int, f: str) -> MaskRLE:
        size, counts = seg.get("size"), seg.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and [_as_int(v) for v in size] == [h, w]):
            raise BadInput(self.file, f + ".size", f"{size!r} differs from the image size [{h}, {w}]")
        check_mask_pixels(w, h, self.file, f)
        try:
            if isinstance(counts, list):  # uncompressed RLE
                if sum(int(c) for c in counts) != h * w or any(int(c) < 0 for c in counts):
                    raise ValueError("run lengths must be >= 0 and add up to height * width")
                rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
            elif isinstance(counts, str):
                # pycocotools fills runs that fall short of the image with background, silently
                if rle_run_lengths_total(counts) != h * w:
                    raise ValueError("its runs do not cover the image exactly")
                rle = {"size": [h, w], "counts": counts.encode("ascii")}
            else:
                raise ValueError("counts must be a string or a list of integers")
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            raise BadInput(self.file, f + ".counts", f"invalid RLE ({exc})") from None
        c = rle["counts"]
        return MaskRLE((h, w), c.decode("ascii") if isinstance(c, bytes) else c)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _as_int(v: Any):
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() else None


def _check_range(xs: list, ys: list, w: float, h: float, file: str, field) -> None:
    """Numbers, finite, inside the w x h image (with tolerance); `field()` names the field on error."""
    tol = COORD_TOLERANCE
    try:
        lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
        finite = math.isfinite(sum(xs) + sum(ys))  # NaN would slip through min/max comparisons
        inside = -tol <= lo_x and hi_x <= w + tol and -tol <= lo_y and hi_y <= h + tol
    except TypeError:
        raise BadInput(file, field(), "non-numeric coordinate") from None
    if not finite:
        raise BadInput(file, field(), "coordinates must be finite numbers")
    if not inside:
        raise BadInput(file, field(), f"coordinates x {lo_x:g}..{hi_x:g}, y {lo_y:g}..{hi_y:g} "
                       f"lie outside the {w}x{h} image")


# ---- export ---------------------------------------------------------------------------------

def write(store, dst: Path, *, split: str | None = None, progress: ProgressFn | None = None) -> dict:
    """Write DST/annotations.json and copy the images to DST/images/ (`progress` ticks per image).
    Never modifies the store."""
    dst = Path(dst)
    if dst.suffix.lower() == ".json":
        raise BadInput(str(dst), "destination", "COCO export writes a folder (annotations.json + images/); "
                       "give a folder path")
    doc = to_coco(store, split)
    images_dir = dst / IMAGES_DIR
    for rec, name in ticking(doc.pop("_files"), progress, "write"):
        copy_image(store.image_path(rec), images_dir / name)
    skipped, merged = doc.pop("_skipped"), doc.pop("_merged")
    atomic_write_json(dst / ANNOTATIONS_FILE, doc)
    return {"format": "coco", "file": str(dst / ANNOTATIONS_FILE), "images": len(doc["images"]),
            "annotations": len(doc["annotations"]), "categories": len(doc["categories"]), "skipped": skipped,
            "merged_objects": merged,
            "merged": f"{merged} object(s) whose box and mask/polygon share an instance_id were written as one "
                      "annotation (bbox from the box, segmentation from the mask/polygon)"}


def to_coco(store, split: str | None = None) -> dict:
    """The COCO document of the project (or one split), plus private keys `_files`, `_skipped`,
    `_merged` (objects whose box and mask/polygon became one annotation)."""
    cats = [{"id": c.id, "name": c.name, "supercategory": ""} for c in store.categories()]
    images, out_anns, files = [], [], []
    skipped: dict[str, int] = {}
    merged = 0
    items = export_items(store, split)
    names = export_names([rec for rec, _ in items])
    for rec, anns in items:
        name = names[rec.id]
        files.append((rec, name))
        images.append({"id": rec.id, "file_name": name, "width": rec.width, "height": rec.height,
                       "extra": {"split": rec.split, "status": rec.status}})
        objects, kinds = export_objects(anns)
        for kind, n in kinds.items():
            skipped[kind] = skipped.get(kind, 0) + n
        for obj in objects:
            merged += obj.merged
            out_anns.append(_coco_annotation(len(out_anns) + 1, rec, obj))
    return {"info": {"description": "exported by Visionbench"}, "images": images, "annotations": out_anns,
            "categories": cats, "_files": files, "_skipped": skipped, "_merged": merged}


def _segmentation(rec, obj: ExportObject) -> tuple[Any, float, tuple[float, float, float, float]]:
    """(COCO segmentation, area, xyxy bounds) of the object's masks and polygons."""
    geoms = [a.geometry for a in obj.shapes]
    if all(isinstance(g, Polygon) and not g.holes for g in geoms):
        seg = [[v for xy in g.points for v in xy] for g in geoms]
        # plain Python: most objects are one polygon of a few dozen vertices, where numpy costs more
        xs, ys = [x for g in geoms for x, _ in g.points], [y for g in geoms for _, y in g.points]
        return seg, sum(ring_area(g.points) for g in geoms), (min(xs), min(ys), max(xs), max(ys))
    if len(geoms) == 1 and isinstance(geoms[0], MaskRLE):
        g = geoms[0]
        return {"size": [g.size[0], g.size[1]], "counts": g.counts}, rle_area(g), bounds(g)
    # COCO polygons cannot have holes, and one segmentation is either polygons or one RLE:
    # the union of the parts goes out as exact pixels
    g = encode_mask(shape_mask(obj, rec.height, rec.width))
    return {"size": [g.size[0], g.size[1]], "counts": g.counts}, rle_area(g), bounds(g)


def _coco_annotation(ann_id: int, rec, obj: ExportObject) -> dict:
    """One object -> one COCO annotation: bbox from its box (else its shapes' bounds),
    segmentation from its masks/polygons (``[]`` for a box alone)."""
    main = obj.main
    attrs = obj.attributes()
    iscrowd = 1 if attrs.pop("iscrowd", 0) in (1, True) else 0
    if obj.shapes:
        seg, area, (x1, y1, x2, y2) = _segmentation(rec, obj)
    else:
        seg, area = [], obj.box.geometry.width * obj.box.geometry.height
    if obj.box is not None:
        b = obj.box.geometry
        x1, y1, x2, y2 = b.x1, b.y1, b.x2, b.y2
    out = {"id": ann_id, "image_id": rec.id, "category_id": obj.category_id, "segmentation": seg,
           "area": float(area), "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": iscrowd}
    if obj.instance_id is not None:
        out["instance_id"] = obj.instance_id
    if obj.merged:
        out[OWN_BBOX] = True
    if main.score is not None:
        out["score"] = main.score
    if main.source != "manual":
        out["source"] = main.source
    if attrs:
        out["attributes"] = attrs
    return out

"""What a format reader produces and what the store imports in one transaction.

Readers never touch the store: they parse and validate into an ImportBundle (collecting
Problems), then `import_bundle` writes it all-or-nothing.
"""
from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import BadInput, ImportFailed, Problem
from .geometry import rle_run_lengths_total
from .imageio import verify_decodes
from .limits import (COORD_TOLERANCE, MAX_NAME_CHARS, check_attributes, check_id, check_mask_pixels, check_name,
                     check_text)
from .model import Annotation, Box, Category, MaskRLE, Point, Polygon, Polyline, default_color
from .progress import ticking
from .store import ProjectStore


@dataclass
class ImageEntry:
    """An image to import. `file` is the image's absolute path on disk.

    Its annotations carry `category_id` = the id of a Category in the bundle (not the project)
    and image_id 0 (set on import).
    """

    file: Path
    width: int
    height: int
    split: str = "train"
    status: str = "new"
    annotations: list[Annotation] = field(default_factory=list)
    source: Path | None = None  # the annotation file that described this image, for messages


@dataclass
class ImportBundle:
    categories: list[Category] = field(default_factory=list)
    images: list[ImageEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # invalid parts found while reading

    def category_names(self) -> dict[int, str]:
        return {c.id: c.name for c in self.categories}


@dataclass
class ImportReport:
    images_added: int = 0
    images_updated: int = 0
    annotations_added: int = 0
    categories_added: int = 0
    skipped: list[Problem] = field(default_factory=list)
    duplicates_skipped: int = 0  # annotations the project held already (a source imported again)

    def as_dict(self) -> dict:
        return {"images_added": self.images_added, "images_updated": self.images_updated,
                "annotations_added": self.annotations_added, "categories_added": self.categories_added,
                "duplicates_skipped": self.duplicates_skipped,
                "skipped": [str(p) for p in self.skipped]}


def validate_bundle(bundle: ImportBundle, src, skip_invalid: bool = False) -> None:
    """The last check before a bundle reaches the store, whatever format read it: category names,
    ids, scores, attributes, and every coordinate finite and inside its image (derived geometry
    such as a circle's polygon included); masks the image's size, with runs covering it exactly.

    Bad parts become Problems in `bundle.problems` (naming the annotation file when the reader
    recorded it) and are left out of the bundle, as the readers do (the import then fails unless
    `skip_invalid`). Valid parts are replaced by their cleaned form (stripped names, normalized
    line breaks).
    """
    cats = []
    bad_cats: set[int] = set()
    for i, c in enumerate(bundle.categories):
        try:
            cats.append(replace(c, name=check_name(c.name, str(src), f"categories[{i}].name")))
        except BadInput as exc:
            bundle.problems.append(exc.problem)
            bad_cats.add(c.id)
    bundle.categories = cats
    usable = []
    for entry, problem in zip(bundle.images, _damaged_images(bundle.images)):
        if problem is None:
            usable.append(entry)
        else:
            bundle.problems.append(Problem(str(entry.source or entry.file), f"{entry.file.name}: image", problem))
    bundle.images = usable
    for entry in bundle.images:
        kept = []
        w, h = entry.width, entry.height
        for k, a in enumerate(entry.annotations):
            if a.category_id in bad_cats:
                continue  # its category's problem is listed
            try:
                kept.append(_valid_annotation(a, w, h))
            except _Invalid as bad:  # field names are only built for the rare bad annotation
                file = str(entry.source or entry.file)
                field = f"{entry.file.name}: annotation {k + 1}: {bad.field}"
                bundle.problems.append(Problem(file, field, bad.message))
        entry.annotations = kept


def _damaged_images(entries: list[ImageEntry]) -> list[str | None]:
    """Per entry, why its pixel data is unusable (None when it is fine). Threads, because zlib and
    OpenCV release the GIL while they work; an embedded LabelMe image (no file yet) was decoded
    when it was read."""
    def check(entry: ImageEntry) -> str | None:
        if not Path(entry.file).is_file():
            return None
        try:
            verify_decodes(entry.file, entry.width, entry.height)
        except BadInput as exc:
            return exc.problem.message
        return None

    if len(entries) < 8:
        return [check(e) for e in entries]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(check, entries))


class _Invalid(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def _valid_annotation(a: Annotation, w: int, h: int) -> Annotation:
    """`a` as it may be stored (text cleaned), or _Invalid. Called for every imported annotation:
    the common case (a box or polygon without extras) takes a few comparisons."""
    g = a.geometry
    tol = COORD_TOLERANCE
    if type(g) is Box:
        # chained comparisons are False for NaN, so NaN and infinities fail here too
        if not (-tol <= g.x1 < g.x2 <= w + tol and -tol <= g.y1 < g.y2 <= h + tol):
            if not (g.x2 > g.x1 and g.y2 > g.y1):
                raise _Invalid("box", f"an empty or non-finite box ({g.x1:g}, {g.y1:g}, {g.x2:g}, {g.y2:g})")
            raise _Invalid("box", f"({g.x1:g}, {g.y1:g}, {g.x2:g}, {g.y2:g}) lies outside the {w}x{h} image")
    else:
        try:
            _check_geometry(g, w, h, "", "")
        except BadInput as exc:
            raise _Invalid(a.kind, exc.problem.message) from None
    if a.instance_id is not None:
        try:
            check_id(a.instance_id, "", "")
        except BadInput as exc:
            raise _Invalid("instance_id", exc.problem.message) from None
    if a.score is not None and not (isinstance(a.score, (int, float)) and math.isfinite(a.score)):
        raise _Invalid("score", f"not a finite number: {a.score!r}")
    if a.source == "manual" and not a.attributes:
        return a
    try:
        source = a.source
        if source != "manual":
            if len(source) > MAX_NAME_CHARS:
                raise _Invalid("source", f"{len(source)} characters; at most {MAX_NAME_CHARS}")
            source = check_text(source, "", "source")
        attrs = check_attributes(a.attributes, "", "attributes") if a.attributes else a.attributes
    except BadInput as exc:
        raise _Invalid(exc.problem.field, exc.problem.message) from None
    if attrs != a.attributes or source != a.source:
        return replace(a, attributes=attrs, source=source)
    return a


def _check_geometry(g, w: int, h: int, file: str, field: str) -> None:
    tol = COORD_TOLERANCE
    if isinstance(g, MaskRLE):
        if tuple(g.size) != (h, w):
            raise BadInput(file, field, f"mask size {list(g.size)} differs from the image size [{h}, {w}]")
        check_mask_pixels(w, h, file, field)
        if not isinstance(g.counts, str) or rle_run_lengths_total(g.counts) != w * h:
            raise BadInput(file, field, "corrupt RLE: its runs do not cover the image exactly")
        return
    if isinstance(g, Box):
        xs, ys = (g.x1, g.x2), (g.y1, g.y2)
        if not (g.x2 > g.x1 and g.y2 > g.y1):  # also False for NaN
            raise BadInput(file, field, f"an empty box ({g.x1:g}, {g.y1:g}, {g.x2:g}, {g.y2:g})")
    elif isinstance(g, Point):
        xs, ys = (g.x,), (g.y,)
    elif isinstance(g, (Polygon, Polyline)):
        rings = [g.points] + (list(g.holes) if isinstance(g, Polygon) else [])
        need = 3 if isinstance(g, Polygon) else 2
        if any(len(r) < need for r in rings):
            raise BadInput(file, field, f"needs at least {need} points")
        xs = [p[0] for r in rings for p in r]
        ys = [p[1] for r in rings for p in r]
    else:
        raise BadInput(file, field, f"unknown geometry {type(g).__name__}")
    try:
        # a sum is infinite or NaN when any term is (and cheaper than testing each)
        finite = math.isfinite(sum(xs)) and math.isfinite(sum(ys))
    except TypeError:
        finite = False
    if not finite and not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (*xs, *ys)):
        raise BadInput(file, field, "coordinates must be finite numbers")
    if min(xs) < -tol or min(ys) < -tol or max(xs) > w + tol or max(ys) > h + tol:
        raise BadInput(file, field, f"coordinates x {min(xs):g}..{max(xs):g}, y {min(ys):g}..{max(ys):g} "
                       f"lie outside the {w}x{h} image")


def import_bundle(store: ProjectStore, bundle: ImportBundle, skip_invalid: bool = False,
                  progress=None, src=None) -> ImportReport:
    """Write a bundle into the store in one transaction.

    With problems and not `skip_invalid`: raises ImportFailed and the project is unchanged.
    With `skip_invalid`: the reader already left the invalid parts out; they are listed in the report.
    An image already in the project (same path) keeps its record and gets the new annotations,
    except those it holds already (same category and geometry), which are counted in
    ``duplicates_skipped``: importing a source twice does not double it. A source whose every
    annotation is in the project already raises BadInput ("already imported"; `src` names it).
    `progress(done, total, "store")`, when given, is called per image.
    """
    if bundle.problems and not skip_invalid:
        raise ImportFailed(bundle.problems)
    report = ImportReport(skipped=list(bundle.problems))
    names = bundle.category_names()
    with store.transaction():
        cat_ids: dict[int, int] = {}
        existing = {c.name: c for c in store.categories()}
        n = len(existing)
        for c in bundle.categories:
            if c.name in existing:
                cat_ids[c.id] = existing[c.name].id
            else:
                new = store.add_category(c.name, c.color or default_color(n))
                n += 1
                existing[c.name] = new
                cat_ids[c.id] = new.id
                report.categories_added += 1
        pending: list[Annotation] = []
        remap: list[tuple[int, int]] = []  # (image id, category id) in the project, per pending annotation
        known = {rec.path: rec for rec in store.images()}  # one query instead of one per image
        held: dict[int, list] | None = None  # annotations of the project, read when first needed
        for entry in ticking(bundle.images, progress, "store"):
            rel = store._rel(entry.file)
            rec = known.get(rel)
            present: set = set()
            if rec is None:
                [rec] = store.insert_images([(rel, entry.width, entry.height, entry.split, entry.status)])
                known[rel] = rec
                report.images_added += 1
            else:
                report.images_updated += 1
                held = store.all_annotations() if held is None else held
                present = {_same_key(a.category_id, a) for a in held.get(rec.id, ())}
            for a in entry.annotations:
                if a.category_id not in cat_ids:
                    raise ImportFailed([Problem(str(entry.file), "category",
                                                f"unknown category id {a.category_id} ({names.get(a.category_id)})")])
                if present and _same_key(cat_ids[a.category_id], a) in present:
                    report.duplicates_skipped += 1
                    continue
                pending.append(a)
                remap.append((rec.id, cat_ids[a.category_id]))
        if report.duplicates_skipped and not pending and not report.images_added:
            raise BadInput(str(src or "<source>"), "SRC", f"already imported: its {report.duplicates_skipped} "
                           "annotations are in the project already; nothing was imported")
        store.bulk_insert_annotations(pending, remap)
        report.annotations_added = len(pending)
    return report


def _same_key(category_id: int, a: Annotation) -> tuple:
    """What makes two annotations of one image the same object for re-import detection."""
    return (category_id, a.kind, json.dumps(a.geometry.to_json(), sort_keys=True))

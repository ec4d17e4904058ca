"""YOLO text labels (Ultralytics layout), detection and segmentation: import and export.

Layout read (any of)::

    SRC/images/<split>/a.jpg  +  SRC/labels/<split>/a.txt     (Ultralytics)
    SRC/<split>/images/a.jpg  +  SRC/<split>/labels/a.txt     (Roboflow)
    SRC/images/a.jpg          +  SRC/labels/a.txt
    SRC/a.jpg                 +  SRC/a.txt                    (LabelImg: labels next to images)
    SRC/a.jpg                 +  SRC/labels/a.txt             (X-AnyLabeling: labels/ beside the images)

Class names come from ``data.yaml`` (``names:`` as a list or an ``{index: name}`` dict) or else
``classes.txt`` (one per line, in SRC or SRC/labels). Without either, classes are named by index.
The label file of an image is its path with the last ``images`` folder replaced by ``labels`` and
the suffix by ``.txt`` (Ultralytics' rule), else the ``.txt`` beside the image, else
``labels/<stem>.txt`` in the image's folder. An image without a
label file is an image without objects. Splits come from ``data.yaml``'s ``train:/val:/test:``
(folders or lists of images), else from a ``train``/``val``/``valid``/``test`` folder in the path.

Each label line is detected on its own: ``cls cx cy w h`` (5 values) is a box, ``cls x1 y1 ...
xn yn`` (n >= 3 points) a polygon; coordinates are normalized to the image's width and height.
Files mixing both kinds of row (other tools write them; Ultralytics refuses them) are read.

Export writes ``images/<split>/``, ``labels/<split>/``, ``data.yaml`` (``path``, ``train``, ``val``,
``test`` when there is one, ``names`` as index -> name) and ``classes.txt``, with ONE row per object
and one kind of row per export, as Ultralytics requires (a box and a mask/polygon sharing an
``instance_id`` are one object, see ``common.export_objects``):

- ``task="detect"``: ``cls cx cy w h``: the object's box, or the tight box of its mask/polygon;
- ``task="segment"``: ``cls x1 y1 ... xn yn``: the object's outline (a mask traced so that the
  polygon rasterizes back to exactly its pixels; several parts and holes joined into one ring by
  zero-width cuts, as Ultralytics does for multi-part masks); an object with only a box becomes
  its 4-corner polygon;
- ``task="auto"`` (default): segment when any object of the project has a mask or polygon, else
  detect; the summary says which and why.

Points and polylines are counted in the summary's ``not_exported``. Values are written with 8
decimals: below 1e-4 px of error on images up to 20,000 px.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..bundle import ImageEntry, ImportBundle
from ..errors import BadInput, Problem
from ..geometry import mask_to_polygons
from ..imageio import is_image_file, probe_image
from ..limits import check_name
from ..model import SPLITS, Annotation, Box, Category, MaskRLE, Polygon, default_color
from .common import (COORD_TOLERANCE, ExportObject, ProgressFn, atomic_write_text, copy_image, export_items,
                     export_objects, inside_source, lines_of, read_text, shape_bounds, shape_mask, ticking)
from .destination import final_destination
from .voc import unique_file_names

SPLIT_WORDS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_ALIASES = 100
# One image's lines: 100,000 boxes, or 1,000 polygons of 100 points. Each line costs tens of
# microseconds to check and store, so this also bounds the time one file can take (about 5 s).
MAX_LABEL_BYTES = 2 * 1024 * 1024
# class indices index a names list; a line claiming class 10**18 is a corrupt line, not a class
MAX_CLASS_INDEX = 65_535


# ---- class names and splits ----------------------------------------------------------------

def _load_yaml(path: Path):
    import yaml

    text = read_text(path, field="encoding", limit=MAX_YAML_BYTES)

    class Loader(yaml.SafeLoader):
        """A SafeLoader that refuses more than a few aliases: nested aliases in a 1 KB file (a
        "billion laughs") stand for gigabytes once anything walks the values."""
        aliases = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                Loader.aliases += 1
                if Loader.aliases > MAX_YAML_ALIASES:
                    raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (*name)")
            return super().compose_node(parent, index)

    try:
        data = yaml.load(text, Loader=Loader)  # a SafeLoader with limits
    except RecursionError:
        raise BadInput(str(path), "yaml", "nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise BadInput(str(path), "yaml", f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
                       line=line) from None
    if not isinstance(data, dict):
        raise BadInput(str(path), "yaml", "expected a mapping with a 'names' key")
    return data


def _names_from_yaml(path: Path, data: dict) -> dict[int, str] | None:
    names = data.get("names")
    if names is None:
        return None
    if isinstance(names, list):
        return {i: _yaml_name(path, i, n) for i, n in enumerate(names)}
    if isinstance(names, dict):
        out = {}
        for k, v in names.items():
            try:
                idx = int(k)
            except (TypeError, ValueError, OverflowError):
                raise BadInput(str(path), "names", f"class index {k!r} is not an integer") from None
            if not 0 <= idx <= MAX_CLASS_INDEX:
                raise BadInput(str(path), "names", f"class index {idx} is not in 0..{MAX_CLASS_INDEX}")
            out[idx] = _yaml_name(path, idx, v)
        return out
    raise BadInput(str(path), "names", "expected a list of names or an {index: name} mapping")


def _yaml_name(path: Path, idx: int, value) -> str:
    if isinstance(value, (list, dict)) or value is None:
        raise BadInput(str(path), f"names[{idx}]", f"expected a name, got {type(value).__name__}")
    return check_name(str(value), str(path), f"names[{idx}]")


def _usable_path(value) -> bool:
    """A string the file system can take: no NUL, not absurdly long, no lone surrogate (YAML turns
    a JSON-style escaped emoji into two of them)."""
    if not isinstance(value, str) or "\x00" in value or len(value) > 4096:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _split_roots(src: Path, yaml_file: Path, data: dict) -> list[tuple[str, set[Path], list[Path]]]:
    """[(split, image files listed, folders)] from data.yaml's train/val/test entries.

    Only used to label images found under SRC; entries pointing elsewhere simply match nothing.
    """
    base = yaml_file.parent
    root = data.get("path")
    if _usable_path(root) and root.strip():
        cand = Path(root) if Path(root).is_absolute() else base / root
        if cand.is_dir():
            base = cand
    out = []
    for key, split in (("train", "train"), ("val", "val"), ("test", "test")):
        entries = data.get(key)
        if entries is not None and not isinstance(entries, (str, list)):
            raise BadInput(str(yaml_file), key, f"expected a path or a list of paths, got {type(entries).__name__}")
        entries = entries if isinstance(entries, list) else [entries] if isinstance(entries, str) else []
        files: set[Path] = set()
        dirs: list[Path] = []
        for k, e in enumerate(entries):
            if not _usable_path(e):
                raise BadInput(str(yaml_file), f"{key}[{k}]", f"expected a path, got {str(e)[:60]!r}")
            p = (base / e).resolve()
            if p.is_dir():
                dirs.append(p)
            elif p.is_file() and p.suffix.lower() == ".txt":
                try:
                    lines = read_text(p).splitlines()
                except BadInput:
                    continue
                for ln in lines:
                    ln = ln.strip()
                    if ln and _usable_path(ln):
                        files.add((p.parent / ln).resolve() if not Path(ln).is_absolute() else Path(ln).resolve())
        out.append((split, files, dirs))
    return out


def _split_of(image: Path, src: Path, roots) -> str:
    r = image.resolve()
    listed = [split for split, files, dirs in roots
              if r in files or any(d == r.parent or d in r.parents for d in dirs)]
    if len(listed) == 1:
        return listed[0]
    # not listed, or listed twice (an export without val validates on train): the folder decides
    for part in reversed(image.relative_to(src).parts[:-1]):
        if part.lower() in SPLIT_WORDS:
            return SPLIT_WORDS[part.lower()]
    return listed[0] if listed else "train"


# ---- finding images and their labels -------------------------------------------------------

def _label_file(image: Path, src: Path) -> Path | None:
    rel = image.relative_to(src).parts
    idx = max((i for i, p in enumerate(rel[:-1]) if p == "images"), default=None)
    if idx is not None:
        cand = src.joinpath(*rel[:idx], "labels", *rel[idx + 1:]).with_suffix(".txt")
        if cand.is_file():
            return cand
    # beside the image, or in a labels/ folder beside it (X-AnyLabeling's layout)
    for cand in (image.with_suffix(".txt"), image.parent / "labels" / (image.stem + ".txt")):
        if cand.is_file():
            return cand
    return None


def _images(src: Path) -> list[Path]:
    found = [p for p in sorted(src.rglob("*"))
             if is_image_file(p) and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(src).parts)]
    under_images = [p for p in found if "images" in p.relative_to(src).parts[:-1]]
    return under_images or found


# ---- label lines ---------------------------------------------------------------------------

def _parse_line(text: str, lineno: int, label: Path, w: int, h: int,
                names: dict[int, str] | None) -> tuple[int, Box | Polygon]:
    """One label line -> (class index, geometry in pixels). BadInput names the line."""
    f = str(label)
    tokens = text.split()
    n = len(tokens)
    if n != 5 and (n < 7 or (n - 1) % 2):
        raise BadInput(f, "line", f"malformed line: expected 'cls cx cy w h' or 'cls x1 y1 ... xn yn' "
                       f"(3+ points), got {n} values", line=lineno)
    try:
        cls_f = float(tokens[0])
        vals = [float(t) for t in tokens[1:]]
    except ValueError:
        raise BadInput(f, "line", f"malformed line: non-numeric value in {text.strip()!r}", line=lineno) from None
    if not all(math.isfinite(v) for v in vals):
        raise BadInput(f, "line", "malformed line: non-finite value", line=lineno)
    if not cls_f.is_integer() or not 0 <= cls_f <= MAX_CLASS_INDEX:
        raise BadInput(f, "class", f"class index {tokens[0]!r} is not an integer in 0..{MAX_CLASS_INDEX}",
                       line=lineno)
    cls = int(cls_f)
    if names is not None and cls not in names:
        raise BadInput(f, "class", f"class index {cls} is not among the {len(names)} classes "
                       f"(0..{max(names) if names else -1})", line=lineno)
    tol_x, tol_y = COORD_TOLERANCE / w, COORD_TOLERANCE / h
    if n == 5:
        cx, cy, bw, bh = vals
        if bw <= 0 or bh <= 0:
            raise BadInput(f, "coordinates", f"box width/height must be > 0, got {bw:g} x {bh:g}", line=lineno)
        nx1, ny1, nx2, ny2 = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
        if nx1 < -tol_x or ny1 < -tol_y or nx2 > 1 + tol_x or ny2 > 1 + tol_y:
            raise BadInput(f, "coordinates", f"box ({cx:g}, {cy:g}, {bw:g}, {bh:g}) leaves the image: "
                           "normalized coordinates must lie in 0..1", line=lineno)
        return cls, Box((nx1 if nx1 > 0.0 else 0.0) * w, (ny1 if ny1 > 0.0 else 0.0) * h,
                        (nx2 if nx2 < 1.0 else 1.0) * w, (ny2 if ny2 < 1.0 else 1.0) * h)
    xs, ys = vals[0::2], vals[1::2]
    if min(xs) < -tol_x or min(ys) < -tol_y or max(xs) > 1 + tol_x or max(ys) > 1 + tol_y:
        raise BadInput(f, "coordinates", "polygon point outside the image: normalized coordinates must "
                       f"lie in 0..1 (x in {min(xs):g}..{max(xs):g}, y in {min(ys):g}..{max(ys):g})",
                       line=lineno)
    pts = tuple((min(max(x, 0.0), 1.0) * w, min(max(y, 0.0), 1.0) * h) for x, y in zip(xs, ys))
    return cls, Polygon(pts)


def _read_names(src: Path, problems: list[Problem]) -> tuple[dict[int, str] | None, list]:
    """(index -> name or None, split roots) from data.yaml or classes.txt."""
    for fname in YAML_NAMES:
        y = src / fname
        if y.is_file():
            try:
                data = _load_yaml(y)
                names = _names_from_yaml(y, data)
                roots = _split_roots(src, y, data)
            except BadInput as exc:
                problems.append(exc.problem)
                return None, []
            if names is not None:
                return names, roots
            break
    else:
        roots = []
    for cand in (src / "classes.txt", src / "labels" / "classes.txt"):
        if cand.is_file():
            try:
                lines = [ln.strip() for ln in lines_of(read_text(cand, field="encoding"))]
                lines = [check_name(ln, str(cand), "names") for ln in lines if ln]
            except BadInput as exc:
                problems.append(exc.problem)
                return None, roots
            return dict(enumerate(lines)), roots
    return None, roots


def read(src: Path, *, skip_invalid: bool = False, progress: ProgressFn | None = None) -> ImportBundle:
    """Parse a YOLO folder into an ImportBundle (never touches a store).

    A bad line is left out alone (Problem with its line number); an image that is missing,
    unreadable or whose label file is not UTF-8 is left out with its labels.
    """
    src = Path(src)
    if not src.is_dir():
        raise BadInput(str(src), "folder", "not a folder (expected images/ and labels/)")
    bundle = ImportBundle()
    names, roots = _read_names(src, bundle.problems)
    if bundle.problems and names is None:
        # without readable class names no line can be checked or named: nothing here is usable,
        # with --skip-invalid too (falling back to index names would import wrong names quietly)
        p = bundle.problems[0]
        raise BadInput(p.file, p.field, p.message, line=p.line)
    used: set[int] = set()
    matched_labels: set[Path] = set()
    dirs: dict = {}
    for image in ticking(_images(src), progress, "read"):
        label = _label_file(image, src)
        if label is not None:
            matched_labels.add(label)
        try:
            for f in (image, label):
                if f is not None and not inside_source(f, src, dirs):  # as COCO, VOC and LabelMe refuse
                    raise BadInput(str(f), "file", "a symlink out of the source folder")
            try:
                w, h = probe_image(image)
            except BadInput as exc:
                raise BadInput(str(image), "image", exc.problem.message) from None
            text = read_text(label, field="encoding", limit=MAX_LABEL_BYTES) if label is not None else ""
        except BadInput as exc:
            bundle.problems.append(exc.problem)
            continue
        anns = []
        for lineno, ln in enumerate(text.splitlines(), start=1):
            if not ln.strip() or ln.lstrip().startswith("#"):
                continue
            try:
                cls, geom = _parse_line(ln, lineno, label, w, h, names)
            except BadInput as exc:
                bundle.problems.append(exc.problem)
                continue
            used.add(cls)
            anns.append(Annotation(image_id=0, category_id=cls + 1, geometry=geom))
        bundle.images.append(ImageEntry(file=image.resolve(), width=w, height=h,
                                        split=_split_of(image, src, roots), annotations=anns, source=label))
    for label in sorted(src.rglob("*.txt")):
        if "labels" in label.relative_to(src).parts[:-1] and label.name != "classes.txt" \
                and label not in matched_labels:
            bundle.problems.append(Problem(str(label), "image", "no image found for this label file"))
    if names is None:
        names = {i: str(i) for i in sorted(used)}
    # category id = class index + 1, so that a project's ids and the file's indices line up
    bundle.categories = [Category(i + 1, name, default_color(i)) for i, name in sorted(names.items())]
    return bundle


# ---- writing --------------------------------------------------------------------------------

TASKS = ("auto", "detect", "segment")


def _fmt(v: float) -> str:
    v = min(max(v, 0.0), 1.0) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{v:.8f}".rstrip("0").rstrip(".") or "0"


def _cut(ring: list, part: list) -> list:
    """`ring` and `part` as one ring: `part` is walked from its vertex closest to `ring` and joined
    by a zero-width cut (there and back along one segment), which even-odd filling ignores."""
    a, b = np.asarray(ring, np.float64), np.asarray(part, np.float64)
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
    i, j = divmod(int(d.argmin()), d.shape[1])
    return ring[:i + 1] + part[j:] + part[:j + 1] + ring[i:]


def bridge_holes(poly: Polygon) -> list[tuple[float, float]]:
    """One ring for a polygon with holes: each hole is joined to the outline by a zero-width cut
    between their closest vertices, so even-odd filling (pycocotools, OpenCV) leaves the hole empty."""
    ring = list(poly.points)
    for hole in poly.holes:
        if len(hole) >= 3:
            ring = _cut(ring, list(hole))
    return ring


def join_parts(polys: list[Polygon]) -> list[tuple[float, float]]:
    """One ring for an object of several parts (and holes): the parts are joined by zero-width
    cuts as holes are, the way Ultralytics itself writes a multi-part COCO mask as one row."""
    ring: list = []
    for p in polys:
        part = bridge_holes(p)
        ring = _cut(ring, part) if ring else part
    return ring


def mask_outline(mask) -> list[Polygon]:
    """Polygons whose rasterization (pixel centres inside) is exactly `mask` [H, W], in pixels.

    geometry.mask_to_polygons keeps every pixel centre 0.25 px or more from the outline, so the
    8-decimal text round trip is pixel-exact.
    """
    return mask_to_polygons(mask)


def _line(cls: int, values: list[float]) -> str:
    return " ".join([str(cls)] + [_fmt(v) for v in values])


def choose_task(store, task: str = "auto", annotations=None) -> tuple[str, str]:
    """(task, why): the task an export with `task` writes, and the reason, for the summary and for
    an export dialog to show before exporting. "auto" looks at the whole project (every split), so
    the exports of its splits one by one all get the same task. `annotations` (the lists of every
    image's annotations, when the caller has them already) saves reading them again."""
    if task not in TASKS:
        raise BadInput("<options>", "task", f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if task != "auto":
        return task, f"{task} was asked for"
    total = with_shape = 0
    for anns in store.all_annotations().values() if annotations is None else annotations:
        objects, _ = export_objects(anns)
        total += len(objects)
        with_shape += sum(1 for o in objects if o.shapes)
    if with_shape:
        return "segment", (f"auto: {with_shape} of the project's {total} objects have a mask or polygon "
                           "(objects with only a box become their 4-corner polygon)")
    return "detect", "auto: no object of the project has a mask or polygon"


def _clipped(x1: float, y1: float, x2: float, y2: float, w: int, h: int):
    x1, y1, x2, y2 = min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h)
    return None if x2 <= x1 or y2 <= y1 else (x1, y1, x2, y2)


class _Rows:
    """Turns the objects of one image into label rows, counting what each step did."""

    def __init__(self, task: str):
        self.task = task
        self.counts = dict.fromkeys(ROW_COUNTS[task], 0)
        self.counts["merged_objects"] = 0
        self.not_exported: dict[str, int] = {}

    def skip(self, why: str) -> None:
        self.not_exported[why] = self.not_exported.get(why, 0) + 1

    def row(self, cls: int, obj: ExportObject, w: int, h: int) -> str | None:
        line = self._detect(cls, obj, w, h) if self.task == "detect" else self._segment(cls, obj, w, h)
        if line is not None:
            self.counts["merged_objects"] += obj.merged
        return line

    def _detect(self, cls: int, obj: ExportObject, w: int, h: int) -> str | None:
        if obj.box is not None:
            g = obj.box.geometry
            box = _clipped(g.x1, g.y1, g.x2, g.y2, w, h)
        else:
            box = _clipped(*shape_bounds(obj), w, h)
        if box is None:  # nothing inside the image: a label row cannot hold it
            self.skip("box_outside_image" if obj.box is not None else "outline_outside_image")
            return None
        self.counts["boxes" if obj.box is not None else "boxes_from_outlines"] += 1
        x1, y1, x2, y2 = box
        return _line(cls, [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h])

    def _segment(self, cls: int, obj: ExportObject, w: int, h: int) -> str | None:
        c = self.counts
        if not obj.shapes:
            g = obj.box.geometry
            box = _clipped(g.x1, g.y1, g.x2, g.y2, w, h)
            if box is None:
                self.skip("box_outside_image")
                return None
            c["boxes_as_polygons"] += 1
            x1, y1, x2, y2 = box
            return _line(cls, [v for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)) for v in (x / w, y / h)])
        if all(isinstance(a.geometry, Polygon) for a in obj.shapes):
            polys = [a.geometry for a in obj.shapes]
            c["polygons"] += len(polys)
        else:  # the exact pixels of its masks (and polygons), traced
            polys = mask_outline(shape_mask(obj, h, w))
            c["masks_converted"] += sum(isinstance(a.geometry, MaskRLE) for a in obj.shapes)
            c["mask_polygons"] += len(polys)
            if not polys:
                self.skip("empty_mask")
                return None
        c["holes_bridged"] += sum(len(p.holes) for p in polys)
        c["parts_joined"] += len(polys) - 1
        ring = join_parts(polys)
        if obj.box is not None:
            # a segment row carries no box: trainers take the outline's bounds; say when they differ
            xs, ys = [x for x, _ in ring], [y for _, y in ring]
            g = obj.box.geometry
            gap = max(abs(min(xs) - g.x1), abs(min(ys) - g.y1), abs(max(xs) - g.x2), abs(max(ys) - g.y2))
            c["boxes_unlike_outline"] += gap > BOX_OUTLINE_TOLERANCE
        return _line(cls, [v for x, y in ring for v in (x / w, y / h)])


# A traced mask outline lies 0.25 px inside the mask's pixel edges, so its bounds are 0.25 px
# inside the mask's box; a box further off than this from its outline was drawn by other means.
BOX_OUTLINE_TOLERANCE = 1.0
ROW_COUNTS = {"detect": ("boxes", "boxes_from_outlines"),
              "segment": ("polygons", "masks_converted", "mask_polygons", "holes_bridged", "parts_joined",
                          "boxes_as_polygons", "boxes_unlike_outline")}
NOTES = {
    "detect": "one row per object: its box, or the tight box of its mask/polygon when it has none; "
              "masks and polygons themselves are not written (use --task segment)",
    "segment": "one row per object: its outline (parts and holes joined by zero-width cuts), or the "
               "4 corners of its box when it has only a box; a box that shares its object with a mask "
               "or polygon is not written (trainers take the outline's bounds; boxes_unlike_outline "
               "counts those more than 1 px off)",
}


def write(store, dst: Path, *, split: str | None = None, task: str = "auto", copy_images: bool = True,
          progress: ProgressFn | None = None) -> dict:
    """Export the project (or one split) as an Ultralytics YOLO folder; JSON-able summary.

    One row per object (``common.export_objects``), all of one kind per export: ``task="detect"``
    writes ``cls cx cy w h`` rows, ``"segment"`` ``cls x1 y1 ... xn yn`` rows, ``"auto"`` picks
    (see :func:`choose_task`). Class index = position of the category in ``store.categories()``.
    """
    dst = Path(dst)
    items = export_items(store, split)
    task, why = choose_task(store, task, [anns for _, anns in items] if split is None else None)
    cats = store.categories()
    index = {c.id: i for i, c in enumerate(cats)}
    file_names = unique_file_names(rec for rec, _ in items)
    rows = _Rows(task)
    n_rows = 0
    present: set[str] = set()
    for rec, anns in ticking(items, progress, "write"):
        objects, skipped = export_objects(anns)
        for kind, n in skipped.items():
            rows.not_exported[kind] = rows.not_exported.get(kind, 0) + n
        lines = [ln for ln in (rows.row(index[o.category_id], o, rec.width, rec.height) for o in objects) if ln]
        n_rows += len(lines)
        name = file_names[rec.id]
        present.add(rec.split)
        if copy_images:
            copy_image(store.image_path(rec), dst / "images" / rec.split / name)
        atomic_write_text(dst / "labels" / rec.split / (Path(name).stem + ".txt"), "".join(f"{ln}\n" for ln in lines))
    _write_data_yaml(dst, cats, present, task)
    atomic_write_text(dst / "classes.txt", "".join(f"{c.name}\n" for c in cats))
    return {"format": "yolo", "dst": str(dst), "task": task, "task_reason": why, "note": NOTES[task],
            "images": len(items), "objects": n_rows, **rows.counts,
            "not_exported": rows.not_exported, "not_exported_total": sum(rows.not_exported.values()),
            "val_is_train": "val" not in present,
            "splits": sorted(present, key=SPLITS.index) if present <= set(SPLITS) else sorted(present)}


def _write_data_yaml(dst: Path, cats, present: set[str], task: str) -> None:
    """data.yaml as Ultralytics reads it: `path`, `train`, `val` (and `test`), `names` as
    index -> name. Only splits with images are named; Ultralytics needs a val set, so an export
    without one validates on its training images (the summary's val_is_train says so)."""
    train_dir = next((f"images/{s}" for s in ("train", "val", "test") if s in present), "images/train")
    val_dir = "images/val" if "val" in present else train_dir
    yaml_lines = [f"# written by Visionbench ({task} rows); 'path' is where this export was written",
                  f"path: {json.dumps(str(final_destination(dst).resolve()))}",
                  f"train: {train_dir}", f"val: {val_dir}"]
    if "test" in present:
        yaml_lines.append("test: images/test")
    yaml_lines += [f"nc: {len(cats)}", "names:"] + [f"  {i}: {json.dumps(c.name, ensure_ascii=False)}"
                                                     for i, c in enumerate(cats)]
    atomic_write_text(dst / "data.yaml", "\n".join(yaml_lines) + "\n")

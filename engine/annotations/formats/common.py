"""Helpers shared by the format readers and writers.

Every check raises ``BadInput(file, field, message)`` naming the annotation file being read and
the field in it (``images[3].file_name``, ``shapes[2].points``); readers turn those into
``Problem``s with :func:`problem_of` so that one bad part does not hide the others.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable

import numpy as np

from ..errors import BadInput, Problem
from ..geometry import bounds, geometry_to_mask
from ..imageio import probe_image
from ..model import Annotation, Box, MaskRLE, Polygon
from ..limits import COORD_TOLERANCE, MAX_ANNOTATION_FILE_BYTES, check_file_size
from ..progress import ProgressFn, ticking  # noqa: F401 - the formats import them from here

try:  # orjson parses and writes big COCO files several times faster; the stdlib is the fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None
_loads = _orjson.loads if _orjson is not None else json.loads



# Longer paths than this are not file names a tool wrote (PATH_MAX is 4096 on Linux)
MAX_PATH_CHARS = 4096


def problem_of(exc: BadInput) -> Problem:
    return exc.problem


# ---- reading --------------------------------------------------------------------------------

def read_bytes(path: Path, field: str, limit: int = MAX_ANNOTATION_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (a FIFO would block forever, a device
    never end); BadInput naming the file otherwise."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise BadInput(str(path), field, "file not found") from None
    except OSError as exc:
        raise BadInput(str(path), field, f"cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(str(path), field, "not a regular file (a pipe, device or folder cannot be read)")
    check_file_size(path, "size", limit)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(str(path), field, f"cannot read ({exc.strerror or exc})") from None


def inside_source(path: Path, src: Path, cache: dict | None = None) -> bool:
    """True when `path`, symlinks resolved, lies in the source folder `src` (or is it)."""
    base = _real(str(src), {} if cache is None else cache).rstrip(os.sep) + os.sep
    return (os.path.realpath(path) + os.sep).startswith(base)


def read_text(path: Path, field: str = "encoding", limit: int = MAX_ANNOTATION_FILE_BYTES) -> str:
    """The file's text as UTF-8 (a BOM is allowed); BadInput naming the byte offset otherwise."""
    path = Path(path)
    data = read_bytes(path, field, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadInput(str(path), field, f"not UTF-8 text (bad byte 0x{data[exc.start]:02x} at offset "
                       f"{exc.start})", line=line) from None


def lines_of(text: str) -> list[str]:
    """The lines of a one-name-per-line file, split at LF (CR LF too) only.

    str.splitlines() also splits at U+2028, NEL, form feed and other separators: a name holding
    one would silently become two classes and shift every index after it; kept in one line, it
    is refused by the name check instead.
    """
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def load_json(path: Path) -> Any:
    """Parse a JSON file; BadInput with line and column for malformed JSON or non-UTF-8 bytes."""
    text = read_text(path, field="json")
    try:
        return _loads(text)
    except RecursionError:
        raise BadInput(str(path), "json", "nested too deeply") from None
    except json.JSONDecodeError as exc:  # orjson's error is a subclass, with the same fields
        raise BadInput(str(path), "json", f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                       line=exc.lineno) from None


def resolve_inside(base_dir: Path, relpath: str, file: Path | str, field: str,
                   start: Path | None = None, cache: dict | None = None) -> Path:
    """`relpath` (as written in an annotation file, relative to `start`, default `base_dir`)
    resolved; it must stay under `base_dir`.

    Both separators are accepted. A path that leaves `base_dir` (through ``..``, a symlink, or
    an absolute path elsewhere) raises BadInput: an annotation file must not make us read or
    copy files it does not ship with. `cache` (a dict kept by one reader) remembers resolved
    folders, which makes thousands of look-ups in one folder cheap.
    """
    if not isinstance(relpath, str) or not relpath.strip():
        raise BadInput(str(file), field, "missing or empty path")
    try:
        too_long = any(len(part.encode("utf-8")) > 255 for part in relpath.replace("\\", "/").split("/"))
    except UnicodeEncodeError:  # a lone surrogate: no file system takes it
        too_long = True
    if len(relpath) > MAX_PATH_CHARS or "\x00" in relpath or too_long:
        raise BadInput(str(file), field, f"not a usable path ({len(relpath)} characters; at most {MAX_PATH_CHARS}, "
                       "255 bytes per name, no NUL)")
    cache = {} if cache is None else cache
    base = _real(str(base_dir), cache)
    raw = relpath.strip()
    if PureWindowsPath(raw).drive or raw.startswith(("/", "\\")):
        candidate = os.path.normpath(raw)
    else:
        origin = _real(str(start), cache) if start is not None else base
        candidate = os.path.normpath(os.path.join(origin, *PurePosixPath(raw.replace("\\", "/")).parts))
    head, tail = os.path.split(candidate)
    resolved = os.path.join(_real(head, cache), tail) if tail else _real(head, cache)
    if os.path.islink(resolved):
        resolved = os.path.realpath(resolved)
    if resolved != base and not resolved.startswith(base.rstrip(os.sep) + os.sep):
        raise BadInput(str(file), field, f"path {relpath!r} leaves the source folder {base}")
    return Path(resolved)


def _real(folder: str, cache: dict) -> str:
    r = cache.get(folder)
    if r is None:
        r = cache[folder] = os.path.realpath(folder)
    return r


def check_image(image_file: Path, declared_w: Any, declared_h: Any, *, file: Path | str,
                field: str) -> tuple[int, int]:
    """Check that the image exists, is readable and has the declared size (when declared).

    Returns (width, height) from the image header. Declared sizes of None are taken from the
    header.
    """
    try:
        w, h = probe_image(Path(image_file))
    except BadInput as exc:
        where = "" if str(image_file) == str(file) else f"{image_file}: "
        raise BadInput(str(file), field, f"{where}{exc.problem.message}") from None
    for name, declared, actual in (("width", declared_w, w), ("height", declared_h, h)):
        if declared is None:
            continue
        try:
            ok = int(declared) == actual and float(declared) == float(int(declared))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise BadInput(str(file), field, f"declared image {name} {declared!r} differs from the "
                           f"{actual} px of {image_file}")
    return w, h


def as_points(value: Any, *, file: Path | str, field: str, min_points: int = 1) -> list[tuple[float, float]]:
    """[[x, y], ...] -> list of finite float pairs; BadInput for anything else."""
    if not isinstance(value, (list, tuple)) or len(value) < min_points:
        raise BadInput(str(file), field, f"expected a list of at least {min_points} [x, y] points")
    out = []
    for i, p in enumerate(value):
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise BadInput(str(file), field, f"point {i} is not an [x, y] pair: {p!r}")
        try:
            x, y = float(p[0]), float(p[1])
        except (TypeError, ValueError):
            raise BadInput(str(file), field, f"point {i} has non-numeric coordinates: {p!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise BadInput(str(file), field, f"point {i} is not finite: {p!r}")
        out.append((x, y))
    return out


def check_inside(points: Iterable[tuple[float, float]], width: int, height: int, *, file: Path | str,
                 field: str, tol: float = COORD_TOLERANCE) -> None:
    """BadInput if a point lies more than `tol` px outside the image [0, width] x [0, height]."""
    for i, (x, y) in enumerate(points):
        if not (-tol <= x <= width + tol and -tol <= y <= height + tol):
            raise BadInput(str(file), field, f"point {i} ({x:g}, {y:g}) lies outside the "
                           f"{width}x{height} image")


# ---- writing --------------------------------------------------------------------------------

def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder, then os.replace: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any, indent: int | None = None) -> None:
    """Write JSON (UTF-8, compact, or indented by 2 when `indent`) atomically."""
    if _orjson is not None:
        data = _orjson.dumps(obj, option=_orjson.OPT_INDENT_2 if indent else 0)
    else:
        data = json.dumps(obj, indent=indent, ensure_ascii=False,
                          separators=None if indent else (",", ":")).encode("utf-8")
    atomic_write_bytes(path, data + b"\n")


def copy_image(src: Path, dst: Path) -> None:
    """Copy an image file into an export (temp + replace); nothing to do if it is the same file."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise BadInput(str(src), "image", "file not found; the project's image has moved or was deleted, "
                       "so it cannot be copied into the export")
    if dst.exists() and os.path.samefile(src, dst):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + dst.name + ".", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def export_names(records) -> dict[int, str]:
    """image id -> the relative name the image gets inside an export folder.

    The project-relative path is kept when it stays inside the project folder; images that live
    outside it (``../photos/a.jpg``) go flat under their file name, prefixed with their id only
    when two would collide.
    """
    out: dict[int, str] = {}
    used: set[str] = set()
    flat = []
    for rec in records:
        p = PurePosixPath(rec.path)
        if p.is_absolute() or ".." in p.parts:
            flat.append(rec)
        else:
            out[rec.id] = p.as_posix()
            used.add(p.as_posix().lower())
    for rec in flat:
        name = PurePosixPath(rec.path).name
        if name.lower() in used:
            name = f"{rec.id}_{name}"
        used.add(name.lower())
        out[rec.id] = name
    return out


def export_items(store, split: str | None):
    """[(ImageRecord, [Annotation])] for the images of `split` (all when None), in id order."""
    anns = store.all_annotations(split=split)
    return [(rec, anns.get(rec.id, [])) for rec in store.images(split=split)]


# ---- objects: what one row / one annotation of an export describes ---------------------------

@dataclass
class ExportObject:
    """One object of an image as exports see it: the annotations of one (category, instance_id)
    group, or one annotation without an instance_id.

    `box` is the object's drawn box (None when it has none); `shapes` its polygons and masks.
    """

    category_id: int
    instance_id: int | None
    box: Annotation | None = None
    shapes: list[Annotation] = field(default_factory=list)

    @property
    def merged(self) -> bool:
        """True when a box and a mask/polygon became this one object."""
        return self.box is not None and bool(self.shapes)

    @property
    def main(self) -> Annotation:
        """The annotation whose source, score and attributes the object carries (its shape's first)."""
        return self.shapes[0] if self.shapes else self.box

    def attributes(self) -> dict:
        """The shape's attributes, plus those only its box has."""
        out = dict(self.box.attributes) if self.box is not None else {}
        for a in self.shapes:
            out.update(a.attributes)
        return out


def export_objects(anns: Iterable[Annotation]) -> tuple[list[ExportObject], dict[str, int]]:
    """(objects, {kind: count} of annotations no export object can hold: points, polylines).

    A box and masks/polygons sharing (category, instance_id) are one object, as training sees them
    (engine.data.detection). A second box in such a group cannot share the object's row and is an
    object of its own. Objects keep the order of their first annotation.
    """
    objects: list[ExportObject] = []
    groups: dict[tuple[int, int], ExportObject] = {}
    skipped: dict[str, int] = {}
    for a in anns:
        g = a.geometry
        if not isinstance(g, (Box, Polygon, MaskRLE)):
            skipped[a.kind] = skipped.get(a.kind, 0) + 1
            continue
        if a.instance_id is None:
            obj = None
        else:
            key = (a.category_id, a.instance_id)
            obj = groups.get(key)
            if obj is None:
                obj = groups[key] = ExportObject(a.category_id, a.instance_id)
                objects.append(obj)
        if isinstance(g, Box):
            if obj is None or obj.box is not None:
                obj = ExportObject(a.category_id, a.instance_id)
                objects.append(obj)
            obj.box = a
        else:
            if obj is None:
                obj = ExportObject(a.category_id, a.instance_id)
                objects.append(obj)
            obj.shapes.append(a)
    return objects, skipped


def shape_bounds(obj: ExportObject) -> tuple[float, float, float, float] | None:
    """Tight xyxy bounds (pixels) of the object's masks and polygons; None when it has none."""
    if not obj.shapes:
        return None
    bs = [bounds(a.geometry) for a in obj.shapes]
    return min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs)


def shape_mask(obj: ExportObject, height: int, width: int) -> np.ndarray:
    """Union [H, W] uint8 of the object's masks and polygons (holes kept empty)."""
    out = np.zeros((height, width), np.uint8)
    for a in obj.shapes:
        out |= geometry_to_mask(a.geometry, height, width).astype(np.uint8)
    return out

"""Pascal VOC XML: import and export of boxes (docs/adr/0002-voc-pixel-coordinates.md).

Layout read::

    SRC/Annotations/*.xml        (or SRC/*.xml when there is no Annotations/ folder, as LabelImg writes)
    SRC/JPEGImages/<filename>
    SRC/ImageSets/Main/{train,val,test}.txt   optional: one image stem per line -> split
    SRC/class_names.txt | SRC/labels.txt      optional: category order, one name per line; an object
                                              whose name is not listed is an unknown category

The image of an XML is found from its ``<filename>``, taken relative to, in this order,
``SRC/JPEGImages/``, the XML's own folder, ``SRC/``; the first that exists wins. Without
``<filename>``, an image with the XML's stem is looked for in the same places. A filename that
leaves SRC (``..``, an absolute path elsewhere) is refused. ``<path>`` is ignored.

Pixel convention (the ADR): VOC numbers are read as our pixel-corner coordinates (x1 = xmin,
x2 = xmax), as LabelMe, LabelImg, CVAT and mmdetection write them, except in the original VOC
releases' own files (``<source><database>The VOC2007 Database``), which are read with the devkit's
1-based inclusive pixel indices (x1 = xmin - 1, x2 = xmax). ``convention="corner"|"devkit"``
forces one rule for every file (the default ``"auto"`` decides per file).
Export writes integers (what VOC tools parse), so integer boxes round-trip exactly and other
boxes move by at most 0.5 px; the summary counts the boxes that moved. Exported files declare
their rule in ``<source><convention>``, which "auto" reads back.

VOC has boxes only: export writes one box per object (its box, or the tight box of its mask or
polygon) and counts points and polylines, by kind, in the summary's ``not_exported`` instead of
dropping them silently. Images go to ``JPEGImages/<id>.jpg``, converted when they are not JPEG
files (``keep_image_format`` copies them as they are); see ``write``.
"""
from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

import numpy as np

from ..bundle import ImageEntry, ImportBundle
from ..errors import BadInput, Problem
from ..imageio import IMAGE_EXTENSIONS, probe_image, read_image_raw, to_uint8_rgb
from ..limits import check_name, check_text
from ..model import SPLITS, Annotation, Box, Category, default_color
from .common import (COORD_TOLERANCE, ProgressFn, atomic_write_bytes, atomic_write_text, copy_image, export_items,
                     export_objects, inside_source, lines_of, read_bytes, read_text, resolve_inside, shape_bounds,
                     ticking)

CONVENTIONS = ("corner", "devkit")  # what files are written in; reading also takes "auto"
# Names LabelMe's converter puts in class_names.txt / labels.txt that are not object classes.
NOT_CLASSES = {"__ignore__", "_background_"}
FLAGS = ("difficult", "truncated", "occluded")
MAX_XML_BYTES = 16 * 1024 * 1024  # one image's objects; a VOC file is a few KB
CLASS_FILES = ("class_names.txt", "labels.txt")


# ---- a tiny XML tree that remembers line numbers --------------------------------------------

@dataclass
class _Node:
    tag: str
    line: int
    children: list["_Node"] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str) -> "_Node | None":
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list["_Node"]:
        return [c for c in self.children if c.tag == tag]

    def findtext(self, tag: str) -> str | None:
        c = self.find(tag)
        return None if c is None else c.text.strip()


_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def _parse_xml(path: Path) -> _Node:
    """Parse with expat, keeping line numbers; BadInput for malformed XML, DTDs or bad encoding.

    DOCTYPE/ENTITY declarations are refused: VOC never needs them and they are how XML files
    blow up memory (entity expansion) or reach other files.
    """
    raw = read_bytes(path, "xml", MAX_XML_BYTES)
    m = _DECLARED_ENCODING.match(raw)
    utf16_or_32 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))  # a byte-order mark: expat decodes it
    if not utf16_or_32 and (m is None or m.group(1).lower().replace(b"-", b"") == b"utf8"):
        read_text(path, field="encoding")  # raises BadInput with the line of the first bad byte
    parser = expat.ParserCreate()
    stack: list[_Node] = []
    root: list[_Node] = []

    def start(tag, _attrs):
        node = _Node(tag, parser.CurrentLineNumber)
        (stack[-1].children if stack else root).append(node)
        stack.append(node)

    def end(_tag):
        stack.pop()

    # expat hands long texts over in pieces; joining them once (not += per piece) keeps a
    # megabyte-long <pose> linear
    pieces: dict[int, list[str]] = {}

    def chars(data):
        if stack:
            pieces.setdefault(id(stack[-1]), [stack[-1]]).append(data)

    def refuse_dtd(*_args):
        raise BadInput(str(path), "xml", f"DOCTYPE/ENTITY declarations are not allowed "
                       f"(line {parser.CurrentLineNumber})", line=parser.CurrentLineNumber)

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as exc:
        raise BadInput(str(path), "xml", f"malformed XML at line {exc.lineno}, column {exc.offset}: "
                       f"{expat.ErrorString(exc.code)}", line=exc.lineno) from None
    except LookupError as exc:  # an encoding Python does not know
        raise BadInput(str(path), "encoding", f"unknown XML encoding ({exc})", line=1) from None
    except RecursionError:
        raise BadInput(str(path), "xml", "nested too deeply") from None
    for node, *texts in pieces.values():
        node.text = "".join(texts)
    if not root or root[0].tag != "annotation":
        raise BadInput(str(path), "annotation", "the root element must be <annotation>", line=1)
    return root[0]


# ---- reading --------------------------------------------------------------------------------

def _number(node: _Node, tag: str, file: Path, field: str, *, required: bool = True) -> float | None:
    child = node.find(tag)
    text = None if child is None else child.text.strip()
    line = child.line if child is not None else node.line
    if not text:
        if required:
            raise BadInput(str(file), field, f"<{tag}> is missing", line=line)
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadInput(str(file), field, f"not a number: {text!r}", line=line) from None
    if not math.isfinite(value):
        raise BadInput(str(file), field, f"not a finite number: {text!r}", line=line)
    return value


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "1.0")


def _find_image(src: Path, xml: Path, root: _Node) -> Path:
    """The image an XML describes (see the module docstring for the search order)."""
    filename = root.findtext("filename")
    fn_node = root.find("filename")
    line = fn_node.line if fn_node is not None else root.line
    bases = [src / "JPEGImages", xml.parent, src]
    if filename:
        escapes: list[BadInput] = []
        for base in bases:
            try:  # relative to each place in turn, but never out of SRC
                cand = resolve_inside(src, filename, xml, "filename", start=base)
            except BadInput as exc:
                escapes.append(exc)
                continue
            if cand.is_file():
                return cand
        if len(escapes) == len(bases):
            raise BadInput(str(xml), "filename", escapes[0].problem.message, line=line)
        raise BadInput(str(xml), "filename", f"image {filename!r} not found in "
                       f"{', '.join(str(b) for b in dict.fromkeys(bases))}", line=line)
    for base in bases:
        for ext in sorted(IMAGE_EXTENSIONS):
            for cand in (base / (xml.stem + ext), base / (xml.stem + ext.upper())):
                if cand.is_file():
                    return cand
    raise BadInput(str(xml), "filename", f"no <filename> and no image named {xml.stem}.* found", line=line)


def _read_object(obj: _Node, i: int, xml: Path, w: int, h: int, convention: str,
                 cat_of: dict[str, int], class_file: str | None = None) -> Annotation:
    """One <object> -> a Box annotation. With `class_file` (the class-name file read), a name
    outside it is an unknown category (a typo would otherwise become a new class)."""
    where = f"object[{i}]"
    name = obj.findtext("name")
    if not name:
        raise BadInput(str(xml), f"{where}.name", "missing or empty", line=obj.line)
    try:
        name = check_name(name, str(xml), f"{where}.name")
    except BadInput as exc:
        raise BadInput(str(xml), f"{where}.name", exc.problem.message, line=obj.find("name").line) from None
    if class_file is not None and name not in cat_of and name not in NOT_CLASSES:
        raise BadInput(str(xml), f"{where}.name", f"unknown category {name!r}: not listed in {class_file}",
                       line=obj.find("name").line)
    bb = obj.find("bndbox")
    if bb is None:
        raise BadInput(str(xml), f"{where}.bndbox", "missing (VOC objects need a box)", line=obj.line)
    xmin, ymin, xmax, ymax = (_number(bb, t, xml, f"{where}.bndbox.{t}") for t in ("xmin", "ymin", "xmax", "ymax"))
    if convention == "devkit":
        xmin, ymin = xmin - 1, ymin - 1
    if xmax <= xmin or ymax <= ymin:
        raise BadInput(str(xml), f"{where}.bndbox", f"empty box: xmin/ymin/xmax/ymax = "
                       f"{bb.findtext('xmin')}/{bb.findtext('ymin')}/{bb.findtext('xmax')}/{bb.findtext('ymax')}",
                       line=bb.line)
    tol = COORD_TOLERANCE
    if xmin < -tol or ymin < -tol or xmax > w + tol or ymax > h + tol:
        raise BadInput(str(xml), f"{where}.bndbox", f"box ({xmin:g}, {ymin:g}, {xmax:g}, {ymax:g}) lies "
                       f"outside the {w}x{h} image", line=bb.line)
    box = Box(min(max(xmin, 0.0), w), min(max(ymin, 0.0), h), min(max(xmax, 0.0), w), min(max(ymax, 0.0), h))
    attrs: dict = {}
    for flag in FLAGS:
        if _flag(obj.findtext(flag)):
            attrs[flag] = True
    pose = obj.findtext("pose")
    if pose and pose.lower() != "unspecified":
        attrs["pose"] = check_text(pose, str(xml), f"{where}.pose")
    extra = obj.find("attributes")  # CVAT writes <attributes><attribute><name/><value/>...
    for k, a in enumerate(extra.findall("attribute") if extra is not None else ()):
        key = a.findtext("name")
        if key and key not in attrs:
            attrs[check_text(key, str(xml), f"{where}.attributes[{k}].name")] = \
                check_text(a.findtext("value") or "", str(xml), f"{where}.attributes[{k}].value")
    if name not in cat_of:
        cat_of[name] = len(cat_of) + 1
    return Annotation(image_id=0, category_id=cat_of[name], geometry=box, attributes=attrs)


def _read_class_order(src: Path, problems: list[Problem]) -> tuple[list[str], str | None]:
    """(class names in order, the file they came from or None when there is none)."""
    for fname in CLASS_FILES:
        p = src / fname
        if p.is_file():
            try:
                text = read_text(p, field="names")
            except BadInput as exc:
                problems.append(exc.problem)
                return [], None
            names = []
            for lineno, ln in enumerate(lines_of(text), start=1):
                if ln.strip() and ln.strip() not in NOT_CLASSES:
                    try:
                        names.append(check_name(ln, str(p), "names"))
                    except BadInput as exc:
                        problems.append(Problem(str(p), "names", exc.problem.message, line=lineno))
                        return [], None
            return list(dict.fromkeys(names)), fname
    return [], None


def _read_splits(src: Path, problems: list[Problem]) -> dict[str, str]:
    """image stem -> split from ImageSets/Main/<split>.txt (later splits in SPLITS win)."""
    out: dict[str, str] = {}
    for split in SPLITS:
        p = src / "ImageSets" / "Main" / f"{split}.txt"
        if not p.is_file():
            continue
        try:
            text = read_text(p, field="encoding")
        except BadInput as exc:
            problems.append(exc.problem)
            continue
        for ln in text.splitlines():
            parts = ln.split()
            if parts:
                out[parts[0]] = split
    return out


def file_convention(root: _Node) -> str:
    """"devkit" for the XML files of the original VOC releases, else "corner" (see the ADR)."""
    source = root.find("source")
    if source is not None and source.findtext("convention") in CONVENTIONS:
        return source.findtext("convention")  # written by our export
    database = (source.findtext("database") or "") if source is not None else ""
    return "devkit" if re.match(r"the voc\s?20\d\d database", database.strip().lower()) else "corner"


def read(src: Path, *, skip_invalid: bool = False, convention: str = "auto",
         progress: ProgressFn | None = None) -> ImportBundle:
    """Parse a VOC folder into an ImportBundle (never touches a store).

    An XML that cannot be used at all (malformed, image missing/unreadable/of another size) is
    left out as a whole; a bad object is left out alone. Each becomes a Problem naming the file,
    the field (``object[2].bndbox.xmin``) and the line. Boxes are xyxy pixels (see the ADR).
    """
    src = Path(src)
    if convention not in CONVENTIONS + ("auto",):
        raise BadInput("<options>", "convention", f"unknown {convention!r}; expected auto, corner or devkit")
    if not src.is_dir():
        raise BadInput(str(src), "folder", "not a folder (expected a VOC folder with Annotations/)")
    ann_dir = src / "Annotations" if (src / "Annotations").is_dir() else src
    bundle = ImportBundle()
    xmls = []
    for xml in sorted(ann_dir.glob("*.xml")):
        if not inside_source(xml, src):
            bundle.problems.append(Problem(str(xml), "file", "a symlink out of the source folder"))
        elif xml.is_file():  # a FIFO or folder named x.xml is not read (a FIFO would block forever)
            xmls.append(xml)
    if not xmls and not bundle.problems:
        raise BadInput(str(ann_dir), "Annotations", "no .xml files found")
    order, class_file = _read_class_order(src, bundle.problems)
    cat_of: dict[str, int] = {name: i + 1 for i, name in enumerate(order)}
    splits = _read_splits(src, bundle.problems)
    described: dict[Path, Path] = {}  # image -> the XML that describes it
    for xml in ticking(xmls, progress, "read"):
        try:
            root = _parse_xml(xml)
            image = _find_image(src, xml, root)
            if image.resolve() in described:  # two files for one image: which one is right?
                fn = root.find("filename")
                raise BadInput(str(xml), "filename", f"image {image.name} is already described by "
                               f"{described[image.resolve()].name}", line=fn.line if fn is not None else None)
            try:
                w, h = probe_image(image)
            except BadInput as exc:
                raise BadInput(str(xml), "filename", f"{image}: {exc.problem.message}") from None
            size = root.find("size")
            if size is not None:
                for tag, actual in (("width", w), ("height", h)):
                    declared = _number(size, tag, xml, f"size.{tag}", required=False)
                    # 0 or missing means "not filled in" (some converters write 0): trust the image
                    if declared and declared != actual:
                        raise BadInput(str(xml), f"size.{tag}", f"{declared:g} differs from the {actual} px "
                                       f"of {image}", line=size.find(tag).line)
        except BadInput as exc:
            bundle.problems.append(exc.problem)
            continue
        described[image.resolve()] = xml
        anns = []
        rule = file_convention(root) if convention == "auto" else convention
        for i, obj in enumerate(root.findall("object")):
            try:
                anns.append(_read_object(obj, i, xml, w, h, rule, cat_of, class_file))
            except BadInput as exc:
                bundle.problems.append(exc.problem)
        split = splits.get(image.stem) or splits.get(xml.stem) or "train"
        bundle.images.append(ImageEntry(file=image.resolve(), width=w, height=h, split=split, annotations=anns,
                                        source=xml))
    bundle.categories = [Category(cid, name, default_color(cid - 1)) for name, cid in cat_of.items()]
    return bundle


# ---- writing --------------------------------------------------------------------------------

def _outside(box: Box, w: int, h: int) -> bool:
    """True when nothing of the box is inside the image (a file cannot hold it)."""
    return min(box.x2, w) <= max(box.x1, 0) or min(box.y2, h) <= max(box.y1, 0)


def _to_voc_ints(box: Box, w: int, h: int, convention: str) -> tuple[tuple[int, int, int, int], bool]:
    """Box (pixel corners) -> integer (xmin, ymin, xmax, ymax) in the file's convention.

    Clipped to the image and at least 1 px wide/high; the flag says whether that moved a corner.
    """
    x1, y1 = min(max(box.x1, 0.0), w), min(max(box.y1, 0.0), h)
    x2, y2 = min(max(box.x2, 0.0), w), min(max(box.y2, 0.0), h)
    ix1, iy1, ix2, iy2 = (int(math.floor(v + 0.5)) for v in (x1, y1, x2, y2))
    # a sliver thinner than half a pixel must not vanish: keep one pixel inside the image
    if ix2 <= ix1:
        ix1, ix2 = (ix1, ix1 + 1) if ix1 < w else (ix1 - 1, ix1)
    if iy2 <= iy1:
        iy1, iy2 = (iy1, iy1 + 1) if iy1 < h else (iy1 - 1, iy1)
    moved = (ix1, iy1, ix2, iy2) != (box.x1, box.y1, box.x2, box.y2)
    if convention == "devkit":
        ix1, iy1 = ix1 + 1, iy1 + 1
    return (ix1, iy1, ix2, iy2), moved


def _sub(parent: ET.Element, tag: str, text=None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def _xml_for(filename: str, folder: str, w: int, h: int, objects: list[tuple[str, tuple, dict]],
             convention: str) -> str:
    root = ET.Element("annotation")
    _sub(root, "folder", folder)
    _sub(root, "filename", filename)
    source = _sub(root, "source")
    _sub(source, "database", "Visionbench export")
    _sub(source, "convention", convention)  # so that convention="auto" reads it back right
    size = _sub(root, "size")
    _sub(size, "width", w)
    _sub(size, "height", h)
    _sub(size, "depth", 3)
    _sub(root, "segmented", 0)
    for name, (xmin, ymin, xmax, ymax), attrs in objects:
        obj = _sub(root, "object")
        _sub(obj, "name", name)
        _sub(obj, "pose", attrs.get("pose", "Unspecified"))
        _sub(obj, "truncated", int(bool(attrs.get("truncated"))))
        _sub(obj, "difficult", int(bool(attrs.get("difficult"))))
        if attrs.get("occluded"):
            _sub(obj, "occluded", 1)
        bb = _sub(obj, "bndbox")
        for tag, v in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
            _sub(bb, tag, v)
        extra = {k: v for k, v in attrs.items() if k not in FLAGS and k != "pose"}
        if extra:
            el = _sub(obj, "attributes")
            for k, v in extra.items():
                a = _sub(el, "attribute")
                _sub(a, "name", k)
                _sub(a, "value", v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def unique_file_names(records) -> dict[int, str]:
    """image id -> a flat file name, unique by stem (label files are named by stem)."""
    taken: set[str] = set()
    out: dict[int, str] = {}
    for rec in records:
        name = Path(rec.path).name
        if Path(name).stem.lower() in taken:
            name = f"{rec.id}_{name}"
        taken.add(Path(name).stem.lower())
        out[rec.id] = name
    return out


JPEG_QUALITY = 95
JPEG_SUFFIXES = (".jpg", ".jpeg")
CONVERSION_RULE = (f"images that are not JPEG files were converted to JPEG at quality {JPEG_QUALITY} as "
                   "the models see them: 16-bit and float images stretched from their own minimum..maximum "
                   "to 0..255, an alpha channel dropped (colours kept, not blended), gray as RGB")


def _jpeg_bytes(image: Path) -> tuple[bytes, dict[str, int]]:
    """(JPEG file bytes, {what the conversion changed: 1}) of a non-JPEG image (see CONVERSION_RULE)."""
    import cv2

    raw = read_image_raw(image)
    channels = 1 if raw.ndim == 2 else raw.shape[0] if raw.shape[2] > 4 else raw.shape[2]
    changed = {}
    if raw.dtype != np.uint8:
        changed["high_bit_depth_stretched"] = 1
    if channels in (2, 4):
        changed["alpha_dropped"] = 1
    rgb = to_uint8_rgb(raw)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise BadInput(str(image), "image", "could not be encoded as JPEG")
    return data.tobytes(), changed


def write(store, dst: Path, *, split: str | None = None, convention: str = "corner",
          keep_image_format: bool = False, copy_images: bool = True, progress: ProgressFn | None = None) -> dict:
    """Export the project (or one split) as a VOC folder; returns a JSON-able summary.

    Writes Annotations/<id>.xml, JPEGImages/<id>.jpg, ImageSets/Main/<split>.txt (+ trainval.txt)
    and class_names.txt. The readers people train with (torchvision's VOCDetection, detectron2,
    MMDetection) open ``JPEGImages/<id>.jpg`` whatever ``<filename>`` says, so every image becomes
    one: JPEG files are copied, others converted (CONVERSION_RULE, counted in the summary).
    ``keep_image_format`` copies every image as it is instead (``<filename>`` names it), for readers
    that follow ``<filename>``. One ``<object>`` per object (``common.export_objects``): its box, or
    the tight box of its mask/polygon when it has none.
    """
    if convention not in CONVENTIONS:
        raise BadInput("<options>", "convention", f"unknown {convention!r}; expected one of {CONVENTIONS}")
    dst = Path(dst)
    items = export_items(store, split)
    names = {c.id: c.name for c in store.categories()}
    file_names = unique_file_names(rec for rec, _ in items)
    not_exported: dict[str, int] = {}
    n_boxes = n_moved = n_from_outlines = n_merged = 0
    converted: dict[str, int] = {"images": 0, "high_bit_depth_stretched": 0, "alpha_dropped": 0}
    stems: dict[str, list[str]] = {s: [] for s in SPLITS}
    for rec, anns in ticking(items, progress, "write"):
        fname = file_names[rec.id]
        if not keep_image_format:
            fname = Path(fname).stem + ".jpg"
        objects = []
        found, skipped = export_objects(anns)
        for kind, n in skipped.items():
            not_exported[kind] = not_exported.get(kind, 0) + n
        for obj in found:
            box = obj.box.geometry if obj.box is not None else Box(*shape_bounds(obj))
            if _outside(box, rec.width, rec.height):
                why = "box_outside_image" if obj.box is not None else "outline_outside_image"
                not_exported[why] = not_exported.get(why, 0) + 1
                continue
            ints, moved = _to_voc_ints(box, rec.width, rec.height, convention)
            n_moved += moved and obj.box is not None  # a box from an outline is not the user's box
            n_boxes += 1
            n_from_outlines += obj.box is None
            n_merged += obj.merged
            objects.append((names[obj.category_id], ints, obj.attributes()))
        if copy_images:
            source = store.image_path(rec)
            if keep_image_format or source.suffix.lower() in JPEG_SUFFIXES:
                copy_image(source, dst / "JPEGImages" / fname)
            else:
                data, changed = _jpeg_bytes(source)
                atomic_write_bytes(dst / "JPEGImages" / fname, data)
                converted["images"] += 1
                for k, v in changed.items():
                    converted[k] += v
        atomic_write_text(dst / "Annotations" / (Path(fname).stem + ".xml"),
                          _xml_for(fname, "JPEGImages", rec.width, rec.height, objects, convention))
        stems.setdefault(rec.split, []).append(Path(fname).stem)
    sets = dst / "ImageSets" / "Main"
    for s, lst in stems.items():
        if lst:
            atomic_write_text(sets / f"{s}.txt", "".join(f"{x}\n" for x in lst))
    if stems.get("train") or stems.get("val"):
        atomic_write_text(sets / "trainval.txt", "".join(f"{x}\n" for x in stems["train"] + stems["val"]))
    atomic_write_text(dst / "class_names.txt", "".join(f"{c.name}\n" for c in store.categories()))
    summary = {"format": "voc", "dst": str(dst), "convention": convention, "images": len(items),
               "objects": n_boxes, "boxes": n_boxes, "boxes_rounded": n_moved,
               "boxes_from_outlines": n_from_outlines, "merged_objects": n_merged,
               "keep_image_format": keep_image_format, "images_converted_to_jpeg": converted["images"],
               "not_exported": not_exported, "not_exported_total": sum(not_exported.values())}
    if converted["images"]:
        summary["jpeg_conversion"] = {**converted, "quality": JPEG_QUALITY, "rule": CONVERSION_RULE}
    notes = ["VOC holds one box per object: a mask or polygon is written as its object's box (its own box "
             "when it has one, counted in merged_objects; else its tight box, counted in boxes_from_outlines)"]
    if not_exported:
        notes.append("the annotations counted in not_exported were not written (use coco, yolo or masks for them)")
    summary["note"] = "; ".join(notes)
    return summary

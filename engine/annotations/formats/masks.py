"""Mask PNG folders (the layout labelme2voc writes) <-> project.

Layout (SRC for import, DST for export)::

    class_names.txt          one name per line; line 0 is "_background_" (index 0)
    JPEGImages/ (or images/) the images, any subfolders
    SegmentationClass/       <image stem>.png: class index per pixel (palette "P" or gray "L";
                             RGB PNGs painted with the VOC palette are mapped back); 255 = void
    SegmentationObject/      optional <image stem>.png: instance index per pixel (0 none, 255 void)
    ImageSets/Segmentation/  optional {train,val,test}.txt: image stems (paths below the image
                             folder, no suffix), one per line -> split (as in Pascal VOC)

Void (255) pixels import as one MaskRLE of the category ``__ignore__`` (LabelMe's name for
regions to ignore) and that category exports as 255 in class PNGs (0 in object PNGs, as labelme
does), not as a class line; a category named ``_background_`` paints 0.

Import: with object PNGs, every instance index becomes one MaskRLE annotation
(instance_id = the index) whose category is the majority class under it; class pixels no
instance covers become one MaskRLE per class. Without object PNGs, one MaskRLE per class.
Images without a class PNG are imported unlabelled.

Export: class PNGs with the VOC palette, index = position in class_names.txt = 1 + position of
the category in project order; object PNGs number the objects of each image from 1 (parts
sharing an instance_id and category are one object). Later annotations paint over earlier ones.
A box that shares its (category, instance_id) with a polygon or mask of the image is that object's
bounding box (as in the demo's shapes set and in detection+segmentation datasets): only the
object's outline is painted and the box is counted in ``summary["boxes_of_segmented_objects"]``;
boxes of their own paint their rectangle. Points and polylines have no area: counted in
``summary["skipped"]``.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..bundle import ImageEntry, ImportBundle
from ..errors import BadInput, Problem
from ..geometry import encode_mask, geometry_to_mask
from ..imageio import MAX_PIXELS, is_image_file
from ..limits import check_mask_pixels, check_name
from ..model import SPLITS, Annotation, Box, Category, MaskRLE, Polygon, default_color
from .common import (ProgressFn, atomic_write_bytes, atomic_write_text, check_image, copy_image, export_items,
                     export_names, inside_source, lines_of, read_text, ticking)

BACKGROUND = "_background_"
IGNORE = "__ignore__"
VOID = 255
IMAGE_DIRS = ("JPEGImages", "images")
CLASS_DIR = "SegmentationClass"
OBJECT_DIR = "SegmentationObject"
CLASS_NAMES = "class_names.txt"
SETS_DIR = ("ImageSets", "Segmentation")
INDEX_MODES = ("P", "L", "1", "I", "I;16", "I;16B", "I;16L", "RGB", "RGBA")


def voc_palette(n: int = 256) -> np.ndarray:
    """The Pascal VOC colour map [n, 3] uint8: bits of the index spread over R, G, B from the top bit."""
    pal = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


# ---- import ---------------------------------------------------------------------------------

def read(src: Path, *, skip_invalid: bool = False, progress: ProgressFn | None = None) -> ImportBundle:
    src = Path(src)
    if not src.is_dir():
        raise BadInput(str(src), "source", "mask import expects a folder (JPEGImages/, SegmentationClass/, "
                       "class_names.txt)")
    names = _class_names(src / CLASS_NAMES)
    image_dir = next((src / d for d in IMAGE_DIRS if (src / d).is_dir()), None)
    if image_dir is None:
        raise BadInput(str(src), "images", f"no {' or '.join(IMAGE_DIRS)} folder")
    bundle = ImportBundle(categories=[Category(i, n, default_color(i - 1)) for i, n in enumerate(names) if i > 0])
    ignore_id = len(names)  # bundle-local id of the __ignore__ category, added when void pixels occur
    images = []
    for p in sorted(image_dir.rglob("*")):
        if is_image_file(p) and p.is_file():
            if inside_source(p, src):
                images.append(p)
            else:  # as COCO, VOC and LabelMe refuse
                bundle.problems.append(Problem(str(p), "image", "a symlink out of the source folder"))
    by_png: dict[Path, list[Path]] = {}
    for img in images:
        by_png.setdefault(img.relative_to(image_dir).with_suffix(".png"), []).append(img)
    stems = set(by_png)
    for group in (g for g in by_png.values() if len(g) > 1):  # a.jpg and a.png: whose mask is a.png?
        for img in group:
            bundle.problems.append(Problem(str(img), "image", "another image has the same name apart from "
                                           f"the extension ({', '.join(p.name for p in group)}); "
                                           "their mask PNGs would be the same file"))
    images = [img for img in images if len(by_png[img.relative_to(image_dir).with_suffix(".png")]) == 1]
    if (src / CLASS_DIR).is_dir():
        for png in sorted((src / CLASS_DIR).rglob("*.png")):
            if png.relative_to(src / CLASS_DIR) not in stems:
                bundle.problems.append(Problem(str(png), "image", f"no image of this name in {image_dir}"))
    splits = _read_splits(src, bundle.problems)
    for img in ticking(images, progress, "read"):
        rel = img.relative_to(image_dir).with_suffix(".png")
        try:
            w, h = check_image(img, None, None, file=img, field="image")
            stem = rel.with_suffix("").as_posix()
            entry = ImageEntry(img, w, h, split=splits.get(stem) or splits.get(Path(stem).name) or "train")
            cls_png, obj_png = src / CLASS_DIR / rel, src / OBJECT_DIR / rel
            for png in (cls_png, obj_png):
                if png.exists() and not inside_source(png, src):
                    raise BadInput(str(png), "file", "a symlink out of the source folder")
            if cls_png.is_file():
                entry.source = cls_png
                classes = _read_index_png(cls_png, w, h, rgb_ok=True)
                bad = np.setdiff1d(np.unique(classes), np.r_[np.arange(len(names)), VOID])
                if bad.size:
                    raise BadInput(str(cls_png), "class index",
                                   f"values {bad.tolist()} are not lines of {CLASS_NAMES} "
                                   f"(0..{len(names) - 1}, 255 void)")
                objects = _read_index_png(obj_png, w, h, rgb_ok=True) if obj_png.is_file() else None
                entry.annotations = _annotations(classes, objects, obj_png)
                if (classes == VOID).any():
                    entry.annotations.append(Annotation(0, ignore_id, encode_mask(classes == VOID)))
        except BadInput as exc:
            bundle.problems.append(exc.problem)
            continue
        bundle.images.append(entry)
    if any(a.category_id == ignore_id for e in bundle.images for a in e.annotations) and IGNORE not in names:
        bundle.categories.append(Category(ignore_id, IGNORE, "#808080"))
    return bundle


def _read_splits(src: Path, problems: list[Problem]) -> dict[str, str]:
    """image stem -> split from ImageSets/Segmentation/<split>.txt (none: every image is train)."""
    out: dict[str, str] = {}
    for split in SPLITS:
        p = src.joinpath(*SETS_DIR, f"{split}.txt")
        if not p.is_file():
            continue
        try:
            text = read_text(p, field="encoding")
        except BadInput as exc:
            problems.append(exc.problem)
            continue
        out.update({ln.strip(): split for ln in text.splitlines() if ln.strip()})
    return out


def _class_names(path: Path) -> list[str]:
    if not path.is_file():
        raise BadInput(str(path), CLASS_NAMES, "file not found (one class name per line, first _background_)")
    names = [check_name(ln, str(path), CLASS_NAMES) for ln in lines_of(read_text(path, field=CLASS_NAMES))
             if ln.strip()]
    if not names:
        raise BadInput(str(path), CLASS_NAMES, "no class names")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise BadInput(str(path), CLASS_NAMES, f"duplicate class names {dup}")
    if len(names) > VOID:
        raise BadInput(str(path), CLASS_NAMES, f"{len(names)} classes; at most {VOID} fit in an 8-bit PNG")
    return names


def _read_index_png(path: Path, w: int, h: int, rgb_ok: bool) -> np.ndarray:
    """An index PNG -> uint8 [H, W]; BadInput if unreadable or not w x h."""
    from PIL import Image

    check_mask_pixels(w, h, str(path), "size")
    try:
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as im:
            if im.size[0] * im.size[1] > MAX_PIXELS:
                raise BadInput(str(path), "size", f"{im.size[0]}x{im.size[1]} pixels exceeds the limit")
            if im.size != (w, h):
                raise BadInput(str(path), "size", f"{im.size[0]}x{im.size[1]} differs from the image's {w}x{h}")
            mode = im.mode
            if mode not in INDEX_MODES:
                raise BadInput(str(path), "mode", f"a {mode} PNG; class and object PNGs are palette (P), gray (L), "
                               "16-bit gray or RGB painted with the VOC palette")
            arr = np.asarray(im.convert("RGB") if mode in ("RGB", "RGBA") else im)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is bad input
        raise BadInput(str(path), "image", f"unreadable PNG ({exc})") from None
    if arr.ndim == 3:
        if not rgb_ok:
            raise BadInput(str(path), "mode", "expected a palette or gray PNG")
        return _rgb_to_index(arr, path)
    if arr.dtype != np.uint8:
        if arr.min(initial=0) < 0 or arr.max(initial=0) > VOID:
            raise BadInput(str(path), "index", f"value {int(arr.max())} does not fit 0..255")
        arr = arr.astype(np.uint8)
    return arr


def _rgb_to_index(rgb: np.ndarray, path: Path) -> np.ndarray:
    pal = voc_palette().astype(np.int64)
    key = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    px = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    order = np.argsort(key)
    pos = np.clip(np.searchsorted(key[order], px), 0, len(key) - 1)
    idx = order[pos]
    if not np.all(key[idx] == px):
        bad = rgb[key[idx] != px][0]
        raise BadInput(str(path), "color", f"colour {tuple(int(v) for v in bad)} is not in the VOC palette")
    return idx.astype(np.uint8)


def _annotations(classes: np.ndarray, objects: np.ndarray | None, obj_png: Path) -> list[Annotation]:
    out: list[Annotation] = []
    covered = np.zeros(classes.shape, bool)
    if objects is not None:
        for inst in np.unique(objects):
            if inst in (0, VOID):
                continue
            m = objects == inst
            cls = classes[m]
            cls = cls[(cls != 0) & (cls != VOID)]
            if cls.size == 0:
                raise BadInput(str(obj_png), "instance", f"object {int(inst)} covers no class pixels "
                               "(only background or void) in the class PNG")
            cat = int(np.bincount(cls).argmax())
            covered |= m
            out.append(Annotation(0, cat, encode_mask(m), instance_id=int(inst)))
    for cat in np.unique(classes[~covered]):
        if cat in (0, VOID):
            continue
        out.append(Annotation(0, int(cat), encode_mask((classes == cat) & ~covered)))
    return out


# ---- export ---------------------------------------------------------------------------------

def write(store, dst: Path, *, split: str | None = None, progress: ProgressFn | None = None) -> dict:
    """Write class_names.txt, JPEGImages/, SegmentationClass/, SegmentationObject/ in DST."""
    from PIL import Image

    dst = Path(dst)
    all_cats = store.categories()
    cats = [c for c in all_cats if c.name not in (IGNORE, BACKGROUND)]
    if len(cats) + 1 > VOID:
        raise BadInput(str(store.path), "categories", f"{len(cats)} categories; at most {VOID - 1} fit class PNGs")
    index = {c.id: i + 1 for i, c in enumerate(cats)}
    index.update({c.id: VOID for c in all_cats if c.name == IGNORE})
    index.update({c.id: 0 for c in all_cats if c.name == BACKGROUND})
    palette = voc_palette().reshape(-1).tolist()
    items = export_items(store, split)
    names = export_names([rec for rec, _ in items])
    skipped: dict[str, int] = {}
    n_objects = n_box_bounds = 0
    stems: dict[str, list[str]] = {s: [] for s in SPLITS}
    for rec, anns in ticking(items, progress, "write"):
        rel = Path(names[rec.id])
        copy_image(store.image_path(rec), dst / IMAGE_DIRS[0] / rel)
        classes = np.zeros((rec.height, rec.width), np.uint8)
        objects = np.zeros_like(classes)
        object_of = _object_indices(anns, index, store.image_path(rec))
        outlined = {_object_key(a) for a in anns
                    if a.instance_id is not None and isinstance(a.geometry, (Polygon, MaskRLE))}
        for a in anns:
            if not isinstance(a.geometry, (Box, Polygon, MaskRLE)):
                skipped[a.kind] = skipped.get(a.kind, 0) + 1
                continue
            if isinstance(a.geometry, Box) and a.instance_id is not None and _object_key(a) in outlined:
                n_box_bounds += 1  # the bounds of an object painted from its outline: not a region
                continue
            m = geometry_to_mask(a.geometry, rec.height, rec.width) > 0
            if index[a.category_id] in (0, VOID):  # labelme leaves ignored regions 0 in object PNGs
                classes[m], objects[m] = index[a.category_id], 0
                continue
            classes[m] = index[a.category_id]
            objects[m] = object_of[_object_key(a)]
        n_objects += len(object_of)
        stems.setdefault(rec.split, []).append(rel.with_suffix("").as_posix())
        for folder, arr in ((CLASS_DIR, classes), (OBJECT_DIR, objects)):
            im = Image.fromarray(arr, mode="P")
            im.putpalette(palette)
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            atomic_write_bytes(dst / folder / rel.with_suffix(".png"), buf.getvalue())
    for split, lst in stems.items():
        if lst:
            atomic_write_text(dst.joinpath(*SETS_DIR, f"{split}.txt"), "".join(f"{s}\n" for s in lst))
    atomic_write_text(dst / CLASS_NAMES, "\n".join([BACKGROUND] + [c.name for c in cats]) + "\n")
    return {"format": "masks", "folder": str(dst), "images": len(items), "classes": len(cats),
            "objects": n_objects, "boxes_of_segmented_objects": n_box_bounds, "skipped": skipped}


def _object_key(a: Annotation) -> tuple:
    return (a.category_id, a.instance_id) if a.instance_id is not None else ("ann", a.id)


def _object_indices(anns: list[Annotation], index: dict[int, int], image: Path) -> dict[tuple, int]:
    """object key -> index in the object PNG. An instance_id in 1..254 is kept (so imported object
    PNGs export with their own numbering); other objects take the free indices in order."""
    keys: list[tuple] = []
    for a in anns:
        if isinstance(a.geometry, (Box, Polygon, MaskRLE)) and index[a.category_id] not in (0, VOID):
            k = _object_key(a)
            if k not in keys:
                keys.append(k)
    if len(keys) >= VOID:
        raise BadInput(str(image), "objects", f"{len(keys)} objects do not fit an 8-bit object PNG (max {VOID - 1})")
    out: dict[tuple, int] = {}
    for k in keys:
        inst = k[1]
        if k[0] != "ann" and 1 <= inst < VOID and inst not in out.values():
            out[k] = inst
    free = (i for i in range(1, VOID) if i not in set(out.values()))
    for k in keys:
        if k not in out:
            out[k] = next(free)
    return out

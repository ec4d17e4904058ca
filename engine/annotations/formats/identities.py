"""Identities: a folder of sub-folders, one per identity, holding its images (the LFW / Omniglot
layout)::

    SRC/
      alice/ 001.jpg 002.jpg ...
      bob/   a.png b.png ...

Import: each image becomes a project image with one whole-image Box in the category
``identity`` whose ``attributes["identity"]`` is the sub-folder's name (that is how a whole image
carries an identity: see engine.data.identities). Images directly in SRC, or deeper than one
level, belong to no identity and are reported. Splits stay "train"; training and evaluation
hold out identities themselves (whole identities, never single images).

Export: the same layout. Whole images with an identity are copied as they are; crops of annotations
with an ``identity`` attribute are written as PNGs (``<image stem>_<annotation id>.png``).
"""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from ..bundle import ImageEntry, ImportBundle
from ..errors import BadInput, Problem
from ..geometry import bounds
from ..imageio import is_image_file, read_image_rgb
from ..limits import check_name
from ..model import Annotation, Box, Category
from .common import ProgressFn, atomic_write_bytes, check_image, copy_image, export_items, inside_source, ticking

CATEGORY = "identity"
IDENTITY = "identity"


def read(src: Path, *, skip_invalid: bool = False, progress: ProgressFn | None = None) -> ImportBundle:
    src = Path(src)
    if not src.is_dir():
        raise BadInput(str(src), "source", "an identities import expects a folder with one sub-folder per identity")
    bundle = ImportBundle(categories=[Category(1, CATEGORY, "#4363d8")])
    files: list[tuple[Path, str]] = []
    for p in sorted(src.rglob("*")):
        if not (p.is_file() and is_image_file(p)):
            continue
        rel = p.relative_to(src)
        if not inside_source(p, src):
            bundle.problems.append(Problem(str(p), "image", "a symlink out of the source folder"))
        elif len(rel.parts) != 2:
            where = "directly in the source folder" if len(rel.parts) == 1 else "in a nested sub-folder"
            bundle.problems.append(Problem(str(p), "identity", f"an image {where}; each identity is one "
                                           "sub-folder of the source holding its images"))
        else:
            files.append((p, rel.parts[0]))
    names: dict[str, str] = {}
    for _, folder in files:
        if folder not in names:
            try:
                names[folder] = check_name(folder, str(src / folder), "identity")
            except BadInput as exc:
                bundle.problems.append(exc.problem)
    if not files:
        raise BadInput(str(src), "identity", "no images in sub-folders; expected SRC/<identity>/<image>")
    for img, folder in ticking(files, progress, "read"):
        if folder not in names:
            continue
        try:
            w, h = check_image(img, None, None, file=img, field="image")
        except BadInput as exc:
            bundle.problems.append(exc.problem)
            continue
        entry = ImageEntry(img, w, h, status="done")
        entry.annotations = [Annotation(0, 1, Box(0.0, 0.0, float(w), float(h)),
                                        attributes={IDENTITY: names[folder]})]
        bundle.images.append(entry)
    return bundle


def _folder_name(identity: str) -> str:
    """A file-system-safe folder name for an identity (path separators and controls replaced)."""
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", identity).strip().strip(".") or "_"
    return name[:200]


def write(store, dst: Path, *, split: str | None = None, progress: ProgressFn | None = None) -> dict:
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    images = crops = 0
    identities: set[str] = set()
    for rec, anns in ticking(export_items(store, split), progress, "write"):
        picture = None
        for a in anns:
            identity = a.attributes.get(IDENTITY)
            if identity in (None, "") or a.attributes.get("proposal"):
                continue
            folder = _folder_name(str(identity))
            x1, y1, x2, y2 = bounds(a.geometry)
            whole = x1 <= 0.5 and y1 <= 0.5 and x2 >= rec.width - 0.5 and y2 >= rec.height - 0.5
            source = store.image_path(rec)
            name = source.name if whole else f"{source.stem}_{a.id}.png"
            rel = f"{folder}/{name}"
            if rel.lower() in used:
                rel = f"{folder}/{rec.id}_{name}"
            used.add(rel.lower())
            if whole:
                copy_image(source, dst / rel)
                images += 1
            else:
                picture = read_image_rgb(source) if picture is None else picture
                c = picture[max(0, int(y1)):int(np.ceil(y2)), max(0, int(x1)):int(np.ceil(x2))]
                ok, png = cv2.imencode(".png", cv2.cvtColor(c, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise BadInput(str(source), "image", "could not encode a crop as PNG")
                atomic_write_bytes(dst / rel, png.tobytes())
                crops += 1
            identities.add(folder)
    return {"dst": str(dst), "identities": len(identities), "images": images, "crops": crops}

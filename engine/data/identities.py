"""Identities from a project: what a Siamese model trains, is validated and searches on.

An *item* is one picture of one identity: the crop of an annotation, or a whole image. Where the
identity comes from (``source``):
- ``"attribute"``: annotations whose ``attributes["identity"]`` is set (a whole-image box with
  that attribute makes the whole image the item: the ``identities`` import writes those);
- ``"category"``: every ground-truth annotation, grouped by its category;
- ``"auto"`` (the default): ``attribute`` when any annotation carries an identity, else ``category``.
Only ground truth counts (``engine.data.truth``): unaccepted proposals never train or score.

Splits are by identity, so validation identities are never seen in training: an identity belongs
to the split holding most of its items (ties: the first of train, val, test); when that leaves
no validation identity, a fixed share of identities (chosen by a hash of their names, so the
choice is stable as the project grows) is held out. Numpy only (no torch, no Qt).
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.geometry import bounds
from engine.annotations.imageio import read_image_rgb
from engine.annotations.model import Annotation, ImageRecord
from engine.annotations.store import ProjectStore
from engine.data.truth import is_ground_truth

IDENTITY = "identity"
SOURCES = ("auto", "attribute", "category")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class IdentityItem:
    """One picture of one identity. ``box`` is xyxy pixels, None for the whole image."""

    image_id: int
    identity: str
    annotation_id: int | None = None
    box: tuple[float, float, float, float] | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.image_id, -1 if self.annotation_id is None else int(self.annotation_id))


def is_whole_image(box: tuple[float, float, float, float], width: int, height: int) -> bool:
    x1, y1, x2, y2 = box
    return x1 <= 0.5 and y1 <= 0.5 and x2 >= width - 0.5 and y2 >= height - 0.5


def annotation_item(a: Annotation, identity: str, rec: ImageRecord) -> IdentityItem | None:
    if a.kind == "point":
        return None
    try:
        box = tuple(float(v) for v in bounds(a.geometry))
    except (ValueError, TypeError):
        return None
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        return None
    return IdentityItem(rec.id, identity, a.id, None if is_whole_image(box, rec.width, rec.height) else box)


def identity_items(store: ProjectStore, source: str = "auto") -> tuple[list[IdentityItem], str]:
    """Every item of the project and the source used ("attribute" or "category")."""
    if source not in SOURCES:
        raise BadInput(str(store.path), "identity_source", f"must be one of {', '.join(SOURCES)}, got {source!r}")
    records = {r.id: r for r in store.images()}
    by_image = store.all_annotations()
    truth = [(records[i], a) for i, anns in by_image.items() if i in records for a in anns if is_ground_truth(a)]
    if source == "auto":
        source = "attribute" if any(a.attributes.get(IDENTITY) not in (None, "") for _, a in truth) else "category"
    names = {c.id: c.name for c in store.categories()}
    items = []
    for rec, a in truth:
        if source == "attribute":
            value = a.attributes.get(IDENTITY)
            if value in (None, ""):
                continue
            identity = str(value)
        else:
            identity = names.get(a.category_id, f"#{a.category_id}")
        item = annotation_item(a, identity, rec)
        if item is not None:
            items.append(item)
    items.sort(key=lambda it: (it.identity, it.image_id, it.key[1]))
    return items, source


def group(items: Iterable[IdentityItem]) -> dict[str, list[IdentityItem]]:
    out: dict[str, list[IdentityItem]] = defaultdict(list)
    for it in items:
        out[it.identity].append(it)
    return dict(out)


def check_identities(items: list[IdentityItem], where: str, what: str = "identities") -> dict[str, list[IdentityItem]]:
    """The items grouped by identity; BadInput naming ``where`` when an identity has a single item
    (no positive pair is possible) or there are fewer than two identities (no negative)."""
    groups = group(items)
    single = sorted(name for name, its in groups.items() if len(its) < 2)
    if single:
        more = f" and {len(single) - 3} more" if len(single) > 3 else ""
        raise BadInput(where, what, f"identity {', '.join(repr(s) for s in single[:3])}{more} has a single image: "
                       "a Siamese model needs at least two per identity (no positive pair is possible)")
    if len(groups) < 2:
        raise BadInput(where, what, f"{len(groups)} identit{'y' if len(groups) == 1 else 'ies'} found; at least 2 "
                       "are needed (give annotations an 'identity' attribute, use several categories, or import "
                       "a folder of sub-folders with `import identities`)")
    return groups


def _hash01(name: str) -> float:
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_identities(store: ProjectStore, items: list[IdentityItem], val_fraction: float = 0.2
                     ) -> dict[str, list[IdentityItem]]:
    """{"train": [...], "val": [...], "test": [...]}: every identity wholly in one split."""
    splits = {r.id: r.split for r in store.images()}
    groups = group(items)
    where = {}
    for name, its in groups.items():
        votes = Counter(splits.get(it.image_id, "train") for it in its)
        where[name] = max(SPLITS, key=lambda s: (votes.get(s, 0), -SPLITS.index(s)))
    if "val" not in where.values() and len(groups) > 2:
        ranked = sorted(groups, key=lambda n: (_hash01(n), n))
        n_val = max(2, int(round(len(groups) * float(val_fraction))))
        n_val = min(n_val, len(groups) - 2)
        for name in ranked[:n_val]:
            where[name] = "val"
    out: dict[str, list[IdentityItem]] = {s: [] for s in SPLITS}
    for name, its in groups.items():
        out[where[name]].extend(its)
    return out


def square_crop(image: np.ndarray, box: tuple[float, float, float, float] | None, size: int,
                context: float = 0.1) -> np.ndarray:
    """The item's picture as a square uint8 [size, size, 3]: the box grown by ``context`` on each
    side and made square around its centre (outside the image: edge pixels repeated), resized."""
    h, w = image.shape[:2]
    if box is None:
        x1, y1, x2, y2 = 0.0, 0.0, float(w), float(h)
        side = max(w, h)
    else:
        x1, y1, x2, y2 = box
        side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * context)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    scale = size / max(side, 1.0)
    # one warp: crop, pad and resize at once
    m = np.array([[scale, 0.0, size / 2.0 - scale * cx], [0.0, scale, size / 2.0 - scale * cy]], np.float64)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    return np.ascontiguousarray(out[..., :3])


def load_crops(store: ProjectStore, items: list[IdentityItem], size: int,
               should_stop: Callable[[], None] | None = None) -> np.ndarray:
    """uint8 [N, size, size, 3], one square crop per item (each image file read once)."""
    out = np.zeros((len(items), size, size, 3), np.uint8)
    by_image: dict[int, list[int]] = defaultdict(list)
    for k, it in enumerate(items):
        by_image[it.image_id].append(k)
    for n, (image_id, ks) in enumerate(by_image.items()):
        if should_stop is not None and n % 64 == 0:
            should_stop()
        image = read_image_rgb(store.image_path(image_id))
        for k in ks:
            out[k] = square_crop(image, items[k].box, size)
    return out


def image_stamp(path: Path) -> tuple[int, int]:
    """(mtime in ns, size in bytes) of an image file; (0, 0) when it is missing."""
    try:
        st = Path(path).stat()
    except OSError:
        return (0, 0)
    return (int(st.st_mtime_ns), int(st.st_size))

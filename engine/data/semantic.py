"""Annotations -> per-pixel targets: a class-index map and an instance map.

This is the only place (with ``engine.data.datasets``) where annotations become arrays for
training. Class index = 1 + position of the annotation's category in the chosen category list;
0 is background; categories not in the list are ignored (treated as background).

An object may be drawn several times (the demo stores each object as a Box AND a MaskRLE with
one ``instance_id``); then only its most precise shape is painted: mask > polygon > box.
Larger objects are painted first so small objects lying on top of them stay visible.
"""
from __future__ import annotations

import numpy as np

from engine.annotations.geometry import area, geometry_to_mask
from engine.annotations.model import Annotation

AREA_KINDS = ("mask", "polygon", "box")  # most precise first
_PRECISION = {kind: rank for rank, kind in enumerate(AREA_KINDS)}


def is_training_annotation(ann: Annotation) -> bool:
    """Area shapes that are ground truth: not points/polylines, not unaccepted model proposals."""
    return ann.kind in _PRECISION and not ann.attributes.get("proposal", False)


def object_shapes(annotations: list[Annotation]) -> list[Annotation]:
    """One annotation per object: the most precise shape of each ``instance_id`` group.

    Annotations without an instance_id are each their own object.
    """
    best: dict[object, Annotation] = {}
    for n, ann in enumerate(annotations):
        if not is_training_annotation(ann):
            continue
        key = ("inst", ann.instance_id) if ann.instance_id is not None else ("ann", n)
        old = best.get(key)
        if old is None or _PRECISION[ann.kind] < _PRECISION[old.kind]:
            best[key] = ann
    return list(best.values())


def rasterize(annotations: list[Annotation], category_ids: list[int], height: int,
              width: int) -> tuple[np.ndarray, np.ndarray]:
    """Paint the objects of one image.

    category_ids: project category ids in class order (class index = position + 1).
    Returns (class_map uint8 [H, W], instance_map int32 [H, W] with ids 1..K, 0 = none).
    Raises ValueError naming the annotation when a mask's size differs from the image's.
    """
    index = {cid: i + 1 for i, cid in enumerate(category_ids)}
    if len(index) > 254:
        raise ValueError(f"{len(index)} classes do not fit a uint8 class map (at most 254)")
    objects = [a for a in object_shapes(annotations) if a.category_id in index]
    objects.sort(key=lambda a: -area(a.geometry))
    class_map = np.zeros((height, width), np.uint8)
    instance_map = np.zeros((height, width), np.int32)
    for k, ann in enumerate(objects, start=1):
        try:
            m = geometry_to_mask(ann.geometry, height, width).astype(bool)
        except ValueError as exc:
            raise ValueError(f"annotation {ann.id} (image {ann.image_id}): {exc}") from None
        class_map[m] = index[ann.category_id]
        instance_map[m] = k
    return class_map, instance_map

"""Annotations -> per-pixel targets: a class-index map and an instance map.

This is the only place (with ``engine.data.datasets``) where annotations become arrays for
training. Class index = 1 + position of the annotation's category in the chosen category list;
0 is background; categories not in the list are ignored (treated as background).

The objects painted are ``engine.data.objects.ground_truth_objects``, the same objects the
detectors train on and every evaluation scores against: shapes sharing an ``instance_id`` are
one object (the demo stores a Box AND a MaskRLE per object) whose mask is the union of its masks
and polygons, or its box when it has none. Larger objects are painted first so small objects
lying on top of them stay visible.
"""
from __future__ import annotations

import numpy as np

from engine.annotations.model import Annotation
from engine.data.objects import AREA_KINDS, GroundTruthObject, ground_truth_objects, is_object_part

__all__ = ["AREA_KINDS", "is_training_annotation", "object_shapes", "rasterize", "rasterize_objects"]

_PRECISION = {kind: rank for rank, kind in enumerate(AREA_KINDS)}


def is_training_annotation(ann: Annotation) -> bool:
    """Area shapes that are ground truth (``engine.data.truth``): not points/polylines, not
    unaccepted model proposals. Hidden shapes train: hiding is a view state."""
    return is_object_part(ann)


def object_shapes(annotations: list[Annotation]) -> list[Annotation]:
    """One annotation per ground-truth object: its most precise shape (mask > polygon > box)."""
    out = []
    for obj in ground_truth_objects(annotations, 1 << 30, 1 << 30):  # no image size: nothing clipped
        out.append(min(obj.parts, key=lambda a: _PRECISION[a.kind]))
    return out


def rasterize(annotations: list[Annotation], category_ids: list[int], height: int,
              width: int) -> tuple[np.ndarray, np.ndarray]:
    """Paint the ground-truth objects of one image.

    category_ids: project category ids in class order (class index = position + 1).
    Returns (class_map uint8 [H, W], instance_map int32 [H, W] with ids 1..K, 0 = none).
    Raises ValueError naming the annotation when a mask's size differs from the image's.
    """
    return rasterize_objects(ground_truth_objects(annotations, height, width, category_ids), category_ids,
                             height, width)


def rasterize_objects(objects: list[GroundTruthObject], category_ids: list[int], height: int,
                      width: int) -> tuple[np.ndarray, np.ndarray]:
    """``rasterize`` for objects already found (those of other categories are left out)."""
    index = {cid: i + 1 for i, cid in enumerate(category_ids)}
    if len(index) > 254:
        raise ValueError(f"{len(index)} classes do not fit a uint8 class map (at most 254)")
    masks = [(o, o.mask(height, width).astype(bool)) for o in objects if o.category_id in index]
    masks.sort(key=lambda om: -int(om[1].sum()))
    class_map = np.zeros((height, width), np.uint8)
    instance_map = np.zeros((height, width), np.int32)
    for k, (obj, m) in enumerate(masks, start=1):
        class_map[m] = index[obj.category_id]
        instance_map[m] = k
    return class_map, instance_map

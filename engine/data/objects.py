"""The objects of one image that count as ground truth: the one place annotations become objects.

Every consumer (U-Net's class and instance maps, the detectors' targets, ``visionbench eval``,
the compare view, Evaluate) asks ``ground_truth_objects``, so they all see the same objects:

- only ground truth counts (``engine.data.truth``: unaccepted proposals never; hidden shapes do);
- only area shapes (box, polygon, mask); points and polylines are no objects;
- shapes sharing a category and an ``instance_id`` are ONE object (the demo stores a ``Box`` and a
  ``MaskRLE`` per object); a shape without an ``instance_id`` is an object on its own;
- an object's box is its drawn ``Box`` when it has one, else the bounds of its other parts, clipped
  to the image; an object whose clipped box is thinner than ``MIN_BOX_SIDE`` is no object (it
  lies outside the image, or would make a box coder divide by ~0);
- an object's mask is the union of its masks and polygons, or its filled box when it has none.

Qt-free and torch-free (the GUI computes ground-truth boxes on its own thread).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from engine.annotations.geometry import bounds, box_to_mask, geometry_to_mask
from engine.annotations.model import Annotation, Box
from engine.data.truth import is_ground_truth

__all__ = ["AREA_KINDS", "MIN_BOX_SIDE", "GroundTruthObject", "ground_truth_boxes", "ground_truth_objects",
           "is_object_part"]

AREA_KINDS = ("mask", "polygon", "box")  # most precise first
MIN_BOX_SIDE = 1.0  # pixels


@dataclass(frozen=True)
class GroundTruthObject:
    """One object: its category, its box (xyxy pixels, inside the image) and the shapes drawn for it."""

    category_id: int
    box: tuple[float, float, float, float]
    parts: tuple[Annotation, ...]

    @property
    def box_only(self) -> bool:
        """True when no mask or polygon was drawn: the mask is then the filled box."""
        return all(isinstance(p.geometry, Box) for p in self.parts)

    def mask(self, height: int, width: int) -> np.ndarray:
        """uint8 [H, W] in {0, 1}: the union of the object's masks and polygons, else its filled box.

        ValueError naming the annotation when a mask's size differs from the image's.
        """
        if self.box_only:
            x1, y1, x2, y2 = self.box
            return box_to_mask(Box(x1, y1, x2, y2), height, width)
        out = np.zeros((height, width), np.uint8)
        for p in self.parts:
            if isinstance(p.geometry, Box):
                continue
            try:
                out |= geometry_to_mask(p.geometry, height, width).astype(np.uint8)
            except ValueError as exc:
                raise ValueError(f"annotation {p.id} (image {p.image_id}): {exc}") from None
        return out


def is_object_part(a: Annotation) -> bool:
    """An area shape that is ground truth."""
    return a.kind in AREA_KINDS and is_ground_truth(a)


def ground_truth_objects(annotations: Iterable[Annotation], height: int, width: int,
                         category_ids: Iterable[int] | None = None) -> list[GroundTruthObject]:
    """The ground-truth objects of one image of ``height`` x ``width`` pixels, in the order their
    first shape comes; only those of ``category_ids`` (None = every category). See the module doc."""
    wanted = None if category_ids is None else set(category_ids)
    groups: dict[object, list[Annotation]] = {}
    for n, a in enumerate(annotations):
        if not is_object_part(a) or (wanted is not None and a.category_id not in wanted):
            continue
        key = ("instance", a.category_id, a.instance_id) if a.instance_id is not None else ("own", n)
        groups.setdefault(key, []).append(a)
    out = []
    for parts in groups.values():
        own_box = [p.geometry for p in parts if isinstance(p.geometry, Box)]
        if own_box:
            x1, y1, x2, y2 = own_box[0].x1, own_box[0].y1, own_box[0].x2, own_box[0].y2
        else:
            each = np.array([bounds(p.geometry) for p in parts], np.float64)
            x1, y1, x2, y2 = each[:, 0].min(), each[:, 1].min(), each[:, 2].max(), each[:, 3].max()
        x1, x2 = (float(v) for v in np.clip([x1, x2], 0, width))
        y1, y2 = (float(v) for v in np.clip([y1, y2], 0, height))
        if x2 - x1 < MIN_BOX_SIDE or y2 - y1 < MIN_BOX_SIDE:
            continue
        out.append(GroundTruthObject(parts[0].category_id, (x1, y1, x2, y2), tuple(parts)))
    return out


def ground_truth_boxes(annotations: Iterable[Annotation], category_names: dict[int, str], height: int,
                       width: int) -> tuple[np.ndarray, list[str]]:
    """The objects of categories ``category_names`` (project id -> name) of one image as
    (boxes float64 [G, 4] xyxy pixels, class names [G]): what the compare view, the YOLO grid
    and Evaluate draw and score against."""
    objects = ground_truth_objects(annotations, height, width, category_names)
    boxes = np.array([o.box for o in objects], np.float64).reshape(-1, 4)
    return boxes, [category_names[o.category_id] for o in objects]

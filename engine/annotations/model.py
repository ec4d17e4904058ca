"""The annotation data model: plain dataclasses, no Qt, no torch.

Coordinates are float pixels in the image frame, origin at the top-left corner of the
top-left pixel (so a pixel (col, row) covers [col, col+1) x [row, row+1)).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Union

SPLITS = ("train", "val", "test")
STATUSES = ("new", "in_progress", "done", "reviewed")
KINDS = ("box", "polygon", "mask", "point", "polyline")
MANUAL = "manual"

Point2 = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """Axis-aligned box, xyxy in pixels."""

    x1: float
    y1: float
    x2: float
    y2: float
    kind = "box"

    def to_json(self) -> dict:
        return {"xyxy": [self.x1, self.y1, self.x2, self.y2]}

    @classmethod
    def from_json(cls, d: dict) -> "Box":
        x1, y1, x2, y2 = (float(v) for v in d["xyxy"])
        return cls(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclass(frozen=True)
class Polygon:
    """Closed polygon: exterior ring plus optional holes; rings are lists of (x, y)."""

    points: tuple[Point2, ...]
    holes: tuple[tuple[Point2, ...], ...] = ()
    kind = "polygon"

    def to_json(self) -> dict:
        d: dict[str, Any] = {"points": [list(p) for p in self.points]}
        if self.holes:
            d["holes"] = [[list(p) for p in h] for h in self.holes]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Polygon":
        pts = tuple((float(x), float(y)) for x, y in d["points"])
        holes = tuple(tuple((float(x), float(y)) for x, y in h) for h in d.get("holes", ()))
        return cls(pts, holes)


@dataclass(frozen=True)
class MaskRLE:
    """A binary mask as COCO compressed RLE (column-major), for an image of `size` = (height, width)."""

    size: tuple[int, int]
    counts: str
    kind = "mask"

    def to_json(self) -> dict:
        return {"rle": {"size": [int(self.size[0]), int(self.size[1])], "counts": self.counts}}

    @classmethod
    def from_json(cls, d: dict) -> "MaskRLE":
        r = d["rle"]
        counts = r["counts"]
        if isinstance(counts, bytes):
            counts = counts.decode("ascii")
        return cls((int(r["size"][0]), int(r["size"][1])), counts)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    kind = "point"

    def to_json(self) -> dict:
        return {"xy": [self.x, self.y]}

    @classmethod
    def from_json(cls, d: dict) -> "Point":
        x, y = d["xy"]
        return cls(float(x), float(y))


@dataclass(frozen=True)
class Polyline:
    """Open chain of vertices."""

    points: tuple[Point2, ...]
    kind = "polyline"

    def to_json(self) -> dict:
        return {"points": [list(p) for p in self.points]}

    @classmethod
    def from_json(cls, d: dict) -> "Polyline":
        return cls(tuple((float(x), float(y)) for x, y in d["points"]))


Geometry = Union[Box, Polygon, MaskRLE, Point, Polyline]
GEOMETRY_TYPES: dict[str, type] = {
    "box": Box, "polygon": Polygon, "mask": MaskRLE, "point": Point, "polyline": Polyline,
}


def geometry_from_json(kind: str, d: dict) -> Geometry:
    try:
        cls = GEOMETRY_TYPES[kind]
    except KeyError:
        raise ValueError(f"unknown annotation kind {kind!r}; expected one of {', '.join(KINDS)}") from None
    return cls.from_json(d)


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    color: str = "#ff0000"  # '#rrggbb'


@dataclass(frozen=True)
class ImageRecord:
    """An image of the project; `path` is relative to the project file's folder, POSIX separators."""

    id: int
    path: str
    width: int
    height: int
    split: str = "train"
    status: str = "new"


@dataclass(frozen=True)
class Annotation:
    """One object on one image. `id` is None until stored."""

    image_id: int
    category_id: int
    geometry: Geometry
    id: int | None = None
    instance_id: int | None = None
    attributes: dict = field(default_factory=dict)
    source: str = MANUAL  # "manual" or a model name
    score: float | None = None
    hidden: bool = False
    locked: bool = False
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def kind(self) -> str:
        return self.geometry.kind

    def with_(self, **changes) -> "Annotation":
        """A copy with fields changed (the store sets `updated`)."""
        return replace(self, **changes)


# A palette for new categories: distinct, readable on photos.
PALETTE = (
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
    "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
    "#808000", "#ffd8b1", "#000075", "#808080",
)


def default_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]

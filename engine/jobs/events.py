"""Typed events a job yields. Every yield is a progress report and a cancel point."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    """`step` of `total` units done (total None when unknown)."""

    step: int
    total: int | None = None
    message: str = ""


@dataclass(frozen=True)
class Metrics:
    """Scalar metrics at a step, e.g. {"loss": 0.3, "val_miou": 0.7}."""

    values: dict[str, float]
    step: int | None = None


# What a preview shows, and so how the GUI draws it (the data contract of each kind is in
# engine.viz.previews, which also builds them). A family that yields these needs no GUI code.
PREVIEW_KINDS = ("heatmap", "class_map", "image", "image_row", "matrix_grid", "scatter", "curves")


@dataclass(frozen=True)
class Preview:
    """A named picture for a live view; the GUI keeps only the latest per name and draws it by
    ``kind`` (one of PREVIEW_KINDS). ``data`` is a dict whose keys the kind defines; ``title``
    is what the view is headed with (the name when empty)."""

    name: str
    data: dict[str, Any]
    step: int | None = None
    kind: str = "image"
    title: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PREVIEW_KINDS:
            raise ValueError(f"preview {self.name!r}: kind {self.kind!r} is not one of {', '.join(PREVIEW_KINDS)}")


@dataclass(frozen=True)
class Log:
    text: str
    level: str = "info"


Event = Progress | Metrics | Preview | Log


@dataclass
class JobOutcome:
    """What a finished job left behind: state is finished | cancelled | failed."""

    state: str
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    events: int = field(default=0)

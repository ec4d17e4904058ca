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


@dataclass(frozen=True)
class Preview:
    """A named array (or dict of arrays) for a live view; the GUI keeps only the latest per name."""

    name: str
    data: Any
    step: int | None = None


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

"""What a lesson draws: panels of plain primitives, in the panel's own coordinates.

A lesson never knows about Qt. It describes one step as a :class:`Scene`: a grid of
:class:`Panel` s, each with a world rectangle (image pixels, matrix cells or plot units) and a
list of items. The GUI has one painter for these items, used for the screen, the PNG export and
the SVG export alike, so the three always agree, and the presentation mode only scales line
widths and font sizes.

Units: coordinates are world units of the panel; ``width`` is in line units (1 = a thin line on
the screen; presentation mode multiplies it), text ``size`` is in points before that scaling.
Colours are "#rrggbb" or "#rrggbbaa" strings.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Image:
    """uint8 RGB [H, W, 3] (or RGBA [H, W, 4]) drawn over the world rectangle ``rect`` (x0, y0, x1, y1)."""

    pixels: np.ndarray
    rect: tuple[float, float, float, float]
    smooth: bool = False  # False: nearest neighbour, so feature-map cells stay visible as cells


@dataclass
class Rect:
    """An xyxy rectangle; ``fill`` may be None; ``label`` is drawn at its top-left corner."""

    box: tuple[float, float, float, float]
    colour: str = "#ffd600"
    width: float = 2.0
    dashed: bool = False
    fill: str | None = None
    label: str = ""


@dataclass
class Line:
    """A polyline through ``points`` [(x, y), ...]; ``arrow`` draws a head at the last point."""

    points: list[tuple[float, float]]
    colour: str = "#40c4ff"
    width: float = 2.0
    dashed: bool = False
    arrow: bool = False


@dataclass
class Dot:
    """A filled disc of ``radius`` screen pixels at (x, y), optionally labelled."""

    x: float
    y: float
    colour: str = "#ffd600"
    radius: float = 6.0
    label: str = ""


@dataclass
class Text:
    """Text at (x, y); ``anchor`` is which point of the text box sits there: "tl", "c", "bl", ...
    ``plate`` draws a dark plate behind it so it reads on any image."""

    x: float
    y: float
    text: str
    colour: str = "#ffffff"
    size: float = 11.0
    anchor: str = "tl"
    plate: bool = False
    bold: bool = False
    fit: float = 0.0  # > 0: shrink the font so the text is at most this many world units wide
    mono: bool = False  # a fixed-width font, for columns of numbers


@dataclass
class Panel:
    """One framed drawing with its own coordinates.

    world: (x0, y0, x1, y1) shown; y grows downwards (image convention) unless ``y_up``.
    keep_aspect: one world unit is as wide as it is high on the screen (images, matrices).
    axes: draw ticks and labels (plots); ``xlabel`` / ``ylabel`` name them.
    """

    title: str
    world: tuple[float, float, float, float]
    items: list = field(default_factory=list)
    keep_aspect: bool = True
    y_up: bool = False
    axes: bool = False
    xlabel: str = ""
    ylabel: str = ""
    background: str = "#202124"
    xticks: list[tuple[float, str]] | None = None  # named ticks (bars of categories) instead of numbers

    def add(self, *items) -> "Panel":
        self.items.extend(items)
        return self


@dataclass
class Scene:
    """Panels laid out in ``columns`` columns (rows follow), plus a one-line ``legend``."""

    panels: list[Panel]
    columns: int = 0  # 0: all in one row
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour, meaning)

    def grid(self) -> tuple[int, int]:
        """(rows, columns) of the layout."""
        n = max(len(self.panels), 1)
        cols = self.columns or n
        return (n + cols - 1) // cols, cols


@dataclass
class Step:
    """One step of a lesson: ``caption`` says what changed, ``scene`` shows it."""

    caption: str
    scene: Scene


# -- small helpers the lessons share ----------------------------------------------------------------
def colormap(values: np.ndarray, vmin: float | None = None, vmax: float | None = None,
             diverging: bool = False) -> np.ndarray:
    """float [H, W] -> uint8 RGB [H, W, 3]. Sequential: dark blue -> yellow (viridis-like);
    diverging: blue (negative) -> white (0) -> red (positive), symmetric around zero."""
    v = np.asarray(values, np.float64)
    if diverging:
        m = float(np.abs(v).max()) if vmax is None else float(vmax)
        t = np.clip(v / (m if m > 0 else 1.0), -1, 1)
        r = np.where(t > 0, 1.0, 1.0 + t)
        g = 1.0 - np.abs(t)
        b = np.where(t < 0, 1.0, 1.0 - t)
        return (np.stack([r, g, b], -1) * 255).astype(np.uint8)
    lo = float(v.min()) if vmin is None else float(vmin)
    hi = float(v.max()) if vmax is None else float(vmax)
    t = np.clip((v - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    stops = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float64)
    pos = t * (len(stops) - 1)
    i = np.minimum(pos.astype(int), len(stops) - 2)
    f = (pos - i)[..., None]
    return (stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)


def blend(image: np.ndarray, overlay: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """uint8 RGB image with an RGB overlay of the same size mixed in."""
    return (image.astype(np.float32) * (1 - alpha) + overlay.astype(np.float32) * alpha).astype(np.uint8)


def matrix_items(values: np.ndarray, x0: float = 0.0, y0: float = 0.0, fmt: str = "{:g}",
                 highlight: np.ndarray | None = None, size: float = 10.0, zero_dim: bool = True) -> list:
    """A numeric matrix as cells one world unit wide, ``values[r, c]`` at (x0 + c, y0 + r).

    highlight: bool [R, C] of cells filled yellow; zeros are drawn dim so the structure shows.
    """
    values = np.asarray(values)
    items: list = []
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            v = values[r, c]
            lit = highlight is not None and bool(highlight[r, c])
            fill = "#ffd60066" if lit else ("#30343a" if (zero_dim and v == 0) else "#3c4f6a")
            items.append(Rect((x0 + c, y0 + r, x0 + c + 1, y0 + r + 1), "#5f6368", 1.0, fill=fill))
            colour = "#8a8f98" if (zero_dim and v == 0) else "#ffffff"
            items.append(Text(x0 + c + 0.5, y0 + r + 0.5, fmt.format(v), colour, size, "c", fit=0.9))
    return items

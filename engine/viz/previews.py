"""Preview kinds: what each kind's data holds, and builders that check it.

A family's trainer yields ``Preview`` events built here; the GUI draws each by its kind
(``app.views.live_views``), so a new family needs no GUI code. The contracts (numpy arrays):

- ``heatmap``: {"maps": float [K, H, W], "labels": K names, "levels": (lo, hi) or None (0..max)}
- ``class_map``: {"image": uint8 [H, W, 3], "class_map": int [H, W] (0 = background),
  "palette": uint8 [C + 1, 3], "classes": C + 1 names (background first)}
- ``image``: {"image": uint8 [H, W, 3] or [H, W]}
- ``image_row``: {"images": list of uint8 [H, W, 3] / [H, W], "titles": one name each}
  (input | output | target)
- ``matrix_grid``: {"matrices": list of float [R, C], "titles": one name each, "levels": (lo, hi) or
  None} (Gram matrices; with levels, all on that one colour scale, else each on its own range)
- ``scatter``: {"points": float [N, 2], "labels": int [N] (index into names), "names": [...]}
- ``curves``: {"x": float [T], "series": {name: float [T]}}

Nothing here imports Qt or torch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from engine.jobs.events import Preview

__all__ = ["heatmap", "class_map", "image", "image_row", "matrix_grid", "scatter", "curves",
           "draw_detections", "render", "matrix_levels"]


def _rgb(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"{what}: expected [H, W] or [H, W, 3], got shape {a.shape}")
    if a.dtype != np.uint8:
        lo, hi = float(np.nanmin(a)) if a.size else 0.0, float(np.nanmax(a)) if a.size else 1.0
        scale = 255.0 if hi <= 1.0 and lo >= 0.0 else 255.0 / max(hi - lo, 1e-12)
        a = np.clip((np.nan_to_num(a.astype(np.float32)) - (0.0 if scale == 255.0 else lo)) * scale, 0, 255)
        a = a.round().astype(np.uint8)
    return np.ascontiguousarray(a[..., :3] if a.ndim == 3 else a)


def heatmap(name: str, maps: np.ndarray, labels: Sequence[str] | None = None, levels=None,
            step: int | None = None, title: str = "") -> Preview:
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"heatmap {name!r}: maps must be [K, H, W], got shape {maps.shape}")
    labels = list(labels) if labels is not None else [str(k) for k in range(len(maps))]
    if len(labels) != len(maps):
        raise ValueError(f"heatmap {name!r}: {len(labels)} labels for {len(maps)} maps")
    return Preview(name, {"maps": maps, "labels": labels, "levels": tuple(levels) if levels else None},
                   step, "heatmap", title)


def class_map(name: str, image_rgb: np.ndarray, classes_map: np.ndarray, palette: np.ndarray,
              classes: Sequence[str], step: int | None = None, title: str = "") -> Preview:
    return Preview(name, {"image": _rgb(image_rgb, name), "class_map": np.asarray(classes_map),
                          "palette": np.asarray(palette, np.uint8), "classes": list(classes)},
                   step, "class_map", title)


def image(name: str, picture: np.ndarray, step: int | None = None, title: str = "") -> Preview:
    return Preview(name, {"image": _rgb(picture, name)}, step, "image", title)


def image_row(name: str, pictures: Sequence[np.ndarray], titles: Sequence[str], step: int | None = None,
              title: str = "") -> Preview:
    if len(pictures) != len(titles):
        raise ValueError(f"image row {name!r}: {len(titles)} titles for {len(pictures)} images")
    return Preview(name, {"images": [_rgb(p, name) for p in pictures], "titles": list(titles)},
                   step, "image_row", title)


def matrix_grid(name: str, matrices: Sequence[np.ndarray], titles: Sequence[str], step: int | None = None,
                title: str = "", levels=None) -> Preview:
    mats = [np.asarray(m, np.float32) for m in matrices]
    if any(m.ndim != 2 for m in mats) or len(mats) != len(titles):
        raise ValueError(f"matrix grid {name!r}: expected one 2-D matrix per title")
    return Preview(name, {"matrices": mats, "titles": list(titles),
                          "levels": (float(levels[0]), float(levels[1])) if levels else None},
                   step, "matrix_grid", title)


def scatter(name: str, points: np.ndarray, labels: np.ndarray, names: Sequence[str], step: int | None = None,
            title: str = "") -> Preview:
    points = np.asarray(points, np.float32).reshape(-1, 2)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if len(points) != len(labels):
        raise ValueError(f"scatter {name!r}: {len(labels)} labels for {len(points)} points")
    return Preview(name, {"points": points, "labels": labels, "names": list(names)}, step, "scatter", title)


def curves(name: str, x: Sequence[float], series: dict[str, Sequence[float]], step: int | None = None,
           title: str = "") -> Preview:
    x = np.asarray(x, np.float64)
    out = {k: np.asarray(v, np.float64) for k, v in series.items()}
    if any(len(v) != len(x) for v in out.values()):
        raise ValueError(f"curves {name!r}: every series needs one value per x")
    return Preview(name, {"x": x, "series": out}, step, "curves", title)


def draw_detections(picture: np.ndarray, boxes: np.ndarray, labels: Sequence[int], scores: Sequence[float],
                    names: Sequence[str], colors: Sequence[str], masks: np.ndarray | None = None,
                    gt_boxes: np.ndarray | None = None) -> np.ndarray:
    """Detections drawn on a copy of ``picture`` (uint8 [H, W, 3]): ground truth as thin white
    boxes, predictions as boxes in their class colour with "name score", masks tinted.

    boxes float [N, 4] xyxy pixels; labels 1..C (index into names/colors + 1); masks bool [N, H, W].
    """
    import cv2

    from engine.viz.palette import class_palette

    out = np.ascontiguousarray(_rgb(picture, "detections"))
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    out = out.copy()
    palette = class_palette(list(colors))
    if masks is not None:
        for m, lab in zip(np.asarray(masks, bool), labels):
            c = palette[int(np.clip(lab, 0, len(palette) - 1))].astype(np.float32)
            out[m] = (0.55 * out[m] + 0.45 * c).astype(np.uint8)
    if gt_boxes is not None:
        for x1, y1, x2, y2 in np.asarray(gt_boxes, np.float64).reshape(-1, 4):
            cv2.rectangle(out, (int(x1), int(y1)), (int(round(x2)) - 1, int(round(y2)) - 1), (255, 255, 255), 1)
    for (x1, y1, x2, y2), lab, score in zip(np.asarray(boxes, np.float64).reshape(-1, 4), labels, scores):
        k = int(np.clip(lab, 0, len(palette) - 1))
        c = tuple(int(v) for v in palette[k])
        cv2.rectangle(out, (int(x1), int(y1)), (int(round(x2)) - 1, int(round(y2)) - 1), c, 1)
        text = f"{names[k - 1] if 0 < k <= len(names) else k} {float(score):.2f}"
        cv2.putText(out, text, (int(x1), max(8, int(y1) - 2)), cv2.FONT_HERSHEY_PLAIN, 0.7, c, 1, cv2.LINE_AA)
    return out


def render(preview: Preview, height: int = 256) -> np.ndarray:
    """One picture (uint8 [H, W, 3]) of a preview of any kind, for files and reports (the GUI
    draws interactive views instead): heatmaps in viridis (each map side by side), class maps
    blended over their image, rows and grids side by side, scatters and curves drawn as plots."""
    import cv2

    from engine.viz.heatmaps import argmax_overlay, colorize

    d, kind = preview.data, preview.kind

    def rgb3(a: np.ndarray) -> np.ndarray:
        a = _rgb(a, preview.name)
        return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a

    def row(pictures: list[np.ndarray]) -> np.ndarray:
        scaled = [cv2.resize(rgb3(p), (max(1, round(p.shape[1] * height / p.shape[0])), height),
                             interpolation=cv2.INTER_NEAREST) for p in pictures]
        gap = np.full((height, 4, 3), 64, np.uint8)
        parts = []
        for k, p in enumerate(scaled):
            parts += ([gap] if k else []) + [p]
        return np.concatenate(parts, axis=1) if parts else np.zeros((height, height, 3), np.uint8)

    def plot(series: list[tuple[np.ndarray, np.ndarray]], dots: bool, labels: np.ndarray | None = None) -> np.ndarray:
        canvas = np.full((height, int(height * 1.5), 3), 255, np.uint8)
        xs = np.concatenate([s[0] for s in series]) if series else np.zeros(1)
        ys = np.concatenate([s[1] for s in series]) if series else np.zeros(1)
        xs, ys = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
        x0, x1 = (float(xs.min()), float(xs.max())) if xs.size else (0.0, 1.0)
        y0, y1 = (float(ys.min()), float(ys.max())) if ys.size else (0.0, 1.0)
        w, h, m = canvas.shape[1], canvas.shape[0], 12

        def px(x, y):
            u = m + (np.asarray(x) - x0) / max(x1 - x0, 1e-12) * (w - 2 * m)
            v = h - m - (np.asarray(y) - y0) / max(y1 - y0, 1e-12) * (h - 2 * m)
            return np.stack([u, v], axis=-1).round().astype(np.int32)

        for k, (x, y) in enumerate(series):
            colour = _PLOT_COLOURS[k % len(_PLOT_COLOURS)]
            pts = px(x, y)
            if dots:
                for p in pts:
                    cv2.circle(canvas, (int(p[0]), int(p[1])), 3, colour, -1, cv2.LINE_AA)
            elif len(pts) > 1:
                cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA)
        return canvas

    if kind == "heatmap":
        lo, hi = d["levels"] if d["levels"] else (0.0, max(float(np.nanmax(d["maps"])), 1e-6))
        return row([colorize(m, lo, hi) for m in d["maps"]])
    if kind == "class_map":
        return row([argmax_overlay(rgb3(d["image"]), d["class_map"], d["palette"], 0.5)])
    if kind == "image":
        return row([d["image"]])
    if kind == "image_row":
        return row(list(d["images"]))
    if kind == "matrix_grid":
        return row([colorize(m, *matrix_levels(d, m)) for m in d["matrices"]])
    if kind == "scatter":
        labels = np.asarray(d["labels"])
        pts = np.asarray(d["points"], np.float64)
        return plot([(pts[labels == k, 0], pts[labels == k, 1]) for k in np.unique(labels)], dots=True)
    return plot([(np.asarray(d["x"]), np.asarray(v)) for v in d["series"].values()], dots=False)


def matrix_levels(data: dict, matrix: np.ndarray) -> tuple[float, float]:
    """The colour scale of one matrix of a matrix_grid: the grid's shared levels, else its own range."""
    if data.get("levels"):
        lo, hi = data["levels"]
        return float(lo), max(float(hi), float(lo) + 1e-12)
    lo = float(matrix.min())
    return lo, max(float(matrix.max()), lo + 1e-12)


_PLOT_COLOURS = ((245, 130, 49), (67, 99, 216), (60, 180, 75), (230, 25, 75), (145, 30, 180), (70, 240, 240))

"""Arrays behind the segmentation live views: probability heatmaps and argmax overlays.

Everything here is numpy in, numpy out, so the GUI only has to draw (it never sees torch).
"""
from __future__ import annotations

import numpy as np

# A small perceptual colour map (viridis control points) so the engine needs no matplotlib.
_VIRIDIS = np.array([
    [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
    [31, 158, 137], [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37],
], dtype=np.float32)


def colorize(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Scalar map float [H, W] -> uint8 RGB [H, W, 3] with viridis (vmin dark, vmax yellow)."""
    span = max(float(vmax) - float(vmin), 1e-12)
    t = np.clip((np.asarray(values, np.float32) - vmin) / span, 0.0, 1.0) * (len(_VIRIDIS) - 1)
    lo = np.floor(t).astype(np.int64)
    hi = np.minimum(lo + 1, len(_VIRIDIS) - 1)
    frac = (t - lo)[..., None]
    rgb = _VIRIDIS[lo] * (1.0 - frac) + _VIRIDIS[hi] * frac
    return rgb.round().astype(np.uint8)


def argmax_overlay(image: np.ndarray, class_map: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the class colours over the image: uint8 RGB [H, W, 3].

    image: uint8 [H, W, 3]; class_map: int [H, W] (0 = background, left unblended);
    palette: uint8 [C + 1, 3] (see ``engine.viz.palette.class_palette``); alpha in [0, 1].
    """
    image = np.asarray(image, dtype=np.float32)
    class_map = np.clip(np.asarray(class_map, dtype=np.int64), 0, len(palette) - 1)
    colors = np.asarray(palette, dtype=np.float32)[class_map]
    fg = (class_map > 0)[..., None]
    out = np.where(fg, image * (1.0 - alpha) + colors * alpha, image)
    return out.round().clip(0, 255).astype(np.uint8)


def class_map_rgb(class_map: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Class indices int [H, W] -> palette colours uint8 [H, W, 3]."""
    return np.asarray(palette, np.uint8)[np.clip(np.asarray(class_map, np.int64), 0, len(palette) - 1)]


def segmentation_preview(image: np.ndarray, probs: np.ndarray, classes: list[str], colors: list[str],
                         alpha: float = 0.5) -> dict[str, dict]:
    """The three preview payloads of a segmentation model on one image.

    image: uint8 [H, W, 3]; probs: float [C + 1, H, W] softmax (channel 0 = background);
    classes / colors: the C foreground class names and '#rrggbb' colours.
    Returns {"heatmaps": {"image", "probs" (float16 [C+1,H,W]), "classes" (with "background")},
             "argmax": {"image", "class_map" uint8 [H,W], "overlay" uint8 [H,W,3], "classes", "palette"}}.
    """
    from engine.viz.palette import class_palette

    palette = class_palette(colors)
    class_map = np.asarray(probs).argmax(axis=0).astype(np.uint8)
    names = ["background"] + list(classes)
    return {
        "heatmaps": {"image": image, "probs": np.asarray(probs, np.float16), "classes": names},
        "argmax": {"image": image, "class_map": class_map, "overlay": argmax_overlay(image, class_map, palette, alpha),
                   "classes": names, "palette": palette},
    }

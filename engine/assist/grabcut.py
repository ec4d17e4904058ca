"""GrabCut from a box: a foreground mask for the object inside a user-drawn rectangle."""
from __future__ import annotations

import numpy as np

from engine.annotations.errors import BadInput

MARGIN = 0.25  # extra context around the box (fraction of its size) for the colour models


def grabcut_mask(image_rgb: np.ndarray, box_xyxy, iterations: int = 5) -> np.ndarray:
    """Segment the object inside `box_xyxy` (pixels, float xyxy) of `image_rgb` (uint8 [H, W, 3]).

    Runs cv2.grabCut on a crop around the box (the box plus MARGIN on each side) because its cost
    grows with the pixel count, then pastes the result back. Returns uint8 {0, 1} [H, W]; pixels
    outside the box are always 0.
    """
    import cv2

    img = np.asarray(image_rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise BadInput("<image>", "image_rgb", f"expected uint8 [H, W, 3], got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    bx1, by1 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    bx2, by2 = min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))
    out = np.zeros((h, w), np.uint8)
    if bx2 - bx1 < 3 or by2 - by1 < 3:
        return out  # too small for colour models; nothing sensible to return
    mx, my = int((bx2 - bx1) * MARGIN) + 2, int((by2 - by1) * MARGIN) + 2
    cx1, cy1, cx2, cy2 = max(0, bx1 - mx), max(0, by1 - my), min(w, bx2 + mx), min(h, by2 + my)
    crop = np.ascontiguousarray(img[cy1:cy2, cx1:cx2, ::-1])  # cv2 wants BGR
    mask = np.zeros(crop.shape[:2], np.uint8)
    rect = (bx1 - cx1, by1 - cy1, bx2 - bx1, by2 - by1)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(crop, mask, rect, bgd, fgd, max(1, int(iterations)), cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        # a box covering the whole crop leaves no background sample; fall back to the box itself
        out[by1:by2, bx1:bx2] = 1
        return out
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    out[cy1:cy2, cx1:cx2] = fg
    box_only = np.zeros_like(out)
    box_only[by1:by2, bx1:bx2] = 1
    return out * box_only

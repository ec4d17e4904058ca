"""The U-Net paper's pixel weight map (Ronneberger et al. 2015, eq. 2).

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

w_c balances class frequencies; d1 / d2 are the Euclidean distances (pixels) from a background
pixel to the nearest and the second-nearest object instance. The second term is large only in
narrow background gaps between touching objects, which is what teaches the network to keep
them apart. It is applied to background pixels only: inside an object d1 = 0 and the term
would merely up-weight every object pixel near a neighbour, which is not the paper's intent.
"""
from __future__ import annotations

import cv2
import numpy as np

W0 = 10.0
SIGMA = 5.0  # pixels


def class_balance_weights(counts: np.ndarray, max_weight: float = 10.0, power: float = 1.0) -> np.ndarray:
    """Pixel counts per class [C] -> weights [C] proportional to frequency ** -power.

    power 1 equalises the classes' total weight; 0.5 (square root) is a softer balance that
    does not drown the background's gradient when objects are small. Normalised so a pixel
    drawn from the data has weight 1 on average (the loss keeps plain cross-entropy's scale);
    absent classes get weight 1; capped at ``max_weight``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.ones_like(counts)
    if not present.any():
        return weights.astype(np.float32)
    freq = counts[present] / counts.sum()
    raw = freq ** -float(power)
    raw = raw / float((freq * raw).sum())  # mean weight per pixel = sum_c freq_c * w_c = 1
    weights[present] = np.minimum(raw, max_weight)
    return weights.astype(np.float32)


def instance_distances(instance_map: np.ndarray) -> np.ndarray:
    """Distances (pixels, float32) from every pixel to each instance: [K, H, W].

    instance_map: int [H, W], 0 = no object, 1..K = instance ids (need not be contiguous; the
    output follows ``np.unique`` order of the non-zero ids).
    """
    ids = np.unique(instance_map)
    ids = ids[ids != 0]
    h, w = instance_map.shape
    out = np.empty((len(ids), h, w), np.float32)
    for k, inst in enumerate(ids):
        # distanceTransform measures the distance to the nearest ZERO pixel, so the instance is 0.
        outside = (instance_map != inst).astype(np.uint8)
        out[k] = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return out


def unet_weight_map(class_map: np.ndarray, instance_map: np.ndarray, class_weights: np.ndarray | None = None,
                    w0: float = W0, sigma: float = SIGMA) -> np.ndarray:
    """Per-pixel loss weights float32 [H, W] for one image.

    class_map: int [H, W] class indices (0 = background); instance_map: int [H, W] instance ids
    (0 = none); class_weights: [C] (default: balanced on this image's own class counts).
    With fewer than two instances there is no gap between objects and the border term is 0.
    """
    class_map = np.asarray(class_map)
    instance_map = np.asarray(instance_map)
    if class_map.shape != instance_map.shape:
        raise ValueError(f"class_map {class_map.shape} and instance_map {instance_map.shape} differ in shape")
    if class_weights is None:
        n = int(class_map.max()) + 1 if class_map.size else 1
        class_weights = class_balance_weights(np.bincount(class_map.ravel(), minlength=n))
    class_weights = np.asarray(class_weights, dtype=np.float32)
    weights = class_weights[np.clip(class_map, 0, len(class_weights) - 1)].astype(np.float32)
    dist = instance_distances(instance_map)
    if len(dist) >= 2:
        two = np.partition(dist, 1, axis=0)[:2]  # d1, d2 per pixel, without a full sort
        border = w0 * np.exp(-((two[0] + two[1]) ** 2) / (2.0 * sigma**2))
        weights += np.where(instance_map == 0, border, 0.0).astype(np.float32)
    return weights

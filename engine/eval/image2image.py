"""Scoring image-to-image models against their paired targets (``visionbench eval`` of kind image2image).

Per image, on uint8 RGB pictures at the image's full size: ``l1`` (mean absolute difference, 0..1),
``psnr`` (dB, peak 255) and ``ssim`` (scikit-image's ``structural_similarity``, colour channels
averaged); each the mean over images. The same three for two baselines:
- ``identity``: output = input, where that means something (noisy -> clean, gray -> colour,
  L* with zero a*b*); None for masks and edges;
- ``mean_image``: output = the mean training target (resized to each image), what a model that
  ignores its input would do at best under L2.
A predictor offers ``pairs(project, split) -> [PairSample]``, ``translate_input(a)`` and ``identity(a)``.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from engine.annotations.errors import BadInput
from engine.jobs.events import Log, Progress


def picture_metrics(output: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """{"l1", "psnr", "ssim"} of two uint8 RGB pictures of one size."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if output.shape != target.shape:
        raise ValueError(f"output {output.shape} and target {target.shape} differ in size")
    same = np.array_equal(output, target)
    side = min(target.shape[:2])
    win = min(7, side if side % 2 else side - 1)
    return {"l1": float(np.mean(np.abs(output.astype(np.float64) - target.astype(np.float64)))) / 255.0,
            "psnr": 100.0 if same else float(peak_signal_noise_ratio(target, output, data_range=255)),
            "ssim": float(structural_similarity(target, output, data_range=255, channel_axis=2, win_size=win))}


def _mean(rows: list[dict]) -> dict | None:
    return {k: float(np.mean([r[k] for r in rows])) for k in ("l1", "psnr", "ssim")} if rows else None


def mean_target(samples) -> np.ndarray | None:
    """The mean of the targets, at the size of the first (float32 [H, W, 3])."""
    if not samples:
        return None
    h, w = samples[0].photo.shape[:2]
    acc = np.zeros((h, w, 3), np.float64)
    for s in samples:
        p = s.photo if s.photo.shape[:2] == (h, w) else cv2.resize(s.photo, (w, h), interpolation=cv2.INTER_AREA)
        acc += p
    return (acc / len(samples)).astype(np.float32)


def evaluate_pairs(predictor, project, split: str | None, on_event: Callable = lambda e: None,
                   token=None) -> dict:
    """{"l1", "psnr", "ssim", "identity": {...} | None, "mean_image": {...} | None, "pairs"}."""
    if not all(hasattr(predictor, a) for a in ("pairs", "translate_input", "identity")):
        raise BadInput(str(project), "pairs", "this image-to-image model has no paired targets to be scored against")
    samples = predictor.pairs(project, split)
    if not samples:
        raise BadInput(str(project), "split", f"no pairs in split {split!r}")
    try:
        train = predictor.pairs(project, "train") if split != "train" else samples
    except BadInput:
        train = []
    mean = mean_target(train)
    if not train:
        on_event(Log("no training pairs: no mean-image baseline", level="warning"))
    model_rows, identity_rows, mean_rows = [], [], []
    for n, s in enumerate(samples, start=1):
        if token is not None:
            token.raise_if_cancelled()
        model_rows.append(picture_metrics(predictor.translate_input(s.a), s.photo))
        same = predictor.identity(s.a)
        if same is not None:
            identity_rows.append(picture_metrics(same, s.photo))
        if mean is not None:
            h, w = s.photo.shape[:2]
            m = mean if mean.shape[:2] == (h, w) else cv2.resize(mean, (w, h), interpolation=cv2.INTER_LINEAR)
            mean_rows.append(picture_metrics(np.clip(np.round(m), 0, 255).astype(np.uint8), s.photo))
        on_event(Progress(n, len(samples), s.key))
    return {**_mean(model_rows), "pairs": getattr(predictor, "kind", None), "images": len(samples),
            "identity": _mean(identity_rows), "mean_image": _mean(mean_rows)}

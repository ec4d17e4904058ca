"""Tiny R-CNN settings and projects shared by the R-CNN tests (64-128 px, a few steps)."""
from __future__ import annotations

from pathlib import Path

from engine.demo.shapes import build_shapes

# Small enough for a training step in well under a second on one CPU core.
TINY = {
    "device": "cpu", "pretrained": False, "fpn_channels": 16, "min_size": 64, "max_size": 96,
    "anchor_sizes": [[16], [32], [64], [128]], "representation_size": 32, "mask_head_channels": 8,
    "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 50,
    "rpn_pre_nms_top_n_train": 100, "rpn_post_nms_top_n_train": 50,
    "box_batch_size_per_image": 32, "rpn_batch_size_per_image": 32,
    "batch_size": 2, "epochs": 1, "warmup_steps": 1, "lr": 0.005,
}


def tiny_shapes(folder: Path, n: int = 6, seed: int = 3) -> Path:
    """A shapes project of ``n`` 128 px images (Box + MaskRLE per object, ~20% in val)."""
    return build_shapes(folder, n_images=n, seed=seed)

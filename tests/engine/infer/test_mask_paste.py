"""Our region-only mask paste equals torchvision's full-image paste thresholded, pixel for pixel."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection.roi_heads import paste_masks_in_image

from engine.infer.rcnn_predictor import MASK_THRESHOLD, paste_masks_bool


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 6), h=st.integers(1, 60), w=st.integers(1, 60))
def test_paste_masks_bool_equals_torchvision(seed, n, h, w):
    rng = np.random.default_rng(seed)
    probs = torch.from_numpy(rng.uniform(0, 1, (n, 1, 28, 28)).astype(np.float32))
    # boxes as a detector gives them: clipped to the image, touching its edges, degenerate
    x0, y0 = rng.uniform(0, w, n), rng.uniform(0, h, n)
    x1, y1 = np.minimum(x0 + rng.uniform(0, 50, n), w), np.minimum(y0 + rng.uniform(0, 50, n), h)
    boxes = torch.from_numpy(np.stack([x0, y0, x1, y1], 1).astype(np.float32))
    ours = paste_masks_bool(probs, boxes, (h, w), MASK_THRESHOLD)
    assert ours.dtype == torch.bool and ours.shape == (n, h, w)
    if n:
        theirs = paste_masks_in_image(probs, boxes, (h, w))[:, 0] > MASK_THRESHOLD
        assert torch.equal(ours, theirs)


def test_paste_masks_bool_boxes_outside_the_image_give_empty_masks():
    # torchvision's own paste raises on these; ours leaves the masks empty
    probs = torch.ones((2, 1, 28, 28))
    boxes = torch.tensor([[100.0, 100.0, 120.0, 130.0], [-50.0, -40.0, -10.0, -5.0]])
    out = paste_masks_bool(probs, boxes, (32, 48), MASK_THRESHOLD)
    assert out.shape == (2, 32, 48) and not out.any()

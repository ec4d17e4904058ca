"""Overlap-tile inference (U-Net paper, Fig. 2): segment images of any size tile by tile.

The image is mirror-padded by ``margin`` pixels on every side; each output tile of
``tile`` x ``tile`` pixels is predicted from an input window that extends ``margin`` pixels
beyond it, and only the tile's centre is kept. As long as ``margin`` covers the network's
receptive-field radius and tile/margin are multiples of the network's down-sampling factor,
the result does not depend on the tiling: it equals one pass over the whole padded image.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def mirror_pad(image: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Mirror-pad a [H, W, ...] array (numpy repeats the reflection when a pad exceeds the size)."""
    pads = [(top, bottom), (left, right)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pads, mode="reflect" if min(image.shape[:2]) > 1 else "edge")


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def overlap_tile_predict(forward: Callable[[torch.Tensor], torch.Tensor], image: np.ndarray, tile: int = 256,
                         margin: int = 32, multiple: int = 1, device: torch.device | str = "cpu",
                         should_stop: Callable[[], None] | None = None) -> np.ndarray:
    """Run ``forward`` over ``image`` tile by tile.

    forward: float [1, 3, h, w] (0..1) -> [1, K, h, w] (logits or probabilities).
    image: uint8 [H, W, 3]. tile, margin: pixels, rounded up to ``multiple`` (the network's
    down-sampling factor) so every window sits on the same pooling grid.
    Returns float32 [K, H, W]. should_stop is called between tiles (a cancel point).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be [H, W, 3], got shape {image.shape}")
    h, w = image.shape[:2]
    tile = _round_up(max(int(tile), 1), multiple)
    margin = _round_up(max(int(margin), 0), multiple)
    # Tiles never exceed the (rounded) image, so small images take one pass.
    tile_h = min(tile, _round_up(h, multiple))
    tile_w = min(tile, _round_up(w, multiple))
    out_h, out_w = _round_up(h, tile_h), _round_up(w, tile_w)
    padded = mirror_pad(image, margin, margin + out_h - h, margin, margin + out_w - w)
    x_all = torch.from_numpy(np.ascontiguousarray(padded)).permute(2, 0, 1).float().div_(255.0)
    result: np.ndarray | None = None
    with torch.inference_mode():
        for y0 in range(0, out_h, tile_h):
            for x0 in range(0, out_w, tile_w):
                if should_stop is not None:
                    should_stop()
                window = x_all[:, y0:y0 + tile_h + 2 * margin, x0:x0 + tile_w + 2 * margin]
                y = forward(window.unsqueeze(0).to(device))[0].float()
                y = y[:, margin:margin + tile_h, margin:margin + tile_w].cpu().numpy()
                if result is None:
                    result = np.empty((y.shape[0], out_h, out_w), np.float32)
                result[:, y0:y0 + tile_h, x0:x0 + tile_w] = y
    assert result is not None
    return np.ascontiguousarray(result[:, :h, :w])


def whole_image_predict(forward: Callable[[torch.Tensor], torch.Tensor], image: np.ndarray, margin: int = 32,
                        multiple: int = 1, device: torch.device | str = "cpu") -> np.ndarray:
    """One pass over the whole mirror-padded image; the reference tiling must reproduce. [K, H, W]."""
    h, w = image.shape[:2]
    return overlap_tile_predict(forward, image, tile=max(_round_up(h, multiple), _round_up(w, multiple)),
                                margin=margin, multiple=multiple, device=device)

"""Overlap-tile inference equals one pass over the whole image where both fit."""
import numpy as np
import torch

from engine.infer.overlap_tile import mirror_pad, overlap_tile_predict, whole_image_predict
from engine.models.unet import UNet


def test_tiles_reproduce_the_whole_image_output():
    torch.manual_seed(0)
    model = UNet(num_classes=2, depth=2, width=4).eval()
    # Non-trivial batch-norm statistics so the comparison is not between near-constant maps.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)  # not a multiple of the tile
    whole = whole_image_predict(model, image, margin=32, multiple=4)
    tiled = overlap_tile_predict(model, image, tile=24, margin=32, multiple=4)
    assert whole.shape == tiled.shape == (3, 70, 90)
    assert whole.std() > 1e-3
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_too_small_margin_changes_the_result():
    """The check above is meaningful: without enough context the tiles disagree."""
    torch.manual_seed(0)
    model = UNet(num_classes=1, depth=2, width=4).eval()
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole = whole_image_predict(model, image, margin=32, multiple=4)
    tiled = overlap_tile_predict(model, image, tile=16, margin=0, multiple=4)
    assert np.abs(tiled - whole).max() > 1e-3


def test_mirror_padding_reflects_and_handles_tiny_images():
    a = np.arange(12).reshape(3, 4)
    p = mirror_pad(a, 1, 2, 1, 0)
    assert p.shape == (6, 5)
    np.testing.assert_array_equal(p[0, 1:], a[1])  # reflection without repeating the edge
    big = mirror_pad(np.zeros((2, 2, 3), np.uint8), 10, 10, 10, 10)
    assert big.shape == (22, 22, 3)


def test_calls_stop_between_tiles():
    calls = []
    model = UNet(num_classes=1, depth=1, width=2).eval()
    overlap_tile_predict(model, np.zeros((20, 20, 3), np.uint8), tile=8, margin=2, multiple=2,
                         should_stop=lambda: calls.append(1))
    assert len(calls) == 9

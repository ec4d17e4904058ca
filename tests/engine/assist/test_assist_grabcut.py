import numpy as np
import pytest

from engine.annotations.errors import BadInput
from engine.assist import grabcut_mask


def square_on_noise(h=240, w=320):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 110, (h, w, 3), dtype=np.uint8)
    img[80:160, 120:220] = (230, 200, 40)
    truth = np.zeros((h, w), bool)
    truth[80:160, 120:220] = True
    return img, truth


def test_grabcut_finds_the_square():
    img, truth = square_on_noise()
    m = grabcut_mask(img, (105, 65, 235, 175))
    assert m.shape == truth.shape and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
    iou = (m.astype(bool) & truth).sum() / (m.astype(bool) | truth).sum()
    assert iou > 0.8
    assert not m[:60].any()  # nothing outside the box


def test_grabcut_box_at_the_border_and_tiny_box():
    img, truth = square_on_noise()
    m = grabcut_mask(img, (-20, -20, 400, 300))  # clipped to the image; covers all
    assert m.shape == truth.shape
    assert grabcut_mask(img, (10, 10, 11, 11)).sum() == 0


def test_grabcut_rejects_non_rgb():
    with pytest.raises(BadInput):
        grabcut_mask(np.zeros((10, 10), np.uint8), (0, 0, 5, 5))

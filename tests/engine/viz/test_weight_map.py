"""The U-Net weight map equals a brute-force evaluation of the paper's formula."""
import numpy as np
import pytest

from engine.viz.weight_map import class_balance_weights, unet_weight_map


def brute_force(class_map, instance_map, class_weights, w0, sigma):
    h, w = class_map.shape
    ids = [i for i in np.unique(instance_map) if i != 0]
    pixels = {i: np.argwhere(instance_map == i) for i in ids}
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            out[y, x] = class_weights[class_map[y, x]]
            if instance_map[y, x] != 0 or len(ids) < 2:
                continue
            d = sorted(float(np.sqrt(((p - (y, x)) ** 2).sum(axis=1)).min()) for p in pixels.values())
            out[y, x] += w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2))
    return out


def small_scene():
    inst = np.zeros((14, 16), np.int32)
    inst[2:6, 2:6] = 1           # a square
    inst[2:7, 8:10] = 2          # a bar close to it
    inst[10:13, 3:14] = 3        # a strip below
    cls = np.where(inst == 3, 2, (inst > 0).astype(np.int32)).astype(np.uint8)
    return cls, inst


def test_weight_map_matches_brute_force_formula():
    cls, inst = small_scene()
    weights = np.array([0.6, 2.0, 3.0], np.float32)
    got = unet_weight_map(cls, inst, weights, w0=10.0, sigma=5.0)
    want = brute_force(cls, inst, weights, 10.0, 5.0)
    assert got.shape == cls.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # The border term peaks in the narrow gap between the two close objects.
    assert got[3, 7] > got[8, 0] + 3.0


def test_single_object_has_no_border_term():
    cls, inst = small_scene()
    inst[inst > 1] = 0
    cls[inst == 0] = 0
    got = unet_weight_map(cls, inst, np.array([1.0, 5.0], np.float32))
    assert set(np.unique(got)) == {1.0, 5.0}


def test_class_balance_weights_are_inverse_frequency_with_mean_one():
    counts = np.array([900, 100, 0])
    w = class_balance_weights(counts)
    assert w[2] == 1.0  # absent class
    assert w[1] / w[0] == pytest.approx(9.0)
    assert (counts[:2] * w[:2]).sum() / counts[:2].sum() == pytest.approx(1.0)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="differ in shape"):
        unet_weight_map(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.int32))

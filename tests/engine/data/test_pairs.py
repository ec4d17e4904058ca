"""Pairs derived inside a project: edges, gray, Lab, degradations, masks; what cannot make a pair is named."""
import cv2
import numpy as np
import pytest

from engine.annotations.errors import BadInput
from engine.annotations.formats.pairs import target_path
from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation
from engine.annotations.store import ProjectStore
from engine.data.pairs import (PairDataset, blur, canny_edges, decode_output, encode_pair, gray, identity_output,
                               lab_to_rgb, load_pairs, rgb_to_lab)


def _square(size=64, colour=(200, 40, 40)):
    img = np.full((size, size, 3), 30, np.uint8)
    img[16:48, 16:48] = colour
    return img


def test_canny_outlines_a_square_and_nothing_else():
    edges = canny_edges(_square())
    ys, xs = np.nonzero(edges)
    assert len(ys) > 100  # the four sides
    assert ys.min() >= 14 and ys.max() <= 49 and xs.min() >= 14 and xs.max() <= 49
    assert edges[20:44, 20:44].sum() == 0 and edges[:10].sum() == 0  # flat areas carry no edges


def test_gray_is_the_luma_of_the_photo():
    img = _square()
    expected = np.round(0.299 * 200 + 0.587 * 40 + 0.114 * 40)
    assert abs(int(gray(img)[32, 32]) - expected) <= 1
    assert gray(img)[0, 0] == 30


def test_lab_round_trip_is_within_one_level_of_8_bit():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    img[0, :8] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255],
                  [255, 0, 255]]
    back = lab_to_rgb(rgb_to_lab(img))
    assert np.abs(back.astype(int) - img.astype(int)).max() <= 1


def test_colorization_splits_a_photo_into_lightness_in_and_colour_out_and_back():
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x, y = encode_pair("colorize", gray(img), img)
    assert x.shape == (1, 32, 32) and y.shape == (2, 32, 32)
    assert x.abs().max() <= 1.0 and y.abs().max() <= 1.0
    assert np.abs(decode_output("colorize", x, y).astype(int) - img.astype(int)).max() <= 1
    # the gray baseline: the same lightness with no colour
    grey = identity_output("colorize", gray(img))
    assert np.abs(rgb_to_lab(grey)[:, :, 1:]).max() < 1.0


def test_blur_smooths_and_noise_is_fresh_at_every_draw_but_fixed_for_validation(tmp_path):
    img = _square()
    assert blur(img, 2.0)[16, 32, 0] < 200  # the edge is spread
    samples = _project_pairs(tmp_path, "denoise")
    again = _project_pairs(tmp_path, "denoise")
    assert np.array_equal(samples[0].a, again[0].a)  # validation inputs are the same in every run
    ds = PairDataset(samples, "denoise", {"noise_sigma": 25.0, "hflip": False}, 64, epoch_size=2 * len(samples))
    first = ds[0][0].numpy()
    assert not np.array_equal(first, ds[len(samples)][0].numpy())  # a repeat of the pair in the epoch
    ds.set_epoch(1)
    again = ds[0][0].numpy()
    assert not np.array_equal(first, again)  # the next epoch
    assert np.array_equal(again, ds[0][0].numpy())  # an item's draws depend on (seed, epoch, index) alone
    assert np.array_equal(ds[0][1].numpy(), ds[len(samples)][1].numpy())  # the target stays


def _project(tmp_path, gray_photos=False):
    store = ProjectStore.create(tmp_path / "p.vbproj")
    cat = store.add_category("square", "#ff0000")
    for k in range(3):
        img = _square(colour=(90, 90, 90) if gray_photos else (200, 40 + 60 * k, 40))
        f = tmp_path / "img" / f"s{k}.png"
        f.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(f), img[:, :, ::-1])
        rec = store.add_image(f, 64, 64, split="val" if k == 2 else "train")
        if k < 2:
            m = np.zeros((64, 64), np.uint8)
            m[16:48, 16:48] = 1
            store.add_annotations([Annotation(rec.id, cat.id, encode_mask(m))])
    store.close()
    return tmp_path / "p.vbproj"


def _project_pairs(tmp_path, pairs, split="train", **kw):
    project = tmp_path / "p.vbproj"
    if not project.exists():
        _project(tmp_path)
    return load_pairs(project, pairs, split, {"noise_sigma": 25.0, "blur_sigma": 2.0}, **kw)


def test_labels_to_photo_paints_the_masks_in_their_category_colours_and_skips_unlabelled(tmp_path):
    _project(tmp_path)
    warnings = []
    train = load_pairs(tmp_path / "p.vbproj", "labels2photo", "train", {}, warn=warnings.append)
    assert len(train) == 2
    assert train[0].a[32, 32].tolist() == [255, 0, 0] and train[0].a[0, 0].tolist() == [0, 0, 0]
    with pytest.raises(BadInput, match="no ground-truth masks"):
        load_pairs(tmp_path / "p.vbproj", "labels2photo", "val", {})


def test_stored_targets_must_have_the_size_of_their_image(tmp_path):
    project = _project(tmp_path)
    with pytest.raises(BadInput) as no_target:
        load_pairs(project, "targets", "train", {})
    assert "s0.png" in str(no_target.value) and "target" in str(no_target.value)
    t = target_path(tmp_path / "img" / "s0.png")
    t.parent.mkdir()
    cv2.imwrite(str(t), np.zeros((32, 64, 3), np.uint8))
    with pytest.raises(BadInput) as wrong:
        load_pairs(project, "targets", "train", {})
    assert str(t) in str(wrong.value) and "64x32" in str(wrong.value)


def test_colorization_refuses_a_gray_target_naming_the_file(tmp_path):
    project = _project(tmp_path, gray_photos=True)
    with pytest.raises(BadInput) as exc:
        load_pairs(project, "colorize", "train", {})
    assert "s0.png" in str(exc.value) and "gray" in str(exc.value)

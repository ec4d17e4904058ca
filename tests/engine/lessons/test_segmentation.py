"""Skips sharpen an FCN's stride-32 prediction; the lesson finds a mask for any image."""
import numpy as np
import pytest
import torch

from engine.lessons.base import make_input
from engine.lessons.segmentation import fit_fcn, lesson_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _disc_image():
    h, w = 128, 160
    yy, xx = np.mgrid[0:h, 0:w]
    mask = (((yy - 60) ** 2 + (xx - 70) ** 2) < 35 ** 2).astype(np.uint8)
    img = np.where(mask[..., None] > 0, np.array([220, 120, 40], np.uint8), np.array([30, 60, 90], np.uint8))
    return img.astype(np.uint8), mask


def test_fcn_8s_fits_a_mask_better_than_fcn_32s():
    from engine.models.backbones import efficientnet_lite0, preprocess

    img, mask = _disc_image()
    with torch.no_grad():
        feats = efficientnet_lite0(pretrained=True).features(
            preprocess(torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255.0))
    _, iou32 = fit_fcn(feats, mask, ("c5",))
    prob8, iou8 = fit_fcn(feats, mask, ("c5", "c4", "c3"))
    assert prob8.shape == mask.shape
    assert iou8 > iou32 and iou8 > 0.8


def test_a_box_without_a_mask_gets_one_by_grabcut_and_an_empty_image_a_central_one():
    img, mask = _disc_image()
    inst, notes = lesson_mask(make_input(img, boxes=[[30, 20, 110, 100]], names=["disc"]))
    overlap = ((inst == 1) & (mask > 0)).sum() / (mask > 0).sum()
    assert overlap > 0.8 and "GrabCut" in notes[0]
    inst, notes = lesson_mask(make_input(img))
    assert inst.any() and "central box" in notes[0]

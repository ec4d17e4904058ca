"""IoU, regression targets both ways and anchors agree with torchvision's own code."""
import math

import numpy as np
import torch
from torchvision.models.detection._utils import BoxCoder, Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from engine.lessons.localisation import (SIZES, RATIOS, STRIDE, all_anchors, anchors_at, assign, decode, encode,
                                         iou)


def test_iou_of_two_boxes():
    assert abs(iou((0, 0, 10, 10), (5, 0, 15, 10)) - 50 / 150) < 1e-6
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_a_quarter_width_too_far_left_is_the_target_0_25_0_0_0():
    proposal = (100, 50, 200, 150)  # 100 px wide
    truth = (125, 50, 225, 150)  # 25 px to the right
    assert encode(proposal, truth) == (0.25, 0.0, 0.0, 0.0)
    assert decode(proposal, (0.25, 0, 0, 0)) == truth


def test_targets_both_ways_match_torchvisions_box_coder():
    coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    proposal, truth = (30.0, 40.0, 90.0, 160.0), (20.0, 60.0, 120.0, 140.0)
    expected = coder.encode_single(torch.tensor([truth]), torch.tensor([proposal]))[0].tolist()
    np.testing.assert_allclose(encode(proposal, truth), expected, rtol=1e-5)
    assert encode(proposal, truth)[2] == math.log(100 / 60)
    np.testing.assert_allclose(decode(proposal, encode(proposal, truth)), truth, atol=1e-9)
    decoded = coder.decode_single(torch.tensor([expected]), torch.tensor([proposal]))[0].tolist()
    np.testing.assert_allclose(decode(proposal, expected), decoded, atol=1e-3)


def test_anchors_at_a_cell_are_torchvisions():
    gen = AnchorGenerator(sizes=(SIZES,), aspect_ratios=(RATIOS,))
    h, w = 96, 128
    images = ImageList(torch.zeros(1, 3, h, w), [(h, w)])
    feature = torch.zeros(1, 1, h // STRIDE, w // STRIDE)
    theirs = gen(images, [feature])[0].view(h // STRIDE, w // STRIDE, 9, 4).numpy()
    np.testing.assert_array_equal(anchors_at(2, 5), theirs[2, 5])
    np.testing.assert_array_equal(all_anchors((h, w)), theirs.reshape(-1, 4))


def test_positive_at_0_7_negative_below_0_3_as_torchvisions_matcher():
    anchors = all_anchors((160, 192))
    truths = np.array([[40, 30, 110, 120], [120, 60, 180, 150]], np.float32)
    labels = assign(anchors, truths)
    from torchvision.ops import box_iou

    matched = Matcher(0.7, 0.3, allow_low_quality_matches=True)(box_iou(torch.from_numpy(truths),
                                                                        torch.from_numpy(anchors)))
    expected = np.where(matched.numpy() >= 0, 1, np.where(matched.numpy() == -1, 0, -1))
    np.testing.assert_array_equal(labels, expected)
    assert (labels == 1).sum() >= 2 and (labels == 0).sum() > (labels == 1).sum()

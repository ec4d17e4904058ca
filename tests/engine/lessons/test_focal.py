"""Focal loss at gamma = 0 is cross-entropy; at every gamma it equals torchvision's; easy negatives
lose their share of the loss as gamma grows."""
import numpy as np
import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from engine.lessons.focal import PRIOR, cross_entropy, focal_loss, label_candidates, loss_shares
from engine.lessons.localisation import all_anchors


def test_focal_loss_at_gamma_0_is_cross_entropy():
    p = np.array([0.01, 0.3, 0.5, 0.9, 0.999])
    for y in (np.zeros(5), np.ones(5)):
        np.testing.assert_allclose(focal_loss(p, y, 0.0), cross_entropy(p, y), rtol=1e-12)
    bce = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.ones(5, dtype=torch.float64),
                                                   reduction="none")
    np.testing.assert_allclose(focal_loss(p, np.ones(5), 0.0), bce.numpy(), rtol=1e-9)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
def test_focal_loss_equals_torchvisions_sigmoid_focal_loss_without_alpha(gamma):
    logits = torch.linspace(-6, 6, 25, dtype=torch.float64)
    y = (torch.arange(25) % 3 == 0).double()
    theirs = sigmoid_focal_loss(logits, y, alpha=-1, gamma=gamma, reduction="none")
    ours = focal_loss(torch.sigmoid(logits).numpy(), y.numpy(), gamma)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-7)


def test_easy_background_dominates_cross_entropy_and_fades_with_gamma():
    # a detector's typical candidates: 1000 background boxes it already finds easy (p = 0.05) and
    # 10 objects it is unsure of (p = 0.6)
    p = np.r_[np.full(1000, 0.05), np.full(10, 0.6)]
    y = np.r_[np.zeros(1000), np.ones(10)]
    shares = [loss_shares(p, y, g) for g in (0, 1, 2, 5)]
    for s in shares:
        assert abs(s["easy_negatives"] + s["hard_negatives"] + s["positives"] - 1) < 1e-9
    easy = [s["easy_negatives"] for s in shares]
    assert easy[0] > 0.9  # cross-entropy: the easy background is 90 % of the loss
    assert easy == sorted(easy, reverse=True) and easy[2] < 0.2  # gamma = 2: the objects dominate


def test_candidates_overlapping_an_object_by_half_are_positives():
    anchors = all_anchors((256, 256), sizes=(32, 64, 128, 256))
    labels = label_candidates(anchors, np.array([[64, 64, 192, 192]], np.float32))
    assert 0 < labels.sum() < 0.05 * len(labels)
    assert not label_candidates(anchors, np.zeros((0, 4))).any()
    assert PRIOR == 0.01

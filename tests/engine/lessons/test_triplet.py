"""The triplet lesson's loss and gradients are torch's."""
import numpy as np
import torch

from engine.lessons.triplet import descend, negative_kind, triplet_gradients, triplet_loss


def test_triplet_loss_and_gradients_match_torch():
    a, p, n = np.array([-0.6, 0.0]), np.array([0.6, 0.55]), np.array([0.2, -0.45])
    ta, tp, tn = (torch.tensor(v, requires_grad=True) for v in (a, p, n))
    loss = torch.nn.functional.triplet_margin_loss(ta[None], tp[None], tn[None], margin=0.5, eps=0.0)
    loss.backward()
    assert abs(triplet_loss(a, p, n) - float(loss.detach())) < 1e-9
    for ours, t in zip(triplet_gradients(a, p, n), (ta, tp, tn)):
        np.testing.assert_allclose(ours, t.grad.numpy(), atol=1e-9)


def test_hard_semi_hard_and_easy_negatives():
    a, p = (0.0, 0.0), (1.0, 0.0)
    assert negative_kind(a, p, (0.5, 0.0)) == "hard"
    assert negative_kind(a, p, (1.3, 0.0)) == "semi-hard"
    assert negative_kind(a, p, (2.0, 0.0)) == "easy" and triplet_loss(a, p, (2.0, 0.0)) == 0.0
    assert all(np.linalg.norm(g) == 0 for g in triplet_gradients(a, p, (2.0, 0.0)))


def test_gradient_steps_lower_the_loss_to_zero():
    path = descend((-0.6, 0.0), (0.6, 0.55), (0.2, -0.45), steps=5)
    losses = [triplet_loss(*pt) for pt in path]
    assert losses == sorted(losses, reverse=True) and losses[-1] == 0.0

"""The three Siamese losses and the two triplet miners, checked against hand-computed values."""
import itertools
import math

import pytest
import torch

from engine.models.siamese import (batch_hard_mining, binary_pair_loss, contrastive_loss, pairwise_distances,
                                   semi_hard_mining, triplet_loss)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# four points on a line: identity 0 at x = 0 and 1, identity 1 at x = 1.5 and 4
LINE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.5, 0.0], [4.0, 0.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_pairwise_distances_are_euclidean_with_zero_diagonal():
    d = pairwise_distances(LINE)
    assert torch.allclose(d, (LINE[:, None, :] - LINE[None, :, :]).norm(dim=2), atol=1e-5)
    assert (d.diagonal() == 0).all()


def test_batch_hard_triplet_loss_by_hand():
    # anchor 0: hardest positive 1 (d=1), hardest negative 2 (d=1.5): max(0, 1 - 1.5 + 1) = 0.5
    # anchor 1: positive 0 (d=1), negative 2 (d=0.5): 1 - 0.5 + 1 = 1.5
    # anchor 2: positive 3 (d=2.5), negative 1 (d=0.5): 2.5 - 0.5 + 1 = 3.0
    # anchor 3: positive 2 (d=2.5), negative 1 (d=3): 2.5 - 3 + 1 = 0.5
    loss, info = triplet_loss(LINE, LABELS, margin=1.0, mining="batch_hard")
    assert loss.item() == pytest.approx((0.5 + 1.5 + 3.0 + 0.5) / 4, abs=1e-5)
    assert info["positives"].tolist() == [1, 0, 3, 2]
    assert info["negatives"].tolist() == [2, 2, 1, 1]


def test_semi_hard_triplet_loss_by_hand():
    # positive pairs (a, p): (0,1) d=1: negatives of 0 at 1.5, 4 -> semi-hard: nearest farther than 1 = 1.5
    # (1,0) d=1: negatives of 1 at 0.5, 3 -> 3;  (2,3) d=2.5: negatives of 2 at 1.5, 0.5 -> none farther:
    # the farthest, 1.5;  (3,2) d=2.5: negatives of 3 at 4, 3 -> 3
    loss, info = triplet_loss(LINE, LABELS, margin=1.0, mining="semi_hard")
    expected = [max(0, 1 - 1.5 + 1), max(0, 1 - 3 + 1), max(0, 2.5 - 1.5 + 1), max(0, 2.5 - 3 + 1)]
    assert loss.item() == pytest.approx(sum(expected) / 4, abs=1e-5)
    assert list(zip(info["anchors"].tolist(), info["negatives"].tolist())) == [(0, 2), (1, 3), (2, 0), (3, 1)]


def test_contrastive_loss_by_hand():
    # pairs: (0,1) same d=1 -> 0.5; (2,3) same d=2.5 -> 3.125; different pairs with margin 2:
    # (0,2) d=1.5 -> 0.5*0.25; (0,3) d=4 -> 0; (1,2) d=0.5 -> 0.5*2.25; (1,3) d=3 -> 0
    expected = (0.5 + 3.125 + 0.125 + 0 + 1.125 + 0) / 6
    assert contrastive_loss(LINE, LABELS, margin=2.0).item() == pytest.approx(expected, abs=1e-5)


def test_binary_pair_loss_weighs_same_and_different_halves_equally():
    logits = torch.tensor([2.0, -1.0, 0.0])
    same = torch.tensor([True, False, False])
    bce = lambda z, y: -(y * math.log(1 / (1 + math.exp(-z))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-z))))  # noqa: E731
    expected = 0.5 * bce(2.0, 1) + 0.5 * (bce(-1.0, 0) + bce(0.0, 0)) / 2
    assert binary_pair_loss(logits, same).item() == pytest.approx(expected, abs=1e-6)


def test_batch_hard_mining_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(24, 5, generator=g)
    labels = torch.arange(6).repeat_interleave(4)
    d = pairwise_distances(emb)
    anchors, pos, neg = batch_hard_mining(d, labels)
    for a, p, n in zip(anchors.tolist(), pos.tolist(), neg.tolist()):
        positives = [j for j in range(24) if labels[j] == labels[a] and j != a]
        negatives = [j for j in range(24) if labels[j] != labels[a]]
        assert d[a, p] == max(d[a, j] for j in positives)
        assert d[a, n] == min(d[a, j] for j in negatives)
    assert anchors.tolist() == list(range(24))


def test_semi_hard_mining_matches_brute_force():
    g = torch.Generator().manual_seed(2)
    emb = torch.randn(12, 3, generator=g)
    labels = torch.arange(4).repeat_interleave(3)
    d = pairwise_distances(emb)
    a_idx, p_idx, n_idx = semi_hard_mining(d, labels)
    pairs = [(a, p) for a, p in itertools.permutations(range(12), 2) if labels[a] == labels[p]]
    assert list(zip(a_idx.tolist(), p_idx.tolist())) == pairs
    for a, p, n in zip(a_idx.tolist(), p_idx.tolist(), n_idx.tolist()):
        negatives = [j for j in range(12) if labels[j] != labels[a]]
        farther = [j for j in negatives if d[a, j] > d[a, p]]
        want = min(farther, key=lambda j: d[a, j]) if farther else max(negatives, key=lambda j: d[a, j])
        assert d[a, n] == d[a, want]


def test_losses_have_finite_gradients_even_for_identical_embeddings():
    emb = torch.zeros(4, 3, requires_grad=True)
    for loss in (triplet_loss(emb, LABELS, 0.3)[0], contrastive_loss(emb, LABELS, 1.0)):
        (grad,) = torch.autograd.grad(loss, emb)
        assert torch.isfinite(grad).all()

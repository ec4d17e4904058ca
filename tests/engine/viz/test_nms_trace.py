"""The teaching NMS stepper keeps exactly what torchvision keeps."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torchvision.ops import batched_nms, nms

from engine.viz.nms_trace import CandidateState, box_iou_one_to_many, iter_nms_steps, nms_trace


def _tv_keep(boxes, scores, labels, iou, score_thr, agnostic, rank_scores=False):
    """torchvision's kept indices (into the unfiltered input), in its output order."""
    active = np.flatnonzero(scores.astype(np.float64) >= score_thr)
    s = scores[active]
    if rank_scores:
        # torchvision's sort is unstable (CPU-dependent tie order). Hand it distinct scores that
        # encode our documented tie rule (score desc, then index) to compare the suppression maths.
        order = np.argsort(-s, kind="stable")
        rank = np.empty(len(s), np.float32)
        rank[order] = np.arange(len(s), 0, -1, dtype=np.float32)
        s = rank
    b = torch.from_numpy(boxes[active])
    st_ = torch.from_numpy(s)
    if agnostic:
        k = nms(b, st_, iou)
    else:
        k = batched_nms(b, st_, torch.from_numpy(labels[active]), iou)
    return active[k.numpy()]


coord = st.one_of(st.integers(0, 40).map(float), st.floats(0, 60, width=32))
box = st.tuples(coord, coord, st.integers(0, 30).map(float), st.integers(0, 30).map(float)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])  # zero width/height allowed (degenerate)
score = st.one_of(st.sampled_from([0.25, 0.5, 0.75, 0.9]), st.floats(0, 1, width=32))


@st.composite
def candidates(draw):
    n = draw(st.integers(0, 40))
    boxes = np.array(draw(st.lists(box, min_size=n, max_size=n)), np.float32).reshape(n, 4)
    scores = np.array(draw(st.lists(score, min_size=n, max_size=n)), np.float32)
    labels = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), np.int64)
    iou = draw(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]) | st.floats(0, 1))
    score_thr = draw(st.sampled_from([0.0, 0.5]))
    return boxes, scores, labels, iou, score_thr


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(candidates(), st.booleans())
def test_kept_set_equals_torchvision_with_ties_broken_by_index(case, agnostic):
    boxes, scores, labels, iou, score_thr = case
    trace = nms_trace(boxes, scores, labels, iou, score_thr, class_agnostic=agnostic)
    expected = _tv_keep(boxes, scores, labels, iou, score_thr, agnostic, rank_scores=True)
    np.testing.assert_array_equal(trace.keep, expected)


@settings(max_examples=120, deadline=None)
@given(candidates(), st.booleans())
def test_kept_set_equals_torchvision_on_raw_scores_when_distinct(case, agnostic):
    boxes, scores, labels, iou, score_thr = case
    _, first = np.unique(scores, return_index=True)
    boxes, scores, labels = boxes[np.sort(first)], scores[np.sort(first)], labels[np.sort(first)]
    trace = nms_trace(boxes, scores, labels, iou, score_thr, class_agnostic=agnostic)
    expected = _tv_keep(boxes, scores, labels, iou, score_thr, agnostic)
    np.testing.assert_array_equal(trace.keep, expected)


def test_many_candidates_use_per_class_path_like_torchvision():
    # > 4000 coordinates: torchvision loops over classes instead of offsetting boxes.
    rng = np.random.default_rng(3)
    n = 1200
    xy = rng.uniform(0, 300, (n, 2)).astype(np.float32)
    wh = rng.uniform(5, 60, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = rng.permutation(n).astype(np.float32) / n  # distinct
    labels = rng.integers(0, 5, n)
    trace = nms_trace(boxes, scores, labels, 0.45)
    np.testing.assert_array_equal(trace.keep, _tv_keep(boxes, scores, labels, 0.45, 0.0, False))


def test_hand_case_steps_tell_the_story():
    boxes = np.array([[0, 0, 10, 10],     # 0 best
                      [1, 0, 11, 10],     # 1 IoU 9/11 with 0 -> suppressed
                      [20, 20, 30, 30],   # 2 far away -> kept
                      [0, 0, 10, 10]],    # 3 same box, other class -> kept (per class)
                     np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    labels = np.array([0, 0, 0, 1])
    trace = nms_trace(boxes, scores, labels, iou_threshold=0.5)
    assert trace.keep.tolist() == [0, 2, 3]
    first = trace.steps[0]
    assert first.kept == 0 and first.label == 0
    assert first.considered.tolist() == [1, 2]  # same class only
    assert first.ious[0] == pytest.approx(9 / 11)
    assert first.suppressed.tolist() == [1]
    assert trace.suppressed_by == {1: 0}
    states = trace.states_after(1)
    assert states.tolist() == [CandidateState.KEPT, CandidateState.SUPPRESSED,
                               CandidateState.PENDING, CandidateState.PENDING]
    agnostic = nms_trace(boxes, scores, labels, iou_threshold=0.5, class_agnostic=True)
    assert agnostic.keep.tolist() == [0, 2]
    assert sorted(agnostic.steps[0].suppressed.tolist()) == [1, 3]


def test_score_threshold_and_iterator_agree():
    boxes = np.array([[0, 0, 10, 10], [30, 30, 40, 40], [0, 0, 9, 9]], np.float32)
    scores = np.array([0.2, 0.9, 0.6], np.float32)
    trace = nms_trace(boxes, scores, None, 0.5, score_threshold=0.5)
    assert trace.below_score.tolist() == [0]
    assert trace.keep.tolist() == [1, 2]
    assert trace.states_after(0)[0] == CandidateState.BELOW_SCORE
    assert [s.kept for s in iter_nms_steps(boxes, scores, None, 0.5, 0.5)] == [1, 2]


def test_iou_helper_and_degenerate_boxes():
    ious = box_iou_one_to_many([0, 0, 10, 10], [[5, 0, 15, 10], [0, 0, 0, 0], [20, 20, 30, 30]])
    assert ious[0] == pytest.approx(1 / 3)
    assert ious[2] == 0.0
    same_point = box_iou_one_to_many([0, 0, 0, 0], [[0, 0, 0, 0]])
    assert np.isnan(same_point[0])  # 0/0, like torchvision: never suppresses
    trace = nms_trace(np.zeros((3, 4), np.float32), np.array([0.3, 0.2, 0.1]), iou_threshold=0.0)
    assert trace.keep.tolist() == [0, 1, 2]


def test_bad_input_gets_a_clear_message():
    with pytest.raises(ValueError, match=r"boxes.*\[N, 4\]"):
        nms_trace(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="scores"):
        nms_trace(np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        nms_trace(np.array([[0, 0, np.nan, 1]]), np.ones(1))
    empty = nms_trace(np.zeros((0, 4)), np.zeros(0))
    assert empty.keep.tolist() == [] and empty.steps == []


def test_threshold_is_compared_in_double_like_torchvision():
    # IoU = 50/150 rounds to 0.33333334f, just above the double 1/3: torchvision suppresses.
    # A float32 comparison (numpy 2's default with a Python float) would keep both.
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms_trace(boxes, scores, None, 1 / 3).keep.tolist() == [0]
    assert _tv_keep(boxes, scores, np.zeros(2, np.int64), 1 / 3, 0.0, True).tolist() == [0]

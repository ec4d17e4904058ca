"""Detection confusion matrix, checked on hand-made cases."""

import numpy as np
import pytest

from engine.eval.confusion import DetectionConfusion, confusion_matrix


def test_hits_mixups_false_alarms_and_misses():
    gt_boxes = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]
    gt_labels = [0, 1, 1]
    det_boxes = [[0, 0, 10, 10],      # class 0 on class 0: hit
                 [20, 20, 30, 31],    # class 0 on class 1: mix-up
                 [70, 70, 80, 80]]    # nothing there: false alarm of class 1
    det_labels = [0, 0, 1]
    m = confusion_matrix(gt_boxes, gt_labels, det_boxes, det_labels, [0.9, 0.8, 0.7],
                         num_classes=2)
    expected = np.array([[1, 0, 0],    # true class 0
                         [1, 0, 1],    # true class 1: one mixed up, one missed
                         [0, 1, 0]])   # background: one false alarm of class 1
    np.testing.assert_array_equal(m, expected)
    assert m.sum(axis=1)[:2].tolist() == [1, 2]  # every GT box counted once


def test_duplicates_become_false_alarms_and_iou_threshold_matters():
    gt_boxes, gt_labels = [[0, 0, 10, 10]], [0]
    det_boxes = [[0, 0, 10, 10], [0, 0, 10, 9]]
    m = confusion_matrix(gt_boxes, gt_labels, det_boxes, [0, 0], [0.6, 0.9], num_classes=1)
    np.testing.assert_array_equal(m, [[1, 0], [1, 0]])
    m = confusion_matrix(gt_boxes, gt_labels, [[5, 0, 15, 10]], [0], [0.9], num_classes=1)
    np.testing.assert_array_equal(m, [[0, 1], [1, 0]])  # IoU 1/3 < 0.5: miss + false alarm
    m = confusion_matrix(gt_boxes, gt_labels, [[5, 0, 15, 10]], [0], [0.9], num_classes=1, iou=0.3)
    np.testing.assert_array_equal(m, [[1, 0], [0, 0]])


def test_score_threshold_and_accumulation():
    conf = DetectionConfusion(["cat", "dog"], score_threshold=0.5)
    conf.update([[0, 0, 10, 10]], [1], [[0, 0, 10, 10]], [1], [0.4])   # ignored det -> miss
    conf.update([[0, 0, 10, 10]], [1], [[0, 0, 10, 10]], [1], [0.6])   # hit
    conf.update(np.zeros((0, 4)), [], [[0, 0, 5, 5]], [0], [0.9])      # false alarm
    assert conf.labels == ["cat", "dog", "background"]
    np.testing.assert_array_equal(conf.matrix, [[0, 0, 0], [0, 1, 1], [1, 0, 0]])
    np.testing.assert_allclose(conf.normalized()[1], [0, 0.5, 0.5])


def test_bad_labels_are_refused_with_a_message():
    with pytest.raises(ValueError, match="det_labels: class indices must be in 0..1"):
        confusion_matrix([[0, 0, 1, 1]], [0], [[0, 0, 1, 1]], [2], [0.9], num_classes=2)

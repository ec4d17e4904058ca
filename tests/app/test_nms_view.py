"""A teacher steps through NMS: the view ends with exactly what nms_trace keeps."""

import numpy as np
import pytest

from app.views.nms_view import NmsStepView
from engine.infer.detections import RawCandidates
from engine.viz.nms_trace import nms_trace


def _clustered_candidates(seed=0):
    """Clusters of jittered boxes around three objects, like a detector's raw output."""
    rng = np.random.default_rng(seed)
    objects = [((30, 30, 90, 100), 0), ((120, 40, 180, 110), 1), ((70, 120, 150, 180), 0)]
    boxes, scores, labels = [], [], []
    for (x1, y1, x2, y2), label in objects:
        for _ in range(6):
            jitter = rng.normal(0, 6, 4)
            boxes.append([x1 + jitter[0], y1 + jitter[1], x2 + jitter[2], y2 + jitter[3]])
            scores.append(rng.uniform(0.3, 0.95))
            labels.append(label if rng.uniform() > 0.2 else 1 - label)
    return RawCandidates(np.array(boxes), np.array(scores), np.array(labels))


@pytest.fixture
def view(qtbot):
    widget = NmsStepView()
    qtbot.addWidget(widget)
    image = np.zeros((200, 220, 3), np.uint8)
    image[..., 1] = np.linspace(40, 120, 220, dtype=np.uint8)[None, :]
    widget.set_data(image, _clustered_candidates(), ["cat", "dog"])
    widget.resize(900, 520)
    return widget


def test_stepping_to_the_end_keeps_what_nms_trace_keeps(view, qtbot):
    from PySide6.QtCore import Qt

    c = _clustered_candidates()
    expected = nms_trace(c.boxes, c.scores, c.labels, 0.5, 0.25).keep.tolist()
    assert view.steps_applied == 0 and not view.back_button.isEnabled()
    clicks = 0
    while view.step_button.isEnabled():
        qtbot.mouseClick(view.step_button, Qt.MouseButton.LeftButton)
        clicks += 1
        assert view.kept_indices() == expected[:clicks]
    assert clicks == len(expected) > 0
    assert view.kept_indices() == expected
    assert "Done" in view.status.text()
    qtbot.mouseClick(view.back_button, Qt.MouseButton.LeftButton)
    assert view.kept_indices() == expected[:-1]
    qtbot.mouseClick(view.reset_button, Qt.MouseButton.LeftButton)
    assert view.kept_indices() == []
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.kept_indices() == expected


def test_sliders_and_class_agnostic_rerun_the_trace_live(view):
    view.run_all()
    before = view.kept_indices()
    view.set_iou_threshold(0.05)  # almost any overlap suppresses
    assert view.iou_label.text() == "IoU > 0.05"
    c = _clustered_candidates()
    fewer = nms_trace(c.boxes, c.scores, c.labels, 0.05, 0.25).keep.tolist()
    assert view.trace.keep.tolist() == fewer
    assert len(fewer) < len(before)
    view.run_all()
    assert view.kept_indices() == fewer
    view.agnostic_box.setChecked(True)
    view.run_all()
    agnostic = nms_trace(c.boxes, c.scores, c.labels, 0.05, 0.25, class_agnostic=True).keep
    assert view.kept_indices() == agnostic.tolist()
    view.set_score_threshold(1.0)  # nothing passes
    assert view.trace.keep.size == 0 and not view.step_button.isEnabled()
    assert "lower the score threshold" in view.status.text()


def test_renders_offscreen_with_tags_and_hidden_low_scores(view, tmp_path):
    view.step()
    hidden = [i for i, item in enumerate(view._box_items) if item is None or not item.isVisible()]
    assert hidden == view.trace.below_score.tolist()
    assert view._tags  # the kept box's name and IoU tags are drawn
    path = tmp_path / "nms_view.png"
    assert view.grab().save(str(path))
    assert path.stat().st_size > 1000


def test_onnx_detector_candidates_step_to_the_detectors_own_result(qtbot, tmp_path):
    """A user's ONNX YOLO: stepping its raw candidates ends where its predict() ends."""
    from tests.engine.infer.test_onnx_yolo import IMAGE, _raw_output, _save_model

    from engine.infer.onnx_yolo import OnnxYoloDetector

    detector = OnnxYoloDetector(_save_model(tmp_path / "yolo.onnx", _raw_output(),
                                            {"names": "{0: 'cat', 1: 'dog'}"}), iou=0.7)
    candidates = detector.raw_candidates(IMAGE)
    widget = NmsStepView()
    qtbot.addWidget(widget)
    widget.set_data(IMAGE, candidates, detector.class_names)
    widget.set_iou_threshold(detector.iou)
    widget.set_score_threshold(detector.conf)
    widget.run_all()
    kept = candidates.boxes[widget.kept_indices()]
    np.testing.assert_allclose(kept, detector.predict(IMAGE).boxes)

"""A teacher opens "inside the R-CNN": heatmap per level, clicks to see anchors, picks a box."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt

from app.jobs_bridge import JobBridge
from app.views.inside_rcnn import InsideRcnnView
from engine.infer.rcnn_predictor import RcnnPredictor
from engine.models.rcnn import build_rcnn
from engine.viz.rpn import RcnnInspection

TINY = {"pretrained": False, "fpn_channels": 8, "min_size": 64, "max_size": 96, "representation_size": 16,
        "anchor_sizes": [[16], [32], [64], [128]], "rpn_pre_nms_top_n_test": 60, "rpn_post_nms_top_n_test": 30}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_rcnn(TINY, 2)


def _image():
    return (np.random.default_rng(0).random((60, 90, 3)) * 255).astype(np.uint8)


@pytest.fixture
def view(qtbot, model):
    widget = InsideRcnnView()
    qtbot.addWidget(widget)
    widget.resize(1000, 600)
    widget.show()
    widget.set_inspection(RcnnInspection(model, _image()))
    return widget


def test_levels_heatmap_and_proposals_are_shown(view):
    assert [view.level_box.itemText(i) for i in range(view.level_box.count())] == ["0", "1", "2", "pool"]
    assert view.heat_item.isVisible()
    peaks = [view.inspection.objectness(n).max() for n in view.inspection.level_names]
    assert view.level_box.currentIndex() == int(np.argmax(peaks))  # opens where objectness peaks
    view.level_box.setCurrentIndex(0)
    # the level-0 heatmap (8 x 12 cells at stride 8 of the 64 x 96 resize) covers the 60 x 90 image
    rect = view.heat_item.mapRectToScene(view.heat_item.boundingRect())
    assert rect.width() == pytest.approx(90, abs=0.5) and rect.height() == pytest.approx(60, abs=0.5)
    after = view.overlay_count()
    assert after == min(20, len(view._proposals["after_nms"]["boxes"])) + 1  # + the picked box
    view.proposal_box.setCurrentIndex(1)  # before the RPN's NMS: the top-k of many more
    assert view.overlay_count() == 20 + 1
    view.heat_check.setChecked(False)
    assert not view.heat_item.isVisible()


def test_clicking_the_image_shows_every_anchor_of_that_cell(view, qtbot):
    view.proposal_box.setCurrentIndex(0)
    base = view.overlay_count()
    target = view.view.mapFromScene(45.0, 30.0)
    qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(target.x(), target.y()))
    assert view.anchor_point == pytest.approx((45.0, 30.0), abs=1.0)
    assert view.overlay_count() == base + 4 * 3  # 4 levels x (1 size x 3 aspect ratios)
    assert "12 over 4 levels" in view.status.text()


def test_picking_a_box_shows_roi_align_against_roi_pool(view):
    view.pick_box([10.0, 8.0, 50.0, 44.0])
    r = view.sampling
    assert r is not None and r.align_out.shape[1:] == (7, 7)
    assert r.align_ys.shape == (7, 2)
    assert "max difference" in view.compare_label.text()
    assert float(view.compare_label.text().rsplit(" ", 1)[1]) < 1e-4
    assert not view.align_label.pixmap().isNull() and not view.pool_label.pixmap().isNull()
    view.sampling_ratio.setValue(3)
    assert view.sampling.align_ys.shape == (7, 3)
    view.box_picker.setCurrentIndex(1)
    np.testing.assert_allclose(view.picked_box, view._proposals["after_nms"]["boxes"][1])


def test_inspect_runs_in_the_background_and_fills_the_view(qtbot, model):
    widget = InsideRcnnView()
    qtbot.addWidget(widget)
    bridge = JobBridge()
    predictor = RcnnPredictor(model, ["a", "b"], device="cpu")
    widget.inspect(bridge, predictor, _image()[:, :, 0])  # gray input is converted by the engine
    qtbot.waitUntil(lambda: widget.inspection is not None, timeout=60000)
    assert widget.inspection.image.shape == (60, 90, 3)
    assert widget.level_box.count() == 4
    assert bridge.shutdown(5.0)

"""YOLO grid view: a checkpoint explained in the background, grid/boxes/responsible cells drawn."""
import numpy as np
import pytest
from PySide6.QtWidgets import QGraphicsRectItem

from app.views.yolo_grid_view import YoloGridView
from engine.models.checkpoint import save_checkpoint
from engine.models.yolo import build_yolo

IMAGE = np.full((96, 128, 3), 60, np.uint8)
IMAGE[20:60, 30:90] = 200
GT = np.array([[30, 20, 90, 60]], np.float64)


@pytest.fixture
def checkpoint(tmp_path):
    config = {"pretrained": False, "input_size": 64, "head_channels": 8}
    state = build_yolo(config, 2).state_dict()
    state["head.6.bias"][[4, 9]] = 2.0  # confidences ~0.88: boxes are drawn
    return save_checkpoint(tmp_path / "grid.ckpt", state,
                           {"family": "yolo", "classes": ["blob", "bar"], "config": config, "metrics": {}})


def test_grid_view_draws_cells_boxes_and_the_responsible_cell(qtbot, checkpoint, tmp_path):
    view = YoloGridView(device="cpu")
    qtbot.addWidget(view)
    view.resize(640, 520)
    view.show()
    with qtbot.waitSignal(view.ready, timeout=60_000):
        view.run(str(checkpoint), IMAGE, GT, ["#e6194b", "#3cb44b"])
    ex = view.explanation
    assert ex.grid == 4 and ex.image_size == (96, 128)
    (resp,) = ex.responsible
    assert (resp.row, resp.col) == (1, 1)  # centre (60, 40) px in 32 x 24 px cells
    rects = [i for i in view.scene.items() if isinstance(i, QGraphicsRectItem)]
    yellow = [r for r in rects if r.pen().color().name() == "#ffd600"]
    assert len(yellow) == 2  # the responsible cell and its predictor's box
    assert yellow[0].rect().width() > 0
    boxes = [r for r in rects if r.zValue() == 3]
    assert len(boxes) == len(ex.boxes_above(view.min_confidence)) > 0
    assert all(abs(b.opacity() - 0.88) < 0.1 for b in boxes)  # opacity = confidence
    view.grab().save(str(tmp_path / "grid.png"))

    view.conf_slider.setValue(95)  # above every confidence: no boxes, the grid stays
    assert not [i for i in view.scene.items() if isinstance(i, QGraphicsRectItem) and i.zValue() == 3]
    assert "4×4 grid" in view.status.text()
    view.class_check.setChecked(False)
    assert not [i for i in view.scene.items() if isinstance(i, QGraphicsRectItem) and i.zValue() == 1]
    assert view.bridge.shutdown(5.0)


def test_a_bad_checkpoint_shows_the_error(qtbot, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_text("nope")
    view = YoloGridView(device="cpu")
    qtbot.addWidget(view)
    job = view.run(str(bad), IMAGE)
    qtbot.waitUntil(lambda: view._job_id is None, timeout=30_000)
    assert job and "bad.ckpt" in view.status.text()
    assert view.bridge.shutdown(5.0)

"""Compare view: detectors side by side on one image, synchronised views, live thresholds, TP/FP/FN.

The detectors are tiny ONNX graphs with a fixed output (so the boxes are known exactly) and a
tiny untrained YOLO checkpoint (so a Visionbench checkpoint runs through the same path).
"""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from app.views.compare_view import CompareView
from engine.eval.coco_eval import match_detections

IMAGE = np.full((64, 64, 3), 90, np.uint8)
IMAGE[8:28, 8:28] = 220
GT_BOXES = np.array([[8, 8, 28, 28], [40, 36, 60, 60]], np.float64)
GT_NAMES = ["cat", "dog"]


def _onnx_detector(path, anchors, names=("cat", "dog")):
    """A 128x128-input raw-layout ONNX "YOLO" whose output is fixed: ``anchors`` are
    (original xyxy box on the 64x64 image, class scores). Scale 2, no letterbox padding."""
    cols = []
    for (x1, y1, x2, y2), scores in anchors:
        cols.append([x1 + x2, y1 + y2, 2 * (x2 - x1), 2 * (y2 - y1), *scores])  # cx, cy, w, h at 2x
    out = np.array(cols, np.float32).T[None]
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 128, 128])
    res = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(out.shape))
    const = helper.make_node("Constant", [], ["fixed"], value=helper.make_tensor(
        "v", TensorProto.FLOAT, out.shape, out.ravel()))
    graph = helper.make_graph([const, helper.make_node("Identity", ["fixed"], ["output0"])], "g", [inp], [res])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(model, {"names": str(dict(enumerate(names))), "task": "detect"})
    onnx.save(model, str(path))
    return str(path)


# A: finds the cat (plus a weaker duplicate, IoU 0.81), calls the dog a cat (FP + miss).
ANCHORS_A = [((8, 8, 28, 28), (0.9, 0.0)), ((8, 10, 28, 30), (0.6, 0.0)), ((40, 36, 60, 60), (0.4, 0.1))]
# B: finds both, plus a low-scoring false alarm.
ANCHORS_B = [((9, 8, 28, 28), (0.8, 0.0)), ((40, 37, 60, 60), (0.0, 0.7)), ((0, 40, 20, 60), (0.0, 0.2))]


@pytest.fixture
def detectors(tmp_path):
    return (_onnx_detector(tmp_path / "a.onnx", ANCHORS_A), _onnx_detector(tmp_path / "b.onnx", ANCHORS_B))


@pytest.fixture
def view(qtbot):
    w = CompareView(device="cpu")
    qtbot.addWidget(w)
    w.resize(900, 520)
    w.show()
    yield w
    assert w.bridge.shutdown(10.0)


def _run(view, qtbot):
    with qtbot.waitSignal(view.ran, timeout=60_000):
        view.run()


def _expected(panel):
    """TP/FP/FN straight from the detector and match_detections, for the panel's thresholds."""
    det = panel.predictor.predict(IMAGE, score_threshold=panel.score_threshold, nms_iou=panel.nms_iou)
    names = [det.class_names[i] for i in det.labels]
    tp, fp, fn = match_detections(GT_BOXES, GT_NAMES, det.boxes, names, det.scores, 0.5)
    return len(det), int(tp.sum()), int(fp.sum()), int(fn.sum())


def test_two_detectors_side_by_side_table_matches_match_detections(view, qtbot, detectors, tmp_path):
    for path in detectors:
        view.add_detector(path)
    view.set_image(IMAGE, GT_BOXES, GT_NAMES)
    for panel in view.panels:
        panel.set_thresholds(score=0.3, iou=0.5)
    _run(view, qtbot)
    rows = view.results()
    assert [r["name"] for r in rows] == ["onnx:a.onnx", "onnx:b.onnx"]
    assert (rows[0]["detections"], rows[0]["tp"], rows[0]["fp"], rows[0]["fn"]) == (2, 1, 1, 1)
    assert (rows[1]["detections"], rows[1]["tp"], rows[1]["fp"], rows[1]["fn"]) == (2, 2, 0, 0)
    for panel, row in zip(view.panels, rows):
        assert (row["detections"], row["tp"], row["fp"], row["fn"]) == _expected(panel)
        assert row["latency_ms"] > 0
    table = [[view.table.item(r, c).text() for c in range(view.table.columnCount())]
             for r in range(view.table.rowCount())]
    assert table[0][:5] == ["onnx:a.onnx", "2", "1", "1", "1"] and table[1][:5] == ["onnx:b.onnx", "2", "2", "0", "0"]
    view.grab().save(str(tmp_path / "compare.png"))


def test_sliders_refilter_cached_candidates_without_running_again(view, qtbot, detectors):
    for path in detectors:
        view.add_detector(path)
    view.set_image(IMAGE, GT_BOXES, GT_NAMES)
    _run(view, qtbot)
    jobs_before = len(view.bridge.jobs())
    a, b = view.panels
    a.set_thresholds(score=0.3, iou=0.9)  # the duplicate (IoU 0.81) now survives NMS
    assert view.results()[0]["detections"] == 3 and view.results()[0]["fp"] == 2
    assert view.results()[0] == {**view.results()[0], "tp": _expected(a)[1], "fp": _expected(a)[2]}
    b.set_thresholds(score=0.1)  # the weak false alarm appears in B only
    assert (view.results()[1]["detections"], view.results()[1]["fp"]) == (3, 1)
    assert view.results()[0]["detections"] == 3
    b.set_thresholds(score=0.75)
    assert (view.results()[1]["tp"], view.results()[1]["fn"]) == (1, 1) == _expected(b)[1::2]
    assert len(view.bridge.jobs()) == jobs_before  # no re-run: cached raw candidates


def test_zoom_and_pan_are_synchronised(view, qtbot, detectors):
    for path in detectors:
        view.add_detector(path)
    view.set_image(IMAGE, GT_BOXES, GT_NAMES)
    qtbot.wait(50)  # let the new panels get their real size
    a, b = view.panels[0].view, view.panels[1].view
    a.zoom(4.0)
    assert b.transform().m11() == pytest.approx(a.transform().m11())
    a.horizontalScrollBar().setValue(a.horizontalScrollBar().maximum())
    a.verticalScrollBar().setValue(a.verticalScrollBar().minimum())
    ca, cb = a.scene_center(), b.scene_center()
    assert abs(ca.x() - cb.x()) < 1.0 and abs(ca.y() - cb.y()) < 1.0
    assert ca.x() > 32  # it really moved right
    b.zoom(0.5)
    assert a.transform().m11() == pytest.approx(b.transform().m11())


def test_yolo_checkpoint_and_a_broken_file_in_the_same_comparison(view, qtbot, detectors, tmp_path):
    from engine.models.checkpoint import save_checkpoint
    from engine.models.yolo import build_yolo

    config = {"pretrained": False, "input_size": 64, "head_channels": 8}
    model = build_yolo(config, 2)
    state = model.state_dict()
    state["head.6.bias"][[4, 9]] = 4.0  # confident everywhere, so the untrained model detects things
    ckpt = save_checkpoint(tmp_path / "tiny_yolo.ckpt", state,
                           {"family": "yolo", "classes": ["cat", "dog"], "config": config, "metrics": {}})
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    view.add_detector(str(ckpt))
    view.add_detector(detectors[1])
    view.add_detector(str(broken))
    view.set_image(IMAGE, GT_BOXES, GT_NAMES)
    _run(view, qtbot)
    rows = view.results()
    assert rows[0]["name"] == "yolo:tiny_yolo.ckpt" and rows[0]["latency_ms"] > 0
    assert rows[0]["detections"] > 0 and rows[0]["tp"] + rows[0]["fp"] == rows[0]["detections"]
    assert rows[2]["error"] and "broken.ckpt" in rows[2]["error"]
    assert view.table.item(2, 1).text() == "error"
    # the next image reuses the loaded predictors
    loaded = view.panels[0].predictor
    view.set_image(IMAGE[:, ::-1].copy(), GT_BOXES, GT_NAMES)
    assert view.results()[0]["detections"] is None
    _run(view, qtbot)
    assert view.panels[0].predictor is loaded


def test_at_most_four_detectors(view, detectors):
    for _ in range(4):
        assert view.add_detector(detectors[0]) is not None
    assert view.add_detector(detectors[1]) is None
    view.remove_detector(0)
    assert len(view.panels) == 3 and view.table.rowCount() == 3


class _MaskDetector:
    """A Mask R-CNN stand-in: two candidates (a cat at the cat, a dog at the dog) and their masks."""

    name = "maskrcnn:fake"
    class_names = ["cat", "dog"]
    has_masks = True
    last_latency_ms = 3.0
    boxes = np.array([[8, 8, 28, 28], [40, 36, 60, 60]], np.float32)

    def raw_candidates(self, image):
        from engine.infer.detections import RawCandidates

        return RawCandidates(self.boxes, np.array([0.9, 0.8], np.float32), np.array([0, 1]))

    def predict(self, image, **_):
        from engine.infer.detections import Detections

        masks = np.zeros((2, 64, 64), bool)
        masks[0, 10:26, 10:26] = True
        masks[1, 40:60, 44:56] = True
        return Detections(self.boxes, np.array([0.9, 0.8]), [0, 1], self.class_names, masks)


def test_mask_rcnn_masks_are_drawn_under_their_boxes(view, qtbot, detectors):
    from PySide6.QtWidgets import QGraphicsPixmapItem

    panel = view.add_detector(detectors[0])
    panel.predictor = _MaskDetector()
    view.set_image(IMAGE, GT_BOXES, GT_NAMES)
    _run(view, qtbot)
    drawn = [item for item in panel.scene.items() if isinstance(item, QGraphicsPixmapItem)
             and item is not panel.pixmap_item]
    assert sorted((item.pos().x(), item.pos().y(), item.pixmap().width(), item.pixmap().height())
                  for item in drawn) == [(10, 10, 16, 16), (44, 40, 12, 20)]
    panel.set_thresholds(score=0.85)  # the dog's box goes, and its mask with it
    drawn = [item for item in panel.scene.items() if isinstance(item, QGraphicsPixmapItem)
             and item is not panel.pixmap_item]
    assert len(drawn) == 1

"""A teacher opens the workbench and reaches every detector view from the Models menu.

Each view is opened through its menu action (or shortcut) of the real main window, on a tiny
project with tiny detectors: an untrained tiny Faster R-CNN checkpoint, a tiny YOLO checkpoint
and fixed-output ONNX "YOLO" exports (so the boxes are known exactly).
"""
import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from torchvision.ops import batched_nms

from app.main_window import MainWindow
from engine.annotations import Annotation, Box, ProjectStore
from engine.models.checkpoint import save_checkpoint
from tests.app.test_compare_view import ANCHORS_A, ANCHORS_B, _onnx_detector

TINY_RCNN = {"pretrained": False, "fpn_channels": 8, "min_size": 64, "max_size": 96, "representation_size": 16,
             "anchor_sizes": [[16], [32], [64], [128]], "rpn_pre_nms_top_n_test": 60,
             "rpn_post_nms_top_n_test": 30}
TINY_YOLO = {"pretrained": False, "input_size": 64, "head_channels": 8}
GT = {0: [(8, 8, 28, 28, "cat"), (40, 36, 60, 60, "dog")], 1: [(8, 8, 28, 28, "cat")]}


def _project(root):
    """Two 64 x 64 images (val split) with boxes: image 0 has a cat and a dog, image 1 a cat."""
    root.mkdir(parents=True, exist_ok=True)
    store = ProjectStore.create(root / "p.vbproj")
    cats = {"cat": store.add_category("cat", "#e6194b").id, "dog": store.add_category("dog", "#3cb44b").id}
    for i in range(2):
        px = np.full((64, 64, 3), 90, np.uint8)
        px[8:28, 8:28] = 220
        f = root / "images" / f"img{i}.png"
        f.parent.mkdir(exist_ok=True)
        Image.fromarray(px).save(f)
        rec = store.add_image(f, width=64, height=64, split="val")
        for x1, y1, x2, y2, name in GT[i]:
            store.add_annotation(Annotation(rec.id, cats[name], Box(x1, y1, x2, y2)))
    store.close()
    return root / "p.vbproj"


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    from engine.models.rcnn import build_rcnn
    from engine.models.yolo import build_yolo

    folder = tmp_path_factory.mktemp("detectors")
    torch.manual_seed(0)
    rcnn = save_checkpoint(folder / "rcnn.ckpt", build_rcnn(TINY_RCNN, 2).state_dict(),
                           {"family": "fasterrcnn", "classes": ["cat", "dog"], "config": TINY_RCNN, "metrics": {}})
    state = build_yolo(TINY_YOLO, 2).state_dict()
    state["head.6.bias"][[4, 9]] = 4.0  # confident cells: the untrained model draws boxes
    yolo = save_checkpoint(folder / "yolo.ckpt", state,
                           {"family": "yolo", "classes": ["cat", "dog"], "config": TINY_YOLO, "metrics": {}})
    other = save_checkpoint(folder / "other.ckpt", state,
                            {"family": "yolo", "classes": ["galaxy", "star"], "config": TINY_YOLO, "metrics": {}})
    return {"rcnn": str(rcnn), "yolo": str(yolo), "other": str(other),
            "a": _onnx_detector(folder / "a.onnx", ANCHORS_A), "b": _onnx_detector(folder / "b.onnx", ANCHORS_B)}


@pytest.fixture
def win(tmp_path, qtbot):
    w = MainWindow(ProjectStore(_project(tmp_path / "proj")))
    w.models.device = "cpu"
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    assert w.jobs.shutdown(10.0) and w.models.shutdown(10.0)  # no job thread outlives the window


def _menu_action(win, text):
    return next(a for a in win.models_menu.actions() if a.text() == text)


def _open(win, qtbot, text):
    """Trigger the Models menu entry ``text``; returns the dock's widget once it is shown."""
    _menu_action(win, text).trigger()
    name = next(n for n, a in win.models.actions.items() if a.text() == text)
    widget = win.models.views[name]
    qtbot.waitUntil(lambda: widget.isVisible(), timeout=5000)
    return widget


def _wait_idle(widget, qtbot, timeout=60_000):
    qtbot.waitUntil(lambda: not widget.busy(), timeout=timeout)


def test_models_menu_lists_every_view_with_a_shortcut_in_the_help(win):
    texts = [a.text() for a in win.models_menu.actions() if not a.isSeparator()]
    assert texts == ["Train && predict…", "Pretrained models…", "Pre-label…", "Review proposals", "Label loop…",
                     "Translate with…", "NMS step by step…", "Inside R-CNN…", "YOLO grid…", "Compare detectors…",
                     "Evaluate detector…", "Verify identities…", "Image search…", "Style transfer…", "Stylise with…"]
    rows = {r[1]: r for r in win.show_help().rows()}
    for text, keys in (("NMS step by step…", "Ctrl+Shift+N"), ("Inside R-CNN…", "Ctrl+Shift+R"),
                       ("YOLO grid…", "Ctrl+Shift+Y"), ("Compare detectors…", "Ctrl+Shift+C"),
                       ("Evaluate detector…", "Ctrl+Shift+E"), ("Style transfer…", "Ctrl+Shift+G"),
                       ("Stylise with…", "Ctrl+Shift+F"), ("Verify identities…", "Ctrl+Shift+D"),
                       ("Image search…", "Ctrl+Shift+J"), ("Translate with…", "Ctrl+Shift+T")):
        assert rows[text][0] == "Models" and rows[text][2] == keys
    every = [k.toString() for a in win.actions_by_name.values() for k in a.shortcuts()]
    assert len(every) == len(set(every))  # no shortcut is bound twice


def test_nms_view_steps_to_torchvisions_batched_nms_and_follows_the_image(win, qtbot, detectors):
    dock = _open(win, qtbot, "NMS step by step…")
    assert dock.record.id == win.controller.image.id  # it shows the current image (without a detector)
    _wait_idle(dock, qtbot)
    assert "train one with Models > Train & predict" in dock.status.text()  # no detector known yet
    with qtbot.waitSignal(dock.ready, timeout=60_000):
        dock.set_detector(detectors["rcnn"])
    raw = dock.last_result["raw"]
    assert len(raw) > 5 and dock.view._pixmap_item.pixmap().width() == 64
    view = dock.view
    view.set_score_threshold(0.0)
    view.set_iou_threshold(0.3)
    while view.step_button.isEnabled():
        qtbot.mouseClick(view.step_button, Qt.MouseButton.LeftButton)
    expected = batched_nms(torch.as_tensor(raw.boxes), torch.as_tensor(raw.scores),
                           torch.as_tensor(raw.labels), 0.3).tolist()
    assert view.kept_indices() == expected
    view.agnostic_box.setChecked(True)
    view.run_all()
    agnostic = batched_nms(torch.as_tensor(raw.boxes), torch.as_tensor(raw.scores),
                           torch.zeros(len(raw), dtype=torch.int64), 0.3).tolist()
    assert view.kept_indices() == agnostic
    assert "fasterrcnn:rcnn.ckpt" in dock.status.text() and "ms" in dock.status.text()
    assert not win.docks["Jobs"].isVisible()  # per-image jobs report in the dock, not the Jobs panel

    first = win.controller.image.id
    with qtbot.waitSignal(dock.ready, timeout=60_000):
        win.actions_by_name["next_image"].trigger()
    assert dock.record.id == win.controller.image.id != first
    assert "img1.png" in dock.image_label.text()
    dock.follow_check.setChecked(False)  # pinned: the next image change leaves it alone
    win.actions_by_name["prev_image"].trigger()
    assert not dock.busy() and dock.record.id != win.controller.image.id
    assert "pinned" in dock.image_label.text()


def test_a_bad_detector_gives_a_message_and_the_window_lives_on(win, qtbot, detectors, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("ReduceMean", ["images"], ["out"], keepdims=0)], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "classifier.onnx"))
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"\x00garbage")
    before = win.store.count_annotations()
    dock = _open(win, qtbot, "NMS step by step…")
    _wait_idle(dock, qtbot)
    for path in (tmp_path / "classifier.onnx", corrupt):
        with qtbot.waitSignal(dock.failed, timeout=60_000) as blocker:
            dock.set_detector(path)
        assert path.name in blocker.args[0]
        assert path.name in dock.status.text() and "#d32f2f" in dock.status.text()
    with qtbot.waitSignal(dock.ready, timeout=60_000):
        dock.set_detector(detectors["other"])  # trained for other categories: runs, with a warning
    assert "none of the detector's classes (galaxy, star)" in dock.status.text()
    second = win.store.images()[1]
    win.store.image_path(second).unlink()  # the image vanished from the disk meanwhile
    with qtbot.waitSignal(dock.failed, timeout=60_000) as blocker:
        win.actions_by_name["next_image"].trigger()
    assert "img1.png" in blocker.args[0] and "img1.png" in dock.status.text()
    assert win.store.count_annotations() == before and win.isVisible()


def test_inside_rcnn_shows_anchors_and_roi_sampling_and_refuses_a_yolo(win, qtbot, detectors):
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=3000)
    qtbot.keyClick(win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    dock = win.models.views["inside_rcnn"]
    _wait_idle(dock, qtbot)
    with qtbot.waitSignal(dock.ready, timeout=60_000):
        dock.set_detector(detectors["rcnn"])
    view = dock.view
    assert view.inspection is not None and view.inspection.image.shape == (64, 64, 3)
    view.proposal_box.setCurrentIndex(0)
    base = view.overlay_count()
    view.place_anchors(32.0, 32.0)
    assert view.overlay_count() == base + 4 * 3  # 4 levels x 3 aspect ratios
    assert view.sampling is not None and view.sampling.align_out.shape[1:] == (7, 7)
    with qtbot.waitSignal(dock.failed, timeout=60_000) as blocker:
        dock.set_detector(detectors["yolo"])
    assert "not a two-stage detector" in blocker.args[0]


def test_yolo_grid_draws_the_grid_with_the_responsible_cells_of_the_ground_truth(win, qtbot, detectors):
    import os
    import shutil

    models = win.store.root / "models"  # where the Train panel writes checkpoints
    models.mkdir()
    shutil.copy(detectors["yolo"], models / "yolo-20260101.ckpt")
    shutil.copy(detectors["rcnn"], models / "fasterrcnn-20260102.ckpt")
    os.utime(models / "yolo-20260101.ckpt", (1e9, 1e9))  # the R-CNN is the newest file
    dock = _open(win, qtbot, "YOLO grid…")
    listed = [dock.detector_combo.itemText(i) for i in range(dock.detector_combo.count())]
    assert listed == ["(none: image only)", "models/fasterrcnn-20260102.ckpt", "models/yolo-20260101.ckpt"]
    assert dock.detector_path().endswith("yolo-20260101.ckpt")  # the grid view picks a YOLO by itself
    shutil.copy(detectors["yolo"], models / "yolo-20260103.ckpt")  # as a training job would write it
    from engine.jobs import Job

    def quick(token):
        yield from ()

    with qtbot.waitSignal(win.jobs.finished, timeout=10_000):
        win.jobs.submit(Job("train yolo", quick))
    assert dock.detector_combo.findText("models/yolo-20260103.ckpt") > 0  # listed once a job of the window ends
    assert dock.detector_path().endswith("yolo-20260101.ckpt")  # the choice is kept
    qtbot.waitUntil(lambda: dock.view.explanation is not None, timeout=60_000)
    ex = dock.view.explanation
    assert ex.grid == 4 and ex.image_size == (64, 64)
    assert len(ex.responsible) == len(GT[0]) == 2
    assert {(r.row, r.col) for r in ex.responsible} == {(1, 1), (3, 3)}  # centres (18, 18) and (50, 48)
    assert dock.view.boxes_check.isChecked() and ex.boxes_above(dock.view.min_confidence)
    with qtbot.waitSignal(dock.failed, timeout=60_000) as blocker:
        dock.set_detector(detectors["rcnn"])
    assert "family" in blocker.args[0] and "rcnn.ckpt" in blocker.args[0]


def test_compare_runs_each_detector_and_the_table_counts_every_object(win, qtbot, detectors):
    dock = _open(win, qtbot, "Compare detectors…")
    _wait_idle(dock, qtbot)
    assert dock.view.image is not None and len(dock.view.gt_boxes) == 2
    for key in ("a", "b"):
        dock.set_detector(detectors[key], run=False)
    with qtbot.waitSignal(dock.view.ran, timeout=60_000):
        dock.set_detector(detectors["yolo"])
    rows = dock.view.results()
    assert [r["name"] for r in rows] == ["onnx:a.onnx", "onnx:b.onnx", "yolo:yolo.ckpt"]
    assert dock.view.table.rowCount() == 3
    for row in rows:
        assert row["tp"] + row["fn"] == 2 and row["tp"] + row["fp"] == row["detections"]
        assert row["latency_ms"] > 0
    assert (rows[1]["tp"], rows[1]["fp"]) == (2, 0)
    assert "3 detector(s) ran" in dock.status.text() and "⚠" not in dock.status.text()

    with qtbot.waitSignal(dock.view.ran, timeout=60_000):  # the next image: one cat
        win.actions_by_name["next_image"].trigger()
    assert len(dock.view.gt_boxes) == 1
    assert all(r["tp"] + r["fn"] == 1 for r in dock.view.results())
    dock.view.panels[0].remove_button.click()
    assert len(dock.view.panels) == 2 and dock.view.table.rowCount() == 2
    with qtbot.waitSignal(dock.view.ran, timeout=60_000):
        dock.set_detector(detectors["other"])  # trained for galaxies and stars
    assert "yolo:other.ckpt: classes that are not categories of this project" in dock.status.text()
    assert dock.view.results()[-1]["tp"] == 0


def test_evaluate_shows_per_class_ap_curves_and_confusion(win, qtbot, detectors):
    dock = _open(win, qtbot, "Evaluate detector…")
    assert not dock.busy()  # evaluation runs only when asked
    dock.set_detector(detectors["b"], run=False)
    with qtbot.waitSignal(dock.ready, timeout=60_000):
        dock.run_button.click()
    view = dock.view
    names = [view.table.item(r, 0).text() for r in range(view.table.rowCount())]
    assert names == ["cat", "dog"]
    assert view.table.item(0, 3).text() == "2" and view.table.item(1, 3).text() == "1"  # objects in val
    assert set(view.curves) == {"cat", "dog"}
    assert view.matrix.shape == (3, 3) and view.matrix[0, 0] == 2  # B finds the cat on both images
    assert "2 images" in dock.status.text() and "score ≥ 0.30, IoU ≥ 0.50" in dock.status.text()
    # the cut-offs are shown and can be changed: the same detections recounted, no new run
    jobs_before = len(win.jobs.jobs())
    dock.confusion_score.setValue(1.0)
    assert view.matrix[0, 0] == 0 and view.matrix[0, 2] == 2  # every cat counted as missed ...
    assert "below the confusion's score cut-off" in dock.status.text()  # ... and the status says why
    dock.confusion_score.setValue(0.3)
    dock.confusion_iou.setValue(0.99)  # hardly any box overlaps that well
    assert view.matrix[0, 0] < 2
    dock.confusion_iou.setValue(0.5)
    assert view.matrix[0, 0] == 2 and len(win.jobs.jobs()) == jobs_before
    assert any(j.name == "evaluate b.onnx" for j in win.jobs.jobs())  # long work: in the Jobs panel
    assert not any(j.name.startswith("NMS") for j in win.jobs.jobs())
    with qtbot.waitSignal(dock.failed, timeout=60_000) as blocker:
        dock.set_detector(detectors["other"])
        dock.run()
    assert "other.ckpt" in blocker.args[0] and "another project" in blocker.args[0]


def test_evaluate_figures_equal_visionbench_eval_and_mask_models_add_mask_ap(win, qtbot, detectors, tmp_path):
    from engine.eval.run import eval_command
    from engine.models.rcnn import build_rcnn

    dock = _open(win, qtbot, "Evaluate detector…")
    for key in ("b", "yolo"):  # an ONNX export and a Visionbench checkpoint
        dock.set_detector(detectors[key], run=False)
        with qtbot.waitSignal(dock.ready, timeout=60_000):
            dock.run()
        cli = eval_command(detectors[key], str(win.store.path), split="val", device="cpu")
        shown = dock.last_result["box"]
        assert shown["map50"] == pytest.approx(cli["box_map50"]) and shown["map"] == pytest.approx(cli["box_map"])
        if key == "b":
            assert shown["map50"] > 0.5
    assert dock.view.table.columnCount() == 4

    torch.manual_seed(0)
    masks = save_checkpoint(tmp_path / "mask.ckpt", build_rcnn(TINY_RCNN, 2, masks=True).state_dict(),
                            {"family": "maskrcnn", "classes": ["cat", "dog"], "config": TINY_RCNN, "metrics": {}})
    dock.set_detector(masks, run=False)
    with qtbot.waitSignal(dock.ready, timeout=60_000):
        dock.run()
    assert dock.last_result["mask"] is not None
    headers = [dock.view.table.horizontalHeaderItem(c).text() for c in range(dock.view.table.columnCount())]
    assert headers[-2:] == ["mask AP@[.5:.95]", "mask AP@.5"]
    assert "masks: mAP@[.5:.95]" in dock.view.summary.text()


def test_quick_image_steps_run_one_job_at_a_time_and_end_on_the_current_image(win, qtbot, detectors):
    dock = _open(win, qtbot, "NMS step by step…")
    with qtbot.waitSignal(dock.ready, timeout=60_000):
        dock.set_detector(detectors["rcnn"])
    loaded = dock.predictor
    before = len(win.models.jobs.jobs())
    for name in ("next_image", "prev_image", "next_image"):  # faster than a run takes
        win.actions_by_name[name].trigger()
        running = [j for j in win.models.jobs.jobs() if j.state in ("pending", "running")]
        assert len(running) <= 1  # a model never runs in two threads at once
    with qtbot.waitSignal(dock.ready, timeout=60_000):
        pass
    _wait_idle(dock, qtbot)
    assert dock.record.id == win.controller.image.id
    assert "img1.png" in dock.image_label.text()
    assert len(win.models.jobs.jobs()) - before <= 2  # the steps in between were coalesced
    assert dock.predictor is loaded  # loaded once, reused for every image


def test_torchvision_weights_in_the_hub_cache_are_offered_and_a_broken_one_is_refused(win, qtbot, tmp_path,
                                                                                        monkeypatch):
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth").write_bytes(b"truncated download")
    (cache / "resnet18-f37072fd.pth").write_bytes(b"a classifier: not offered")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    dock = _open(win, qtbot, "NMS step by step…")
    _wait_idle(dock, qtbot)
    listed = [dock.detector_combo.itemText(i) for i in range(dock.detector_combo.count())]
    assert listed == ["(none: image only)", "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth"]
    with qtbot.waitSignal(dock.failed, timeout=60_000) as blocker:
        dock.detector_combo.setCurrentIndex(1)
        dock.run()
    assert "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth" in blocker.args[0]
    assert "not a readable PyTorch state dict" in dock.status.text()


def test_nms_view_lowers_the_score_threshold_for_a_barely_trained_model(win, qtbot, tmp_path):
    weak = _onnx_detector(tmp_path / "weak.onnx", [((8, 8, 28, 28), (0.15, 0.0)), ((9, 9, 29, 29), (0.12, 0.0))])
    dock = _open(win, qtbot, "NMS step by step…")
    _wait_idle(dock, qtbot)
    with qtbot.waitSignal(dock.ready, timeout=60_000):
        dock.set_detector(weak)
    assert dock.view.score_slider.value() == 15
    assert "threshold lowered to 0.15" in dock.status.text()
    dock.view.run_all()
    assert dock.view.kept_indices() == [0]  # the weaker duplicate (IoU 0.82) is suppressed

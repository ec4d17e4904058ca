"""A teacher opens a lesson from the Lessons menu, steps through it with the keyboard, presents it
full screen, drags and clicks in it, and exports the view."""
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.main_window import MainWindow
from engine.annotations import Annotation, Box, ProjectStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _project(root):
    root.mkdir(parents=True, exist_ok=True)
    store = ProjectStore.create(root / "p.vbproj")
    cat = store.add_category("cat", "#e6194b")
    px = np.zeros((90, 120, 3), np.uint8)
    px[20:70, 30:90] = (220, 140, 60)
    f = root / "images" / "img.png"
    f.parent.mkdir()
    Image.fromarray(px).save(f)
    rec = store.add_image(f, width=120, height=90)
    store.add_annotation(Annotation(rec.id, cat.id, Box(30, 20, 90, 70)))
    store.close()
    return root / "p.vbproj"


@pytest.fixture
def win(tmp_path, qtbot):
    w = MainWindow(ProjectStore(_project(tmp_path / "proj")))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    assert w.lessons.shutdown(10.0)  # no lesson thread outlives the window


def _open(win, qtbot, key):
    win.lessons.actions[key].trigger()
    player = win.lessons.player
    qtbot.waitUntil(lambda: bool(player.is_ready or player.last_error), timeout=120_000)
    assert player.last_error is None
    return player


def test_the_lessons_menu_groups_lessons_by_topic_and_says_what_the_others_wait_for(win):
    menu = win.lessons.menu
    assert menu.title() == "&Lessons"
    topics = [a.text() for a in menu.actions()]
    assert topics == ["Segmentation", "Classification", "Detection", "Embeddings", "Style and image-to-image"]
    detection = next(a.menu() for a in menu.actions() if a.text() == "Detection")
    assert [a.text() for a in detection.actions()][0].startswith("Localisation as regression")
    patchgan = win.lessons.actions["patchgan"]
    assert patchgan.isEnabled() and patchgan.text().startswith("PatchGAN receptive field")
    assert win.lessons.actions["upsampling"].isEnabled()


def test_step_back_run_pause_reset_and_presentation_with_the_keyboard_only(win, qtbot):
    player = _open(win, qtbot, "localisation")
    assert player.caption.text().startswith("Step 1 of 5: IoU")
    assert "IoU" in player.text.toPlainText()  # the lesson's Markdown beside the view
    qtbot.keyClick(player, Qt.Key.Key_Right)
    assert player.caption.text().startswith("Step 2 of 5: The targets")
    qtbot.keyClick(player, Qt.Key.Key_Left)
    assert player.index == 0
    qtbot.keyClick(player, Qt.Key.Key_Space)
    assert player.timer.isActive() and player.run_button.text() == "Pause"
    qtbot.waitUntil(lambda: player.index >= 1, timeout=5000)
    qtbot.keyClick(player, Qt.Key.Key_Space)
    assert not player.timer.isActive()
    qtbot.keyClick(player, Qt.Key.Key_Home)
    assert player.index == 0

    qtbot.keyClick(player, Qt.Key.Key_F5)
    assert player.presenting and player.isFullScreen()
    assert not player.bar.isVisible()  # keyboard only
    assert player.caption.font().pixelSize() >= 30 and player.canvas.style_.line_scale > 2
    qtbot.keyClick(player, Qt.Key.Key_Right)
    assert player.index == 1
    qtbot.keyClick(player, Qt.Key.Key_Escape)
    assert not player.presenting and not player.isFullScreen() and player.bar.isVisible()
    assert player.caption.font().pixelSize() < 20


def test_dragging_a_box_changes_the_iou_and_clicking_a_cell_moves_the_anchors(win, qtbot):
    player = _open(win, qtbot, "localisation")
    before = player.caption.text()
    b = player.lesson.proposal
    player.canvas.pressed.emit(0, b[0], b[1])  # grab B's top-left corner
    player.canvas.dragged.emit(0, 30.0, 20.0)  # onto A's corner
    player.canvas.released.emit()
    assert player.caption.text() != before and player.lesson.proposal[:2] == [30.0, 20.0]
    player.index = 3
    player._show()
    player.canvas.pressed.emit(0, 5.0, 5.0)
    player.canvas.released.emit()
    assert player.lesson.cell == (0, 0) and "Cell (0, 0)" in player.caption.text()


def test_export_png_and_svg_of_the_view(win, qtbot, tmp_path):
    player = _open(win, qtbot, "upsampling")
    player.step_forward()
    png = player.export_png(tmp_path / "v.png")
    assert QImage(str(png)).size().width() == 1920
    svg = (player.export_svg(tmp_path / "v.svg")).read_text()
    assert "<svg" in svg and "<text" in svg
    assert "unpool" in svg  # the panel titles are text in the SVG, not pixels


def test_a_click_that_needs_the_network_is_answered_in_the_background(win, qtbot):
    player = _open(win, qtbot, "receptive_field")
    assert "EfficientNet-Lite0" in player.model_combo.currentText() and player.model_combo.isVisible()
    layer = player.lesson.fields["stem"]
    player.canvas.pressed.emit(0, 100.0, 10.0)
    player.canvas.released.emit()
    qtbot.waitUntil(lambda: player._click_job is None, timeout=60_000)
    row, col = layer.unit_at(100, 10)
    assert f"unit ({row}, {col})" in player.canvas.scene.panels[0].title
    assert "effective" in player.caption.text() and "click to compute" not in player.caption.text()


def test_the_player_closes_and_opens_again_on_another_lesson(win, qtbot):
    player = _open(win, qtbot, "triplet")
    player.close()
    again = _open(win, qtbot, "upsampling")
    assert again is player and player.isVisible() and player.caption.text().startswith("Step 1 of 8")


def test_lessons_offer_the_projects_checkpoints_of_the_right_kind(win):
    models = win.store.root / "models"
    models.mkdir()
    for name in ("fasterrcnn-20260101.ckpt", "yolo-20260101.ckpt", "unet-20260101.ckpt"):
        (models / name).write_bytes(b"")
    rcnn = win.lessons.model_options("rcnn")
    assert [label for label, _ in rcnn][0] == "models/fasterrcnn-20260101.ckpt"
    assert rcnn[-1][1] is None and "no Faster R-CNN" not in rcnn[0][0]
    assert {label for label, _ in win.lessons.model_options("detector")} >= {"models/fasterrcnn-20260101.ckpt",
                                                                            "models/yolo-20260101.ckpt"}
    assert [label for label, _ in win.lessons.model_options("unet")][0] == "models/unet-20260101.ckpt"
    assert win.lessons.model_options("lite0") == [("EfficientNet-Lite0 (ImageNet, ships with Visionbench)", None)]


def test_without_an_open_image_the_player_says_so(tmp_path, qtbot):
    store = ProjectStore.create(tmp_path / "empty.vbproj")
    w = MainWindow(store)
    qtbot.addWidget(w)
    w.lessons.actions["triplet"].trigger()
    player = w.lessons.player
    assert "No image is open" in player.status.text() and not player.is_ready
    player.close()
    w.close()

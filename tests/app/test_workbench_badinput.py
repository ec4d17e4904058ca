"""Bad image files in the main window: truncated, vanished while open, unsupported pixel types.
The canvas shows a message naming the file in place of the image; shapes stay visible and
editable, the store keeps every annotation, and the rest of the window keeps working."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PySide6.QtCore import QPoint, Qt

from engine.annotations import Annotation, Box, ProjectStore
from tests.app.test_workbench_edits import drag
from tests.app.test_workbench_window import key, open_window

MID = Qt.MouseButton.MiddleButton


def make_bad_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    store = ProjectStore.create(root / "p.vbproj")
    store.add_category("thing", "#e6194b")
    rng = np.random.default_rng(0)
    cv2.imwrite(str(root / "a_vanish.png"), rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8))  # 6 tiles
    ok = rng.integers(0, 255, (150, 200, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "b_ok.png"), ok)
    data = (root / "b_ok.png").read_bytes()
    (root / "c_truncated.png").write_bytes(data[: len(data) // 3])  # header fine, pixels cut off
    tifffile.imwrite(root / "d_complex.tif", np.ones((150, 200), np.complex64))
    tifffile.imwrite(root / "e_two_channel.tif", np.full((150, 200, 2), 90, np.uint8), photometric="minisblack",
                     planarconfig="contig")
    for name in ("a_vanish.png", "b_ok.png", "c_truncated.png", "d_complex.tif", "e_two_channel.tif"):
        rec = store.add_image(root / name)
        store.add_annotation(Annotation(rec.id, 1, Box(5, 5, 50, 40)))
    store.close()
    return root / "p.vbproj"


def wait_image(qtbot, w):
    qtbot.waitUntil(lambda: bool(w.canvas.image_layer.ready or w.canvas.message_text()), timeout=10000)


def draw_box_and_check_store(qtbot, w) -> None:
    """The canvas still takes a new box from the mouse, and the store has it."""
    img = w.controller.image.id
    n = w.store.count_annotations(img)
    key(qtbot, w, Qt.Key.Key_R)
    drag(qtbot, w, (60, 50), (120, 100))
    key(qtbot, w, Qt.Key.Key_V)
    assert w.store.count_annotations(img) == n + 1
    assert len(w.canvas.annotations()) == n + 1 == w.annotations.model.rowCount()


def open_named(qtbot, w, name: str) -> None:
    rec = next(r for r in w.store.images() if r.path.endswith(name))
    w.controller.open_image(rec.id)
    wait_image(qtbot, w)


@pytest.fixture
def bad(tmp_path, qtbot):
    w = open_window(qtbot, make_bad_project(tmp_path))
    wait_image(qtbot, w)
    yield w, tmp_path
    w.close()


def test_image_vanishing_while_open(bad, qtbot):
    w, root = bad
    cv = w.canvas
    assert w.controller.image.path.endswith("a_vanish.png") and cv.message_text() == ""
    os.remove(root / "a_vanish.png")
    # zoom in and pan so tiles not seen yet are asked for
    cv.zoom_to(2.0)
    qtbot.mousePress(cv, MID, Qt.KeyboardModifier.NoModifier, QPoint(400, 300))
    qtbot.mouseMove(cv, QPoint(200, 150))
    qtbot.mouseRelease(cv, MID, Qt.KeyboardModifier.NoModifier, QPoint(200, 150))
    qtbot.wait(300)
    cv.grab()  # paints: still no exception, the decoded pixels stay usable
    draw_box_and_check_store(qtbot, w)
    key(qtbot, w, Qt.Key.Key_D)
    wait_image(qtbot, w)
    key(qtbot, w, Qt.Key.Key_A)  # back: now the file is really gone
    wait_image(qtbot, w)
    assert "a_vanish.png" in cv.message_text() and "not found" in cv.message_text()
    assert len(cv.annotations()) == 2  # the shapes are all still there, over a placeholder
    cv.grab()
    draw_box_and_check_store(qtbot, w)
    assert w.store.count_annotations() == 5 + 2


@pytest.mark.parametrize("name, words", [("c_truncated.png", "truncated"), ("d_complex.tif", "complex")])
def test_unreadable_image_shows_a_message_and_stays_editable(bad, qtbot, name, words):
    w, _ = bad
    open_named(qtbot, w, name)
    msg = w.canvas.message_text()
    assert name in msg and words in msg
    assert [a.id for a in w.canvas.annotations()] == [a.id for a in w.store.annotations(w.controller.image.id)]
    w.canvas.grab()
    draw_box_and_check_store(qtbot, w)
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert w.store.count_annotations(w.controller.image.id) == 1
    key(qtbot, w, Qt.Key.Key_D)  # the rest of the window carries on
    wait_image(qtbot, w)
    assert w.controller.image.path != name


def test_two_channel_tiff_is_shown_as_grey(bad, qtbot):
    w, _ = bad
    open_named(qtbot, w, "e_two_channel.tif")
    assert w.canvas.message_text() == ""
    qtbot.waitUntil(lambda: w.canvas.image_layer.ready, timeout=10000)
    img = w.canvas.grab().toImage()
    c = img.pixelColor(w.canvas.map_from_image(150, 120).toPoint())  # image pixel outside the box
    assert abs(c.red() - 90) <= 2 and c.red() == c.green() == c.blue()

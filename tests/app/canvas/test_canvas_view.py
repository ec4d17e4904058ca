"""Navigation, loading, bad files and what the canvas actually paints."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.canvas import Canvas
from engine.annotations.model import Annotation, Box, Category, ImageRecord, Polygon

from .conftest import drag, wait_loaded, wpos


def wheel(canvas, pos: QPoint, steps: int) -> None:
    ev = QWheelEvent(QPointF(pos), QPointF(canvas.mapToGlobal(pos)), QPoint(0, 0), QPoint(0, 120 * steps),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, ev)


def test_wheel_zoom_keeps_point_under_cursor(scene):
    canvas, *_ = scene
    zooms = []
    canvas.zoomChanged.connect(zooms.append)
    pos = QPoint(300, 200)
    before = canvas.map_to_image(QPointF(pos))
    wheel(canvas, pos, 2)
    assert canvas.zoom() == pytest.approx(2.0 * 1.25 ** 2)
    assert zooms and zooms[-1] == pytest.approx(canvas.zoom())
    assert canvas.map_to_image(QPointF(pos)) == pytest.approx(before)
    wheel(canvas, QPoint(700, 500), -3)
    assert canvas.zoom() < 2.0


def test_pan_with_middle_drag_and_space_drag(scene, qtbot):
    canvas, *_ = scene
    before = canvas.map_to_image(QPointF(400, 300))
    drag(qtbot, canvas, QPoint(400, 300), QPoint(300, 250), button=Qt.MouseButton.MiddleButton)
    assert canvas.map_to_image(QPointF(300, 250)) == pytest.approx(before)
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    drag(qtbot, canvas, QPoint(300, 250), QPoint(350, 350))
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.map_to_image(QPointF(350, 350)) == pytest.approx(before)


def test_fit_and_one_to_one(scene):
    canvas, *_ = scene
    canvas.zoom_to(1.0)
    assert canvas.zoom() == pytest.approx(1.0)
    canvas.fit()
    assert canvas.zoom() == pytest.approx(2.0)
    x0, y0, x1, y1 = canvas.view_rect()
    assert (x0, y0, x1, y1) == pytest.approx((0, 0, 400, 300))


def test_cursor_moved_reports_image_pixels(scene, qtbot):
    canvas, *_ = scene
    got = []
    canvas.cursorMoved.connect(lambda x, y: got.append((x, y)))
    qtbot.mouseMove(canvas, QPoint(250, 130))
    assert got[-1] == pytest.approx((125.0, 65.0))


@pytest.mark.parametrize("content", [None, b"", b"\xff\xd8\xff\xe0 not really a jpeg", b"GIF89a-truncated"])
def test_unreadable_image_shows_message_and_shapes_stay_editable(qtbot, tmp_path, content):
    path = tmp_path / "broken.jpg"
    if content is not None:
        path.write_bytes(content)
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.show()
    rec = ImageRecord(7, "broken.jpg", 200, 150)
    ann = Annotation(7, 1, Box(10, 10, 50, 40), id=3)
    edits = []
    canvas.editRequested.connect(edits.append)
    canvas.load(rec, path, [ann], [Category(1, "cat", "#ff0000")])
    wait_loaded(qtbot, canvas)
    msg = canvas.message_text()
    assert "broken.jpg" in msg and ("not found" in msg or "unreadable" in msg or "decode" in msg)
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, wpos(canvas, 30, 25))
    assert canvas.selected_ids() == [3]
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    assert edits[-1].update[0].geometry == Box(11, 10, 51, 40)
    img = canvas.grab().toImage()  # painting with an error must not raise
    assert img.width() == 400
    canvas.shutdown()


def test_painted_pixels_show_image_fill_and_hidden(scene, qtbot, tmp_path):
    """The image appears, shapes are filled in their colour, hidden ones are not drawn."""
    canvas, ctl, store, img = scene
    red = QColor("#e6194b")
    qtbot.waitUntil(lambda: canvas.image_layer.pending_tiles() == 0 and canvas.grab() is not None)
    canvas.update()
    qtbot.wait(50)
    frame = canvas.grab().toImage()
    c = frame.pixelColor(wpos(canvas, 150, 140))  # inside the white square
    assert (c.red(), c.green(), c.blue()) == (255, 255, 255)
    from app.canvas import EditRequest

    square = Polygon(((120.0, 110.0), (180.0, 110.0), (180.0, 170.0), (120.0, 170.0)),
                     holes=(((140.0, 130.0), (160.0, 130.0), (160.0, 150.0), (140.0, 150.0)),))
    ctl.apply(EditRequest("seed", add=[Annotation(canvas.image().id, canvas.current_category(), square)]))
    canvas.set_opacity(1.0)
    frame = canvas.grab().toImage()
    inside = frame.pixelColor(wpos(canvas, 125, 120))
    hole = frame.pixelColor(wpos(canvas, 150, 140))
    assert (inside.red(), inside.green(), inside.blue()) == (red.red(), red.green(), red.blue())
    assert (hole.red(), hole.green(), hole.blue()) == (255, 255, 255)  # odd-even: the hole stays open
    a = ctl.annotations()[0]
    canvas.apply_changes(updated=[a.with_(hidden=True)])
    frame = canvas.grab().toImage()
    c = frame.pixelColor(wpos(canvas, 125, 120))
    assert (c.red(), c.green(), c.blue()) == (255, 255, 255)


def test_many_shapes_low_zoom_uses_shape_pyramid_and_updates_region(scene, qtbot):
    canvas, ctl, store, img = scene
    from app.canvas import EditRequest

    anns = [Annotation(canvas.image().id, canvas.current_category(), Box(x, y, x + 6, y + 6))
            for x in range(0, 390, 10) for y in range(0, 290, 10)]
    ctl.apply(EditRequest("seed", add=anns))
    canvas.set_opacity(1.0)
    canvas.zoom_to(0.4)
    canvas.grab()
    qtbot.waitUntil(lambda: 0.5 in canvas.shapes._rasters)  # the cached shape raster is in use at low zoom
    moved = ctl.annotations()[0]
    ctl.apply(EditRequest("move", update=[moved.with_(geometry=Box(200, 145, 206, 151))]))
    raster = canvas.shapes._rasters[0.5]
    r = 0.5
    assert raster[int(3 * r), int(3 * r), 3] == 0  # old place cleared
    assert raster[int(148 * r), int(203 * r), 3] == 255  # new place drawn


def test_16bit_tiff_is_windowed_for_display(qtbot, tmp_path):
    import tifffile

    data = np.zeros((120, 160), np.uint16)
    data[:, 80:] = 4000  # a 12-bit camera frame: left dark, right bright
    path = tmp_path / "cam16.tif"
    tifffile.imwrite(path, data)
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(320, 240)
    canvas.show()
    canvas.load(ImageRecord(1, "cam16.tif", 160, 120), path, [], [Category(1, "c", "#00ff00")])
    wait_loaded(qtbot, canvas)
    qtbot.waitUntil(lambda: (canvas.grab() is not None) and canvas.image_layer.pending_tiles() == 0)
    qtbot.wait(30)
    frame = canvas.grab().toImage()
    dark, bright = frame.pixelColor(wpos(canvas, 40, 60)), frame.pixelColor(wpos(canvas, 120, 60))
    assert canvas.message_text() == ""
    assert dark.red() < 10 and bright.red() > 245  # stretched to the full 8-bit range
    canvas.shutdown()


def test_big_shape_pyramid_level_builds_in_idle_chunks(scene, qtbot):
    canvas, ctl, store, img = scene
    from app.canvas import EditRequest
    from app.canvas.shapes import BUILD_CHUNK

    anns = [Annotation(canvas.image().id, canvas.current_category(), Box(x, y, x + 3, y + 3))
            for x in range(0, 400, 5) for y in range(0, 300, 5)]
    assert len(anns) > BUILD_CHUNK
    ctl.apply(EditRequest("seed", add=anns))
    canvas.set_opacity(1.0)
    canvas.zoom_to(0.4)
    first = canvas.grab().toImage()  # drawn directly while the level is pending
    assert 0.5 not in canvas.shapes._rasters and canvas.shapes.build_pending()
    qtbot.waitUntil(lambda: not canvas.shapes.build_pending())
    assert 0.5 in canvas.shapes._rasters
    canvas._frame = None
    second = canvas.grab().toImage()
    p = wpos(canvas, 201.5, 151.5)  # inside the box at (200, 150)
    red = QColor("#e6194b")
    for frame in (first, second):
        c = frame.pixelColor(p)
        assert (c.red(), c.green(), c.blue()) == (red.red(), red.green(), red.blue())

"""The window's view of the canvas: the first image is fitted once the window has its size, the
toolbar follows the canvas's tool, the help lists every command (issue 3)."""
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from engine.annotations import ProjectStore
from tests.app.test_workbench_edits import make_scene_project
from tests.app.test_workbench_window import key, open_window


def fitted(cv) -> bool:
    """The whole image is visible and touches two opposite edges of the canvas."""
    img = cv.image()
    s = cv.zoom()
    x0, y0 = cv.map_from_image(0, 0).x(), cv.map_from_image(0, 0).y()
    x1, y1 = cv.map_from_image(img.width, img.height).x(), cv.map_from_image(img.width, img.height).y()
    inside = x0 >= -0.5 and y0 >= -0.5 and x1 <= cv.width() + 0.5 and y1 <= cv.height() + 0.5
    return inside and abs(s - min(cv.width() / img.width, cv.height() / img.height)) < 1e-6


def wheel(cv, steps: int) -> None:
    pos = QPointF(cv.width() / 2, cv.height() / 2)
    ev = QWheelEvent(pos, cv.mapToGlobal(pos), QPoint(), QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(cv, ev)


def test_first_image_fits_the_final_window_until_the_user_zooms(tmp_path, qtbot):
    path = make_scene_project(tmp_path, 1)
    settings = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    settings.setValue("window/geometry", None)
    w = MainWindow(ProjectStore(path))  # the image is opened before the window has its size
    qtbot.addWidget(w)
    w.use_layout_settings(settings)
    w.show()
    qtbot.waitExposed(w)
    cv = w.canvas
    qtbot.waitUntil(lambda: fitted(cv), timeout=3000)
    assert w.zoom_label.text() == f"{cv.zoom() * 100:.0f}%"
    w.resize(w.width() - 300, w.height() - 200)  # the window (or a dock) changes size: fit again
    qtbot.waitUntil(lambda: fitted(cv), timeout=3000)
    wheel(cv, 2)  # the user zooms: a later resize keeps their view
    zoom = cv.zoom()
    assert not fitted(cv)
    w.resize(w.width() + 200, w.height() + 100)
    qtbot.wait(50)
    assert cv.zoom() == zoom
    key(qtbot, w, Qt.Key.Key_F)  # F fits again, and resizing refits from then on
    assert fitted(cv)
    w.resize(w.width() - 100, w.height() - 50)
    qtbot.waitUntil(lambda: fitted(cv), timeout=3000)
    w.close()


def test_toolbar_follows_the_canvas_tool_whoever_changes_it(tmp_path, qtbot):
    w = open_window(qtbot, make_scene_project(tmp_path, 1))
    acts = w.actions_by_name
    seen = []
    w.canvas.toolChanged.connect(seen.append)
    w.canvas.set_tool("polygon")  # not through the toolbar
    assert acts["tool_polygon"].isChecked() and not acts["tool_select"].isChecked()
    key(qtbot, w, Qt.Key.Key_B)
    assert w.canvas.tool() == "brush" and acts["tool_brush"].isChecked()
    acts["tool_grabcut"].trigger()  # the toolbar button
    assert w.canvas.tool() == "grabcut" and acts["tool_grabcut"].isChecked()
    w.canvas.set_tool("grabcut")  # no change, no signal
    assert seen == ["polygon", "brush", "grabcut"]
    w.close()


def test_opacity_slider_fill_toggle_and_category_visibility_change_the_painted_pixels(tmp_path, qtbot):
    from tests.app.test_workbench_edits import seed

    w = open_window(qtbot, make_scene_project(tmp_path, 1))
    try:
        qtbot.waitUntil(lambda: w.canvas.image_layer.ready, timeout=10000)
        shapes = seed(w)  # box (cat, red #e6194b) at 10..40 x 10..30 over dark noise
        cv = w.canvas
        at = cv.map_from_image(25, 20).toPoint()

        def red() -> int:
            qtbot.wait(20)
            return cv.grab().toImage().pixelColor(at).red()

        w.opacity.setValue(100)
        opaque = red()
        assert opaque > 200  # #e6194b has red 230
        w.opacity.setValue(20)
        faint = red()
        assert faint < opaque - 80
        w.fill_box.setChecked(False)  # Fill off: the inside shows the image
        assert red() < faint and not w.actions_by_name["fill"].isChecked()
        key(qtbot, w, Qt.Key.Key_F, Qt.KeyboardModifier.ShiftModifier)  # Shift+F: fill on again
        assert w.fill_box.isChecked() and abs(red() - faint) <= 3
        w.opacity.setValue(100)
        cat = shapes["box"].category_id
        row = w.categories.ids().index(cat)
        assert red() > 200
        w.categories.list.item(row).setCheckState(Qt.CheckState.Unchecked)  # the palette's eye box
        assert red() < 120  # hidden category: the image shows through
        assert not w.categories.is_visible(cat)
        assert w.store.annotation(shapes["box"].id).hidden is False  # a view setting, not an edit
    finally:
        w.close()

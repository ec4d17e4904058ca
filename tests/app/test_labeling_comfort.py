"""Labelling comfort: a label prompt after drawing (recent labels first, type to filter, a new
name makes a category, Esc drops the shape), the current category shown in the toolbar,
Help > About, View > Reset layout, and a window that never outgrows the screen."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.app.test_workbench_window import key, open_window
from tests.app.workbench_project import make_project


def drag_box(qtbot, w, x0=5, y0=5, x1=25, y1=20):
    cv = w.canvas
    key(qtbot, w, Qt.Key.Key_R)
    p0, p1 = cv.map_from_image(x0, y0).toPoint(), cv.map_from_image(x1, y1).toPoint()
    qtbot.mousePress(cv, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p0)
    qtbot.mouseMove(cv, (p0 + p1) / 2)
    qtbot.mouseMove(cv, p1)
    qtbot.mouseRelease(cv, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p1)
    return w.labeling.prompt


def names(w, image_id):
    cats = {c.id: c.name for c in w.store.categories()}
    return sorted(cats[a.category_id] for a in w.store.annotations(image_id))


def test_label_prompt_filters_remembers_creates_and_drops(tmp_path, qtbot):
    w = open_window(qtbot, make_project(tmp_path), ask_label=True)
    assert w.actions_by_name["label_prompt"].isChecked()  # on by default
    img = w.controller.image.id
    prompt = drag_box(qtbot, w)
    assert [prompt.list.item(i).text() for i in range(prompt.list.count())] == ["cat", "dog"]
    qtbot.keyClicks(prompt.edit, "do")
    assert [prompt.list.item(i).isHidden() for i in range(2)] == [True, False]
    qtbot.keyClick(prompt.edit, Qt.Key.Key_Return)
    assert names(w, img) == ["dog"]
    assert "dog" in w.labeling.indicator.text()  # the label picked becomes the current category
    prompt = drag_box(qtbot, w, 2, 2, 12, 12)
    assert prompt.list.item(0).text() == "dog"  # recent labels first
    qtbot.keyClicks(prompt.edit, "bird")
    assert "creates the label" in prompt.new_note.text()
    qtbot.keyClick(prompt.edit, Qt.Key.Key_Return)
    assert names(w, img) == ["bird", "dog"] and w.store.category_by_name("bird") is not None
    prompt = drag_box(qtbot, w, 20, 2, 30, 12)
    qtbot.keyClick(prompt.edit, Qt.Key.Key_Escape)  # no label: no shape
    assert names(w, img) == ["bird", "dog"]
    prompt = drag_box(qtbot, w, 20, 2, 30, 12)
    prompt.keep_asking.setChecked(False)  # "stop asking" from the prompt itself
    qtbot.keyClick(prompt.edit, Qt.Key.Key_Return)
    assert names(w, img) == ["bird", "bird", "dog"]
    assert not w.actions_by_name["label_prompt"].isChecked()
    assert drag_box(qtbot, w, 30, 15, 38, 28) is None  # now it takes the current category at once
    assert names(w, img) == ["bird", "bird", "bird", "dog"]
    w.close()


def test_current_category_shows_in_the_toolbar(tmp_path, qtbot):
    w = open_window(qtbot, make_project(tmp_path))
    assert "cat" in w.labeling.indicator.text() and w.labeling.indicator.isVisible()
    key(qtbot, w, Qt.Key.Key_2)
    assert "dog" in w.labeling.indicator.text() and "#3cb44b" in w.labeling.indicator.text()
    w.close()


def test_about_reset_layout_and_a_window_within_the_screen(tmp_path, qtbot):
    from app.about import version

    w = open_window(qtbot, make_project(tmp_path))
    w.actions_by_name["about"].trigger()
    assert f"Visionbench {version()}" in w.last_error_box.text() and "README" in w.last_error_box.text()
    w.last_error_box.close()
    w.docks["Categories"].hide()
    w.docks["Images"].setFloating(True)
    w.actions_by_name["reset_layout"].trigger()
    assert w.docks["Categories"].isVisible() and not w.docks["Images"].isFloating()
    free = w.screen().availableGeometry()
    assert w.width() <= free.width() and w.height() <= free.height()
    w.resize(free.width() * 3, free.height() * 3)
    w.fit_to_screen()
    assert w.width() <= free.width() and w.height() <= free.height()
    assert QApplication.activeWindow() is w
    w.close()

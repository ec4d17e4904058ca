"""User stories on the whole main window, with real key events; the STORE is checked."""
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel

from app.canvas import EditRequest
from app.help_dialog import CANVAS_ROWS
from app.main_window import MainWindow
from app.panels.annotations import COL_CATEGORY, COL_KIND, COL_LOCK, COL_VISIBLE
from app.panels.browser import RecordRole
from engine.annotations import Annotation, Box, ProjectStore
from tests.app.workbench_project import make_project


def open_window(qtbot, path, ask_label: bool = False) -> MainWindow:
    """The window, shown and focused. The label prompt after drawing is on by default in the
    product; stories about other things draw without it (``ask_label=False``)."""
    store = ProjectStore(path)
    w = MainWindow(store)
    w.labeling.set_ask(ask_label)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)  # shortcuts need it
    w.canvas.setFocus()
    return w


@pytest.fixture
def win(tmp_path, qtbot):
    w = open_window(qtbot, make_project(tmp_path))
    yield w
    w.close()


def key(qtbot, w, k, mod=Qt.KeyboardModifier.NoModifier):
    target = QApplication.focusWidget() or w
    qtbot.keyClick(target, k, mod)


def draw_box(w, x=2, y=2, s=6, cat=1):
    img = w.controller.image
    w.canvas.editRequested.emit(EditRequest("draw box", add=[Annotation(img.id, cat, Box(x, y, x + s, y + s))]))


CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def test_draw_undo_redo_switch_images_undo_there_and_back(win, qtbot):
    store = win.store
    first, second = [r.id for r in store.images()[:2]]
    assert win.controller.image.id == first
    draw_box(win)
    assert store.count_annotations(first) == 1
    key(qtbot, win, Qt.Key.Key_Z, CTRL)
    assert store.count_annotations(first) == 0
    key(qtbot, win, Qt.Key.Key_Z, CTRL | SHIFT)
    assert store.count_annotations(first) == 1
    key(qtbot, win, Qt.Key.Key_D)
    assert win.controller.image.id == second
    assert win.browser.view.currentIndex().data(RecordRole).id == second
    draw_box(win, 10)
    key(qtbot, win, Qt.Key.Key_A)
    assert win.controller.image.id == first
    key(qtbot, win, Qt.Key.Key_Z, CTRL)  # undoes the box of the second image: we are taken there
    assert win.controller.image.id == second and store.count_annotations(second) == 0
    key(qtbot, win, Qt.Key.Key_PageUp)
    key(qtbot, win, Qt.Key.Key_Y, CTRL)
    assert win.controller.image.id == second and store.count_annotations(second) == 1
    assert win.actions_by_name["undo"].text() == "Undo draw box"


def test_copy_paste_across_images_and_duplicate(win, qtbot):
    draw_box(win, 30, 20, 20)  # image is 40x30: pasted copies clip to it
    (a,) = win.controller.annotations()
    win.canvas.select([a.id])
    key(qtbot, win, Qt.Key.Key_C, CTRL)
    key(qtbot, win, Qt.Key.Key_PageDown)
    key(qtbot, win, Qt.Key.Key_V, CTRL)
    second = win.controller.image.id
    (pasted,) = win.store.annotations(second)
    assert pasted.geometry == Box(30, 20, 40, 30) and pasted.id != a.id
    assert win.canvas.selected_ids() == [pasted.id]
    key(qtbot, win, Qt.Key.Key_D, CTRL)
    geoms = sorted((x.geometry for x in win.store.annotations(second)), key=lambda g: g.x1)
    assert len(geoms) == 1  # the duplicate would lie entirely outside the 40x30 image: dropped
    key(qtbot, win, Qt.Key.Key_Delete)
    assert win.store.count_annotations(second) == 0


def test_status_moves_to_in_progress_on_edit_and_done_on_action(win, qtbot):
    img = win.controller.image
    row = win.browser.model.row_of(img.id)
    assert win.store.image(img.id).status == "new"
    draw_box(win)
    assert win.store.image(img.id).status == "in_progress"
    assert win.browser.model.index(row).data(RecordRole).status == "in_progress"
    assert win.browser.model.shape_count(img.id) == 1
    key(qtbot, win, Qt.Key.Key_Return, CTRL)
    assert win.store.image(img.id).status == "done"
    assert win.browser.model.index(row).data(RecordRole).status == "done"
    assert win.properties.status.currentData() == "done"
    key(qtbot, win, Qt.Key.Key_Return, CTRL | SHIFT)
    assert win.store.image(img.id).status == "reviewed"


def test_list_changes_category_hides_locks_and_syncs_selection(win, qtbot):
    draw_box(win)
    draw_box(win, 20)
    a, b = win.controller.annotations()
    model = win.annotations.model
    assert model.rowCount() == 2
    win.annotations.set_selection([b.id])
    view = win.annotations.view
    rect = view.visualRect(model.index(model.row_of(a.id), COL_KIND))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    assert win.canvas.selected_ids() == [a.id]
    assert win.properties.current.id == a.id
    model.setData(model.index(0, COL_CATEGORY), 2)
    assert win.store.annotation(a.id).category_id == 2
    menu = win.annotations.build_menu()
    cat_menu = [m for m in menu.actions() if m.text() == "Category"][0].menu()
    [act for act in cat_menu.actions() if act.text() == "cat"][0].trigger()
    assert win.store.annotation(a.id).category_id == 1
    model.setData(model.index(0, COL_VISIBLE), Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole)
    model.setData(model.index(0, COL_LOCK), Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    s = win.store.annotation(a.id)
    assert s.hidden and s.locked
    assert model.index(0, COL_VISIBLE).data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    win.canvas.select([a.id])
    key(qtbot, win, Qt.Key.Key_Delete)  # locked: stays
    assert win.store.count_annotations() == 2
    win.canvas.selectionChanged.emit([b.id])  # canvas -> list
    assert win.annotations.selected_ids() == [b.id]


def test_properties_edit_attributes_and_instance(win, qtbot):
    draw_box(win)
    (a,) = win.controller.annotations()
    win.annotations.set_selection([a.id])
    win.properties.show_annotations([a.id])
    p = win.properties
    p._add_attribute()
    p.attributes.item(0, 0).setText("occluded")
    p.attributes.item(0, 1).setText("true")
    assert win.store.annotation(a.id).attributes == {"occluded": True}
    p.attributes.item(0, 1).setText("0.5")
    assert win.store.annotation(a.id).attributes == {"occluded": 0.5}
    assert p.current.attributes == {"occluded": 0.5}
    win.controller.undo()
    assert p.read_attributes() == {"occluded": True}  # undo shows in the panel
    win.controller.redo()
    p.instance.setValue(7)
    p.instance.editingFinished.emit()
    assert win.store.annotation(a.id).instance_id == 7
    win.controller.undo()
    assert win.store.annotation(a.id).instance_id is None
    p.attributes.setCurrentCell(0, 0)
    p._remove_attribute()
    assert win.store.annotation(a.id).attributes == {}


def test_number_keys_pick_categories_and_palette_edits(win, qtbot, monkeypatch):
    key(qtbot, win, Qt.Key.Key_2)
    dog = win.store.category_by_name("dog")
    assert win.categories.current_id() == dog.id
    assert win.canvas.current_category() == dog.id
    win.categories.ask_color = lambda parent, current: "#123456"
    win.categories.recolor_current()
    assert win.store.category(dog.id).color == "#123456"
    item = win.categories.list.currentItem()
    item.setText("puppy")
    assert win.store.category(dog.id).name == "puppy"
    item.setText("cat")  # duplicate name: refused, stored name shown again
    assert win.store.category(dog.id).name == "puppy" and item.text() == "puppy"
    assert win.last_error_box is not None
    win.last_error_box.close()
    draw_box(win, cat=dog.id)
    win.categories.confirm = lambda *a: False
    win.categories.delete_current()
    assert win.store.count_annotations() == 1
    win.categories.confirm = lambda *a: True
    win.categories.delete_current()
    assert win.store.category_by_name("puppy") is None and win.store.count_annotations() == 0
    win.categories.add_category()
    assert win.store.category_by_name("category 2") is not None


def test_visibility_checkbox_hides_category_on_canvas(win, qtbot):
    item = win.categories.list.item(0)
    seen = []
    win.categories.visibilityChanged.connect(lambda cid, vis: seen.append((cid, vis)))
    item.setCheckState(Qt.CheckState.Unchecked)
    assert seen == [(1, False)] and not win.categories.is_visible(1)
    assert win.canvas.shapes.hidden_categories == {1}


def test_reopen_finds_everything(tmp_path, qtbot):
    path = make_project(tmp_path)
    w = open_window(qtbot, path)
    draw_box(w)
    w.controller.set_status("done")
    img = w.controller.image.id
    w.close()
    assert w.store._db is None  # closed with the window
    assert w.loader.pool.activeThreadCount() == 0
    again = ProjectStore(path)
    assert again.annotations(img)[0].geometry == Box(2, 2, 8, 8) and again.image(img).status == "done"
    again.close()


def test_filters_change_the_list_and_next_previous_order(win, qtbot):
    ids = [r.id for r in win.store.images()]
    win.controller.open_image(ids[1])
    draw_box(win)  # ids[1] in progress, with a cat
    win.browser.status_filter.setCurrentIndex(win.browser.status_filter.findData("new"))
    assert [r.id for r in win.browser.model.records()] == [ids[0], ids[2]]
    assert win.controller.order == [ids[0], ids[2]]
    win.browser.status_filter.setCurrentIndex(0)
    win.browser.category_filter.setCurrentIndex(win.browser.category_filter.findData(1))
    assert [r.id for r in win.browser.model.records()] == [ids[1]]
    win.browser.category_filter.setCurrentIndex(win.browser.category_filter.findData(-1))
    assert [r.id for r in win.browser.model.records()] == [ids[0], ids[2]]
    assert "2 of 3" in win.browser.summary.text()
    win.browser.category_filter.setCurrentIndex(0)
    win.browser.name_filter.setText("img00002")
    qtbot.waitUntil(lambda: [r.id for r in win.browser.model.records()] == [ids[2]], timeout=3000)
    assert win.controller.order == [ids[2]]


def test_thumbnails_arrive_from_worker_threads(win, qtbot):
    qtbot.waitUntil(lambda: win.loader.get(win.store.images()[0].id) is not None, timeout=5000)
    img = win.loader.get(win.store.images()[0].id)
    assert max(img.width(), img.height()) == 40  # small images are not enlarged


def test_big_project_opens_fast_and_browser_is_lazy(tmp_path, qtbot):
    path = make_project(tmp_path, n_images=2000, with_files=False)
    t0 = time.perf_counter()
    w = open_window(qtbot, path)
    qtbot.wait(50)
    elapsed = time.perf_counter() - t0
    assert w.browser.model.rowCount() == 2000
    visible = w.browser.view.viewport().height() // w.browser.view.sizeHintForRow(0) + 2
    assert 0 < w.loader.requests <= visible + 2, (w.loader.requests, visible)
    assert elapsed < 10
    w.browser.view.scrollToBottom()
    qtbot.wait(50)
    assert w.loader.requests <= 2 * visible + 4
    w.close()


def test_help_lists_every_shortcut_from_the_actions(win, qtbot):
    draw_box(win)  # Undo's text is now "Undo draw box": the help still says "Undo"
    key(qtbot, win, Qt.Key.Key_F1)
    assert win.help_dialog is not None and win.help_dialog.isVisible()
    rows = win.help_dialog.rows()
    by_command = {r[1]: r[2] for r in rows}
    assert "Ctrl+Z" in by_command["Undo"] and "Ctrl+Y" in by_command["Redo"]
    assert by_command["Next image"] == "D  or  PgDown"
    assert by_command["Train & predict…"] == "Ctrl+T"
    assert by_command["Mark in progress"] == "menu only"  # every command, with or without keys
    assert len(rows) == len(win.actions_by_name) + len(CANVAS_ROWS)
    for act in win.actions_by_name.values():
        keys = [k.toString() for k in act.shortcuts()]
        assert all(any(k in r[2] for r in rows) for k in keys), act.objectName()
    assert "Esc" in by_command["Cancel drawing"] and "Space+drag" in by_command["Pan"]
    win.help_dialog.close()


def test_failing_edit_shows_a_message_and_keeps_the_project(win, qtbot):
    img = win.controller.image
    win.canvas.editRequested.emit(EditRequest("draw box", add=[Annotation(img.id, 999, Box(0, 0, 3, 3))]))
    assert win.last_error_box is not None and win.last_error_box.isVisible()
    assert "draw box" in win.last_error_box.windowTitle()
    assert win.store.count_annotations() == 0
    win.last_error_box.close()


def test_add_panel_adds_a_view_toggle(win, qtbot):
    from PySide6.QtWidgets import QLabel
    dock = win.add_panel("Jobs", QLabel("jobs"))
    assert dock.widget().text() == "jobs"
    assert "Jobs" in [a.text() for a in win.panels_menu.actions()]


def test_delete_key_in_list_and_on_canvas(win, qtbot):
    draw_box(win)
    draw_box(win, 20)
    a, b = win.controller.annotations()
    win.annotations.view.setFocus()
    win.annotations.set_selection([a.id])
    qtbot.keyClick(win.annotations.view, Qt.Key.Key_Delete)
    assert [x.id for x in win.store.annotations(win.controller.image.id)] == [b.id]
    win.canvas.setFocus()
    win.canvas.select([b.id])
    qtbot.keyClick(win.canvas, Qt.Key.Key_Delete)
    assert win.store.count_annotations() == 0
    key(qtbot, win, Qt.Key.Key_Z, CTRL)
    assert [x.id for x in win.store.annotations(win.controller.image.id)] == [b.id]


def test_run_reports_a_bad_project_and_a_locked_one(tmp_path, qtbot, monkeypatch):
    import app.main as main
    shown = []
    monkeypatch.setattr(main.QMessageBox, "critical", lambda *a: shown.append(a[2]))
    assert main.run(str(tmp_path / "missing.vbproj")) == 2
    assert "missing.vbproj" in shown[-1] and "not found" in shown[-1]
    path = make_project(tmp_path / "p")
    holder = ProjectStore(path)
    try:
        assert main.run(str(path)) == 2
        assert "another Visionbench process" in shown[-1]
    finally:
        holder.close()


def test_draw_a_box_with_the_mouse_then_undo_redo_reopen(tmp_path, qtbot):
    """The whole path: R picks the box tool, a real drag on the canvas, the store has the box."""
    path = make_project(tmp_path)
    w = open_window(qtbot, path, ask_label=True)
    key(qtbot, w, Qt.Key.Key_2)  # category dog for new shapes
    key(qtbot, w, Qt.Key.Key_R)
    assert w.canvas.tool() == "box"
    cv = w.canvas
    p0, p1 = cv.map_from_image(5, 5).toPoint(), cv.map_from_image(25, 20).toPoint()
    qtbot.mousePress(cv, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p0)
    for t in (0.3, 0.6, 1.0):
        qtbot.mouseMove(cv, p0 + (p1 - p0) * t)
    qtbot.mouseRelease(cv, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p1)
    img = w.controller.image.id
    assert w.store.annotations(img) == []  # the new box waits for its label
    prompt = w.labeling.prompt
    assert prompt.isVisible() and prompt.list.currentItem().text() == "dog"  # the category picked with 2
    qtbot.keyClick(prompt.edit, Qt.Key.Key_Return)
    (a,) = w.store.annotations(img)
    assert a.kind == "box" and a.category_id == w.store.category_by_name("dog").id
    x1, y1, x2, y2 = a.geometry.x1, a.geometry.y1, a.geometry.x2, a.geometry.y2
    assert abs(x1 - 5) < 1 and abs(y1 - 5) < 1 and abs(x2 - 25) < 1 and abs(y2 - 20) < 1
    assert w.annotations.model.rowCount() == 1 and w.store.image(img).status == "in_progress"
    key(qtbot, w, Qt.Key.Key_Z, CTRL)
    assert w.store.count_annotations() == 0 and cv.annotations() == []
    key(qtbot, w, Qt.Key.Key_Y, CTRL)
    assert [x.id for x in cv.annotations()] == [a.id]
    w.close()
    again = ProjectStore(path)
    assert again.annotation(a.id).geometry == a.geometry
    again.close()


def test_image_keys_work_while_the_browser_has_focus(win, qtbot):
    ids = win.controller.order
    win.browser.view.setFocus()
    qtbot.keyClick(win.browser.view, Qt.Key.Key_D)
    assert win.controller.image.id == ids[1]
    qtbot.keyClick(win.browser.view, Qt.Key.Key_A)
    assert win.controller.image.id == ids[0]


def test_properties_change_the_category_of_several_shapes_at_once(win, qtbot):
    draw_box(win)
    draw_box(win, 20)
    ids = [a.id for a in win.controller.annotations()]
    win.canvas.select(ids)
    p = win.properties
    assert p.summary.text() == "2 shapes selected" and not p.instance.isEnabled()
    p.category.setCurrentIndex(p.category.findData(2))
    p.category.activated.emit(p.category.currentIndex())
    assert [win.store.annotation(i).category_id for i in ids] == [2, 2]
    assert p.category.currentData() == 2
    win.controller.undo()
    assert [win.store.annotation(i).category_id for i in ids] == [1, 1]


def test_jobs_dock_shows_when_a_job_starts_and_close_stops_it(tmp_path, qtbot):
    from engine.jobs import Progress
    from engine.jobs.runner import Job

    w = open_window(qtbot, make_project(tmp_path))
    assert not w.docks["Jobs"].isVisible()

    def job(token):
        for i in range(1000):
            yield Progress(i, 1000)
            time.sleep(0.01)

    job_id = w.jobs.submit(Job("count", job))
    assert w.docks["Jobs"].isVisible()
    w.close()
    assert w.jobs.runner(job_id).done  # cancelled and joined: no thread outlives the window


def test_training_panel_is_built_on_first_use_and_predictions_are_undoable(win, qtbot, monkeypatch):
    import sys
    import types

    made = []

    class StubTrainPanel(QLabel):
        def __init__(self, bridge, get_store_path, get_current_image, on_predicted=None, parent=None):
            super().__init__("train", parent)
            made.append((bridge, get_store_path(), get_current_image(), on_predicted))

    stub = types.ModuleType("app.panels.train_panel")
    stub.TrainPanel = StubTrainPanel
    monkeypatch.setitem(sys.modules, "app.panels.train_panel", stub)
    assert "Train" not in win.docks
    key(qtbot, win, Qt.Key.Key_T, CTRL)
    key(qtbot, win, Qt.Key.Key_T, CTRL)
    assert len(made) == 1 and win.docks["Train"].isVisible()
    bridge, store_path, image, on_predicted = made[0]
    assert bridge is win.jobs and store_path == win.store.path and image.id == win.controller.image.id
    img = win.controller.image.id
    on_predicted([Annotation(img, 1, Box(1, 1, 9, 9), source="unet", score=0.9)])
    (a,) = win.store.annotations(img)
    assert a.source == "unet" and a.score == 0.9 and win.annotations.model.rowCount() == 1
    win.controller.undo()
    assert win.store.count_annotations() == 0


def test_merge_split_convert_by_keys_each_one_undo_step(win, qtbot):
    draw_box(win, 1, 1, 4)
    draw_box(win, 20, 10, 4)
    a, b = win.controller.annotations()
    img = win.controller.image.id
    kinds = lambda: sorted(x.kind for x in win.store.annotations(img))  # noqa: E731
    win.canvas.select([a.id, b.id])
    key(qtbot, win, Qt.Key.Key_M, CTRL)
    assert kinds() == ["mask"] and win.canvas.selected_ids() == []
    (m,) = win.store.annotations(img)
    win.canvas.select([m.id])
    key(qtbot, win, Qt.Key.Key_M, CTRL | SHIFT)
    assert kinds() == ["mask", "mask"]
    parts = [x.id for x in win.store.annotations(img)]
    win.canvas.select(parts)
    key(qtbot, win, Qt.Key.Key_K, CTRL | SHIFT)
    assert kinds() == ["polygon", "polygon"]
    win.canvas.select([x.id for x in win.store.annotations(img)])
    key(qtbot, win, Qt.Key.Key_K, CTRL)
    assert kinds() == ["mask", "mask"]
    for expected in (["polygon", "polygon"], ["mask", "mask"], ["mask"], ["box", "box"]):
        key(qtbot, win, Qt.Key.Key_Z, CTRL)
        assert kinds() == expected
    assert sorted(x.id for x in win.store.annotations(img)) == [a.id, b.id]


def test_open_another_project_replaces_the_window(tmp_path, qtbot):
    first = open_window(qtbot, make_project(tmp_path / "a"))
    other = make_project(tmp_path / "b", n_images=2)
    assert first.open_project(tmp_path / "nowhere.vbproj") is None
    assert "nowhere.vbproj" in first.last_error_box.text()
    first.last_error_box.close()
    second = first.open_project(other)
    qtbot.addWidget(second)
    assert first.store._db is None and second.store.path == other
    assert str(other) in second.windowTitle() and second.browser.model.rowCount() == 2
    second.close()


def test_accept_or_reject_model_proposals(win, qtbot):
    ids = win.controller.order
    img = win.controller.image.id
    win.controller.record("predict", add=[
        Annotation(img, 1, Box(1, 1, 9, 9), source="unet", score=0.9, attributes={"proposal": True}),
        Annotation(img, 2, Box(20, 5, 30, 15), source="unet", score=0.4, attributes={"proposal": True}),
    ])
    good, bad = win.controller.annotations()
    model = win.annotations.model
    assert model.index(0, 5).data() == "unet ?" and model.index(0, 5).data(Qt.ItemDataRole.FontRole).italic()
    win.browser.category_filter.setCurrentIndex(win.browser.category_filter.findData(-2))
    assert [r.id for r in win.browser.model.records()] == [img]
    win.canvas.select([bad.id])
    qtbot.keyClick(win.canvas, Qt.Key.Key_Delete)  # reject
    win.canvas.select([])
    key(qtbot, win, Qt.Key.Key_A, CTRL | SHIFT)  # nothing selected: every proposal of the image
    (kept,) = win.store.annotations(img)
    # accepted: ground truth now, the model's score kept as model_score (ADR 0017)
    assert kept.id == good.id and kept.attributes == {"model_score": 0.9}
    assert (kept.source, kept.score) == ("unet", None)
    assert model.index(0, 5).data() == "unet" and model.index(0, 6).data() == "0.90"
    win.browser.category_filter.setCurrentIndex(win.browser.category_filter.findData(-2))
    win.browser.refresh()
    assert win.browser.model.records() == [] and ids


def test_dock_layout_is_remembered_when_settings_are_given(tmp_path, qtbot):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    w = open_window(qtbot, make_project(tmp_path / "p"))
    w.use_layout_settings(settings)
    w.docks["Categories"].hide()
    w.close()
    again = open_window(qtbot, tmp_path / "p" / "p.vbproj")
    assert again.docks["Categories"].isVisible()  # no settings: the default layout
    again.use_layout_settings(settings)
    assert not again.docks["Categories"].isVisible()
    again.close()


def test_add_images_from_a_folder_in_the_background(tmp_path, qtbot):
    import numpy as np
    from PIL import Image

    w = open_window(qtbot, make_project(tmp_path / "p"))
    new = tmp_path / "p" / "more"
    (new / "sub").mkdir(parents=True)
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(new / "a.png")
    Image.fromarray(np.zeros((7, 9), np.uint8)).save(new / "sub" / "b.jpg")
    (new / "broken.png").write_bytes(b"nope")
    (new / "notes.txt").write_text("hello")
    w.add_images(new)
    qtbot.waitUntil(lambda: w.last_add_report is not None, timeout=10000)
    assert w.last_add_report["added"] == 2 and len(w.last_add_report["skipped"]) == 2
    assert "broken.png" in w.last_error_box.detailedText() and "notes.txt" in w.last_error_box.detailedText()
    w.last_error_box.close()
    paths = {r.path: (r.width, r.height) for r in w.store.images()}
    assert paths["more/a.png"] == (16, 12) and paths["more/sub/b.jpg"] == (9, 7)
    assert w.browser.model.rowCount() == 5
    w.last_add_report = None
    w.add_images(new)  # again: nothing new
    qtbot.waitUntil(lambda: w.last_add_report is not None, timeout=10000)
    assert (w.last_add_report["added"], w.last_add_report["known"]) == (0, 2)
    w.close()

"""An annotator adds images one at a time: picks two files with File > Add images…, drops a photo
and a folder onto the window (or onto the canvas), and pastes a screenshot from the clipboard as a
new image of the project."""
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QFileDialog

from app.main_window import MainWindow
from engine.annotations import ProjectStore
from tests.app.workbench_project import make_project


@pytest.fixture
def win(tmp_path, qtbot):
    w = MainWindow(ProjectStore(make_project(tmp_path / "proj")))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    assert w.jobs.shutdown(10.0)


def _photo(path, w=64, h=48):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(path)
    return path


def _paths(store):
    return sorted(store.image_path(r).name for r in store.images())


def _wait_added(qtbot, win, n):
    qtbot.waitUntil(lambda: win.store.count_images() == n and not win.file._pending, timeout=20_000)


def _drop(target, mime, pos=QPoint(200, 200)):
    """Drag ``mime`` over ``target`` and let go, as the window system would; returns (entered, dropped)."""
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    drop = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    return enter.isAccepted(), drop.isAccepted()


def test_file_add_images_adds_the_chosen_files_and_shows_the_first(win, qtbot, tmp_path, monkeypatch):
    a, b = _photo(tmp_path / "new" / "street.png"), _photo(tmp_path / "new" / "kitchen.jpg", 80, 60)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args, **kw: ([str(a), str(b)], ""))
    texts = [x.text() for x in win.file_menu.actions()]
    assert texts.index("Add images…") == texts.index("Add images from folder…") - 2  # beside it, with paste
    win.actions_by_name["add_image_files"].trigger()
    _wait_added(qtbot, win, 5)
    assert {"street.png", "kitchen.jpg"} <= set(_paths(win.store))
    assert win.controller.image.path.endswith("street.png")
    assert win.last_add_report["added"] == 2


def test_dropping_files_and_a_folder_on_the_window_adds_their_images(win, qtbot, tmp_path):
    photo = _photo(tmp_path / "drop" / "classroom.png")
    folder = tmp_path / "drop" / "more"
    _photo(folder / "a.png")
    _photo(folder / "sub" / "b.png")
    (folder / "notes.txt").write_text("not an image")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo)), QUrl.fromLocalFile(str(folder))])
    assert _drop(win, mime) == (True, True)
    _wait_added(qtbot, win, 6)
    assert {"classroom.png", "a.png", "b.png"} <= set(_paths(win.store))
    assert [p for p, _ in win.last_add_report["skipped"]] == [str(folder / "notes.txt")]
    assert win.controller.image.path.endswith("classroom.png")


def test_a_file_dropped_on_the_canvas_reaches_the_window(win, qtbot, tmp_path):
    photo = _photo(tmp_path / "drop" / "one.png")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    viewport = getattr(win.canvas, "viewport", lambda: win.canvas)()
    _drop(viewport, mime, QPoint(50, 50))
    _wait_added(qtbot, win, 4)
    assert "one.png" in _paths(win.store)


def test_dropping_text_is_refused_and_changes_nothing(win, qtbot):
    mime = QMimeData()
    mime.setText("just words")
    assert _drop(win, mime)[0] is False
    qtbot.wait(100)
    assert win.store.count_images() == 3


def test_pasting_a_screenshot_adds_it_as_a_new_image_of_the_project(win, qtbot, tmp_path):
    shot = QImage(120, 90, QImage.Format.Format_RGB32)
    shot.fill(QColor("#3a7bd5"))
    QApplication.clipboard().setImage(shot)
    win.actions_by_name["paste"].trigger()  # Ctrl+V: no shapes were copied, so the picture is pasted
    assert win.store.count_images() == 4
    pasted = win.add_files.last_pasted
    assert pasted.parent == tmp_path / "proj" / "pasted" and pasted.suffix == ".png"
    assert Image.open(pasted).size == (120, 90)
    assert Image.open(pasted).convert("RGB").getpixel((5, 5)) == (0x3A, 0x7B, 0xD5)
    assert win.controller.image.path == "pasted/" + pasted.name
    assert (win.controller.image.width, win.controller.image.height) == (120, 90)
    win.actions_by_name["paste_image"].trigger()  # again, from the explicit action: a second file
    assert win.store.count_images() == 5 and win.add_files.last_pasted != pasted
    assert not list((tmp_path / "proj" / "pasted").glob("*.tmp.png"))


def test_pasting_copied_files_adds_them(win, qtbot, tmp_path):
    photo = _photo(tmp_path / "copied" / "desk.png")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    QApplication.clipboard().setMimeData(mime)
    win.actions_by_name["paste_image"].trigger()
    _wait_added(qtbot, win, 4)
    assert "desk.png" in _paths(win.store)


def test_pasting_with_an_empty_clipboard_says_so(win, qtbot):
    QApplication.clipboard().setText("no picture here")
    win.actions_by_name["paste_image"].trigger()
    assert "clipboard holds no image" in win.statusBar().currentMessage()
    assert win.store.count_images() == 3

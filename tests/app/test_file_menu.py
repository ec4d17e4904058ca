"""The annotator's round trip through the File menu, with the dialogs clicked like a user would:
import LabelMe, VOC and X-AnyLabeling-layout YOLO folders, see the problems of a broken source
and import its valid part, add a folder whose annotation files lie beside the images, open a
.json, export with a summary and an overwrite question, create a project, reopen a recent one."""
import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.dialogs.import_dialog import ProblemsDialog
from app.main_window import MainWindow
from engine.annotations import Annotation, Point, ProjectStore
from tests.annotated_folders import BOXES, labelme_json, write_image, x_anylabeling_folder
from tests.app.workbench_project import make_project

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def win(tmp_path, qtbot):
    w = MainWindow(ProjectStore(make_project(tmp_path / "proj")))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def wait_jobs(qtbot, w, timeout=20000):
    qtbot.waitUntil(lambda: not w.file._pending, timeout=timeout)


def boxes_in(store, image_rel: str) -> list[tuple]:
    rec = store.image_by_path(image_rel)
    names = {c.id: c.name for c in store.categories()}
    return sorted((names[a.category_id], round(a.geometry.x1), round(a.geometry.y1), round(a.geometry.x2),
                   round(a.geometry.y2)) for a in store.annotations(rec.id))


def import_through_menu(qtbot, w, fmt_name: str, src) -> None:
    w.actions_by_name["import"].trigger()
    dialog = w.file.dialog
    assert dialog.isVisible() and not dialog.import_button.isEnabled()  # no source yet
    dialog.format_box.setCurrentIndex(dialog.format_box.findText(fmt_name))
    qtbot.keyClicks(dialog.source_edit, str(src))
    qtbot.mouseClick(dialog.import_button, LEFT)
    wait_jobs(qtbot, w)


@pytest.mark.parametrize("fmt_name, layout", [
    ("LabelMe / X-AnyLabeling JSON", "labelme"),
    ("Pascal VOC XML", "voc"),
    ("YOLO labels", "yolo"),
])
def test_file_import_of_each_folder_layout_adds_its_boxes(win, qtbot, tmp_path, fmt_name, layout):
    root = tmp_path / "proj" / "incoming"
    x_anylabeling_folder(root)
    if layout != "labelme":  # each import sees only its own format's files
        (root / "demo.json").unlink()
    if layout != "voc":
        (root / "Annotations" / "demo.xml").unlink()
    if layout != "yolo":
        (root / "labels" / "demo.txt").unlink()
    categories_before = win.categories.list.count()
    import_through_menu(qtbot, win, fmt_name, root)
    assert boxes_in(win.store, "incoming/demo.png") == sorted(BOXES)
    assert win.file.last_import["annotations_added"] == len(BOXES)
    assert win.browser.model.rowCount() == 4  # three images of the project and the imported one
    assert win.categories.list.count() == categories_before  # cat and dog were there already
    assert "Imported 3 shape(s)" in win.statusBar().currentMessage()


def test_problems_are_listed_by_file_field_and_line_and_the_valid_part_imports(win, qtbot, tmp_path):
    src = tmp_path / "proj" / "broken"
    write_image(src / "a.png")
    labelme_json(src / "a.json", "a.png")
    write_image(src / "b.png")
    doc = json.loads(labelme_json(src / "b.json", "b.png").read_text())
    doc["shapes"][2]["points"] = [[1, 2]]
    (src / "b.json").write_text(json.dumps(doc))
    import_through_menu(qtbot, win, "LabelMe / X-AnyLabeling JSON", src)
    dialog = win.file.dialog
    assert isinstance(dialog, ProblemsDialog) and dialog.isVisible()
    [(file, field, line, message)] = dialog.rows()
    assert file == "b.json" and field.startswith("shapes[2]") and "point" in message
    assert win.store.image_by_path("broken/a.png") is None  # nothing imported before the answer
    qtbot.mouseClick(dialog.import_button, LEFT)
    assert len(boxes_in(win.store, "broken/a.png")) == 3 and len(boxes_in(win.store, "broken/b.png")) == 2
    assert len(win.file.last_import["skipped"]) == 1


def test_a_source_that_cannot_be_read_says_why(win, qtbot, tmp_path):
    import_through_menu(qtbot, win, "Pascal VOC XML", tmp_path / "missing")
    assert "missing" in win.last_error_box.text() or "missing" in win.last_error_box.informativeText()


def test_add_images_offers_the_annotations_beside_them_and_imports_after_yes(win, qtbot, tmp_path):
    root = x_anylabeling_folder(tmp_path / "proj" / "labelled")
    win.add_images(root)
    wait_jobs(qtbot, win)
    assert win.last_add_report["added"] == 1 and win.last_add_report["skipped"] == []
    offer = win.file.dialog
    assert [box.text().split(":")[0] for box, _ in offer.checks] == [
        "LabelMe / X-AnyLabeling JSON", "Pascal VOC XML", "YOLO labels"]
    assert [box.isChecked() for box, _ in offer.checks] == [True, False, False]  # one of the three kinds
    assert boxes_in(win.store, "labelled/demo.png") == []
    qtbot.mouseClick(offer.buttons.buttons()[0], LEFT)  # Import
    wait_jobs(qtbot, win)
    assert boxes_in(win.store, "labelled/demo.png") == sorted(BOXES)
    assert win.store.count_images() == 4  # the image was not added twice


def test_opening_a_json_file_offers_to_import_it(win, qtbot, tmp_path):
    root = tmp_path / "proj" / "lm"
    write_image(root / "demo.png")
    labelme_json(root / "demo.json", "demo.png")
    assert win.open_project(root / "demo.json") is None  # the window stays on its project
    box = win.file.dialog
    assert isinstance(box, QMessageBox) and "LabelMe" in box.text()
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), LEFT)
    wait_jobs(qtbot, win)
    assert boxes_in(win.store, "lm/demo.png") == sorted(BOXES)


def test_export_asks_before_a_non_empty_folder_and_says_what_the_format_could_not_hold(win, qtbot, tmp_path):
    img = win.store.images()[0]
    win.controller.record("draw", add=[Annotation(img.id, 1, Point(3, 3))])
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    win.actions_by_name["export"].trigger()
    dialog = win.file.dialog
    dialog.set_format("coco")
    qtbot.keyClicks(dialog.dest_edit, str(dest))
    qtbot.mouseClick(dialog.export_button, LEFT)
    question = win.file.dialog
    assert isinstance(question, QMessageBox) and "not empty" in question.text()
    qtbot.mouseClick(question.button(QMessageBox.StandardButton.Yes), LEFT)
    wait_jobs(qtbot, win)
    summary = win.file.dialog
    assert "Export finished" == summary.windowTitle() and "1 point" in summary.text()
    assert (dest / "annotations.json").is_file() and (dest / "keep.txt").read_text() == "mine"
    assert win.file.last_export["images"] == 3


def test_export_dialog_shows_yolo_options_and_what_auto_picks(win, qtbot, tmp_path):
    win.actions_by_name["export"].trigger()
    dialog = win.file.dialog
    dialog.set_format("voc")
    assert set(dialog.option_boxes) == {"keep_image_format", "convention"}
    dialog.set_format("yolo")
    assert list(dialog.option_boxes) == ["task"]
    assert "detect" in dialog.task_note.text()  # no masks or polygons in this project
    dialog.option_boxes["task"].setCurrentIndex(dialog.option_boxes["task"].findData("segment"))
    assert "segment" in dialog.task_note.text()
    dialog.split_box.setCurrentIndex(dialog.split_box.findData("train"))
    qtbot.keyClicks(dialog.dest_edit, str(tmp_path / "yolo"))
    qtbot.mouseClick(dialog.export_button, LEFT)
    wait_jobs(qtbot, win)
    assert win.file.last_export["task"] == "segment" and (tmp_path / "yolo" / "data.yaml").is_file()


def test_new_project_opens_in_place_and_the_old_one_is_a_recent_project(win, qtbot, tmp_path):
    old = win.store.path
    new = win.file.new_project(tmp_path / "fresh")
    qtbot.addWidget(new)
    assert new.store.path == tmp_path / "fresh.vbproj" and new.store.count_images() == 0
    new.file.fill_recent_menu(new.recent_menu)
    assert [a.text() for a in new.recent_menu.actions()] == [str(old)]
    new.recent_menu.actions()[0].trigger()
    qtbot.waitUntil(lambda: not new.isVisible(), timeout=5000)
    again = new.file.recent  # shared by the windows of this session
    assert again.paths()[0] == str(old)
    assert win.file.new_project(tmp_path / "fresh") is None  # exists already: refused, said why
    assert "already exists" in win.last_error_box.text() or "already exists" in win.last_error_box.informativeText()


def test_export_leaves_unreviewed_proposals_out_unless_the_box_is_ticked(win, qtbot, tmp_path):
    from engine.data.truth import as_proposal

    img = win.store.images()[0]
    cat = win.store.categories()[0].id
    win.controller.record("prelabel", add=[as_proposal(Annotation(img.id, cat, Point(4, 4), score=0.7))])
    win.actions_by_name["export"].trigger()
    dialog = win.file.dialog
    assert dialog.proposals_box.isEnabled() and not dialog.proposals_box.isChecked()
    assert "1 in the project" in dialog.proposals_box.text()
    dialog.set_format("labelme")
    qtbot.keyClicks(dialog.dest_edit, str(tmp_path / "out"))
    qtbot.mouseClick(dialog.export_button, LEFT)
    wait_jobs(qtbot, win)
    assert win.file.last_export["proposals_left_out"] == 1
    assert "1 unreviewed model proposal(s) left out" in win.file.dialog.text()
    win.actions_by_name["export"].trigger()
    dialog = win.file.dialog
    dialog.set_format("labelme")
    dialog.proposals_box.setChecked(True)
    qtbot.keyClicks(dialog.dest_edit, str(tmp_path / "all"))
    qtbot.mouseClick(dialog.export_button, LEFT)
    wait_jobs(qtbot, win)
    assert win.file.last_export["proposals_left_out"] == 0

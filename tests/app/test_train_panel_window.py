"""The workbench's Models > Train & predict, end to end in the real window with a tiny U-Net:
train, watch, predict the current image into undoable mask annotations, cancel from the Jobs
panel, and a failing training shows one error dialog while the window keeps working."""
import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

from app.main_window import MainWindow
from engine.annotations.store import ProjectStore
from tests.engine.data.seg_project import make_seg_project
from tests.engine.train.unet_fixtures import TINY_UNET

TINY = {**TINY_UNET, "preview_every": 1, "seed": 0}


@pytest.fixture
def win(qtbot, tmp_path):
    project = make_seg_project(tmp_path, n_train=8, n_val=2, size=48)
    w = MainWindow(ProjectStore(project))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def _panel(win):
    win.actions_by_name["train_panel"].trigger()
    panel = win.docks["Train"].widget()
    panel.config_overrides = dict(TINY)
    return panel


def _error_boxes():
    return [b for b in QApplication.topLevelWidgets() if isinstance(b, QMessageBox) and b.isVisible()]


def test_train_then_predict_current_image_into_undoable_masks(win, qtbot):
    panel = _panel(win)
    dock = win.docks["Train"]
    qtbot.waitUntil(lambda: dock.width() >= min(640, int(win.width() * 0.45)) - 30, timeout=3000)
    assert dock.isVisible() and dock.width() >= min(640, int(win.width() * 0.45)) - 30  # room for the views
    panel.epochs.setValue(2)
    panel.start_button.click()
    assert win.docks["Jobs"].isVisible()
    qtbot.waitUntil(lambda: panel.train_job_id is None, timeout=120_000)
    assert panel.last_outcome.state == "finished", panel.last_outcome.error
    assert (len(panel.views.curves.series.get("loss", [])) == 4
            and len(panel.views.curves.series.get("val_miou", [])) == 3)
    assert panel.views.weight_map.has_image() and panel.checkpoint.is_file()

    store, img = win.store, win.controller.image
    manual = store.annotations(img.id)
    panel.predict_button.click()
    qtbot.waitUntil(lambda: panel.predict_job_id is None, timeout=60_000)
    assert panel.last_outcome.state == "finished", panel.last_outcome.error
    # the heatmaps and the argmax map now show the current image
    assert panel.views.heatmap.item.image.shape == (img.height, img.width)
    assert panel.views.argmax.data["class_map"].shape == (img.height, img.width)
    predicted = [a for a in store.annotations(img.id) if a.source == f"unet:{panel.checkpoint.stem}"]
    assert predicted, "the tiny model predicted no region at all"
    assert all(a.kind == "mask" and 0 < a.score <= 1 and a.category_id in {1, 2} for a in predicted)
    ids = {a.id for a in predicted}
    assert ids <= {a.id for a in win.canvas.annotations()}  # on the canvas
    rows = {win.annotations.model.annotation_at(r).id for r in range(win.annotations.model.rowCount())}
    assert ids <= rows  # and in the annotation list

    win.actions_by_name["undo"].trigger()  # one step takes the whole prediction back
    assert {a.id for a in store.annotations(img.id)} == {a.id for a in manual}
    assert win.annotations.model.rowCount() == len(manual) and not ids & {a.id for a in win.canvas.annotations()}
    win.actions_by_name["redo"].trigger()
    assert {a.id for a in store.annotations(img.id)} == {a.id for a in manual} | ids


def test_cancel_from_the_jobs_panel_stops_training_within_a_step(win, qtbot):
    panel = _panel(win)
    panel.epochs.setValue(500)
    job_id = panel.start_training()
    qtbot.waitUntil(lambda: len(panel.views.curves.series.get("loss", [])) >= 2, timeout=60_000)
    runner = win.jobs.runner(job_id)
    steps = []
    win.jobs.progress.connect(lambda j, e: steps.append(e.step) if j == job_id else None)
    win.jobs_panel.cancel_button(job_id).click()
    seen_at_click = len(panel.views.curves.series.get("loss", []))
    qtbot.waitUntil(lambda: runner.done, timeout=30_000)
    assert runner.state == "cancelled"
    qtbot.waitUntil(lambda: panel.train_job_id is None, timeout=5_000)
    # events already queued by the bridge plus at most the one step in flight
    assert len(panel.views.curves.series.get("loss", [])) <= seen_at_click + 2
    assert win.jobs_panel.state_text(job_id) == "cancelled" and panel.start_button.isEnabled()


def test_failing_training_shows_one_error_dialog_and_the_window_keeps_working(win, qtbot):
    panel = _panel(win)
    panel.config_overrides["loss"] = "no-such-loss"
    panel.epochs.setValue(1)
    job_id = panel.start_training()
    qtbot.waitUntil(lambda: panel.train_job_id is None, timeout=60_000)
    assert panel.last_outcome.state == "failed" and "no-such-loss" in panel.last_outcome.error
    boxes = _error_boxes()
    assert len(boxes) == 1  # the Jobs panel reports it; the Train panel does not open a second one
    assert "Traceback" in boxes[0].detailedText() and "no-such-loss" in boxes[0].text()
    assert "failed" in panel.status.text() and win.jobs_panel.state_text(job_id) == "failed"
    boxes[0].close()
    first = win.controller.image.id
    assert win.controller.step_image(1) and win.controller.image.id != first  # still responsive
    panel.config_overrides.pop("loss")
    assert panel.start_training() is not None  # and can train again

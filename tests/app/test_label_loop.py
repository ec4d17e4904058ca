"""Models > Label loop…: a user runs two rounds on a half-labelled project. Round 1 trains a
(tiny) YOLO on the done images in the background and pre-labels the next new images; the user
reviews them with the keyboard (Enter, an edit then Enter, Del, a box drawn by hand, Ctrl+Enter
to mark done), the table counts it live; round 2 freezes round 1's row and trains on more."""
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from engine.assist.label_loop import DEFAULT_FAMILY, load_rounds
from engine.data.truth import is_proposal
from tests.app.test_labeling_comfort import drag_box
from tests.app.test_workbench_window import key, open_window
from tests.engine.assist.test_label_loop import TINY, half_labelled

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LEFT = Qt.MouseButton.LeftButton
ROUND = 60000  # ms: a tiny round takes a few seconds; the machine may be busy


def start_round(qtbot, w):
    loop = w.label_loop
    qtbot.mouseClick(loop.panel.start_button, LEFT)
    assert loop.job_id is not None and not loop.panel.start_button.isEnabled()
    n = len(loop.rounds)
    qtbot.waitUntil(lambda: loop.job_id is None and len(loop.rounds) == n + 1, timeout=ROUND)
    # the round hands the keyboard back to the main window; the platform activates it a moment later
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w.window() and QApplication.focusWidget() is w.canvas)
    return loop.rounds[-1]


def review_image(qtbot, w):
    """On the image with proposals: accept the best, nudge the next one and accept it, reject the
    rest, draw one box by hand, mark the image done."""
    key(qtbot, w, Qt.Key.Key_Return)
    key(qtbot, w, Qt.Key.Key_Right)
    key(qtbot, w, Qt.Key.Key_Return)
    for _ in range(4):  # at most 4 proposals per image (max_detections)
        if w.assist.open_proposals():
            key(qtbot, w, Qt.Key.Key_Delete)
    assert not w.assist.open_proposals()
    drag_box(qtbot, w, 2, 2, 14, 14)
    key(qtbot, w, Qt.Key.Key_V)
    key(qtbot, w, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def test_two_rounds_of_the_label_loop_with_a_review_between(tmp_path, qtbot):
    project = half_labelled(tmp_path)
    w = open_window(qtbot, project)
    w.actions_by_name["label_loop"].trigger()
    loop, panel = w.label_loop, w.label_loop.panel
    assert w.docks["Label loop"].isVisible() and panel.family_box.currentText() == DEFAULT_FAMILY == "maskrcnn"
    panel.family_box.setCurrentText("yolo")  # the tiny configuration below is YOLO's
    assert "5 done image(s) to train on · 7 new image(s) left" == panel.counts_label.text()
    panel.batch.setValue(2)
    panel.score.setValue(0.0)
    loop.config_overrides = {**TINY, "max_detections": 4}
    loop.device = "cpu"

    one = start_round(qtbot, w)
    assert one.trained_on == 5 and len(one.image_ids) == 2 and one.proposals >= 4
    assert w.docks["Review"].isVisible()
    stored = [a for i in one.image_ids for a in w.store.annotations(i) if is_proposal(a)]
    assert len(stored) == one.proposals and {a.source for a in stored} == {"yolo:round-1"}
    row = panel.row_values(0)
    assert row["Round"] == "1 (reviewing)" and row["Open"] == str(one.proposals) and row["Accepted"] == "0"

    for image_id in one.image_ids:
        key(qtbot, w, Qt.Key.Key_N)
        assert w.controller.image.id == image_id
        review_image(qtbot, w)
        assert w.store.image(image_id).status == "done"
    row = panel.row_values(0)  # live while the round is reviewed
    assert (row["Accepted"], row["Edited"], row["Drawn"], row["Open"]) == ("2", "2", "2", "0")
    assert row["Rejected"] == str(one.proposals - 4)
    assert panel.start_button.text() == "Start round 2"

    two = start_round(qtbot, w)
    assert two.trained_on == 7 and two.image_ids and not set(two.image_ids) & set(one.image_ids)
    first, second = panel.row_values(0), panel.row_values(1)
    assert first["Round"] == "1" and (first["Accepted"], first["Edited"], first["Drawn"]) == ("2", "2", "2")
    assert second["Round"] == "2 (reviewing)" and second["Trained on"] == "7"
    assert [r.stats for r in load_rounds(project)] == [one.stats, None]  # kept beside the project
    w.close()

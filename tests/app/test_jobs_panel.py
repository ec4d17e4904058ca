"""The jobs panel: watch progress, press Cancel, see failures without the app stopping."""
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app import error_dialog
from app.jobs_bridge import JobBridge
from app.panels.jobs_panel import JobsPanel
from engine.jobs import Job, Progress


def endless(token):
    step = 0
    while True:
        step += 1
        time.sleep(0.005)
        yield Progress(step % 100, 100, "training")


def short(token, n=20):
    for i in range(n):
        yield Progress(i + 1, n)
    return n


def broken(token):
    yield Progress(1, 3)
    raise ValueError("label 'cat' missing in classes of project.vbproj")


@pytest.fixture
def panel(qtbot):
    bridge = JobBridge()
    widget = JobsPanel(bridge)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    assert bridge.shutdown(timeout=10)
    if widget.last_error_box is not None:
        widget.last_error_box.close()


def test_finished_job_shows_full_bar_and_state(qtbot, panel):
    with qtbot.waitSignal(panel.bridge.finished, timeout=10_000):
        job_id = panel.bridge.submit(Job("count to 20", short))
    assert panel.table.item(panel.row_of(job_id), 0).text() == "count to 20"
    assert panel.state_text(job_id) == "finished"
    bar = panel.progress_bar(job_id)
    assert (bar.maximum(), bar.value()) == (20, 20)
    assert not panel.cancel_button(job_id).isEnabled()


def test_cancel_button_cancels_the_running_job(qtbot, panel):
    job_id = panel.bridge.submit(Job("train forever", endless))
    qtbot.waitUntil(lambda: panel.progress_bar(job_id).maximum() == 100, timeout=10_000)
    button = panel.cancel_button(job_id)
    assert button.isEnabled()
    with qtbot.waitSignal(panel.bridge.finished, timeout=10_000) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert blocker.args[1].state == "cancelled"
    assert panel.state_text(job_id) == "cancelled"
    assert panel.bridge.runner(job_id).state == "cancelled"


def test_failure_opens_a_non_blocking_dialog_and_the_app_keeps_running(qtbot, panel):
    with qtbot.waitSignal(panel.bridge.finished, timeout=10_000):
        failed = panel.bridge.submit(Job("import labels", broken))
    assert panel.state_text(failed) == "failed"
    box = panel.last_error_box
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert "import labels" in box.windowTitle()
    assert "label 'cat' missing" in box.text()
    assert "Traceback" in box.detailedText() and "in broken" in box.detailedText()

    # The dialog did not block: the GUI still runs jobs while it is open.
    with qtbot.waitSignal(panel.bridge.finished, timeout=10_000) as blocker:
        ok = panel.bridge.submit(Job("after failure", short))
    assert blocker.args[0] == ok and panel.state_text(ok) == "finished"


def test_error_hook_can_be_replaced(qtbot, panel, monkeypatch):
    calls = []
    monkeypatch.setattr(error_dialog, "show_error", lambda *args: calls.append(args))
    with qtbot.waitSignal(panel.bridge.finished, timeout=10_000):
        panel.bridge.submit(Job("import labels", broken))
    [(parent, title, message, details)] = calls
    assert parent is panel and "ValueError" in message and "Traceback" in details


def test_clear_finished_keeps_running_rows(qtbot, panel):
    with qtbot.waitSignal(panel.bridge.finished, timeout=10_000):
        done = panel.bridge.submit(Job("done", short))
    running = panel.bridge.submit(Job("running", endless))
    panel.clear_finished()
    assert panel.table.rowCount() == 1
    assert panel.row_of(running) == 0
    with pytest.raises(KeyError):
        panel.row_of(done)
    with qtbot.waitSignal(panel.bridge.finished, timeout=10_000):
        qtbot.mouseClick(panel.cancel_button(running), Qt.MouseButton.LeftButton)
    assert panel.state_text(running) == "cancelled"


def test_panel_created_late_lists_existing_jobs(qtbot):
    bridge = JobBridge()
    with qtbot.waitSignal(bridge.finished, timeout=10_000):
        job_id = bridge.submit(Job("early", short))
    late = JobsPanel(bridge)
    qtbot.addWidget(late)
    assert late.table.item(late.row_of(job_id), 0).text() == "early"
    assert late.state_text(job_id) == "finished"
    assert late.progress_bar(job_id).value() == 20
    assert bridge.shutdown()

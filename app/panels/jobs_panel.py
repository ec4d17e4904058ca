"""Jobs panel: every background job with its progress, state and a Cancel button.

It only listens to :class:`app.jobs_bridge.JobBridge` signals (GUI thread) and calls
``bridge.cancel``; it never sees a thread. A failed job opens the error dialog with the
traceback behind "Show Details"; the dialog does not block, so the app keeps running.
"""
from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import error_dialog
from app.jobs_bridge import JobBridge
from engine.jobs import JobOutcome, Progress

COL_NAME, COL_PROGRESS, COL_STATE, COL_ACTION = range(4)
_HEADERS = ("Job", "Progress", "State", "")


class JobsPanel(QWidget):
    """Table of running and finished jobs of one bridge."""

    def __init__(self, bridge: JobBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self._rows: dict[int, int] = {}  # job id -> table row
        self.last_error_box = None  # the most recent error dialog (tests inspect it)

        self.table = QTableWidget(0, len(_HEADERS), self)
        self.table.setHorizontalHeaderLabels(_HEADERS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_PROGRESS, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_STATE, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_ACTION, QHeaderView.ResizeMode.ResizeToContents)

        self.clear_button = QPushButton("Clear finished", self)
        self.clear_button.clicked.connect(self.clear_finished)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

        bridge.submitted.connect(self._on_submitted)
        bridge.progress.connect(self._on_progress)
        bridge.finished.connect(self._on_finished)
        # Jobs submitted before the panel existed still get a row.
        for info in bridge.jobs():
            self._on_submitted(info.job_id, info.name)
            if info.progress is not None:
                self._on_progress(info.job_id, info.progress)
            if info.outcome is not None:
                self._show_outcome(info.job_id, info.outcome)  # no dialog for old failures

    # ------------------------------------------------------------------ access
    def row_of(self, job_id: int) -> int:
        return self._rows[job_id]

    def progress_bar(self, job_id: int) -> QProgressBar:
        return self.table.cellWidget(self._rows[job_id], COL_PROGRESS)

    def cancel_button(self, job_id: int) -> QPushButton:
        return self.table.cellWidget(self._rows[job_id], COL_ACTION)

    def state_text(self, job_id: int) -> str:
        return self.table.item(self._rows[job_id], COL_STATE).text()

    # ------------------------------------------------------------------ slots
    def _on_submitted(self, job_id: int, name: str) -> None:
        if job_id in self._rows:
            return
        row = self.table.rowCount()
        self.table.insertRow(row)
        self._rows[job_id] = row
        self.table.setItem(row, COL_NAME, QTableWidgetItem(name))
        bar = QProgressBar(self.table)
        bar.setRange(0, 0)  # busy until the first Progress says how much there is
        self.table.setCellWidget(row, COL_PROGRESS, bar)
        self.table.setItem(row, COL_STATE, QTableWidgetItem("running"))
        cancel = QPushButton("Cancel", self.table)
        cancel.setToolTip("Stop this job at its next step")
        cancel.clicked.connect(lambda _checked=False, j=job_id: self._cancel(j))
        self.table.setCellWidget(row, COL_ACTION, cancel)

    def _cancel(self, job_id: int) -> None:
        self.bridge.cancel(job_id)
        row = self._rows.get(job_id)
        if row is not None:
            self.table.item(row, COL_STATE).setText("cancelling")
            self.table.cellWidget(row, COL_ACTION).setEnabled(False)

    def _on_progress(self, job_id: int, event: Progress) -> None:
        row = self._rows.get(job_id)
        if row is None:
            return
        bar: QProgressBar = self.table.cellWidget(row, COL_PROGRESS)
        if event.total:
            # QProgressBar is int32: scale huge totals to per-mille.
            if event.total > 2**31 - 1:
                bar.setRange(0, 1000)
                bar.setValue(int(1000 * event.step / event.total))
            else:
                bar.setRange(0, int(event.total))
                bar.setValue(max(0, min(int(event.step), int(event.total))))
        else:
            bar.setRange(0, 0)
        if event.message:
            bar.setFormat(f"%p%  {event.message}" if event.total else event.message)
            bar.setToolTip(event.message)

    def _on_finished(self, job_id: int, outcome: JobOutcome) -> None:
        if job_id not in self._rows:
            return
        self._show_outcome(job_id, outcome)
        if outcome.state == "failed":
            name = self.table.item(self._rows[job_id], COL_NAME).text()
            # Looked up through the module so tests (and the app) can replace the hook.
            self.last_error_box = error_dialog.show_error(
                self, f"Job failed: {name}", f"The job \u201c{name}\u201d failed:\n{outcome.error}", outcome.traceback
            )

    def _show_outcome(self, job_id: int, outcome: JobOutcome) -> None:
        row = self._rows[job_id]
        self.table.item(row, COL_STATE).setText(outcome.state)
        button: QPushButton = self.table.cellWidget(row, COL_ACTION)
        button.setEnabled(False)
        button.setText("")
        bar: QProgressBar = self.table.cellWidget(row, COL_PROGRESS)
        if bar.maximum() == 0:
            bar.setRange(0, 1)  # leave "busy" mode
            bar.setValue(1 if outcome.state == "finished" else 0)
        elif outcome.state == "finished":
            bar.setValue(bar.maximum())
        if outcome.state == "failed":
            self.table.item(row, COL_STATE).setToolTip(outcome.error or "")

    def clear_finished(self) -> None:
        """Remove rows of jobs that have ended."""
        ended = [
            info.job_id
            for info in self.bridge.jobs()
            if info.job_id in self._rows and self.table.item(self._rows[info.job_id], COL_STATE).text()
            in ("finished", "cancelled", "failed")
        ]
        for job_id in sorted(ended, key=lambda j: self._rows[j], reverse=True):
            self.table.removeRow(self._rows.pop(job_id))
        # Rows shifted: rebuild the id -> row map in the remaining order.
        remaining = sorted(self._rows, key=lambda j: self._rows[j])
        self._rows = {job_id: index for index, job_id in enumerate(remaining)}

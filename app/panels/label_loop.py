"""The Label loop dock: the settings of a round (family, batch, score threshold, time budget),
the button that starts the next one, and a table of the rounds so far: what each trained on,
what it proposed, and what the reviewer did with the proposals (accepted unchanged, edited then
accepted, rejected, objects drawn by hand, still open)."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QFormLayout, QHeaderView, QLabel,
                               QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine.assist.label_loop import LoopRound

COLUMNS = ("Round", "Model", "Trained on", "Pre-labelled", "Proposals", "Accepted", "Edited", "Rejected",
           "Drawn", "Open")
TIPS = {
    "Trained on": "done images the round's model trained on",
    "Pre-labelled": "new images the round proposed shapes on",
    "Accepted": "proposals accepted unchanged",
    "Edited": "proposals changed, then accepted",
    "Rejected": "proposals deleted",
    "Drawn": "objects drawn by hand on the round's images",
    "Open": "proposals still waiting for a decision",
}


class LabelLoopPanel(QWidget):
    startRequested = Signal()

    def __init__(self, family_names: list[str], parent: QWidget | None = None, default_family: str = ""):
        super().__init__(parent)
        self.family_box = QComboBox(self)
        self.family_box.addItems(family_names)
        if default_family in family_names:
            self.family_box.setCurrentText(default_family)
        self.batch = QSpinBox(self)
        self.batch.setRange(1, 10000)
        self.batch.setValue(20)
        self.batch.setToolTip("New images pre-labelled per round")
        self.score = QDoubleSpinBox(self)
        self.score.setRange(0.0, 1.0)
        self.score.setSingleStep(0.05)
        self.score.setValue(0.25)
        self.score.setToolTip("Detections scoring below this are not proposed")
        self.minutes = QDoubleSpinBox(self)
        self.minutes.setRange(0.1, 600.0)
        self.minutes.setDecimals(1)
        self.minutes.setValue(3.0)
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("Training time budget of each round (the best checkpoint so far is kept)")
        form = QFormLayout()
        form.addRow("Model family", self.family_box)
        form.addRow("Images per round", self.batch)
        form.addRow("Score threshold", self.score)
        form.addRow("Training time", self.minutes)
        self.start_button = QPushButton("Start round 1", self)
        self.start_button.clicked.connect(self.startRequested)
        self.counts_label = QLabel(self)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for i, name in enumerate(COLUMNS):
            if name in TIPS:
                self.table.horizontalHeaderItem(i).setToolTip(TIPS[name])
        self.table.verticalHeader().hide()
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # read-only: the keys belong to the canvas
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(120)
        note = QLabel("Each round trains on the images marked done, then pre-labels the next new images. "
                      "Review the proposals (Enter accepts, Del rejects, N next image), mark the images done, "
                      "then start the next round.", self)
        note.setWordWrap(True)
        note.setStyleSheet("color: #888;")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.counts_label)
        layout.addWidget(self.start_button)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addWidget(note)

    def settings(self) -> dict:
        return {"family": self.family_box.currentText(), "batch_size": self.batch.value(),
                "score_threshold": round(self.score.value(), 4), "minutes": self.minutes.value()}

    def set_running(self, running: bool, next_number: int) -> None:
        self.start_button.setEnabled(not running)
        self.start_button.setText(f"Round {next_number} running…" if running else f"Start round {next_number}")

    def show_rounds(self, rounds: list[LoopRound], live: dict | None) -> None:
        """One row per round; the last one without frozen stats shows ``live`` (being reviewed)."""
        self.table.setRowCount(len(rounds))
        for row, r in enumerate(rounds):
            stats = r.stats or live or {}
            label = str(r.number) if r.stats is not None else f"{r.number} (reviewing)"
            values = (label, r.family, r.trained_on, len(r.image_ids), r.proposals, stats.get("accepted", ""),
                      stats.get("edited", ""), stats.get("rejected", ""), stats.get("drawn", ""),
                      stats.get("open", ""))
            for col, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                if col >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setToolTip(r.checkpoint if col == 1 else "")
                self.table.setItem(row, col, item)

    def row_values(self, row: int) -> dict:
        """The table's row as {column: text} (what the user reads)."""
        return {name: self.table.item(row, col).text() for col, name in enumerate(COLUMNS)}

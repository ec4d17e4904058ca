"""F1: every command and its shortcuts, read from the window's QActions so it never goes stale."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

GROUP_ORDER = ("File", "Tools", "Edit", "Shapes", "Categories", "Images", "View", "Models", "Help")

INTRO = ("Every edit is saved in the project as you make it; there is no Save. "
         "Mouse: the wheel zooms at the cursor; middle-drag or Space+drag pans; Shift- or Ctrl-click "
         "adds to the selection. On the canvas: Enter finishes a polygon/polyline, Esc cancels it, "
         "Backspace drops its last vertex, arrow keys nudge the selection (Shift: 10 px).")


def shortcut_rows(actions: list[QAction]) -> list[tuple[str, str, str, str]]:
    """(group, command, shortcuts, description) for every action that has a shortcut."""
    rows = []
    for a in actions:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts() if not k.isEmpty()]
        if not keys:
            continue
        group = a.property("group") or "Other"
        text = a.text().replace("&&", "\0").replace("&", "").replace("\0", "&")  # drop mnemonics, keep "&&"
        rows.append((group, text, "  or  ".join(keys), a.property("tip") or a.statusTip()))
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(rows, key=lambda r: (order.get(r[0], len(order)), r[0]))


class HelpDialog(QDialog):
    def __init__(self, actions: list[QAction], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Visionbench — keyboard shortcuts")
        rows = shortcut_rows(actions)
        self.table = QTableWidget(len(rows), 4, self)
        self.table.setHorizontalHeaderLabels(("Group", "Command", "Shortcut", "What it does"))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        h = self.table.horizontalHeader()
        for c in range(3):
            h.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        intro = QLabel(INTRO, self)
        intro.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(820, 640)

    def rows(self) -> list[tuple[str, ...]]:
        return [tuple(self.table.item(r, c).text() for c in range(4)) for r in range(self.table.rowCount())]

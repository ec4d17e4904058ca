"""F1: every command and its shortcuts, read from the window's QActions so it never goes stale."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

GROUP_ORDER = ("File", "Tools", "Edit", "Shapes", "Categories", "Images", "View", "Models", "Help")

INTRO = ("Every edit is saved in the project as you make it; there is no Save. Every command of the "
         "menus is listed, then the keys and mouse gestures that act on the canvas itself.")

# keys and gestures handled by the canvas widget (app/canvas/interaction.py), not by QActions
CANVAS_ROWS = (
    ("Canvas", "Zoom at the cursor", "Mouse wheel", "Zoom in or out around the point under the cursor"),
    ("Canvas", "Pan", "Middle-drag  or  Space+drag", "Move the view"),
    ("Canvas", "Finish a polygon / polyline", "Enter  or  click the first vertex", "Close the shape being drawn"),
    ("Canvas", "Cancel drawing", "Esc", "Drop the shape being drawn"),
    ("Canvas", "Drop the last vertex", "Backspace", "While drawing a polygon or polyline"),
    ("Canvas", "Delete a vertex", "Del on a hovered or clicked vertex", "Polygons keep at least 3 vertices"),
    ("Canvas", "Insert a vertex", "Double-click  or  Ctrl+click an edge", "On the selected polygon/polyline"),
    ("Canvas", "Move / resize", "Drag the shape  or  a handle", "Select tool; locked shapes do not move"),
    ("Canvas", "Add to the selection", "Shift+click  or  Ctrl+click", "Select tool"),
    ("Canvas", "Select in a rectangle", "Drag on empty space", "Shapes entirely inside are selected"),
    ("Canvas", "Nudge the selection", "Arrow keys (Shift: 10 px)", "One image pixel per key press"),
    ("Canvas", "Accept the selected proposal", "Enter (nothing being drawn)",
     "Review: a model's dashed proposal becomes a label; Del rejects it"),
)


def shortcut_rows(actions: list[QAction]) -> list[tuple[str, str, str, str]]:
    """(group, command, shortcuts, description) for every action, then the canvas's own keys."""
    rows = []
    for a in actions:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts() if not k.isEmpty()]
        group = a.property("group") or "Other"
        text = a.property("command") or a.text()
        text = text.replace("&&", "\0").replace("&", "").replace("\0", "&")  # drop mnemonics, keep "&&"
        rows.append((group, text, "  or  ".join(keys) if keys else "menu only", a.property("tip") or a.statusTip()))
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(rows, key=lambda r: (order.get(r[0], len(order)), r[0])) + list(CANVAS_ROWS)


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
        self.resize(860, 760)

    def rows(self) -> list[tuple[str, ...]]:
        return [tuple(self.table.item(r, c).text() for c in range(4)) for r in range(self.table.rowCount())]

"""The label prompt after drawing (LabelMe style): type to filter, recent labels first, Enter
takes the highlighted label or creates the one typed, Esc drops the new shape."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QVBoxLayout, QWidget)

from app.style import swatch


class LabelPrompt(QDialog):
    """``label()`` -> the chosen or typed name once accepted."""

    def __init__(self, categories, recent: list[str], parent: QWidget | None = None, current: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Label")
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("type to filter, or a new label")
        self.list = QListWidget(self)
        colours = {c.name: c.color for c in categories}
        names = [n for n in recent if n in colours] + [c.name for c in categories if c.name not in recent]
        for name in names:
            item = QListWidgetItem(swatch(colours.get(name, "#808080")), name)
            if name in recent:
                item.setForeground(QColor("#1565c0"))
                item.setToolTip("used recently")
            self.list.addItem(item)
        self.list.setCurrentRow(names.index(current) if current in names else 0)  # the category picked last
        self.new_note = QLabel(self)
        self.new_note.setStyleSheet("color: #888;")
        self.keep_asking = QCheckBox("Ask after every shape", self)
        self.keep_asking.setChecked(True)
        self.keep_asking.setToolTip("Off: new shapes take the current category (View > Ask for a label)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.edit)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.new_note)
        layout.addWidget(self.keep_asking)
        layout.addWidget(buttons)
        self.edit.textChanged.connect(self._filter)
        self.edit.returnPressed.connect(self.accept)
        self.list.itemDoubleClicked.connect(lambda *_: self.accept())
        self.resize(280, 320)
        self.edit.setFocus()

    def _filter(self, text: str) -> None:
        text = text.strip().lower()
        first = None
        for i in range(self.list.count()):
            item = self.list.item(i)
            hide = bool(text) and text not in item.text().lower()
            item.setHidden(hide)
            if not hide and first is None:
                first = item
        self.list.setCurrentItem(first)
        exact = any(self.list.item(i).text().lower() == text for i in range(self.list.count()))
        self.new_note.setText(f"Enter creates the label “{self.edit.text().strip()}”" if text and not exact else "")

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        # arrows move in the list while the typing stays in the filter field
        if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up):
            self.list.keyPressEvent(event)
            return
        super().keyPressEvent(event)

    def label(self) -> str:
        """The typed name when it is exactly a label or none matches; else the highlighted one."""
        typed = self.edit.text().strip()
        names = [self.list.item(i).text() for i in range(self.list.count())]
        for name in names:
            if name.lower() == typed.lower() and typed:
                return name
        item = self.list.currentItem()
        if item is not None and not item.isHidden():
            return item.text()
        return typed

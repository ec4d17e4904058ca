"""Category palette: pick the category for new shapes, toggle visibility, add/rename/recolour/delete.

Keys 1-9 pick the first nine categories (the main window binds them). Renaming is inline
(double-click or F2). Dialogs are attributes (`ask_color`, `confirm`) so tests can answer them.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QColorDialog, QHBoxLayout, QListWidget, QListWidgetItem,
                               QMessageBox, QPushButton, QVBoxLayout, QWidget)

from app.style import swatch
from engine.annotations.model import Category

IdRole = Qt.ItemDataRole.UserRole + 1


def _ask_color(parent: QWidget, current: str) -> str | None:
    c = QColorDialog.getColor(QColor(current), parent, "Category colour")
    return c.name() if c.isValid() else None


def _confirm(parent: QWidget, title: str, text: str) -> bool:
    return QMessageBox.question(parent, title, text) == QMessageBox.StandardButton.Yes


class CategoriesPanel(QWidget):
    currentCategoryChanged = Signal(int)
    visibilityChanged = Signal(int, bool)

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.ask_color = _ask_color
        self.confirm = _confirm
        self._filling = False
        self.list = QListWidget(self)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemChanged.connect(self._item_changed)

        self.add_button = QPushButton("Add", self)
        self.rename_button = QPushButton("Rename", self)
        self.color_button = QPushButton("Colour…", self)
        self.delete_button = QPushButton("Delete", self)
        self.add_button.clicked.connect(self.add_category)
        self.rename_button.clicked.connect(
            lambda: self.list.currentItem() and self.list.editItem(self.list.currentItem()))
        self.color_button.clicked.connect(self.recolor_current)
        self.delete_button.clicked.connect(self.delete_current)
        for b, tip in ((self.add_button, "Add a category"), (self.rename_button, "Rename (F2 or double-click)"),
                       (self.color_button, "Change the colour"),
                       (self.delete_button, "Delete the category and all its shapes")):
            b.setToolTip(tip)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.rename_button, self.color_button, self.delete_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self._hidden: set[int] = set()
        controller.categoriesChanged.connect(self.set_categories)
        self.set_categories(controller.store.categories())

    # ---- showing ----------------------------------------------------------------------------
    def set_categories(self, categories: list[Category]) -> None:
        keep = self.current_id()
        ids = [c.id for c in categories]
        self._filling = True
        if ids != self.ids():
            # rebuild only when categories came or went: a rename/recolour arrives while Qt is
            # still inside the edited item's signal, and that item must stay alive
            self.list.clear()
            for c in categories:
                item = QListWidgetItem()
                item.setData(IdRole, c.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked if c.id in self._hidden else Qt.CheckState.Checked)
                self.list.addItem(item)
        for i, c in enumerate(categories):
            item = self.list.item(i)
            item.setIcon(swatch(c.color))
            if item.text() != c.name:
                item.setText(c.name)
            key = f"key {i + 1} · " if i < 9 else ""
            item.setToolTip(f"{key}{c.color} · untick to hide its shapes")
        self._filling = False
        self.select(keep if keep in ids else (ids[0] if ids else None))

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(IdRole) if item else None

    def ids(self) -> list[int]:
        return [self.list.item(i).data(IdRole) for i in range(self.list.count())]

    def select(self, category_id: int | None) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(IdRole) == category_id:
                self.list.setCurrentRow(i)
                return

    def pick_number(self, n: int) -> None:
        """Key n (1-based) picks the n-th category."""
        if 1 <= n <= self.list.count():
            self.list.setCurrentRow(n - 1)

    def is_visible(self, category_id: int) -> bool:
        return category_id not in self._hidden

    # ---- editing ----------------------------------------------------------------------------
    def add_category(self) -> None:
        names = {self.list.item(i).text() for i in range(self.list.count())}
        n = self.list.count() + 1
        while f"category {n}" in names:
            n += 1
        cat = self.controller.add_category(f"category {n}")
        if cat:
            self.select(cat.id)
            self.list.editItem(self.list.currentItem())

    def recolor_current(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        color = self.ask_color(self, self.controller.store.category(cid).color)
        if color:
            self.controller.update_category(cid, color=color)

    def delete_current(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        name = self.list.currentItem().text()
        n = self.controller.store.execute("SELECT count(*) FROM annotations WHERE category_id=?", (cid,)).fetchone()[0]
        text = (f"Delete category “{name}” and its {n} shape(s) in the whole project?\n"
                "This cannot be undone, and it clears the undo history.")
        if self.confirm(self, "Delete category", text):
            self.controller.delete_category(cid)

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        cid = item.data(IdRole)
        visible = item.checkState() == Qt.CheckState.Checked
        if visible == (cid in self._hidden):
            (self._hidden.discard if visible else self._hidden.add)(cid)
            self.visibilityChanged.emit(cid, visible)
            return
        old = self.controller.store.category(cid).name
        if item.text().strip() != old:
            if not self.controller.update_category(cid, name=item.text()):
                self._filling = True
                item.setText(old)  # refused (empty or duplicate): show the stored name again
                self._filling = False

    def _current_changed(self, current: QListWidgetItem | None, _prev) -> None:
        if current is not None and not self._filling:
            self.currentCategoryChanged.emit(current.data(IdRole))

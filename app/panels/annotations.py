"""Annotation list of the current image: visibility (eye), lock, category, kind, source, score.

Selecting rows selects the shapes on the canvas and the other way round. Ticking the eye or
lock boxes and picking a category (combo in the cell or the context menu) go through the
controller, so each is an undoable edit saved in the store.
"""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QFont
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHeaderView, QMenu, QStyledItemDelegate,
                               QTableView, QVBoxLayout, QWidget)

from app.style import swatch
from engine.annotations.model import Annotation, Category
from engine.data.truth import MODEL_SCORE, is_proposal

COL_VISIBLE, COL_LOCK, COL_ID, COL_CATEGORY, COL_KIND, COL_SOURCE, COL_SCORE = range(7)
HEADERS = ("Vis", "Lock", "#", "Category", "Kind", "Source", "Score")
IdRole = Qt.ItemDataRole.UserRole + 1
_DISPLAY, _EDIT, _CHECK = (int(Qt.ItemDataRole.DisplayRole), int(Qt.ItemDataRole.EditRole),
                           int(Qt.ItemDataRole.CheckStateRole))
_DECORATION, _FONT, _TOOLTIP = (int(Qt.ItemDataRole.DecorationRole), int(Qt.ItemDataRole.FontRole),
                                int(Qt.ItemDataRole.ToolTipRole))
_ID = int(IdRole)
_CHECKED, _UNCHECKED = Qt.CheckState.Checked, Qt.CheckState.Unchecked
_BASE_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_FLAGS = [_BASE_FLAGS | Qt.ItemFlag.ItemIsUserCheckable if c in (COL_VISIBLE, COL_LOCK)
          else _BASE_FLAGS | Qt.ItemFlag.ItemIsEditable if c == COL_CATEGORY else _BASE_FLAGS
          for c in range(len(HEADERS))]
_ITALIC = QFont()
_ITALIC.setItalic(True)


class AnnotationTableModel(QAbstractTableModel):
    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self._anns: list[Annotation] = []
        self._row: dict[int, int] = {}
        self._cats: dict[int, Category] = {}
        self._text: dict[int, tuple] = {}  # id -> (annotation, column texts)

    def set_categories(self, cats: list[Category]) -> None:
        self._cats = {c.id: c for c in cats}
        self._text.clear()
        if self._anns:
            self.dataChanged.emit(self.index(0, COL_CATEGORY), self.index(len(self._anns) - 1, COL_CATEGORY))

    def categories(self) -> list[Category]:
        return list(self._cats.values())

    def set_annotations(self, anns: list[Annotation]) -> None:
        self.beginResetModel()
        self._text.clear()
        self._anns = sorted(anns, key=lambda a: a.id)
        self._row = {a.id: i for i, a in enumerate(self._anns)}
        self.endResetModel()

    def apply_changes(self, added, updated, deleted_ids) -> None:
        for a in updated:
            row = self._row.get(a.id)
            if row is not None:
                self._anns[row] = a
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))
        rows = sorted((self._row[i] for i in deleted_ids if i in self._row), reverse=True)
        if len(rows) > 20:  # a big delete (merge, category): one reset beats thousands of removals
            gone = set(deleted_ids)
            self.beginResetModel()
            self._anns = [a for a in self._anns if a.id not in gone]
            self.endResetModel()
        else:
            for row in rows:  # bottom-up, so the rows still to remove keep their numbers
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._anns[row]
                self.endRemoveRows()
        if rows:
            self._row = {a.id: k for k, a in enumerate(self._anns)}
        if added:
            start = len(self._anns)
            self.beginInsertRows(QModelIndex(), start, start + len(added) - 1)
            self._anns.extend(added)
            self._row = {a.id: k for k, a in enumerate(self._anns)}
            self.endInsertRows()

    def row_of(self, ann_id: int) -> int:
        return self._row.get(ann_id, -1)

    def annotation_at(self, row: int) -> Annotation:
        return self._anns[row]

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self._anns)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return ("Visible", "Locked (protected from edits)", "Annotation id", "Category (double-click to change)",
                    "Shape kind", "manual or the model that proposed it", "Model score")[section]
        return None

    def flags(self, index):
        return _FLAGS[index.column()]

    def _row_text(self, a: Annotation) -> tuple:
        """Display texts of a row's columns, cached per stored annotation (a view asks ~8 roles per
        visible cell on every repaint; rebuilding them each time cost ~10 ms per image switch)."""
        hit = self._text.get(a.id)
        if hit is not None and hit[0] is a:
            return hit[1]
        cat = self._cats.get(a.category_id)
        source = f"{a.source} ?" if is_proposal(a) else a.source
        score = a.score if a.score is not None else a.attributes.get(MODEL_SCORE)  # accepted: the model's
        texts = (None, None, str(a.id), cat.name if cat else f"? {a.category_id}", a.kind, source,
                 f"{score:.2f}" if isinstance(score, (int, float)) else "")
        self._text[a.id] = (a, texts)
        return texts

    def data(self, index, role=_DISPLAY):
        # roles compared as plain ints: attribute access on Qt enums costs a Python call each
        if not index.isValid():
            return None
        a = self._anns[index.row()]
        col = index.column()
        if role == _DISPLAY:
            return self._row_text(a)[col]
        if role == _ID:
            return a.id
        if role == _CHECK:
            if col == COL_VISIBLE:
                return _UNCHECKED if a.hidden else _CHECKED
            if col == COL_LOCK:
                return _CHECKED if a.locked else _UNCHECKED
            return None
        if role == _DECORATION:
            cat = self._cats.get(a.category_id) if col == COL_CATEGORY else None
            return swatch(cat.color, 12) if cat else None
        if role == _FONT:
            return _ITALIC if is_proposal(a) else None  # proposals wait for a decision
        if role == _TOOLTIP:
            return f"proposal by {a.source}: accept with Ctrl+Shift+A, reject with Del" if is_proposal(a) else None
        if role == _EDIT and col == COL_CATEGORY:
            return a.category_id
        return None

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        a = self._anns[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.CheckStateRole and col in (COL_VISIBLE, COL_LOCK):
            checked = Qt.CheckState(value) == Qt.CheckState.Checked
            if col == COL_VISIBLE:
                return self.controller.set_hidden([a.id], not checked)
            return self.controller.set_locked([a.id], checked)
        if role == Qt.ItemDataRole.EditRole and col == COL_CATEGORY and value in self._cats:
            return self.controller.set_category([a.id], int(value))
        return False


class CategoryComboDelegate(QStyledItemDelegate):
    """A combo box of categories in the Category cell."""

    def createEditor(self, parent, option, index):  # noqa: N802
        combo = QComboBox(parent)
        for c in index.model().categories():
            combo.addItem(swatch(c.color, 12), c.name, c.id)
        return combo

    def setEditorData(self, editor, index):  # noqa: N802
        editor.setCurrentIndex(max(0, editor.findData(index.data(Qt.ItemDataRole.EditRole))))

    def setModelData(self, editor, model, index):  # noqa: N802
        model.setData(index, editor.currentData(), Qt.ItemDataRole.EditRole)


class AnnotationsPanel(QWidget):
    selectionChangedIds = Signal(list)  # annotation ids the user selected in the list

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.model = AnnotationTableModel(controller, self)
        self.view = QTableView(self)
        self.view.setModel(self.model)
        self.view.setItemDelegateForColumn(COL_CATEGORY, CategoryComboDelegate(self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.SelectedClicked)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.setShowGrid(False)
        self.view.setAlternatingRowColors(True)
        # Fixed widths, not ResizeToContents: that mode asks every row for its size on each
        # change, which made switching to an image with thousands of shapes slow.
        h = self.view.horizontalHeader()
        fm = self.view.fontMetrics()
        check = fm.horizontalAdvance("Lock") + 12
        widths = {COL_VISIBLE: check, COL_LOCK: check, COL_ID: fm.horizontalAdvance("0000") + 10,
                  COL_KIND: fm.horizontalAdvance("polyline") + 10, COL_SOURCE: fm.horizontalAdvance("manual") + 10,
                  COL_SCORE: fm.horizontalAdvance("Score") + 10}
        for col, width in widths.items():
            h.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            h.resizeSection(col, width)
        h.setSectionResizeMode(COL_CATEGORY, QHeaderView.ResizeMode.Stretch)
        h.setMinimumSectionSize(24)
        self.setMinimumWidth(sum(widths.values()) + fm.horizontalAdvance("motorcycle") + 40)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view)
        self._syncing = False
        self.last_menu: QMenu | None = None
        controller.imageOpened.connect(lambda _img, anns: self.model.set_annotations(anns))
        controller.annotationsChanged.connect(self._changed)
        controller.categoriesChanged.connect(self.model.set_categories)
        self.model.set_categories(controller.store.categories())

    def _changed(self, added, updated, deleted) -> None:
        keep = self.selected_ids()
        self.model.apply_changes(added, updated, deleted)
        self.set_selection([i for i in keep if i not in deleted])

    def selected_ids(self) -> list[int]:
        rows = sorted({ix.row() for ix in self.view.selectionModel().selectedRows()})
        return [self.model.annotation_at(r).id for r in rows]

    def set_selection(self, ids: list[int]) -> None:
        """Select rows for `ids` (from the canvas) without echoing the change back."""
        self._syncing = True
        sel = QItemSelection()
        last = self.model.columnCount() - 1
        for i in ids:
            row = self.model.row_of(i)
            if row >= 0:
                sel.select(self.model.index(row, 0), self.model.index(row, last))
        self.view.selectionModel().select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        if ids and self.model.row_of(ids[-1]) >= 0:
            self.view.scrollTo(self.model.index(self.model.row_of(ids[-1]), 0))
        self._syncing = False

    def _selection_changed(self, *_):
        if not self._syncing:
            self.selectionChangedIds.emit(self.selected_ids())

    def build_menu(self) -> QMenu:
        """The context menu for the selected rows (tests call this instead of right-clicking)."""
        ids = self.selected_ids()
        menu = QMenu(self)
        cat_menu = menu.addMenu("Category")
        for c in self.model.categories():
            act = QAction(swatch(c.color, 12), c.name, cat_menu)
            act.triggered.connect(lambda _=False, cid=c.id: self.controller.set_category(ids, cid))
            cat_menu.addAction(act)
        menu.addAction("Hide", lambda: self.controller.set_hidden(ids, True))
        menu.addAction("Show", lambda: self.controller.set_hidden(ids, False))
        menu.addAction("Lock", lambda: self.controller.set_locked(ids, True))
        menu.addAction("Unlock", lambda: self.controller.set_locked(ids, False))
        menu.addAction("Accept proposal", lambda: self.controller.accept_proposals(ids))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.controller.delete(ids))
        for act in menu.actions():
            act.setEnabled(bool(ids))
        return menu

    def _context_menu(self, pos) -> None:
        self.last_menu = self.build_menu()
        self.last_menu.popup(self.view.viewport().mapToGlobal(pos))

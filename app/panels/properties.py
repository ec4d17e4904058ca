"""Properties of the selected annotation (category, instance id, attributes, provenance) and of
the current image (split, status). Every change goes through the controller as one undo step."""
from __future__ import annotations

import json
import time

from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView,
                               QLabel, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.style import STATUS_LABELS, swatch
from engine.annotations import geometry as geo
from engine.annotations.model import SPLITS, STATUSES, Annotation
from engine.data.truth import is_proposal


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "—"


def parse_value(text: str):
    """Attribute values typed by the user: JSON numbers/booleans/lists stay typed, the rest is text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class PropertiesPanel(QWidget):
    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.current: Annotation | None = None  # the one selected annotation, if exactly one
        self.selection: list[Annotation] = []
        self._filling = False
        self._own_edit = False

        self.ann_box = QGroupBox("Annotation", self)
        self.summary = QLabel("no shape selected", self)
        self.category = QComboBox(self)
        self.instance = QSpinBox(self)
        self.instance.setRange(0, 2_000_000_000)
        self.instance.setSpecialValueText("none")  # 0 shows as "none" and is stored as None
        self.instance.setToolTip("Group/instance id shared by parts of one object (0 = none)")
        self.attributes = QTableWidget(0, 2, self)
        self.attributes.setHorizontalHeaderLabels(("Attribute", "Value"))
        self.attributes.verticalHeader().setVisible(False)
        self.attributes.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.attributes.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        self.attributes.setMaximumHeight(130)
        self.add_attr = QPushButton("+ attribute", self)
        self.del_attr = QPushButton("− attribute", self)
        self.source = QLabel(self)
        self.score = QLabel(self)
        self.created = QLabel(self)
        self.updated = QLabel(self)
        form = QFormLayout(self.ann_box)
        form.addRow(self.summary)
        form.addRow("Category", self.category)
        form.addRow("Instance", self.instance)
        form.addRow(self.attributes)
        row = QHBoxLayout()
        row.addWidget(self.add_attr)
        row.addWidget(self.del_attr)
        form.addRow(row)
        form.addRow("Source", self.source)
        form.addRow("Score", self.score)
        form.addRow("Created", self.created)
        form.addRow("Updated", self.updated)

        self.img_box = QGroupBox("Image", self)
        self.img_path = QLabel(self)
        self.img_path.setWordWrap(True)
        self.img_size = QLabel(self)
        self.split = QComboBox(self)
        for s in SPLITS:
            self.split.addItem(s, s)
        self.status = QComboBox(self)
        for s in STATUSES:
            self.status.addItem(STATUS_LABELS[s], s)
        iform = QFormLayout(self.img_box)
        iform.addRow("File", self.img_path)
        iform.addRow("Size", self.img_size)
        iform.addRow("Split", self.split)
        iform.addRow("Status", self.status)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.ann_box)
        layout.addWidget(self.img_box)
        layout.addStretch(1)

        self.category.activated.connect(self._category_picked)
        self.instance.editingFinished.connect(self._instance_edited)
        self.attributes.itemChanged.connect(self._attributes_edited)
        self.add_attr.clicked.connect(self._add_attribute)
        self.del_attr.clicked.connect(self._remove_attribute)
        self.split.activated.connect(lambda _i: self.controller.set_split(self.split.currentData()))
        self.status.activated.connect(lambda _i: self.controller.set_status(self.status.currentData()))
        controller.imageOpened.connect(lambda img, _anns: (self.show_image(img), self.show_annotations([])))
        controller.imageUpdated.connect(self._image_updated)
        controller.annotationsChanged.connect(self._annotations_changed)
        controller.categoriesChanged.connect(lambda _c: self.show_annotations([x.id for x in self.selection]))
        self.show_annotations([])
        self.img_box.setEnabled(False)

    # ---- annotation -------------------------------------------------------------------------
    def show_annotations(self, ids: list[int]) -> None:
        anns = [a for a in (self.controller.annotation(i) for i in ids) if a is not None]
        self.selection = anns
        self.current = anns[0] if len(anns) == 1 else None
        self._filling = True
        self.category.clear()
        for c in self.controller.store.categories():
            self.category.addItem(swatch(c.color, 12), c.name, c.id)
        a = self.current
        self.ann_box.setEnabled(bool(anns))
        for w in (self.instance, self.attributes, self.add_attr, self.del_attr):
            w.setEnabled(a is not None)  # several shapes: only the category applies to all
        if a is None:
            self.summary.setText(f"{len(anns)} shapes selected" if anns else "no shape selected")
            cats = {x.category_id for x in anns}
            self.category.setCurrentIndex(self.category.findData(cats.pop()) if len(cats) == 1 else -1)
            self.instance.setValue(0)
            self.attributes.setRowCount(0)
            for lab in (self.source, self.score, self.created, self.updated):
                lab.setText("—")
        else:
            size = f" · area {geo.area(a.geometry):.0f} px²" if a.kind in ("box", "polygon", "mask") else ""
            self.summary.setText(f"#{a.id} · {a.kind}{size}"
                                 + (" · locked" if a.locked else "") + (" · hidden" if a.hidden else "")
                                 + (" · proposal" if is_proposal(a) else ""))
            self.category.setCurrentIndex(self.category.findData(a.category_id))
            self.instance.setValue(a.instance_id or 0)
            self.attributes.setRowCount(0)
            for k, v in a.attributes.items():
                r = self.attributes.rowCount()
                self.attributes.insertRow(r)
                self.attributes.setItem(r, 0, QTableWidgetItem(str(k)))
                self.attributes.setItem(r, 1, QTableWidgetItem(v if isinstance(v, str) else json.dumps(v)))
            self.source.setText(a.source)
            self.score.setText("—" if a.score is None else f"{a.score:.3f}")
            self.created.setText(_when(a.created))
            self.updated.setText(_when(a.updated))
        self._filling = False

    def _annotations_changed(self, added, updated, deleted) -> None:
        ids = [x.id for x in self.selection]
        touched = set(deleted) | {a.id for a in updated}
        if not (ids and touched & set(ids)):
            return
        if self._own_edit and self.current is not None and self.current.id not in deleted:
            # our own attribute edit: Qt is still inside the edited cell's signal, so the table
            # (and that cell) must not be rebuilt now; the other fields are refreshed later
            self.current = self.controller.annotation(self.current.id)
            self.selection = [self.current]
            self.updated.setText(_when(self.current.updated))
            return
        self.show_annotations([i for i in ids if i not in set(deleted)])

    def _category_picked(self, _i: int) -> None:
        if self.selection and self.category.currentData() is not None:
            self.controller.set_category([x.id for x in self.selection], self.category.currentData())

    def _instance_edited(self) -> None:
        if self.current is None or self._filling:
            return
        value = self.instance.value() or None
        if value != self.current.instance_id:
            self.controller.update([self.current.with_(instance_id=value)], "set instance id")

    def read_attributes(self) -> dict:
        out = {}
        for r in range(self.attributes.rowCount()):
            k, v = self.attributes.item(r, 0), self.attributes.item(r, 1)
            key = k.text().strip() if k else ""
            if key:
                out[key] = parse_value(v.text()) if v else ""
        return out

    def _attributes_edited(self, _item=None) -> None:
        if self.current is None or self._filling:
            return
        attrs = self.read_attributes()
        if attrs != self.current.attributes:
            self._own_edit = True
            try:
                self.controller.update([self.current.with_(attributes=attrs)], "edit attributes")
            finally:
                self._own_edit = False

    def _add_attribute(self) -> None:
        self._filling = True
        r = self.attributes.rowCount()
        self.attributes.insertRow(r)
        self.attributes.setItem(r, 0, QTableWidgetItem(""))
        self.attributes.setItem(r, 1, QTableWidgetItem(""))
        self._filling = False
        self.attributes.editItem(self.attributes.item(r, 0))

    def _remove_attribute(self) -> None:
        r = self.attributes.currentRow()
        if r >= 0:
            self.attributes.removeRow(r)
            self._attributes_edited()

    # ---- image ------------------------------------------------------------------------------
    def show_image(self, img) -> None:
        self.img_box.setEnabled(img is not None)
        if img is None:
            return
        self.img_path.setText(img.path)
        self.img_size.setText(f"{img.width} × {img.height} px")
        self.split.setCurrentIndex(self.split.findData(img.split))
        self.status.setCurrentIndex(self.status.findData(img.status))

    def _image_updated(self, img) -> None:
        if self.controller.image is not None and img.id == self.controller.image.id:
            self.show_image(img)

"""File > Export…: format, split, destination and the format's own choices (EXPORT_OPTIONS),
and what the YOLO task "auto" will pick, before anything is written."""
from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget)

from app.dialogs.import_dialog import IMPORT_FORMATS
from engine.annotations.formats import EXPORT_OPTIONS

SPLIT_CHOICES = (("All images", None), ("train", "train"), ("val", "val"), ("test", "test"))
OPTION_NAMES = {"task": "YOLO task", "keep_image_format": "Image files", "convention": "Pixel convention"}
VALUE_NAMES = {("keep_image_format", False): "JPEGImages/<id>.jpg (VOC devkit)",
               ("keep_image_format", True): "copied as they are",
               ("convention", "corner"): "corner (0-based, as most tools)",
               ("convention", "devkit"): "devkit (1-based, as detectron2 reads VOC)"}


class ExportDialog(QDialog):
    """``choice()`` -> (format, destination, split or None, options) once accepted."""

    def __init__(self, store, parent: QWidget | None = None, start_dir: str = ""):
        super().__init__(parent)
        self.store = store
        self.start_dir = start_dir
        self.setWindowTitle("Export annotations")
        self.format_box = QComboBox(self)
        for key, (name, _, _) in IMPORT_FORMATS.items():
            self.format_box.addItem(name, key)
        self.split_box = QComboBox(self)
        for text, value in SPLIT_CHOICES:
            self.split_box.addItem(text, value)
        self.dest_edit = QLineEdit(self)
        self.dest_edit.setMinimumWidth(380)
        self.browse_button = QPushButton("Browse…", self)
        row = QHBoxLayout()
        row.addWidget(self.dest_edit, 1)
        row.addWidget(self.browse_button)
        self.form = QFormLayout()
        self.form.addRow("Format", self.format_box)
        self.form.addRow("Split", self.split_box)
        self.form.addRow("Destination folder", row)
        self.option_boxes: dict[str, QComboBox] = {}
        # an export holds ground truth: unreviewed proposals stay out unless asked for
        from engine.assist.review import proposal_counts

        open_proposals = sum(proposal_counts(store).values())
        self.proposals_box = QCheckBox(f"Include unreviewed model proposals ({open_proposals} in the project)", self)
        self.proposals_box.setObjectName("include_proposals")
        self.proposals_box.setEnabled(open_proposals > 0)
        self.proposals_box.setToolTip("Left out by default: accept proposals in review mode to export them as labels")
        self.form.addRow("Proposals", self.proposals_box)
        self.task_note = QLabel(self)
        self.task_note.setWordWrap(True)
        self.task_note.setStyleSheet("color: #888;")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.task_note)
        layout.addWidget(self.buttons)
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self.dest_edit.textChanged.connect(self._dest_changed)
        self.browse_button.clicked.connect(self.browse)
        self._format_changed()

    def _dest_changed(self, text: str) -> None:
        self.export_button.setEnabled(bool(text.strip()))

    def fmt(self) -> str:
        return self.format_box.currentData()

    def set_format(self, fmt: str) -> None:
        self.format_box.setCurrentIndex(list(IMPORT_FORMATS).index(fmt))

    def options(self) -> dict:
        return {name: box.currentData() for name, box in self.option_boxes.items()}

    def choice(self) -> tuple[str, str, str | None, dict]:
        options = self.options()
        if self.proposals_box.isChecked():
            options["proposals"] = True
        return self.fmt(), self.dest_edit.text().strip(), self.split_box.currentData(), options

    def _format_changed(self, *_args) -> None:
        for name in list(self.option_boxes):
            self.form.removeRow(self.option_boxes.pop(name))
        for name, values in EXPORT_OPTIONS.get(self.fmt(), {}).items():
            box = QComboBox(self)
            box.setObjectName(f"option_{name}")
            for v in values:
                box.addItem(VALUE_NAMES.get((name, v), str(v)), v)
            box.currentIndexChanged.connect(self._explain)
            self.form.addRow(OPTION_NAMES.get(name, name), box)
            self.option_boxes[name] = box
        self.export_button.setEnabled(bool(self.dest_edit.text().strip()))
        self._explain()

    def _explain(self, *_args) -> None:
        """What YOLO's task will be and why (the project's shapes decide "auto")."""
        if self.fmt() != "yolo":
            self.task_note.setText("")
            return
        from engine.annotations.formats.yolo import choose_task

        task, why = choose_task(self.store, self.options().get("task", "auto"))
        self.task_note.setText(f"Writes YOLO {task} rows: {why}.")

    def browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export into folder", self.dest_edit.text() or self.start_dir)
        if path:
            self.dest_edit.setText(path)

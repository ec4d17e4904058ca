"""File > Import…: pick a format and a source; then, when the source has invalid parts, the list
of problems (file, field, line) with the offer to import the valid part."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

# format -> (menu name, what the source is, whether it is a file)
IMPORT_FORMATS = {
    "labelme": ("LabelMe / X-AnyLabeling JSON", "a folder of .json files (searched recursively)", False),
    "coco": ("COCO JSON", "an annotations .json file (or a folder holding annotations.json)", True),
    "voc": ("Pascal VOC XML", "a folder with Annotations/ (or .xml files) and the images", False),
    "yolo": ("YOLO labels", "a folder with images/ and labels/, labels/ beside the images, or .txt beside them", False),
    "masks": ("Mask PNGs", "a folder with JPEGImages/, SegmentationClass/ and class_names.txt", False),
    "identities": ("Identities (folder per identity)", "a folder of sub-folders, one per identity, holding its "
                   "images (LFW / Omniglot layout)", False),
    "pairs": ("Image pairs (A -> B)", "a folder of A|B side-by-side images, or A/ and B/ with matching names", False),
}


class ImportDialog(QDialog):
    """Format and source of an import. ``choice()`` -> (format, source) once accepted."""

    def __init__(self, parent: QWidget | None = None, fmt: str | None = None, src: str = "", start_dir: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Import annotations")
        self.start_dir = start_dir
        self.format_box = QComboBox(self)
        for key, (name, _, _) in IMPORT_FORMATS.items():
            self.format_box.addItem(name, key)
        self.source_edit = QLineEdit(src, self)
        self.source_edit.setMinimumWidth(380)
        self.browse_button = QPushButton("Browse…", self)
        self.hint = QLabel(self)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #888;")
        row = QHBoxLayout()
        row.addWidget(self.source_edit, 1)
        row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Format", self.format_box)
        form.addRow("Source", row)
        form.addRow("", self.hint)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self.source_edit.textChanged.connect(self._format_changed)
        self.browse_button.clicked.connect(self.browse)
        if fmt in IMPORT_FORMATS:
            self.format_box.setCurrentIndex(list(IMPORT_FORMATS).index(fmt))
        self._format_changed()

    def fmt(self) -> str:
        return self.format_box.currentData()

    def choice(self) -> tuple[str, str]:
        return self.fmt(), self.source_edit.text().strip()

    def _format_changed(self, *_args) -> None:
        self.hint.setText(f"Source: {IMPORT_FORMATS[self.fmt()][1]}. Problems are listed before anything is "
                          "imported.")
        self.import_button.setEnabled(bool(self.source_edit.text().strip()))

    def browse(self) -> None:
        start = self.source_edit.text().strip() or self.start_dir
        if IMPORT_FORMATS[self.fmt()][2]:
            path, _ = QFileDialog.getOpenFileName(self, "COCO annotations file", start, "JSON (*.json);;All files (*)")
        else:
            path = QFileDialog.getExistingDirectory(self, f"{IMPORT_FORMATS[self.fmt()][0]} folder", start)
        if path:
            self.source_edit.setText(path)


class ProblemsDialog(QDialog):
    """The problems a source has (one row each: file, field, line, what is wrong). Accepting it
    means "import the valid part"; with nothing valid only Close is offered."""

    def __init__(self, problems, src: str, valid_images: int, valid_annotations: int,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import: problems found")
        n = len(problems)
        text = (f"<b>{n} problem{'s' * (n != 1)}</b> in {src}. Nothing has been imported yet.<br>"
                f"The valid part holds {valid_images} image(s) with {valid_annotations} shape(s).")
        self.summary = QLabel(text, self)
        self.summary.setWordWrap(True)
        self.table = QTableWidget(n, 4, self)
        self.table.setHorizontalHeaderLabels(["File", "Field", "Line", "Problem"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        root = Path(src) if Path(src).is_dir() else Path(src).parent
        for row, p in enumerate(problems):
            try:
                name = str(Path(p.file).relative_to(root))
            except ValueError:
                name = p.file
            cells = (name, p.field, "" if p.line is None else str(p.line), p.message)
            for col, value in enumerate(cells):
                item = QTableWidgetItem(value)
                item.setToolTip(p.file if col == 0 else value)
                if col == 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        header = self.table.horizontalHeader()
        for col in range(3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.buttons = QDialogButtonBox(self)
        self.import_button = None
        if valid_images:
            self.import_button = self.buttons.addButton("Import the valid part", QDialogButtonBox.ButtonRole.AcceptRole)
            self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        else:
            self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
            self.summary.setText(text + "<br>Nothing in it can be imported.")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.buttons)
        self.resize(860, 380)

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [tuple(self.table.item(r, c).text() for c in range(4)) for r in range(self.table.rowCount())]

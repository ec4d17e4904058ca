"""Models > Pretrained models…: torchvision's COCO detectors, whether their weights are here, and
the two ways to bring them: Get (the one download, on this click only) and Add from file….

The dialog only shows and asks; ``app.controllers.pretrained.PretrainedController`` runs the jobs
and calls ``refresh`` / ``show_progress`` / ``show_message`` back.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QHeaderView,
                               QLabel, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

COLUMNS = ("Model", "Masks", "Parameters", "File", "COCO box mAP", "COCO mask mAP", "Licence", "Here?")

INTRO = ("Detectors trained on COCO (80 everyday categories: person, car, dog, cup, …), from torchvision. "
         "They run in NMS, Compare, Evaluate and Pre-label; the R-CNNs also in Inside R-CNN.\n"
         "Nothing is downloaded unless you click Get. The file is checked against the SHA-256 torchvision "
         "publishes; a wrong or partial file is deleted.")
YOLO_NOTE = ("YOLO on real photos: torchvision has no pretrained YOLO. On a computer with internet, export one "
             "with Ultralytics (<code>pip install ultralytics; yolo export model=yolov8n.pt format=onnx</code>), "
             "bring the .onnx here and open it with Browse… in Compare detectors, NMS or Pre-label.")


def _item(text: str, tip: str = "", align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tip:
        item.setToolTip(tip)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class PretrainedDialog(QDialog):
    """``models`` are ``engine.infer.pretrained.PretrainedModel``s; ``controller`` answers
    ``where(model) -> Path | None``, ``destination() -> Path``, ``get(model)``, ``cancel()``,
    ``add_from_file(model, path)``, ``choose_folder(path | None)``."""

    def __init__(self, controller, models, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.models = list(models)
        self.setWindowTitle("Pretrained models")
        self.resize(1180, 600)
        intro = QLabel(INTRO, self)
        intro.setWordWrap(True)

        self.table = QTableWidget(len(self.models), len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.get_button = QPushButton("Get", self)
        self.get_button.setToolTip("Download the selected model's weights from torchvision's server (about the size "
                                   "shown), with progress; checked against the published hash")
        self.cancel_button = QPushButton("Cancel download", self)
        self.add_button = QPushButton("Add from file…", self)
        self.add_button.setToolTip("Use a weights file you already have (from another computer's torch hub cache "
                                   "or download.pytorch.org): checked, then copied to the model folder")
        self.get_button.clicked.connect(lambda: self.selected() and controller.get(self.selected()))
        self.cancel_button.clicked.connect(controller.cancel)
        self.add_button.clicked.connect(self.browse)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.hide()
        buttons = QHBoxLayout()
        for w in (self.get_button, self.cancel_button, self.add_button):
            buttons.addWidget(w)
        buttons.addWidget(self.progress, 1)

        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label = QLabel(self)
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_button = QPushButton("Change…", self)
        self.folder_button.setToolTip("A folder of your own for pretrained weights (e.g. on a shared drive)")
        self.folder_button.clicked.connect(self.pick_folder)
        self.hub_button = QPushButton("Use torch's hub cache", self)
        self.hub_button.clicked.connect(lambda: controller.choose_folder(None))
        folder_row = QHBoxLayout()
        folder_row.addWidget(QLabel("Model folder:", self))
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(self.folder_button)
        folder_row.addWidget(self.hub_button)

        yolo = QLabel(YOLO_NOTE, self)
        yolo.setWordWrap(True)
        yolo.setTextFormat(Qt.TextFormat.RichText)
        yolo.setStyleSheet("color: #888;")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addLayout(folder_row)
        layout.addWidget(yolo)
        layout.addWidget(close)
        self.refresh()
        if self.models:
            self.table.selectRow(0)

    # -- what the controller calls ------------------------------------------------------------
    def refresh(self) -> None:
        """Rows and the folder line as the files are now."""
        busy = self.controller.busy_arch()
        for row, m in enumerate(self.models):
            where = self.controller.where(m)
            place = "model folder" if where and where.parent == self.controller.custom_folder() else "hub cache"
            here = f"yes ({place})" if where else ("getting…" if m.arch == busy else "no")
            cells = (
                _item(m.title, f"{m.arch}\n{m.docs}\n{m.recipe}"),
                _item("yes" if m.has_masks else ""),
                _item(f"{m.num_params / 1e6:.1f} M", align_right=True),
                _item(f"{m.file_mb:.0f} MB", m.file_name, align_right=True),
                _item(f"{m.box_map:.1f}" if m.box_map is not None else "–", align_right=True),
                _item(f"{m.mask_map:.1f}" if m.mask_map is not None else "–", align_right=True),
                _item(m.licence, "The weights' terms follow torchvision's and COCO's; see " + m.recipe),
                _item(here, str(where) if where else m.url),
            )
            for col, item in enumerate(cells):
                self.table.setItem(row, col, item)
        self.folder_label.setText(str(self.controller.destination()) + (
            "" if self.controller.custom_folder() else "  (torch's hub cache)"))
        self.hub_button.setEnabled(self.controller.custom_folder() is not None)
        self._update_buttons()

    def show_progress(self, step: int, total: int | None, message: str) -> None:
        self.progress.show()
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * step / total))
        else:
            self.progress.setRange(0, 0)  # unknown size: a busy bar
        self.progress.setFormat(message or "%p%")

    def end_progress(self) -> None:
        self.progress.hide()
        self._update_buttons()

    def show_message(self, text: str) -> None:
        self.status.setText(text)

    # -- the user's requests ------------------------------------------------------------------
    def selected(self):
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.models[rows[0].row()] if rows else None

    def select(self, arch: str) -> None:
        for row, m in enumerate(self.models):
            if m.arch == arch:
                self.table.selectRow(row)

    def browse(self) -> None:
        model = self.selected()
        if model is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Weights of {model.title} ({model.file_name})", "",
                                              "PyTorch weights (*.pth *.pt);;All files (*)")
        if path:
            self.controller.add_from_file(model, path)

    def pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for pretrained weights",
                                                  str(self.controller.destination()))
        if folder:
            self.controller.choose_folder(folder)

    def _update_buttons(self) -> None:
        model = self.selected()
        busy = self.controller.busy_arch() is not None
        present = model is not None and self.controller.where(model) is not None
        self.get_button.setEnabled(model is not None and not busy and not present)
        self.add_button.setEnabled(model is not None and not busy)
        self.cancel_button.setEnabled(busy)
        self.folder_button.setEnabled(not busy)

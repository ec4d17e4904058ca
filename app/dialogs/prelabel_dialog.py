"""Models > Pre-label…: which checkpoint, which images (split and status) and from which score
a detection becomes a proposal. The count of images updates as the choice changes."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget)

from engine.assist.prelabel import STATUSES, images_to_prelabel

DEFAULT_SCORE = 0.25  # what a person wants to review; mAP's 0.05 would bury them in boxes


class PrelabelDialog(QDialog):
    """``choice()`` -> (checkpoint path, split or None, status or None, score threshold)."""

    def __init__(self, store, checkpoints: list[Path], display_name, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.setWindowTitle("Pre-label images with a model")
        self.checkpoint_box = QComboBox(self)
        self.checkpoint_box.setMinimumWidth(360)
        for path in checkpoints:
            self.checkpoint_box.addItem(display_name(path), str(path))
        self.browse_button = QPushButton("Browse…", self)
        self.browse_button.clicked.connect(self.browse)
        row = QHBoxLayout()
        row.addWidget(self.checkpoint_box, 1)
        row.addWidget(self.browse_button)
        self.split_box = QComboBox(self)
        for text, value in (("All splits", None), ("train", "train"), ("val", "val"), ("test", "test")):
            self.split_box.addItem(text, value)
        self.status_box = QComboBox(self)
        self.status_box.addItem("Any status", None)
        for status in STATUSES:
            self.status_box.addItem(status.replace("_", " "), status)
        self.status_box.setCurrentIndex(1)  # "new": images nobody has labelled yet
        self.score = QDoubleSpinBox(self)
        self.score.setRange(0.0, 1.0)
        self.score.setSingleStep(0.05)
        self.score.setDecimals(2)
        self.score.setValue(DEFAULT_SCORE)
        self.score.setToolTip("Detections scoring below this are not proposed")
        self.snap_box = QCheckBox("Snap boxes to the objects' edges (GrabCut)", self)
        self.snap_box.setChecked(True)
        self.snap_box.setToolTip("Fit each proposed box to the object inside it, so that most proposals can be "
                                 "accepted without moving their edges")
        self.count_label = QLabel(self)
        form = QFormLayout()
        form.addRow("Model", row)
        form.addRow("Split", self.split_box)
        form.addRow("Image status", self.status_box)
        form.addRow("Score threshold", self.score)
        form.addRow("", self.snap_box)
        form.addRow("", self.count_label)
        note = QLabel("Proposals are drawn dashed with their score; they never train or score until accepted. "
                      "A new run replaces this model's proposals not yet reviewed.", self)
        note.setWordWrap(True)
        note.setStyleSheet("color: #888;")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.run_button = self.buttons.addButton("Pre-label", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        for box in (self.split_box, self.status_box, self.checkpoint_box):
            box.currentIndexChanged.connect(self._update)
        self._update()

    def image_ids(self) -> list[int]:
        return images_to_prelabel(self.store, self.split_box.currentData(), self.status_box.currentData())

    def choice(self) -> tuple[str, str | None, str | None, float]:
        return (self.checkpoint_box.currentData(), self.split_box.currentData(), self.status_box.currentData(),
                round(self.score.value(), 4))

    def snap(self) -> bool:
        return self.snap_box.isChecked()

    def _update(self, *_args) -> None:
        n = len(self.image_ids())
        self.count_label.setText(f"{n} image{'s' * (n != 1)} to pre-label")
        self.run_button.setEnabled(n > 0 and self.checkpoint_box.currentData() is not None)

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", str(self.store.root),
                                              "Models (*.ckpt *.onnx *.pth *.pt);;All files (*)")
        if path:
            self.add_checkpoint(path)

    def add_checkpoint(self, path) -> None:
        self.checkpoint_box.insertItem(0, Path(path).name, str(path))
        self.checkpoint_box.setCurrentIndex(0)

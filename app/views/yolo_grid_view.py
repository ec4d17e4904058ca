"""Our YOLO's grid over an image: what every cell predicts and which cell answers for which object.

Draws a ``engine.viz.yolo_grid.GridExplanation``: the S x S grid; each cell tinted by its most
probable class (stronger = more probable); each cell's B boxes in their class colour with
opacity = confidence (boxes under the "min confidence" floor hidden); for every ground-truth
object (white, dashed) its responsible cell outlined in yellow, a dot at the object's centre and
the responsible predictor's box in thick yellow, labelled with its IoU. ``run(path, image, gt)``
computes the explanation in a background job; ``set_data`` shows a ready one.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import (QCheckBox, QGraphicsEllipseItem, QGraphicsItem, QGraphicsPixmapItem,
                               QGraphicsRectItem, QGraphicsScene, QHBoxLayout,
                               QLabel, QSlider, QVBoxLayout, QWidget)

from app.views.compare_view import SyncedImageView
from app.views.nms_view import _rgb_to_pixmap, _Tag
from engine.annotations.model import default_color
from engine.infer.views_api import yolo_grid_job
from engine.jobs import Job

__all__ = ["YoloGridView"]

RESPONSIBLE = QColor("#ffd600")
GT = QColor(255, 255, 255, 220)
GRID = QColor(255, 255, 255, 90)


def _pen(colour: QColor, width: float, dashed: bool = False) -> QPen:
    pen = QPen(colour, width)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


class YoloGridView(QWidget):
    """The grid view. ``set_data(image, explanation, class_names, colors=None, gt_boxes=None)``."""

    ready = Signal()  # a background run finished and is shown

    def __init__(self, bridge=None, parent: QWidget | None = None, device: str = "auto") -> None:
        super().__init__(parent)
        self._bridge = bridge
        self.device = device
        self.explanation = None
        self.class_names: list[str] = []
        self.colors: list[QColor] = []
        self.gt_boxes = np.zeros((0, 4))
        self._predictor = None
        self._job_id: int | None = None
        self.scene = QGraphicsScene(self)
        self.view = SyncedImageView(self.scene, self)
        self.pixmap_item = QGraphicsPixmapItem()
        self.scene.addItem(self.pixmap_item)
        self._items: list[QGraphicsItem] = []
        self.conf_slider = QSlider(Qt.Orientation.Horizontal)
        self.conf_slider.setRange(0, 100)
        self.conf_slider.setValue(10)
        self.conf_label = QLabel("0.00")
        self.conf_label.setMinimumWidth(self.conf_label.fontMetrics().horizontalAdvance("0.000"))
        self.class_check = QCheckBox("class map")
        self.boxes_check = QCheckBox("boxes")
        self.gt_check = QCheckBox("responsible cells")
        for check in (self.class_check, self.boxes_check, self.gt_check):
            check.setChecked(True)
            check.toggled.connect(self.redraw)
        self.conf_slider.valueChanged.connect(self.redraw)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("min confidence"))
        bar.addWidget(self.conf_slider, 1)
        bar.addWidget(self.conf_label)
        for check in (self.class_check, self.boxes_check, self.gt_check):
            bar.addWidget(check)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addLayout(bar)
        layout.addWidget(self.status)

    @property
    def bridge(self):
        if self._bridge is None:
            from app.jobs_bridge import JobBridge

            self._bridge = JobBridge(self)
        return self._bridge

    @property
    def min_confidence(self) -> float:
        return self.conf_slider.value() / 100.0

    # -- data ----------------------------------------------------------------------------------
    def run(self, path: str, image: np.ndarray, gt_boxes=None, class_colors=None) -> int:
        """Explain ``image`` with the YOLO checkpoint ``path`` in the background; emits ``ready``."""
        self._pending = (path, np.ascontiguousarray(image), gt_boxes, class_colors)
        predictor = self._predictor if getattr(self, "_predictor_path", None) == str(path) else None
        job = Job("yolo grid", yolo_grid_job, detector_path=str(path), image=self._pending[1], gt_boxes=gt_boxes,
                  predictor=predictor, device=self.device)
        self.bridge.finished.connect(self._on_finished, Qt.ConnectionType.UniqueConnection)
        self._job_id = self.bridge.submit(job)
        self.status.setText("running…")
        return self._job_id

    def _on_finished(self, job_id: int, outcome) -> None:
        if job_id != self._job_id:
            return
        self._job_id = None
        path, image, gt_boxes, colors = self._pending
        if outcome.state != "finished":
            self.status.setText(f"<span style='color:#ff5252'>{outcome.error}</span>")
            return
        self._predictor, self._predictor_path = outcome.result["predictor"], path
        self.set_data(image, outcome.result["explanation"], self._predictor.class_names, colors, gt_boxes)
        self.ready.emit()

    def set_data(self, image_rgb: np.ndarray, explanation, class_names, colors=None, gt_boxes=None) -> None:
        """Show ``explanation`` (engine.viz.yolo_grid.GridExplanation) over ``image_rgb``."""
        self.explanation = explanation
        self.class_names = list(class_names)
        colors = list(colors or [])
        self.colors = [QColor(colors[i] if i < len(colors) else default_color(i))
                       for i in range(len(self.class_names))]
        self.gt_boxes = np.asarray(gt_boxes if gt_boxes is not None else [], np.float64).reshape(-1, 4)
        self.pixmap_item.setPixmap(_rgb_to_pixmap(image_rgb))
        self.scene.setSceneRect(self.pixmap_item.boundingRect())
        self.view.fit()
        self.redraw()

    # -- drawing -------------------------------------------------------------------------------
    def _colour(self, label: int) -> QColor:
        return self.colors[label] if 0 <= label < len(self.colors) else QColor("#808080")

    def _add(self, item: QGraphicsItem, z: float) -> QGraphicsItem:
        item.setZValue(z)
        self.scene.addItem(item)
        self._items.append(item)
        return item

    def _rect(self, xyxy, pen: QPen, z: float, brush: QBrush | None = None) -> QGraphicsRectItem:
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        item = QGraphicsRectItem(x1, y1, x2 - x1, y2 - y1)
        item.setPen(pen)
        if brush is not None:
            item.setBrush(brush)
        return self._add(item, z)

    def redraw(self, *_args) -> None:
        for item in self._items:
            self.scene.removeItem(item)
        self._items.clear()
        self.conf_label.setText(f"{self.min_confidence:.2f}")
        ex = self.explanation
        if ex is None:
            return
        s = ex.grid
        if self.class_check.isChecked():
            for r in range(s):
                for c in range(s):
                    tint = QColor(self._colour(int(ex.class_index[r, c])))
                    tint.setAlpha(int(25 + 110 * float(ex.class_prob[r, c])))
                    self._rect(ex.cell_rect(r, c), QPen(Qt.PenStyle.NoPen), 1, QBrush(tint))
        for r in range(s):
            for c in range(s):
                self._rect(ex.cell_rect(r, c), _pen(GRID, 1.0), 2)
        shown = ex.boxes_above(self.min_confidence) if self.boxes_check.isChecked() else []
        for r, c, _b, box, conf in shown:
            item = self._rect(box, _pen(self._colour(int(ex.class_index[r, c])), 2.0), 3)
            item.setOpacity(max(0.08, conf))  # opacity = confidence
        if self.gt_check.isChecked():
            self._draw_responsibility(ex)
        self.status.setText(self._summary(ex, len(shown)))

    def _draw_responsibility(self, ex) -> None:
        for box in self.gt_boxes:
            self._rect(box, _pen(GT, 1.5, dashed=True), 4)
        for resp in ex.responsible:
            self._rect(ex.cell_rect(resp.row, resp.col), _pen(RESPONSIBLE, 3.0), 5)
            box = self.gt_boxes[resp.gt_index]
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            radius = max(1.5, min(ex.cell_size) / 10)
            dot = QGraphicsEllipseItem(cx - radius, cy - radius, 2 * radius, 2 * radius)
            dot.setBrush(QBrush(RESPONSIBLE))
            dot.setPen(QPen(Qt.PenStyle.NoPen))
            self._add(dot, 6)
            self._rect(ex.boxes[resp.row, resp.col, resp.predictor], _pen(RESPONSIBLE, 3.0), 6)
            tag = _Tag(f"IoU {resp.iou:.2f}", RESPONSIBLE, (resp.gt_index, True))  # readable on any cell
            x1, y1 = ex.boxes[resp.row, resp.col, resp.predictor][:2]
            tag.setPos(float(x1), float(y1))
            self._add(tag, 7)

    def _summary(self, ex, shown: int) -> str:
        counts = np.bincount(ex.class_index.ravel(), minlength=len(self.class_names))
        mix = ", ".join(f"<span style='color:{self._colour(i).name()}'>■</span> {n}: {int(k)}"
                        for i, (n, k) in enumerate(zip(self.class_names, counts)))
        return (f"{ex.grid}×{ex.grid} grid, {ex.boxes.shape[2]} boxes per cell, {shown} shown · cells per "
                f"class: {mix} · yellow: responsible cell and box of each of {len(ex.responsible)} objects")

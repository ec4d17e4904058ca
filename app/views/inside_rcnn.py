"""Inside the R-CNN: the teaching view over ``engine.viz.rpn.RcnnInspection``.

Left, the image with overlays: the RPN objectness of one FPN level as a heatmap, the RPN's
proposals before (thin, blue) or after (green) its NMS, and, where the teacher clicks, every
anchor of that cell on every level (colour per level; a dot marks the anchor centre, the cell's
top-left corner in torchvision). Right, for the picked box: the feature map it is pooled from,
the RoI Align bins (cyan grid) with their bilinear sampling points (yellow dots) versus the whole
cells RoI Pool takes a max over (orange), and both 7x7 outputs side by side. All numbers come
from the engine (numpy); this file only draws. The view never imports torch.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPen, QPixmap, QTransform
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGraphicsEllipseItem, QGraphicsLineItem,
                               QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene,
                               QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget)

from app.views.fit_view import FitView
from engine.viz.heatmaps import colorize

LEVEL_COLOURS = ("#ff5252", "#ffd600", "#00e676", "#40c4ff", "#e040fb", "#ff9100")
BEFORE_NMS = QColor(64, 196, 255, 150)
AFTER_NMS = QColor("#00e676")
PICKED = QColor("#ffffff")
ALIGN_GRID = QColor("#18ffff")
ALIGN_POINT = QColor("#ffd600")
POOL_CELL = QColor("#ff9100")


def _pen(colour: QColor | str, width: float = 1.5, dashed: bool = False) -> QPen:
    pen = QPen(QColor(colour), width)
    pen.setCosmetic(True)  # the same on-screen width at any zoom
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _pixmap(rgb: np.ndarray) -> QPixmap:
    arr = np.ascontiguousarray(rgb[:, :, :3].astype(np.uint8))
    h, w = arr.shape[:2]
    return QPixmap.fromImage(QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())


def _gray(values: np.ndarray) -> np.ndarray:
    """float [h, w] -> uint8 RGB [h, w, 3] stretched to its own range."""
    v = np.asarray(values, np.float32)
    lo, hi = float(v.min()), float(v.max())
    g = ((v - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


class _ClickView(FitView):
    """A zoom-to-fit view that reports left clicks in scene coordinates."""

    clicked = Signal(float, float)

    def __init__(self, scene: QGraphicsScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent, minimum=(240, 200))

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.button() == Qt.MouseButton.LeftButton:
            p = self.mapToScene(event.position().toPoint())
            self.clicked.emit(p.x(), p.y())
        super().mousePressEvent(event)


class InsideRcnnView(QWidget):
    """Anchors, objectness, proposals and RoI Align vs RoI Pool for one image.

    ``set_inspection(inspection)`` takes an ``engine.viz.rpn.RcnnInspection`` (or an object with
    the same methods); ``inspect(bridge, source, image)`` computes one in a background job.
    Signal ``updated()`` fires after every redraw.
    """

    updated = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.inspection = None
        self.anchor_point: tuple[float, float] | None = None
        self.picked_box: np.ndarray | None = None
        self.sampling = None  # the last RoiSampling drawn
        self._proposals: dict | None = None
        self._job_id: int | None = None
        self._overlay_items: list = []

        self.scene = QGraphicsScene(self)
        self.image_item = QGraphicsPixmapItem()
        self.heat_item = QGraphicsPixmapItem()
        self.heat_item.setOpacity(0.55)
        self.scene.addItem(self.image_item)
        self.scene.addItem(self.heat_item)
        self.view = _ClickView(self.scene)
        self.view.clicked.connect(self.place_anchors)

        self.roi_scene = QGraphicsScene(self)
        self.roi_view = _ClickView(self.roi_scene)
        self.align_label, self.pool_label = QLabel(), QLabel()
        for label in (self.align_label, self.pool_label):
            label.setFixedSize(112, 112)
            label.setScaledContents(True)

        self.level_box = QComboBox()
        self.heat_check = QCheckBox("objectness heatmap")
        self.heat_check.setChecked(True)
        self.proposal_box = QComboBox()
        self.proposal_box.addItems(["no proposals", "before RPN NMS", "after RPN NMS"])
        self.proposal_box.setCurrentIndex(2)
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 1000)
        self.top_k.setValue(20)
        self.box_picker = QComboBox()
        self.sampling_ratio = QSpinBox()
        self.sampling_ratio.setRange(0, 8)
        self.sampling_ratio.setValue(2)
        self.sampling_ratio.setToolTip("sampling points per bin side; 0 = adaptive (ceil(RoI size / 7))")
        self.aligned_check = QCheckBox("aligned (half-pixel offset)")
        self.status = QLabel("no image inspected yet")
        self.status.setWordWrap(True)
        self.compare_label = QLabel()
        self.compare_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("FPN level", self.level_box)
        form.addRow(self.heat_check)
        form.addRow("proposals", self.proposal_box)
        form.addRow("top-k", self.top_k)
        form.addRow("RoI box", self.box_picker)
        form.addRow("sampling ratio", self.sampling_ratio)
        form.addRow(self.aligned_check)
        outputs = QHBoxLayout()
        for title, label in (("RoI Align 7x7", self.align_label), ("RoI Pool 7x7", self.pool_label)):
            col = QVBoxLayout()
            col.addWidget(QLabel(title))
            col.addWidget(label)
            outputs.addLayout(col)
        side = QVBoxLayout()
        side.addLayout(form)
        side.addWidget(QLabel("Feature map under the box: cyan = RoI Align bins, yellow = sampling "
                              "points, orange = RoI Pool cells"))
        side.addWidget(self.roi_view, 1)
        side.addLayout(outputs)
        side.addWidget(self.compare_label)
        side.addWidget(self.status)
        layout = QHBoxLayout(self)
        layout.addWidget(self.view, 3)
        layout.addLayout(side, 2)

        self.level_box.currentIndexChanged.connect(self._redraw)
        self.heat_check.toggled.connect(self._redraw)
        self.proposal_box.currentIndexChanged.connect(self._redraw)
        self.top_k.valueChanged.connect(self._on_top_k)
        self.box_picker.currentIndexChanged.connect(self._on_box_picked)
        self.sampling_ratio.valueChanged.connect(self._draw_roi)
        self.aligned_check.toggled.connect(self._draw_roi)

    # -- feeding the view --------------------------------------------------------------------------
    def inspect(self, bridge, source, image) -> int:
        """Run ``engine.viz.rpn.inspection_job`` on the bridge (off the GUI thread); the view
        fills itself when the job finishes. Returns the job id."""
        from engine.jobs import Job
        from engine.viz.rpn import inspection_job

        self.status.setText("running the backbone and the RPN...")
        bridge.finished.connect(self._on_job_finished, Qt.ConnectionType.UniqueConnection)
        self._job_id = bridge.submit(Job("inside R-CNN", inspection_job, source=source, image=image))
        return self._job_id

    def _on_job_finished(self, job_id: int, outcome) -> None:
        if job_id != self._job_id:
            return  # a stale job (an older image): ignore
        self._job_id = None
        if outcome.state == "finished":
            self.set_inspection(outcome.result)
        else:
            self.status.setText(f"inspection {outcome.state}: {outcome.error or ''}")

    def set_image(self, image_rgb: np.ndarray) -> None:
        """Show a bare image (uint8 RGB [H, W, 3]) with no inspection: nothing to click yet."""
        self.inspection, self.anchor_point, self.picked_box, self._proposals = None, None, None, None
        self._clear_overlays()
        self.heat_item.setVisible(False)
        self.roi_scene.clear()
        self.align_label.clear()
        self.pool_label.clear()
        self.compare_label.clear()
        self.box_picker.clear()
        self.level_box.clear()
        self.image_item.setPixmap(_pixmap(np.ascontiguousarray(image_rgb)))
        h, w = image_rgb.shape[:2]
        self.scene.setSceneRect(QRectF(0, 0, w, h))
        self.view.fit()
        self.status.setText("no detector inspected yet")

    def set_inspection(self, inspection) -> None:
        self.inspection = inspection
        self.image_item.setPixmap(_pixmap(inspection.image))
        h, w = inspection.image.shape[:2]
        self.scene.setSceneRect(QRectF(0, 0, w, h))
        self.anchor_point = None
        self.level_box.blockSignals(True)
        self.level_box.clear()
        self.level_box.addItems(list(inspection.level_names))
        # open on the level whose objectness peaks highest: where this image's objects are found
        peaks = [float(inspection.objectness(name).max()) for name in inspection.level_names]
        self.level_box.setCurrentIndex(int(np.argmax(peaks)))
        self.level_box.blockSignals(False)
        self._proposals = inspection.proposals(top_k=self.top_k.value())
        self._fill_box_picker()
        self.view.fit()
        self._redraw()
        self._on_box_picked()

    # -- interactions ------------------------------------------------------------------------------
    def place_anchors(self, x: float, y: float) -> None:
        """Show all anchors of the cell holding image point (x, y), on every level."""
        if self.inspection is None:
            return
        h, w = self.inspection.image.shape[:2]
        self.anchor_point = (min(max(x, 0.0), w - 1e-3), min(max(y, 0.0), h - 1e-3))
        self._redraw()

    def pick_box(self, box_xyxy) -> None:
        """Show RoI Align vs RoI Pool for any box (original pixels)."""
        self.picked_box = np.asarray(box_xyxy, np.float32)
        self._redraw()
        self._draw_roi()

    def _on_top_k(self) -> None:
        if self.inspection is None:
            return
        self._proposals = self.inspection.proposals(top_k=self.top_k.value())
        self._fill_box_picker()
        self._redraw()

    def _fill_box_picker(self) -> None:
        boxes = self._proposals["after_nms"]["boxes"]
        scores = self._proposals["after_nms"]["scores"]
        self.box_picker.blockSignals(True)
        self.box_picker.clear()
        for i, (b, s) in enumerate(zip(boxes, scores)):
            self.box_picker.addItem(f"#{i + 1} p={s:.2f} ({b[0]:.0f},{b[1]:.0f})-({b[2]:.0f},{b[3]:.0f})")
        self.box_picker.blockSignals(False)

    def _on_box_picked(self) -> None:
        i = self.box_picker.currentIndex()
        if self._proposals is None or i < 0 or i >= len(self._proposals["after_nms"]["boxes"]):
            return
        self.pick_box(self._proposals["after_nms"]["boxes"][i])

    # -- drawing -----------------------------------------------------------------------------------
    def _clear_overlays(self) -> None:
        for item in self._overlay_items:
            self.scene.removeItem(item)
        self._overlay_items = []

    def _add_rect(self, box, pen: QPen) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        item = QGraphicsRectItem(QRectF(x1, y1, x2 - x1, y2 - y1))
        item.setPen(pen)
        self.scene.addItem(item)
        self._overlay_items.append(item)

    def _redraw(self) -> None:
        ins = self.inspection
        if ins is None:
            return
        self._clear_overlays()
        level = self.level_box.currentText() or ins.level_names[0]
        if self.heat_check.isChecked():
            heat = ins.objectness(level)
            self.heat_item.setPixmap(_pixmap(colorize(heat, 0.0, 1.0)))
            x, y, w, h = ins.level_rect(level)
            # one heatmap pixel per feature cell, stretched over the image area it covers
            self.heat_item.setTransform(QTransform.fromScale(w / heat.shape[1], h / heat.shape[0]))
            self.heat_item.setPos(x, y)
            self.heat_item.setVisible(True)
        else:
            self.heat_item.setVisible(False)
        mode = self.proposal_box.currentIndex()
        if mode and self._proposals is not None:
            key, colour = ("before_nms", BEFORE_NMS) if mode == 1 else ("after_nms", AFTER_NMS)
            for box in self._proposals[key]["boxes"][: self.top_k.value()]:
                self._add_rect(box, _pen(colour, 1.0 if mode == 1 else 1.5))
        if self.anchor_point is not None:
            for i, lv in enumerate(ins.anchors_at(*self.anchor_point)):
                colour = LEVEL_COLOURS[i % len(LEVEL_COLOURS)]
                for box in lv["boxes"]:
                    self._add_rect(box, _pen(colour, 1.2, dashed=lv["level"] != level))
                cx, cy = float(lv["boxes"][:, [0, 2]].mean()), float(lv["boxes"][:, [1, 3]].mean())
                dot = QGraphicsEllipseItem(cx - 2, cy - 2, 4, 4)
                dot.setBrush(QBrush(QColor(colour)))
                dot.setPen(QPen(Qt.PenStyle.NoPen))
                self.scene.addItem(dot)
                self._overlay_items.append(dot)
            n = [len(lv["boxes"]) for lv in ins.anchors_at(*self.anchor_point)]
            self.status.setText(f"anchors at ({self.anchor_point[0]:.0f}, {self.anchor_point[1]:.0f}): "
                                f"{' + '.join(map(str, n))} = {sum(n)} over {len(n)} levels "
                                f"(sizes x aspect ratios per level)")
        if self.picked_box is not None:
            self._add_rect(self.picked_box, _pen(PICKED, 2.0))
        self.updated.emit()

    def _draw_roi(self) -> None:
        if self.inspection is None or self.picked_box is None:
            return
        r = self.inspection.roi_sampling(self.picked_box, sampling_ratio=self.sampling_ratio.value(),
                                         aligned=self.aligned_check.isChecked())
        self.sampling = r
        self.roi_scene.clear()
        # cell (r, c) is drawn over [c, c+1) x [r, r+1); sample coordinates are +0.5 (see engine.viz.rpn)
        self.roi_scene.addItem(QGraphicsPixmapItem(_pixmap(_gray(r.feature_fm))))
        for y in r.align_y_edges:
            self._roi_line(r.align_x_edges[0], y, r.align_x_edges[-1], y, ALIGN_GRID)
        for x in r.align_x_edges:
            self._roi_line(x, r.align_y_edges[0], x, r.align_y_edges[-1], ALIGN_GRID)
        for y in r.align_ys.ravel():
            for x in r.align_xs.ravel():
                dot = self.roi_scene.addEllipse(x + 0.5 - 0.08, y + 0.5 - 0.08, 0.16, 0.16, QPen(Qt.PenStyle.NoPen),
                                                QBrush(ALIGN_POINT))
                dot.setZValue(3)
        hs, he, ws, we = r.pool_cells
        for ph in range(len(hs)):
            for pw in range(len(ws)):
                if he[ph] > hs[ph] and we[pw] > ws[pw]:
                    cell = self.roi_scene.addRect(QRectF(ws[pw], hs[ph], we[pw] - ws[pw], he[ph] - hs[ph]),
                                                  _pen(POOL_CELL, 1.0, dashed=True))
                    cell.setZValue(2)
        x1, y1, x2, y2 = (float(v) for v in r.box_fm)
        margin = 1.5
        self.roi_scene.setSceneRect(QRectF(x1 - margin, y1 - margin, x2 - x1 + 2 * margin + 1,
                                           y2 - y1 + 2 * margin + 1))
        self.roi_view.fit()
        lo = float(min(r.align_mean.min(), r.pool_mean.min()))
        hi = float(max(r.align_mean.max(), r.pool_mean.max()))
        self.align_label.setPixmap(_pixmap(colorize(r.align_mean, lo, hi)))
        self.pool_label.setPixmap(_pixmap(colorize(r.pool_mean, lo, hi)))
        diff = float(np.abs(r.align_numpy - r.align_out).max())
        self.compare_label.setText(f"One colour scale for both: RoI Pool takes each cell's maximum, RoI Align "
                                   f"averages bilinear samples, so Pool looks brighter. Level {r.level} (stride "
                                   f"{r.stride:.0f}); our bilinear RoI Align vs torchvision.ops.roi_align: max "
                                   f"difference {diff:.2e}")
        self.updated.emit()

    def _roi_line(self, x1, y1, x2, y2, colour) -> None:
        line = QGraphicsLineItem(x1 + 0.5, y1 + 0.5, x2 + 0.5, y2 + 0.5)
        line.setPen(_pen(colour, 1.0))
        line.setZValue(1)
        self.roi_scene.addItem(line)

    # -- for tests and lessons ---------------------------------------------------------------------
    def overlay_count(self) -> int:
        """Rectangles currently drawn over the image (anchors, proposals, picked box)."""
        return sum(isinstance(i, QGraphicsRectItem) for i in self._overlay_items)


__all__ = ["InsideRcnnView"]

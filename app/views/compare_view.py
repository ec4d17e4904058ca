"""Compare 2-4 detectors on one image, side by side.

Each detector (a Visionbench checkpoint, an ``.onnx`` export or a torchvision ``.pth``, opened by
``engine.infer.detector_api.load_detector``) runs on the current image in a background job and
returns its candidates BEFORE NMS with its latency. Everything after that is cheap numpy on the
GUI thread: the per-panel score and NMS-IoU sliders re-run NMS on the cached candidates
(``engine.viz.nms_trace``, identical to torchvision's) and the result is matched to the ground
truth at IoU 0.5 (``engine.eval.coco_eval.match_detections``): true positives green, false
positives red, missed objects orange and dashed. The views share zoom and pan. A table lists
detections, TP, FP, FN and latency per model. Results of a stale run (image changed meanwhile)
carry an old generation number and are dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGraphicsItem, QGraphicsPixmapItem,
                               QGraphicsRectItem, QGraphicsScene, QGraphicsView,
                               QGridLayout, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSlider,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.views.nms_view import _rgb_to_pixmap, _Tag
from engine.data.objects import ground_truth_boxes
from engine.eval.coco_eval import match_detections
from engine.infer.detections import RawCandidates
from engine.infer.views_api import detect_job, list_detector_files, masks_for
from engine.jobs import Job
from engine.viz.nms_trace import nms_trace

__all__ = ["CompareView", "DetectorPanel"]

MAX_DETECTORS = 4
MATCH_IOU = 0.5
MAX_DETECTIONS = 100
COLOURS = {"tp": QColor("#00e676"), "fp": QColor("#ff5252"), "fn": QColor("#ffab40"),
           "gt": QColor(255, 255, 255, 170)}
TABLE_COLUMNS = ("model", "detections", "TP", "FP", "FN", "latency ms")


def _pen(colour: QColor, width: float = 2.0, dashed: bool = False) -> QPen:
    pen = QPen(colour, width)
    pen.setCosmetic(True)  # the same on-screen width at every zoom
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


class SyncedImageView(QGraphicsView):
    """A zoomable (wheel), pannable (drag) image view that says when its viewport moved."""

    viewport_moved = Signal(object)  # self

    def __init__(self, scene: QGraphicsScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setBackgroundBrush(QBrush(QColor("#202124")))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setMinimumSize(220, 180)
        self.horizontalScrollBar().valueChanged.connect(lambda _v: self.viewport_moved.emit(self))
        self.verticalScrollBar().valueChanged.connect(lambda _v: self.viewport_moved.emit(self))

        self.zoomed = False  # until the user zooms, the whole image stays in view on resize

    def fit(self) -> None:
        if not self.sceneRect().isEmpty():
            self.fitInView(self.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomed = False

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        if not self.zoomed:
            self.fit()

    def zoom(self, factor: float) -> None:
        self.zoomed = True
        self.scale(factor, factor)
        self.viewport_moved.emit(self)

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)

    def scene_center(self) -> QPointF:
        return self.mapToScene(self.viewport().rect().center())


@dataclass
class PanelResult:
    """What one panel shows now (after its sliders): kept indices into the raw candidates, and
    the TP/FP masks of those, FN mask of the ground truth."""

    keep: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tp: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    fp: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    fn: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


class DetectorPanel(QWidget):
    """One detector: title, image view with its boxes, score and NMS-IoU sliders."""

    changed = Signal()
    remove_requested = Signal()

    def __init__(self, path: str, scene_image: QGraphicsPixmapItem | None = None, parent=None) -> None:
        super().__init__(parent)
        self.path = str(path)
        self.predictor = None
        self.raw: RawCandidates | None = None
        self.masks: dict | None = None  # Mask R-CNN: detect_job's masks of the final detections
        self.latency_ms: float | None = None
        self.error: str | None = None
        self.result = PanelResult()
        self.scene = QGraphicsScene(self)
        self.view = SyncedImageView(self.scene, self)
        self.pixmap_item = QGraphicsPixmapItem()
        self.scene.addItem(self.pixmap_item)
        self._items: list[QGraphicsItem] = []
        self.title = QLabel(Path(path).name)
        self.title.setWordWrap(True)
        self.score_slider = self._slider(0.30, 0.05)
        self.iou_slider = self._slider(0.50, 0.05)
        self.score_label, self.iou_label = QLabel(), QLabel()
        self.score_slider.valueChanged.connect(self._on_slider)
        self.iou_slider.valueChanged.connect(self._on_slider)
        grid = QGridLayout()
        grid.addWidget(QLabel("score ≥"), 0, 0)
        grid.addWidget(self.score_slider, 0, 1)
        grid.addWidget(self.score_label, 0, 2)
        grid.addWidget(QLabel("NMS IoU"), 1, 0)
        grid.addWidget(self.iou_slider, 1, 1)
        grid.addWidget(self.iou_label, 1, 2)
        self.remove_button = QPushButton("✕")
        self.remove_button.setFixedWidth(28)
        self.remove_button.setToolTip("Remove this detector from the comparison")
        self.remove_button.clicked.connect(self.remove_requested)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(head)
        layout.addWidget(self.view, 1)
        layout.addLayout(grid)
        self._update_labels()

    @staticmethod
    def _slider(value: float, minimum: float) -> QSlider:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(int(round(minimum * 100)), 100)
        s.setValue(int(round(value * 100)))
        return s

    @property
    def name(self) -> str:
        return getattr(self.predictor, "name", None) or Path(self.path).name

    @property
    def score_threshold(self) -> float:
        return self.score_slider.value() / 100.0

    @property
    def nms_iou(self) -> float:
        return self.iou_slider.value() / 100.0

    def set_thresholds(self, score: float | None = None, iou: float | None = None) -> None:
        if score is not None:
            self.score_slider.setValue(int(round(score * 100)))
        if iou is not None:
            self.iou_slider.setValue(int(round(iou * 100)))

    def _update_labels(self) -> None:
        self.score_label.setText(f"{self.score_threshold:.2f}")
        self.iou_label.setText(f"{self.nms_iou:.2f}")

    def _on_slider(self, _value: int) -> None:
        self._update_labels()
        self.changed.emit()

    def detections(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kept (boxes [N, 4], scores [N], labels [N]) after this panel's sliders."""
        if self.raw is None:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
        k = self.result.keep
        return self.raw.boxes[k], self.raw.scores[k], self.raw.labels[k]

    def refilter(self, gt_boxes: np.ndarray, gt_names: list[str]) -> PanelResult:
        """NMS of the cached candidates at the sliders' values, then TP/FP/FN at IoU 0.5."""
        if self.raw is None:
            self.result = PanelResult(fn=np.ones(len(gt_boxes), bool))
            return self.result
        trace = nms_trace(self.raw.boxes, self.raw.scores, self.raw.labels, self.nms_iou, self.score_threshold)
        keep = trace.keep[:MAX_DETECTIONS]
        names = list(getattr(self.predictor, "class_names", []))
        codes = {n: i for i, n in enumerate(dict.fromkeys(names + list(gt_names)))}
        det_codes = np.array([codes.get(names[int(lab)], -1) if 0 <= int(lab) < len(names) else -1
                              for lab in self.raw.labels[keep]], np.int64)
        gt_codes = np.array([codes[n] for n in gt_names], np.int64)
        tp, fp, fn = match_detections(gt_boxes, gt_codes, self.raw.boxes[keep], det_codes,
                                      self.raw.scores[keep], MATCH_IOU)
        self.result = PanelResult(keep, tp, fp, fn)
        return self.result

    def redraw(self, gt_boxes: np.ndarray, show_gt: bool) -> None:
        for item in self._items:
            self.scene.removeItem(item)
        self._items.clear()
        if show_gt:
            for box in gt_boxes:
                self._rect(box, _pen(COLOURS["gt"], 1.0, dashed=True), z=1)
        boxes, scores, labels = self.detections()
        names = list(getattr(self.predictor, "class_names", []))
        masks = masks_for(boxes, labels, self.masks)
        for box, score, label, is_tp, mask in zip(boxes, scores, labels, self.result.tp, masks):
            colour = COLOURS["tp" if is_tp else "fp"]
            if mask is not None:
                self._mask(mask, colour)
            self._rect(box, _pen(colour, 2.0), z=3)
            name = names[int(label)] if 0 <= int(label) < len(names) else str(int(label))
            self._tag(box, f"{name} {score:.2f}", colour)
        for box in gt_boxes[self.result.fn] if len(gt_boxes) else []:
            self._rect(box, _pen(COLOURS["fn"], 2.0, dashed=True), z=4)  # above a wrong-class box
        if self.error:
            self.title.setText(f"{Path(self.path).name}: {self.error}")
            self.title.setStyleSheet("color: #ff5252")
        else:
            self.title.setText(self.name)
            self.title.setStyleSheet("")

    def _tag(self, box, text: str, colour: QColor) -> None:
        """Class and score on a dark plate at the box's top-left corner, readable at any zoom."""
        tag = _Tag(text, colour, (0, True))
        tag.setPos(float(box[0]), float(box[1]))
        tag.setZValue(5)
        self.scene.addItem(tag)
        self._items.append(tag)

    def _mask(self, mask: np.ndarray, colour: QColor) -> None:
        """A translucent mask (bool [H, W]) in the box's colour, drawn under the boxes."""
        ys, xs = np.nonzero(mask)
        if not len(ys):
            return
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        crop = mask[y0:y1, x0:x1]
        rgba = np.zeros(crop.shape + (4,), np.uint8)
        rgba[crop] = (colour.red(), colour.green(), colour.blue(), 110)
        image = QImage(rgba.data, rgba.shape[1], rgba.shape[0], rgba.strides[0], QImage.Format.Format_RGBA8888).copy()
        item = QGraphicsPixmapItem(QPixmap.fromImage(image))
        item.setPos(float(x0), float(y0))
        item.setZValue(2)
        self.scene.addItem(item)
        self._items.append(item)

    def _rect(self, box, pen: QPen, z: float) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        item = QGraphicsRectItem(x1, y1, x2 - x1, y2 - y1)
        item.setPen(pen)
        item.setZValue(z)
        self.scene.addItem(item)
        self._items.append(item)


class CompareView(QWidget):
    """Side-by-side detectors on one image. ``set_image(rgb, gt_boxes, gt_names)``,
    ``add_detector(path)``, ``run()``; signal ``ran()`` when every detector has answered.

    bridge: an ``app.jobs_bridge.JobBridge`` (the workbench's); one is made when omitted.
    """

    ran = Signal()

    def __init__(self, bridge=None, parent: QWidget | None = None, device: str = "auto") -> None:
        super().__init__(parent)
        if bridge is None:
            from app.jobs_bridge import JobBridge

            bridge = JobBridge(self)
        self.bridge = bridge
        self.device = device
        self.panels: list[DetectorPanel] = []
        self.image: np.ndarray | None = None
        self.gt_boxes = np.zeros((0, 4), np.float64)
        self.gt_names: list[str] = []
        self._generation = 0
        self._jobs: dict[int, tuple[DetectorPanel, int]] = {}
        self._queue: list[DetectorPanel] = []
        self._syncing = False
        self.bridge.finished.connect(self._on_finished)
        self._build()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.picker = QComboBox()
        self.picker.setMinimumWidth(220)
        self.add_button = QPushButton("Add")
        self.browse_button = QPushButton("Browse…")
        self.run_button = QPushButton("Run on image")
        self.gt_check = QCheckBox("ground truth")
        self.gt_check.setChecked(True)
        self.add_button.clicked.connect(
            lambda: self.picker.currentData() and self.add_detector(self.picker.currentData()))
        self.browse_button.clicked.connect(self._browse)
        self.run_button.clicked.connect(self.run)
        self.gt_check.toggled.connect(lambda _on: self._redraw_all())
        self.bar = bar = QHBoxLayout()
        for w in (QLabel("Detector"), self.picker, self.add_button, self.browse_button, self.run_button,
                  self.gt_check):
            bar.addWidget(w)
        legend = QLabel("<span style='color:#00e676'>■ true positive</span> &nbsp; "
                        "<span style='color:#ff5252'>■ false positive</span> &nbsp; "
                        "<span style='color:#ffab40'>▭ missed</span> &nbsp; ▭ ground truth (IoU 0.5)")
        bar.addWidget(legend)
        bar.addStretch(1)
        self.panel_row = QHBoxLayout()
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setMaximumHeight(150)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addLayout(self.panel_row, 1)
        layout.addWidget(self.table)

    def set_project_folder(self, folder) -> None:
        """List the detector files found under ``folder`` in the picker, newest first."""
        self.picker.clear()
        for path in list_detector_files(folder):
            self.picker.addItem(str(Path(path).relative_to(folder)), str(path))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a detector", "",
                                              "Detectors (*.ckpt *.onnx *.pth *.pt);;All files (*)")
        if path:
            self.add_detector(path)

    # -- detectors -----------------------------------------------------------------------------
    def add_detector(self, path) -> DetectorPanel | None:
        """Add a panel for the detector file ``path`` (at most four); None when full."""
        if len(self.panels) >= MAX_DETECTORS:
            return None
        panel = DetectorPanel(str(path), parent=self)
        panel.changed.connect(lambda p=panel: self._refresh(p))
        panel.remove_requested.connect(lambda p=panel: p in self.panels and self.remove_detector(self.panels.index(p)))
        panel.view.viewport_moved.connect(self._sync_from)
        if self.image is not None:
            panel.pixmap_item.setPixmap(_rgb_to_pixmap(self.image))
            panel.scene.setSceneRect(panel.pixmap_item.boundingRect())
        self.panels.append(panel)
        self.panel_row.addWidget(panel, 1)
        self._refresh(panel)
        return panel

    def remove_detector(self, index: int) -> None:
        panel = self.panels.pop(index)
        self.panel_row.removeWidget(panel)
        panel.deleteLater()
        self._update_table()

    # -- image and runs ------------------------------------------------------------------------
    def set_image(self, image_rgb: np.ndarray, gt_boxes=None, gt_names=None) -> None:
        """Show a new image (uint8 RGB [H, W, 3]) with its ground truth (xyxy pixels, class names).

        Cached results of the previous image are dropped; call ``run()`` to detect.
        """
        self.image = np.ascontiguousarray(image_rgb)
        self.gt_boxes = np.asarray(gt_boxes if gt_boxes is not None else [], np.float64).reshape(-1, 4)
        self.gt_names = list(gt_names or [])
        if len(self.gt_names) != len(self.gt_boxes):
            raise ValueError(f"gt_names: {len(self.gt_names)} names for {len(self.gt_boxes)} boxes")
        self._generation += 1
        self._queue = []
        pixmap = _rgb_to_pixmap(self.image)
        for panel in self.panels:
            panel.raw, panel.latency_ms, panel.error = None, None, None
            panel.pixmap_item.setPixmap(pixmap)
            panel.scene.setSceneRect(panel.pixmap_item.boundingRect())
            panel.view.fit()
            self._refresh(panel)

    def set_image_from_store(self, store, image_id: int) -> None:
        """The project image ``image_id`` with its annotations as ground truth."""
        from engine.annotations.imageio import read_image_rgb

        rec = store.image(image_id)
        names = {c.id: c.name for c in store.categories()}
        boxes, gt_names = ground_truth_boxes(store.annotations(image_id), names, rec.height, rec.width)
        self.set_image(read_image_rgb(store.image_path(rec)), boxes, gt_names)

    def run(self) -> None:
        """Run every detector on the current image in the background, one after the other.

        One at a time on purpose: latencies measured while models compete for the same cores
        say nothing about the models, and the GUI thread keeps a core to itself.
        """
        if self.image is None or not self.panels:
            return
        self._queue = list(self.panels)
        self.run_button.setEnabled(False)
        if not self._jobs:  # else the running (stale) job submits the next when it ends: one
            self._submit_next()  # model never runs in two threads at once

    def _submit_next(self) -> None:
        while self._queue:
            panel = self._queue.pop(0)
            if panel not in self.panels:
                continue
            job = Job(f"compare: {Path(panel.path).name}", detect_job, path=panel.path, image=self.image,
                      predictor=panel.predictor, device=self.device)
            self._jobs[self.bridge.submit(job)] = (panel, self._generation)
            return
        if not self._jobs:
            self.run_button.setEnabled(True)
            self.ran.emit()

    def busy(self) -> bool:
        return bool(self._jobs or self._queue)

    def _on_finished(self, job_id: int, outcome) -> None:
        entry = self._jobs.pop(job_id, None)
        if entry is None:
            return
        panel, generation = entry
        if generation != self._generation:  # the image changed meanwhile: a stale answer
            if outcome.state == "finished" and panel in self.panels and panel.predictor is None:
                panel.predictor = outcome.result["predictor"]  # loaded all the same: keep it
            if self._queue:
                self._submit_next()
            elif not self._jobs:
                self.run_button.setEnabled(True)
            return
        if panel in self.panels:
            if outcome.state == "finished":
                panel.predictor = outcome.result["predictor"]
                panel.raw = outcome.result["raw"]
                panel.latency_ms = outcome.result["latency_ms"]
                panel.masks = outcome.result.get("masks")
                panel.error = None
            else:
                panel.error = str(outcome.error) if outcome.error is not None else outcome.state
            self._refresh(panel)
        self._submit_next()

    # -- drawing and numbers -------------------------------------------------------------------
    def _refresh(self, panel: DetectorPanel) -> None:
        panel.refilter(self.gt_boxes, self.gt_names)
        panel.redraw(self.gt_boxes, self.gt_check.isChecked())
        self._update_table()

    def _redraw_all(self) -> None:
        for panel in self.panels:
            panel.redraw(self.gt_boxes, self.gt_check.isChecked())

    def results(self) -> list[dict]:
        """One row per detector: name, detections, tp, fp, fn, latency_ms (None before a run)."""
        rows = []
        for panel in self.panels:
            r = panel.result
            ran = panel.raw is not None
            rows.append({"name": panel.name, "detections": int(len(r.keep)) if ran else None,
                         "tp": int(r.tp.sum()) if ran else None, "fp": int(r.fp.sum()) if ran else None,
                         "fn": int(r.fn.sum()) if ran else None, "latency_ms": panel.latency_ms,
                         "error": panel.error})
        return rows

    def _update_table(self) -> None:
        rows = self.results()
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            values = [row["name"], row["detections"], row["tp"], row["fp"], row["fn"],
                      None if row["latency_ms"] is None else f"{row['latency_ms']:.1f}"]
            if row["error"]:
                values[1:] = ["error"] + [None] * 4
            for j, v in enumerate(values):
                item = QTableWidgetItem("–" if v is None else str(v))
                if j:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)

    # -- synchronised zoom and pan -------------------------------------------------------------
    def _sync_from(self, source: SyncedImageView) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            center = source.scene_center()
            for panel in self.panels:
                if panel.view is not source:
                    panel.view.zoomed = source.zoomed
                    panel.view.setTransform(source.transform())
                    panel.view.centerOn(center)
        finally:
            self._syncing = False

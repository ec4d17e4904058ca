"""How good is a detector on a split: per-class AP table, precision-recall curves, confusion matrix.

Shows the output of ``engine.eval.coco_eval.evaluate_detections`` (pycocotools: AP@[.5:.95],
AP@.5, and the interpolated precision at 101 recall points per class, IoU 0.5) and a detection
confusion matrix (``engine.eval.confusion``: rows = true class, columns = predicted, with a
"background" row for false alarms and column for misses), colour = row share, numbers = counts.
``evaluate_job`` computes both for a checkpoint on a project split in the background.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QLabel, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from engine.annotations.model import default_color
from engine.jobs import Progress

__all__ = ["PrCurvesView", "evaluate_job"]


def evaluate_job(token, checkpoint: str, project: str, split: str | None = "val", device: str = "auto",
                 score_threshold: float = 0.3):
    """Job: COCO box metrics and the confusion matrix of a detector on a project split.

    Returns {"evaluation": evaluate_detections(...) dict (boxes), "mask_evaluation": the same for
    masks (Mask R-CNN) or None, "confusion": int [C+1, C+1],
    "labels": class names + ["background"], "class_names": [...], "images": N, "seconds": wall s}.
    The confusion matrix counts detections scoring >= ``score_threshold``; the AP figures use every
    detection (score >= 0.05). BadInput when no class of the detector is a project category, or
    the split holds no image.
    """
    from app.views.compare_view import ground_truth_boxes
    from engine.annotations.errors import BadInput
    from engine.annotations.store import ProjectStore
    from engine.eval.coco_eval import evaluate_detections
    from engine.eval.confusion import DetectionConfusion
    from engine.infer.detector_api import load_detector
    from engine.infer.run import inference_threads, read_model_image
    from engine.train.loop import lower_thread_priority

    started = time.perf_counter()
    if threading.current_thread() is not threading.main_thread():  # not when run in-line (tests)
        lower_thread_priority(5)  # the GUI thread wins the CPU while a split is scored
    yield Progress(0, None, f"loading {Path(checkpoint).name}")
    predictor = load_detector(checkpoint, device)
    names = list(predictor.class_names)
    store = ProjectStore(project, readonly=True)
    try:
        cats = {c.id: c.name for c in store.categories()}
        if not set(names) & set(cats.values()):
            raise BadInput(str(checkpoint), "classes",
                           f"none of the detector's classes {names[:6]} is a category of the project "
                           f"{Path(project).name} ({', '.join(sorted(cats.values())) or 'none'}); "
                           f"was it trained on another project?")
        images = store.images(split=split)
        if not images:
            raise BadInput(str(project), "split", f"the project has no images in the {split!r} split")
        confusion = DetectionConfusion(names, iou=0.5, score_threshold=score_threshold)
        with_masks = bool(getattr(predictor, "has_masks", False))
        gt, mask_gt, preds = [], [], []
        for n, rec in enumerate(images):
            boxes, gt_names = ground_truth_boxes(store.annotations(rec.id), cats)
            known = [i for i, g in enumerate(gt_names) if g in names]  # classes the model has
            labels = np.array([names.index(gt_names[i]) for i in known], np.int64)
            with inference_threads(predictor):  # all cores but one: no OpenMP spinning (ADR 0016)
                det = predictor.predict(read_model_image(store.image_path(rec)), 0.05, 0.5)
            gt.append({"image_id": rec.id, "width": rec.width, "height": rec.height,
                       "boxes": boxes[known], "labels": labels + 1})
            preds.append(det)
            if with_masks:
                mask_gt.append(_mask_ground_truth(store.annotations(rec.id), rec, cats, names))
            confusion.update(boxes[known], labels, det.boxes, det.labels, det.scores)
            yield Progress(n + 1, len(images), rec.path)
    finally:
        store.close()
    return {"evaluation": evaluate_detections(gt, preds, names, "bbox"),
            "mask_evaluation": evaluate_detections(mask_gt, preds, names, "segm") if with_masks else None,
            "confusion": confusion.matrix, "labels": confusion.labels, "class_names": names,
            "images": len(images), "seconds": time.perf_counter() - started}


def _mask_ground_truth(annotations, rec, cats: dict[int, str], names: list[str]) -> dict:
    """COCO-style ground truth with masks for one image: one object per instance group, its most
    precise shape rasterised (as ``visionbench eval`` does); classes the model lacks are left out."""
    from engine.annotations.geometry import bounds, geometry_to_mask
    from engine.data.semantic import object_shapes

    objs = [a for a in object_shapes([a for a in annotations if not a.hidden and a.score is None])
            if cats.get(a.category_id) in names]
    return {"image_id": rec.id, "width": rec.width, "height": rec.height,
            "boxes": np.array([bounds(a.geometry) for a in objs], np.float64).reshape(-1, 4),
            "labels": np.array([names.index(cats[a.category_id]) + 1 for a in objs], np.int64),
            "masks": np.array([geometry_to_mask(a.geometry, rec.height, rec.width) > 0 for a in objs],
                              bool).reshape(-1, rec.height, rec.width)}


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


class PrCurvesView(QWidget):
    """``set_evaluation(result, colors=None)`` and ``set_confusion(matrix, labels)``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("no evaluation yet: pick a detector and press Evaluate")
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["class", "AP@[.5:.95]", "AP@.5", "objects"])
        self.table.verticalHeader().setVisible(False)
        self.table.setMaximumHeight(170)
        self.plot = pg.PlotWidget(title="precision–recall (IoU 0.5)")
        self.plot.setLabel("bottom", "recall")
        self.plot.setLabel("left", "precision")
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.setYRange(0, 1.05, padding=0)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.matrix_plot = pg.PlotWidget(title="confusion (rows: true, columns: predicted)")
        self.matrix_plot.invertY(True)
        self.matrix_plot.setAspectLocked(True)
        self.matrix_plot.getAxis("left").setWidth(80)  # room for "background"
        self.matrix_image = pg.ImageItem()
        self.matrix_image.setColorMap(pg.colormap.get("viridis"))
        self.matrix_plot.addItem(self.matrix_image)
        self._matrix_texts: list[pg.TextItem] = []
        self.matrix: np.ndarray | None = None
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plot)
        split.addWidget(self.matrix_plot)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)
        layout.addWidget(split, 1)

    def set_evaluation(self, result: dict, colors=None, masks: dict | None = None) -> None:
        """Show an ``evaluate_detections`` result: the table, the curves and mAP in the summary.

        masks: the same for masks (``iou_type="segm"``), shown as two more columns; the curves
        stay those of the boxes.
        """
        per_class = result.get("per_class", {})
        names = list(per_class)
        colors = list(colors or [])
        text = (f"boxes: mAP@[.5:.95] {_fmt(result.get('map'))} · mAP@.5 {_fmt(result.get('map50'))}")
        if masks:
            text += f"  —  masks: mAP@[.5:.95] {_fmt(masks.get('map'))} · mAP@.5 {_fmt(masks.get('map50'))}"
        self.summary.setText(f"{text}  —  {len(names)} classes")
        headers = ["class", "AP@[.5:.95]", "AP@.5", "objects"]
        if masks:
            headers += ["mask AP@[.5:.95]", "mask AP@.5"]
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(names))
        for row, name in enumerate(names):
            entry = per_class[name]
            cells = [name, _fmt(entry.get("ap")), _fmt(entry.get("ap50")), str(entry.get("num_gt", 0))]
            if masks:
                m = masks.get("per_class", {}).get(name, {})
                cells += [_fmt(m.get("ap")), _fmt(m.get("ap50"))]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        # as tall as its rows (up to 170 px), so the curves get the rest of the height
        rows_h = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setMaximumHeight(min(170, self.table.horizontalHeader().height() + rows_h + 4))
        self.plot.clear()
        self.legend.clear()
        self.curves = {}
        for i, name in enumerate(names):
            curve = result.get("pr_curves", {}).get(name)
            if curve is None:
                continue
            colour = QColor(colors[i] if i < len(colors) else default_color(i))
            ap50 = per_class[name].get("ap50")
            item = self.plot.plot(np.asarray(curve["recall"]), np.asarray(curve["precision"]),
                                  pen=pg.mkPen(colour, width=2), name=f"{name} (AP@.5 {_fmt(ap50)})")
            self.curves[name] = item

    def set_confusion(self, matrix, labels) -> None:
        """Show a confusion matrix int [K, K] with row/column ``labels`` (K names)."""
        m = np.asarray(matrix, dtype=np.int64)
        labels = list(labels)
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(labels):
            raise ValueError(f"matrix: expected [{len(labels)}, {len(labels)}] for the labels, got {m.shape}")
        self.matrix = m
        totals = m.sum(axis=1, keepdims=True)
        share = np.divide(m, totals, out=np.zeros(m.shape), where=totals > 0)
        # ImageItem's first axis is x (columns of the picture): transpose so rows stay rows
        self.matrix_image.setImage(share.T, levels=(0.0, 1.0))
        for t in self._matrix_texts:
            self.matrix_plot.removeItem(t)
        self._matrix_texts = []
        font = QFont()
        font.setPointSize(9)
        for r in range(m.shape[0]):
            for c in range(m.shape[1]):
                colour = "k" if share[r, c] > 0.6 else "w"
                text = pg.TextItem(str(int(m[r, c])), color=colour, anchor=(0.5, 0.5))
                text.setFont(font)
                text.setPos(c + 0.5, r + 0.5)
                self.matrix_plot.addItem(text)
                self._matrix_texts.append(text)
        ticks = [[(i + 0.5, name) for i, name in enumerate(labels)]]
        self.matrix_plot.getAxis("bottom").setTicks(ticks)
        self.matrix_plot.getAxis("left").setTicks(ticks)

"""How good is a detector on a split: per-class AP table, precision-recall curves, confusion matrix.

Shows the output of ``engine.eval.coco_eval.evaluate_detections`` (pycocotools: AP@[.5:.95],
AP@.5, and the interpolated precision at 101 recall points per class, IoU 0.5) and a detection
confusion matrix (``engine.eval.confusion``: rows = true class, columns = predicted, with a
"background" row for false alarms and column for misses), colour = row share, numbers = counts.
``engine.eval.detection.evaluate_job`` computes both for a detector on a project split.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QLabel, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from engine.annotations.model import default_color

__all__ = ["PrCurvesView"]


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

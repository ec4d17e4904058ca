"""Live views of a segmentation model at work: curves, heatmaps, argmax map, weight map.

They draw numpy arrays that engine jobs send as Preview/Metrics events (see
``engine.train.segmentation``); they compute nothing heavier than an alpha blend and are fed
on the GUI thread by the job bridge's throttled signals.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget)

from engine.jobs.events import Metrics, Preview
from engine.viz.heatmaps import argmax_overlay

_VIRIDIS = pg.colormap.get("viridis")
_INFERNO = pg.colormap.get("inferno")


class ImagePane(QWidget):
    """A titled, aspect-locked image (row-major arrays: [H, W] or [H, W, 3])."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(title, self)
        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.setBackground("#202020")
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMouse=True)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        self.header = QHBoxLayout()
        self.header.setContentsMargins(0, 0, 0, 0)
        self.header.addWidget(self.title)
        self.header.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(self.header)
        layout.addWidget(self.graphics, 1)
        self.setMinimumSize(160, 160)
        self._shape: tuple | None = None

    def show_array(self, array: np.ndarray, levels=None, colormap=None) -> None:
        self.item.setImage(np.ascontiguousarray(array), autoLevels=levels is None, levels=levels)
        if colormap is not None:
            self.item.setColorMap(colormap)
        if self._shape != array.shape[:2]:
            self._shape = array.shape[:2]
            self.view.autoRange(padding=0.0)

    def has_image(self) -> bool:
        return self.item.image is not None


class CurvesView(QWidget):
    """Training loss per step and validation IoU/Dice per epoch (pyqtgraph PlotWidgets)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = pg.PlotWidget(self, title="loss")
        self.loss_plot.setLabel("bottom", "step")
        self.iou_plot = pg.PlotWidget(self, title="validation")
        self.iou_plot.setLabel("bottom", "step")
        self.iou_plot.setYRange(0.0, 1.0)
        self.iou_plot.addLegend(offset=(5, 5))
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#f58231", width=1.5))
        self.iou_curve = self.iou_plot.plot(pen=pg.mkPen("#3cb44b", width=2), symbol="o", symbolSize=5,
                                            symbolBrush="#3cb44b", name="mIoU")
        self.dice_curve = self.iou_plot.plot(pen=pg.mkPen("#4363d8", width=1.5), name="Dice")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.iou_plot)
        self.clear()

    def clear(self) -> None:
        self.loss: list[tuple[int, float]] = []
        self.val: list[tuple[int, float, float]] = []
        self.loss_curve.setData([], [])
        self.iou_curve.setData([], [])
        self.dice_curve.setData([], [])

    def add(self, event: Metrics) -> None:
        step = event.step if event.step is not None else len(self.loss)
        values = event.values
        if "loss" in values:
            self.loss.append((step, float(values["loss"])))
            xs, ys = zip(*self.loss)
            self.loss_curve.setData(list(xs), list(ys))
        if "val_miou" in values:
            self.val.append((step, float(values["val_miou"]), float(values.get("val_dice", np.nan))))
            xs, ious, dices = zip(*self.val)
            self.iou_curve.setData(list(xs), list(ious))
            self.dice_curve.setData(list(xs), list(dices))


class HeatmapView(ImagePane):
    """Per-class probability map of the preview image; a combo picks the class."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("class probability", parent)
        self.class_combo = QComboBox(self)
        self.class_combo.setToolTip("Which class's softmax probability to show (0 = dark, 1 = bright)")
        self.class_combo.currentIndexChanged.connect(self._redraw)
        self.header.addWidget(self.class_combo)
        self.data: dict | None = None

    def set_data(self, data: dict) -> None:
        self.data = data
        names = list(data["classes"])
        if [self.class_combo.itemText(i) for i in range(self.class_combo.count())] != names:
            keep = self.class_combo.currentIndex()
            self.class_combo.blockSignals(True)
            self.class_combo.clear()
            self.class_combo.addItems(names)
            # Start on the first real class: the background map is the least interesting.
            self.class_combo.setCurrentIndex(keep if 0 <= keep < len(names) and keep else min(1, len(names) - 1))
            self.class_combo.blockSignals(False)
        self._redraw()

    def _redraw(self) -> None:
        if self.data is None:
            return
        k = max(0, self.class_combo.currentIndex())
        self.show_array(np.asarray(self.data["probs"][k], np.float32), levels=(0.0, 1.0), colormap=_VIRIDIS)


class ArgmaxView(ImagePane):
    """The argmax class map in the category palette, alpha-blended over the image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("argmax over image", parent)
        self.alpha = QSlider(Qt.Orientation.Horizontal, self)
        self.alpha.setRange(0, 100)
        self.alpha.setValue(50)
        self.alpha.setMaximumWidth(90)
        self.alpha.setToolTip("Opacity of the class colours")
        self.alpha.valueChanged.connect(self._redraw)
        self.header.addWidget(self.alpha)
        self.data: dict | None = None

    def set_data(self, data: dict) -> None:
        self.data = data
        self._redraw()

    def overlay(self) -> np.ndarray | None:
        if self.data is None:
            return None
        return argmax_overlay(self.data["image"], self.data["class_map"], self.data["palette"],
                              self.alpha.value() / 100.0)

    def _redraw(self) -> None:
        out = self.overlay()
        if out is not None:
            self.show_array(out, levels=(0, 255))


class WeightMapView(ImagePane):
    """The U-Net loss weight map of the preview image (bright = heavily weighted pixels)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("loss weight map", parent)
        self.range_label = QLabel("", self)
        self.header.addWidget(self.range_label)

    def set_data(self, data: dict) -> None:
        weight = np.asarray(data["weight"], np.float32)
        top = float(weight.max()) if weight.size else 1.0
        self.range_label.setText(f"0 – {top:.1f}")
        self.show_array(weight, levels=(0.0, max(top, 1e-6)), colormap=_INFERNO)


class LiveViews(QWidget):
    """Curves on top, heatmap / argmax / weight map below; feed it Metrics and Preview events."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves = CurvesView(self)
        self.heatmap = HeatmapView(self)
        self.argmax = ArgmaxView(self)
        self.weight_map = WeightMapView(self)
        grid = QGridLayout()
        grid.addWidget(self.heatmap, 0, 0)
        grid.addWidget(self.argmax, 0, 1)
        grid.addWidget(self.weight_map, 0, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.curves, 2)
        layout.addLayout(grid, 3)

    def clear_curves(self) -> None:
        self.curves.clear()

    def add_metrics(self, event: Metrics) -> None:
        self.curves.add(event)

    def show_preview(self, event: Preview) -> None:
        view = {"heatmaps": self.heatmap, "argmax": self.argmax, "weight_map": self.weight_map}.get(event.name)
        if view is not None and isinstance(event.data, dict):
            view.set_data(event.data)

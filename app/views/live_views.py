"""Live views of a segmentation model at work: curves, heatmaps, argmax map, weight map.

They draw numpy arrays that engine jobs send as Preview/Metrics events (see
``engine.train.segmentation``); they compute nothing heavier than an alpha blend and are fed
on the GUI thread by the job bridge's throttled signals.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QSlider, QSplitter, QVBoxLayout,
                               QWidget)

from engine.jobs.events import Metrics, Preview
from engine.viz.heatmaps import argmax_overlay

# Perceptually uniform maps first: equal steps in probability look like equal steps in colour.
COLOR_MAPS = ("viridis", "inferno", "magma", "plasma", "turbo", "grey")
_INFERNO = pg.colormap.get("inferno")


def color_map(name: str) -> pg.ColorMap:
    """A pyqtgraph colour map by name ("grey" is a plain black-to-white ramp)."""
    if name == "grey":
        return pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)], name="grey")
    return pg.colormap.get(name)


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

    def add_color_bar(self, colormap: pg.ColorMap, levels: tuple[float, float]) -> pg.ColorBarItem:
        """A value scale beside the image (read-only: dragging it would misstate the data)."""
        self.color_bar = pg.ColorBarItem(values=levels, colorMap=colormap, interactive=False, width=12,
                                         colorMapMenu=False)
        self.color_bar.setImageItem(self.item)
        self.graphics.addItem(self.color_bar)
        return self.color_bar

    def show_array(self, array: np.ndarray, levels=None, colormap=None) -> None:
        self.item.setImage(np.ascontiguousarray(array), autoLevels=levels is None, levels=levels)
        bar = getattr(self, "color_bar", None)
        if bar is not None and levels is not None:
            bar.setLevels(levels)  # the bar drives the item's levels and look-up table
            if colormap is not None:
                bar.setColorMap(colormap)
        elif colormap is not None:
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
    """Per-class probability map of the preview image; combos pick the class and the colour map."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("probability", parent)
        self.class_combo = QComboBox(self)
        self.class_combo.setToolTip("Which class's softmax probability to show (scale 0..1 at the right)")
        self.class_combo.currentIndexChanged.connect(self._redraw)
        self.cmap_combo = QComboBox(self)
        self.cmap_combo.addItems(COLOR_MAPS)
        self.cmap_combo.setToolTip("Colour map of the probability heatmap")
        self.cmap_combo.currentIndexChanged.connect(self._redraw)
        for combo in (self.class_combo, self.cmap_combo):
            # Sized by a few characters, not the longest name: the three panes share a narrow dock.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(5)
        self.header.addWidget(self.class_combo)
        self.header.addWidget(self.cmap_combo)
        self.add_color_bar(color_map(COLOR_MAPS[0]), (0.0, 1.0))
        self.data: dict | None = None

    def current_class(self) -> str:
        return self.class_combo.currentText()

    def set_color_map(self, name: str) -> None:
        self.cmap_combo.setCurrentText(name)

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
        self.show_array(np.asarray(self.data["probs"][k], np.float32), levels=(0.0, 1.0),
                        colormap=color_map(self.cmap_combo.currentText()))


class ArgmaxView(ImagePane):
    """The argmax class map in the category palette, alpha-blended over the image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("argmax", parent)
        self.alpha = QSlider(Qt.Orientation.Horizontal, self)
        self.alpha.setRange(0, 100)
        self.alpha.setValue(50)
        self.alpha.setMaximumWidth(90)
        self.alpha.setMinimumWidth(30)
        self.alpha.setToolTip("Opacity of the class colours")
        self.alpha.valueChanged.connect(self._redraw)
        self.header.addWidget(self.alpha)
        self.legend = QLabel("", self)
        self.legend.setWordWrap(True)
        self.legend.setToolTip("Category palette of the argmax map (background is left unpainted)")
        self.layout().addWidget(self.legend)
        self.data: dict | None = None

    def set_data(self, data: dict) -> None:
        self.data = data
        self.legend.setText(legend_html(data["classes"], data["palette"]))
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


def legend_html(names: list[str], palette) -> str:
    """Coloured squares with class names; row k of ``palette`` (uint8 [C+1, 3]) colours class k."""
    from html import escape

    parts = []
    for k, name in enumerate(names):
        if k == 0:
            continue  # background is not painted over the image
        r, g, b = (int(v) for v in palette[k])
        parts.append(f'<span style="color:#{r:02x}{g:02x}{b:02x}">&#9632;</span>&nbsp;{escape(str(name))}')
    return " &nbsp; ".join(parts)


class WeightMapView(ImagePane):
    """The U-Net loss weight map of the preview image (bright = heavily weighted pixels)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("loss weight map", parent)
        self.range_label = QLabel("", self)
        self.header.addWidget(self.range_label)
        self.add_color_bar(_INFERNO, (0.0, 1.0))

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
        images = QWidget(self)
        grid = QGridLayout(images)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.heatmap, 0, 0)
        grid.addWidget(self.argmax, 0, 1)
        grid.addWidget(self.weight_map, 0, 2)
        for column in range(3):
            grid.setColumnStretch(column, 1)  # equal shares once the headers' minimums are met
        self.curves.setMinimumHeight(140)
        # A splitter so a teacher can give the curves or the images the room the lesson needs.
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(self.curves)
        self.splitter.addWidget(images)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def clear_curves(self) -> None:
        self.curves.clear()

    def add_metrics(self, event: Metrics) -> None:
        self.curves.add(event)

    def show_preview(self, event: Preview) -> None:
        view = {"heatmaps": self.heatmap, "argmax": self.argmax, "weight_map": self.weight_map}.get(event.name)
        if view is not None and isinstance(event.data, dict):
            view.set_data(event.data)

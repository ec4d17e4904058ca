"""Live views of any model family at work: curves of every loss term and validation metric,
and one pane per preview, drawn by the preview's kind (engine.viz.previews gives the data
contract of each kind), so a new family needs no code here.

They draw numpy arrays that engine jobs send as Preview/Metrics events; they compute nothing
heavier than an alpha blend and are fed on the GUI thread by the job bridge's throttled signals.
A view's new data is set at once, but its repaint waits for its turn (PaintPacer): the window then
paints one view per turn of the event loop, so a preview step that changes every pane stalls the
GUI for one pane's drawing, not for all of them at once.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QSlider, QSplitter, QVBoxLayout,
                               QWidget)

from app.views.pacing import CURVES_PERIOD_MS, PaintPacer, StickyRange
from engine.jobs.events import Metrics, Preview
from engine.viz.heatmaps import argmax_overlay, colorize
from engine.viz.previews import matrix_levels

# Perceptually uniform maps first: equal steps in probability look like equal steps in colour.
COLOR_MAPS = ("viridis", "inferno", "magma", "plasma", "turbo", "grey")


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
        self._bar_state = (tuple(levels), colormap.name)
        return self.color_bar

    def show_array(self, array: np.ndarray, levels=None, colormap=None) -> None:
        array = np.ascontiguousarray(array)
        bar = getattr(self, "color_bar", None)
        if (array.dtype == np.uint8 and levels is not None and tuple(levels) == (0, 255) and bar is None
                and colormap is None):
            # 8-bit pixels as they are: no levels, so pyqtgraph wraps them in a QImage without
            # rescaling every pixel at each repaint (tens of ms for a pix2pix row)
            self.item.setImage(array, autoLevels=False, levels=None)
        else:
            self.item.setImage(array, autoLevels=levels is None, levels=levels)
        if bar is not None and levels is not None:
            # the bar drives the item's levels and look-up table; it is redrawn (its axis too) only
            # when its scale or colours change
            if tuple(levels) != self._bar_state[0]:
                bar.setLevels(levels)
            if colormap is not None and colormap.name != self._bar_state[1]:
                bar.setColorMap(colormap)
            self._bar_state = (tuple(levels), colormap.name if colormap is not None else self._bar_state[1])
        elif colormap is not None:
            self.item.setColorMap(colormap)
        if self._shape != array.shape[:2]:
            self._shape = array.shape[:2]
            self.view.autoRange(padding=0.0)

    def has_image(self) -> bool:
        return self.item.image is not None


_SERIES_COLOURS = ("#f58231", "#4363d8", "#3cb44b", "#e6194b", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c",
                   "#9a6324", "#808000")
_NOT_PLOTTED = ("lr", "epoch")


class CurvesView(QWidget):
    """Every per-step loss term (left) and every validation metric (right, keys "val_*"),
    one curve per key as they arrive (pyqtgraph PlotWidgets).

    ``add`` keeps the points; the lines take them when the view is redrawn: at once, or at the
    turn of ``pacer`` when one is set (then a burst of steps costs one redraw, not one per step)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = pg.PlotWidget(self, title="loss")
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.addLegend(offset=(5, 5))
        self.val_plot = pg.PlotWidget(self, title="validation")
        self.val_plot.setLabel("bottom", "step")
        self.val_plot.setYRange(0.0, 1.0)
        self.val_plot.addLegend(offset=(5, 5))
        # x has room to grow (steps), so the axes are redrawn every third of the run, not every step
        self.loss_range = StickyRange(self.loss_plot.getPlotItem(), grow=(0.3, 0.0), min_span=(10.0, 0.0))
        self.val_range = StickyRange(self.val_plot.getPlotItem(), grow=(0.3, 0.0), min_span=(10.0, 0.0))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.val_plot)
        self.pacer: PaintPacer | None = None
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.lines: dict[str, pg.PlotDataItem] = {}
        self.clear()

    def clear(self) -> None:
        for key, line in self.lines.items():
            (self.val_plot if key.startswith("val_") else self.loss_plot).removeItem(line)
        self.series = {}
        self._xy: dict[str, tuple[list[float], list[float]]] = {}
        self._dirty: set[str] = set()
        self.lines = {}
        self.loss_range.reset()
        self.val_range.reset()
        self.val_range.include[1] = (0.0, 1.0)  # scores in 0..1 on their whole scale

    def _line(self, key: str) -> pg.PlotDataItem:
        line = self.lines.get(key)
        if line is None:
            validation = key.startswith("val_")
            plot = self.val_plot if validation else self.loss_plot
            colour = _SERIES_COLOURS[sum(k.startswith("val_") == validation for k in self.lines) % len(_SERIES_COLOURS)]
            label = key[4:] if validation else key
            # The total loss is drawn thicker than its terms; validations as dots on a line.
            width = 2.5 if key == "loss" else 1.5
            extra = {"symbol": "o", "symbolSize": 5, "symbolBrush": colour} if validation else {}
            line = plot.plot(pen=pg.mkPen(colour, width=width), name=label, **extra)
            self.lines[key] = line
        return line

    def add(self, event: Metrics) -> None:
        step = event.step if event.step is not None else len(self.series.get("loss", ()))
        for key, value in event.values.items():
            if key in _NOT_PLOTTED or not isinstance(value, (int, float)):
                continue
            if key.startswith("val_") and not 0.0 <= float(value) <= 1.0:
                self.val_range.include[1] = None  # a metric beyond 0..1 (PSNR in dB) must show
            point = (float(step), float(value))
            self.series.setdefault(key, []).append(point)
            xs, ys = self._xy.setdefault(key, ([], []))
            xs.append(point[0])
            ys.append(point[1])
            self._dirty.add(key)
        if self.pacer is None:
            self.redraw()
        elif self._dirty:
            self.pacer.hold(self, CURVES_PERIOD_MS, before=self.redraw)

    def redraw(self) -> None:
        """The lines take the points added since the last redraw."""
        dirty, self._dirty = self._dirty, set()
        for key in [k for k in self._xy if k in dirty]:
            xs, ys = self._xy[key]
            self._line(key).setData(np.asarray(xs), np.asarray(ys))
        for validation, sticky in ((False, self.loss_range), (True, self.val_range)):
            if any(k.startswith("val_") == validation for k in dirty):
                sticky.update([line for k, line in self.lines.items() if k.startswith("val_") == validation])

    def data(self, key: str) -> tuple[list[float], list[float]]:
        """The points of one curve (x = step)."""
        points = self.series.get(key, [])
        return [p[0] for p in points], [p[1] for p in points]


class HeatmapView(ImagePane):
    """Kind "heatmap": one of K maps (a combo picks it when K > 1) in a chosen colour map, with a
    value scale: fixed levels when the preview gives them (probabilities: 0..1), else 0..max."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("heatmap", parent)
        self.class_combo = QComboBox(self)
        self.class_combo.setToolTip("Which map to show (scale at the right)")
        self.class_combo.currentIndexChanged.connect(self._redraw)
        self.cmap_combo = QComboBox(self)
        self.cmap_combo.addItems(COLOR_MAPS)
        self.cmap_combo.setToolTip("Colour map of the heatmap")
        self.cmap_combo.currentIndexChanged.connect(self._redraw)
        for combo in (self.class_combo, self.cmap_combo):
            # Sized by a few characters, not the longest name: several panes share a narrow dock.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(5)
        self.range_label = QLabel("", self)
        self.header.addWidget(self.range_label)
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
        names = [str(n) for n in data["labels"]]
        self.class_combo.setVisible(len(names) > 1)
        if [self.class_combo.itemText(i) for i in range(self.class_combo.count())] != names:
            keep = self.class_combo.currentIndex()
            self.class_combo.blockSignals(True)
            self.class_combo.clear()
            self.class_combo.addItems(names)
            # Start on the second map when there are several: for class probabilities the first
            # is the background, the least interesting.
            self.class_combo.setCurrentIndex(keep if 0 <= keep < len(names) and keep else min(1, len(names) - 1))
            self.class_combo.blockSignals(False)
        self._redraw()

    def _redraw(self) -> None:
        if self.data is None:
            return
        k = max(0, self.class_combo.currentIndex())
        values = np.asarray(self.data["maps"][k], np.float32)
        levels = self.data.get("levels")
        if levels is None:
            top = float(np.nanmax(values)) if values.size else 1.0
            levels = (0.0, max(top, 1e-6))
            self.range_label.setText(f"0 – {top:.1f}")
        else:
            self.range_label.setText("")
        self.show_array(values, levels=tuple(float(v) for v in levels),
                        colormap=color_map(self.cmap_combo.currentText()))


class ArgmaxView(ImagePane):
    """Kind "class_map": the class map in the category palette, alpha-blended over the image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("class map", parent)
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


class ImageView(ImagePane):
    """Kind "image": a picture as it is (detections drawn by the engine, a stylised image)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("image", parent)
        self.data: dict | None = None

    def set_data(self, data: dict) -> None:
        self.data = data
        picture = np.asarray(data["image"])
        self.show_array(picture, levels=(0, 255))


def _row(images: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Images side by side at the height of the tallest (nearest-neighbour), grey gaps between."""
    rgb = [np.repeat(np.asarray(a)[..., None], 3, axis=2) if np.asarray(a).ndim == 2 else np.asarray(a)[..., :3]
           for a in images]
    height = max(a.shape[0] for a in rgb)
    scaled = []
    for a in rgb:
        if a.shape[0] != height:  # pictures already at the row's height are joined as they are
            rows = (np.arange(height) * a.shape[0] // height)
            width = max(1, round(a.shape[1] * height / a.shape[0]))
            cols = (np.arange(width) * a.shape[1] // width)
            a = a[rows][:, cols]
        scaled.append(a)
    separator = np.full((height, gap, 3), 64, np.uint8)
    parts = []
    for k, a in enumerate(scaled):
        if k:
            parts.append(separator)
        parts.append(a.astype(np.uint8, copy=False))
    return np.concatenate(parts, axis=1)


class ImageRowView(ImagePane):
    """Kind "image_row": input | output | target side by side, named in the header."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("images", parent)
        self.names = QLabel("", self)
        self.header.addWidget(self.names)
        self.data: dict | None = None

    def set_data(self, data: dict) -> None:
        self.data = data
        self.names.setText("  |  ".join(str(t) for t in data["titles"]))
        self.show_array(_row(list(data["images"])), levels=(0, 255))


class MatrixGridView(ImagePane):
    """Kind "matrix_grid": matrices tiled left to right (viridis; on the grid's one colour scale
    when it gives ``levels``, else each on its own range), or one chosen in the combo."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("matrices", parent)
        self.pick = QComboBox(self)
        self.pick.setToolTip("All matrices side by side, or one with its scale")
        self.pick.currentIndexChanged.connect(self._redraw)
        self.header.addWidget(self.pick)
        self.range_label = QLabel("", self)
        self.header.addWidget(self.range_label)
        self.data: dict | None = None

    def set_data(self, data: dict) -> None:
        self.data = data
        names = ["all"] + [str(t) for t in data["titles"]]
        if [self.pick.itemText(i) for i in range(self.pick.count())] != names:
            self.pick.blockSignals(True)
            self.pick.clear()
            self.pick.addItems(names)
            self.pick.blockSignals(False)
        self._redraw()

    def _redraw(self) -> None:
        if self.data is None:
            return
        mats = [np.asarray(m, np.float32) for m in self.data["matrices"]]
        k = self.pick.currentIndex()
        shared = bool(self.data.get("levels"))
        if k > 0:
            m = mats[k - 1]
            lo, hi = matrix_levels(self.data, m)
            self.range_label.setText(f"{lo:.3g} – {hi:.3g}")
            self.show_array(colorize(m, lo, hi), levels=(0, 255))
            return
        if shared:
            lo, hi = matrix_levels(self.data, mats[0]) if mats else (0.0, 1.0)
            self.range_label.setText(f"one scale {lo:.3g} – {hi:.3g}")
        else:
            self.range_label.setText("each scaled to its range")
        tiles = [colorize(m, *matrix_levels(self.data, m)) for m in mats]
        self.show_array(_row(tiles) if tiles else np.zeros((1, 1, 3), np.uint8), levels=(0, 255))


class PlotPane(QWidget):
    """A titled pyqtgraph plot with a legend (the plot kinds' common frame)."""

    def __init__(self, title: str, parent: QWidget | None = None, legend: bool = True) -> None:
        super().__init__(parent)
        self.title = QLabel(title, self)
        self.plot = pg.PlotWidget(self)
        self.legend = self.plot.addLegend(offset=(5, 5)) if legend else None
        self.body = QHBoxLayout()
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.addWidget(self.plot, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.title)
        layout.addLayout(self.body, 1)
        self.setMinimumSize(160, 160)
        self.data: dict | None = None

    def has_image(self) -> bool:
        return self.data is not None


# Distinct colours for the points of up to 20 labels (the curves' ten, then ten more that read on
# the plots' dark background); beyond 20, the symbol changes too.
_POINT_COLOURS = _SERIES_COLOURS + ("#ffe119", "#008080", "#fabebe", "#e6beff", "#aaffc3", "#ffd8b1",
                                    "#800000", "#a0a0a0", "#fffac8", "#ffffff")
_POINT_SYMBOLS = ("o", "t", "s", "d", "+", "star")


def point_style(label: int) -> tuple[str, str]:
    """(colour, symbol) of the points of label ``label`` in a scatter."""
    k = int(label)
    return _POINT_COLOURS[k % len(_POINT_COLOURS)], _POINT_SYMBOLS[(k // len(_POINT_COLOURS)) % len(_POINT_SYMBOLS)]


class ScatterView(PlotPane):
    """Kind "scatter": 2-D points coloured by label (embeddings), with a legend beside the plot;
    a click on a legend entry hides or shows that label's points.

    All points are one ScatterPlotItem made once; the legend (a rich-text label, off the points)
    is rebuilt only when the labels change, and the view range moves only when the points leave
    it or shrink well inside it: a live update is one setData and a repaint of the points, where a
    plot per label, a new legend and new axes each time took hundreds of ms on the GUI thread."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("scatter", parent, legend=False)
        self.points = pg.ScatterPlotItem(size=6, pen=None)
        self.plot.addItem(self.points)
        self.range = StickyRange(self.plot.getPlotItem(), fill=0.35, margin=0.1)
        self.legend = QLabel("", self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.legend.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.legend.setToolTip("Click a name to hide or show its points")
        self.legend.linkActivated.connect(self._toggle)
        self.body.addWidget(self.legend)
        self._legend_key: tuple | None = None
        self._present: list[int] = []
        self._names: list[str] = []
        self._brushes: dict[str, object] = {}
        self.hidden: set[int] = set()

    def set_data(self, data: dict) -> None:
        self.data = data
        labels = np.asarray(data["labels"], np.int64).reshape(-1)
        names = [str(n) for n in data["names"]]
        present = [int(k) for k in np.unique(labels)]
        key = (tuple(names), tuple(present))
        if key != self._legend_key:
            self._legend_key = key
            self._present, self._names = present, names
            self.hidden &= set(present)
            self._write_legend()
        self._draw()

    def legend_entries(self) -> list[tuple[str, str, bool]]:
        """(name, colour, shown) of each label in the legend, in label order."""
        return [(self._name(k), point_style(k)[0], k not in self.hidden) for k in self._present]

    def _name(self, k: int) -> str:
        return self._names[k] if 0 <= k < len(self._names) else str(k)

    def _write_legend(self) -> None:
        from html import escape

        marks = {"o": "&#9679;", "t": "&#9650;", "s": "&#9632;", "d": "&#9670;", "+": "+", "star": "&#9733;"}
        ink = self.legend.palette().color(self.legend.foregroundRole()).name()
        rows = []
        for k in self._present:
            colour, symbol = point_style(k)
            shown = k not in self.hidden
            mark = f'<span style="color:{colour if shown else "#606060"}">{marks.get(symbol, "&#9679;")}</span>'
            name = escape(self._name(k))
            text = name if shown else f'<span style="color:#808080"><s>{name}</s></span>'
            rows.append(f'<a href="{k}" style="text-decoration:none; color:{ink}">{mark}&nbsp;{text}</a>')
        self.legend.setText('<span style="font-size:small">' + "<br>".join(rows) + "</span>")

    def _toggle(self, link: str) -> None:
        k = int(link)
        (self.hidden.discard if k in self.hidden else self.hidden.add)(k)
        self._write_legend()
        self._draw()

    def _brush(self, colour: str):
        brush = self._brushes.get(colour)
        if brush is None:
            brush = self._brushes[colour] = pg.mkBrush(colour)
        return brush

    def _shown(self) -> tuple[np.ndarray, np.ndarray]:
        points = np.asarray(self.data["points"], np.float32).reshape(-1, 2)
        labels = np.asarray(self.data["labels"], np.int64).reshape(-1)
        if self.hidden:
            keep = ~np.isin(labels, list(self.hidden))
            points, labels = points[keep], labels[keep]
        return points, labels

    def _draw(self) -> None:
        if self.data is None:
            return
        points, labels = self._shown()
        styles = [point_style(k) for k in labels.tolist()]
        self.points.setData(x=points[:, 0], y=points[:, 1], brush=[self._brush(c) for c, _ in styles],
                            symbol=[s for _, s in styles])
        self.range.update([self.points])

    def label_points(self, label: int) -> np.ndarray:
        """The drawn points of one label ([n, 2]; none while it is hidden)."""
        if self.data is None:
            return np.zeros((0, 2), np.float32)
        points, labels = self._shown()
        return points[labels == label]


class SeriesView(PlotPane):
    """Kind "curves": named series over a shared x (e.g. a loss per layer)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("curves", parent)
        self._lines: dict[str, pg.PlotDataItem] = {}
        self.range = StickyRange(self.plot.getPlotItem(), grow=(0.3, 0.0), min_span=(10.0, 0.0))

    def clear(self) -> None:
        self.plot.clear()
        self._lines = {}
        self.data = None
        self.range.reset()

    def set_data(self, data: dict) -> None:
        self.data = data
        x = np.asarray(data["x"], np.float64)
        names = [str(n) for n in data["series"]]
        lines = self._lines
        if list(lines) != names:
            # new series: rebuild; the same series again (a live run): only new data, which spares
            # the legend's rebuild (tens of ms on the GUI thread per update)
            self.plot.clear()
            lines = {name: self.plot.plot(pen=pg.mkPen(_SERIES_COLOURS[k % len(_SERIES_COLOURS)], width=1.5),
                                          name=name) for k, name in enumerate(names)}
            self._lines = lines
        for name, ys in zip(names, data["series"].values()):
            lines[name].setData(x, np.asarray(ys, np.float64))
        self.range.update(list(lines.values()))


# The view class that draws each preview kind (engine.jobs.events.PREVIEW_KINDS).
VIEW_OF_KIND = {"heatmap": HeatmapView, "class_map": ArgmaxView, "image": ImageView, "image_row": ImageRowView,
                "matrix_grid": MatrixGridView, "scatter": ScatterView, "curves": SeriesView}
COLUMNS = 3


class LiveViews(QWidget):
    """Curves on top; below, one pane per preview name, drawn by the preview's kind and laid
    out in rows of three in the order they first arrive. Feed it Metrics and Preview events."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves = CurvesView(self)
        self.images = QWidget(self)
        self.grid = QGridLayout(self.images)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.panes: dict[str, QWidget] = {}
        self._kinds: dict[str, str] = {}
        self.placeholder = QLabel("Live views appear here while a model trains or predicts.", self.images)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #808080")
        self.grid.addWidget(self.placeholder, 0, 0, 1, COLUMNS)
        self.curves.setMinimumHeight(140)
        # A splitter so a teacher can give the curves or the images the room the lesson needs.
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(self.curves)
        self.splitter.addWidget(self.images)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        self._sized = False  # the panes' share of the height is set when the first ones come
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.pacer = PaintPacer(self)
        self.curves.pacer = self.pacer

    # -- panes by preview name --------------------------------------------------------------
    def pane(self, name: str) -> QWidget | None:
        return self.panes.get(name)

    @property
    def heatmap(self) -> QWidget | None:
        return self.panes.get("heatmaps")

    @property
    def argmax(self) -> QWidget | None:
        return self.panes.get("argmax")

    @property
    def weight_map(self) -> QWidget | None:
        return self.panes.get("weight_map")

    def clear_previews(self) -> None:
        """Remove every pane (a new run of another family shows its own)."""
        for view in self.panes.values():
            self.pacer.forget(view)
            self.grid.removeWidget(view)
            view.deleteLater()
        self.panes.clear()
        self._kinds.clear()
        self.placeholder.show()

    def prepare(self, previews: dict[str, str]) -> None:
        """Lay out empty panes for the previews a run will send (``{name: kind}``, a family's
        ``previews``), so building them (tens of ms each) happens before the run, not while it draws."""
        for name, kind in previews.items():
            if kind in VIEW_OF_KIND:
                view = self._pane(name, kind)
                view.title.setText(f"{name}: waiting for the first preview")

    def _pane_for(self, event: Preview) -> QWidget:
        return self._pane(event.name, event.kind)

    def _pane(self, name: str, kind: str) -> QWidget:
        view = self.panes.get(name)
        if view is not None and self._kinds.get(name) == kind:
            return view
        if view is not None:  # the same name with another kind: a new view in its place
            index = self.grid.indexOf(view)
            row, column, _, _ = self.grid.getItemPosition(index)
            self.pacer.forget(view)
            self.grid.removeWidget(view)
            view.deleteLater()
        else:
            k = len(self.panes)
            row, column = 1 + k // COLUMNS, k % COLUMNS
        view = VIEW_OF_KIND[kind](self.images)
        self.grid.addWidget(view, row, column)
        self.grid.setColumnStretch(column, 1)
        self.grid.setRowStretch(row, 1)
        self.panes[name] = view
        self._kinds[name] = kind
        self.placeholder.hide()
        if not self._sized:
            # the panes (a scatter, pictures) get most of the height; the curves read at a third
            self._sized = True
            total = sum(self.splitter.sizes()) or 600
            self.splitter.setSizes([round(0.35 * total), total - round(0.35 * total)])
        return view

    def clear_curves(self) -> None:
        self.curves.clear()

    def add_metrics(self, event: Metrics) -> None:
        self.curves.add(event)  # redrawn at the pacer's turn

    def show_preview(self, event: Preview) -> None:
        if event.kind not in VIEW_OF_KIND or not isinstance(event.data, dict):
            return
        view = self._pane_for(event)
        self.pacer.hold(view)
        view.title.setText(event.title or event.name)
        view.title.setToolTip(event.title or event.name)  # a narrow pane cuts the title short
        view.set_data(event.data)

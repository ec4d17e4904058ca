"""One painter for a lesson's scene (``engine.lessons.scene``): screen, PNG and SVG alike.

``paint_scene(painter, scene, rect, style)`` lays the panels out in a grid inside ``rect`` and
draws their items with a QPainter, whatever device the painter is on (a widget, a QImage, a
QSvgGenerator). It returns one :class:`PanelMap` per panel, which turns a screen point back into
the panel's world coordinates for clicks and drags. The presentation mode is only a style with
bigger fonts and thicker lines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QImage, QPainter, QPen, QPolygonF

from engine.lessons import scene as sc


@dataclass
class PaintStyle:
    font_scale: float = 1.0
    line_scale: float = 1.0
    background: str = "#121316"
    gap: float = 10.0  # pixels between panels


NORMAL = PaintStyle()
PRESENTATION = PaintStyle(font_scale=2.0, line_scale=2.2, gap=24.0)


@dataclass
class PanelMap:
    """Where a panel landed: ``area`` on the device and the world -> device transform."""

    index: int
    area: QRectF
    world: tuple[float, float, float, float]
    sx: float
    sy: float
    ox: float
    oy: float

    def to_device(self, x: float, y: float) -> QPointF:
        return QPointF(self.ox + x * self.sx, self.oy + y * self.sy)

    def to_world(self, px: float, py: float) -> tuple[float, float]:
        return (px - self.ox) / self.sx, (py - self.oy) / self.sy

    def contains(self, px: float, py: float) -> bool:
        return self.area.contains(QPointF(px, py))


def _colour(text: str) -> QColor:
    if text.startswith("#") and len(text) == 9:  # #rrggbbaa
        c = QColor(text[:7])
        c.setAlpha(int(text[7:], 16))
        return c
    return QColor(text)


def _font(size: float, style: PaintStyle, bold: bool = False, mono: bool = False) -> QFont:
    font = QFont("DejaVu Sans Mono") if mono else QFont()
    if mono:
        font.setStyleHint(QFont.StyleHint.Monospace)
    font.setPixelSize(max(6, round(size * 1.35 * style.font_scale)))
    font.setBold(bold)
    return font


def _pen(colour: str, width: float, style: PaintStyle, dashed: bool = False) -> QPen:
    pen = QPen(_colour(colour), max(0.5, width * style.line_scale))
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    return pen


def to_qimage(pixels: np.ndarray) -> QImage:
    arr = np.ascontiguousarray(pixels, np.uint8)
    h, w = arr.shape[:2]
    if arr.ndim == 3 and arr.shape[2] == 4:
        return QImage(arr.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    if arr.ndim == 2:
        arr = np.ascontiguousarray(np.stack([arr] * 3, -1))
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    return [round(start + i * step, 10) for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt_tick(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e4 else f"{v:.0e}"


def paint_scene(p: QPainter, scene: sc.Scene, rect: QRectF, style: PaintStyle = NORMAL) -> list[PanelMap]:
    p.save()
    p.fillRect(rect, _colour(style.background))
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
    maps: list[PanelMap] = []
    legend_h = 0.0
    if scene.legend:
        legend_h = QFontMetricsF(_font(11, style)).height() * 1.6
        _paint_legend(p, scene.legend, QRectF(rect.left(), rect.bottom() - legend_h, rect.width(), legend_h), style)
    rows, cols = scene.grid()
    gap = style.gap
    cell_w = (rect.width() - gap * (cols + 1)) / cols
    cell_h = (rect.height() - legend_h - gap * (rows + 1)) / rows
    for i, panel in enumerate(scene.panels):
        r, c = divmod(i, cols)
        cell = QRectF(rect.left() + gap + c * (cell_w + gap), rect.top() + gap + r * (cell_h + gap), cell_w, cell_h)
        maps.append(_paint_panel(p, i, panel, cell, style))
    p.restore()
    return maps


def _paint_legend(p: QPainter, legend, area: QRectF, style: PaintStyle) -> None:
    font = _font(11, style)
    p.setFont(font)
    fm = QFontMetricsF(font)
    x = area.left() + 12
    sw = fm.height() * 0.8
    for colour, meaning in legend:
        p.fillRect(QRectF(x, area.center().y() - sw / 2, sw, sw), _colour(colour))
        x += sw + 6
        p.setPen(QColor("#e8eaed"))
        p.drawText(QPointF(x, area.center().y() + fm.ascent() / 2 - 2), meaning)
        x += fm.horizontalAdvance(meaning) + 24


def _paint_panel(p: QPainter, index: int, panel: sc.Panel, cell: QRectF, style: PaintStyle) -> PanelMap:
    title_font = _font(12, style, bold=True)
    fm = QFontMetricsF(title_font)
    title_h = fm.height() * 1.3 if panel.title else 0.0
    p.setFont(title_font)
    p.setPen(QColor("#e8eaed"))
    if panel.title and fm.horizontalAdvance(panel.title) > cell.width():  # shrink a long title before eliding it
        title_font.setPixelSize(max(8, int(title_font.pixelSize() * max(0.6, cell.width() / fm.horizontalAdvance(
            panel.title)))))
        p.setFont(title_font)
        fm = QFontMetricsF(title_font)
    if panel.title:
        p.drawText(QRectF(cell.left(), cell.top(), cell.width(), title_h),
                   int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter),
                   fm.elidedText(panel.title, Qt.TextElideMode.ElideRight, cell.width()))
    area = QRectF(cell.left(), cell.top() + title_h, cell.width(), cell.height() - title_h)
    tick_font = _font(9, style)
    tfm = QFontMetricsF(tick_font)
    if panel.axes:
        left = tfm.horizontalAdvance("-0.000") + tfm.height() * 1.4
        bottom = tfm.height() * 2.6
        area = QRectF(area.left() + left, area.top() + 4, area.width() - left - 8, area.height() - bottom - 4)
    x0, y0, x1, y1 = panel.world
    ww, wh = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    sx, sy = area.width() / ww, area.height() / wh
    if panel.keep_aspect:
        s = min(sx, sy)
        sx = sy = s
        area = QRectF(area.left() + (area.width() - ww * s) / 2, area.top() + (area.height() - wh * s) / 2,
                      ww * s, wh * s)
    if panel.y_up:
        m = PanelMap(index, area, panel.world, sx, -sy, area.left() - x0 * sx, area.bottom() + y0 * sy)
    else:
        m = PanelMap(index, area, panel.world, sx, sy, area.left() - x0 * sx, area.top() - y0 * sy)
    p.fillRect(area, _colour(panel.background))
    if panel.axes:
        _paint_axes(p, panel, m, tick_font, style)
    p.save()
    p.setClipRect(area.adjusted(-2, -2, 2, 2))
    for item in panel.items:
        _paint_item(p, item, m, style)
    p.restore()
    return m


def _paint_axes(p: QPainter, panel: sc.Panel, m: PanelMap, font: QFont, style: PaintStyle) -> None:
    x0, y0, x1, y1 = panel.world
    fm = QFontMetricsF(font)
    p.setFont(font)
    grid = QPen(QColor("#3c4043"), 1)
    ticks = panel.xticks if panel.xticks is not None else [(v, _fmt_tick(v)) for v in _nice_ticks(x0, x1)]
    for v, label in ticks:
        a = m.to_device(v, y0)
        p.setPen(grid)
        p.drawLine(m.to_device(v, y0), m.to_device(v, y1))
        p.setPen(QColor("#bdc1c6"))
        p.drawText(QPointF(a.x() - fm.horizontalAdvance(label) / 2, m.area.bottom() + fm.ascent() + 3), label)
    for v in _nice_ticks(y0, y1):
        a = m.to_device(x0, v)
        p.setPen(grid)
        p.drawLine(m.to_device(x0, v), m.to_device(x1, v))
        p.setPen(QColor("#bdc1c6"))
        label = _fmt_tick(v)
        p.drawText(QPointF(m.area.left() - fm.horizontalAdvance(label) - 4, a.y() + fm.ascent() / 2 - 1), label)
    p.setPen(QColor("#e8eaed"))
    if panel.xlabel:
        p.drawText(QRectF(m.area.left(), m.area.bottom() + fm.height(), m.area.width(), fm.height() * 1.4),
                   int(Qt.AlignmentFlag.AlignCenter), panel.xlabel)
    if panel.ylabel:
        p.save()
        p.translate(m.area.left() - fm.horizontalAdvance("-0.000") - fm.height() * 1.2, m.area.center().y())
        p.rotate(-90)
        p.drawText(QRectF(-m.area.height() / 2, 0, m.area.height(), fm.height() * 1.2),
                   int(Qt.AlignmentFlag.AlignCenter), panel.ylabel)
        p.restore()


def _device_rect(m: PanelMap, box) -> QRectF:
    a = m.to_device(box[0], box[1])
    b = m.to_device(box[2], box[3])
    return QRectF(a, b).normalized()


def _paint_item(p: QPainter, item, m: PanelMap, style: PaintStyle) -> None:
    if isinstance(item, sc.Image):
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, item.smooth)
        p.drawImage(_device_rect(m, item.rect), to_qimage(item.pixels))
    elif isinstance(item, sc.Rect):
        r = _device_rect(m, item.box)
        p.setBrush(QBrush(_colour(item.fill)) if item.fill else Qt.BrushStyle.NoBrush)
        p.setPen(_pen(item.colour, item.width, style, item.dashed) if item.width > 0 else Qt.PenStyle.NoPen)
        p.drawRect(r)
        if item.label:  # above the box, or inside it when the box touches the panel's top
            above = r.top() - QFontMetricsF(_font(10, style)).height() >= m.area.top()
            inset = 0 if above else 3
            _paint_text(p, max(r.left(), m.area.left()) + inset, max(r.top(), m.area.top()) + inset, item.label,
                        item.colour, 10, "bl" if above else "tl", True, False, 0.0, m, style, device=True)
    elif isinstance(item, sc.Line):
        pts = [m.to_device(x, y) for x, y in item.points]
        if len(pts) < 2:
            return
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(_pen(item.colour, item.width, style, item.dashed))
        p.drawPolyline(QPolygonF(pts))
        if item.arrow:
            a, b = pts[-2], pts[-1]
            ang = math.atan2(b.y() - a.y(), b.x() - a.x())
            size = 6 + 3 * item.width * style.line_scale
            head = QPolygonF([b, QPointF(b.x() - size * math.cos(ang - 0.4), b.y() - size * math.sin(ang - 0.4)),
                              QPointF(b.x() - size * math.cos(ang + 0.4), b.y() - size * math.sin(ang + 0.4))])
            p.setBrush(QBrush(_colour(item.colour)))
            p.setPen(Qt.PenStyle.NoPen)
            p.drawPolygon(head)
    elif isinstance(item, sc.Dot):
        c = m.to_device(item.x, item.y)
        r = item.radius * math.sqrt(style.line_scale)
        p.setBrush(QBrush(_colour(item.colour)))
        p.setPen(QPen(QColor("#000000"), 1))
        p.drawEllipse(c, r, r)
        if item.label:
            _paint_text(p, c.x() + r + 2, c.y(), item.label, item.colour, 11, "l", True, True, 0.0, m, style,
                        device=True)
    elif isinstance(item, sc.Text):
        _paint_text(p, item.x, item.y, item.text, item.colour, item.size, item.anchor, item.plate, item.bold,
                    item.fit, m, style, mono=item.mono)


def _paint_text(p: QPainter, x, y, text, colour, size, anchor, plate, bold, fit, m: PanelMap, style: PaintStyle,
                device: bool = False, mono: bool = False) -> None:
    font = _font(size, style, bold, mono)
    fm = QFontMetricsF(font)
    lines = text.split("\n")
    width = max(fm.horizontalAdvance(t) for t in lines)
    if fit > 0 and width > fit * abs(m.sx):
        font.setPixelSize(max(5, int(font.pixelSize() * fit * abs(m.sx) / width)))
        fm = QFontMetricsF(font)
        width = max(fm.horizontalAdvance(t) for t in lines)
    limit = m.area.width() - 12  # never wider than the panel: shrink rather than clip
    if not device and width > limit > 0:
        font.setPixelSize(max(5, int(font.pixelSize() * limit / width)))
        fm = QFontMetricsF(font)
        width = max(fm.horizontalAdvance(t) for t in lines)
    height = fm.height() * len(lines)
    pos = QPointF(x, y) if device else m.to_device(x, y)
    dx = {"l": 0.0, "c": -width / 2, "r": -width}[anchor[-1] if anchor[-1] in "lcr" else "c"]
    dy = {"t": 0.0, "c": -height / 2, "b": -height}[anchor[0] if anchor[0] in "tcb" else "c"]
    if anchor == "c":
        dx, dy = -width / 2, -height / 2
    if anchor == "l":
        dx, dy = 0.0, -height / 2
    if anchor == "r":
        dx, dy = -width, -height / 2
    box = QRectF(pos.x() + dx, pos.y() + dy, width, height)
    if plate:
        p.fillRect(box.adjusted(-3, -1, 3, 1), QColor(0, 0, 0, 200))
    p.setFont(font)
    p.setPen(_colour(colour))
    for i, t in enumerate(lines):
        p.drawText(QPointF(box.left(), box.top() + fm.ascent() + i * fm.height()), t)


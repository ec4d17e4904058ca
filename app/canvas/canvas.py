"""The annotation canvas widget: public API, view transform and painting.

The view maps image pixels to widget pixels as widget = image * scale + (ox, oy). Painting is
two-layered: a cached "static frame" (image tiles + all shapes not being edited) that is rebuilt
only when the transform, the shapes or the image tiles change, and a cheap overlay drawn on top
every time (selection, handles, shapes being dragged, the shape being drawn, messages). Dragging
one shape among 10,000 therefore costs one blit plus that shape. Mouse/keyboard handling lives in
interaction.py.
"""
from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (QColor, QFont, QFontMetrics, QImage, QPainter, QPainterPath, QPen, QPolygonF, QRegion,
                           QTransform)
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.annotations.geometry import bounds
from engine.annotations.model import Annotation, Box, Category, ImageRecord, MaskRLE, Point, Polygon, Polyline

from .editing import box_handle_points, rings
from .interaction import GRAB_TOL, Interaction
from .shapes import ShapeLayer
from .tiles import ImageLayer

TOOLS = ("select", "box", "polygon", "point", "polyline", "brush", "eraser", "grabcut")
BACKGROUND = QColor(40, 40, 44)
HANDLE = 7  # handle square side, screen px
MIN_SCALE, MAX_SCALE = 1e-4, 64.0
DAMAGE_PAD = 3  # widget px around a changed shape that a redraw covers (pen width, antialiasing)
MAX_DAMAGE_RECTS = 64  # more changed places than this: draw the whole frame again


class Canvas(Interaction, QWidget):
    """Shows one image with its annotations and turns mouse/keyboard input into EditRequests."""

    zoomChanged = Signal(float)
    cursorMoved = Signal(float, float)
    selectionChanged = Signal(list)
    editRequested = Signal(object)  # EditRequest
    toolChanged = Signal(str)  # the tool now active, whoever changed it (toolbar, key, code)
    acceptRequested = Signal()  # Enter with nothing being drawn (review: accept the selected proposal)

    def __init__(self, parent=None):
        QWidget.__init__(self, parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 150)
        self.shapes = ShapeLayer()
        self.image_layer = ImageLayer(self)
        self.image_layer.changed.connect(self.update)
        self._image: ImageRecord | None = None
        self._path: Path | None = None
        self._scale, self._ox, self._oy = 1.0, 0.0, 0.0
        self._auto_fit = True  # keep fitting on resize until the user zooms or pans
        self._tool = "select"
        self._current_category: int | None = None
        self._selected: list[int] = []
        self._brush_radius = 10.0
        self._frame: QImage | None = None
        self._frame_key = None
        self._base: QImage | None = None  # the frame before shapes (see _render_base)
        self._base_key = None
        self._status = ""  # transient notice drawn in the overlay (e.g. "GrabCut running…")
        # A moving view renders fast (nearest-neighbour resampling); once it rests for a moment
        # the frame is rendered again with smooth resampling.
        self._smooth = True
        self._smooth_timer = QTimer(self)
        self._smooth_timer.setSingleShot(True)
        self._smooth_timer.setInterval(150)
        self._smooth_timer.timeout.connect(self._refine)
        self._build_timer = QTimer(self)  # builds shape-pyramid levels in idle-time chunks
        self._build_timer.setSingleShot(True)
        self._build_timer.setInterval(0)
        self._build_timer.timeout.connect(self._build_step)
        self.init_interaction()

    # ---- loading -------------------------------------------------------------------------
    def load(self, image: ImageRecord, path: Path, annotations: list[Annotation],
             categories: list[Category]) -> None:
        """Show `image` (pixels decoded in the background) with its annotations."""
        self.cancel_drawing()
        self._image, self._path = image, Path(path)
        self.shapes.image_size = (int(image.width), int(image.height))
        self.set_categories(categories)
        self.shapes.set_excluded(())
        self.shapes.set_annotations(list(annotations))
        if self._current_category is None and categories:
            self._current_category = categories[0].id
        self._status = ""
        had = bool(self._selected)
        self._selected = []
        self.image_layer.load(self._path)
        self._auto_fit = True
        self.fit()
        if had:
            self.selectionChanged.emit([])
        self.update()

    def image(self) -> ImageRecord | None:
        return self._image

    def message_text(self) -> str:
        """The message shown instead of the image ('' when the image is fine or still loading)."""
        return self.image_layer.error

    def set_cache_dir(self, folder: Path | None) -> None:
        """Where huge images' pyramid levels are cached (default: the system temp folder)."""
        self.image_layer.cache_dir = folder

    def shutdown(self) -> None:
        """Stop background work (tests, closing the window)."""
        self.image_layer.clear()
        self.image_layer.wait(10000)
        self.wait_workers(10000)

    # ---- annotations -----------------------------------------------------------------------
    def set_annotations(self, annotations: list[Annotation]) -> None:
        self.shapes.set_annotations(list(annotations))
        self._keep_selection()
        self.update()

    def apply_changes(self, added=(), updated=(), deleted_ids=()) -> None:
        before = self._overlay_rects()
        self.shapes.apply_changes(list(added), list(updated), list(deleted_ids))
        self._keep_selection()
        self._update_changed(before + self._overlay_rects())

    def annotations(self) -> list[Annotation]:
        return list(self.shapes.anns.values())

    def _keep_selection(self) -> None:
        kept = [i for i in self._selected if i in self.shapes.anns]
        if kept != self._selected:
            self._selected = kept
            self.shapes.set_excluded(kept)
            self.selectionChanged.emit(list(kept))

    def set_categories(self, categories: list[Category]) -> None:
        self._category_names = {c.id: c.name for c in categories}
        self.shapes.set_colors(categories)
        self.update()

    def set_current_category(self, category_id: int) -> None:
        self._current_category = category_id

    def current_category(self) -> int | None:
        return self._current_category

    def set_category_visible(self, category_id: int, visible: bool) -> None:
        hidden = set(self.shapes.hidden_categories)
        (hidden.discard if visible else hidden.add)(category_id)
        self.shapes.set_style(hidden_categories=hidden)
        self.update()

    def set_opacity(self, opacity: float) -> None:
        self.shapes.set_style(opacity=max(0.0, min(1.0, float(opacity))))
        self.update()

    def set_fill(self, fill: bool) -> None:
        self.shapes.set_style(fill=bool(fill))
        self.update()

    def set_brush_radius(self, px: float) -> None:
        """Brush/eraser radius in image pixels."""
        self._brush_radius = max(0.5, float(px))
        self.update()

    def brush_radius(self) -> float:
        return self._brush_radius

    def set_tool(self, name: str) -> None:
        if name not in TOOLS:
            raise ValueError(f"unknown canvas tool {name!r}; expected one of {', '.join(TOOLS)}")
        self.cancel_drawing()
        changed = name != self._tool
        self._tool = name
        self.setCursor(Qt.CursorShape.ArrowCursor if name == "select" else Qt.CursorShape.CrossCursor)
        self.update()
        if changed:
            self.toolChanged.emit(name)

    def tool(self) -> str:
        return self._tool

    # ---- selection -----------------------------------------------------------------------
    def selected_ids(self) -> list[int]:
        return list(self._selected)

    def select(self, ids) -> None:
        ids = [i for i in dict.fromkeys(ids) if i in self.shapes.anns]
        if ids != self._selected:
            before = self._overlay_rects()
            self._selected = ids
            # selected shapes are drawn by the overlay (highlighted, maybe dragged), not the bulk layer
            self.shapes.set_excluded(ids)
            self._active_vertex = None
            self.selectionChanged.emit(list(ids))
            self._update_changed(before + self._overlay_rects())

    # ---- view transform --------------------------------------------------------------------
    def viewport(self) -> QWidget:
        """The widget that receives mouse events (the canvas itself; QGraphicsView-like name)."""
        return self

    def zoom(self) -> float:
        return self._scale

    def map_to_image(self, pos: QPointF) -> tuple[float, float]:
        return ((pos.x() - self._ox) / self._scale, (pos.y() - self._oy) / self._scale)

    def map_from_image(self, x: float, y: float) -> QPointF:
        return QPointF(x * self._scale + self._ox, y * self._scale + self._oy)

    def view_rect(self) -> tuple[float, float, float, float]:
        """The visible part of the image plane, image px xyxy."""
        s = self._scale
        return (-self._ox / s, -self._oy / s, (self.width() - self._ox) / s, (self.height() - self._oy) / s)

    def _refine(self) -> None:
        self._smooth = True
        self.update()

    def _set_view(self, scale: float, ox: float, oy: float) -> None:
        scale = max(MIN_SCALE, min(MAX_SCALE, scale))
        changed = scale != self._scale
        if (scale, ox, oy) != (self._scale, self._ox, self._oy):
            self._smooth = False
            self._smooth_timer.start()
        self._scale, self._ox, self._oy = scale, ox, oy
        self.update()
        if changed:
            self.zoomChanged.emit(scale)

    def zoom_at(self, factor: float, anchor: QPointF) -> None:
        """Zoom by `factor` keeping the image point under `anchor` (widget px) fixed."""
        x, y = self.map_to_image(anchor)
        s = max(MIN_SCALE, min(MAX_SCALE, self._scale * factor))
        self._auto_fit = False
        self._set_view(s, anchor.x() - x * s, anchor.y() - y * s)

    def zoom_to(self, scale: float, anchor: QPointF | None = None) -> None:
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        self.zoom_at(scale / self._scale, anchor)

    def pan_by(self, dx: float, dy: float) -> None:
        self._auto_fit = False
        self._set_view(self._scale, self._ox + dx, self._oy + dy)

    def fit(self) -> None:
        """Show the whole image centred, and keep it fitted as the widget resizes until the
        user zooms or pans (the first fit happens before the window has its final size)."""
        self._auto_fit = True
        if self._image is None or self._image.width <= 0 or self._image.height <= 0:
            return
        w, h = self._image.width, self._image.height
        s = min(self.width() / w, self.height() / h)
        self._set_view(s, (self.width() - w * s) / 2, (self.height() - h * s) / 2)

    def resizeEvent(self, ev):  # noqa: N802 - Qt override
        if self._auto_fit:
            self.fit()
        super().resizeEvent(ev)

    # ---- painting ------------------------------------------------------------------------
    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt override
        w, h = self.width(), self.height()
        key = (self._scale, self._ox, self._oy, w, h, self.image_layer.version, self._smooth,
               self.devicePixelRatioF(), self.shapes.version)
        if self._frame is None or key != self._frame_key:
            same_view = self._frame is not None and self._frame_key is not None and self._frame_key[:-1] == key[:-1]
            if not (same_view and self.redraw_damage(self.shapes.take_damage())):
                self._frame = self.render_static(w, h)
            self._frame_key = key
        p = QPainter(self)
        try:
            p.drawImage(0, 0, self._frame)
            self.paint_overlay(p)
        finally:
            p.end()  # a painter left active on a destroyed device crashes Qt
        if self.shapes.build_pending() and not self._build_timer.isActive():
            self._build_timer.start()

    def _build_step(self) -> None:
        if self.shapes.build_step():
            self._build_timer.start()

    def render_static(self, w: int, h: int) -> QImage:
        """Image tiles and every shape not being edited, as a [h, w] premultiplied ARGB QImage."""
        dpr = max(1.0, self.devicePixelRatioF())  # HiDPI: render at device resolution
        size = (max(1, round(w * dpr)), max(1, round(h * dpr)))
        frame = self._frame
        if frame is None or (frame.width(), frame.height()) != size or frame.devicePixelRatio() != dpr:
            frame = QImage(size[0], size[1], QImage.Format.Format_ARGB32_Premultiplied)
            frame.setDevicePixelRatio(dpr)
        self.shapes.take_damage()  # all of it is drawn now
        base = self._render_base(size, dpr)
        p = QPainter(frame)
        try:
            p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
            p.drawImage(0, 0, base)
            p.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
            view = self.view_rect()
            self.shapes.paint(p, self._scale, self._ox, self._oy, (frame.width(), frame.height()), view,
                              self._smooth, dpr)
        finally:
            p.end()
        return frame

    def _render_base(self, size: tuple[int, int], dpr: float) -> QImage:
        """The frame without shapes (background and image tiles), kept while the view and the tiles
        stay: a redraw of a few rects copies its pixels instead of resampling tiles under a clip,
        which Qt rounds differently (rows of pixels would shift inside the rects)."""
        key = (self._scale, self._ox, self._oy, size, dpr, self._smooth, self.image_layer.version,
               self.image_layer.error, self.image_layer.pyramid is None)
        base = self._base
        if base is not None and self._base_key == key:
            return base
        if base is None or (base.width(), base.height()) != size or base.devicePixelRatio() != dpr:
            base = QImage(size[0], size[1], QImage.Format.Format_ARGB32_Premultiplied)
            base.setDevicePixelRatio(dpr)
        base.fill(BACKGROUND)
        p = QPainter(base)
        try:
            self._paint_no_pixels(p)
            self.image_layer.paint(p, self._scale, self._ox, self._oy, self.view_rect(), self._smooth, dpr)
        finally:
            p.end()
        self._base, self._base_key = base, key
        return base

    def _damage_parts(self, damage: list, extra: list | None = None) -> list[QRect] | None:
        """Widget-px rects covering the image-px rects ``damage`` (shapes that changed, padded for
        pen and antialiasing), the proposal tags that come, go or change, and the widget-px rects
        ``extra``; None when so much changed that drawing everything is cheaper."""
        s, ox, oy, w, h = self._scale, self._ox, self._oy, self.width(), self.height()
        tw, th = self.shapes.tag_extent()
        # a proposal's tag spans (tw, th) right of and above its box's corner
        tags = [(x, y, x + tw / s, y) for x, y in self.shapes.tag_changes(self.view_rect())]
        rects = []
        for k, (x0, y0, x1, y1) in enumerate(damage + tags):
            X0, Y0 = math.floor(x0 * s + ox) - DAMAGE_PAD, math.floor(y0 * s + oy) - DAMAGE_PAD
            X1, Y1 = math.ceil(x1 * s + ox) + DAMAGE_PAD, math.ceil(y1 * s + oy) + DAMAGE_PAD
            if k >= len(damage):
                Y0 -= th
            rects.append((X0, Y0, X1, Y1))
        parts, area, seen = [], 0, set()
        for X0, Y0, X1, Y1 in rects + list(extra or ()):
            X0, Y0, X1, Y1 = max(X0, 0), max(Y0, 0), min(X1, w), min(Y1, h)
            if X0 < X1 and Y0 < Y1 and (X0, Y0, X1, Y1) not in seen:  # a shape may report the same rect twice
                seen.add((X0, Y0, X1, Y1))
                parts.append(QRect(X0, Y0, X1 - X0, Y1 - Y0))
                area += (X1 - X0) * (Y1 - Y0)
        if len(parts) > MAX_DAMAGE_RECTS or area > 0.4 * w * h:
            return None
        return parts

    def _overlay_rects(self) -> list[tuple[int, int, int, int]]:
        """Widget-px xyxy rects the overlay paints over the frame for shapes: the selected ones
        and the hovered one (its label)."""
        ids = dict.fromkeys(self._selected)
        if self._hover_id is not None:
            ids[self._hover_id] = None
        return [r for r in map(self._overlay_rect, ids) if r is not None]

    def _overlay_rect(self, ann_id: int) -> tuple[int, int, int, int] | None:
        """Widget-px xyxy that the overlay may paint for shape ``ann_id``: its outline with handles,
        and the category-and-score label above its corner."""
        a = self.display_annotation(ann_id)
        if a is None:
            return None
        x1, y1, x2, y2 = bounds(a.geometry)
        s, ox, oy = self._scale, self._ox, self._oy
        pad = HANDLE + DAMAGE_PAD + (8 if isinstance(a.geometry, Point) else 0)
        X0, Y0 = math.floor(x1 * s + ox) - pad, math.floor(y1 * s + oy) - pad
        X1, Y1 = math.ceil(x2 * s + ox) + pad, math.ceil(y2 * s + oy) + pad
        if a.score is not None:
            fm = QFontMetrics(QFont(self.font().family(), 9))
            text = f"{self._category_names.get(a.category_id, a.source)} {a.score:.2f}"
            X1 = max(X1, X0 + pad + fm.horizontalAdvance(text) + 8)
            Y0 -= fm.height() + 6
        return (X0, Y0, X1, Y1)

    def _update_changed(self, overlay: list) -> None:
        """Schedule a repaint of only what changed: the shapes' damage (not taken: the frame takes
        it when it is drawn), the tags, and ``overlay`` (widget-px xyxy rects the overlay painted
        before the change and paints after it). Everything when the frame must be drawn whole
        anyway (no frame yet, too much changed, a drag or a drawing going on). Accepting one
        proposal among 1,000 then repaints and flushes a few small rects, not the whole canvas."""
        damage = self.shapes.peek_damage()
        if self._frame is None or damage is None or self._drag is not None or self._points:
            self.update()
            return
        parts = self._damage_parts(damage, overlay)
        if parts is None:
            self.update()
            return
        region = QRegion()
        for r in parts:
            region = region.united(r)
        if not region.isEmpty():
            self.update(region)

    def redraw_damage(self, damage: list | None) -> bool:
        """Draw the static frame again only where the shapes changed (image-px rects ``damage``)
        and where proposal tags came or went; False when that is not worth it (no frame, too much
        changed), and then nothing was drawn. Accepting one proposal among 1,000 redraws two small
        rects instead of the whole frame."""
        frame = self._frame
        if frame is None or damage is None:
            return False
        s, ox, oy = self._scale, self._ox, self._oy
        parts = self._damage_parts(damage)
        if parts is None:
            return False
        if not parts:
            return True
        region = QRegion()
        for r in parts:
            region = region.united(r)
        clip = [((r.left() - ox) / s, (r.top() - oy) / s, (r.right() + 1 - ox) / s, (r.bottom() + 1 - oy) / s)
                for r in parts]
        dpr = frame.devicePixelRatio()
        base = self._render_base((frame.width(), frame.height()), dpr)
        p = QPainter(frame)
        try:
            p.setClipRegion(region)
            p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
            p.drawImage(0, 0, base)
            p.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
            self.shapes.paint(p, s, ox, oy, (frame.width(), frame.height()), self.view_rect(), self._smooth, dpr,
                              clip=clip)
        finally:
            p.end()
        return True

    def _paint_no_pixels(self, p: QPainter) -> None:
        if (self.image_layer.pyramid is None or self.image_layer.error) and self._image is not None:
            # no pixels (yet, or unreadable): show where the image is so shapes keep context
            r = QRectF(self.map_from_image(0, 0), self.map_from_image(self._image.width, self._image.height))
            p.fillRect(r, QColor(58, 58, 64))
            p.setPen(QPen(QColor(110, 110, 120), 1, Qt.PenStyle.DashLine))
            p.drawRect(r)

    def _transform(self) -> QTransform:
        return QTransform(self._scale, 0, 0, self._scale, self._ox, self._oy)

    def paint_overlay(self, p: QPainter) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for i in self._selected:
            a = self.display_annotation(i)
            if a is not None and not a.hidden and a.category_id not in self.shapes.hidden_categories:
                self.paint_selected(p, a)
        self.paint_tool_overlay(p)
        self.paint_hover_label(p)
        msg = self.message_text() or self._status
        if msg:
            self.paint_message(p, msg, centre=bool(self.message_text()))

    def shape_path(self, g) -> QPainterPath:
        """Geometry -> widget-px QPainterPath (odd-even fill: holes stay holes)."""
        path = QPainterPath()
        path.setFillRule(Qt.FillRule.OddEvenFill)
        t = self._transform()
        if isinstance(g, Box):
            path.addRect(t.mapRect(QRectF(g.x1, g.y1, g.x2 - g.x1, g.y2 - g.y1)))
        elif isinstance(g, (Polygon, Polyline)):
            for ring in rings(g):
                poly = t.map(QPolygonF([QPointF(x, y) for x, y in ring]))
                if isinstance(g, Polygon):
                    path.addPolygon(poly)
                    path.closeSubpath()
                else:
                    path.addPolygon(poly)
        return path

    def paint_selected(self, p: QPainter, a: Annotation) -> None:
        color = self.shapes.color(a.category_id)
        g = a.geometry
        offset = self.mask_drag_offset(a.id)
        if isinstance(g, MaskRLE):
            p.save()
            p.translate(offset[0] * self._scale, offset[1] * self._scale)
            self.shapes.paint_mask(p, a, self._scale, self._ox, self._oy, extra_opacity=1.6)
            x1, y1, x2, y2 = bounds(g)
            p.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(self.map_from_image(x1, y1), self.map_from_image(x2, y2)))
            p.restore()
            return
        if isinstance(g, Point):
            c = self.map_from_image(g.x, g.y)
            p.setPen(QPen(QColor(255, 255, 255), 2))
            p.setBrush(color)
            p.drawEllipse(c, 6, 6)
            return
        path = self.shape_path(g)
        fill = QColor(color)
        fill.setAlphaF(self.shapes.opacity if self.shapes.fill else 0.0)
        p.setBrush(fill if isinstance(g, (Box, Polygon)) else Qt.BrushStyle.NoBrush)
        p.setPen(QPen(color, 2.5))
        p.drawPath(path)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine))
        p.drawPath(path)
        x1, y1, x2, y2 = bounds(g)
        if a.locked or max(x2 - x1, y2 - y1) * self._scale < 3 * GRAB_TOL:
            return  # no handles on locked shapes or shapes too small on screen to aim at them
        pts = list(box_handle_points(g).values()) if isinstance(g, Box) else [v for r in rings(g) for v in r]
        p.setPen(QPen(color.darker(150), 1))
        p.setBrush(QColor(255, 255, 255))
        hs = HANDLE
        for x, y in pts:
            c = self.map_from_image(x, y)
            p.drawRect(QRectF(c.x() - hs / 2, c.y() - hs / 2, hs, hs))
        av = self._active_vertex
        if av is not None and av[0] == a.id and not isinstance(g, Box):
            rs = rings(g)
            if av[1] < len(rs) and av[2] < len(rs[av[1]]):
                c = self.map_from_image(*rs[av[1]][av[2]])
                p.setBrush(color)
                p.drawRect(QRectF(c.x() - hs / 2 - 1, c.y() - hs / 2 - 1, hs + 2, hs + 2))

    def paint_hover_label(self, p: QPainter) -> None:
        """Category name and score of model-made annotations that are hovered or selected."""
        ids = list(self._selected)
        if self._hover_id is not None and self._hover_id not in ids:
            ids.append(self._hover_id)
        p.setFont(QFont(p.font().family(), 9))
        for i in ids:
            a = self.display_annotation(i)
            if a is None or a.score is None or a.hidden:
                continue
            x1, y1, _, _ = bounds(a.geometry)
            c = self.map_from_image(x1, y1)
            text = f"{self._category_names.get(a.category_id, a.source)} {a.score:.2f}"
            r = p.fontMetrics().boundingRect(text).adjusted(-3, -2, 3, 2)
            r.moveTopLeft(c.toPoint() - r.bottomLeft() + r.topLeft())
            p.fillRect(r, self.shapes.color(a.category_id))
            p.setPen(QColor(0, 0, 0))
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    def paint_message(self, p: QPainter, text: str, centre: bool) -> None:
        p.setFont(QFont(p.font().family(), 11))
        fm = p.fontMetrics()
        box = fm.boundingRect(0, 0, max(200, self.width() - 40), 400, Qt.TextFlag.TextWordWrap, text)
        box = box.adjusted(-10, -8, 10, 8)
        if centre:
            box.moveCenter(self.rect().center())
        else:
            box.moveTopLeft(self.rect().topLeft())
            box.translate(8, 8)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 190))
        p.drawRoundedRect(box, 6, 6)
        p.setPen(QColor(255, 220, 120) if centre else QColor(255, 255, 255))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)

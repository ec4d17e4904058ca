"""Mouse and keyboard handling of the canvas: tools turn gestures into EditRequests.

A mixin of Canvas (canvas.py owns the state it reads: _scale, shapes, _selected, _tool...).
Drags keep a preview of the edited annotations; the store only changes when the controller applies
the EditRequest emitted on release. GrabCut runs on a QThreadPool; each run carries a generation
number so a result that arrives after another image was loaded (or another box drawn) is dropped.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen, QPolygonF

from engine.annotations.geometry import area, bounds, encode_mask, translate
from engine.annotations.model import Annotation, Box, MaskRLE, Point, Polygon, Polyline
from engine.assist.grabcut import grabcut_mask

from .edit import EditRequest
from .editing import (box_handle_points, delete_vertex, insert_vertex, move_vertex, nearest_edge,
                      nearest_vertex, paint_stroke, resize_box)

GRAB_TOL = 7  # screen px within which a handle/vertex/edge is grabbed
CLICK_SLOP = 2  # screen px a press may move and still be a click
CLOSE_TOL = 9  # screen px to the first vertex that closes a polygon


class _GrabCutSignals(QObject):
    done = Signal(int, object, str)  # generation, MaskRLE | None, error message


class _GrabCutJob(QRunnable):
    def __init__(self, signals, gen, layer, box, size_hw):
        super().__init__()
        self.signals, self.gen, self.layer, self.box, self.size_hw = signals, gen, layer, box, size_hw

    def run(self):
        try:
            x1, y1, x2, y2 = self.box
            mx, my = (x2 - x1) * 0.5 + 8, (y2 - y1) * 0.5 + 8
            cx, cy = max(0, int(x1 - mx)), max(0, int(y1 - my))
            crop = self.layer.read_region(cx, cy, int(math.ceil(x2 + mx)), int(math.ceil(y2 + my)))
            if crop is None:
                self.signals.done.emit(self.gen, None, "GrabCut: the image is not loaded yet")
                return
            m = grabcut_mask(crop, (x1 - cx, y1 - cy, x2 - cx, y2 - cy))
            h, w = self.size_hw
            full = np.zeros((h, w), np.uint8)
            full[cy: cy + m.shape[0], cx: cx + m.shape[1]] = m[: h - cy, : w - cx]
            if not full.any():
                self.signals.done.emit(self.gen, None, "GrabCut found no object in the box")
                return
            self.signals.done.emit(self.gen, encode_mask(full), "")
        except Exception as exc:  # noqa: BLE001 - report, never crash the GUI
            self.signals.done.emit(self.gen, None, f"GrabCut failed: {exc}")


class Interaction:
    def init_interaction(self) -> None:
        self._drag: dict | None = None
        self._points: list[tuple[float, float]] = []  # polygon/polyline being drawn
        self._cursor: tuple[float, float] | None = None  # image px
        self._space = False
        self._active_vertex = None  # (annotation id, ring, index)
        self._vertex_clicked = False  # the active vertex was clicked (not just hovered)
        self._hover_id = None
        self._category_names: dict[int, str] = {}
        self._workers = QThreadPool(self)
        self._workers.setMaxThreadCount(1)
        self._grabcut_signals = _GrabCutSignals()
        self._grabcut_signals.done.connect(self._grabcut_done)
        self._grabcut_gen = 0
        self._status_timer = QTimer(self)
        self._status_timer.setSingleShot(True)
        self._status_timer.timeout.connect(lambda: self.notify(""))

    def notify(self, text: str, msecs: int = 4000) -> None:
        """Show a short notice in the canvas corner; it disappears after `msecs` (0: stays)."""
        self._status = text
        if text and msecs:
            self._status_timer.start(msecs)
        self.update()

    def wait_workers(self, msecs: int = 30000) -> bool:
        return self._workers.waitForDone(msecs)

    def grabcut_busy(self) -> bool:
        return self._workers.activeThreadCount() > 0

    # ---- helpers -------------------------------------------------------------------------
    def cancel_drawing(self) -> None:
        self._drag = None
        self._points = []
        self._grabcut_gen += 1  # a pending GrabCut result no longer applies
        self._status = ""
        self.update()

    def _tol(self) -> float:
        return GRAB_TOL / self._scale

    def _new(self, geometry) -> Annotation:
        return Annotation(image_id=self._image.id if self._image else 0,
                          category_id=self._current_category if self._current_category is not None else 0,
                          geometry=geometry, source="manual")

    def _emit(self, label, add=(), update=(), delete=()) -> None:
        self.editRequested.emit(EditRequest(label, list(add), list(update), list(delete)))

    def _editable_selected(self) -> list[Annotation]:
        return [self.shapes.anns[i] for i in self._selected if i in self.shapes.anns and not self.shapes.anns[i].locked]

    def _clip_box(self, x1, y1, x2, y2) -> Box:
        x1, x2 = sorted((x1, x2))
        y1, y2 = sorted((y1, y2))
        if self._image is not None and self._image.width > 0:
            w, h = self._image.width, self._image.height
            x1, x2 = min(max(x1, 0), w), min(max(x2, 0), w)
            y1, y2 = min(max(y1, 0), h), min(max(y2, 0), h)
        return Box(x1, y1, x2, y2)

    def display_annotation(self, i: int) -> Annotation | None:
        """The annotation as it should look now (with a drag in progress applied)."""
        a = self.shapes.anns.get(i)
        d = self._drag
        if a is None or d is None:
            return a
        if d["kind"] == "move" and d.get("moved") and i in d["ids"] and not isinstance(a.geometry, MaskRLE):
            return a.with_(geometry=translate(a.geometry, d["dx"], d["dy"]))
        if d["kind"] in ("handle", "vertex") and d.get("preview") is not None and d["id"] == i:
            return a.with_(geometry=d["preview"])
        return a

    def mask_drag_offset(self, i: int) -> tuple[float, float]:
        d = self._drag
        if d is not None and d["kind"] == "move" and d.get("moved") and i in d["ids"]:
            return (round(d["dx"]), round(d["dy"]))
        return (0.0, 0.0)

    # ---- mouse -----------------------------------------------------------------------------
    def mousePressEvent(self, ev) -> None:  # noqa: N802 - Qt override
        self.setFocus()
        pos = ev.position()
        x, y = self.map_to_image(pos)
        btn = ev.button()
        if btn == Qt.MouseButton.MiddleButton or (btn == Qt.MouseButton.LeftButton and self._space):
            self._drag = {"kind": "pan", "last": QPointF(pos)}
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if btn != Qt.MouseButton.LeftButton:
            return
        mods = ev.modifiers()
        tool = self._tool
        if tool == "select":
            self._press_select(x, y, pos, mods)
        elif tool in ("box", "grabcut"):
            self._drag = {"kind": "rect", "x0": x, "y0": y, "x": x, "y": y, "start": QPointF(pos)}
        elif tool in ("polygon", "polyline"):
            if (tool == "polygon" and len(self._points) >= 3
                    and self._screen_dist(self._points[0], pos) <= CLOSE_TOL):
                self._finish_chain()
            else:
                self._points.append((x, y))
        elif tool == "point":
            self._emit("Add point", add=[self._new(Point(x, y))])
        elif tool in ("brush", "eraser"):
            target = None
            if len(self._selected) == 1:
                a = self.shapes.anns.get(self._selected[0])
                if a is not None and isinstance(a.geometry, MaskRLE) and not a.locked:
                    target = a
            if tool == "eraser" and target is None:
                self.notify("Select a mask to erase from")
            else:
                self._drag = {"kind": "stroke", "target": target, "points": [(x, y)]}
        self.update()

    def _screen_dist(self, p_img, pos: QPointF) -> float:
        q = self.map_from_image(*p_img)
        return math.hypot(q.x() - pos.x(), q.y() - pos.y())

    def _press_select(self, x, y, pos, mods) -> None:
        tol = self._tol()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        for a in self._editable_selected():
            g = a.geometry
            b = bounds(g)
            if max(b[2] - b[0], b[3] - b[1]) * self._scale < 3 * GRAB_TOL:
                continue  # too small on screen to aim at handles: a press moves the whole shape
            if isinstance(g, Box) and not ctrl:
                for name, hp in box_handle_points(g).items():
                    if self._screen_dist(hp, pos) <= GRAB_TOL:
                        self._drag = {"kind": "handle", "id": a.id, "handle": name, "preview": None,
                                      "start": QPointF(pos)}
                        return
            if isinstance(g, (Polygon, Polyline)):
                v = nearest_vertex(g, x, y, tol)
                if v is not None and not ctrl:
                    self._active_vertex = (a.id, v[0], v[1])
                    self._vertex_clicked = True
                    self._drag = {"kind": "vertex", "id": a.id, "vertex": v, "preview": None, "start": QPointF(pos)}
                    return
                if ctrl:
                    e = nearest_edge(g, x, y, tol)
                    if e is not None:
                        self._insert_vertex(a, e)
                        return
        self._active_vertex, self._vertex_clicked = None, False
        hit = self.shapes.hit(x, y, tol)
        if hit is None:
            if not shift:
                self.select([])
            self._drag = {"kind": "rubber", "x0": x, "y0": y, "x": x, "y": y, "start": QPointF(pos), "shift": shift}
            return
        if shift:
            sel = list(self._selected)
            sel.remove(hit) if hit in sel else sel.append(hit)
            self.select(sel)
            return
        if hit not in self._selected:
            self.select([hit])
        ids = [a.id for a in self._editable_selected()]
        if ids:
            self._drag = {"kind": "move", "ids": ids, "x0": x, "y0": y, "dx": 0.0, "dy": 0.0,
                          "moved": False, "start": QPointF(pos)}

    def _insert_vertex(self, a: Annotation, edge) -> None:
        ring, after, (px, py) = edge
        g = insert_vertex(a.geometry, ring, after, px, py)
        self._active_vertex = (a.id, ring, after + 1)
        self._vertex_clicked = True
        self._emit("Insert vertex", update=[a.with_(geometry=g)])

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802 - Qt override
        pos = ev.position()
        x, y = self.map_to_image(pos)
        self._cursor = (x, y)
        self.cursorMoved.emit(x, y)
        d = self._drag
        if d is None:
            self._update_hover(x, y)
            if self._tool != "select":
                self.update()
            return
        k = d["kind"]
        if k == "pan":
            delta = pos - d["last"]
            d["last"] = QPointF(pos)
            self.pan_by(delta.x(), delta.y())
            return
        moved = (pos - d["start"]).manhattanLength() > CLICK_SLOP if "start" in d else True
        if k == "move":
            if moved and not d["moved"]:
                d["moved"] = True
            if d["moved"]:
                d["dx"], d["dy"] = x - d["x0"], y - d["y0"]
        elif k == "handle" and moved:
            a = self.shapes.anns[d["id"]]
            d["preview"] = resize_box(a.geometry, d["handle"], x, y)
        elif k == "vertex" and moved:
            a = self.shapes.anns[d["id"]]
            r, i = d["vertex"]
            d["preview"] = move_vertex(a.geometry, r, i, x, y)
        elif k in ("rect", "rubber"):
            d["x"], d["y"] = x, y
        elif k == "stroke":
            d["points"].append((x, y))
        self.update()

    def _update_hover(self, x, y) -> None:
        if self._tool != "select":
            return
        hover = None
        if any(a.score is not None for a in self.shapes.anns.values()):
            hover = self.shapes.hit(x, y, self._tol())
        if hover != self._hover_id:
            self._hover_id = hover
            self.update()
        # the hovered vertex of a selected shape is the target of Delete/Backspace; a clicked
        # vertex stays the target after the mouse leaves it
        for a in self._editable_selected():
            if isinstance(a.geometry, (Polygon, Polyline)):
                v = nearest_vertex(a.geometry, x, y, self._tol())
                if v is not None:
                    if self._active_vertex != (a.id, v[0], v[1]):
                        self._active_vertex = (a.id, v[0], v[1])
                        self._vertex_clicked = False
                        self.update()
                    return
        if self._active_vertex is not None and not self._vertex_clicked:
            self._active_vertex = None
            self.update()

    def mouseReleaseEvent(self, ev) -> None:  # noqa: N802 - Qt override
        d = self._drag
        if d is None:
            return
        self._drag = None
        k = d["kind"]
        if k == "pan":
            self.setCursor(Qt.CursorShape.ArrowCursor if self._tool == "select" else Qt.CursorShape.CrossCursor)
        elif k == "move":
            if d["moved"] and (d["dx"] or d["dy"]):
                anns = [self.shapes.anns[i] for i in d["ids"] if i in self.shapes.anns]
                self._emit("Move", update=[a.with_(geometry=translate(a.geometry, d["dx"], d["dy"])) for a in anns])
        elif k in ("handle", "vertex"):
            g = d["preview"]
            if g is not None and not (isinstance(g, Box) and (g.width < 1e-3 or g.height < 1e-3)):
                a = self.shapes.anns[d["id"]]
                self._emit("Resize box" if k == "handle" else "Move vertex", update=[a.with_(geometry=d["preview"])])
        elif k == "rect":
            self._finish_rect(d, ev.position())
        elif k == "rubber":
            self._finish_rubber(d)
        elif k == "stroke":
            self._finish_stroke(d)
        self.update()

    def _finish_rect(self, d, pos) -> None:
        if (pos - d["start"]).manhattanLength() <= CLICK_SLOP:
            return
        b = self._clip_box(d["x0"], d["y0"], d["x"], d["y"])
        if b.width < 1 or b.height < 1:
            return
        if self._tool == "box":
            self._emit("Add box", add=[self._new(b)])
            return
        if self._image is None:
            return
        self._grabcut_gen += 1
        self.notify("GrabCut running…", 0)
        self._workers.start(_GrabCutJob(self._grabcut_signals, self._grabcut_gen, self.image_layer,
                                        (b.x1, b.y1, b.x2, b.y2), (self._image.height, self._image.width)))

    def _grabcut_done(self, gen, rle, error) -> None:
        if gen != self._grabcut_gen:
            return  # stale: another image or box since
        self.notify(error)
        if rle is not None:
            self._emit("GrabCut", add=[self._new(rle)])
        self.update()

    def _finish_rubber(self, d) -> None:
        x1, x2 = sorted((d["x0"], d["x"]))
        y1, y2 = sorted((d["y0"], d["y"]))
        if (x2 - x1) * self._scale < 3 and (y2 - y1) * self._scale < 3:
            return
        inside = []
        for a in self.shapes.anns.values():
            if a.hidden or a.category_id in self.shapes.hidden_categories:
                continue
            b = bounds(a.geometry)
            if b[0] >= x1 and b[2] <= x2 and b[1] >= y1 and b[3] <= y2:
                inside.append(a.id)
        self.select((self._selected if d["shift"] else []) + inside)

    def _finish_stroke(self, d) -> None:
        if self._image is None:
            return
        target = d["target"]
        value = 0 if self._tool == "eraser" else 1
        rle = paint_stroke(target.geometry if target else None, (self._image.height, self._image.width),
                           d["points"], self._brush_radius, value)
        if target is not None:
            self._emit("Erase" if value == 0 else "Paint", update=[target.with_(geometry=rle)])
        elif area(rle) > 0:
            self._emit("Paint mask", add=[self._new(rle)])

    def mouseDoubleClickEvent(self, ev) -> None:  # noqa: N802 - Qt override
        pos = ev.position()
        x, y = self.map_to_image(pos)
        if self._tool in ("polygon", "polyline"):
            self._finish_chain()
            return
        if self._tool == "select":
            for a in self._editable_selected():
                if isinstance(a.geometry, (Polygon, Polyline)):
                    if nearest_vertex(a.geometry, x, y, self._tol()) is not None:
                        continue
                    e = nearest_edge(a.geometry, x, y, self._tol())
                    if e is not None:
                        self._insert_vertex(a, e)
                        return

    def _finish_chain(self) -> None:
        pts = self._points
        if self._tool == "polygon" and len(pts) >= 3:
            self._emit("Add polygon", add=[self._new(Polygon(tuple(pts)))])
        elif self._tool == "polyline" and len(pts) >= 2:
            self._emit("Add polyline", add=[self._new(Polyline(tuple(pts)))])
        else:
            return
        self._points = []
        self.update()

    def wheelEvent(self, ev) -> None:  # noqa: N802 - Qt override
        steps = ev.angleDelta().y() / 120.0
        if steps:
            self.zoom_at(1.25 ** steps, ev.position())

    # ---- keyboard ------------------------------------------------------------------------
    def keyPressEvent(self, ev) -> None:  # noqa: N802 - Qt override
        key = ev.key()
        if key == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self._points:
                self._finish_chain()
            else:
                self.acceptRequested.emit()  # nothing being drawn: Enter accepts a proposal
            return
        if key == Qt.Key.Key_Escape:
            if self._points or self._drag:
                self.cancel_drawing()
            else:
                self.select([])
            return
        if key in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            if self._points:
                self._points.pop()
                self.update()
            else:
                self._delete_key()
            return
        arrows = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1), Qt.Key.Key_Down: (0, 1)}
        if key in arrows and self._selected:
            step = 10 if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
            dx, dy = arrows[key]
            anns = self._editable_selected()
            if anns:
                self._emit("Nudge",
                           update=[a.with_(geometry=translate(a.geometry, dx * step, dy * step)) for a in anns])
            return
        super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev) -> None:  # noqa: N802 - Qt override
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = False
            self.setCursor(Qt.CursorShape.ArrowCursor if self._tool == "select" else Qt.CursorShape.CrossCursor)
            return
        super().keyReleaseEvent(ev)

    def _delete_key(self) -> None:
        av = self._active_vertex
        if av is not None and av[0] in self._selected:
            a = self.shapes.anns.get(av[0])
            if a is not None and not a.locked and isinstance(a.geometry, (Polygon, Polyline)):
                g = delete_vertex(a.geometry, av[1], av[2])
                self._active_vertex = None
                if g is not None:
                    self._emit("Delete vertex", update=[a.with_(geometry=g)])
                else:
                    self.notify("A polygon keeps at least 3 vertices" if isinstance(a.geometry, Polygon)
                                else "A polyline keeps at least 2 vertices")
                return
        anns = self._editable_selected()
        if anns:
            self._emit("Delete", delete=[a.id for a in anns])

    # ---- tool overlay ----------------------------------------------------------------------
    def paint_tool_overlay(self, p) -> None:
        d = self._drag
        color = self.shapes.color(self._current_category) if self._current_category is not None else QColor("#ffffff")
        if d is not None and d["kind"] in ("rect", "rubber"):
            r = QRectF(self.map_from_image(d["x0"], d["y0"]), self.map_from_image(d["x"], d["y"])).normalized()
            if d["kind"] == "rubber":
                p.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine))
                p.setBrush(QColor(120, 170, 255, 40))
            else:
                p.setPen(QPen(color, 2, Qt.PenStyle.DashLine if self._tool == "grabcut" else Qt.PenStyle.SolidLine))
                p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r)
        if self._points:
            pts = [self.map_from_image(x, y) for x, y in self._points]
            if self._cursor is not None:
                pts.append(self.map_from_image(*self._cursor))
            p.setPen(QPen(color, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPolyline(QPolygonF(pts))
            p.setBrush(QColor(255, 255, 255))
            for i, q in enumerate(pts[: len(self._points)]):
                rad = 5 if i == 0 and self._tool == "polygon" else 3
                p.drawEllipse(q, rad, rad)
        if self._tool in ("brush", "eraser"):
            rad = self._brush_radius * self._scale
            if d is not None and d["kind"] == "stroke":
                path = QPainterPath()
                pts = [self.map_from_image(x, y) for x, y in d["points"]]
                path.moveTo(pts[0])
                for q in pts[1:]:
                    path.lineTo(q)
                c = QColor(0, 0, 0) if self._tool == "eraser" else QColor(color)
                c.setAlphaF(0.5)
                pen = QPen(c, max(1.0, 2 * rad), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                           Qt.PenJoinStyle.RoundJoin)
                p.setPen(pen)
                p.setBrush(Qt.BrushStyle.NoBrush)
                if len(pts) == 1:
                    p.setBrush(c)
                    p.setPen(Qt.PenStyle.NoPen)
                    p.drawEllipse(pts[0], rad, rad)
                else:
                    p.drawPath(path)
            if self._cursor is not None:
                p.setPen(QPen(QColor(255, 255, 255), 1))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawEllipse(self.map_from_image(*self._cursor), rad, rad)

"""The bulk shape layer: thousands of annotations drawn fast, without one QGraphicsItem each.

Vector shapes (boxes, polygons, polylines) live in one array of vertices (image px, float64
[M, 2]) with per-ring offsets; a frame transforms all vertices at once with numpy into a
fixed-point int32 buffer whose per-ring views were sliced once, culls by a vectorised bounds test,
and rasterises with OpenCV (fillPoly/polylines, C speed) straight into a premultiplied ARGB
buffer wrapped as a QImage. At low zoom (scale <= 0.5), where most shapes are visible, the layer is
drawn from a cached raster of all shapes at scale 1/2, 1/4, ... ("shape pyramid"), refreshed
only in the region of an edit. Masks are decoded once into a coloured QImage of their bounding box.
Points are drawn as small discs in screen space (never scaled).
"""
from __future__ import annotations

import logging
import math
from itertools import chain

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPainterPath, QPen, QPolygonF, QTransform

from engine.annotations.geometry import bounds, decode_mask
from engine.annotations.model import Annotation, Box, Category, MaskRLE, Point, Polygon, Polyline
from engine.data.truth import is_proposal

log = logging.getLogger(__name__)

SHIFT = 4  # fixed-point fraction bits for cv2 drawing (sub-pixel vertex positions)
RASTER_MAX_SIDE = 4096  # shape pyramid levels larger than this are not kept
RASTER_MAX_SCALE = 0.5  # at or below this zoom the shape pyramid is used
POINT_RADIUS = 4  # screen px
MAX_DAMAGE = 256  # changed regions remembered between two frames; more: the next frame is drawn whole
BUILD_CHUNK = 1500  # shapes rasterised per idle step when building a shape-pyramid level (~5-10 ms)


def rings_of(g) -> list[np.ndarray]:
    """Vertex rings of a vector geometry, float64 [K, 2] each (exterior first)."""
    if isinstance(g, Box):
        return [np.array([(g.x1, g.y1), (g.x2, g.y1), (g.x2, g.y2), (g.x1, g.y2)], np.float64)]
    if isinstance(g, Polygon):
        return ([np.asarray(g.points, np.float64).reshape(-1, 2)]
                + [np.asarray(h, np.float64).reshape(-1, 2) for h in g.holes])
    if isinstance(g, Polyline):
        return [np.asarray(g.points, np.float64).reshape(-1, 2)]
    return []


def premultiplied(color: QColor, alpha: float) -> tuple[int, int, int, int]:
    """BGRA tuple for cv2 on a Format_ARGB32_Premultiplied buffer (little-endian byte order)."""
    a = max(0.0, min(1.0, alpha))
    return (int(color.blue() * a), int(color.green() * a), int(color.red() * a), int(255 * a))


class ShapeLayer:
    """Annotations of one image, indexed for drawing and hit-testing. Qt-light, GUI thread only."""

    def __init__(self):
        self.anns: dict[int, Annotation] = {}
        self.colors: dict[int, QColor] = {}
        self.names: dict[int, str] = {}
        self.proposal_ids: list[int] = []  # drawn dashed with their score, above the bulk layer
        self.hidden_categories: set[int] = set()
        self.excluded: set[int] = set()  # drawn elsewhere (being dragged)
        self.opacity = 0.35
        self.fill = True
        self.image_size = (0, 0)  # (w, h)
        self.version = 0  # bumps on any change that alters the picture
        self._mask_images: dict[int, tuple[QImage, tuple[int, int]]] = {}
        self._rasters: dict[float, np.ndarray] = {}  # complete shape-pyramid levels
        self._building: dict[float, list] = {}  # level -> [buffer, next shape index]
        self._dirty = True
        self._vec_index: dict[int, int] | None = None
        self._vector_frame: tuple[np.ndarray, QImage] | None = None  # last direct render, reused
        self._vector_key = None
        # Image regions changed since the canvas last took them (None: everything), so an Accept
        # among 1,000 proposals redraws a few rectangles of the frame, not all of it.
        self._damage: list | None = None
        self._ptable: dict | None = None  # proposals' arrays for culling (see _proposal_table)
        self._proposal_rects: dict[int, QRectF] = {}  # box proposals in image px, drawn under the view transform
        self._tagged: dict[int, tuple] = {}  # the tags the last frame drew (see _tag_keys)
        self._tag_font: QFont | None = None
        self._tag_cache: tuple | None = None  # ((version, view), shown rows, tagged rows, their _tag_keys)
        self._shown_cache: tuple | None = None  # (version, vector shapes drawn)
        self._tag_extent: tuple[tuple, tuple[int, int]] | None = None  # (names, (width, height) widget px)

    # ---- content -------------------------------------------------------------------------
    def set_annotations(self, anns: list[Annotation]) -> None:
        self.anns = {a.id: a for a in anns}
        self._mask_images.clear()
        self._changed()

    def apply_changes(self, added, updated, deleted_ids) -> list[tuple[float, float, float, float]]:
        """Incremental update; returns image-px regions that changed (old and new bounds)."""
        if not added and not deleted_ids and self._restyle_only(updated):
            return [bounds(a.geometry) for a in updated]
        regions = []
        for i in deleted_ids:
            old = self.anns.pop(i, None)
            self._mask_images.pop(i, None)
            if old is not None:
                regions.append(bounds(old.geometry))
        for a in list(added) + list(updated):
            old = self.anns.get(a.id)
            if old is not None:
                regions.append(bounds(old.geometry))
            self._mask_images.pop(a.id, None)
            self.anns[a.id] = a
            regions.append(bounds(a.geometry))
        self._changed(regions)
        return regions

    def _restyle_only(self, updated) -> bool:
        """Annotations whose shape and category stay (accepting a proposal, hiding a shape) change
        how they are drawn, not the vertex arrays: update those in place instead of rebuilding
        them all (1,000 shapes: ~10 ms a change). False when that does not apply."""
        if self._dirty or not updated:
            return False
        for a in updated:
            old = self.anns.get(a.id)
            if old is None or old.geometry != a.geometry or old.category_id != a.category_id:
                return False
        if self._vec_index is None:
            self._vec_index = {int(i): k for k, i in enumerate(self.vec_ids.tolist())}
        regions = []
        for a in updated:
            self.anns[a.id] = a
            self._mask_images.pop(a.id, None)
            k = self._vec_index.get(a.id)
            if k is not None:
                self.vec_hidden[k] = a.hidden or is_proposal(a)
            regions.append(bounds(a.geometry))
        no_longer = {a.id for a in updated if not is_proposal(a) and a.id in self._proposal_set}
        if no_longer:
            self.proposal_ids = [i for i in self.proposal_ids if i not in no_longer]
            self._proposal_set -= no_longer
        for a in updated:
            if is_proposal(a) and a.id not in self._proposal_set:
                self.proposal_ids.append(a.id)
                self._proposal_set.add(a.id)
        t = self._ptable
        if t is not None and all(a.id in no_longer and a.kind != "mask" for a in updated):
            # proposals accepted: drop their rows (a mask's box may get a tag back: rebuild then)
            keep = ~np.isin(t["ids"], list(no_longer))
            self._ptable = {k: v[keep] for k, v in t.items()}
        else:
            self._ptable = None
        self._bump(regions)
        self._refresh_rasters(regions)
        return True

    def set_colors(self, categories: list[Category]) -> None:
        self.colors = {c.id: QColor(c.color) for c in categories}
        self.names = {c.id: c.name for c in categories}
        self._mask_images.clear()
        self._changed()

    def color(self, category_id: int) -> QColor:
        return self.colors.get(category_id, QColor("#ff00ff"))

    def set_style(self, opacity: float | None = None, fill: bool | None = None,
                  hidden_categories: set[int] | None = None) -> None:
        if opacity is not None:
            self.opacity = float(opacity)
        if fill is not None:
            self.fill = bool(fill)
        if hidden_categories is not None:
            self.hidden_categories = set(hidden_categories)
        self._changed()

    def set_excluded(self, ids) -> None:
        ids = set(ids)
        if ids == self.excluded:
            return
        regions = [bounds(self.anns[i].geometry) for i in ids ^ self.excluded if i in self.anns]
        self.excluded = ids
        self._bump(regions)
        self._refresh_rasters(regions)

    def _bump(self, regions) -> None:
        """The picture changed in ``regions`` (image px xyxy; None: anywhere)."""
        self.version += 1
        if regions is None or (self._damage is not None and len(self._damage) + len(regions) > MAX_DAMAGE):
            self._damage = None  # nobody drew for a while (a hidden canvas): all of it then
        elif self._damage is not None:
            self._damage.extend(regions)

    def peek_damage(self) -> list | None:
        """The image regions changed since the last take_damage() (None: everything), kept."""
        return None if self._damage is None else list(self._damage)

    def take_damage(self) -> list | None:
        """The image regions changed since the last call (None: everything), forgotten from here on."""
        damage, self._damage = self._damage, []
        return damage

    def _changed(self, regions=None) -> None:
        self._bump(regions)
        self._dirty = True
        self._ptable = None
        if regions is None:
            self._rasters.clear()
            self._building.clear()
        else:
            self._rebuild()
            self._refresh_rasters(regions)

    def drawable(self, a: Annotation) -> bool:
        return not a.hidden and a.category_id not in self.hidden_categories and a.id not in self.excluded

    # ---- arrays --------------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Concatenate all vector rings; O(total vertices), done once per content change."""
        if not self._dirty:
            return
        vec_ids, ring_starts, ring_owner, closed, rings_py = [], [0], [], [], []
        point_ids, point_xy, mask_ids, proposal_ids = [], [], [], []
        total = 0
        for a in self.anns.values():
            g = a.geometry
            if is_proposal(a):
                proposal_ids.append(a.id)
            t = type(g)
            # plain tuples here, one numpy conversion for all vertices below (10k shapes: ~20 ms
            # instead of ~200 ms with an array per shape)
            if t is Polygon:
                rs, is_closed = ((g.points,) + tuple(g.holes)) if g.holes else (g.points,), True
            elif t is Box:
                rs, is_closed = (((g.x1, g.y1), (g.x2, g.y1), (g.x2, g.y2), (g.x1, g.y2)),), True
            elif t is Polyline:
                rs, is_closed = (g.points,), False
            elif t is Point:
                point_ids.append(a.id)
                point_xy.append((g.x, g.y))
                continue
            else:
                mask_ids.append(a.id)
                continue
            if not len(rs[0]):
                continue
            idx = len(vec_ids)
            vec_ids.append(a.id)
            for r in rs:
                if not len(r):
                    continue
                rings_py.append(r)
                total += len(r)
                ring_starts.append(total)
                ring_owner.append(idx)
                closed.append(is_closed)
        self.vec_ids = np.asarray(vec_ids, np.int64)
        self.vec_cat = np.asarray([self.anns[i].category_id for i in vec_ids], np.int64)
        flat = chain.from_iterable(chain.from_iterable(rings_py))
        self.pts = np.fromiter(flat, np.float64, count=2 * total).reshape(total, 2)
        self.ring_owner = np.asarray(ring_owner, np.int64)
        self.ring_closed = np.asarray(closed, bool)
        starts = np.asarray(ring_starts, np.int64)
        if len(vec_ids):
            first = np.full(len(vec_ids), -1, np.int64)
            # rings of one shape are consecutive; the exterior ring is the first
            first[self.ring_owner[::-1]] = np.arange(len(ring_owner))[::-1]
            mins = np.minimum.reduceat(self.pts, starts[:-1], axis=0)
            maxs = np.maximum.reduceat(self.pts, starts[:-1], axis=0)
            self.vec_bounds = np.concatenate([mins[first], maxs[first]], axis=1)
        else:
            self.vec_bounds = np.zeros((0, 4))
        self._fbuf = np.empty_like(self.pts)
        self._ibuf = np.empty(self.pts.shape, np.int32)
        self._ring_views = [self._ibuf[a:b] for a, b in zip(starts[:-1], starts[1:])]
        self._ring_starts = starts.tolist()
        # proposals stay in the arrays (hit testing) but the bulk layer leaves them to paint_proposals
        self.vec_hidden = np.asarray([self.anns[i].hidden or is_proposal(self.anns[i]) for i in vec_ids], bool)
        self._shape_rings = [[] for _ in vec_ids]
        for r, owner in enumerate(ring_owner):
            self._shape_rings[owner].append(r)
        self._shape_views = [[self._ring_views[r] for r in rs] for rs in self._shape_rings]
        self._shape_closed = [closed[rs[0]] for rs in self._shape_rings]
        self.point_ids = point_ids
        self.point_xy = np.asarray(point_xy, np.float64).reshape(-1, 2)
        self.mask_ids = mask_ids
        self.proposal_ids = proposal_ids
        self._proposal_set = set(proposal_ids)
        self._ptable = None
        self._proposal_rects = {}
        self._vec_index = None  # id -> row of the vertex arrays, made when first needed
        self._dirty = False
        for job in self._building.values():  # shape order changed: start pending levels again
            job[0][...] = 0
            job[1] = 0

    # ---- drawing -------------------------------------------------------------------------
    def render_vectors(self, buf: np.ndarray, scale: float, ox: float, oy: float,
                       view: tuple[float, float, float, float], antialias: bool | None = None,
                       only: tuple[int, int] | None = None) -> int:
        """Draw visible vector shapes into `buf` (uint8 [H, W, 4] premultiplied BGRA).

        widget = image * scale + (ox, oy); `view` is the image-px rect to cull against; `only`
        limits drawing to shapes [start, end) of the layer's order. Returns how many were drawn.
        """
        self._rebuild()
        if len(self.vec_ids) == 0:
            return 0
        b = self.vec_bounds
        x0, y0, x1, y1 = view
        vis = (b[:, 2] >= x0) & (b[:, 0] <= x1) & (b[:, 3] >= y0) & (b[:, 1] <= y1)
        if only is not None:
            vis[: only[0]] = False
            vis[only[1]:] = False
        vis &= self._vector_shown()
        shown = np.flatnonzero(vis)
        if len(shown) == 0:
            return 0
        f = float(1 << SHIFT)
        a, o = scale * f, np.array([ox * f, oy * f])
        if len(shown) * 5 < len(self.vec_ids):
            # few shapes in view (zoomed in): transform only their rings
            starts = self._ring_starts
            for k in shown.tolist():
                for r in self._shape_rings[k]:
                    lo, hi = starts[r], starts[r + 1]
                    self._ibuf[lo:hi] = np.rint(np.clip(self.pts[lo:hi] * a + o, -2**30, 2**30))
        else:
            np.multiply(self.pts, a, out=self._fbuf)
            self._fbuf += o
            np.clip(self._fbuf, -2**30, 2**30, out=self._fbuf)
            np.rint(self._fbuf, out=self._fbuf)
            self._ibuf[...] = self._fbuf
        if antialias is None:
            antialias = len(shown) < 3000
        line = cv2.LINE_AA if antialias else cv2.LINE_8
        shape_views, shape_closed = self._shape_views, self._shape_closed
        cats = self.vec_cat[shown]
        fill = cv2.fillPoly if self.fill else None
        for cat in np.unique(cats).tolist():
            members = shown[cats == cat].tolist()
            color = self.color(int(cat))
            fill_col = premultiplied(color, self.opacity)
            line_col = premultiplied(color, 1.0)
            closed_k = [k for k in members if shape_closed[k]]
            if fill is not None:
                for k in closed_k:
                    # one call per shape: holes cut out by cv2's even-odd fill, overlaps stay filled
                    fill(buf, shape_views[k], fill_col, cv2.LINE_8, SHIFT)
            if closed_k:
                cv2.polylines(buf, list(chain.from_iterable(shape_views[k] for k in closed_k)), True,
                              line_col, 1, line, SHIFT)
            if len(closed_k) < len(members):
                open_rings = [shape_views[k][0] for k in members if not shape_closed[k]]
                cv2.polylines(buf, open_rings, False, line_col, 2, line, SHIFT)
        return len(shown)

    def _vector_shown(self) -> np.ndarray:
        """Which vector shapes the bulk layer draws, wherever they are (kept per version: a frame
        redrawn in a few small rects asks for it once per rect)."""
        if self._shown_cache is None or self._shown_cache[0] != self.version:
            shown = ~self.vec_hidden
            if self.hidden_categories:
                shown &= ~np.isin(self.vec_cat, list(self.hidden_categories))
            if self.excluded:
                shown &= ~np.isin(self.vec_ids, list(self.excluded))
            self._shown_cache = (self.version, shown)
        return self._shown_cache[1]

    def _raster_scale(self, scale: float) -> float | None:
        w, h = self.image_size
        if scale > RASTER_MAX_SCALE or w <= 0 or h <= 0:
            return None
        r = RASTER_MAX_SCALE
        while r / 2 >= scale:
            r /= 2
        while max(w, h) * r > RASTER_MAX_SIDE:
            r /= 2
            if r < scale:
                return None  # the raster would be coarser than the screen
        return r

    def _raster(self, r: float) -> np.ndarray | None:
        """The complete shape-pyramid level r, or None while it is still being built.

        Small layers are rasterised at once; big ones in chunks by build_step() in idle time
        (the canvas drives it), so crossing into a new zoom band never stalls a frame.
        """
        buf = self._rasters.get(r)
        if buf is not None:
            return buf
        if r not in self._building:
            w, h = self.image_size
            self._building[r] = [np.zeros((math.ceil(h * r), math.ceil(w * r), 4), np.uint8), 0]
        if len(self.vec_ids) <= BUILD_CHUNK:
            while r in self._building:
                self.build_step()
            return self._rasters[r]
        return None

    def build_pending(self) -> bool:
        return bool(self._building)

    def build_step(self) -> bool:
        """Rasterise the next BUILD_CHUNK shapes of a pending level; True while work remains."""
        if not self._building:
            return False
        self._rebuild()
        r, job = next(iter(self._building.items()))
        buf, start = job
        end = min(len(self.vec_ids), start + BUILD_CHUNK)
        everything = (-1e18, -1e18, 1e18, 1e18)
        self.render_vectors(buf, r, 0.0, 0.0, everything, antialias=False, only=(start, end))
        job[1] = end
        if end >= len(self.vec_ids):
            self._rasters[r] = buf
            del self._building[r]
        return bool(self._building)

    def _refresh_rasters(self, regions) -> None:
        """Redraw only the changed image regions of the cached shape pyramid."""
        if not (self._rasters or self._building) or not regions:
            return
        levels = list(self._rasters.items()) + [(r, job[0]) for r, job in self._building.items()]
        for r, buf in levels:
            H, W = buf.shape[:2]
            for (x0, y0, x1, y1) in regions:
                pad = 3 / r  # line width and rounding around the bounds
                rx0, ry0 = max(0, int((x0 - pad) * r)), max(0, int((y0 - pad) * r))
                rx1, ry1 = min(W, int(math.ceil((x1 + pad) * r)) + 1), min(H, int(math.ceil((y1 + pad) * r)) + 1)
                if rx0 >= rx1 or ry0 >= ry1:
                    continue
                sub = buf[ry0:ry1, rx0:rx1]
                sub[...] = 0
                view = (rx0 / r - pad, ry0 / r - pad, rx1 / r + pad, ry1 / r + pad)
                self.render_vectors(sub, r, -rx0, -ry0, view, antialias=False)

    def paint(self, painter: QPainter, scale: float, ox: float, oy: float, size: tuple[int, int],
              view: tuple[float, float, float, float], smooth: bool = True, dpr: float = 1.0,
              clip: list | None = None) -> None:
        """Draw everything not excluded: masks, vector shapes, points, proposals.

        `size` = target size in device pixels; `dpr` device pixels per widget pixel (HiDPI), the
        bulk layer is rasterised at device resolution. smooth=False trades resampling quality for
        speed (used while the view is moving). `clip`: image-px rects, the only parts to redraw
        (the painter is clipped to them) of a frame drawn before with the same view.
        """
        self._rebuild()
        for i in self.mask_ids:
            a = self.anns[i]
            if self.drawable(a) and i not in self._proposal_set and (clip is None or _meets(bounds(a.geometry), clip)):
                self.paint_mask(painter, a, scale, ox, oy)
        ds, dox, doy = scale * dpr, ox * dpr, oy * dpr  # device-pixel transform
        r = self._raster_scale(ds)
        raster = self._raster(r) if r is not None else None
        if raster is not None:
            for part in ([view] if clip is None else clip):
                self._paint_raster(painter, raster, r, ds, dox, doy, part, smooth, dpr)
        else:
            # The frame is also re-rendered when only the image changes (tiles arriving after an
            # image switch): reuse the rasterised shapes then instead of drawing them again.
            w, h = size
            key = (self.version, ds, dox, doy, w, h, smooth, dpr)
            if self._vector_key != key:
                old = self._vector_frame
                if clip is not None and old is not None and self._vector_key[1:] == key[1:]:
                    self._redraw_vectors(old[0], clip, ds, dox, doy, smooth)
                else:
                    if old is not None and old[0].shape == (h, w, 4):
                        buf = old[0]
                        buf[...] = 0  # clearing touched memory beats faulting in fresh pages each frame
                    else:
                        buf = np.zeros((h, w, 4), np.uint8)
                    self.render_vectors(buf, ds, dox, doy, view, antialias=smooth)
                    img = QImage(buf.data, w, h, buf.strides[0], QImage.Format.Format_ARGB32_Premultiplied)
                    img.setDevicePixelRatio(dpr)
                    self._vector_frame = (buf, img)  # buf keeps img's memory alive
                self._vector_key = key
            painter.drawImage(0, 0, self._vector_frame[1])
        self.paint_points(painter, scale, ox, oy, view if clip is None else _union(clip))
        self.paint_proposals(painter, scale, ox, oy, view, clip)

    def _redraw_vectors(self, buf: np.ndarray, clip: list, ds: float, dox: float, doy: float, smooth: bool) -> None:
        """Render the bulk layer again inside the image-px rects ``clip`` of its frame buffer."""
        H, W = buf.shape[:2]
        for x0, y0, x1, y1 in clip:
            bx0, by0 = max(0, math.floor(x0 * ds + dox)), max(0, math.floor(y0 * ds + doy))
            bx1, by1 = min(W, math.ceil(x1 * ds + dox)), min(H, math.ceil(y1 * ds + doy))
            if bx0 >= bx1 or by0 >= by1:
                continue
            buf[by0:by1, bx0:bx1] = 0
            pad = 3 / ds  # line width and rounding around the rect
            part = ((bx0 - dox) / ds - pad, (by0 - doy) / ds - pad, (bx1 - dox) / ds + pad, (by1 - doy) / ds + pad)
            self.render_vectors(buf[by0:by1, bx0:bx1], ds, dox - bx0, doy - by0, part, antialias=smooth)

    # Tags beyond this many would cover each other (and cost ~35 us each per frame): the best-scoring
    # visible proposals get one, the others keep their dashed outline.
    MAX_PROPOSAL_TAGS = 100
    TAG_POINT_SIZE = 8

    def _proposal_table(self) -> dict:
        """Arrays over ``proposal_ids`` (same order) for culling and choosing tags without a
        Python loop per proposal each frame: ids, bounds [N, 4], category, score, hidden, box
        (a Box), tag (gets a tag: not a box whose object also has a mask proposal)."""
        if self._ptable is None:
            anns = [self.anns[i] for i in self.proposal_ids]
            masked = {a.instance_id for a in anns if a.kind == "mask" and a.instance_id is not None}
            n = len(anns)
            self._ptable = {
                "ids": np.asarray(self.proposal_ids, np.int64),
                "bounds": np.asarray([bounds(a.geometry) for a in anns], np.float64).reshape(n, 4),
                "cat": np.asarray([a.category_id for a in anns], np.int64),
                "score": np.asarray([a.score if a.score is not None else 0.0 for a in anns], np.float64),
                "hidden": np.asarray([a.hidden for a in anns], bool),
                "box": np.asarray([type(a.geometry) is Box for a in anns], bool),
                "tag": np.asarray([not (a.kind == "box" and a.instance_id is not None and a.instance_id in masked)
                                   for a in anns], bool),
            }
        return self._ptable

    def _shown_proposals(self, view) -> np.ndarray:
        """Rows of the proposal table drawn in ``view`` (image px)."""
        t = self._proposal_table()
        b = t["bounds"]
        x0, y0, x1, y1 = view
        vis = (b[:, 2] >= x0) & (b[:, 0] <= x1) & (b[:, 3] >= y0) & (b[:, 1] <= y1) & ~t["hidden"]
        if self.hidden_categories:
            vis &= ~np.isin(t["cat"], list(self.hidden_categories))
        if self.excluded:
            vis &= ~np.isin(t["ids"], list(self.excluded))
        return vis

    def _tag_rows(self, vis: np.ndarray) -> np.ndarray:
        """Rows whose tag is drawn, in drawing order: all tagged visible ones in table order, or
        the MAX_PROPOSAL_TAGS best scores (best first) when there are more."""
        t = self._proposal_table()
        rows = np.flatnonzero(vis & t["tag"])
        if len(rows) > self.MAX_PROPOSAL_TAGS:
            rows = rows[np.argsort(-t["score"][rows], kind="stable")[: self.MAX_PROPOSAL_TAGS]]
        return rows

    def _tag_choice(self, view) -> tuple[np.ndarray, np.ndarray]:
        """(shown rows, tagged rows) for ``view``; kept for the frame that follows tag_changes()."""
        key = (self.version, tuple(view))
        if self._tag_cache is None or self._tag_cache[0] != key:
            vis = self._shown_proposals(view)
            rows = self._tag_rows(vis)
            self._tag_cache = (key, vis, rows, self._tag_keys(rows))
        return self._tag_cache[1].copy(), self._tag_cache[2]

    def _tag_keys(self, rows: np.ndarray) -> dict[int, tuple]:
        """What each tag of ``rows`` shows and where: id -> (x, y of its box's corner, category, score)."""
        t = self._proposal_table()
        b, cats, scores = t["bounds"][rows], t["cat"][rows], t["score"][rows]
        return {i: (float(b[k, 0]), float(b[k, 1]), int(cats[k]), float(scores[k]))
                for k, i in enumerate(t["ids"][rows].tolist())}

    def tag_changes(self, view) -> list[tuple[float, float]]:
        """Image-px corners of the tags that appear, go or change if the layer is drawn now in
        ``view`` (accepting the best proposal gives the next one its tag): damage beyond the
        changed shapes. A tag spans ``tag_extent()`` right of and above its corner."""
        if not self.proposal_ids and not self._tagged:
            return []
        self._rebuild()
        new = self._tag_cache[3] if self.proposal_ids and self._tag_choice(view) else {}
        old = self._tagged
        return ([k[:2] for i, k in old.items() if new.get(i) != k]
                + [k[:2] for i, k in new.items() if old.get(i) != k])

    def _tag_painter_font(self, painter: QPainter) -> QFont:
        if self._tag_font is None:
            self._tag_font = QFont(painter.font().family(), self.TAG_POINT_SIZE)
        return self._tag_font

    def tag_extent(self) -> tuple[int, int]:
        """(width, height) in widget px that a proposal's tag may take right of and above its
        top-left corner (the longest category name with a score)."""
        names = tuple(sorted(self.names.values()))
        if self._tag_extent is None or self._tag_extent[0] != names:
            fm = QFontMetrics(self._tag_font or QFont(QFont().family(), self.TAG_POINT_SIZE))
            width = max([fm.horizontalAdvance(f"{n} 0.00") for n in names + ("?",)]) + 8
            self._tag_extent = (names, (width, fm.height() + 4))
        return self._tag_extent[1]

    def paint_proposals(self, painter: QPainter, scale: float, ox: float, oy: float, view, clip=None) -> None:
        """Model proposals: a dashed outline in their category's colour, a light fill and a tag
        with the category and score, so they never look like accepted labels.

        Boxes are drawn under the view transform with cosmetic pens, one ``drawRects`` call per
        category, from rectangles kept in image px (1,000 proposals: no Python work per box and
        frame). ``clip``: image-px rects, the only parts being redrawn (see :meth:`paint`)."""
        self._tagged = {}
        if not self.proposal_ids:
            return
        t = self._proposal_table()
        vis, tag_rows = self._tag_choice(view)
        self._tagged = self._tag_cache[3]
        if clip is not None:
            # only what meets a redrawn rect: outlines within 3 px of their box, tags above and
            # right of its corner
            b = t["bounds"]
            pad = 3 / scale
            vis &= _meets_any(b[:, 0] - pad, b[:, 1] - pad, b[:, 2] + pad, b[:, 3] + pad, clip)
            tw, th = self.tag_extent()
            tb = b[tag_rows]
            tag_rows = tag_rows[_meets_any(tb[:, 0] - pad, tb[:, 1] - th / scale - pad, tb[:, 0] + tw / scale + pad,
                                           tb[:, 1] + pad, clip)]
        rows = np.flatnonzero(vis)
        if not len(rows) and not len(tag_rows):
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setFont(self._tag_painter_font(painter))
        fm = painter.fontMetrics()
        styles: dict[int, tuple[QColor, QPen, QColor]] = {}

        def style(category_id: int) -> tuple[QColor, QPen, QColor]:
            got = styles.get(category_id)
            if got is None:
                color = self.color(category_id)
                pen = QPen(color, 2, Qt.PenStyle.DashLine)
                pen.setDashPattern([4, 3])
                fill = QColor(color)
                fill.setAlphaF(self.opacity * 0.5 if self.fill else 0.0)
                got = styles[category_id] = (color, pen, fill)
            return got

        ids = t["ids"]
        is_box = t["box"][rows]
        for i in ids[rows[~is_box]].tolist():
            a = self.anns[i]
            g = a.geometry
            color, pen, fill = style(a.category_id)
            if isinstance(g, MaskRLE):
                self.paint_mask(painter, a, scale, ox, oy, extra_opacity=0.7)
            painter.setBrush(fill if isinstance(g, Polygon) else Qt.BrushStyle.NoBrush)
            painter.setPen(pen)
            if isinstance(g, Point):
                painter.drawEllipse(QPointF(g.x * scale + ox, g.y * scale + oy), POINT_RADIUS + 2, POINT_RADIUS + 2)
            elif isinstance(g, MaskRLE):
                bx0, by0, bx1, by1 = bounds(g)
                painter.drawRect(QRectF(bx0 * scale + ox, by0 * scale + oy, (bx1 - bx0) * scale, (by1 - by0) * scale))
            else:
                path = QPainterPath()
                path.setFillRule(Qt.FillRule.OddEvenFill)
                for ring in rings_of(g):
                    path.addPolygon(QPolygonF([QPointF(x * scale + ox, y * scale + oy) for x, y in ring]))
                    if isinstance(g, Polygon):
                        path.closeSubpath()
                painter.drawPath(path)
        box_rows = rows[is_box]
        if len(box_rows):
            painter.save()
            painter.setTransform(QTransform(scale, 0, 0, scale, ox, oy), True)
            cats = t["cat"][box_rows]
            for category_id in np.unique(cats).tolist():
                _, pen, fill = style(category_id)
                pen = QPen(pen)
                pen.setCosmetic(True)  # 2 px dashes on screen at any zoom
                painter.setPen(pen)
                painter.setBrush(fill)
                painter.drawRects([self._proposal_rect(i) for i in ids[box_rows[cats == category_id]].tolist()])
            painter.restore()
        for i in ids[tag_rows].tolist():
            a = self.anns[i]
            color = style(a.category_id)[0]
            bx0, by0, _, _ = bounds(a.geometry)
            score = f" {a.score:.2f}" if a.score is not None else ""
            text = f"{self.names.get(a.category_id, '?')}{score}"
            r = fm.boundingRect(text).adjusted(-2, -1, 2, 1)
            r.moveBottomLeft(QPointF(bx0 * scale + ox, by0 * scale + oy).toPoint())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(color.red(), color.green(), color.blue(), 200))
            painter.drawRect(r)
            painter.setPen(QColor(0, 0, 0) if color.lightness() > 110 else QColor(255, 255, 255))
            painter.drawText(r, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def _proposal_rect(self, ann_id: int) -> QRectF:
        r = self._proposal_rects.get(ann_id)
        if r is None:
            g = self.anns[ann_id].geometry
            r = self._proposal_rects[ann_id] = QRectF(g.x1, g.y1, g.x2 - g.x1, g.y2 - g.y1)
        return r

    @staticmethod
    def _paint_raster(painter, raster, r, scale, ox, oy, view, smooth, dpr=1.0) -> None:
        """Resample the visible part of a shape-pyramid level to the screen with cv2 (SIMD, threads).

        scale/ox/oy are in device pixels.
        """
        H, W = raster.shape[:2]
        x0, y0, x1, y1 = view
        sx0, sy0 = max(0, int(x0 * r)), max(0, int(y0 * r))
        sx1, sy1 = min(W, int(math.ceil(x1 * r)) + 1), min(H, int(math.ceil(y1 * r)) + 1)
        if sx1 <= sx0 or sy1 <= sy0:
            return
        k = scale / r
        tx, ty = int(round(sx0 * k + ox)), int(round(sy0 * k + oy))
        tw, th = max(1, int(round(sx1 * k + ox)) - tx), max(1, int(round(sy1 * k + oy)) - ty)
        interp = cv2.INTER_LINEAR if smooth else cv2.INTER_NEAREST
        scaled = cv2.resize(raster[sy0:sy1, sx0:sx1], (tw, th), interpolation=interp)
        img = QImage(scaled.data, tw, th, scaled.strides[0], QImage.Format.Format_ARGB32_Premultiplied)
        img.setDevicePixelRatio(dpr)
        painter.drawImage(QPointF(tx / dpr, ty / dpr), img)

    def paint_points(self, painter, scale, ox, oy, view) -> None:
        if not len(self.point_ids):
            return
        x0, y0, x1, y1 = view
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for i, (x, y) in zip(self.point_ids, self.point_xy):
            a = self.anns[i]
            if not (x0 <= x <= x1 and y0 <= y <= y1) or not self.drawable(a):
                continue
            c = self.color(a.category_id)
            painter.setPen(QColor(255, 255, 255))
            painter.setBrush(c)
            painter.drawEllipse(QRectF(x * scale + ox - POINT_RADIUS, y * scale + oy - POINT_RADIUS,
                                       2 * POINT_RADIUS, 2 * POINT_RADIUS))
        painter.restore()

    def mask_image(self, a: Annotation) -> tuple[QImage, tuple[int, int]] | None:
        """Coloured QImage of the mask's bounding box and its (x, y) offset; decoded once."""
        if a.id in self._mask_images:
            return self._mask_images[a.id]  # None: known to be empty or undecodable
        try:
            m = decode_mask(a.geometry)
        except Exception as exc:  # noqa: BLE001 - a corrupt RLE: draw nothing for it rather than fail the frame
            log.warning("annotation %s: cannot decode its mask (%s)", a.id, exc)
            self._mask_images[a.id] = None
            return None
        ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if len(ys) == 0:
            self._mask_images[a.id] = None
            return None
        crop = m[ys[0]: ys[-1] + 1, xs[0]: xs[-1] + 1]
        c = self.color(a.category_id)
        rgba = np.zeros(crop.shape + (4,), np.uint8)
        rgba[crop > 0] = (c.blue(), c.green(), c.red(), 255)
        img = QImage(rgba.data, rgba.shape[1], rgba.shape[0], rgba.strides[0],
                     QImage.Format.Format_ARGB32_Premultiplied).copy()
        hit = (img, (int(xs[0]), int(ys[0])))
        self._mask_images[a.id] = hit
        return hit

    def paint_mask(self, painter: QPainter, a: Annotation, scale, ox, oy, extra_opacity: float = 1.0) -> None:
        hit = self.mask_image(a)
        if hit is None:
            return
        img, (mx, my) = hit
        painter.save()
        painter.setOpacity(max(self.opacity if self.fill else 0.3, 0.2) * extra_opacity)
        painter.drawImage(QRectF(mx * scale + ox, my * scale + oy, img.width() * scale, img.height() * scale), img)
        painter.restore()

    # ---- hit testing ---------------------------------------------------------------------
    def hit(self, x: float, y: float, tol: float) -> int | None:
        """Id of the smallest visible shape under image point (x, y); tol in image px."""
        self._rebuild()
        cands = list(self.mask_ids)
        if len(self.vec_ids):
            b = self.vec_bounds
            near = (b[:, 0] - tol <= x) & (b[:, 2] + tol >= x) & (b[:, 1] - tol <= y) & (b[:, 3] + tol >= y)
            cands += self.vec_ids[near].tolist()
        if len(self.point_ids):
            d = np.hypot(self.point_xy[:, 0] - x, self.point_xy[:, 1] - y)
            cands += [self.point_ids[k] for k in np.flatnonzero(d <= 2 * max(tol, 1))]
        best, best_area = None, math.inf
        for i in cands:
            a = self.anns[i]
            if a.hidden or a.category_id in self.hidden_categories:
                continue
            b = bounds(a.geometry)
            if x < b[0] - tol or x > b[2] + tol or y < b[1] - tol or y > b[3] + tol:
                continue
            if isinstance(a.geometry, MaskRLE):
                hit = self.mask_image(a)  # the cached crop, not a fresh decode per click
                if hit is None:
                    continue
                img, (mx, my) = hit
                ix, iy = int(x) - mx, int(y) - my
                if not (0 <= ix < img.width() and 0 <= iy < img.height()) or img.pixelColor(ix, iy).alpha() == 0:
                    continue
            elif not self._inside(a.geometry, x, y, tol):
                continue
            ar = max(b[2] - b[0], 1e-6) * max(b[3] - b[1], 1e-6)
            if ar < best_area:
                best, best_area = a.id, ar
        return best

    def _inside(self, g, x, y, tol) -> bool:
        if isinstance(g, Box):
            return True  # within the (tolerant) bounds test already
        if isinstance(g, Point):
            return (g.x - x) ** 2 + (g.y - y) ** 2 <= max(tol, 1) ** 2 * 4
        if isinstance(g, Polygon):
            ring = np.asarray(g.points, np.float32).reshape(-1, 1, 2)
            return cv2.pointPolygonTest(ring, (float(x), float(y)), True) >= -tol
        if isinstance(g, Polyline):
            return segment_distance(np.asarray(g.points, np.float64), x, y)[0] <= tol
        if isinstance(g, MaskRLE):
            m = decode_mask(g)
            iy, ix = int(y), int(x)
            return 0 <= iy < m.shape[0] and 0 <= ix < m.shape[1] and bool(m[iy, ix])
        return False


def _meets(b, rects) -> bool:
    """Does the xyxy box ``b`` meet any of the xyxy ``rects``?"""
    return any(b[2] >= x0 and b[0] <= x1 and b[3] >= y0 and b[1] <= y1 for x0, y0, x1, y1 in rects)


def _meets_any(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, rects) -> np.ndarray:
    """Which of the boxes (coordinate arrays) meet any of the xyxy ``rects``."""
    out = np.zeros(len(x0), bool)
    for rx0, ry0, rx1, ry1 in rects:
        out |= (x1 >= rx0) & (x0 <= rx1) & (y1 >= ry0) & (y0 <= ry1)
    return out


def _union(rects) -> tuple[float, float, float, float]:
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))


def segment_distance(pts: np.ndarray, x: float, y: float, closed: bool = False) -> tuple[float, int, tuple]:
    """(distance, index of the segment start, nearest point) from (x, y) to a chain of vertices [K, 2]."""
    if len(pts) == 0:
        return math.inf, -1, (x, y)
    if len(pts) == 1:
        return float(math.hypot(pts[0, 0] - x, pts[0, 1] - y)), 0, tuple(pts[0])
    a = pts
    b = np.roll(pts, -1, axis=0) if closed else pts[1:]
    a = a if closed else pts[:-1]
    d = b - a
    ll = (d ** 2).sum(1)
    t = np.clip(((x - a[:, 0]) * d[:, 0] + (y - a[:, 1]) * d[:, 1]) / np.maximum(ll, 1e-12), 0, 1)
    px, py = a[:, 0] + t * d[:, 0], a[:, 1] + t * d[:, 1]
    dist = np.hypot(px - x, py - y)
    k = int(np.argmin(dist))
    return float(dist[k]), k, (float(px[k]), float(py[k]))

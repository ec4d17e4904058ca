"""The image layer: a tiled pyramid (engine.imagery) opened and decoded off the GUI thread.

Painting draws the low-resolution overview under everything, then the tiles of the pyramid level
matching the zoom that are already decoded; missing tiles are requested from a small private
thread pool and the layer repaints when they arrive. Every request carries the layer's generation
number; results of an older image are dropped.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRectF, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPainter

from engine.annotations.errors import BadInput
from engine.imagery import ImagePyramid

MAX_QIMAGE_TILES = 96  # 512 px RGB32 tiles: ~100 MB, a 4K screen's worth twice over
PYRAMID_LRU_TILES = 32  # the pyramid's own numpy tile cache; the QImage cache above is the main one


def rgb_to_qimage(arr: np.ndarray) -> QImage:
    """uint8 RGB [H, W, 3] -> an owning QImage (safe to create on a worker thread)."""
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    img = QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888)
    # RGB32 is what the raster engine blends without a per-draw conversion (3x faster tiles)
    return img.convertToFormat(QImage.Format.Format_RGB32)


class _Signals(QObject):
    opened = Signal(int, object, object)  # generation, pyramid, overview QImage | None
    ready = Signal(int)
    failed = Signal(int, str)
    tile = Signal(int, object, object, bool)  # generation, key, QImage, exact


class _OpenJob(QRunnable):
    def __init__(self, layer: "ImageLayer", gen: int, path: Path, cache_dir):
        super().__init__()
        self.layer, self.gen, self.path, self.cache_dir = layer, gen, path, cache_dir
        self.signals = layer._signals

    def run(self):
        stale = lambda: self.layer._gen != self.gen  # noqa: E731 - a newer image was loaded
        try:
            pyr = ImagePyramid(self.path, cache_dir=self.cache_dir, max_tiles=PYRAMID_LRU_TILES)
            ov = rgb_to_qimage(pyr.overview) if pyr.overview is not None else None
            if ov is not None:  # something to show while the rest decodes
                self.signals.opened.emit(self.gen, pyr, ov)
            if stale():
                pyr.close()
                return
            pyr.prepare(should_stop=stale)
            if stale():
                return
            if ov is None:
                self.signals.opened.emit(self.gen, pyr, rgb_to_qimage(pyr.overview))
            nx, ny = pyr.tile_grid(0)
            if nx * ny <= 4:
                # small image (the common case): send its tiles now, saving a round trip per image
                for level in range(len(pyr.levels)):
                    gx, gy = pyr.tile_grid(level)
                    for key in [(level, tx, ty) for ty in range(gy) for tx in range(gx)]:
                        arr, exact = pyr.tile(*key)
                        self.signals.tile.emit(self.gen, key, rgb_to_qimage(arr), exact)
            self.signals.ready.emit(self.gen)
        except BadInput as exc:
            self.signals.failed.emit(self.gen, f"Cannot show {exc.problem.file}: {exc.problem.message}")
        except MemoryError:
            self.signals.failed.emit(self.gen, f"Cannot show {self.path}: not enough memory to decode it")
        except Exception as exc:  # noqa: BLE001 - a viewer must never crash on a bad file
            self.signals.failed.emit(self.gen, f"Cannot show {self.path}: {exc}")


class _TileJob(QRunnable):
    def __init__(self, layer: "ImageLayer", gen: int, pyr: ImagePyramid, keys: list):
        super().__init__()
        self.layer, self.gen, self.pyr, self.keys = layer, gen, pyr, keys

    def run(self):
        for key in self.keys:
            if self.layer._gen != self.gen:
                return
            try:
                res = self.pyr.tile(*key)
            except Exception:  # noqa: BLE001 - a viewer must never crash on a bad file
                res = None  # closed or unreadable region: the overview stays visible there
            if res is None:
                self.layer._signals.tile.emit(self.gen, key, None, False)
                continue
            arr, exact = res
            self.layer._signals.tile.emit(self.gen, key, rgb_to_qimage(arr), exact)


class ImageLayer(QObject):
    """Owns the pyramid of the current image and a cache of tile QImages. GUI thread API."""

    changed = Signal()
    failed = Signal(str)
    loaded = Signal()  # all levels decoded/built

    def __init__(self, parent=None):
        super().__init__(parent)
        self._signals = _Signals()
        self._signals.opened.connect(self._on_opened)
        self._signals.ready.connect(self._on_ready)
        self._signals.failed.connect(self._on_failed)
        self._signals.tile.connect(self._on_tile)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.pyramid: ImagePyramid | None = None
        self.overview: QImage | None = None
        self.error: str = ""
        self.ready = False
        self.version = 0
        self.cache_dir = None
        self._gen = 0
        self._tiles: OrderedDict = OrderedDict()  # key -> (QImage, exact)
        self._pending: set = set()

    def load(self, path: Path) -> None:
        self._gen += 1
        if self.pyramid is not None:
            self.pyramid.close()
        self.pyramid, self.overview, self.error, self.ready = None, None, "", False
        self._tiles.clear()
        self._pending.clear()
        self.version += 1
        self.pool.start(_OpenJob(self, self._gen, Path(path), self.cache_dir))

    def clear(self) -> None:
        self._gen += 1
        if self.pyramid is not None:
            self.pyramid.close()
        self.pyramid, self.overview, self.error, self.ready = None, None, "", False
        self._tiles.clear()
        self._pending.clear()
        self.version += 1

    def wait(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)

    # ---- results from workers --------------------------------------------------------------
    def _on_opened(self, gen, pyr, overview) -> None:
        if gen != self._gen:
            if pyr is not self.pyramid:
                pyr.close()
            return
        self.pyramid = pyr
        if overview is not None:
            self.overview = overview
        self.version += 1
        self.changed.emit()

    def _on_ready(self, gen) -> None:
        if gen != self._gen:
            return
        self.ready = True
        # approximate tiles were strided samples; the built levels replace them
        for key in [k for k, (_, exact) in self._tiles.items() if not exact]:
            del self._tiles[key]
        self.version += 1
        self.loaded.emit()
        self.changed.emit()

    def _on_failed(self, gen, message) -> None:
        if gen != self._gen:
            return
        self.error = message
        self.version += 1
        self.failed.emit(message)
        self.changed.emit()

    def _on_tile(self, gen, key, image, exact) -> None:
        if gen != self._gen:
            return
        self._pending.discard(key)
        if image is None:
            return
        self._tiles[key] = (image, exact)
        while len(self._tiles) > MAX_QIMAGE_TILES:
            self._tiles.popitem(last=False)
        self.version += 1
        self.changed.emit()

    # ---- painting --------------------------------------------------------------------------
    def paint(self, painter: QPainter, scale: float, ox: float, oy: float,
              view: tuple[float, float, float, float], smooth: bool = True, dpr: float = 1.0) -> None:
        """Draw what is available for the image-px rect `view`; request missing tiles.

        The pyramid level matches scale * dpr (device pixels per image pixel).

        smooth=False draws resampled tiles nearest-neighbour (fast, for a moving view).
        """
        pyr = self.pyramid
        if pyr is None:
            return
        painter.save()
        # magnified pixels stay sharp squares: annotators zoom in to see exact pixel edges
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth and scale * dpr < 1.0)
        level = pyr.level_for_scale(scale * dpr)
        fx, fy = pyr.level_scale(level)
        t = pyr.tile_size
        x0, y0, x1, y1 = view
        nx, ny = pyr.tile_grid(level)
        tx0, ty0 = max(0, int(x0 / fx) // t), max(0, int(y0 / fy) // t)
        tx1, ty1 = min(nx - 1, int(math.ceil(x1 / fx)) // t), min(ny - 1, int(math.ceil(y1 / fy)) // t)
        missing, draw = [], []
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                key = (level, tx, ty)
                hit = self._tiles.get(key)
                if hit is None:
                    if key not in self._pending:
                        missing.append(key)
                    continue
                self._tiles.move_to_end(key)
                draw.append((tx, ty, hit[0]))
        if (missing or len(draw) < (tx1 - tx0 + 1) * (ty1 - ty0 + 1)) and self.overview is not None:
            self._paint_overview(painter, pyr, scale, ox, oy, view)
        for tx, ty, img in draw:
            rx0, ry0, rx1, ry1 = pyr.tile_rect(level, tx, ty)
            painter.drawImage(QRectF(rx0 * scale + ox, ry0 * scale + oy, (rx1 - rx0) * scale,
                                     (ry1 - ry0) * scale), img)
        painter.restore()
        if missing:
            self._pending.update(missing)
            # batches of a few tiles: fewer runnables, still fine-grained enough to show progress
            for i in range(0, len(missing), 4):
                self.pool.start(_TileJob(self, self._gen, pyr, missing[i: i + 4]))

    def _paint_overview(self, painter, pyr, scale, ox, oy, view) -> None:
        """The low-resolution overview under missing tiles; only its visible part is resampled."""
        ov = self.overview
        kx, ky = ov.width() / pyr.width, ov.height() / pyr.height
        x0, y0 = max(0.0, view[0]), max(0.0, view[1])
        x1, y1 = min(float(pyr.width), view[2]), min(float(pyr.height), view[3])
        if x1 <= x0 or y1 <= y0:
            return
        src = QRectF(x0 * kx, y0 * ky, (x1 - x0) * kx, (y1 - y0) * ky)
        painter.drawImage(QRectF(x0 * scale + ox, y0 * scale + oy, (x1 - x0) * scale, (y1 - y0) * scale), ov, src)

    def pending_tiles(self) -> int:
        return len(self._pending)

    def read_region(self, x0, y0, x1, y1):
        """Full-resolution uint8 RGB of a region or None (call from any thread)."""
        pyr = self.pyramid
        return None if pyr is None else pyr.read_region(x0, y0, x1, y1)

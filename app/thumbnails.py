"""Thumbnails made off the GUI thread.

A QThreadPool worker reads the image (engine.annotations.imageio), scales it to fit
THUMB_SIZE px with OpenCV's area filter and hands back a QImage through a queued signal.
QImage (unlike QPixmap) may be built on any thread. Requests are de-duplicated, results kept
in a bounded LRU cache, and `shutdown()` drops queued work and waits for running workers so
no thread outlives the window.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

THUMB_SIZE = 96  # px, longest side
CACHE_SIZE = 3000  # thumbnails kept (~30 KB each)
MAX_SOURCE_PIXELS = 120_000_000  # decoded pixels a thumbnail may cost (~360 MB RGB) before we give up


def make_thumbnail(path: Path, size: int = THUMB_SIZE) -> QImage:
    """Read an image file and scale it so its longest side is at most `size` px. Raises BadInput.

    8-bit images go through Pillow, whose JPEG `draft` mode decodes at 1/2..1/8 scale, so a
    big photo never needs its full-size pixels; other data (16-bit, float TIFF...) is read by
    engine.annotations.imageio, which stretches it to 8 bits.
    """
    from PIL import Image

    from engine.annotations.errors import BadInput
    from engine.annotations.imageio import probe_image, read_image_rgb

    w, h = probe_image(path)  # missing files, unreadable headers, decompression bombs
    rgb = None
    try:
        with Image.open(path) as im:
            if im.mode in ("RGB", "RGBA", "L", "LA", "P", "CMYK", "YCbCr"):
                im.draft("RGB", (size, size))
                if im.size[0] * im.size[1] <= MAX_SOURCE_PIXELS:
                    im = im.convert("RGB")
                    im.thumbnail((size, size), Image.Resampling.BOX)
                    rgb = np.asarray(im)
    except Exception:  # noqa: BLE001 - fall back to the engine reader below
        rgb = None
    if rgb is None:
        if w * h > MAX_SOURCE_PIXELS:
            raise BadInput(str(path), "image", f"{w}x{h} is too large to decode for a thumbnail")
        _refuse_complex_tiff(path)
        rgb = read_image_rgb(path)
        scale = size / max(rgb.shape[:2])
        if scale < 1:
            import cv2

            rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    # copy(): the QImage must own its pixels once the numpy buffer goes away
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _refuse_complex_tiff(path: Path) -> None:
    """The canvas refuses complex/structured pixels (engine.imagery); so does the thumbnail, rather
    than showing a picture of the real part only."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return
    from engine.imagery.pyramid import check_pixel_type

    try:
        import tifffile

        with tifffile.TiffFile(str(path)) as tf:
            dtype = tf.series[0].dtype
    except Exception:  # noqa: BLE001 - an unreadable TIFF is reported by the reader itself
        return
    check_pixel_type(path, dtype)


class _Signals(QObject):
    done = Signal(int, QImage)
    failed = Signal(int, str)


class _Job(QRunnable):
    def __init__(self, key: int, path: Path, signals: _Signals):
        super().__init__()
        self.key, self.path, self.signals = key, path, signals

    def run(self) -> None:
        try:
            img = make_thumbnail(self.path)
        except Exception as exc:  # noqa: BLE001 - any bad file becomes a "failed" badge, never a crash
            self.signals.failed.emit(self.key, str(exc))
        else:
            self.signals.done.emit(self.key, img)


class ThumbnailLoader(QObject):
    """`request(key, path)`; `loaded(key, QImage)` or `failed(key, message)` arrive on the GUI thread."""

    loaded = Signal(int, QImage)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None, threads: int = 2):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._signals = _Signals(self)  # lives on the GUI thread, so worker emits are queued
        self._signals.done.connect(self._on_done)
        self._signals.failed.connect(self._on_failed)
        self._cache: OrderedDict[int, QImage] = OrderedDict()
        self._errors: dict[int, str] = {}
        self._pending: set[int] = set()
        self.requests = 0  # how many files were sent to workers (tests check laziness with it)
        self._closed = False

    def get(self, key: int) -> QImage | None:
        img = self._cache.get(key)
        if img is not None:
            self._cache.move_to_end(key)
        return img

    def error(self, key: int) -> str | None:
        return self._errors.get(key)

    def request(self, key: int, path: Path) -> None:
        if self._closed or key in self._cache or key in self._pending or key in self._errors:
            return
        self._pending.add(key)
        self.requests += 1
        self.pool.start(_Job(key, Path(path), self._signals))

    def forget(self, key: int) -> None:
        self._cache.pop(key, None)
        self._errors.pop(key, None)

    def _on_done(self, key: int, img: QImage) -> None:
        self._pending.discard(key)
        self._cache[key] = img
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        self.loaded.emit(key, img)

    def _on_failed(self, key: int, message: str) -> None:
        self._pending.discard(key)
        self._errors[key] = message
        self.failed.emit(key, message)

    def cancel_pending(self) -> None:
        """Drop requests that have not started (e.g. rows scrolled away or a new filter)."""
        self.pool.clear()
        self._pending.clear()

    def shutdown(self) -> None:
        self._closed = True
        self.pool.clear()
        self.pool.waitForDone()
        self._pending.clear()

"""A tiled image pyramid for images of any size (up to 40,000 x 40,000 px), 8-bit, 16-bit or float.

Level k is the image halved k times: size (w_k, h_k) with w_k = max(1, w_{k-1} // 2). Each level is
cut into square tiles of `tile_size` px; tile (tx, ty) of level k covers level pixels
[tx*T, min((tx+1)*T, w_k)) x [ty*T, min((ty+1)*T, h_k)). Tiles are uint8 RGB [th, tw, 3].

Opening is staged so a viewer shows something at once:
1. `ImagePyramid(path)`: reads the header and a low-resolution `overview` when that is cheap
   (JPEG reduced decode, strided rows of an uncompressed TIFF); < 1 s even at 40k x 40k.
2. `prepare()`: (slow; call it on a worker thread) decodes what must be decoded and builds levels:
   in memory for ordinary images, streamed to .npy files in `cache_dir` for huge uncompressed
   TIFFs (memory stays bounded by one strip). Until a level is built, `tile()` answers with a
   strided (nearest-neighbour) sample of level 0 and says it is not exact.
16-bit and float data are windowed to 8 bits with the 0.5/99.5 percentiles (`window`) of a sample.
Decoded tiles are kept in an LRU of at most `max_tiles` tiles. Thread-safe for concurrent tile reads.
"""
from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.imageio import probe_image

from .sources import (ArraySource, RawFileSource, TiledTiffSource, npy_source, raw_tiff_source, tiff_overview,
                      write_npy_header)

OVERVIEW_SIDE = 1024  # longest side of the quick overview, px
STRIP_BYTES = 24 << 20  # memory bound of one build strip
QUICK_OVERVIEW_PIXELS = 12_000_000  # JPEGs above this get a reduced-decode overview before the full decode


def check_pixel_type(path: Path, dtype) -> None:
    """BadInput for pixel types with no meaningful grey level (complex, structured, object):
    casting them would show a silently wrong picture (complex -> real drops the imaginary part)."""
    dt = np.dtype(dtype)
    if dt.kind not in "buif":
        what = "complex" if dt.kind == "c" else "non-numeric"
        raise BadInput(str(path), "image", f"{what} pixels ({dt}) cannot be shown; convert the image to "
                       "8/16-bit integers or real floats")


def display_window(sample: np.ndarray) -> tuple[float, float] | None:
    """(lo, hi) for mapping non-8-bit data to 0..255; None for uint8 data."""
    if sample.dtype == np.uint8:
        return None
    d = sample.astype(np.float32, copy=False)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(d, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(d.min()), float(d.max())
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def to_display_rgb(data: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """Raw pixels [H, W] / [H, W, C] -> contiguous uint8 RGB [H, W, 3]."""
    if data.dtype != np.uint8:
        lo, hi = window if window is not None else (0.0, 255.0)
        d = data.astype(np.float32)
        d -= lo
        d *= 255.0 / (hi - lo)
        np.nan_to_num(d, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        data = np.clip(d, 0, 255, out=d).astype(np.uint8)
    if data.ndim == 2:
        data = data[:, :, None]
    c = data.shape[2]
    if c == 1 or c == 2:
        data = np.repeat(data[:, :, :1], 3, axis=2)
    elif c >= 4:
        data = data[:, :, :3]
    return np.ascontiguousarray(data)


class ImagePyramid:
    """See the module docstring. Raises BadInput (naming the file) for missing/unreadable images."""

    def __init__(self, path: Path, cache_dir: Path | None = None, tile_size: int = 512,
                 max_tiles: int = 192, in_memory_pixels: int = 120_000_000):
        self.path = Path(path)
        self.tile_size = int(tile_size)
        self.max_tiles = int(max_tiles)
        self.width, self.height = probe_image(self.path)
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "visionbench-pyramids"
        self.levels: list[tuple[int, int]] = [(self.width, self.height)]
        while max(self.levels[-1]) > self.tile_size:
            w, h = self.levels[-1]
            self.levels.append((max(1, w // 2), max(1, h // 2)))
        self.window: tuple[float, float] | None = None
        self.overview: np.ndarray | None = None  # uint8 RGB, roughly OVERVIEW_SIDE px
        self.ready = False
        self._lock = threading.RLock()
        self._tiles: OrderedDict = OrderedDict()  # (level, tx, ty) -> (array, exact)
        self._built: dict[int, object] = {}  # level -> ArraySource/RawFileSource of uint8 RGB
        self._source = None  # level-0 raw pixels (before windowing)
        self._closed = False
        self._in_memory_pixels = in_memory_pixels
        self._open_quick()

    # ---- opening -------------------------------------------------------------------------
    def _open_quick(self) -> None:
        suffix = self.path.suffix.lower()
        big = self.width * self.height > self._in_memory_pixels
        if suffix in (".tif", ".tiff"):
            try:
                raw = raw_tiff_source(self.path)
            except Exception:  # noqa: BLE001 - an optional faster path; the plain decoder is the fallback
                raw = None
            if raw is not None:
                check_pixel_type(self.path, raw.dtype)
            if raw is not None and (big or self._in_memory_pixels <= 0):
                self._source = raw
                step = max(1, math.ceil(max(self.width, self.height) / OVERVIEW_SIDE))
                sample = raw.region(0, 0, self.width, self.height, step)
                self.window = display_window(sample)
                self.overview = to_display_rgb(sample, self.window)
                return
            if raw is None and (big or self._in_memory_pixels <= 0):
                try:
                    tiled = TiledTiffSource(self.path)
                except Exception:  # noqa: BLE001 - an optional faster path; the plain decoder is the fallback
                    tiled = None
                if tiled is not None:
                    check_pixel_type(self.path, tiled.dtype)
                    # tiles decode on demand; a stored low resolution (pyramidal TIFF) is the overview
                    self._source = tiled
                    try:
                        ov = tiff_overview(self.path, 2 * OVERVIEW_SIDE)
                    except Exception:  # noqa: BLE001 - an optional faster path; the plain decoder is the fallback
                        ov = None
                    if ov is not None:
                        self.window = display_window(ov)
                        self.overview = to_display_rgb(ov, self.window)
                    else:
                        # a representative window from a few tiles near the centre
                        c = tiled.region(self.width // 2 - 512, self.height // 2 - 512,
                                         self.width // 2 + 512, self.height // 2 + 512)
                        self.window = display_window(c)
                    return
        if suffix in (".jpg", ".jpeg") and self.width * self.height > QUICK_OVERVIEW_PIXELS:
            import cv2

            ov = cv2.imread(str(self.path), cv2.IMREAD_REDUCED_COLOR_8)
            if ov is not None:
                self.overview = np.ascontiguousarray(ov[:, :, ::-1])

    def _decode_full(self) -> np.ndarray:
        import cv2

        data = None
        if self.path.suffix.lower() not in (".tif", ".tiff"):
            data = cv2.imread(str(self.path), cv2.IMREAD_UNCHANGED)
            if data is not None and data.ndim == 3:
                data = data[:, :, [2, 1, 0, 3][: data.shape[2]]] if data.shape[2] >= 3 else data
        if data is None:
            try:
                import tifffile

                data = tifffile.imread(str(self.path))
            except Exception as exc:  # noqa: BLE001 - an optional faster path; the plain decoder is the fallback
                if self.path.suffix.lower() in (".tif", ".tiff"):
                    raise BadInput(str(self.path), "image", f"cannot decode TIFF ({exc})") from None
                raise BadInput(str(self.path), "image", "cannot decode: file truncated, corrupt "
                               "or in an unsupported format") from None
        data = np.asarray(data)
        check_pixel_type(self.path, data.dtype)
        if data.ndim == 3 and data.shape[0] <= 4 and data.shape[2] > 4:  # channel-first
            data = np.moveaxis(data, 0, -1)
        if data.ndim not in (2, 3) or data.shape[0] != self.height or data.shape[1] != self.width:
            raise BadInput(str(self.path), "image", f"unexpected pixel array shape {data.shape}")
        return data

    def prepare(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Decode and build all levels (slow: run off the GUI thread). Raises BadInput."""
        stop = should_stop or (lambda: False)
        if self._source is None:
            data = self._decode_full()
            step = max(1, int(math.sqrt(data.shape[0] * data.shape[1] / 1_000_000)))
            self.window = display_window(data[::step, ::step])
            if self.width * self.height > self._in_memory_pixels > 0:
                # a huge compressed file: decoding needs the memory once, keeping it does not
                self._spill_level0(data, step)
                del data
                self._build_on_disk(stop)
            else:
                rgb = to_display_rgb(data, self.window)
                del data
                self._build_in_memory(rgb, stop)
        else:
            self._build_on_disk(stop)
        self.ready = not stop() and not self._closed

    def _spill_level0(self, data: np.ndarray, step: int) -> None:
        """Write decoded pixels as 8-bit RGB level 0 to the cache; reads then come from that file."""
        folder = self.cache_dir / self._cache_key()
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / "level0.npy"
        part = folder / f"level0.npy.part{os.getpid()}"
        rows = max(1, STRIP_BYTES // max(1, 3 * self.width))
        with open(part, "wb") as f:
            write_npy_header(f, (self.height, self.width, 3), np.uint8)
            for r0 in range(0, self.height, rows):
                f.write(to_display_rgb(data[r0: r0 + rows], self.window).tobytes())
        os.replace(part, final)
        self.overview = to_display_rgb(data[::step, ::step], self.window) \
            if self.overview is None else self.overview
        with self._lock:
            self._source = npy_source(final)
            self.window = None  # the cached level 0 is display-ready already

    def _build_in_memory(self, level0: np.ndarray, stop) -> None:
        import cv2

        with self._lock:
            self._built[0] = ArraySource(level0)
            self._source = self._built[0]
        prev = level0
        for k in range(1, len(self.levels)):
            if stop() or self._closed:
                return
            w, h = self.levels[k]
            prev = cv2.resize(prev, (w, h), interpolation=cv2.INTER_AREA)
            self._set_built(k, ArraySource(prev))
        if self.overview is None or max(self.overview.shape[:2]) > 2 * OVERVIEW_SIDE:
            k = next((i for i, (w, h) in enumerate(self.levels) if max(w, h) <= OVERVIEW_SIDE), len(self.levels) - 1)
            self.overview = self._built[k].data

    def _cache_key(self) -> str:
        st = self.path.stat()
        ident = f"{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.tile_size}"
        return hashlib.sha1(ident.encode()).hexdigest()[:16]

    def _build_on_disk(self, stop) -> None:
        """Stream levels 1.. to .npy files: read 2R rows of level k-1, average 2x2, write R rows."""
        import cv2

        folder = self.cache_dir / self._cache_key()
        folder.mkdir(parents=True, exist_ok=True)
        prev = self._source
        for k in range(1, len(self.levels)):
            w, h = self.levels[k]
            final = folder / f"level{k}.npy"
            if final.exists():
                try:
                    src = npy_source(final)
                    if src.shape == (h, w, 3):
                        self._set_built(k, src)
                        prev = src
                        continue
                    src.close()
                except Exception:  # noqa: BLE001 - an optional faster path; the plain decoder is the fallback
                    pass
            part = folder / f"level{k}.npy.part{os.getpid()}"
            pw = prev.width
            rows = max(1, STRIP_BYTES // max(1, 2 * pw * getattr(prev, "pixel_bytes", 3)))
            window = self.window if prev is self._source else None
            with open(part, "wb") as f:
                write_npy_header(f, (h, w, 3), np.uint8)
                for r0 in range(0, h, rows):
                    if stop() or self._closed:
                        f.close()
                        part.unlink(missing_ok=True)
                        return
                    r1 = min(h, r0 + rows)
                    strip = to_display_rgb(prev.region(0, 2 * r0, pw, 2 * r1), window)
                    f.write(cv2.resize(strip, (w, r1 - r0), interpolation=cv2.INTER_AREA).tobytes())
            os.replace(part, final)
            prev = npy_source(final)
            self._set_built(k, prev)

    def _set_built(self, k: int, src) -> None:
        with self._lock:
            self._built[k] = src
            # approximate tiles of this level are now superseded by exact ones
            for key in [key for key, (_, exact) in self._tiles.items() if key[0] == k and not exact]:
                del self._tiles[key]

    # ---- reading -------------------------------------------------------------------------
    def level_scale(self, level: int) -> tuple[float, float]:
        """Image pixels per level pixel along x and y."""
        w, h = self.levels[level]
        return self.width / w, self.height / h

    def level_for_scale(self, scale: float) -> int:
        """The coarsest level with at least `scale` screen px per image px resolution."""
        if scale <= 0:
            return len(self.levels) - 1
        k = int(math.floor(math.log2(1.0 / scale))) if scale < 1 else 0
        return max(0, min(len(self.levels) - 1, k))

    def tile_grid(self, level: int) -> tuple[int, int]:
        w, h = self.levels[level]
        return math.ceil(w / self.tile_size), math.ceil(h / self.tile_size)

    def tile_rect(self, level: int, tx: int, ty: int) -> tuple[float, float, float, float]:
        """The tile's rectangle in image pixels, xyxy."""
        w, h = self.levels[level]
        fx, fy = self.level_scale(level)
        t = self.tile_size
        return (tx * t * fx, ty * t * fy, min(w, (tx + 1) * t) * fx, min(h, (ty + 1) * t) * fy)

    def is_built(self, level: int) -> bool:
        with self._lock:
            return level in self._built

    def cached_tile_count(self) -> int:
        with self._lock:
            return len(self._tiles)

    def tile(self, level: int, tx: int, ty: int) -> tuple[np.ndarray, bool] | None:
        """(uint8 RGB [th, tw, 3], exact) or None when no pixels are available yet."""
        key = (level, tx, ty)
        with self._lock:
            hit = self._tiles.get(key)
            if hit is not None:
                self._tiles.move_to_end(key)
                return hit
            built = self._built.get(level)
            source = self._source
        w, h = self.levels[level]
        t = self.tile_size
        x0, y0, x1, y1 = tx * t, ty * t, min(w, (tx + 1) * t), min(h, (ty + 1) * t)
        if x0 >= x1 or y0 >= y1:
            return None
        if built is not None:
            arr = built.region(x0, y0, x1, y1)
            result = (to_display_rgb(arr, None) if isinstance(built, RawFileSource) else np.ascontiguousarray(arr),
                      True)
        elif source is not None:
            fx, fy = self.level_scale(level)
            step = max(1, int(round(fx)))
            arr = source.region(int(x0 * fx), int(y0 * fy), int(x1 * fx), int(y1 * fy), step)
            window = None if isinstance(source, ArraySource) and 0 in self._built else self.window
            result = (to_display_rgb(arr, window)[: y1 - y0, : x1 - x0], level == 0)
        else:
            return None
        with self._lock:
            self._tiles[key] = result
            while len(self._tiles) > self.max_tiles:
                self._tiles.popitem(last=False)
        return result

    def read_region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray | None:
        """Full-resolution uint8 RGB [y1-y0, x1-x0, 3] of the clipped region; None before decoding."""
        with self._lock:
            source = self._source
            in_memory = 0 in self._built
        if source is None:
            return None
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(self.width, int(x1)), min(self.height, int(y1))
        arr = source.region(x0, y0, x1, y1)
        return to_display_rgb(arr, None if in_memory else self.window)

    def close(self) -> None:
        """Stop building and release files; safe to call twice."""
        self._closed = True
        with self._lock:
            for src in list(self._built.values()) + [self._source]:
                if isinstance(src, (RawFileSource, TiledTiffSource)):
                    src.close()
            self._tiles.clear()

"""Pixel sources behind the image pyramid: where full-resolution pixels come from.

Two kinds:
- `ArraySource`: the whole image decoded in memory (ordinary photos, compressed files).
- `RawFileSource`: uncompressed pixels laid out row-major in a file (strip TIFFs, our own cache
  files). Regions are read with `os.pread`, never by mapping the file, so a 40,000 x 40,000 image
  costs only the rows actually read and the resident set stays small.

Both return raw data (any dtype, [H, W] or [H, W, C]); windowing to 8 bits happens in pyramid.py.
No Qt here.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class ArraySource:
    """A decoded image held in memory, [H, W] or [H, W, C]."""

    def __init__(self, data: np.ndarray):
        self.data = data
        self.height, self.width = int(data.shape[0]), int(data.shape[1])
        self.dtype = data.dtype

    def region(self, x0: int, y0: int, x1: int, y1: int, step: int = 1) -> np.ndarray:
        """Pixels [y0:y1:step, x0:x1:step] (a view when possible)."""
        return self.data[y0:y1:step, x0:x1:step]

    def close(self) -> None:
        self.data = None


class RawFileSource:
    """Row-major uncompressed pixels at `offset` in `path`: shape (height, width[, channels])."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, ...], dtype):
        self.path = Path(path)
        self.offset = int(offset)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.height, self.width = self.shape[0], self.shape[1]
        self.channels = self.shape[2] if len(self.shape) == 3 else 1
        self.pixel_bytes = self.channels * self.dtype.itemsize
        self.row_bytes = self.width * self.pixel_bytes
        self._fd = os.open(str(self.path), os.O_RDONLY)

    def region(self, x0: int, y0: int, x1: int, y1: int, step: int = 1) -> np.ndarray:
        """Pixels [y0:y1:step, x0:x1:step]; reads only the needed rows and columns span."""
        x0, x1 = max(0, x0), min(self.width, x1)
        y0, y1 = max(0, y0), min(self.height, y1)
        rows = range(y0, y1, step)
        ncols = len(range(x0, x1, step))
        out = np.empty((len(rows), ncols) + self.shape[2:], self.dtype)
        if not rows or ncols == 0:
            return out
        # Reads go straight into numpy memory (preadv): no temporary bytes objects, whose churn
        # from worker threads otherwise inflates the resident set through allocator arenas.
        if step == 1 and x0 == 0 and x1 == self.width:
            self._read_into(out, self.offset + y0 * self.row_bytes)  # whole rows: one read
            return out
        if step == 1:
            for i, y in enumerate(rows):
                self._read_into(out[i], self.offset + y * self.row_bytes + x0 * self.pixel_bytes)
            return out
        row = np.empty((x1 - x0,) + self.shape[2:], self.dtype)
        for i, y in enumerate(rows):
            self._read_into(row, self.offset + y * self.row_bytes + x0 * self.pixel_bytes)
            out[i] = row[::step]
        return out

    def _read_into(self, arr: np.ndarray, offset: int) -> None:
        view = memoryview(arr).cast("B")
        done = 0
        while done < len(view):
            n = os.preadv(self._fd, [view[done:]], offset + done)
            if n <= 0:
                raise OSError(f"{self.path}: file shorter than its header says")
            done += n

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):  # file descriptors are a bounded resource
        try:
            self.close()
        except Exception:  # noqa: BLE001 - closing at interpreter exit must never raise
            pass


def raw_tiff_source(path: Path) -> RawFileSource | None:
    """A RawFileSource for an uncompressed, contiguous, chunky TIFF's first page; None otherwise."""
    import tifffile

    with tifffile.TiffFile(str(path)) as tf:
        page = tf.pages[0]
        if page.compression != 1 or page.is_tiled:
            return None
        offsets, counts = list(page.dataoffsets), list(page.databytecounts)
        if not offsets or any(offsets[i + 1] != offsets[i] + counts[i] for i in range(len(offsets) - 1)):
            return None  # strips scattered in the file: not one row-major block
        offset, nbytes = offsets[0], sum(counts)
        shape = page.shape
        if page.planarconfig == 2 and len(shape) == 3:  # separate planes: not row-interleaved
            return None
        dtype = page.dtype
        if dtype is None or page.fillorder != 1 or page.predictor not in (None, 1):
            return None
        order = tf.byteorder
    if int(np.prod(shape)) * np.dtype(dtype).itemsize != nbytes:
        return None
    dt = np.dtype(dtype).newbyteorder(order)
    return RawFileSource(path, offset, shape, dt)


class TiledTiffSource:
    """The first page of a tiled TIFF (any compression tifffile decodes), read tile by tile.

    Decoded tiles are kept in a small LRU sized to hold a band of tiles across the image, so the
    strip-by-strip pyramid build decodes each tile once. Thread-safe.
    """

    def __init__(self, path: Path):
        import threading
        from collections import OrderedDict

        import tifffile

        self.path = Path(path)
        self._tf = tifffile.TiffFile(str(path))
        page = self._tf.pages[0]
        if not page.is_tiled or page.planarconfig == 2 or page.imagedepth != 1:
            self._tf.close()
            raise ValueError("not a chunky single-depth tiled TIFF")
        self._page = page
        self.shape = tuple(int(v) for v in page.shape)
        self.dtype = np.dtype(page.dtype)
        self.height, self.width = self.shape[0], self.shape[1]
        self.channels = self.shape[2] if len(self.shape) == 3 else 1
        self.pixel_bytes = self.channels * self.dtype.itemsize
        self.tw, self.th = int(page.tilewidth), int(page.tilelength)
        self.nx = -(-self.width // self.tw)
        self._fd = os.open(str(self.path), os.O_RDONLY)
        self._lock = threading.Lock()
        self._cache: OrderedDict = OrderedDict()
        self._cache_max = self.nx + 8

    def _tile(self, tx: int, ty: int) -> np.ndarray:
        key = (tx, ty)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        index = ty * self.nx + tx
        page = self._page
        raw = os.pread(self._fd, int(page.databytecounts[index]), int(page.dataoffsets[index]))
        seg, _, _ = page.decode(raw, index, jpegtables=page.jpegtables)
        tile = np.asarray(seg).reshape((self.th, self.tw) + self.shape[2:])
        with self._lock:
            self._cache[key] = tile
            while len(self._cache) > self._cache_max:
                self._cache.popitem(last=False)
        return tile

    def region(self, x0: int, y0: int, x1: int, y1: int, step: int = 1) -> np.ndarray:
        x0, x1 = max(0, x0), min(self.width, x1)
        y0, y1 = max(0, y0), min(self.height, y1)
        ys, xs = np.arange(y0, y1, step), np.arange(x0, x1, step)
        out = np.empty((len(ys), len(xs)) + self.shape[2:], self.dtype)
        if not len(ys) or not len(xs):
            return out
        for ty in range(y0 // self.th, (y1 - 1) // self.th + 1):
            rsel = (ys >= ty * self.th) & (ys < (ty + 1) * self.th)
            if not rsel.any():
                continue
            for tx in range(x0 // self.tw, (x1 - 1) // self.tw + 1):
                csel = (xs >= tx * self.tw) & (xs < (tx + 1) * self.tw)
                if not csel.any():
                    continue
                tile = self._tile(tx, ty)
                out[np.ix_(rsel, csel)] = tile[np.ix_(ys[rsel] - ty * self.th, xs[csel] - tx * self.tw)]
        return out

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._tf.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - closing at interpreter exit must never raise
            pass


def tiff_overview(path: Path, max_side: int) -> np.ndarray | None:
    """The smallest stored resolution of a pyramidal TIFF when it is at most `max_side` px."""
    import tifffile

    with tifffile.TiffFile(str(path)) as tf:
        levels = tf.series[0].levels
        if len(levels) < 2:
            return None
        small = levels[-1]
        axes = small.axes
        h, w = small.shape[axes.index("Y")], small.shape[axes.index("X")]
        if max(h, w) > max_side:
            return None
        return np.asarray(small.asarray())


def write_npy_header(f, shape: tuple[int, ...], dtype) -> int:
    """Write an .npy header for a C-ordered array; returns the data offset."""
    np.lib.format.write_array_header_1_0(
        f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)})
    return f.tell()


def npy_source(path: Path) -> RawFileSource:
    """A RawFileSource over an .npy file written by this package."""
    with open(path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if fortran:
        raise ValueError(f"{path}: Fortran-ordered cache file")
    return RawFileSource(path, offset, shape, dtype)

"""Reading image headers safely (no Qt, no torch)."""
from __future__ import annotations

from pathlib import Path

from .errors import BadInput

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}
# 40,000 x 40,000 images are supported; anything claiming more pixels than this is treated as a
# decompression bomb rather than decoded.
MAX_PIXELS = 45_000 * 45_000


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def probe_image(path: Path) -> tuple[int, int]:
    """(width, height) from the file header without decoding pixels. Raises BadInput."""
    path = Path(path)
    if not path.exists():
        raise BadInput(str(path), "image", "file not found")
    if not path.is_file():  # a FIFO named a.png would block the import forever
        raise BadInput(str(path), "image", "not a regular file")
    try:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None  # we apply our own limit below
        with Image.open(path) as im:
            w, h = im.size
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        if path.suffix.lower() in (".tif", ".tiff"):
            try:
                import tifffile

                with tifffile.TiffFile(path) as tf:
                    shape = tf.series[0].shape
                    axes = tf.series[0].axes
                h, w = shape[axes.index("Y")], shape[axes.index("X")]
            except Exception:  # noqa: BLE001 - image libraries raise many types for bad files
                raise BadInput(str(path), "image", f"unreadable image ({exc})") from None
        else:
            raise BadInput(str(path), "image", f"unreadable image ({exc})") from None
    if w <= 0 or h <= 0:
        raise BadInput(str(path), "image", f"invalid size {w}x{h}")
    if w * h > MAX_PIXELS:
        raise BadInput(str(path), "image", f"{w}x{h} pixels exceeds the limit of {MAX_PIXELS} "
                       "(decompression bomb?)")
    return int(w), int(h)


def read_image_rgb(path: Path):
    """Decode an image as uint8 RGB numpy [H, W, 3] (8-bit view of 16-bit/float data). Raises BadInput."""
    return to_uint8_rgb(read_image_raw(path))


def read_image_raw(path: Path):
    """Decode an image as stored: numpy [H, W] or [H, W, C] in RGB(A) order, its own dtype
    (uint16, float32, ...). Raises BadInput."""
    import numpy as np

    probe_image(path)
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        try:
            import tifffile

            data = tifffile.imread(str(path))
        except Exception as exc:  # noqa: BLE001 - image libraries raise many types for bad files
            raise BadInput(str(path), "image", f"cannot decode ({exc})") from None
    else:
        if data.ndim == 3 and data.shape[2] == 3:
            data = data[:, :, ::-1]
        elif data.ndim == 3 and data.shape[2] == 4:
            data = data[:, :, [2, 1, 0, 3]]
    return np.asarray(data)


def to_uint8_rgb(data):
    """Any 2-D/3-D numeric array -> uint8 RGB [H, W, 3], stretching 16-bit and float data to 0..255."""
    import numpy as np

    if data.ndim == 3 and data.shape[2] > 4:  # channel-first stacks
        data = np.moveaxis(data, 0, -1)
    if data.dtype != np.uint8:
        d = data.astype(np.float32)
        finite = np.isfinite(d)
        lo = float(d[finite].min()) if finite.any() else 0.0
        hi = float(d[finite].max()) if finite.any() else 1.0
        d = np.where(finite, d, lo)
        data = ((d - lo) / max(hi - lo, 1e-12) * 255.0).clip(0, 255).astype(np.uint8)
    if data.ndim == 2:
        data = np.repeat(data[:, :, None], 3, axis=2)
    elif data.shape[2] == 1:
        data = np.repeat(data, 3, axis=2)
    elif data.shape[2] == 4:
        data = data[:, :, :3]
    elif data.shape[2] == 2:
        data = np.repeat(data[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(data)

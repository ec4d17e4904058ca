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


# Images up to this size of another type than PNG and JPEG are decoded at import to check them;
# larger ones only by their header (decoding them whole would cost gigabytes).
VERIFY_MAX_PIXELS = 100_000_000
# Deflate cannot compress better than about 1032:1, and a JPEG spends some bits on every 8x8
# block: files far smaller than their pixel count cannot hold their pixels (a header-only file).
_PNG_MAX_RATIO = 1100
_JPEG_MAX_RATIO = 2000


def verify_decodes(path: Path, width: int, height: int) -> None:
    """BadInput when the image file cannot hold its pixels: truncated, damaged or header-only
    (such files have a valid header, and exports that convert images fail on them).

    Cheap enough for every image of an import: PNGs have their chunk structure and every CRC
    checked, and their compressed data compared with what the header promises; JPEGs must end
    with their end-of-image marker and be large enough for their size. Other types are decoded
    (up to VERIFY_MAX_PIXELS). A PNG or JPEG damaged inside otherwise intact chunks still passes:
    an export that converts it refuses it then, naming the image.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(str(path), "image", f"cannot read ({exc.strerror or exc})") from None
    raw = width * height
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        problem = _png_problem(data, raw)
    elif data.startswith(b"\xff\xd8"):
        problem = None
        if b"\xff\xd9" not in data[-4096:]:
            problem = "no end-of-image marker: the file is truncated"
        elif len(data) * _JPEG_MAX_RATIO < raw:
            problem = f"{len(data)} bytes cannot hold {width}x{height} pixels (a header without its data)"
    elif raw <= VERIFY_MAX_PIXELS:
        problem = _decode_problem(path, data)
    else:
        problem = None
    if problem:
        raise BadInput(str(path), "image", f"the pixel data is damaged: {problem}")


def _decode_problem(path: Path, data: bytes) -> str | None:
    import cv2
    import numpy as np

    if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is not None:
        return None
    try:
        import tifffile

        tifffile.imread(str(path))
    except Exception as exc:  # noqa: BLE001 - image libraries raise many types for bad files
        return f"it does not decode ({type(exc).__name__})"
    return None


def _png_problem(data: bytes, pixels: int) -> str | None:
    """Why a PNG cannot hold its pixels (chunks cut short or failing their CRC, no IEND, far too
    little compressed data), or None."""
    import struct
    import zlib

    pos, compressed = 8, 0
    while True:
        if pos + 12 > len(data):
            return "the file ends before its IEND chunk (truncated)"
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if pos + 12 + length > len(data):
            return f"chunk {kind!r} is cut short (truncated)"
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(data[pos + 4:pos + 8 + length]) & 0xFFFFFFFF != crc:
            return f"chunk {kind!r} fails its CRC check"
        if kind == b"IDAT":
            compressed += length
        elif kind == b"IEND":
            break
        pos += 12 + length
    if compressed * _PNG_MAX_RATIO < pixels:
        return f"{compressed} bytes of compressed data cannot hold {pixels} pixels (a header without its data)"
    return None


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

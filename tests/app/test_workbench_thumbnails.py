"""Thumbnails: made off the GUI thread, scaled to 96 px, bad files reported, threads stopped."""
import numpy as np
from PIL import Image
from PySide6.QtGui import QImage

from app.thumbnails import THUMB_SIZE, ThumbnailLoader, make_thumbnail


def test_thumbnails_of_jpeg_16bit_png_and_a_broken_file(tmp_path, qtbot):
    photo = np.zeros((1500, 2000, 3), np.uint8)
    photo[:, 1000:] = (255, 0, 0)
    Image.fromarray(photo).save(tmp_path / "big.jpg", quality=95)
    deep = (np.arange(300 * 200, dtype=np.uint16).reshape(300, 200) * 3)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")

    t = make_thumbnail(tmp_path / "big.jpg")
    assert (t.width(), t.height()) == (THUMB_SIZE, 72)
    right = t.pixelColor(90, 36)
    assert right.red() > 200 and right.green() < 50  # colours survive, left/right not swapped
    d = make_thumbnail(tmp_path / "deep.png")
    assert (d.width(), d.height()) == (64, THUMB_SIZE)

    loader = ThumbnailLoader()
    got, failed = {}, {}
    loader.loaded.connect(lambda k, img: got.__setitem__(k, img))
    loader.failed.connect(lambda k, msg: failed.__setitem__(k, msg))
    loader.request(1, tmp_path / "big.jpg")
    loader.request(1, tmp_path / "big.jpg")  # de-duplicated
    loader.request(2, tmp_path / "broken.png")
    loader.request(3, tmp_path / "missing.png")
    qtbot.waitUntil(lambda: len(got) + len(failed) == 3, timeout=10000)
    assert loader.requests == 3 and isinstance(got[1], QImage)
    assert "broken.png" in failed[2] and "missing.png" in failed[3] and "not found" in failed[3]
    assert loader.get(1) is got[1] or loader.get(1) == got[1]
    loader.shutdown()
    assert loader.pool.activeThreadCount() == 0
    loader.request(4, tmp_path / "big.jpg")  # after shutdown: ignored
    assert loader.requests == 3


def test_complex_tiff_thumbnail_is_refused_naming_the_file(tmp_path):
    import pytest
    import tifffile

    from engine.annotations.errors import BadInput

    path = tmp_path / "phase.tif"
    tifffile.imwrite(path, np.ones((40, 50), np.complex64))
    with pytest.raises(BadInput) as err:
        make_thumbnail(path)
    assert "phase.tif" in str(err.value) and "complex" in str(err.value)
    tifffile.imwrite(tmp_path / "float.tif", np.linspace(0, 1, 40 * 50, dtype=np.float32).reshape(40, 50))
    assert make_thumbnail(tmp_path / "float.tif").width() == 50  # real floats are fine

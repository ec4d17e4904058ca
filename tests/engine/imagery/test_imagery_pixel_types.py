"""Pixel types with no grey level are refused with a message naming the file, not cast silently."""
import numpy as np
import pytest
import tifffile

from engine.annotations.errors import BadInput
from engine.imagery.pyramid import ImagePyramid


@pytest.mark.parametrize("in_memory_pixels", [120_000_000, 0])  # decoded whole / read from disk
def test_complex_tiff_is_refused_naming_the_file(tmp_path, in_memory_pixels):
    path = tmp_path / "phase.tif"
    tifffile.imwrite(path, np.ones((64, 80), np.complex64))
    with pytest.raises(BadInput) as err:
        pyr = ImagePyramid(path, cache_dir=tmp_path / "cache", in_memory_pixels=in_memory_pixels)
        pyr.prepare()
    assert err.value.problem.file == str(path) and "complex" in err.value.problem.message


def test_two_channel_tiff_shows_its_first_channel_as_grey(tmp_path):
    path = tmp_path / "two.tif"
    data = np.zeros((64, 80, 2), np.uint8)
    data[..., 0] = 77
    data[..., 1] = 200
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig="contig")
    pyr = ImagePyramid(path, cache_dir=tmp_path / "cache")
    pyr.prepare()
    tile, exact = pyr.tile(0, 0, 0)
    assert exact and tile.shape == (64, 80, 3) and (tile == 77).all()
    pyr.close()

"""The tiled pyramid returns the right pixels at every level, for 8-bit, 16-bit and float images."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile

from engine.annotations.errors import BadInput
from engine.imagery import ImagePyramid, to_display_rgb

W, H, T = 600, 440, 128


def smooth_image(dtype) -> np.ndarray:
    """[H, W, 3] smooth gradients + blobs (resampling-friendly), scaled to the dtype's range."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.stack([xx / W, yy / H, 0.5 + 0.5 * np.sin(xx / 37.0) * np.cos(yy / 23.0)], axis=2)
    if dtype == np.uint8:
        return (base * 255).astype(np.uint8)
    if dtype == np.uint16:
        return (base * 4000 + 100).astype(np.uint16)  # 12-bit-like camera data
    return (base * 3.0 - 1.0).astype(np.float32)


def assemble(pyr: ImagePyramid, level: int) -> np.ndarray:
    w, h = pyr.levels[level]
    out = np.zeros((h, w, 3), np.uint8)
    nx, ny = pyr.tile_grid(level)
    for ty in range(ny):
        for tx in range(nx):
            tile, exact = pyr.tile(level, tx, ty)
            assert exact
            assert tile.dtype == np.uint8 and tile.shape[2] == 3
            assert tile.shape[0] <= T and tile.shape[1] <= T
            out[ty * T: ty * T + tile.shape[0], tx * T: tx * T + tile.shape[1]] = tile
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("in_memory", [True, False])
def test_tiles_match_cv2_resize_of_full_image(tmp_path, dtype, in_memory):
    data = smooth_image(dtype)
    path = tmp_path / f"img_{np.dtype(dtype).name}.tif"
    tifffile.imwrite(path, data, photometric="rgb")
    pyr = ImagePyramid(path, cache_dir=tmp_path / "cache", tile_size=T,
                       in_memory_pixels=10**9 if in_memory else 0)
    pyr.prepare()
    assert pyr.ready and (pyr.width, pyr.height) == (W, H)
    assert pyr.levels == [(600, 440), (300, 220), (150, 110), (75, 55)]
    if dtype == np.uint8:
        assert pyr.window is None
    else:
        lo, hi = pyr.window
        assert float(data.min()) <= lo < hi <= float(data.max())
    full = to_display_rgb(data, pyr.window)
    for level, (w, h) in enumerate(pyr.levels):
        got = assemble(pyr, level)
        want = full if level == 0 else cv2.resize(full, (w, h), interpolation=cv2.INTER_AREA)
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.max() <= 2, (level, diff.max())
    if not in_memory:
        assert sorted(p.name for p in (tmp_path / "cache").rglob("*.npy")) == ["level1.npy", "level2.npy", "level3.npy"]
    pyr.close()


def test_grayscale_16bit_is_shown_as_rgb_and_region_reads(tmp_path):
    data = (np.arange(200 * 300, dtype=np.uint16).reshape(200, 300) % 5000)
    path = tmp_path / "gray16.tif"
    tifffile.imwrite(path, data)
    pyr = ImagePyramid(path, cache_dir=tmp_path / "c", tile_size=T, in_memory_pixels=0)
    assert pyr.overview is not None and pyr.overview.dtype == np.uint8  # quick view before building
    pyr.prepare()
    reg = pyr.read_region(10, 20, 60, 50)
    assert reg.shape == (30, 50, 3)
    np.testing.assert_array_equal(reg, to_display_rgb(data[20:50, 10:60], pyr.window))


def test_tiles_before_build_are_marked_approximate(tmp_path):
    data = smooth_image(np.uint8)
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, data, photometric="rgb")
    pyr = ImagePyramid(path, cache_dir=tmp_path / "c", tile_size=T, in_memory_pixels=0)
    tile, exact = pyr.tile(1, 0, 0)  # level 1 not built yet: strided sample of level 0
    assert not exact and tile.shape == (T, T, 3)
    np.testing.assert_array_equal(tile, data[0:2 * T:2, 0:2 * T:2])
    tile0, exact0 = pyr.tile(0, 1, 1)
    assert exact0
    np.testing.assert_array_equal(tile0, data[T:2 * T, T:2 * T])
    pyr.prepare()
    assert pyr.tile(1, 0, 0)[1]  # the approximate tile was replaced


def test_tile_cache_is_bounded(tmp_path):
    data = smooth_image(np.uint8)
    path = tmp_path / "b.png"
    cv2.imwrite(str(path), data)
    pyr = ImagePyramid(path, tile_size=64, max_tiles=5)
    pyr.prepare()
    nx, ny = pyr.tile_grid(0)
    assert nx * ny > 20
    for ty in range(ny):
        for tx in range(nx):
            pyr.tile(0, tx, ty)
            assert pyr.cached_tile_count() <= 5
    assert pyr.cached_tile_count() == 5


def test_level_for_scale():
    pyr = ImagePyramid.__new__(ImagePyramid)
    pyr.levels = [(8000, 8000), (4000, 4000), (2000, 2000), (1000, 1000)]
    assert [pyr.level_for_scale(s) for s in (2.0, 1.0, 0.6, 0.5, 0.3, 0.125, 0.01)] == [0, 0, 0, 1, 1, 3, 3]


@pytest.mark.parametrize("content", [None, b"", b"\x89PNG\r\n\x1a\n truncated"])
def test_bad_files_raise_bad_input_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInput) as err:
        pyr = ImagePyramid(path)
        pyr.prepare()
    assert "bad.png" in str(err.value)


def test_huge_compressed_image_is_spilled_to_the_cache(tmp_path):
    """Above the in-memory limit a decoded PNG goes to a level-0 cache file; tiles stay right."""
    data = smooth_image(np.uint8)
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), data[:, :, ::-1])
    pyr = ImagePyramid(path, cache_dir=tmp_path / "c", tile_size=T, in_memory_pixels=1000)
    pyr.prepare()
    assert pyr.ready and pyr.overview is not None
    names = sorted(p.name for p in (tmp_path / "c").rglob("*.npy"))
    assert names == ["level0.npy", "level1.npy", "level2.npy", "level3.npy"]
    for level, (w, h) in enumerate(pyr.levels):
        want = data if level == 0 else cv2.resize(data, (w, h), interpolation=cv2.INTER_AREA)
        assert np.abs(assemble(pyr, level).astype(int) - want.astype(int)).max() <= 2
    np.testing.assert_array_equal(pyr.read_region(5, 6, 50, 40), data[6:40, 5:50])
    pyr.close()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiled_compressed_tiff_read_tile_by_tile(tmp_path, dtype):
    data = smooth_image(dtype)
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, data, tile=(64, 64), compression="zlib", photometric="rgb")
    pyr = ImagePyramid(path, cache_dir=tmp_path / "c", tile_size=T, in_memory_pixels=0)
    pyr.prepare()
    full = to_display_rgb(data, pyr.window)
    for level, (w, h) in enumerate(pyr.levels):
        want = full if level == 0 else cv2.resize(full, (w, h), interpolation=cv2.INTER_AREA)
        assert np.abs(assemble(pyr, level).astype(int) - want.astype(int)).max() <= 2
    np.testing.assert_array_equal(pyr.read_region(100, 30, 333, 257), full[30:257, 100:333])
    pyr.close()


def test_pyramidal_tiff_overview_comes_from_its_smallest_level(tmp_path):
    data = smooth_image(np.uint8)
    path = tmp_path / "pyramidal.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(data, tile=(64, 64), compression="zlib", photometric="rgb", subifds=1)
        tw.write(data[::4, ::4].copy(), tile=(64, 64), compression="zlib", photometric="rgb", subfiletype=1)
    pyr = ImagePyramid(path, cache_dir=tmp_path / "c", tile_size=T, in_memory_pixels=0)
    assert pyr.overview is not None and pyr.overview.shape == (H // 4, W // 4, 3)
    np.testing.assert_array_equal(pyr.overview, data[::4, ::4])

"""The demo projects: reproducible, and their ground truth is what the pixels show."""
import hashlib
from collections import defaultdict

import numpy as np
import pytest

from engine.annotations import BadInput, Box, MaskRLE, ProjectStore
from engine.annotations.geometry import bounds, decode_mask
from engine.annotations.imageio import read_image_rgb
from engine.demo import build_demo, ensure_user_demo
from engine.demo.galaxies import CLUMP_RADIUS_SIGMAS, sersic_b, sersic_image


def _fingerprint(folder):
    """Every image's bytes and every annotation row (ids included) of the three projects."""
    out = {}
    for name in ("photos", "shapes", "galaxies"):
        for f in sorted((folder / name).iterdir()):
            out[f"{name}/{f.name}"] = hashlib.sha256(f.read_bytes()).hexdigest()
        with ProjectStore(folder / f"{name}.vbproj", readonly=True) as s:
            out[name] = (s.execute("SELECT * FROM annotations ORDER BY id").fetchall(),
                         s.execute("SELECT * FROM images ORDER BY id").fetchall(),
                         s.execute("SELECT * FROM categories ORDER BY id").fetchall())
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    build_demo(out, seed=3, n_shapes=20, n_galaxies=20)
    return out


def test_same_seed_same_bytes_other_seed_differs(demo, tmp_path):
    build_demo(tmp_path / "again", seed=3, n_shapes=20, n_galaxies=20)
    build_demo(tmp_path / "other", seed=4, n_shapes=20, n_galaxies=20)
    first, again, other = _fingerprint(demo), _fingerprint(tmp_path / "again"), _fingerprint(tmp_path / "other")
    assert first == again
    assert first["shapes/shape_0000.png"] != other["shapes/shape_0000.png"]
    assert first["photos"] == other["photos"]  # the real photos do not depend on the seed


def test_existing_demo_is_not_overwritten(demo):
    with pytest.raises(BadInput, match="exists already"):
        build_demo(demo, n_shapes=2, n_galaxies=2)


def test_shapes_pair_box_and_visible_mask_by_instance(demo):
    with ProjectStore(demo / "shapes.vbproj", readonly=True) as s:
        images = s.images()
        assert len(images) == 20 and len(s.images(split="val")) == 4
        assert {c.name for c in s.categories()} == {"circle", "rectangle", "triangle"}
        for img in images:
            by_instance = defaultdict(dict)
            for a in s.annotations(img.id):
                by_instance[a.instance_id][a.kind] = a
            assert 1 <= len(by_instance) <= 4
            cover = np.zeros((img.height, img.width), np.int32)
            for pair in by_instance.values():
                box, mask = pair["box"], pair["mask"]
                assert box.category_id == mask.category_id
                m = decode_mask(mask.geometry)
                cover += m
                # the box is exactly the tight box of the visible mask
                assert bounds(mask.geometry) == (box.geometry.x1, box.geometry.y1, box.geometry.x2, box.geometry.y2)
            assert cover.max() == 1  # visible masks never overlap: occluded pixels belong to the top object


def test_shape_pixels_follow_the_masks(demo):
    """Inside a visible mask the colour is the object's (nearly flat), not the striped background."""
    with ProjectStore(demo / "shapes.vbproj", readonly=True) as s:
        img = s.images()[0]
        rgb = read_image_rgb(s.image_path(img)).astype(np.float32)
        for a in s.annotations(img.id):
            if isinstance(a.geometry, MaskRLE):
                m = decode_mask(a.geometry).astype(bool)
                if m.sum() > 30:
                    assert rgb[m].std(axis=0).max() < 20  # shading noise sigma is 8


def test_galaxy_clumps_sit_at_their_recorded_centres(demo):
    with ProjectStore(demo / "galaxies.vbproj", readonly=True) as s:
        cats = {c.name: c.id for c in s.categories()}
        n_clumps = inside = 0
        for img in s.images():
            anns = s.annotations(img.id)
            galaxies = {a.instance_id: a for a in anns if a.category_id == cats["galaxy"]}
            assert 1 <= len(galaxies) <= 3
            gray = read_image_rgb(s.image_path(img))[:, :, 0].astype(np.float32)
            sky = np.median(gray)
            for a in anns:
                if a.category_id != cats["clump"]:
                    continue
                n_clumps += 1
                x, y = a.attributes["x"], a.attributes["y"]
                m = decode_mask(a.geometry)
                assert m[int(y), int(x)] == 1
                # the disc has radius 2 sigma around the centre
                expected = np.pi * (CLUMP_RADIUS_SIGMAS * a.attributes["sigma"]) ** 2
                assert 0.6 * expected < m.sum() < 1.6 * expected
                assert gray[int(y), int(x)] > sky + 20  # a clump is bright on the image
                host = decode_mask(galaxies[a.attributes["galaxy"]].geometry)
                inside += int(host[int(y), int(x)] == 1)
        assert n_clumps >= 2 * 20 * 0.8
        assert inside >= 0.85 * n_clumps


def test_sersic_half_light_radius():
    """b_n makes re enclose half the light of a round profile (numerically, on a grid of 20 re)."""
    yy, xx = np.mgrid[0:801, 0:801].astype(np.float64) + 0.5
    r = np.hypot(xx - 400.5, yy - 400.5)
    for n in (0.5, 1.0, 2.0):
        img = sersic_image(xx, yy, 400.5, 400.5, n, 20.0, 1.0, 0.0, 1.0)
        assert abs(img[r <= 20.0].sum() / img[r <= 400].sum() - 0.5) < 0.02, n
    assert abs(sersic_b(1.0) - 1.678) < 1e-3


def test_photos_are_real_and_labelled(demo):
    with ProjectStore(demo / "photos.vbproj", readonly=True) as s:
        names = {img.path.split("/")[-1].split(".")[0]: img for img in s.images()}
        assert {"astronaut", "chelsea", "coffee", "coins", "horse"} <= set(names)
        assert sorted(i.path for i in s.images(split="val")) == ["photos/coffee.jpg", "photos/rocket.jpg"]
        cats = {c.id: c.name for c in s.categories()}
        chelsea = s.annotations(names["chelsea"].id)
        assert "cat" in {cats[a.category_id] for a in chelsea}
        horse = s.annotations(names["horse"].id)[0]
        assert isinstance(horse.geometry, MaskRLE)
        pixels = read_image_rgb(s.image_path(names["horse"]))[:, :, 0]
        assert (decode_mask(horse.geometry) == (pixels < 128)).all()
        for img in s.images():
            for a in s.annotations(img.id):
                if isinstance(a.geometry, Box):
                    assert 0 <= a.geometry.x1 < a.geometry.x2 <= img.width
                    assert 0 <= a.geometry.y1 < a.geometry.y2 <= img.height


def test_user_demo_is_built_once(tmp_path):
    demo = ensure_user_demo(tmp_path, n_shapes=3, n_galaxies=3)
    assert demo == tmp_path / "visionbench" / "demo"
    assert (demo / "photos.vbproj").is_file() and not (tmp_path / "visionbench" / "demo.partial").exists()
    stamp = (demo / "shapes.vbproj").stat().st_mtime_ns
    assert ensure_user_demo(tmp_path, n_shapes=3, n_galaxies=3) == demo
    assert (demo / "shapes.vbproj").stat().st_mtime_ns == stamp
    with ProjectStore(demo / "shapes.vbproj") as s:  # relative paths survive the rename into place
        assert s.image_path(s.images()[0]).is_file()

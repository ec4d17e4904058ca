"""Mask PNG folders: export paints what the annotations cover, import reads it back; bad input."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.annotations.errors import BadInput, ImportFailed
from engine.annotations.formats import export_from, import_into
from engine.annotations.formats.masks import voc_palette
from engine.annotations.geometry import decode_mask, encode_mask
from engine.annotations.model import Annotation, Box, Point, Polygon
from engine.annotations.store import ProjectStore

from .strategies import normalized, write_bomb_png, write_png


def test_voc_palette_has_the_known_colours():
    pal = voc_palette()
    assert pal[0].tolist() == [0, 0, 0] and pal[1].tolist() == [128, 0, 0] and pal[15].tolist() == [192, 128, 128]
    assert pal[255].tolist() == [224, 224, 192]  # VOC's void colour


@pytest.fixture
def project(tmp_path):
    s = ProjectStore.create(tmp_path / "a" / "p.vbproj")
    cat, dog, ign = s.add_category("cat"), s.add_category("dog"), s.add_category("__ignore__")
    rec = s.add_image(write_png(tmp_path / "a" / "x.png", 12, 8))
    m = np.zeros((8, 12), np.uint8)
    m[5:8, 0:3] = 1
    s.add_annotations([
        Annotation(rec.id, cat.id, Box(0, 0, 6, 4)),
        Annotation(rec.id, dog.id, Box(4, 2, 10, 6)),                  # on top of the cat
        Annotation(rec.id, dog.id, Polygon(((10, 6), (12, 6), (12, 8), (10, 8))), instance_id=9),
        Annotation(rec.id, dog.id, encode_mask(m), instance_id=9),      # same object as the polygon
        Annotation(rec.id, ign.id, Box(11, 0, 12, 1)),
        Annotation(rec.id, cat.id, Point(1, 1)),
    ])
    yield s
    s.close()


def test_export_paints_classes_and_objects(project, tmp_path):
    summary = export_from(project, "masks", tmp_path / "out")
    assert summary["skipped"] == {"point": 1} and summary["objects"] == 3 and summary["classes"] == 2
    assert (tmp_path / "out" / "class_names.txt").read_text() == "_background_\ncat\ndog\n"
    im = Image.open(tmp_path / "out" / "SegmentationClass" / "x.png")
    assert im.mode == "P" and im.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
    cls = np.asarray(im)
    expect = np.zeros((8, 12), np.uint8)
    expect[0:4, 0:6] = 1
    expect[2:6, 4:10] = 2
    expect[6:8, 10:12] = 2
    expect[5:8, 0:3] = 2
    expect[0:1, 11:12] = 255
    assert np.array_equal(cls, expect)
    obj = np.asarray(Image.open(tmp_path / "out" / "SegmentationObject" / "x.png"))
    assert set(np.unique(obj[expect == 2])) == {2, 9} and set(np.unique(obj[expect == 1])) == {1}
    assert (obj[6:8, 10:12] == 9).all() and (obj[5:8, 0:3] == 9).all()  # instance_id kept as object index
    assert obj[0, 11] == 0 and (tmp_path / "out" / "JPEGImages" / "x.png").is_file()


def test_import_reads_instances_with_majority_class(project, tmp_path):
    export_from(project, "masks", tmp_path / "out")
    s = ProjectStore.create(tmp_path / "b" / "p.vbproj")
    try:
        report = import_into(s, "masks", tmp_path / "out")
        assert report.annotations_added == 4  # cat, dog, dog parts (one object), the ignored area
        names = {c.id: c.name for c in s.categories()}
        anns = s.annotations(s.images()[0].id)
        by = {(names[a.category_id], a.instance_id): decode_mask(a.geometry) for a in anns}
        assert by[("dog", 9)].sum() == 4 + 9 and by[("__ignore__", None)].sum() == 1
        assert by[("cat", 1)].sum() == 24 - 4  # the dog box covers 2x2 of the cat
        # a second export of the imported project gives the same PNGs
        export_from(s, "masks", tmp_path / "out2")
        for sub in ("SegmentationClass", "SegmentationObject"):
            assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / sub / "x.png")),
                                  np.asarray(Image.open(tmp_path / "out2" / sub / "x.png")))
        t = ProjectStore.create(tmp_path / "c" / "p.vbproj")
        import_into(t, "masks", tmp_path / "out2")
        assert normalized(t) == normalized(s)
        t.close()
    finally:
        s.close()


def test_gray_and_rgb_class_pngs_without_objects(tmp_path):
    src = tmp_path / "src"
    write_png(src / "images" / "g.png", 6, 4)
    write_png(src / "images" / "c.png", 6, 4)
    (src / "class_names.txt").write_text("_background_\nroad\nsky\n")
    gray = np.zeros((4, 6), np.uint8)
    gray[0, :] = 2
    gray[2:, 1:3] = 1
    (src / "SegmentationClass").mkdir()
    Image.fromarray(gray, mode="L").save(src / "SegmentationClass" / "g.png")
    Image.fromarray(voc_palette()[gray]).save(src / "SegmentationClass" / "c.png")  # RGB painted with VOC colours
    s = ProjectStore.create(tmp_path / "p" / "p.vbproj")
    try:
        assert import_into(s, "masks", src).annotations_added == 4
        names = {c.id: c.name for c in s.categories()}
        for rec in s.images():
            got = {names[a.category_id]: decode_mask(a.geometry) for a in s.annotations(rec.id)}
            assert np.array_equal(got["sky"], gray == 2) and np.array_equal(got["road"], gray == 1)
    finally:
        s.close()


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "m"
    write_png(folder / "JPEGImages" / "a.png", 6, 4)
    write_png(folder / "JPEGImages" / "b.png", 6, 4)
    (folder / "class_names.txt").write_text("_background_\nroad\n")
    (folder / "SegmentationClass").mkdir()
    for n in ("a", "b"):
        arr = np.zeros((4, 6), np.uint8)
        arr[1:3, 1:4] = 1
        Image.fromarray(arr, mode="L").save(folder / "SegmentationClass" / f"{n}.png")
    return folder


def _counts(store):
    return (store.count_images(), store.count_annotations(), len(store.categories()))


CASES = [
    ("class index beyond class_names", lambda f: Image.fromarray(np.full((4, 6), 7, np.uint8), mode="L").save(
        f / "SegmentationClass" / "b.png"), "b.png", "class index", "[7]"),
    ("class png size differs", lambda f: Image.fromarray(np.zeros((5, 6), np.uint8)).save(
        f / "SegmentationClass" / "b.png"), "b.png", "size", "differs"),
    ("unreadable class png", lambda f: (f / "SegmentationClass" / "b.png").write_bytes(b"junk"),
     "b.png", "image", "unreadable"),
    ("colour not in the palette", lambda f: Image.fromarray(np.full((4, 6, 3), 7, np.uint8)).save(
        f / "SegmentationClass" / "b.png"), "b.png", "color", "VOC palette"),
    ("missing image = unreadable image", lambda f: (f / "JPEGImages" / "b.png").write_bytes(b""),
     "b.png", "image", "unreadable"),
    ("decompression bomb", lambda f: write_bomb_png(f / "JPEGImages" / "b.png"), "b.png", "image", "decompression"),
]


@pytest.mark.parametrize("name, edit, file_end, field, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, src, name, edit, file_end, field, words):
    edit(src)
    s = ProjectStore.create(tmp_path / "p" / "p.vbproj")
    try:
        with pytest.raises(ImportFailed) as err:
            import_into(s, "masks", src)
        p = err.value.problem
        assert p.file.endswith(file_end) and p.field == field and words in p.message, p
        assert _counts(s) == (0, 0, 0)
        report = import_into(s, "masks", src, skip_invalid=True)
        assert (report.images_added, report.annotations_added) == (1, 1) and len(report.skipped) == 1
    finally:
        s.close()


@pytest.mark.parametrize("text, words", [(None, "not found"), (b"_background_\nroad\nroad\n", "duplicate"),
                                         (b"_background_\nro\xffad\n", "UTF-8")])
def test_bad_class_names(tmp_path, src, text, words):
    if text is None:
        (src / "class_names.txt").unlink()
    else:
        (src / "class_names.txt").write_bytes(text)
    s = ProjectStore.create(tmp_path / "p" / "p.vbproj")
    try:
        with pytest.raises(BadInput) as err:
            import_into(s, "masks", src, skip_invalid=True)
        assert err.value.problem.file == str(src / "class_names.txt") and words in err.value.problem.message
        assert _counts(s) == (0, 0, 0)
    finally:
        s.close()


def test_class_png_without_image_is_a_problem(tmp_path, src):
    (src / "JPEGImages" / "b.png").unlink()
    s = ProjectStore.create(tmp_path / "p" / "p.vbproj")
    try:
        with pytest.raises(ImportFailed) as err:
            import_into(s, "masks", src)
        assert err.value.problem.file == str(src / "SegmentationClass" / "b.png")
        assert err.value.problem.field == "image" and "no image" in err.value.problem.message
        assert _counts(s) == (0, 0, 0)
        report = import_into(s, "masks", src, skip_invalid=True)
        assert (report.images_added, report.annotations_added, len(report.skipped)) == (1, 1, 1)
    finally:
        s.close()


def test_box_of_a_segmented_object_is_its_bounds_not_a_painted_region(tmp_path):
    """Detection+segmentation projects (the demo's shapes) hold a box and a mask per object with one
    instance_id: the PNGs hold the mask's pixels only, and they import back as that mask."""
    s = ProjectStore.create(tmp_path / "a" / "p.vbproj")
    circle, square = s.add_category("circle"), s.add_category("square")
    rec = s.add_image(write_png(tmp_path / "a" / "x.png", 20, 16))
    disk = np.zeros((16, 20), np.uint8)
    yy, xx = np.mgrid[:16, :20]
    disk[(yy - 6) ** 2 + (xx - 6) ** 2 <= 16] = 1
    s.add_annotations([Annotation(rec.id, circle.id, Box(2, 2, 11, 11), instance_id=1),
                       Annotation(rec.id, circle.id, encode_mask(disk), instance_id=1),
                       Annotation(rec.id, square.id, Box(14, 10, 18, 14))])  # a box of its own
    summary = export_from(s, "masks", tmp_path / "out")
    s.close()
    assert summary["boxes_of_segmented_objects"] == 1 and summary["objects"] == 2
    cls = np.asarray(Image.open(tmp_path / "out" / "SegmentationClass" / "x.png"))
    expect = disk.copy()
    expect[10:14, 14:18] = 2
    assert np.array_equal(cls, expect)
    with ProjectStore.create(tmp_path / "b" / "p.vbproj") as b:
        import_into(b, "masks", tmp_path / "out")
        [back] = [a for a in b.annotations(b.images()[0].id) if b.category(a.category_id).name == "circle"]
        assert np.array_equal(decode_mask(back.geometry), disk) and back.instance_id == 1

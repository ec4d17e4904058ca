"""Pascal VOC: LabelMe's own VOC files read back onto LabelMe's rectangles, and round trips."""
import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from engine.annotations.bundle import import_bundle
from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation, Box, Point, Polygon
from engine.annotations.store import ProjectStore
from engine.annotations.formats import voc
from tests.engine.formats.strategies import build_project, image_set, normalized, project_specs, write_png

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "labelme" / "bbox_detection"


@pytest.fixture
def labelme_voc(tmp_path) -> Path:
    """LabelMe's VOC export with its images copied into JPEGImages/ (LabelMe leaves them out)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"LabelMe fixtures not found at {FIXTURES}")
    src = tmp_path / "voc"
    shutil.copytree(FIXTURES / "data_dataset_voc", src)
    (src / "JPEGImages").mkdir()
    for jpg in (FIXTURES / "data_annotated").glob("*.jpg"):
        shutil.copy(jpg, src / "JPEGImages" / jpg.name)
    return src


def labelme_rectangles(stem: str) -> list[tuple[str, tuple[float, float, float, float]]]:
    d = json.loads((FIXTURES / "data_annotated" / f"{stem}.json").read_text())
    out = []
    for s in d["shapes"]:
        assert s["shape_type"] == "rectangle"
        (xa, ya), (xb, yb) = s["points"]
        out.append((s["label"], (min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))))
    return out


def test_labelme_voc_boxes_lie_within_half_a_pixel_of_the_labelme_rectangles(labelme_voc):
    bundle = voc.read(labelme_voc)
    assert bundle.problems == []
    names = bundle.category_names()
    # class_names.txt order, without LabelMe's _background_
    assert list(names.values())[:3] == ["aeroplane", "bicycle", "bird"] and "_background_" not in names.values()
    assert len(bundle.images) == 3
    for entry in bundle.images:
        expected = labelme_rectangles(entry.file.stem)
        got = [(names[a.category_id], a.geometry) for a in entry.annotations]
        assert len(got) == len(expected) > 0
        for (name, g), (ename, ebox) in zip(got, expected):
            assert name == ename
            assert max(abs(a - b) for a, b in zip((g.x1, g.y1, g.x2, g.y2), ebox)) <= 0.5


def test_labelme_voc_imports_into_a_project(labelme_voc, tmp_path):
    store = ProjectStore.create(tmp_path / "p" / "p.vbproj")
    try:
        report = import_bundle(store, voc.read(labelme_voc))
        assert report.images_added == 3 and report.annotations_added == 9
        person = store.category_by_name("person")
        img = store.image_by_path(store._rel((labelme_voc / "JPEGImages" / "2011_000003.jpg").resolve()))
        assert (img.width, img.height) == (500, 338)
        boxes = sorted((a.geometry.x1, a.geometry.x2) for a in store.annotations(img.id)
                       if a.category_id == person.id)
        assert boxes == [(191.0, 313.0), (365.0, 500.0)]
    finally:
        store.close()


def test_devkit_convention_reads_one_based_inclusive_pixels(labelme_voc):
    corner = voc.read(labelme_voc).images[0].annotations[0].geometry
    devkit = voc.read(labelme_voc, convention="devkit").images[0].annotations[0].geometry
    assert (devkit.x1, devkit.y1) == (corner.x1 - 1, corner.y1 - 1)
    assert (devkit.x2, devkit.y2) == (corner.x2, corner.y2)


def _project(tmp_path: Path) -> ProjectStore:
    store = ProjectStore.create(tmp_path / "a" / "a.vbproj")
    cat = store.add_category("cat")
    dog = store.add_category("dog")
    store.add_category("unused bird")
    f1 = write_png(tmp_path / "a" / "img" / "one.png", 40, 30)
    f2 = write_png(tmp_path / "a" / "img" / "two.png", 20, 10, seed=1)
    one = store.add_image(f1, split="train")
    two = store.add_image(f2, split="val")
    store.bulk_insert_annotations([
        Annotation(one.id, cat.id, Box(0, 0, 40, 30), attributes={"difficult": True, "pose": "Left"}),
        Annotation(one.id, dog.id, Box(3, 4, 12, 9), attributes={"truncated": True, "occluded": True,
                                                                  "colour": "brown"}),
        Annotation(one.id, dog.id, Box(2.25, 3.5, 10.75, 8.4)),
        Annotation(one.id, cat.id, Polygon(((1, 1), (9, 1), (5, 8)))),
        Annotation(two.id, cat.id, encode_mask(np.ones((10, 20), np.uint8))),
        Annotation(two.id, dog.id, Point(3, 3)),
    ])
    return store


def _read_into(src: Path, folder: Path, **kw) -> ProjectStore:
    store = ProjectStore.create(folder / "p.vbproj")
    import_bundle(store, voc.read(src, **kw))
    return store


def test_export_import_keeps_boxes_flags_splits_and_categories(tmp_path):
    a = _project(tmp_path)
    try:
        summary = voc.write(a, tmp_path / "out", keep_image_format=True)
        assert summary["images"] == 2 and summary["boxes"] == 3 + 2 and summary["boxes_from_outlines"] == 2
        assert summary["not_exported"] == {"point": 1}
        assert summary["not_exported_total"] == 1 and summary["boxes_rounded"] == 1
        assert summary["images_converted_to_jpeg"] == 0 and "jpeg_conversion" not in summary
        assert (tmp_path / "out" / "JPEGImages" / "one.png").is_file()
        assert (tmp_path / "out" / "ImageSets" / "Main" / "val.txt").read_text() == "two\n"
        root = ET.parse(tmp_path / "out" / "Annotations" / "one.xml").getroot()
        assert root.findtext("size/width") == "40" and root.findtext("size/depth") == "3"
        # integers; the polygon is written as its tight box
        assert [o.findtext("bndbox/xmax") for o in root.iter("object")] == ["40", "12", "11", "9"]
        b = _read_into(tmp_path / "out", tmp_path / "b")
        try:
            assert [c.name for c in b.categories()] == ["cat", "dog", "unused bird"]
            assert image_set(b) == image_set(a)
            one, two = sorted(b.images(), key=lambda r: r.path)
            got = {(a_.geometry.x1, a_.geometry.y1): a_ for a_ in b.annotations(one.id)}
            assert [a_.geometry for a_ in b.annotations(two.id)] == [Box(0, 0, 20, 10)]  # the mask's box
            assert got[(0, 0)].geometry == Box(0, 0, 40, 30)  # integer boxes: exact
            assert got[(0, 0)].attributes == {"difficult": True, "pose": "Left"}
            assert got[(3, 4)].attributes == {"truncated": True, "occluded": True, "colour": "brown"}
            moved = got[(2, 4)].geometry  # 2.25, 3.5, 10.75, 8.4 -> nearest integers, halves up
            assert moved == Box(2, 4, 11, 8)
            assert max(abs(u - v)
                       for u, v in zip((2.25, 3.5, 10.75, 8.4), (moved.x1, moved.y1, moved.x2, moved.y2))) <= 0.5
            assert got[(1, 1)].geometry == Box(1, 1, 9, 8)  # the polygon's box
            assert b.count_annotations() == 5
            # a second export of the re-imported project writes the same XML
            voc.write(b, tmp_path / "out2", keep_image_format=True)
            for name in ("one.xml", "two.xml"):
                assert (tmp_path / "out" / "Annotations" / name).read_bytes() == \
                       (tmp_path / "out2" / "Annotations" / name).read_bytes()
        finally:
            b.close()
    finally:
        a.close()


def test_devkit_export_writes_one_based_pixels_and_reads_back_exactly(tmp_path):
    a = _project(tmp_path)
    try:
        voc.write(a, tmp_path / "out", convention="devkit", split="train")
        root = ET.parse(tmp_path / "out" / "Annotations" / "one.xml").getroot()
        first = root.find("object/bndbox")
        assert [first.findtext(t) for t in ("xmin", "ymin", "xmax", "ymax")] == ["1", "1", "40", "30"]
        assert not (tmp_path / "out" / "Annotations" / "two.xml").exists()  # split="train" only
        for conv in ("devkit", "auto"):  # auto: the file says which convention it was written in
            b = _read_into(tmp_path / "out", tmp_path / f"b_{conv}", convention=conv)
            try:
                boxes = [a_.geometry for anns in b.all_annotations().values() for a_ in anns]
                assert Box(0, 0, 40, 30) in boxes and Box(3, 4, 12, 9) in boxes
            finally:
                b.close()
    finally:
        a.close()


def test_export_overwrites_atomically_without_leftover_temp_files(tmp_path):
    a = _project(tmp_path)
    try:
        voc.write(a, tmp_path / "out")
        voc.write(a, tmp_path / "out")
        leftovers = [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".")]
        assert leftovers == []
    finally:
        a.close()


def _round_half_up(v: float) -> float:
    return float(math.floor(v + 0.5))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=project_specs(kinds=("box",), max_images=3, max_objects=3))
def test_random_boxes_round_trip_within_half_a_pixel(tmp_path_factory, spec):
    root = tmp_path_factory.mktemp("vocrt")
    a = build_project(root / "a", spec)
    try:
        voc.write(a, root / "out", keep_image_format=True)
        b = _read_into(root / "out", root / "b")
        try:
            expected = [(n, wh, s, c, ("box",) + tuple(_round_half_up(v) for v in key[1:]))
                        for n, wh, s, c, key in normalized(a)]
            assert normalized(b) == sorted(expected, key=repr)
            assert image_set(b) == image_set(a)
            # each box read back (the multiset above) is its original's rounding: pair them so, not
            # by sorting both sides, which pairs (7.5, 1.5) with (8, 1) when rounding reorders them
            for (_, _, _, _, ka), (_, _, _, _, ke) in zip(normalized(a), expected):
                assert max(abs(x - y) for x, y in zip(ka[1:], ke[1:])) <= 0.5
        finally:
            b.close()
    finally:
        a.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=project_specs(kinds=("box",), max_images=2, max_objects=3))
def test_integer_boxes_round_trip_exactly_in_both_conventions(tmp_path_factory, spec):
    from dataclasses import replace

    spec = [replace(im, objects=tuple((c, Box(*(float(math.floor(v)) for v in (g.x1, g.y1)),
                                              *(float(math.ceil(v)) for v in (g.x2, g.y2))), i)
                                      for c, g, i in im.objects)) for im in spec]
    root = tmp_path_factory.mktemp("vocint")
    a = build_project(root / "a", spec)
    try:
        for conv in voc.CONVENTIONS:
            voc.write(a, root / conv, convention=conv, keep_image_format=True)
            b = _read_into(root / conv, root / f"b_{conv}")  # "auto" finds the convention
            try:
                assert normalized(b) == normalized(a)
            finally:
                b.close()
    finally:
        a.close()


def test_labelme_voc_import_export_import_keeps_boxes_within_half_a_pixel(labelme_voc, tmp_path):
    a = _read_into(labelme_voc, tmp_path / "a")
    try:
        summary = voc.write(a, tmp_path / "out")
        assert summary["boxes"] == 9 and summary["boxes_rounded"] == 3  # the three non-integer boxes
        b = _read_into(tmp_path / "out", tmp_path / "b")
        try:
            na, nb = normalized(a), normalized(b)
            assert [x[:4] for x in na] == [x[:4] for x in nb]
            for ka, kb in zip(na, nb):
                assert max(abs(u - v) for u, v in zip(ka[4][1:], kb[4][1:])) <= 0.5
        finally:
            b.close()
    finally:
        a.close()


def test_original_voc_release_files_are_read_with_the_devkit_rule(tmp_path):
    """VOC2012's own XML (its <source>) means 1-based inclusive pixels; other files mean corners."""
    def xml(source: str, image: str) -> str:
        return (f"<annotation><filename>{image}</filename>{source}<size><width>20</width><height>10</height>"
                "</size><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax>"
                "<ymax>10</ymax></bndbox></object></annotation>")

    src = tmp_path / "voc"
    (src / "Annotations").mkdir(parents=True)
    write_png(src / "JPEGImages" / "a.png", 20, 10)
    write_png(src / "JPEGImages" / "b.png", 20, 10)
    (src / "Annotations" / "a.xml").write_text(
        xml("<source><database>The VOC2012 Database</database><annotation>PASCAL VOC2012</annotation></source>",
            "a.png"))
    (src / "Annotations" / "b.xml").write_text(xml("<source><database>Unknown</database></source>", "b.png"))
    boxes = [e.annotations[0].geometry for e in voc.read(src).images]
    assert boxes == [Box(0, 0, 20, 10), Box(1, 1, 20, 10)]
    forced = [e.annotations[0].geometry for e in voc.read(src, convention="corner").images]
    assert forced == [Box(1, 1, 20, 10)] * 2


def test_boxes_entirely_outside_the_image_are_counted_not_written(tmp_path):
    store = ProjectStore.create(tmp_path / "a" / "a.vbproj")
    try:
        cat = store.add_category("cat")
        rec = store.add_image(write_png(tmp_path / "a" / "one.png", 20, 10))
        store.bulk_insert_annotations([Annotation(rec.id, cat.id, Box(25, 2, 30, 8)),
                                       Annotation(rec.id, cat.id, Box(-3, 2, 5, 8))])
        summary = voc.write(store, tmp_path / "out")
        assert summary["boxes"] == 1 and summary["not_exported"] == {"box_outside_image": 1}
        root = ET.parse(tmp_path / "out" / "Annotations" / "one.xml").getroot()
        assert [root.findtext(f"object/bndbox/{t}") for t in ("xmin", "xmax")] == ["0", "5"]  # clipped
    finally:
        store.close()

"""YOLO: layouts, per-line detection vs segmentation, export files, and round trips."""
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.annotations import geometry as geo
from engine.annotations.bundle import import_bundle
from engine.annotations.formats import yolo
from engine.annotations.model import Annotation, Box, Point, Polygon, Polyline
from engine.annotations.store import ProjectStore
from tests.engine.formats.strategies import build_project, image_set, normalized, project_specs, write_png


def _read_into(src: Path, folder: Path) -> ProjectStore:
    store = ProjectStore.create(folder / "p.vbproj")
    import_bundle(store, yolo.read(src))
    return store


def test_ultralytics_layout_with_data_yaml_dict_names_and_mixed_lines(tmp_path):
    src = tmp_path / "ds"
    write_png(src / "images" / "train" / "a.jpg", 100, 50)
    write_png(src / "images" / "val" / "b.png", 40, 40)
    (src / "labels" / "train").mkdir(parents=True)
    (src / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n\n0 0.1 0.1 0.3 0.1 0.2 0.5\n")
    (src / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: person\n  1: car\n")
    bundle = yolo.read(src)
    assert bundle.problems == []
    assert [(c.id, c.name) for c in bundle.categories] == [(1, "person"), (2, "car")]
    a, b = sorted(bundle.images, key=lambda e: e.file.name)
    assert (a.split, b.split) == ("train", "val") and b.annotations == []  # no label file: no objects
    box, poly = a.annotations
    assert box.category_id == 2 and box.geometry == Box(40.0, 15.0, 60.0, 35.0)
    assert poly.category_id == 1 and poly.geometry == Polygon(((10.0, 5.0), (30.0, 5.0), (20.0, 25.0)))


def test_roboflow_and_flat_layouts_with_classes_txt(tmp_path):
    rf = tmp_path / "rf"
    write_png(rf / "valid" / "images" / "x.png", 10, 10)
    (rf / "valid" / "labels").mkdir(parents=True)
    (rf / "valid" / "labels" / "x.txt").write_text("0 0.5 0.5 1 1\n")
    # Roboflow's data.yaml points out of the folder; splits then come from the folder names
    (rf / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['thing']\n")
    bundle = yolo.read(rf)
    assert bundle.problems == [] and bundle.images[0].split == "val"
    assert bundle.images[0].annotations[0].geometry == Box(0, 0, 10, 10)

    flat = tmp_path / "flat"
    write_png(flat / "y.png", 10, 20)
    (flat / "y.txt").write_text("2 0.5 0.5 0.2 0.1\n")
    (flat / "classes.txt").write_text("a\nb\nc\n")
    bundle = yolo.read(flat)
    assert bundle.problems == [] and [c.name for c in bundle.categories] == ["a", "b", "c"]
    assert bundle.images[0].annotations[0].category_id == 3


def test_without_class_names_classes_are_named_by_index(tmp_path):
    write_png(tmp_path / "images" / "a.png", 10, 10)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("3 0.5 0.5 0.5 0.5\n")
    bundle = yolo.read(tmp_path)
    assert [(c.id, c.name) for c in bundle.categories] == [(4, "3")]


def _project(tmp_path: Path) -> ProjectStore:
    store = ProjectStore.create(tmp_path / "a" / "a.vbproj")
    cat, dog, _ = (store.add_category(n) for n in ("cat", "dog", "unused"))
    one = store.add_image(write_png(tmp_path / "a" / "img" / "one.png", 40, 30), split="train")
    two = store.add_image(write_png(tmp_path / "a" / "img" / "two.png", 30, 30, seed=1), split="val")
    store.add_image(write_png(tmp_path / "a" / "img" / "empty.png", 8, 8, seed=2), split="val")
    mask = np.zeros((30, 30), np.uint8)
    mask[2:10, 2:12] = 1
    mask[15:28, 15:28] = 1
    mask[19:23, 19:23] = 0  # a hole
    store.bulk_insert_annotations([
        Annotation(one.id, cat.id, Box(1.25, 2.5, 30.75, 29)),
        Annotation(one.id, dog.id, Polygon(((1, 1), (9, 1), (5, 8.5)))),
        Annotation(one.id, dog.id, Polygon(((0, 0), (20, 0), (20, 20), (0, 20)),
                                           (((5, 5), (5, 10), (10, 10), (10, 5)),))),
        Annotation(two.id, cat.id, geo.encode_mask(mask)),
        Annotation(two.id, dog.id, Point(3, 3)),
        Annotation(two.id, dog.id, Polyline(((1, 1), (4, 4)))),
    ])
    return store


def test_segment_export_files_and_summary(tmp_path):
    a = _project(tmp_path)
    try:
        summary = yolo.write(a, tmp_path / "out")  # auto: the project has polygons and a mask
        out = tmp_path / "out"
        assert summary["task"] == "segment" and "3 of the project's 4 objects" in summary["task_reason"]
        assert summary["images"] == 3 and summary["objects"] == 4 and summary["boxes_as_polygons"] == 1
        assert summary["polygons"] == 2 and summary["masks_converted"] == 1 and summary["mask_polygons"] == 2
        assert summary["holes_bridged"] == 2 and summary["parts_joined"] == 1  # the mask's two blobs: one row
        assert summary["not_exported"] == {"point": 1, "polyline": 1} and summary["not_exported_total"] == 2
        assert summary["val_is_train"] is False
        data = yaml.safe_load((out / "data.yaml").read_text())
        assert data["names"] == {0: "cat", 1: "dog", 2: "unused"} and data["nc"] == 3
        assert (data["train"], data["val"]) == ("images/train", "images/val") and Path(data["path"]) == out.resolve()
        assert (out / "classes.txt").read_text() == "cat\ndog\nunused\n"
        assert (out / "images" / "val" / "two.png").is_file()
        assert (out / "labels" / "val" / "empty.txt").read_text() == ""  # background image
        lines = (out / "labels" / "train" / "one.txt").read_text().splitlines()
        assert lines[0] == "0 0.03125 0.08333333 0.76875 0.08333333 0.76875 0.96666667 0.03125 0.96666667"
        assert lines[1] == "1 0.025 0.03333333 0.225 0.03333333 0.125 0.28333333"
        assert len(lines[2].split()) == 1 + 2 * (4 + 4 + 2)  # outline + hole + the two ends of the cut
        assert len((out / "labels" / "val" / "two.txt").read_text().splitlines()) == 1
    finally:
        a.close()


def test_detect_export_writes_each_objects_box_or_the_bounds_of_its_outline(tmp_path):
    a = _project(tmp_path)
    try:
        summary = yolo.write(a, tmp_path / "out", task="detect")
        assert summary["task"] == "detect" and summary["task_reason"] == "detect was asked for"
        assert summary["objects"] == 4 and summary["boxes"] == 1 and summary["boxes_from_outlines"] == 3
        lines = (tmp_path / "out" / "labels" / "train" / "one.txt").read_text().splitlines()
        assert lines == ["0 0.4 0.525 0.7375 0.88333333", "1 0.125 0.15833333 0.2 0.25",
                         "1 0.25 0.33333333 0.5 0.66666667"]
        # the mask: its pixels span x 2..28, y 2..28 on the 30 x 30 image
        assert (tmp_path / "out" / "labels" / "val" / "two.txt").read_text() == \
            "0 0.5 0.5 0.86666667 0.86666667\n"
    finally:
        a.close()


def test_export_import_round_trip_of_boxes_polygons_holes_and_masks(tmp_path):
    a = _project(tmp_path)
    try:
        yolo.write(a, tmp_path / "detect", task="detect")
        yolo.write(a, tmp_path / "segment", task="segment")
        boxes = _read_into(tmp_path / "detect", tmp_path / "b")
        b = _read_into(tmp_path / "segment", tmp_path / "c")
        try:
            assert image_set(boxes) == image_set(a)
            assert normalized(boxes, decimals=4, kinds=("box",))[0] == normalized(a, decimals=4, kinds=("box",))[0]
            assert [c.name for c in b.categories()] == ["cat", "dog", "unused"]
            assert image_set(b) == image_set(a)
            by_image = {Path(b.image(i).path).name: anns for i, anns in b.all_annotations().items()}
            polys = [x.geometry for x in by_image["one.png"]]
            assert geo_close(polys[0], Polygon(((1.25, 2.5), (30.75, 2.5), (30.75, 29), (1.25, 29))))
            assert geo_close(polys[1], Polygon(((1, 1), (9, 1), (5, 8.5))))
            # the holed square comes back as one ring whose pixels are the same
            holed = Polygon(((0, 0), (20, 0), (20, 20), (0, 20)), (((5, 5), (5, 10), (10, 10), (10, 5)),))
            assert np.array_equal(geo.polygon_to_mask(polys[2], 30, 40), geo.polygon_to_mask(holed, 30, 40))
            # the mask of two blobs comes back as one polygon (one row) covering exactly its pixels
            mask = geo.decode_mask(next(x.geometry for x in a.annotations(2) if x.kind == "mask"))
            (got,) = by_image["two.png"]
            assert np.array_equal(geo.polygon_to_mask(got.geometry, 30, 30), mask)
        finally:
            b.close()
            boxes.close()
    finally:
        a.close()


def geo_close(p: Polygon, q: Polygon, tol: float = 1e-4) -> bool:
    return len(p.points) == len(q.points) and all(
        abs(x1 - x2) <= tol and abs(y1 - y2) <= tol for (x1, y1), (x2, y2) in zip(p.points, q.points))


def test_export_without_val_split_validates_on_train_and_says_so(tmp_path):
    a = _project(tmp_path)
    try:
        summary = yolo.write(a, tmp_path / "out", split="train")
        assert summary["images"] == 1 and summary["val_is_train"] is True
        data = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
        assert data["val"] == data["train"] == "images/train"
    finally:
        a.close()


@pytest.mark.parametrize("kinds", [("box",), ("polygon",), ("box", "polygon")])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_boxes_and_polygons_round_trip_to_1e_4_px(tmp_path_factory, kinds, data):
    """Boxes alone export as detect rows, anything with polygons as segment rows, where a box
    alone becomes its 4-corner polygon."""
    spec = data.draw(project_specs(kinds=kinds, max_images=3, max_objects=4))
    root = tmp_path_factory.mktemp("yolort")
    a = build_project(root / "a", spec)
    try:
        yolo.write(a, root / "out")
        b = _read_into(root / "out", root / "b")
        try:
            assert image_set(b) == image_set(a)
            segment = any(x.kind == "polygon" for anns in a.all_annotations().values() for x in anns)
            expected = normalized(a, decimals=4)
            if segment:
                expected = sorted(((n, wh, sp, c, _corners(k) if k[0] == "box" else k)
                                   for n, wh, sp, c, k in expected), key=repr)
            assert normalized(b, decimals=4) == expected
        finally:
            b.close()
    finally:
        a.close()


def _corners(key):
    _, x1, y1, x2, y2 = key
    return ("polygon", ((x1, y1), (x2, y1), (x2, y2), (x1, y2)), ())


@pytest.mark.parametrize("value,text", [(0.0, "0"), (1.0, "1"), (-0.0, "0"), (0.123456789, "0.12345679"),
                                        (1.00000001, "1")])
def test_normalized_values_are_written_with_8_decimals_inside_0_1(value, text):
    assert yolo._fmt(value) == text


def test_mask_outline_rasterizes_to_exactly_the_mask_even_for_noise():
    rng = np.random.default_rng(7)
    for _ in range(20):
        mask = (rng.random((rng.integers(5, 30), rng.integers(5, 30))) < 0.5).astype(np.uint8)
        h, w = mask.shape
        polys = yolo.mask_outline(mask)
        # through the text file's 8 decimals, holes joined by cuts, as export writes them
        text = [yolo._line(0, [v for x, y in yolo.bridge_holes(p) for v in (x / w, y / h)]) for p in polys]
        back = [Polygon(tuple((float(x) * w, float(y) * h) for x, y in zip(t.split()[1::2], t.split()[2::2])))
                for t in text]
        got = np.zeros_like(mask)
        for p in back:
            got |= geo.polygon_to_mask(p, h, w)
        assert np.array_equal(got, mask)
    assert yolo.mask_outline(np.zeros((4, 4), np.uint8)) == []


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=project_specs(kinds=("mask",), max_images=2, max_objects=3))
def test_random_masks_come_back_as_polygons_with_the_same_pixels(tmp_path_factory, spec):
    root = tmp_path_factory.mktemp("yolomask")
    a = build_project(root / "a", spec)
    try:
        yolo.write(a, root / "out")
        b = _read_into(root / "out", root / "b")

        def pixels(store):  # (image name, category name) -> union of the objects' pixels
            names = {c.id: c.name for c in store.categories()}
            out = {}
            for rec in store.images():
                for x in store.annotations(rec.id):
                    key = (Path(rec.path).name, names[x.category_id])
                    m = geo.geometry_to_mask(x.geometry, rec.height, rec.width)
                    out[key] = out.get(key, 0) | m
            return {k: v.tobytes() for k, v in out.items()}

        try:
            assert image_set(b) == image_set(a)
            assert all(x.kind == "polygon" for anns in b.all_annotations().values() for x in anns)
            assert pixels(b) == pixels(a)
        finally:
            b.close()
    finally:
        a.close()


HAND_WRITTEN = {
    "detect": ("0 0.500000 0.500000 0.250000 0.125000\n2 0.2 0.2 0.3 0.2\n", "1 0.123457 0.654321 0.2 0.1\n"),
    "segment": ("0 0.4 0.4 0.6 0.4 0.5 0.6\n2 0.1 0.2 0.3 0.2 0.35 0.6 0.12 0.55\n",
                "1 0.123457 0.654321 0.2 0.1 0.3 0.3\n"),
}


@pytest.mark.parametrize("task", list(HAND_WRITTEN))
def test_import_export_import_of_a_hand_written_dataset_is_the_identity(tmp_path, task):
    src = tmp_path / "ds"
    write_png(src / "images" / "train" / "a.png", 64, 48)
    write_png(src / "images" / "val" / "b.png", 32, 32, seed=3)
    (src / "labels" / "train").mkdir(parents=True)
    (src / "labels" / "val").mkdir(parents=True)
    (src / "labels" / "train" / "a.txt").write_text(HAND_WRITTEN[task][0])
    (src / "labels" / "val" / "b.txt").write_text(HAND_WRITTEN[task][1])
    (src / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [a, b, c]\n")
    a = _read_into(src, tmp_path / "a")
    try:
        assert yolo.write(a, tmp_path / "out")["task"] == task
        b = _read_into(tmp_path / "out", tmp_path / "b")
        try:
            assert normalized(b, decimals=5) == normalized(a, decimals=5)
            assert image_set(b) == image_set(a)
            for rel in ("train/a.txt", "val/b.txt"):
                orig = [[float(v) for v in ln.split()] for ln in (src / "labels" / rel).read_text().splitlines()]
                back = [[float(v) for v in ln.split()]
                        for ln in (tmp_path / "out" / "labels" / rel).read_text().splitlines()]
                assert all(len(o) == len(k) and np.allclose(o, k, atol=1e-8) for o, k in zip(orig, back, strict=True))
        finally:
            b.close()
    finally:
        a.close()


def test_a_file_mixing_box_and_polygon_rows_imports_and_exports_as_one_kind(tmp_path):
    """Other tools write both kinds of row in one file; the import takes both, the export writes
    one kind (Ultralytics refuses a mixed file): here segment, the box as its 4 corners."""
    src = tmp_path / "ds"
    write_png(src / "images" / "a.png", 10, 10)
    (src / "labels").mkdir()
    (src / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.3 0.1 0.2 0.5\n")
    a = _read_into(src, tmp_path / "a")
    try:
        assert sorted(x.kind for x in a.annotations(a.images()[0].id)) == ["box", "polygon"]
        assert yolo.write(a, tmp_path / "out")["boxes_as_polygons"] == 1
        rows = (tmp_path / "out" / "labels" / "train" / "a.txt").read_text().splitlines()
        assert rows == ["0 0.4 0.4 0.6 0.4 0.6 0.6 0.4 0.6", "0 0.1 0.1 0.3 0.1 0.2 0.5"]
    finally:
        a.close()


def test_boxes_entirely_outside_the_image_are_counted_not_written(tmp_path):
    store = ProjectStore.create(tmp_path / "a" / "a.vbproj")
    try:
        cat = store.add_category("cat")
        rec = store.add_image(write_png(tmp_path / "a" / "one.png", 20, 10))
        store.bulk_insert_annotations([Annotation(rec.id, cat.id, Box(25, 2, 30, 8)),
                                       Annotation(rec.id, cat.id, Box(-3, 2, 5, 8))])
        summary = yolo.write(store, tmp_path / "out")
        assert summary["boxes"] == 1 and summary["not_exported"] == {"box_outside_image": 1}
        assert (tmp_path / "out" / "labels" / "train" / "one.txt").read_text() == "0 0.125 0.5 0.25 0.6\n"
    finally:
        store.close()

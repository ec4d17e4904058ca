"""A user exports a demo project as YOLO and gives data.yaml to Ultralytics: every label file must
follow Ultralytics' rules, for both tasks, and importing the export gives the objects back.

Ultralytics' label rules, as its dataset docs give them (docs.ultralytics.com/datasets/detect and
/datasets/segment), and as its loader checks them (it refuses a file mixing the two row kinds):
- one text file per image, one row per object;
- detect rows: ``class x_center y_center width height`` (5 values);
  segment rows: ``class x1 y1 ... xn yn`` with at least 3 points (an odd count >= 7 values);
  a file holds only one of the two kinds;
- coordinates normalised to 0..1 by the image's width and height;
- class indices are integers from 0 and below nc = the number of names in data.yaml.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from engine.annotations import geometry as geo
from engine.annotations.bundle import import_bundle
from engine.annotations.formats import export_from, yolo
from engine.annotations.model import Annotation, Box, MaskRLE, Polygon
from engine.annotations.store import ProjectStore
from engine.demo import build_demo

from .strategies import write_png

DEMOS = ("photos", "shapes", "galaxies")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Path]:
    return build_demo(tmp_path_factory.mktemp("demo"), seed=2, n_shapes=8, n_galaxies=4)


def objects_per_image(store: ProjectStore) -> dict[str, int]:
    """image file stem -> number of objects, counted as a user would: annotations with an area,
    those sharing a category and an instance_id being one object."""
    out = {}
    anns = store.all_annotations()
    for rec in store.images():
        keys = set()
        for n, a in enumerate(anns.get(rec.id, [])):
            if isinstance(a.geometry, (Box, Polygon, MaskRLE)):
                keys.add((a.category_id, a.instance_id) if a.instance_id is not None else ("alone", n))
        out[Path(rec.path).stem] = len(keys)
    return out


def check_ultralytics_rules(export: Path, expected_objects: dict[str, int]) -> set[str]:
    """Assert Ultralytics' rules on an export; returns the row kinds seen ({"detect"}, {"segment"})."""
    data = yaml.safe_load((export / "data.yaml").read_text())
    assert isinstance(data["names"], dict) and sorted(data["names"]) == list(range(len(data["names"])))
    nc = len(data["names"])
    root = Path(data["path"])
    for key in ("train", "val"):
        assert (root / data[key]).is_dir(), f"data.yaml {key}: {data[key]} is not a folder of images"
    kinds_seen = set()
    labels = sorted((export / "labels").rglob("*.txt"))
    assert sorted(p.stem for p in labels) == sorted(expected_objects)  # one file per image
    for label in labels:
        rows = [ln.split() for ln in label.read_text().splitlines() if ln.strip()]
        assert len(rows) == expected_objects[label.stem], f"{label}: one row per object"
        kinds = {"detect" if len(r) == 5 else "segment" if len(r) >= 7 and len(r) % 2 == 1 else "bad"
                 for r in rows}
        assert "bad" not in kinds and len(kinds) <= 1, f"{label}: rows of one kind only, got {kinds}"
        kinds_seen |= kinds
        for r in rows:
            assert r[0].isdigit() and int(r[0]) < nc, f"{label}: class {r[0]} not in 0..{nc - 1}"
            assert all(0.0 <= float(v) <= 1.0 for v in r[1:]), f"{label}: coordinates outside 0..1"
        image = next((export / "images").rglob(label.stem + ".*"))
        assert image.parent.name == label.parent.name  # images/<split>/a.png <-> labels/<split>/a.txt
    return kinds_seen


@pytest.mark.parametrize("task", ["detect", "segment"])
@pytest.mark.parametrize("name", DEMOS)
def test_every_demo_export_follows_ultralytics_label_rules(demo, tmp_path, name, task):
    with ProjectStore(demo[name], readonly=True) as store:
        summary = export_from(store, "yolo", tmp_path / "out", task=task)
        expected = objects_per_image(store)
    assert summary["task"] == task and summary["objects"] == sum(expected.values())
    assert check_ultralytics_rules(tmp_path / "out", expected) == {task}


def test_auto_picks_segment_for_projects_with_masks_and_says_why(demo, tmp_path):
    with ProjectStore(demo["shapes"], readonly=True) as store:
        summary = export_from(store, "yolo", tmp_path / "out")
        n = sum(objects_per_image(store).values())
    assert summary["task"] == "segment" and f"{n} of the project's {n} objects" in summary["task_reason"]
    # each object of the demo is a box and a mask: they became one row, and the summary says so
    assert summary["merged_objects"] == n and summary["objects"] == n


def test_auto_picks_detect_for_a_project_of_boxes(tmp_path):
    with ProjectStore.create(tmp_path / "p" / "p.vbproj") as store:
        cat = store.add_category("cat")
        rec = store.add_image(write_png(tmp_path / "p" / "a.png", 20, 10))
        store.add_annotations([Annotation(rec.id, cat.id, Box(2, 2, 10, 8))])
        assert yolo.choose_task(store) == ("detect", "auto: no object of the project has a mask or polygon")
        summary = export_from(store, "yolo", tmp_path / "out")
    assert summary["task"] == "detect" and summary["boxes"] == 1
    assert (tmp_path / "out" / "labels" / "train" / "a.txt").read_text() == "0 0.3 0.5 0.4 0.6\n"


def test_segment_export_of_shapes_imports_as_the_same_masks_each_with_its_box(demo, tmp_path):
    from engine.data.detection import instances_of

    with ProjectStore(demo["shapes"], readonly=True) as a:
        export_from(a, "yolo", tmp_path / "out", task="segment")
        b = ProjectStore.create(tmp_path / "b" / "b.vbproj")
        try:
            import_bundle(b, yolo.read(tmp_path / "out"))
            names_a = {c.id: c.name for c in a.categories()}
            names_b = {c.id: c.name for c in b.categories()}
            label_a = {c.id: i + 1 for i, c in enumerate(a.categories())}
            label_b = {c.id: i + 1 for i, c in enumerate(b.categories())}
            recs_b = {Path(r.path).name: r for r in b.images()}
            anns_a, anns_b = a.all_annotations(), b.all_annotations()
            for rec in a.images():
                other = recs_b[Path(rec.path).name]
                assert other.split == rec.split
                got = anns_b.get(other.id, [])
                # one polygon per object, whose pixels are the object's mask (the polygon tolerance
                # of a traced mask is a quarter pixel, so no pixel changes)
                assert all(x.kind == "polygon" for x in got)
                masks_a = sorted((names_a[x.category_id], geo.decode_mask(x.geometry).tobytes())
                                 for x in anns_a[rec.id] if x.kind == "mask")
                masks_b = sorted((names_b[x.category_id],
                                  geo.polygon_to_mask(x.geometry, rec.height, rec.width).tobytes()) for x in got)
                assert masks_b == masks_a
                # and a trainer reading the imported project sees each object with the box it had
                boxes_a, labels_a, _, _ = instances_of(anns_a[rec.id], label_a, rec.height, rec.width, False)
                boxes_b, labels_b, _, _ = instances_of(got, label_b, rec.height, rec.width, False)
                key = lambda boxes, labels: sorted(zip(labels.tolist(), boxes.tolist()))  # noqa: E731
                pairs = list(zip(key(boxes_b, labels_b), key(boxes_a, labels_a)))
                assert len(pairs) == len(boxes_a) == len(boxes_b)
                # the box of a polygon-only object is its outline's bounds: within the polygon
                # tolerance (a quarter pixel) of the pixel box it had
                assert all(lb == la and np.allclose(bb, ba, atol=0.25) for (lb, bb), (la, ba) in pairs)
                for x in got:  # the polygon's own bounds lie within a quarter pixel of the box
                    x1, y1, x2, y2 = geo.bounds(x.geometry)
                    box = next(y.geometry for y in anns_a[rec.id] if y.kind == "box" and
                               max(abs(y.geometry.x1 - x1), abs(y.geometry.y1 - y1),
                                   abs(y.geometry.x2 - x2), abs(y.geometry.y2 - y2)) <= 0.25 + 1e-6)
                    assert box is not None
        finally:
            b.close()


def test_data_yaml_names_only_the_splits_that_have_images(tmp_path):
    with ProjectStore.create(tmp_path / "p" / "p.vbproj") as store:
        cat = store.add_category("cat")
        store.add_category("dog: 'big'")
        for name, split in (("a.png", "train"), ("b.png", "test")):
            rec = store.add_image(write_png(tmp_path / "p" / name, 20, 10), split=split)
            store.add_annotations([Annotation(rec.id, cat.id, Box(2, 2, 10, 8))])
        summary = export_from(store, "yolo", tmp_path / "out")
    data = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
    assert set(data) == {"path", "train", "val", "test", "nc", "names"}
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/train", "images/test")
    assert data["names"] == {0: "cat", 1: "dog: 'big'"} and data["nc"] == 2
    assert summary["val_is_train"] is True and summary["splits"] == ["train", "test"]
    assert not (tmp_path / "out" / "images" / "val").exists() and not (tmp_path / "out" / "labels" / "val").exists()


def test_an_object_of_several_parts_and_holes_is_one_row_with_the_same_pixels():
    rng = np.random.default_rng(11)
    for _ in range(25):
        h, w = int(rng.integers(6, 30)), int(rng.integers(6, 30))
        mask = (rng.random((h, w)) < 0.45).astype(np.uint8)
        if not mask.any():
            continue
        ring = yolo.join_parts(yolo.mask_outline(mask))
        # through the text file's 8 decimals, as export writes the row
        values = [float(v) for v in yolo._line(0, [v for x, y in ring for v in (x / w, y / h)]).split()[1:]]
        back = Polygon(tuple((x * w, y * h) for x, y in zip(values[0::2], values[1::2])))
        assert np.array_equal(geo.polygon_to_mask(back, h, w), mask)


def test_x_anylabeling_layouts_import(tmp_path):
    """X-AnyLabeling saves YOLO labels in labels/ beside the images, with classes.txt at the root
    (or beside the images and their label files)."""
    beside = tmp_path / "xany"
    write_png(beside / "demo.jpg", 40, 20)
    (beside / "labels").mkdir()
    (beside / "labels" / "demo.txt").write_text("1 0.5 0.5 0.5 0.5\n0 0.1 0.1 0.3 0.1 0.2 0.5\n")
    (beside / "classes.txt").write_text("person\ncar\n")
    bundle = yolo.read(beside)
    assert bundle.problems == [] and [c.name for c in bundle.categories] == ["person", "car"]
    (image,) = bundle.images
    assert image.file.name == "demo.jpg"
    assert [(a.category_id, a.geometry) for a in image.annotations] == [
        (2, Box(10.0, 5.0, 30.0, 15.0)), (1, Polygon(((4.0, 2.0), (12.0, 2.0), (8.0, 10.0))))]

    flat = tmp_path / "flat"
    write_png(flat / "demo.jpg", 40, 20)
    (flat / "demo.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (flat / "classes.txt").write_text("person\n")
    bundle = yolo.read(flat)
    assert bundle.problems == [] and bundle.images[0].annotations[0].geometry == Box(10.0, 5.0, 30.0, 15.0)


def test_an_export_dialog_can_list_the_choices_and_tell_what_auto_will_pick(demo, tmp_path):
    from engine.annotations.errors import BadInput
    from engine.annotations.formats import EXPORT_OPTIONS

    assert EXPORT_OPTIONS["yolo"]["task"] == ("auto", "detect", "segment")  # the default first
    assert EXPORT_OPTIONS["voc"]["keep_image_format"][0] is False
    with ProjectStore(demo["galaxies"], readonly=True) as store:
        task, why = yolo.choose_task(store)
        assert task == "segment" and why.startswith("auto: ")
        assert yolo.choose_task(store, "detect") == ("detect", "detect was asked for")
        with pytest.raises(BadInput) as err:
            export_from(store, "yolo", tmp_path / "out", task="classify")
        assert err.value.problem.field == "task"
        with pytest.raises(BadInput) as err:
            export_from(store, "coco", tmp_path / "out", task="detect")
        assert err.value.problem.field == "task" and not (tmp_path / "out").exists()

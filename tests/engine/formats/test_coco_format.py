"""COCO export -> import on a fixed project: every field that COCO can carry comes back."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from engine.annotations.formats import export_from, import_into
from engine.annotations.geometry import decode_mask, encode_mask
from engine.annotations.model import Annotation, Box, Point, Polygon
from engine.annotations.store import ProjectStore

from .strategies import image_set, normalized, write_png


@pytest.fixture
def project(tmp_path):
    s = ProjectStore.create(tmp_path / "a" / "p.vbproj")
    cat, dog = s.add_category("cat"), s.add_category("dog")
    a = s.add_image(write_png(tmp_path / "a" / "imgs" / "a.png", 30, 20), split="val", status="done")
    b = s.add_image(write_png(tmp_path / "a" / "imgs" / "sub" / "b.png", 12, 10))
    s.add_image(write_png(tmp_path / "a" / "imgs" / "empty.png", 8, 8), split="test")
    m = np.zeros((20, 30), np.uint8)
    m[3:9, 4:20] = 1
    s.add_annotations([
        Annotation(a.id, cat.id, Box(1.5, 2.25, 10, 12)),
        Annotation(a.id, dog.id, Polygon(((2, 2), (20, 3), (15, 18))), score=0.75),
        # two parts of one object
        Annotation(a.id, dog.id, Polygon(((21, 1), (29, 1), (29, 6))), instance_id=7),
        Annotation(a.id, dog.id, Polygon(((21, 10), (29, 10), (25, 19))), instance_id=7),
        Annotation(a.id, cat.id, encode_mask(m), attributes={"iscrowd": 1}),
        Annotation(b.id, cat.id, Point(3, 4)),  # COCO has no points: skipped, and said so
    ])
    yield s
    s.close()


def test_export_writes_coco_that_pycocotools_reads(project, tmp_path):
    summary = export_from(project, "coco", tmp_path / "out")
    assert summary["skipped"] == {"point": 1} and summary["annotations"] == 4 and summary["images"] == 3
    doc = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert [a["id"] for a in doc["annotations"]] == [1, 2, 3, 4]
    assert sorted(i["file_name"] for i in doc["images"]) == ["imgs/a.png", "imgs/empty.png", "imgs/sub/b.png"]
    assert (tmp_path / "out" / "images" / "imgs" / "sub" / "b.png").is_file()
    box, poly, parts, crowd = doc["annotations"]
    assert box["bbox"] == [1.5, 2.25, 8.5, 9.75] and box["area"] == pytest.approx(8.5 * 9.75)
    assert box["segmentation"] == [] and box["iscrowd"] == 0
    assert poly["score"] == 0.75 and poly["area"] == pytest.approx(0.5 * abs(18 * 16 - 1 * 13))
    assert len(parts["segmentation"]) == 2 and parts["bbox"] == [21, 1, 8, 18]
    assert crowd["iscrowd"] == 1 and crowd["area"] == 6 * 16 and crowd["bbox"] == [4, 3, 16, 6]
    from pycocotools.coco import COCO
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        c = COCO(str(tmp_path / "out" / "annotations.json"))
    assert c.annToMask(c.anns[4]).sum() == 6 * 16


def test_import_of_export_gives_the_same_project(project, tmp_path):
    export_from(project, "coco", tmp_path / "out")
    other = ProjectStore.create(tmp_path / "b" / "p.vbproj")
    try:
        report = import_into(other, "coco", tmp_path / "out" / "annotations.json")
        assert report.images_added == 3 and report.annotations_added == 5
        assert normalized(other) == normalized(project, kinds=("box", "polygon", "mask"))
        assert image_set(other) == image_set(project)
        anns = [a for v in other.all_annotations().values() for a in v]
        parts = [a for a in anns if a.instance_id is not None]
        assert len(parts) == 2 and parts[0].instance_id == parts[1].instance_id
        assert [a.score for a in anns if a.kind == "polygon" and a.instance_id is None] == [0.75]
        assert [a.attributes for a in anns if a.kind == "mask"] == [{"iscrowd": 1}]
        assert {r.status for r in other.images()} == {"done", "new"}
        # export again: byte-identical JSON apart from nothing
        export_from(other, "coco", tmp_path / "out2")
        d1 = json.loads((tmp_path / "out" / "annotations.json").read_text())
        d2 = json.loads((tmp_path / "out2" / "annotations.json").read_text())
        assert d1["annotations"] == d2["annotations"] and d1["categories"] == d2["categories"]
    finally:
        other.close()


def test_uncompressed_rle_and_split_filter(tmp_path):
    folder = tmp_path / "src"
    write_png(folder / "images" / "x.png", 6, 4)
    m = np.zeros((4, 6), np.uint8)
    m[1:3, 2:5] = 1
    # uncompressed RLE: column-major run lengths starting with zeros
    counts, flat, run, cur = [], m.flatten(order="F"), 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            run, cur = 0, v
        run += 1
    counts.append(run)
    doc = {"images": [{"id": 5, "file_name": "x.png", "width": 6, "height": 4}],  # found under images/
           "categories": [{"id": 3, "name": "blob", "supercategory": "thing"}],
           "annotations": [{"id": 0, "image_id": 5, "category_id": 3, "iscrowd": 1,
                            "segmentation": {"size": [4, 6], "counts": counts}}]}
    (folder / "ann.json").write_text(json.dumps(doc))
    s = ProjectStore.create(tmp_path / "p" / "p.vbproj")
    try:
        import_into(s, "coco", folder / "ann.json")
        (a,) = s.annotations(s.images()[0].id)
        assert np.array_equal(decode_mask(a.geometry), m) and a.attributes == {"iscrowd": 1}
        assert mask_utils.area({"size": [4, 6], "counts": a.geometry.counts.encode()}) == 6
        assert export_from(s, "coco", tmp_path / "val_only", split="val")["images"] == 0
        assert export_from(s, "coco", tmp_path / "train_only", split="train")["annotations"] == 1
    finally:
        s.close()


def test_export_with_a_missing_image_names_it(project, tmp_path):
    rec = project.images()[0]
    project.image_path(rec).unlink()
    from engine.annotations.errors import BadInput

    with pytest.raises(BadInput) as err:
        export_from(project, "coco", tmp_path / "out")
    assert err.value.problem.file == str(project.image_path(rec)) and err.value.problem.field == "image"
    assert not (tmp_path / "out" / "annotations.json").exists()


def test_instance_ids_survive_so_box_and_mask_stay_one_object(tmp_path):
    """The demo's objects are a Box and a MaskRLE sharing an instance_id (detectors read the box,
    segmenters the mask, engine.data groups them): a COCO round trip must not split them."""
    s = ProjectStore.create(tmp_path / "a" / "p.vbproj")
    cat = s.add_category("cat")
    rec = s.add_image(write_png(tmp_path / "a" / "a.png", 30, 20))
    m = np.zeros((20, 30), np.uint8)
    m[3:9, 4:20] = 1
    s.add_annotations([Annotation(rec.id, cat.id, Box(4, 3, 20, 9), instance_id=3),
                       Annotation(rec.id, cat.id, encode_mask(m), instance_id=3),
                       Annotation(rec.id, cat.id, Polygon(((21, 1), (29, 1), (29, 6))), instance_id=1),
                       Annotation(rec.id, cat.id, Polygon(((21, 10), (29, 10), (25, 19))), instance_id=1),
                       Annotation(rec.id, cat.id, Box(0, 0, 2, 2))])
    export_from(s, "coco", tmp_path / "out")
    s.close()
    doc = json.loads((tmp_path / "out" / "annotations.json").read_text())
    # one annotation per object: the box and mask of instance 3 are one, with both bbox and mask
    assert sorted(a.get("instance_id", 0) for a in doc["annotations"]) == [0, 1, 3]
    obj = next(a for a in doc["annotations"] if a.get("instance_id") == 3)
    assert obj["bbox"] == [4, 3, 16, 6] and obj["area"] == 6 * 16 and obj["own_bbox"] is True
    assert mask_utils.decode({"size": obj["segmentation"]["size"],
                              "counts": obj["segmentation"]["counts"].encode()}).sum() == 6 * 16
    with ProjectStore.create(tmp_path / "b" / "p.vbproj") as b:
        import_into(b, "coco", tmp_path / "out")
        got = sorted((a.kind, a.instance_id or 0) for a in b.annotations(b.images()[0].id))
    assert got == [("box", 0), ("box", 3), ("mask", 3), ("polygon", 1), ("polygon", 1)]


def test_fresh_instance_ids_of_multi_part_objects_avoid_the_files_own(tmp_path):
    write_png(tmp_path / "a.png", 30, 20)
    tri = [[21, 1, 29, 1, 29, 6], [21, 10, 29, 10, 25, 19]]
    doc = {"images": [{"id": 5, "file_name": "a.png", "width": 30, "height": 20}],
           "categories": [{"id": 1, "name": "cat"}],
           "annotations": [{"id": 1, "image_id": 5, "category_id": 1, "segmentation": tri},  # gets a fresh id
                           {"id": 2, "image_id": 5, "category_id": 1, "bbox": [1, 1, 4, 4], "instance_id": 1},
                           {"id": 3, "image_id": 5, "category_id": 1, "bbox": [5, 5, 4, 4], "instance_id": 2}]}
    (tmp_path / "annotations.json").write_text(json.dumps(doc))
    with ProjectStore.create(tmp_path / "p" / "p.vbproj") as s:
        import_into(s, "coco", tmp_path / "annotations.json")
        ids = sorted((a.kind, a.instance_id) for a in s.annotations(s.images()[0].id))
    assert ids == [("box", 1), ("box", 2), ("polygon", 3), ("polygon", 3)]

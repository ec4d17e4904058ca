"""Our readers against files written by LabelMe itself (labelme's examples: data_annotated JSON,
and what labelme2voc / labelme2coco made of them).

The fixtures live in <repo>/../shared/fixtures/labelme (override with VISIONBENCH_LABELME_FIXTURES).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from engine.annotations.formats import export_from, import_into
from engine.annotations.geometry import area, geometry_to_mask
from engine.annotations.model import Box, Polygon
from engine.annotations.store import ProjectStore

FIXTURES = Path(os.environ.get("VISIONBENCH_LABELME_FIXTURES",
                               Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "labelme"))
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"LabelMe fixtures not found at {FIXTURES}")
BBOX = FIXTURES / "bbox_detection"
INST = FIXTURES / "instance_segmentation"


def _objects(store: ProjectStore, skip=("__ignore__",)) -> dict[str, list]:
    """image file stem -> [(category name, geometry)] in stored order."""
    names = {c.id: c.name for c in store.categories()}
    anns = store.all_annotations()
    return {Path(r.path).stem: [(names[a.category_id], a.geometry) for a in anns.get(r.id, [])
                                if names[a.category_id] not in skip]
            for r in store.images()}


@pytest.fixture
def project(tmp_path):
    store = ProjectStore.create(tmp_path / "p" / "project.vbproj")
    yield store
    store.close()


def test_labelme_rectangles_equal_labelme2voc_boxes(project):
    report = import_into(project, "labelme", BBOX / "data_annotated")
    assert report.images_added == 3 and not report.skipped
    ours = _objects(project)
    xml_files = sorted((BBOX / "data_dataset_voc" / "Annotations").glob("*.xml"))
    assert sorted(ours) == [f.stem for f in xml_files]
    voc_names = {o.findtext("name") for f in xml_files for o in ET.parse(f).getroot().iter("object")}
    assert {c.name for c in project.categories()} == voc_names  # the same categories as labelme2voc's
    for xf in xml_files:
        root = ET.parse(xf).getroot()
        rec = project.image_by_path(project._rel(BBOX / "data_annotated" / root.findtext("filename")))
        assert (rec.width, rec.height) == (int(root.findtext("size/width")), int(root.findtext("size/height")))
        # labelme2voc copies LabelMe's corner coordinates into xmin..ymax unchanged (no +1 shift),
        # so they compare directly with our pixel-corner boxes.
        theirs = [(o.findtext("name"), [float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")])
                  for o in root.iter("object")]
        mine = [(n, [g.x1, g.y1, g.x2, g.y2]) for n, g in ours[xf.stem]]
        assert all(isinstance(g, Box) for _, g in ours[xf.stem])
        assert len(mine) == len(theirs) > 0
        for (n1, b1), (n2, b2) in zip(sorted(mine), sorted(theirs)):
            assert n1 == n2
            assert np.allclose(b1, b2, atol=0.5), (xf.name, b1, b2)


def _coco_folder(tmp_path) -> Path:
    """labelme2coco's annotations.json with the images where its file_name points (JPEGImages/)."""
    folder = tmp_path / "coco"
    (folder / "JPEGImages").mkdir(parents=True)
    shutil.copy(INST / "data_dataset_coco" / "annotations.json", folder)
    for jpg in (INST / "data_annotated").glob("*.jpg"):
        shutil.copy(jpg, folder / "JPEGImages")
    return folder


def test_labelme_polygons_equal_labelme2coco(project, tmp_path):
    import_into(project, "labelme", INST / "data_annotated")
    other = ProjectStore.create(tmp_path / "q" / "project.vbproj")
    try:
        report = import_into(other, "coco", _coco_folder(tmp_path) / "annotations.json")
        assert report.images_added == 3 and report.annotations_added == 16  # 12 objects, 16 polygon parts
        ours, theirs = _objects(project), _objects(other)
        assert sorted(ours) == sorted(theirs)
        # the same categories: those labelme2coco lists (minus its unused _background_) are all used here
        listed = {c["name"]
                  for c in json.loads((INST / "data_dataset_coco" / "annotations.json").read_text())["categories"]}
        used = {n for objs in ours.values() for n, _ in objs}
        assert {c.name for c in other.categories()} == listed - {"_background_"} and used <= listed
        for stem in ours:
            a = sorted((n, area(g)) for n, g in ours[stem])
            b = sorted((n, area(g)) for n, g in theirs[stem])
            assert [n for n, _ in a] == [n for n, _ in b]
            for (_, x), (_, y) in zip(a, b):
                assert x == pytest.approx(y, rel=0.01)
            assert all(isinstance(g, Polygon) for _, g in ours[stem] + theirs[stem])
        # labelme2coco merged the parts of grouped shapes into one annotation: our COCO reader
        # gives those parts a shared instance_id
        sofa = [a for anns in other.all_annotations().values() for a in anns
                if other.category(a.category_id).name == "sofa"]
        assert len(sofa) == 4 and len({a.instance_id for a in sofa}) == 1 and sofa[0].instance_id is not None
    finally:
        other.close()


def _edge_zone(labels: np.ndarray, radius: int = 2) -> np.ndarray:
    """Pixels within `radius` px of a change of label."""
    import cv2

    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    hi = cv2.dilate(labels, k)
    lo = cv2.erode(labels, k)
    return hi != lo


def test_rasterized_labelme_polygons_equal_segmentation_class_pngs(project):
    from PIL import Image

    import_into(project, "labelme", INST / "data_annotated")
    names = (INST / "data_dataset_voc" / "class_names.txt").read_text().split()
    class_names = [ln.strip() for ln in (INST / "data_dataset_voc" / "class_names.txt").read_text().splitlines()]
    assert names[0] == "_background_"
    index = {n: i for i, n in enumerate(class_names)}
    index["__ignore__"] = 255
    cats = {c.id: c.name for c in project.categories()}
    anns = project.all_annotations()
    for rec in project.images():
        ref = np.asarray(Image.open(INST / "data_dataset_voc" / "SegmentationClass" / (Path(rec.path).stem + ".png")))
        ours = np.zeros((rec.height, rec.width), np.uint8)
        for a in anns[rec.id]:  # LabelMe paints in shape order, later shapes on top
            ours[geometry_to_mask(a.geometry, rec.height, rec.width) > 0] = index[cats[a.category_id]]
        care = ~(_edge_zone(ref) | _edge_zone(ours) | (ref == 255))
        assert care.mean() > 0.8
        assert np.array_equal(ours[care], ref[care]), (rec.path, np.mean(ours[care] != ref[care]))
        assert set(np.unique(ref)) - {255} == set(np.unique(ours)) - {255}


def test_masks_import_of_labelme2voc_exports_the_same_pngs(project, tmp_path):
    from PIL import Image

    src = tmp_path / "voc"
    shutil.copytree(INST / "data_dataset_voc", src)
    (src / "JPEGImages").mkdir()
    for jpg in (INST / "data_annotated").glob("*.jpg"):
        shutil.copy(jpg, src / "JPEGImages")
    report = import_into(project, "masks", src)
    assert report.images_added == 3 and report.annotations_added > 10
    summary = export_from(project, "masks", tmp_path / "out")
    assert summary["images"] == 3
    for sub in ("SegmentationClass", "SegmentationObject"):
        for png in sorted((src / sub).glob("*.png")):
            a = np.asarray(Image.open(png))
            b = np.asarray(Image.open(tmp_path / "out" / sub / png.name))
            assert np.array_equal(a, b), png
    assert (tmp_path / "out" / "class_names.txt").read_text().split("\n")[:21] == \
        (src / "class_names.txt").read_text().strip().split("\n")


def _perfect_ap(coco_json: Path) -> dict:
    """AP of predictions equal to the ground truth of `coco_json` (segm and bbox), per pycocotools."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco_json))
        out = {}
        for iou_type in ("segm", "bbox"):
            dets = []
            for a in gt.dataset["annotations"]:
                d = {"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0}
                d["segmentation" if iou_type == "segm" else "bbox"] = (
                    gt.annToRLE(a) if iou_type == "segm" else a["bbox"])
                dets.append(d)
            ev = COCOeval(gt, gt.loadRes(dets), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out[iou_type] = float(ev.stats[0])
    return out


def test_coco_ids_from_zero_are_renumbered_so_perfect_predictions_score_ap_1(project, tmp_path):
    folder = _coco_folder(tmp_path)
    # the pitfall: labelme2coco numbers annotations from 0 and pycocotools treats id 0 as "no match"
    assert min(a["id"] for a in json.loads((folder / "annotations.json").read_text())["annotations"]) == 0
    assert _perfect_ap(folder / "annotations.json")["segm"] < 0.99

    import_into(project, "coco", folder / "annotations.json")
    export_from(project, "coco", tmp_path / "export")
    doc = json.loads((tmp_path / "export" / "annotations.json").read_text())
    assert min(a["id"] for a in doc["annotations"]) == 1
    assert len(doc["annotations"]) == 12  # multi-part objects merged back into one annotation each
    assert _perfect_ap(tmp_path / "export" / "annotations.json") == {"segm": 1.0, "bbox": 1.0}
    # labelme2coco's unused "_background_" category is not a class of the project
    assert "_background_" not in [c["name"] for c in doc["categories"]] and len(doc["categories"]) == 20


def test_coco_from_labelme_exports_as_masks_that_match_labelme2voc(project, tmp_path):
    from PIL import Image

    import_into(project, "coco", _coco_folder(tmp_path) / "annotations.json")
    export_from(project, "masks", tmp_path / "m")
    assert (tmp_path / "m" / "class_names.txt").read_text().split("\n")[:21] == \
        (INST / "data_dataset_voc" / "class_names.txt").read_text().strip().split("\n")
    for png in sorted((INST / "data_dataset_voc" / "SegmentationClass").glob("*.png")):
        ref = np.asarray(Image.open(png))
        ours = np.asarray(Image.open(tmp_path / "m" / "SegmentationClass" / png.name))
        care = ~(_edge_zone(ref) | _edge_zone(ours) | (ref == 255))
        assert np.array_equal(ours[care], ref[care]), png.name

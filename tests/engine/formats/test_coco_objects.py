"""A user exports the shapes demo (each object a box and a mask sharing an instance_id) as COCO:
one annotation per object, pycocotools scores the export against itself perfectly, and importing
it gives the same project back."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from engine.annotations.formats import export_from, import_into
from engine.annotations.store import ProjectStore
from engine.demo import build_demo

from .strategies import normalized


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo"), seed=5, n_shapes=10, n_galaxies=1)["shapes"]


def test_one_annotation_per_object_with_the_box_as_bbox_and_the_mask_as_segmentation(shapes, tmp_path):
    with ProjectStore(shapes, readonly=True) as store:
        summary = export_from(store, "coco", tmp_path / "out")
        anns = [a for v in store.all_annotations().values() for a in v]
    boxes = {a.instance_id: a.geometry for a in anns if a.kind == "box"}
    n = len(boxes)
    assert len(anns) == 2 * n and summary["annotations"] == summary["merged_objects"] == n
    doc = json.loads((tmp_path / "out" / "annotations.json").read_text())
    for a in doc["annotations"]:
        b = boxes[a["instance_id"]]
        assert a["bbox"] == [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1]
        assert isinstance(a["segmentation"], dict) and a["area"] > 0 and a["own_bbox"] is True


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_pycocotools_scores_the_export_against_itself_as_perfect(shapes, tmp_path, iou_type):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with ProjectStore(shapes, readonly=True) as store:
        export_from(store, "coco", tmp_path / "out")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / "out" / "annotations.json"))
        perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                    "segmentation": a["segmentation"], "score": 1.0} for a in gt.dataset["annotations"]]
        ev = COCOeval(gt, gt.loadRes(perfect), iouType=iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0) and ev.stats[8] == pytest.approx(1.0)  # mAP and recall


def test_import_of_the_export_gives_the_same_project_back(shapes, tmp_path):
    with ProjectStore(shapes, readonly=True) as a:
        export_from(a, "coco", tmp_path / "out")
        with ProjectStore.create(tmp_path / "b" / "b.vbproj") as b:
            report = import_into(b, "coco", tmp_path / "out")
            assert report.annotations_added == a.count_annotations()
            assert normalized(b) == normalized(a)
            # box and mask of each object still share one instance_id, the one it had
            pairs = lambda s: sorted((a_.instance_id, a_.kind, a_.source)  # noqa: E731
                                     for v in s.all_annotations().values() for a_ in v)
            assert pairs(b) == pairs(a)

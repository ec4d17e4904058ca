"""`visionbench predict --coco-results` can be scored by any COCO evaluator against
`visionbench export coco`, and gives the figures `visionbench eval` prints.

A scripted detector (known, imperfect detections derived from the ground truth: shifted boxes
and masks, one false positive per image, a dropped object) stands in for a trained Mask R-CNN,
so the scores are neither 0 nor 1 and the test runs in a second; real checkpoints go through the
same predict/eval code (tests/engine/models/test_rcnn_cli.py).
"""
from __future__ import annotations

import contextlib
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine import cli
from engine.annotations.formats.coco import to_coco
from engine.annotations.geometry import bounds, decode_mask
from engine.annotations.store import ProjectStore
from engine.data.semantic import object_shapes
from engine.demo.shapes import build_shapes
from engine.infer import run as infer_run
from engine.infer.detections import Detections

CLASSES = ["circle", "rectangle", "triangle"]


class ScriptedDetector:
    """Returns prepared Detections image after image (predict and eval visit the split in the
    same order)."""

    def __init__(self, per_image: list[Detections]):
        self.per_image, self.calls = per_image, 0

    def predict(self, rgb, score_threshold: float = 0.05, nms_iou: float = 0.5) -> Detections:
        det = self.per_image[self.calls % len(self.per_image)]
        self.calls += 1
        assert rgb.shape[:2] == (det.masks.shape[1], det.masks.shape[2])
        return det


def _imperfect(store: ProjectStore, rng: np.random.Generator) -> list[Detections]:
    names = {c.id: c.name for c in store.categories()}
    out = []
    for rec in store.images(split="val"):
        objs = [a for a in object_shapes(store.annotations(rec.id)) if a.kind == "mask"]
        boxes, scores, labels, masks = [], [], [], []
        for k, a in enumerate(objs):
            if k == 1:
                continue  # a miss
            dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
            x1, y1, x2, y2 = bounds(a.geometry)
            boxes.append([x1 + dx, y1 + dy, x2 + dx + rng.integers(0, 3), y2 + dy])
            masks.append(np.roll(decode_mask(a.geometry), (dy, dx), axis=(0, 1)) > 0)
            scores.append(rng.uniform(0.3, 1.0))
            labels.append(CLASSES.index(names[a.category_id]))
        boxes.append([2, 2, 30, 30])  # a false positive
        fp = np.zeros((rec.height, rec.width), bool)
        fp[2:30, 2:30] = True
        masks.append(fp)
        scores.append(0.95)
        labels.append(0)
        out.append(Detections(np.array(boxes, np.float32), np.array(scores), np.array(labels), CLASSES,
                              np.array(masks)))
    return out


@pytest.fixture
def setup(tmp_path, monkeypatch):
    project = build_shapes(tmp_path, n_images=12, seed=5)
    with ProjectStore(project, readonly=True) as store:
        detector = ScriptedDetector(_imperfect(store, np.random.default_rng(1)))
        gt = to_coco(store, split="val")  # exported BEFORE predict stores its results in the project
    meta = {"family": "maskrcnn", "classes": CLASSES, "config": {}, "metrics": {}}
    monkeypatch.setattr(infer_run, "load_predictor",
                        lambda ckpt, device="auto": (detector, meta, SimpleNamespace(name="maskrcnn", kind="instance")))
    ckpt = tmp_path / "scripted.ckpt"
    ckpt.write_bytes(b"stands in for a checkpoint")
    return project, ckpt, gt


def _one_annotation_per_object(gt: dict) -> dict:
    """The export writes the demo's box and mask of one object as two annotations sharing an
    ``instance_id``; a COCO ground truth has one per object (the mask, which carries the bbox)."""
    keep: dict = {}
    for a in gt["annotations"]:
        key = (a["image_id"], a.get("instance_id", ("id", a["id"])))
        if key not in keep or a["segmentation"]:
            keep[key] = a
    return {**gt, "annotations": [dict(a, id=i + 1) for i, a in enumerate(keep.values())]}


def _pycocotools(gt: dict, results: list[dict], iou_type: str) -> tuple[float, float]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def test_coco_results_score_like_eval_against_the_exported_ground_truth(setup, tmp_path, capsys):
    project, ckpt, gt = setup
    results_file = tmp_path / "results.json"
    capsys.readouterr()
    # as proposals: predictions stored as plain annotations would be ground truth (ADR 0017), and
    # eval would then score the detector against itself
    assert cli.main(["predict", str(ckpt), "--project", str(project), "--split", "val", "--as-proposals",
                     "--coco-results", str(results_file)]) == 0
    results = json.loads(results_file.read_text())
    assert {r["image_id"] for r in results} == {im["id"] for im in gt["images"]}
    assert {r["category_id"] for r in results} <= {c["id"] for c in gt["categories"]}
    assert all(set(r) == {"image_id", "category_id", "bbox", "score", "segmentation"} for r in results)
    assert all(isinstance(r["segmentation"]["counts"], str) for r in results)

    capsys.readouterr()
    assert cli.main(["eval", str(ckpt), "--project", str(project), "--split", "val"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    cleaned = _one_annotation_per_object(gt)
    box_map, box_map50 = _pycocotools(cleaned, results, "bbox")
    mask_map, mask_map50 = _pycocotools(cleaned, results, "segm")
    assert 0.1 < box_map50 < 1 and 0.1 < mask_map50 < 1  # imperfect on purpose: a real comparison
    assert metrics["box_map"] == pytest.approx(box_map, abs=1e-9)
    assert metrics["box_map50"] == pytest.approx(box_map50, abs=1e-9)
    assert metrics["mask_map"] == pytest.approx(mask_map, abs=1e-9)
    assert metrics["mask_map50"] == pytest.approx(mask_map50, abs=1e-9)


def test_a_mask_result_carries_the_detectors_box_not_the_masks_bounds(setup, tmp_path, capsys):
    project, ckpt, _ = setup
    results_file = tmp_path / "results.json"
    assert cli.main(["predict", str(ckpt), "--project", str(project), "--split", "val", "--store", "proposals",
                     "--coco-results", str(results_file)]) == 0
    results = json.loads(results_file.read_text())
    with ProjectStore(project, readonly=True) as store:
        stored = [a for anns in store.all_annotations(split="val").values() for a in anns
                  if a.source == "maskrcnn:scripted" and a.kind == "box"]
    expected = sorted((a.image_id, round(a.geometry.x1, 3), round(a.geometry.x2, 3)) for a in stored)
    got = sorted((r["image_id"], round(r["bbox"][0], 3), round(r["bbox"][0] + r["bbox"][2], 3)) for r in results)
    assert got == expected and len(results) == len(stored)

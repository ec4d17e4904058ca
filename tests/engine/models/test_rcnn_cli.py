"""`visionbench train/predict/eval` with the R-CNN families, end to end on a tiny shapes project."""
from __future__ import annotations

import json

import pytest

from engine.annotations.formats.coco import to_coco
from engine.annotations.store import ProjectStore
from engine.cli import main

from .rcnn_fixtures import TINY, tiny_shapes


@pytest.fixture(scope="module")
def maskrcnn_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rcnn_cli")
    project = tiny_shapes(folder)
    ckpt = folder / "m.ckpt"
    config = json.dumps({k: v for k, v in TINY.items() if k != "device"} | {"max_steps": 2})
    code = main(["train", "maskrcnn", "--project", str(project), "--out", str(ckpt), "--epochs", "1",
                 "--device", "cpu", "--config", config])
    assert code == 0 and ckpt.is_file()
    return project, ckpt, folder


def test_predict_stores_boxes_and_masks_as_proposals_and_writes_coco_results(maskrcnn_run, capsys):
    project, ckpt, folder = maskrcnn_run
    results = folder / "results.json"
    capsys.readouterr()
    code = main(["predict", str(ckpt), "--project", str(project), "--split", "val", "--as-proposals",
                 "--coco-results", str(results), "--device", "cpu"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["annotations"] > 0
    store = ProjectStore(project, readonly=True)
    try:
        predicted = [a for anns in store.all_annotations(split="val").values() for a in anns
                     if a.source == "maskrcnn:m"]
        assert {a.kind for a in predicted} == {"box", "mask"}
        assert all(a.attributes.get("proposal") is True and 0 <= a.score <= 1 for a in predicted)
        exported = to_coco(store, split="val")
    finally:
        store.close()
    entries = json.loads(results.read_text())
    # image and category ids are the ones `visionbench export coco` writes
    assert {e["image_id"] for e in entries} <= {im["id"] for im in exported["images"]}
    assert {e["category_id"] for e in entries} <= {c["id"] for c in exported["categories"]}
    assert all("segmentation" in e for e in entries)


def test_eval_prints_box_and_mask_map_with_per_class_ap(maskrcnn_run, capsys):
    project, ckpt, _ = maskrcnn_run
    capsys.readouterr()
    assert main(["eval", str(ckpt), "--project", str(project), "--device", "cpu"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    for key in ("box_map50", "box_map", "mask_map50", "mask_map"):
        assert 0.0 <= metrics[key] <= 1.0
    assert set(metrics["per_class_mask_ap50"]) == {"circle", "rectangle", "triangle"}
    assert set(metrics["per_class_box_ap"]) == {"circle", "rectangle", "triangle"}


def test_a_corrupt_checkpoint_is_exit_code_2_naming_the_file(maskrcnn_run, capsys, tmp_path):
    project, _, _ = maskrcnn_run
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", str(bad), "--project", str(project)]) == 2
    assert "bad.ckpt" in capsys.readouterr().err

"""Our COCO figures are pycocotools' own figures; perfect predictions score 1, none score 0."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine.eval.coco_eval import box_iou_matrix, evaluate_detections, match_detections
from engine.infer.detections import Detections

CATS = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 5, "name": "bird"}]
LABELME_COCO = (Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "labelme"
                / "instance_segmentation" / "data_dataset_coco" / "annotations.json")


def _mask(h, w, box):
    m = np.zeros((h, w), bool)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    m[y1:y2, x1:x2] = True
    return m


def _scene():
    """Three 64x48 images, GT in COCO ids; predictions with misses, false alarms, wrong classes."""
    h, w = 48, 64
    gt = [
        {"image_id": 7, "width": w, "height": h, "boxes": [[2, 2, 20, 20], [30, 10, 60, 40]],
         "labels": [1, 2]},
        {"image_id": 8, "width": w, "height": h, "boxes": [[5, 5, 25, 30], [40, 0, 63, 20],
                                                            [0, 30, 15, 47]], "labels": [1, 5, 5]},
        {"image_id": 9, "width": w, "height": h, "boxes": [[10, 10, 50, 40]], "labels": [2]},
    ]
    for item in gt:
        item["masks"] = np.stack([_mask(h, w, b) for b in item["boxes"]])
    # labels are category INDICES (0 cat, 1 dog, 2 bird)
    preds_raw = [
        ([[3, 2, 21, 19], [31, 12, 58, 40], [0, 0, 10, 10]], [0.9, 0.8, 0.3], [0, 1, 0]),
        ([[6, 6, 24, 28], [41, 1, 62, 22], [30, 30, 50, 45]], [0.7, 0.95, 0.6], [0, 2, 2]),
        ([[12, 8, 52, 38], [10, 10, 50, 40]], [0.5, 0.55], [1, 0]),
    ]
    preds = []
    for boxes, scores, labels in preds_raw:
        masks = np.stack([_mask(h, w, b) for b in boxes])
        preds.append(Detections(np.array(boxes, np.float32), scores, labels,
                                [c["name"] for c in CATS], masks))
    return gt, preds


def _reference_stats(tmp_path, gt, preds, iou_type):
    """pycocotools run the documented way, from JSON files written by hand here."""
    images, anns, results = [], [], []
    for item, det in zip(gt, preds):
        images.append({"id": item["image_id"], "width": item["width"], "height": item["height"],
                       "file_name": f"{item['image_id']}.png"})
        for box, cat, m in zip(item["boxes"], item["labels"], item["masks"]):
            x1, y1, x2, y2 = box
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode()
            anns.append({"id": len(anns) + 1, "image_id": item["image_id"], "category_id": cat,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0,
                         "area": float(m.sum()) if iou_type == "segm" else (x2 - x1) * (y2 - y1),
                         "segmentation": rle})
        for box, s, lab, m in zip(det.boxes.tolist(), det.scores.tolist(), det.labels, det.masks):
            x1, y1, x2, y2 = box
            entry = {"image_id": item["image_id"], "category_id": CATS[lab]["id"], "score": s}
            if iou_type == "bbox":
                entry["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            else:
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode()
                entry["segmentation"] = rle
            results.append(entry)
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATS}))
    res_path.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        ev = COCOeval(coco, coco.loadRes(str(res_path)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_figures_equal_pycocotools_on_json_files(tmp_path, iou_type):
    gt, preds = _scene()
    ours = evaluate_detections(gt, preds, CATS, iou_type=iou_type)
    ref = _reference_stats(tmp_path, gt, preds, iou_type)
    assert ours["map"] == pytest.approx(ref[0], abs=1e-12)
    assert ours["map50"] == pytest.approx(ref[1], abs=1e-12)
    assert 0.2 < ours["map50"] < 1.0  # the scene is neither trivial nor hopeless
    aps = [v["ap"] for v in ours["per_class"].values() if v["ap"] is not None]
    assert np.mean(aps) == pytest.approx(ref[0])  # every class has GT here
    curve = ours["pr_curves"]["cat"]
    assert len(curve["recall"]) == len(curve["precision"]) == 101
    assert ours["per_class"]["bird"]["num_gt"] == 2


def test_coco_results_list_is_accepted_too():
    gt, preds = _scene()
    results = [r for item, det in zip(gt, preds)
               for r in det.to_coco_results(item["image_id"], [c["id"] for c in CATS])]
    a = evaluate_detections(gt, preds, CATS)
    b = evaluate_detections(gt, results, CATS)
    assert a["map"] == b["map"] and a["map50"] == b["map50"]


def test_perfect_and_empty_predictions():
    gt, _ = _scene()
    names = [c["name"] for c in CATS]
    perfect = [Detections(np.array(g["boxes"], np.float32), np.ones(len(g["boxes"])),
                          [[c["id"] for c in CATS].index(lab) for lab in g["labels"]], names,
                          g["masks"]) for g in gt]
    for iou_type in ("bbox", "segm"):
        res = evaluate_detections(gt, perfect, CATS, iou_type=iou_type)
        assert res["map"] == pytest.approx(1.0) and res["map50"] == pytest.approx(1.0)
        assert all(v["ap"] == pytest.approx(1.0) for v in res["per_class"].values())
    empty = evaluate_detections(gt, [Detections.empty(names) for _ in gt], CATS)
    assert empty["map"] == 0.0 and empty["map50"] == 0.0
    assert empty["per_class"]["dog"]["ap50"] == 0.0
    assert evaluate_detections(gt, [], CATS)["map50"] == 0.0  # an empty COCO results list


def test_labelme_fixture_perfect_predictions_score_one():
    """The LabelMe export numbers annotations from 0; we renumber, so perfect scores 1.0."""
    if not LABELME_COCO.exists():
        pytest.skip(f"fixture missing: {LABELME_COCO}")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(LABELME_COCO))
    cats = coco.dataset["categories"]
    index = {c["id"]: i for i, c in enumerate(cats)}
    gt, preds = [], []
    for img in coco.dataset["images"]:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                           a["bbox"][1] + a["bbox"][3]] for a in anns], np.float32)
        masks = np.stack([coco.annToMask(a).astype(bool) for a in anns])
        labels = [a["category_id"] for a in anns]
        gt.append({"image_id": img["id"], "width": img["width"], "height": img["height"],
                   "boxes": boxes, "labels": labels, "masks": masks})
        preds.append(Detections(boxes, np.full(len(anns), 0.9), [index[c] for c in labels],
                                [c["name"] for c in cats], masks))
    for iou_type in ("bbox", "segm"):
        res = evaluate_detections(gt, preds, cats, iou_type=iou_type)
        assert res["per_class"]["person"]["ap"] == pytest.approx(1.0)
        assert res["map"] == pytest.approx(1.0)
        assert res["per_class"]["_background_"]["ap"] is None  # no GT: undefined, not 0


def test_bad_input_names_the_field():
    gt, preds = _scene()
    with pytest.raises(ValueError, match=r"gt\[0\]: missing field 'width'"):
        evaluate_detections([{k: v for k, v in gt[0].items() if k != "width"}], preds[:1], CATS)
    with pytest.raises(ValueError, match=r"gt\[1\].labels\[1\]: category id 5"):
        evaluate_detections(gt, preds, CATS[:2])
    with pytest.raises(ValueError, match="one Detections per"):
        evaluate_detections(gt, preds[:2], CATS)
    with pytest.raises(ValueError, match="iou_type"):
        evaluate_detections(gt, preds, CATS, iou_type="keypoints")
    no_masks = [{k: v for k, v in g.items() if k != "masks"} for g in gt]
    with pytest.raises(ValueError, match=r"gt\[0\].masks"):
        evaluate_detections(no_masks, preds, CATS, iou_type="segm")


def test_match_detections_hand_cases():
    gt_boxes = [[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]
    gt_labels = [0, 0, 1]
    det_boxes = [[0, 0, 10, 10],     # TP on gt 0
                 [1, 1, 10, 10],     # duplicate of gt 0, lower score -> FP
                 [20, 20, 30, 30],   # right place, wrong class -> FP; gt 1 missed
                 [50, 50, 58, 60]]   # IoU 0.8 with gt 2, same class -> TP
    det_labels = [0, 0, 1, 1]
    det_scores = [0.9, 0.95, 0.8, 0.7]
    tp, fp, fn = match_detections(gt_boxes, gt_labels, det_boxes, det_labels, det_scores)
    # the 0.95 duplicate comes first and takes gt 0 (IoU 0.81): the exact box is then the FP
    assert tp.tolist() == [False, True, False, True]
    assert fp.tolist() == [True, False, True, False]
    assert fn.tolist() == [False, True, False]
    tp, fp, fn = match_detections(gt_boxes, gt_labels, det_boxes, det_labels, det_scores, iou=0.85)
    assert tp.tolist() == [True, False, False, False]
    assert fn.tolist() == [False, True, True]
    tp, fp, fn = match_detections(np.zeros((0, 4)), [], det_boxes, det_labels, det_scores)
    assert fp.all() and fn.size == 0


def test_box_iou_matrix():
    iou = box_iou_matrix([[0, 0, 10, 10], [0, 0, 0, 0]], [[5, 0, 15, 10], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou, [[1 / 3, 1.0], [0.0, 0.0]])

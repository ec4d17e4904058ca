"""Detection evaluation lives in one place (engine.eval.detection): the workbench's Evaluate job,
``visionbench eval`` and the trainers' validation all score through ``evaluate_detector``."""
import numpy as np
import pytest

from engine.eval.detection import evaluate_detector, evaluate_job
from engine.infer.detections import Detections
from engine.jobs import Job, run_job_sync


class _Sample:
    """A DetectionSample-like record: one 40x40 image with a cat and a dog."""

    def __init__(self, image_id: int):
        self.record = type("Rec", (), {"id": image_id, "width": 40, "height": 40, "path": f"{image_id}.png"})()
        self.image = np.zeros((40, 40, 3), np.uint8)
        self.boxes = np.array([[2, 2, 12, 12], [20, 20, 36, 36]], np.float32)
        self.labels = np.array([1, 2], np.int64)
        masks = np.zeros((2, 40, 40), np.uint8)
        masks[0, 2:12, 2:12] = 1
        masks[1, 20:36, 20:36] = 1
        self.masks = masks


class _FindsTheCatOnly:
    """Finds the cat exactly, calls the dog a cat (a false positive and a miss)."""

    class_names = ["cat", "dog"]

    def predict(self, image, score_threshold=0.05, nms_iou=0.5):
        masks = np.zeros((2, 40, 40), bool)
        masks[0, 2:12, 2:12] = True
        masks[1, 20:36, 20:36] = True
        return Detections([[2, 2, 12, 12], [20, 20, 36, 36]], [0.9, 0.8], [0, 0], self.class_names, masks)


def test_one_function_gives_box_and_mask_ap_per_class_curves_and_the_confusion_matrix():
    scored = evaluate_detector(_FindsTheCatOnly(), [_Sample(1), _Sample(2)], ["cat", "dog"], masks=True)
    assert scored["images"] == 2 and scored["class_names"] == ["cat", "dog"]
    # both cats found first (0.9), the wrong calls score lower (0.8): the cat's AP is perfect
    assert scored["per_class_box_ap50"] == {"cat": 1.0, "dog": 0.0} and scored["box_map50"] == 0.5
    assert scored["box"]["per_class"]["dog"]["num_gt"] == 2
    assert scored["mask_map50"] == pytest.approx(scored["box_map50"])  # the masks are the boxes here
    assert set(scored["box"]["pr_curves"]) == {"cat", "dog"}
    # rows true class, columns predicted, background last: the dog called a cat twice
    np.testing.assert_array_equal(scored["confusion"], [[2, 0, 0], [2, 0, 0], [0, 0, 0]])
    assert scored["labels"] == ["cat", "dog", "background"]


def test_the_trainers_validation_is_the_same_evaluation():
    from engine.train.yolo import evaluate_yolo

    samples = [_Sample(1), _Sample(2)]
    scored = evaluate_detector(_FindsTheCatOnly(), samples, ["cat", "dog"])
    trainer = evaluate_yolo(_FindsTheCatOnly(), samples, ["cat", "dog"], [7, 9])
    assert trainer == {"box_map50": scored["box_map50"], "box_map": scored["box_map"],
                       "per_class_box_ap50": scored["per_class_box_ap50"]}


def test_evaluate_job_scores_a_checkpoint_on_a_project_split(tmp_path):
    import torch

    from engine.demo.shapes import build_shapes
    from engine.models.checkpoint import save_checkpoint
    from engine.models.yolo import build_yolo

    project = build_shapes(tmp_path, n_images=5, seed=1)
    config = {"pretrained": False, "input_size": 64, "head_channels": 8}
    torch.manual_seed(0)
    state = build_yolo(config, 3).state_dict()
    state["head.6.bias"][[4, 9]] = 3.0
    meta = {"family": "yolo", "classes": ["circle", "rectangle", "triangle"], "config": config, "metrics": {}}
    ckpt = save_checkpoint(tmp_path / "y.ckpt", state, meta)
    outcome = run_job_sync(Job("eval", evaluate_job, checkpoint=str(ckpt), project=str(project), split=None,
                               device="cpu"))
    assert outcome.state == "finished", outcome.traceback
    result = outcome.result
    assert result["labels"] == ["circle", "rectangle", "triangle", "background"]
    m = result["confusion"]
    n_objects = sum(v["num_gt"] for v in result["box"]["per_class"].values())
    assert n_objects > 0 and m[:3].sum() == n_objects  # every object is matched or missed once
    assert 0.0 <= result["box_map50"] <= 1.0 and result["mask"] is None and result["images"] == 5


def test_results_scored_in_shares_give_the_figures_of_one_evaluation():
    from engine.eval.detection import coco_results, score_coco_results

    samples = [_Sample(1), _Sample(2), _Sample(3)]
    whole = evaluate_detector(_FindsTheCatOnly(), samples, ["cat", "dog"], masks=True)
    # a distributed validation: each process predicts a share, the entries are scored together
    entries = coco_results(_FindsTheCatOnly(), samples[:1], ["cat", "dog"]) + \
        coco_results(_FindsTheCatOnly(), samples[1:], ["cat", "dog"])
    parts = score_coco_results(samples, entries, ["cat", "dog"], masks=True)
    for key in ("box_map50", "box_map", "per_class_box_ap", "per_class_box_ap50", "mask_map50", "mask_map",
                "per_class_mask_ap50"):
        assert parts[key] == whole[key], key
    assert parts["box_map50"] == 0.5

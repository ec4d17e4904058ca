"""One ground-truth rule (issue 12, point 5; ADR 0017), seen from every place that reads it.

A project holds hand-drawn shapes, a hidden shape, a detection imported with a score, model
proposals, and a proposal the user accepted in the workbench. A detector's dataset, U-Net's
dataset, ``visionbench eval``, the compare view and the workbench's Evaluate must all see exactly
the same objects: the drawn, hidden, imported and accepted ones, never the unaccepted proposals.
"""
import cv2
import numpy as np
import pytest
from types import SimpleNamespace

from app.controllers.annotation_controller import AnnotationController
from app.views.compare_view import CompareView
from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation, Box, Point
from engine.annotations.store import ProjectStore
from engine.infer.detections import Detections

SIZE = 64
CLASSES = ["cat", "dog"]
FILL = {"one": 10, "two": 20, "three": 30}  # each image's grey level tells the oracle which it is
# What every reader must see, per image: (class, xyxy box). The masks are the filled boxes.
EXPECTED = {
    "one": {("cat", (4, 4, 20, 20)), ("dog", (30, 4, 50, 20)), ("cat", (4, 40, 20, 60))},
    "two": {("cat", (10, 10, 30, 30)), ("dog", (36, 36, 60, 60))},
    "three": set(),
}


def _mask(box) -> np.ndarray:
    x1, y1, x2, y2 = box
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[y1:y2, x1:x2] = 1
    return m


def _proposal(image_id, category_id, box, score):
    return Annotation(image_id, category_id, Box(*box), source="yolo:run1", score=score, attributes={"proposal": True})


@pytest.fixture
def project(tmp_path, qtbot):
    store = ProjectStore.create(tmp_path / "truth.vbproj")
    cat, dog = store.add_category("cat"), store.add_category("dog")
    recs = {}
    for name, grey in FILL.items():
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((SIZE, SIZE, 3), grey, np.uint8))
        recs[name] = store.add_image(tmp_path / f"{name}.png", split="val")
    one, two, three = recs["one"].id, recs["two"].id, recs["three"].id
    store.add_annotations([
        Annotation(one, cat.id, Box(4, 4, 20, 20), instance_id=1),                 # drawn: box and mask
        Annotation(one, cat.id, encode_mask(_mask((4, 4, 20, 20))), instance_id=1),  # of ONE object
        Annotation(one, dog.id, encode_mask(_mask((30, 4, 50, 20)))),              # drawn mask
        Annotation(one, cat.id, Box(4, 40, 20, 60), hidden=True),                  # hidden: still truth
        _proposal(one, dog.id, (30, 40, 50, 60), 0.8),                             # not reviewed
        _proposal(two, cat.id, (10, 10, 30, 30), 0.9),                             # accepted below
        _proposal(two, cat.id, (40, 4, 60, 20), 0.6),                              # not reviewed
        Annotation(two, dog.id, Box(36, 36, 60, 60), source="coco-import", score=0.7),  # imported: truth
        Annotation(two, cat.id, Point(5, 5)),                                      # no area: no object
        _proposal(three, dog.id, (8, 8, 40, 40), 0.95),                            # only a proposal
    ])
    # the user accepts one proposal in the workbench
    controller = AnnotationController(store)
    controller.open_image(two)
    accepted_id = next(a.id for a in controller.annotations() if a.attributes.get("proposal") and a.score == 0.9)
    assert controller.accept_proposals([accepted_id])
    stored = store.annotation(accepted_id)
    assert stored.score is None and stored.attributes == {"model_score": pytest.approx(0.9)}
    assert stored.source == "yolo:run1"
    store.close()
    return tmp_path / "truth.vbproj", {name: rec.id for name, rec in recs.items()}


class Oracle:
    """A detector that finds exactly the EXPECTED objects (score 1, masks = the filled boxes)."""

    class_names = CLASSES
    has_masks = True
    name = "oracle"

    def predict(self, rgb, score_threshold=0.05, nms_iou=0.5):
        image = next(name for name, grey in FILL.items() if rgb[0, 0, 0] == grey)
        objects = sorted(EXPECTED[image])
        return Detections(np.array([box for _, box in objects], np.float32).reshape(-1, 4), np.ones(len(objects)),
                          [CLASSES.index(c) for c, _ in objects], CLASSES,
                          np.array([_mask(box) for _, box in objects], bool).reshape(-1, SIZE, SIZE))


def _by_image(ids: dict) -> dict:
    return {image_id: name for name, image_id in ids.items()}


@pytest.fixture
def scored_ground_truth(monkeypatch):
    """Every ground truth handed to the COCO scorer, as {image_id: {(class, box)}}, per call."""
    import engine.eval.detection as detection

    calls = []
    real = detection.evaluate_detections

    def spy(gt, preds, categories, iou_type="bbox"):
        calls.append({item["image_id"]: {(CLASSES[int(k) - 1], tuple(int(v) for v in box))
                                         for box, k in zip(item["boxes"], item["labels"])} for item in gt})
        return real(gt, preds, categories, iou_type)

    monkeypatch.setattr(detection, "evaluate_detections", spy)
    return calls


def test_detectors_unet_eval_compare_and_evaluate_see_the_same_ground_truth(project, qtbot, monkeypatch,
                                                                               scored_ground_truth):
    path, ids = project
    names = _by_image(ids)
    want = {ids[name]: objects for name, objects in EXPECTED.items()}
    with ProjectStore(path, readonly=True) as store:
        categories = [store.category_by_name(c) for c in CLASSES]

        # a detector's dataset: boxes, labels and masks
        from engine.data.detection import load_detection_samples

        samples = load_detection_samples(store, categories, "val", with_masks=True).samples
        detector = {s.record.id: {(CLASSES[int(k) - 1], tuple(int(v) for v in box))
                                  for box, k in zip(s.boxes, s.labels)} for s in samples}
        assert detector == {i: o for i, o in want.items() if o}  # an image of proposals only is not labelled
        for s in samples:
            for box, mask in zip(s.boxes, s.masks):
                np.testing.assert_array_equal(mask, _mask(tuple(int(v) for v in box)))

        # U-Net's dataset: one instance per object, painted in its class
        from engine.data.datasets import load_segmentation_samples

        unet = {}
        for s in load_segmentation_samples(store, categories, "val"):
            objects = set()
            for k in np.unique(s.instance_map[s.instance_map > 0]):
                ys, xs = np.nonzero(s.instance_map == k)
                objects.add((CLASSES[int(s.class_map[ys[0], xs[0]]) - 1],
                             (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)))
            unet[s.record.id] = objects
        assert unet == detector

        # the compare view (and the YOLO grid, which asks the same function)
        view = CompareView(device="cpu")
        qtbot.addWidget(view)
        for image_id in ids.values():
            view.set_image_from_store(store, image_id)
            seen = {(n, tuple(int(v) for v in box)) for n, box in zip(view.gt_names, view.gt_boxes)}
            assert seen == want[image_id], names[image_id]
        assert view.bridge.shutdown(10.0)

    # visionbench eval, with a detector that finds exactly the expected objects
    from engine.eval import run as eval_run

    meta = {"family": "maskrcnn", "classes": CLASSES, "config": {}, "metrics": {}}
    monkeypatch.setattr("engine.infer.run.load_predictor",
                        lambda ckpt, device="auto": (Oracle(), meta, SimpleNamespace(name="maskrcnn", kind="instance")))
    cli = eval_run.eval_command(path.parent / "oracle.ckpt", path, split="val", progress=False)
    assert scored_ground_truth[-1] == want
    assert cli["box_map"] == 1.0 and cli["mask_map"] == 1.0  # no object more, none fewer
    assert {k: v["num_gt"] for k, v in cli["per_class"].items()} == {"cat": 3, "dog": 2}

    # the workbench's Evaluate
    from engine.eval.detection import evaluate_job
    from engine.jobs import Job, run_job_sync

    monkeypatch.setattr("engine.infer.detector_api.load_detector", lambda path, device="auto": Oracle())
    outcome = run_job_sync(Job("evaluate", evaluate_job, checkpoint="oracle.onnx", project=str(path), split="val"))
    assert outcome.state == "finished", outcome.traceback
    assert scored_ground_truth[-1] == want
    assert outcome.result["box_map"] == 1.0 and outcome.result["mask_map"] == 1.0
    np.testing.assert_array_equal(outcome.result["confusion"], [[3, 0, 0], [0, 2, 0], [0, 0, 0]])

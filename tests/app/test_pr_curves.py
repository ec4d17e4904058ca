"""Evaluation view: per-class AP table, PR curves from coco_eval, confusion matrix; and the job."""
import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from app.views.pr_curves import PrCurvesView
from engine.eval.coco_eval import evaluate_detections
from engine.eval.confusion import DetectionConfusion
from engine.infer.detections import Detections

NAMES = ["cat", "dog"]


def _evaluation():
    """Two images: the cat is found on both (one with a duplicate), the dog on one of two."""
    gt = [{"image_id": 1, "width": 100, "height": 100, "boxes": [[10, 10, 40, 40], [50, 50, 90, 90]],
           "labels": [1, 2]},
          {"image_id": 2, "width": 100, "height": 100, "boxes": [[5, 5, 30, 30], [60, 10, 90, 40]],
           "labels": [1, 2]}]
    preds = [Detections([[10, 10, 40, 40], [12, 10, 40, 41], [50, 50, 90, 90]], [0.9, 0.5, 0.8], [0, 0, 1], NAMES),
             Detections([[5, 5, 30, 30], [0, 60, 20, 90]], [0.7, 0.6], [0, 1], NAMES)]
    return gt, preds, evaluate_detections(gt, preds, NAMES)


def test_table_and_curves_show_coco_eval_output(qtbot, tmp_path):
    gt, preds, result = _evaluation()
    view = PrCurvesView()
    qtbot.addWidget(view)
    view.resize(900, 640)
    view.show()
    view.set_evaluation(result, ["#e6194b", "#3cb44b"])
    assert view.table.rowCount() == 2
    rows = {view.table.item(r, 0).text(): [view.table.item(r, c).text() for c in range(1, 4)] for r in range(2)}
    assert rows["cat"][1] == f"{result['per_class']['cat']['ap50']:.3f}" == "1.000"
    assert rows["dog"][1] == f"{result['per_class']['dog']['ap50']:.3f}"
    assert rows["dog"][2] == "2"
    x, y = view.curves["dog"].getData()
    np.testing.assert_allclose(x, result["pr_curves"]["dog"]["recall"])
    np.testing.assert_allclose(y, result["pr_curves"]["dog"]["precision"])
    assert y[x <= 0.5].min() > 0 and y[x > 0.51].max() == 0  # the dog is found once of twice
    assert "mAP@.5" in view.summary.text()

    conf = DetectionConfusion(NAMES)
    for item, det in zip(gt, preds):
        conf.update(item["boxes"], np.asarray(item["labels"]) - 1, det.boxes, det.labels, det.scores)
    view.set_confusion(conf.matrix, conf.labels)
    assert conf.matrix[0, 0] == 2 and conf.matrix[2, 0] == 1  # the duplicate is a false alarm
    assert len(view._matrix_texts) == 9
    assert view.matrix_image.image.shape == (3, 3)
    QApplication.processEvents()
    view.grab().save(str(tmp_path / "pr.png"))


def test_a_confusion_matrix_that_does_not_fit_its_labels_is_refused(qtbot):
    view = PrCurvesView()
    qtbot.addWidget(view)
    with pytest.raises(ValueError, match="matrix"):
        view.set_confusion(np.zeros((3, 3)), ["a", "b"])

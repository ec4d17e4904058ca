"""torchvision's single-stage COCO detectors (RetinaNet, FCOS, SSDlite) behind the common detector
interface: the candidates before NMS, then our NMS, give exactly what the bare model returns."""
import numpy as np
import pytest
import torch
import torchvision.models.detection as det
from torchvision.ops import batched_nms

from engine.infer.detector_api import load_detector, torchvision_file_name
from engine.infer.single_stage_predictor import SingleStagePredictor
from tests.engine.infer.coco_weights import calibrate_batchnorm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ssdlite_file(tmp_path_factory):
    torch.manual_seed(0)
    model = det.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=91)
    calibrate_batchnorm(model)  # else every feature vanishes and every candidate scores 1/91
    path = tmp_path_factory.mktemp("hub") / torchvision_file_name("ssdlite320_mobilenet_v3_large")
    torch.save(model.state_dict(), path)
    return path


def _photo():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)


def test_ssdlite_from_its_torchvision_file_predicts_what_the_bare_model_returns(ssdlite_file):
    predictor = load_detector(ssdlite_file, device="cpu")
    assert isinstance(predictor, SingleStagePredictor) and not predictor.has_masks
    assert predictor.name == f"ssdlite320_mobilenet_v3_large:{ssdlite_file.name}"
    assert predictor.class_names[0] == "person" and len(predictor.class_names) == 90
    model = predictor.model
    image = _photo()
    with torch.inference_mode():
        bare = model([torch.from_numpy(image).permute(2, 0, 1).float() / 255.0])[0]
    ours = predictor.predict(image, score_threshold=model.score_thresh, nms_iou=model.nms_thresh)
    assert len(ours) == len(bare["boxes"]) > 0
    assert len(np.unique(ours.scores)) > len(ours) // 2  # scores differ: the order is the model's, not ties'

    def rows(boxes, scores, labels):  # an untrained model ties many scores: compare as sets
        table = np.column_stack([scores, labels, boxes]).astype(np.float64).round(3)
        return table[np.lexsort(table.T[::-1])]
    np.testing.assert_allclose(rows(ours.boxes, ours.scores, ours.labels),
                               rows(bare["boxes"].numpy(), bare["scores"].numpy(), bare["labels"].numpy() - 1),
                               atol=2e-3)
    assert predictor.last_latency_ms > 0


def test_the_nms_view_gets_the_candidates_before_nms(ssdlite_file):
    predictor = load_detector(ssdlite_file, device="cpu")
    image = _photo()
    raw = predictor.raw_candidates(image, score_threshold=0.011)
    final = predictor.predict(image, score_threshold=0.011, nms_iou=0.5, max_detections=50)
    assert len(raw) > len(final) > 0
    keep = batched_nms(torch.from_numpy(raw.boxes), torch.from_numpy(raw.scores), torch.from_numpy(raw.labels),
                       0.5)[:50].numpy()
    np.testing.assert_allclose(final.boxes, raw.boxes[keep], atol=1e-5)
    assert (raw.scores >= np.float32(0.011)).all()


def test_inside_rcnn_refuses_a_single_stage_detector_plainly(ssdlite_file, tmp_path):
    from PIL import Image

    from engine.infer.views_api import rcnn_inspection_job
    from engine.jobs import Job, run_job_sync

    Image.fromarray(_photo()).save(tmp_path / "photo.png")
    outcome = run_job_sync(Job("inspect", rcnn_inspection_job, image_path=str(tmp_path / "photo.png"),
                               detector_path=str(ssdlite_file), device="cpu"))
    assert outcome.state == "failed" and "not a two-stage detector" in outcome.error

"""RcnnPredictor: same answer as the bare torchvision model, raw candidates before NMS, image modes,
torchvision COCO files loaded from disk only, and the detection dataset built from project instances."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import batched_nms

from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation, Box, Polygon
from engine.annotations.store import ProjectStore
from engine.data.detection import DetectionDataset, detection_augmentation, instances_of, load_detection_samples
from engine.infer import detector_api
from engine.infer.detector_api import DetectorLoadError, load_detector
from engine.infer.rcnn_predictor import RcnnPredictor, as_rgb_uint8
from engine.models.rcnn import build_rcnn

from .rcnn_fixtures import TINY


@pytest.fixture(scope="module")
def mask_predictor():
    torch.manual_seed(0)
    # a low RPN threshold and many proposals so an untrained model still yields overlapping candidates
    return RcnnPredictor(build_rcnn(TINY, 2, masks=True), ["a", "b"], device="cpu")


def _image(h=80, w=100, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_predict_matches_the_bare_torchvision_model(mask_predictor):
    image = _image()
    ours = mask_predictor.predict(image)  # defaults = torchvision's: score 0.05, NMS 0.5
    with torch.no_grad():
        bare = mask_predictor.model([torch.from_numpy(image).permute(2, 0, 1).float() / 255])[0]
    assert len(ours) == len(bare["boxes"]) > 0
    order = np.argsort(-ours.scores, kind="stable")
    np.testing.assert_allclose(ours.boxes[order], bare["boxes"].numpy(), atol=1e-3)
    np.testing.assert_array_equal(ours.labels[order], bare["labels"].numpy() - 1)
    np.testing.assert_array_equal(ours.masks[order], bare["masks"][:, 0].numpy() > 0.5)


def test_final_detections_are_the_batched_nms_of_the_raw_candidates(mask_predictor):
    image = _image(seed=1)
    raw = mask_predictor.raw_candidates(image, score_threshold=0.0)
    final = mask_predictor.predict(image, score_threshold=0.0, nms_iou=0.3)
    assert len(raw) > len(final) > 0
    keep = batched_nms(torch.from_numpy(raw.boxes), torch.from_numpy(raw.scores),
                       torch.from_numpy(raw.labels), 0.3).numpy()[:100]
    np.testing.assert_allclose(final.boxes, raw.boxes[keep], atol=1e-4)
    np.testing.assert_array_equal(final.labels, raw.labels[keep])
    # every final detection is one of the raw candidates (raw is a superset)
    for box in final.boxes:
        assert np.abs(raw.boxes - box).max(axis=1).min() < 1e-4
    # a looser NMS keeps more of the same candidates
    assert len(mask_predictor.predict(image, score_threshold=0.0, nms_iou=0.9)) >= len(final)


def test_image_modes_are_converted_or_refused_clearly(mask_predictor):
    rgb = _image(40, 50)
    gray = rgb[:, :, 0]
    assert as_rgb_uint8(gray).shape == (40, 50, 3)
    rgba = np.dstack([rgb, np.full((40, 50), 255, np.uint8)])
    np.testing.assert_array_equal(as_rgb_uint8(rgba), rgb)
    deep = gray.astype(np.uint16) * 257
    out = as_rgb_uint8(deep)
    assert out.dtype == np.uint8 and out.shape == (40, 50, 3) and out.max() == 255
    for image in (gray, rgba, deep):
        assert mask_predictor.predict(image).masks.shape[1:] == (40, 50)
    with pytest.raises(ValueError, match=r"image: .*shape \(40, 50, 5\)"):
        mask_predictor.predict(np.zeros((40, 50, 5), np.uint8))
    with pytest.raises(ValueError, match="pixel type"):
        mask_predictor.predict(np.zeros((40, 50), bool))


def test_torchvision_coco_weights_are_only_read_from_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(detector_api, "torchvision_checkpoint_dir", lambda: tmp_path / "hub")
    with pytest.raises(DetectorLoadError) as info:
        load_detector("fasterrcnn_mobilenet_v3_large_320_fpn")
    message = str(info.value)
    assert "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth" in message and str(tmp_path / "hub") in message
    import torchvision.models.detection as det

    model = det.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91)
    (tmp_path / "hub").mkdir()
    torch.save(model.state_dict(), tmp_path / "hub" / "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth")
    predictor = load_detector("fasterrcnn_mobilenet_v3_large_320_fpn", device="cpu")
    assert predictor.class_names[0] == "person" and len(predictor.class_names) == 90
    assert len(predictor.predict(_image(), score_threshold=0.0)) >= 0
    bad = tmp_path / "fasterrcnn_resnet50_fpn_coco-bad.pth"
    torch.save(model.state_dict(), bad)  # mobilenet weights under a resnet50 name
    with pytest.raises(DetectorLoadError, match="fasterrcnn_resnet50_fpn_coco-bad.pth.*do not fit"):
        load_detector(bad)
    renamed = tmp_path / "my_detector.pth"  # a picked file whose name says nothing: told by its keys
    torch.save(model.state_dict(), renamed)
    assert load_detector(renamed, device="cpu").name == "fasterrcnn_mobilenet_v3_large_fpn:my_detector.pth"


def test_instances_pair_box_and_mask_by_instance_id_fall_back_to_mask_bounds_and_keep_hidden_shapes():
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 4:12] = 1
    anns = [
        Annotation(1, 7, Box(3.5, 4.5, 12.5, 10.5), instance_id=1),
        Annotation(1, 7, encode_mask(mask), instance_id=1),  # same object as the box
        Annotation(1, 8, Polygon(((20, 2), (28, 2), (28, 9))), instance_id=None),  # mask only
        Annotation(1, 8, Box(0, 0, 5, 5), hidden=True),  # hidden is a view state: still ground truth
        Annotation(1, 8, Box(0, 0, 9, 9), attributes={"proposal": True}, score=0.9),  # a proposal: ignored
        Annotation(1, 9, Box(0, 0, 5, 5)),  # category not trained: ignored
    ]
    boxes, labels, masks, box_only = instances_of(anns, {7: 1, 8: 2}, 20, 30, with_masks=True)
    assert labels.tolist() == [1, 2, 2] and box_only == 1
    np.testing.assert_allclose(boxes[2], [0, 0, 5, 5])
    np.testing.assert_allclose(boxes[0], [3.5, 4.5, 12.5, 10.5])  # the drawn box wins
    np.testing.assert_array_equal(masks[0], mask)
    assert boxes[1, 0] >= 19 and boxes[1, 2] <= 29 and masks[1].sum() > 10
    boxes, labels, masks, box_only = instances_of(anns[:1], {7: 1}, 20, 30, with_masks=True)
    assert box_only == 1 and masks[0, 5:10, 4:12].all()


def test_dataset_augmentation_moves_boxes_and_masks_together(tmp_path):
    store = ProjectStore.create(tmp_path / "p.vbproj")
    cat = store.add_category("thing")
    import cv2

    img = np.zeros((32, 48, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    rec = store.add_image(tmp_path / "a.png", split="train")
    mask = np.zeros((32, 48), np.uint8)
    mask[4:10, 2:8] = 1
    store.add_annotation(Annotation(rec.id, cat.id, encode_mask(mask), instance_id=1))
    samples = load_detection_samples(store, [cat], "train", with_masks=True).samples
    assert len(samples) == 1 and samples[0].boxes.tolist() == [[2, 4, 8, 10]]
    flip = DetectionDataset(samples, detection_augmentation(hflip=False, vflip=True, brightness=0,
                                                            contrast=0))
    image, target = flip[0]
    assert image.shape == (3, 32, 48) and image.dtype == torch.float32
    y = torch.nonzero(target["masks"][0])[:, 0]
    # vertical flip with p=0.5: either untouched or mirrored, boxes and masks always agree
    assert target["boxes"][0].tolist() == [2.0, float(y.min()), 8.0, float(y.max() + 1)]
    store.close()


def test_load_detector_refuses_non_detectors_and_missing_onnx_files(tmp_path):
    from engine.models.checkpoint import save_checkpoint

    seg = save_checkpoint(tmp_path / "seg.ckpt", {}, {"family": "unet", "classes": ["a"], "config": {},
                                                      "metrics": {}})
    with pytest.raises(DetectorLoadError, match="seg.ckpt.*family.*not a detector"):
        load_detector(seg)
    with pytest.raises(DetectorLoadError, match="absent.onnx"):
        load_detector(tmp_path / "absent.onnx")

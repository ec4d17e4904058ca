"""Lessons that use a project's detector: the RPN's proposals are counted beside selective search, the
focal-loss lesson scores the detector's own candidates, and a file that is no detector is reported
while the lesson still runs."""
import numpy as np
import pytest
import torch

from engine.jobs import Job, run_job_sync
from engine.lessons.base import make_input
from engine.lessons.focal import FocalLossLesson
from engine.lessons.proposals import ProposalsLesson
from engine.models.checkpoint import save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_RCNN = {"pretrained": False, "fpn_channels": 8, "min_size": 64, "max_size": 96, "representation_size": 16,
             "anchor_sizes": [[16], [32], [64], [128]], "rpn_pre_nms_top_n_test": 60, "rpn_post_nms_top_n_test": 30}


@pytest.fixture(scope="module")
def rcnn(tmp_path_factory):
    from engine.models.rcnn import build_rcnn

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "fasterrcnn-tiny.ckpt"
    save_checkpoint(path, build_rcnn(TINY_RCNN, 1).state_dict(),
                    {"family": "fasterrcnn", "classes": ["thing"], "config": TINY_RCNN, "metrics": {}})
    return str(path)


def _data():
    img = np.full((80, 96, 3), 40, np.uint8)
    img[20:60, 30:70] = (200, 180, 60)
    return make_input(img, boxes=[[30, 20, 70, 60]], names=["thing"])


def _run(lesson, model_path):
    outcome = run_job_sync(Job("lesson", lesson.prepare, data=_data(), model_path=model_path))
    assert outcome.state == "finished", outcome.traceback
    return lesson


def test_rpn_proposals_are_counted_with_their_recall(rcnn):
    lesson = _run(ProposalsLesson(), rcnn)
    count, rec = lesson.results["RPN"]
    assert 0 < count <= 30  # the checkpoint keeps 30 proposals after the RPN's NMS
    assert 0.0 <= rec <= 1.0
    assert lesson.results["selective search"][1] == 1.0
    assert "RPN" in lesson.steps[-1].caption


def test_focal_loss_uses_the_detectors_candidates(rcnn):
    lesson = _run(FocalLossLesson(), rcnn)
    boxes, scores, labels = lesson.candidates
    assert len(boxes) == len(scores) == len(labels) > 0
    assert not any("not used" in n for n in lesson.notes)
    assert "the detector's" in lesson.steps[1].caption


def test_a_file_that_is_no_detector_is_reported_and_the_lesson_goes_on(tmp_path):
    bad = tmp_path / "fasterrcnn-broken.ckpt"
    bad.write_bytes(b"not a checkpoint")
    lesson = _run(ProposalsLesson(), str(bad))
    assert any("RPN not shown" in n and "fasterrcnn-broken.ckpt" in n for n in lesson.notes)
    assert "RPN" not in lesson.results and lesson.step_count >= 4
    focal = _run(FocalLossLesson(), str(bad))
    assert any("Detector not used" in n for n in focal.notes)


def test_a_unet_checkpoint_adds_its_full_resolution_answer(tmp_path):
    from engine.lessons.segmentation import SegmentationLesson
    from engine.models.unet import build_unet

    config = {"pretrained": False, "depth": 2, "width": 4}
    path = tmp_path / "unet-tiny.ckpt"
    save_checkpoint(path, build_unet(config, 1).state_dict(),
                    {"family": "unet", "classes": ["thing"], "config": config, "metrics": {}})
    lesson = _run(SegmentationLesson(), str(path))
    titles = [p.title for s in lesson.steps for p in s.scene.panels]
    assert "U-Net argmax" in titles
    assert set(lesson.fits) == {"FCN-32s", "FCN-16s", "FCN-8s"}

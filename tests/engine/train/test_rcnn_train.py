"""Faster/Mask R-CNN families: build, train a couple of steps, checkpoint, reload, refuse bad files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.annotations.errors import BadInput
from engine.annotations.store import ProjectStore
from engine.infer.detector_api import DetectorLoadError, DetectorPredictor, load_detector, project_category_ids
from engine.jobs.events import Metrics, Progress
from engine.jobs.runner import Job, run_job_sync
from engine.models.checkpoint import load_checkpoint, save_checkpoint
from engine.models.registry import get_family

from tests.engine.models.rcnn_fixtures import TINY, tiny_shapes


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return tiny_shapes(tmp_path_factory.mktemp("rcnn_shapes"))


@pytest.fixture(scope="module")
def trained(project, tmp_path_factory):
    """Both families trained for 2 steps: {family: (checkpoint path, events, result)}."""
    out = {}
    folder = tmp_path_factory.mktemp("rcnn_ckpt")
    for family in ("fasterrcnn", "maskrcnn"):
        events = []
        ckpt = folder / f"{family}.ckpt"
        spec = get_family(family)
        outcome = run_job_sync(Job(family, spec.train, store_path=project, out=ckpt,
                                   config={**TINY, "max_steps": 2}), events.append)
        assert outcome.state == "finished", outcome.traceback
        out[family] = (ckpt, events, outcome.result)
    return out


@pytest.mark.parametrize("family,kind", [("fasterrcnn", "detection"), ("maskrcnn", "instance")])
def test_family_is_registered_and_builds_for_the_class_count(family, kind):
    spec = get_family(family)
    assert spec.kind == kind
    assert spec.cpu_preset["box_batch_size_per_image"] == 128
    assert spec.gpu_preset["box_batch_size_per_image"] == 512
    model = spec.build(TINY, 3).eval()
    assert model.roi_heads.box_predictor.cls_score.out_features == 4  # 3 classes + background
    assert (model.roi_heads.mask_head is not None) == (family == "maskrcnn")
    with torch.no_grad():
        out = model([torch.rand(3, 70, 90)])[0]
    assert set(out) >= {"boxes", "scores", "labels"}


@pytest.mark.parametrize("family", ["fasterrcnn", "maskrcnn"])
def test_training_yields_progress_loss_components_and_a_checkpoint(trained, family):
    ckpt, events, result = trained[family]
    steps = [e for e in events if isinstance(e, Progress) and e.step > 0]
    assert [e.step for e in steps] == [1, 2] and steps[0].total == 2
    losses = [e.values for e in events if isinstance(e, Metrics) and "loss" in e.values]
    assert len(losses) == 2 and all(np.isfinite(v["loss"]) for v in losses)
    assert "loss_objectness" in losses[0] and "loss_classifier" in losses[0]
    assert ("loss_mask" in losses[0]) == (family == "maskrcnn")
    val = [e.values for e in events if isinstance(e, Metrics) and "val_box_map50" in e.values]
    assert val and 0.0 <= val[-1]["val_box_map50"] <= 1.0
    assert ("val_mask_map50" in val[-1]) == (family == "maskrcnn")
    state, meta = load_checkpoint(ckpt)
    assert meta["family"] == family and meta["classes"] == ["circle", "rectangle", "triangle"]
    assert result["steps"] == 2 and result["checkpoint"] == str(ckpt)


def test_cancelling_stops_training_at_the_next_step(project, tmp_path):
    job = Job("c", get_family("fasterrcnn").train, store_path=project, out=tmp_path / "c.ckpt",
              config={**TINY, "epochs": 50})
    steps = []

    def on_event(event):
        if isinstance(event, Progress) and event.step >= 1:
            steps.append(event.step)
            job.token.cancel()

    outcome = run_job_sync(job, on_event)
    assert outcome.state == "cancelled" and steps == [1]
    assert not (tmp_path / "c.ckpt").exists()  # no epoch finished, no checkpoint


@pytest.mark.parametrize("family", ["fasterrcnn", "maskrcnn"])
def test_checkpoint_round_trip_predicts_like_the_trained_weights(trained, family):
    ckpt, _, _ = trained[family]
    predictor = load_detector(ckpt, device="cpu")
    assert isinstance(predictor, DetectorPredictor)
    assert predictor.name == f"{family}:{ckpt.name}"
    again = load_detector(ckpt, device="cpu")
    image = (np.random.default_rng(0).random((96, 112, 3)) * 255).astype(np.uint8)
    a = predictor.predict(image, score_threshold=0.0)
    b = again.predict(image, score_threshold=0.0)
    assert len(a) > 0
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    assert (a.boxes[:, 2:] >= a.boxes[:, :2]).all()
    assert (a.boxes[:, [0, 2]] <= 112).all() and (a.boxes[:, [1, 3]] <= 96).all() and (a.boxes >= 0).all()
    if family == "maskrcnn":
        assert a.masks is not None and a.masks.shape == (len(a), 96, 112)
    assert predictor.last_latency_ms > 0


def test_checkpoint_from_another_project_is_refused_with_its_classes(trained, tmp_path):
    ckpt, _, _ = trained["fasterrcnn"]
    other = ProjectStore.create(tmp_path / "other.vbproj")
    other.add_category("cat")
    other.add_category("circle")
    predictor = load_detector(ckpt, device="cpu")
    with pytest.raises(BadInput) as info:
        project_category_ids(predictor.class_names, other, ckpt)
    message = str(info.value)
    assert str(ckpt) in message and "classes" in message and "rectangle" in message
    assert project_category_ids(predictor.class_names, other, ckpt, strict=False) == [2, None, None]
    other.close()


def test_corrupt_or_foreign_checkpoints_get_a_message_naming_the_file(trained, tmp_path):
    ckpt, _, _ = trained["fasterrcnn"]
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:5000])
    with pytest.raises(DetectorLoadError, match="truncated.ckpt"):
        load_detector(truncated)
    state, meta = load_checkpoint(ckpt)
    shrunk = tmp_path / "wrong_shape.ckpt"
    save_checkpoint(shrunk, state, {**meta, "classes": ["only_one"]})  # head sizes no longer fit
    with pytest.raises(DetectorLoadError, match="wrong_shape.ckpt.*state_dict"):
        load_detector(shrunk)
    unknown = tmp_path / "unknown_family.ckpt"
    save_checkpoint(unknown, state, {**meta, "family": "nope"})
    with pytest.raises(DetectorLoadError, match="unknown_family.ckpt.*family"):
        load_detector(unknown)
    with pytest.raises(DetectorLoadError, match="missing.ckpt"):
        load_detector(tmp_path / "missing.ckpt")


def test_training_a_project_without_train_images_is_bad_input(tmp_path):
    store = ProjectStore.create(tmp_path / "empty.vbproj")
    store.add_category("thing")
    store.close()
    outcome = run_job_sync(Job("t", get_family("fasterrcnn").train, store_path=tmp_path / "empty.vbproj",
                               out=tmp_path / "x.ckpt", config=TINY))
    assert outcome.state == "failed" and "BadInput" in outcome.error and "split" in outcome.error


@pytest.mark.parametrize("backbone", ["mobilenet_v3", "resnet50"])
def test_torchvision_backbones_are_config_options_without_downloads(backbone):
    model = get_family("maskrcnn").build({**TINY, "backbone": backbone}, 2).train()
    target = {"boxes": torch.tensor([[5.0, 5.0, 40.0, 30.0]]), "labels": torch.tensor([1]),
              "masks": torch.ones(1, 60, 80, dtype=torch.uint8)}
    losses = model([torch.rand(3, 60, 80)], [target])
    assert {"loss_mask", "loss_objectness"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match="backbone"):
        get_family("maskrcnn").build({**TINY, "backbone": "vgg"}, 2)

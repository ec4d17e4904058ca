"""Our YOLO end to end on a tiny shapes project: train steps, checkpoint, predictor, CLI paths."""
import numpy as np
import pytest
import torch

from engine.demo.shapes import build_shapes
from engine.infer.detections import Detections, RawCandidates
from engine.infer.detector_api import DetectorLoadError, load_detector
from engine.infer.yolo_predictor import YoloPredictor
from engine.jobs import Job, Log, Metrics, Progress, run_job_sync
from engine.models.checkpoint import load_checkpoint, save_checkpoint
from engine.models.registry import get_family
from engine.models.yolo import build_yolo

TINY = {"pretrained": False, "input_size": 64, "head_channels": 16, "batch_size": 4, "epochs": 1,
        "device": "cpu", "warmup_steps": 1}


# one intra-op thread: two spin against each other on a shared 2-core machine (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return build_shapes(tmp_path_factory.mktemp("yolo_shapes"), n_images=6, seed=3)


@pytest.fixture(scope="module")
def trained(project, tmp_path_factory):
    out = tmp_path_factory.mktemp("yolo_ckpt") / "tiny.ckpt"
    events = []
    spec = get_family("yolo")
    outcome = run_job_sync(Job("train yolo", spec.train, store_path=str(project), out=str(out),
                               config={**TINY, "max_steps": 2}), on_event=events.append)
    assert outcome.state == "finished", outcome.traceback
    return out, events, outcome.result


def test_family_is_registered_as_a_detector():
    spec = get_family("yolo")
    assert spec.kind == "detection"
    assert spec.preset("cpu")["input_size"] < spec.preset("cuda")["input_size"]


def test_training_steps_report_progress_loss_and_val_map(trained):
    out, events, result = trained
    assert result["steps"] == 2 and out.is_file()
    steps = [e for e in events if isinstance(e, Metrics) and "loss" in e.values]
    assert len(steps) == 2 and all(np.isfinite(e.values["loss"]) for e in steps)
    assert {"loss_coord", "loss_obj", "loss_noobj", "loss_class"} <= set(steps[0].values)
    assert any(isinstance(e, Metrics) and "val_box_map50" in e.values for e in events)
    assert [e.step for e in events if isinstance(e, Progress)][-1] == 2
    assert any(isinstance(e, Log) and "saved tiny.ckpt" in e.text for e in events)
    _, meta = load_checkpoint(out)
    assert meta["family"] == "yolo" and meta["classes"] == ["circle", "rectangle", "triangle"]
    assert 0.0 <= meta["metrics"]["box_map50"] <= 1.0


def test_one_training_step_changes_the_weights(project, tmp_path):
    torch.manual_seed(0)
    before = build_yolo(TINY, 3).state_dict()
    run_job_sync(Job("t", get_family("yolo").train, store_path=str(project), out=str(tmp_path / "a.ckpt"),
                     config={**TINY, "max_steps": 1}))
    after, _ = load_checkpoint(tmp_path / "a.ckpt")
    head = "head.6.weight"
    assert after[head].shape == before[head].shape
    assert not torch.equal(after[head], before[head])


def test_nan_loss_stops_before_the_update_with_a_reason(project, tmp_path, monkeypatch):
    import engine.train.yolo as train_mod

    def nan_loss(pred, target, *args, **kwargs):
        nan = pred.sum() * float("nan")
        return {"loss": nan, "loss_coord": nan, "loss_obj": nan, "loss_noobj": nan, "loss_class": nan}

    monkeypatch.setattr(train_mod, "yolo_loss", nan_loss)
    outcome = run_job_sync(Job("t", get_family("yolo").train, store_path=str(project),
                               out=str(tmp_path / "n.ckpt"), config={**TINY, "epochs": 20}))
    assert outcome.state == "failed" and "the loss became nan" in str(outcome.error)


def test_predictor_returns_detections_and_raw_candidates_contain_them(trained, project):
    out, _, _ = trained
    predictor = load_detector(out, device="cpu")
    assert isinstance(predictor, YoloPredictor) and predictor.class_names == ["circle", "rectangle", "triangle"]
    image = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    det = predictor.predict(image, score_threshold=0.0, nms_iou=0.5)
    assert isinstance(det, Detections) and len(det) > 0 and predictor.last_latency_ms > 0
    raw = predictor.raw_candidates(image, score_threshold=0.0)
    assert isinstance(raw, RawCandidates) and len(raw) >= len(det)
    # every final detection is one of the candidates (same box, score and label)
    for box, score, label in zip(det.boxes, det.scores, det.labels):
        same = np.all(np.isclose(raw.boxes, box, atol=1e-4), axis=1) & (raw.labels == label)
        assert same.any() and np.isclose(raw.scores[same], score).any()
    assert det.boxes[:, [0, 2]].max() <= 80 and det.boxes[:, [1, 3]].max() <= 48
    assert np.all(np.diff(det.scores) <= 0)
    grid = predictor.last_grid
    assert grid.shape == (4, 4, 2 * 5 + 3)


def test_checkpoint_round_trip_gives_the_same_grid(trained, tmp_path):
    out, _, _ = trained
    state, meta = load_checkpoint(out)
    copy = save_checkpoint(tmp_path / "copy.ckpt", state, meta)
    image = np.full((64, 64, 3), 120, np.uint8)
    a = YoloPredictor.from_checkpoint(out, "cpu").grid(image)
    b = YoloPredictor.from_checkpoint(copy, "cpu").grid(image)
    np.testing.assert_array_equal(a, b)


def test_a_checkpoint_of_another_family_or_shape_is_refused_naming_the_file(trained, tmp_path):
    out, _, _ = trained
    state, meta = load_checkpoint(out)
    bad = save_checkpoint(tmp_path / "bad.ckpt", state, {**meta, "config": {**meta["config"], "head_channels": 8}})
    with pytest.raises(DetectorLoadError, match="bad.ckpt.*state_dict"):
        YoloPredictor.from_checkpoint(bad)
    other = save_checkpoint(tmp_path / "other.ckpt", state, {**meta, "family": "unet"})
    with pytest.raises(DetectorLoadError, match="family"):
        YoloPredictor.from_checkpoint(other)


def test_eval_and_predict_commands_work_for_yolo(trained, project, tmp_path):
    import shutil

    from engine.eval.run import eval_command
    from engine.infer.run import predict_command

    out, _, _ = trained
    result = eval_command(str(out), str(project), split="val", device="cpu")
    assert result["family"] == "yolo" and "map50" in result and "per_class" in result
    shutil.copytree(project.parent, tmp_path / "copy")
    work = tmp_path / "copy" / project.name
    for lock in work.parent.glob("*.lock"):
        lock.unlink()
    summary = predict_command(str(out), str(work), device="cpu", progress=False)
    assert summary["family"] == "yolo" and summary["images"] == 6

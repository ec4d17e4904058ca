"""TrainPanel: start a tiny U-Net job, see curves and previews, cancel, predict the current image."""
import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.jobs_bridge import JobBridge
from app.panels.train_panel import TrainPanel
from engine.annotations.store import ProjectStore
from tests.engine.data.seg_project import make_seg_project
from tests.engine.train.unet_fixtures import TINY_UNET

TINY = {**TINY_UNET, "preview_every": 1}


@pytest.fixture
def setup(qtbot, tmp_path):
    project = make_seg_project(tmp_path, n_train=8, n_val=2, size=48)
    store = ProjectStore(project, readonly=True)
    first_val = store.images(split="val")[0]
    store.close()
    bridge = JobBridge()
    predicted = []
    panel = TrainPanel(bridge, lambda: project, lambda: first_val, predicted.append)
    panel.config_overrides = dict(TINY)
    panel.resize(1000, 760)
    qtbot.addWidget(panel)
    yield panel, bridge, predicted, tmp_path
    assert bridge.shutdown(timeout=30)


def test_panel_lists_registry_families_and_project_categories(setup):
    panel, *_ = setup
    names = [panel.family_combo.itemText(i) for i in range(panel.family_combo.count())]
    assert "unet" in names and panel.family_combo.currentText() == "unet"
    assert panel.category_states() == {"disc": True, "square": True}


def test_train_shows_previews_then_predict_makes_annotations(setup, qtbot):
    panel, bridge, predicted, tmp_path = setup
    panel.epochs.setValue(2)
    panel.categories.item(1).setCheckState(Qt.CheckState.Unchecked)  # train on "disc" only
    job_id = panel.start_training(out=tmp_path / "panel.ckpt")
    assert job_id is not None and not panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: panel.train_job_id is None, timeout=120_000)
    assert panel.last_outcome.state == "finished", panel.last_outcome.error
    assert panel.checkpoint == tmp_path / "panel.ckpt"
    views = panel.views
    assert len(views.curves.series.get("loss", [])) == 4 and len(views.curves.series.get("val_miou", [])) == 3
    assert views.heatmap.has_image() and views.argmax.has_image() and views.weight_map.has_image()
    assert [views.heatmap.class_combo.itemText(i) for i in range(views.heatmap.class_combo.count())] == [
        "background", "disc"]
    assert views.heatmap.item.image.shape == (48, 48)
    assert views.argmax.item.image.shape == (48, 48, 3)
    shot = Path(os.environ.get("VB_SHOTS", tmp_path)) / "train_panel.png"
    assert panel.grab().save(str(shot)) and shot.stat().st_size > 10_000

    assert panel.predict_current() is not None
    qtbot.waitUntil(lambda: panel.predict_job_id is None, timeout=60_000)
    assert panel.last_outcome.state == "finished", panel.last_outcome.error
    assert len(predicted) == 1
    anns = predicted[0]
    assert all(a.kind == "mask" and a.source == "unet:panel" and 0 < a.score <= 1 and a.id is None for a in anns)
    assert views.argmax.overlay() is not None
    assert views.weight_map.title.text() == "loss weight map (training preview)"  # not the predicted image
    assert panel.status.text().startswith("predicted ")


def test_cancel_stops_training(setup, qtbot):
    panel, bridge, predicted, tmp_path = setup
    panel.config_overrides["preview_every"] = 1
    panel.epochs.setValue(50)
    panel.start_training(out=tmp_path / "cancel.ckpt")
    qtbot.waitUntil(lambda: len(panel.views.curves.series.get("loss", [])) >= 2, timeout=60_000)
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: panel.train_job_id is None, timeout=60_000)
    assert panel.last_outcome.state == "cancelled"
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert "cancelled" in panel.status.text()


def test_start_without_categories_explains(setup):
    panel, *_ = setup
    for i in range(panel.categories.count()):
        panel.categories.item(i).setCheckState(Qt.CheckState.Unchecked)
    assert panel.start_training() is None
    assert "category" in panel.status.text()
    assert panel.predict_current() is None and "checkpoint" in panel.status.text()


def test_predict_while_training_uses_the_best_checkpoint_so_far(setup, qtbot):
    panel, bridge, predicted, tmp_path = setup
    panel.epochs.setValue(200)
    out = tmp_path / "running.ckpt"
    panel.start_training(out=out)
    assert panel.predict_current() is None and "one epoch" in panel.status.text()  # nothing saved yet
    qtbot.waitUntil(out.is_file, timeout=60_000)  # epoch 1 ended and was saved
    assert panel.train_job_id is not None and panel.checkpoint is None
    assert panel.predict_current() is not None
    qtbot.waitUntil(lambda: panel.predict_job_id is None, timeout=60_000)
    assert panel.last_outcome.state == "finished", panel.last_outcome.error
    assert len(predicted) == 1 and all(a.source == "unet:running" for a in predicted[0])
    assert panel.views.argmax.data is not None
    panel.cancel()
    qtbot.waitUntil(lambda: panel.train_job_id is None, timeout=60_000)
    assert panel.checkpoint == out  # the kept checkpoint stays usable after cancelling


def test_device_choice_picks_the_preset_and_absent_hardware_is_said_before_starting(setup, qtbot, monkeypatch):
    import torch

    panel, bridge, predicted, tmp_path = setup
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    panel.device_combo.setCurrentText("cuda")
    assert panel.start_training(out=tmp_path / "x.ckpt") is None
    assert "CUDA is not available" in panel.status.text() and not bridge.jobs()
    panel.device_combo.setCurrentText("auto")
    panel.config_overrides = {}  # the preset itself
    panel.epochs.setValue(1)
    job_id = panel.start_training(out=tmp_path / "y.ckpt")
    config = bridge.runner(job_id).job.kwargs["config"]
    from engine.models.registry import get_family

    assert config["width"] == get_family("unet").cpu_preset["width"] and config["device"] == "auto"
    panel.cancel()
    qtbot.waitUntil(lambda: panel.train_job_id is None, timeout=60_000)
    # "auto" where CUDA exists gets the GPU preset (the job itself then fails here: no real GPU)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    job_id = panel.start_training(out=tmp_path / "z.ckpt")
    assert bridge.runner(job_id).job.kwargs["config"]["width"] == get_family("unet").gpu_preset["width"]
    panel.cancel()
    qtbot.waitUntil(lambda: panel.train_job_id is None, timeout=60_000)


def test_the_category_list_shows_only_for_families_that_train_on_checked_categories(setup):
    panel = setup[0]
    for family, shown in (("unet", True), ("yolo", True), ("pix2pix", False), ("siamese", False)):
        panel.family_combo.setCurrentIndex(panel.family_combo.findText(family))
        assert panel.categories.isVisibleTo(panel) is shown and panel.categories_label.isVisibleTo(panel) is shown

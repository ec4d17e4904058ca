"""Checkpoints: one file, written atomically, read without ever running code from the file."""
import json
import os
import pickle

import pytest
import torch
from torch import nn

from engine.models import checkpoint as ckpt
from engine.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

META = {"family": "unet", "classes": ["background", "cat"], "config": {"depth": 2}, "metrics": {"miou": 0.5}}


def test_round_trip_restores_weights_and_meta_with_versions(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    path = save_checkpoint(tmp_path / "run" / "model.pt", model.state_dict(), META)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left behind

    state, meta = load_checkpoint(path)
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    fresh.load_state_dict(state, strict=True)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    assert meta["family"] == "unet" and meta["classes"] == ["background", "cat"]
    assert meta["config"] == {"depth": 2} and meta["metrics"] == {"miou": 0.5}
    assert meta["versions"]["torch"] == torch.__version__
    assert set(meta["versions"]) == {"torch", "torchvision", "visionbench"}

    # The file is plain: a dict of tensors plus a JSON string, readable with weights_only.
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"state_dict", "meta_json"} and json.loads(raw["meta_json"])["family"] == "unet"


def test_meta_must_name_family_classes_config_metrics(tmp_path):
    with pytest.raises(CheckpointError, match="missing required field.*metrics"):
        save_checkpoint(tmp_path / "m.pt", {}, {"family": "x", "classes": [], "config": {}})
    with pytest.raises(CheckpointError, match="'classes' must be a list"):
        save_checkpoint(tmp_path / "m.pt", {}, {**META, "classes": "cat"})
    with pytest.raises(CheckpointError, match="not JSON-serialisable"):
        save_checkpoint(tmp_path / "m.pt", {}, {**META, "config": {"bad": object()}})
    assert not (tmp_path / "m.pt").exists()


def test_failed_write_keeps_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"w": torch.ones(3)}, META)
    before = path.read_bytes()

    def crash_midway(obj, fh, *args, **kwargs):
        fh.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", crash_midway)
    with pytest.raises(CheckpointError, match="model.pt.*could not write"):
        save_checkpoint(path, {"w": torch.zeros(3)}, META)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


class _PlantsMarker:
    """Unpickling this object creates a file: stands in for arbitrary code in a hostile file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_that_would_run_code_is_refused_and_the_code_does_not_run(tmp_path):
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "meta_json": "{}", "x": _PlantsMarker(marker)}, evil)

    # Control: an unsafe loader really would run it, so the plant is real.
    control = tmp_path / "control.pkl"
    control.write_bytes(pickle.dumps(_PlantsMarker(tmp_path / "control_marker.txt")))
    pickle.loads(control.read_bytes())
    assert (tmp_path / "control_marker.txt").exists()

    with pytest.raises(CheckpointError) as info:
        load_checkpoint(evil)
    assert "evil.pt" in str(info.value)
    assert "refused" in str(info.value) and "calls io.open" in str(info.value)
    assert "weights_only" not in str(info.value)  # torch's paragraph is not passed on
    assert not marker.exists()


def test_truncated_file_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", {"w": torch.randn(64, 64)}, META)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.pt.*corrupt, truncated"):
        load_checkpoint(path)


def test_garbage_missing_and_foreign_files(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(256))
    with pytest.raises(CheckpointError, match=r"garbage\.pt.*corrupt, truncated or not a PyTorch checkpoint") as info:
        load_checkpoint(garbage)
    assert "refused" not in str(info.value) and "weights_only" not in str(info.value)

    with pytest.raises(CheckpointError, match=r"nothere\.pt: checkpoint file does not exist"):
        load_checkpoint(tmp_path / "nothere.pt")

    foreign = tmp_path / "foreign.pt"
    torch.save({"w": torch.ones(2)}, foreign)  # a bare state dict from elsewhere
    with pytest.raises(CheckpointError, match="not a Visionbench checkpoint"):
        load_checkpoint(foreign)


def test_gpu_or_grad_tensors_are_saved_detached_on_cpu(tmp_path):
    w = torch.ones(2, requires_grad=True) * 2
    state, _ = load_checkpoint(save_checkpoint(tmp_path / "m.pt", {"w": w}, META))
    assert state["w"].device.type == "cpu" and not state["w"].requires_grad
    with pytest.raises(CheckpointError, match="'n' is a int"):
        save_checkpoint(tmp_path / "m2.pt", {"n": 3}, META)

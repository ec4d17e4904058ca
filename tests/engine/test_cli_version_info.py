"""`visionbench --version`, and `visionbench info CKPT`: what a model file is, before running it."""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import cli
from engine.annotations.store import ProjectStore

from .infer.tiny_models import CLASSES, fixed_onnx, rcnn_checkpoint, raw_onnx_output, unet_checkpoint, yolo_checkpoint

VENV_BIN = Path(sys.executable).parent


def test_version_is_the_installed_package_version(capsys):
    expected = importlib.metadata.version("visionbench")
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"visionbench {expected}"
    # the installed console script, running this checkout's code
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run([str(VENV_BIN / "visionbench"), "--version"], capture_output=True, text=True, timeout=120,
                         env=env)
    assert run.returncode == 0 and run.stdout.strip() == f"visionbench {expected}"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("info_models")
    return {"maskrcnn": rcnn_checkpoint(folder / "m.ckpt"), "yolo": yolo_checkpoint(folder / "y.ckpt"),
            "unet": unet_checkpoint(folder / "u.ckpt"),
            "onnx": fixed_onnx(folder / "d.onnx", raw_onnx_output([[1, 1, 9, 9]], [[0.5, 0.1]]), "{0: 'cat', 1: 'dog'}",
                               size=96)}


def info(capsys, *argv) -> dict:
    capsys.readouterr()
    assert cli.main(["info", *map(str, argv)]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_info_on_a_checkpoint_says_family_classes_input_size_training_and_origin(models, capsys):
    m = info(capsys, models["maskrcnn"])
    assert (m["family"], m["kind"], m["classes"]) == ("maskrcnn", "instance", CLASSES)
    assert (m["input_size"]["min_size"], m["input_size"]["max_size"]) == (64, 96)
    assert m["trained_from"]["pretrained_backbone"] is False and m["trained_from"]["backbone"] == "lite0"
    assert "project" in m["trained_from"] and m["versions"]["visionbench"] == importlib.metadata.version("visionbench")

    y = info(capsys, models["yolo"])
    size = y["input_size"]
    assert (y["family"], y["kind"], size["width"], size["height"]) == ("yolo", "detection", 64, 64)

    u = info(capsys, models["unet"])
    assert u["family"] == "unet" and u["kind"] == "segmentation" and u["input_size"]["tile"] == 256
    assert u["training"]["epoch"] == 3 and u["training"]["metrics"] == {"val_miou": 0.5}

    o = info(capsys, models["onnx"])
    assert (o["family"], o["classes"], o["input_size"]["width"]) == ("onnx", ["cat", "dog"], 96)


def test_info_on_a_project_still_works_and_the_two_do_not_mix(models, tmp_path, capsys):
    project = tmp_path / "p.vbproj"
    with ProjectStore.create(project) as s:
        s.add_category("cat")
    assert info(capsys, "--project", project)["categories"] == ["cat"]
    assert info(capsys, project)["categories"] == ["cat"]  # a .vbproj given as CKPT is a project
    assert cli.main(["info", str(models["yolo"]), "--project", str(project)]) == 2
    assert "one of the two" in capsys.readouterr().err
    assert cli.main(["info"]) == 2


def test_info_on_a_file_that_is_no_model_exits_2_naming_it(tmp_path, capsys):
    text = tmp_path / "notes.ckpt"
    text.write_text("not weights")
    assert cli.main(["info", str(text)]) == 2
    err = capsys.readouterr().err
    assert str(text) in err and "checkpoint" in err and "Traceback" not in err
    bad_onnx = tmp_path / "x.onnx"
    bad_onnx.write_bytes(np.zeros(16, np.uint8).tobytes())
    assert cli.main(["info", str(bad_onnx)]) == 2
    assert str(bad_onnx) in capsys.readouterr().err

"""The `visionbench` command: subcommands, delegation to the engine, and exit codes."""
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from engine import cli
from engine.annotations import ProjectStore

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_demo")
    assert cli.main(["demo", "--out", str(out), "--shapes", "8", "--galaxies", "4", "--seed", "1"]) == 0
    return out


def _info(capsys, project) -> dict:
    capsys.readouterr()
    assert cli.main(["info", "--project", str(project)]) == 0
    return json.loads(capsys.readouterr().out)


def test_console_script_is_installed():
    run = subprocess.run([str(VENV_BIN / "visionbench"), "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0
    for command in ("demo", "import", "export", "train", "predict", "eval", "info"):
        assert command in run.stdout


def test_demo_then_info(demo, capsys):
    info = _info(capsys, demo / "shapes.vbproj")
    assert info["images"] == 8
    assert info["images_per_split"] == {"train": 6, "val": 2, "test": 0}
    assert info["images_per_status"]["done"] == 8
    assert info["annotations_per_kind"]["box"] == info["annotations_per_kind"]["mask"]
    assert sum(info["annotations_per_category"].values()) == info["annotations"]
    photos = _info(capsys, demo / "photos.vbproj")
    assert photos["annotations_per_category"]["cat"] == 1 and photos["images_per_split"]["val"] == 2


def test_bad_input_exits_2_naming_file_and_field(tmp_path, capsys):
    missing = tmp_path / "nope.vbproj"
    assert cli.main(["info", "--project", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--project" in err
    assert cli.main(["import", "klingon", "x", "--project", str(missing)]) == 2  # argparse: bad choice
    assert "invalid choice" in capsys.readouterr().err
    assert cli.main(["info"]) == 2  # missing required option
    not_a_project = tmp_path / "text.vbproj"
    not_a_project.write_text("hello")
    assert cli.main(["info", "--project", str(not_a_project)]) == 2
    assert "text.vbproj" in capsys.readouterr().err
    assert cli.main(["import", "coco", str(tmp_path / "none.json"), "--project", str(tmp_path / "p.vbproj")]) == 2
    assert "none.json" in capsys.readouterr().err


def test_internal_error_exits_1_traceback_only_with_debug(monkeypatch, capsys):
    def boom(args):
        raise ZeroDivisionError("engine bug")

    monkeypatch.setitem(cli.HANDLERS, "info", boom)
    monkeypatch.delenv("VISIONBENCH_DEBUG", raising=False)
    assert cli.main(["info", "--project", "x.vbproj"]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "engine bug" in err and "Traceback" not in err
    assert cli.main(["--debug", "info", "--project", "x.vbproj"]) == 1
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("VISIONBENCH_DEBUG", "1")
    assert cli.main(["info", "--project", "x.vbproj"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_export_then_import_coco_round_trip(demo, tmp_path, capsys):
    dst = tmp_path / "coco"
    assert cli.main(["export", "coco", str(dst), "--project", str(demo / "photos.vbproj")]) == 0
    files = list(dst.rglob("*.json")) if dst.is_dir() else [dst]
    assert files, "export wrote nothing"
    capsys.readouterr()
    project = tmp_path / "new" / "p.vbproj"
    assert cli.main(["import", "coco", str(files[0]), "--project", str(project)]) == 0
    summary = json.loads(capsys.readouterr().out)
    source = _info(capsys, demo / "photos.vbproj")
    assert source["images"] >= 13  # every photo that ships inside the wheels
    assert summary["images_added"] == source["images"] and summary["totals"]["images"] == source["images"]
    copy = _info(capsys, project)
    assert copy["annotations_per_kind"].get("box") == source["annotations_per_kind"]["box"]
    assert {k: v for k, v in copy["annotations_per_category"].items() if v} == \
        {k: v for k, v in source["annotations_per_category"].items() if v and k != "eye"}  # COCO has no points


def _fake_module(monkeypatch, name: str, func_name: str, result):
    calls = []

    def func(**kwargs):
        calls.append(kwargs)
        return result

    mod = types.ModuleType(name)
    setattr(mod, func_name, func)
    monkeypatch.setitem(sys.modules, name, mod)
    return calls


def test_train_predict_eval_delegate_with_keyword_names(demo, tmp_path, monkeypatch, capsys):
    project = str(demo / "shapes.vbproj")
    train = _fake_module(monkeypatch, "engine.train.run", "train_command", {"loss": 0.5})
    assert cli.main(["train", "unet", "--project", project, "--out", str(tmp_path / "m.pt"), "--epochs", "2",
                     "--device", "cpu", "--seed", "7", "--config", '{"lr": 0.01}']) == 0
    assert train == [dict(family="unet", project=Path(project), out=tmp_path / "m.pt", epochs=2, device="cpu",
                          seed=7, config={"lr": 0.01}, minutes=None, previews_dir=None, resume=None)]
    assert json.loads(capsys.readouterr().out) == {"loss": 0.5}
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"batch_size": 4}')
    assert cli.main(["train", "unet", "--project", project, "--out", "m.pt", "--config", f"@{cfg}"]) == 0
    assert train[-1]["config"] == {"batch_size": 4} and train[-1]["device"] == "auto"
    assert cli.main(["train", "unet", "--project", project, "--out", "m.pt", "--config", "[1, 2"]) == 2
    assert "--config" in capsys.readouterr().err

    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"not really")
    predict = _fake_module(monkeypatch, "engine.infer.run", "predict_command", None)
    assert cli.main(["predict", str(ckpt), "--project", project, "--split", "val", "--as-proposals",
                     "--coco-results", str(tmp_path / "r.json")]) == 0
    assert predict == [dict(ckpt=ckpt, project=Path(project), split="val", store="proposals",  # the old alias
                            masks_out=None, coco_results=tmp_path / "r.json", device="auto",
                            score_threshold=None, nms_iou=None, max_detections=None)]
    assert "--as-proposals is deprecated" in capsys.readouterr().err
    evaluate = _fake_module(monkeypatch, "engine.eval.run", "eval_command", {"mAP": 0.75})
    capsys.readouterr()
    assert cli.main(["eval", str(ckpt), "--project", project]) == 0
    assert json.loads(capsys.readouterr().out) == {"mAP": 0.75}
    assert evaluate[0]["split"] == "val"
    assert cli.main(["eval", str(tmp_path / "missing.pt"), "--project", project]) == 2
    assert "missing.pt" in capsys.readouterr().err


def test_gui_loads_the_front_end_by_name(demo, tmp_path, monkeypatch, capsys):
    opened = _fake_module(monkeypatch, "app.main", "run", 0)
    monkeypatch.setattr(sys.modules["app.main"], "run", lambda project: opened.append(project) or 0)
    assert cli.main([str(demo / "photos.vbproj")]) == 0  # `visionbench PROJECT` means gui
    assert cli.main(["gui", str(demo / "shapes.vbproj")]) == 0
    assert opened == [str(demo / "photos.vbproj"), str(demo / "shapes.vbproj")]

    import engine.demo

    monkeypatch.setattr(engine.demo, "ensure_user_demo", lambda progress=None: demo)
    assert cli.main([]) == 0  # no argument: the demo project
    assert opened[-1] == str(demo / "photos.vbproj")
    assert cli.main(["gui", str(tmp_path / "gone.vbproj")]) == 2
    assert "PROJECT" in capsys.readouterr().err


def test_gui_without_front_end_says_so(demo, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "app.main", None)  # import of app.main fails
    assert cli.main(["gui", str(demo / "photos.vbproj")]) == 1
    assert "app.main" in capsys.readouterr().err


def test_import_with_a_bad_part_all_or_nothing_or_skip_invalid(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 30, "height": 20},
                       {"id": 2, "file_name": "missing.png", "width": 30, "height": 20}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 5]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 2, 10, 5]}],
            "categories": [{"id": 1, "name": "thing"}]}
    src = tmp_path / "data.json"
    src.write_text(json.dumps(coco))
    project = tmp_path / "new.vbproj"
    assert cli.main(["import", "coco", str(src), "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert "data.json" in err and "missing.png" in err
    assert not project.exists()  # a failed import into a new project leaves nothing behind
    assert cli.main(["import", "coco", str(src), "--project", str(tmp_path / "new" / "deeper" / "p.vbproj")]) == 2
    assert not (tmp_path / "new").exists()  # not even the folders it made for the project
    capsys.readouterr()
    assert cli.main(["import", "coco", str(src), "--project", str(project), "--skip-invalid"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images_added"] == 1 and summary["annotations_added"] == 1
    assert len(summary["skipped"]) >= 1 and "missing.png" in " ".join(summary["skipped"])
    with ProjectStore(project, readonly=True) as s:
        [img] = s.images()
        assert img.path == "a.png" and s.annotations(img.id)[0].geometry.x2 == 11


def test_import_and_export_draw_tqdm_bars_on_stderr(demo, tmp_path, monkeypatch, capsys):
    import io

    from tqdm import tqdm

    drawn = io.StringIO()  # a terminal stand-in: the real bar hides itself when stderr is not a TTY
    monkeypatch.setattr(cli, "_bar", lambda desc, total=None: tqdm(total=total, desc=desc, file=drawn,
                                                                   mininterval=0, ascii=True))
    assert cli.main(["export", "yolo", str(tmp_path / "y"), "--project", str(demo / "shapes.vbproj")]) == 0
    assert cli.main(["import", "yolo", str(tmp_path / "y"), "--project", str(tmp_path / "p.vbproj")]) == 0
    text = drawn.getvalue().replace("\r", "\n")
    for stage in ("export yolo: write", "import yolo: read", "import yolo: store"):
        assert f"{stage}: 100%" in text and "8/8" in text, stage
    out = capsys.readouterr().out
    assert "%|" not in out  # stdout stays clean JSON


@pytest.mark.parametrize("fmt", ["coco", "voc", "yolo", "labelme", "masks"])
def test_export_of_one_split_holds_only_its_images(demo, tmp_path, capsys, fmt):
    assert cli.main(["export", fmt, str(tmp_path / "out"), "--project", str(demo / "shapes.vbproj"),
                     "--split", "val"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 2
    project = tmp_path / "back.vbproj"
    assert cli.main(["import", fmt, str(tmp_path / "out"), "--project", str(project)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images_added"] == 2 and summary["annotations_added"] > 0
    if fmt != "labelme":  # LabelMe files have no split
        assert _info(capsys, project)["images_per_split"] == {"train": 0, "val": 2, "test": 0}


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_yolo_export_of_the_shapes_demo_writes_one_kind_of_row_per_object(demo, tmp_path, capsys, task):
    assert cli.main(["export", "yolo", str(tmp_path / "out"), "--project", str(demo / "shapes.vbproj"),
                     "--task", task]) == 0
    summary = json.loads(capsys.readouterr().out)
    with ProjectStore(demo / "shapes.vbproj", readonly=True) as store:
        n_objects = len({a.instance_id for anns in store.all_annotations().values() for a in anns})
    assert summary["task"] == task and summary["objects"] == summary["merged_objects"] == n_objects
    rows = [ln.split() for f in (tmp_path / "out" / "labels").rglob("*.txt") for ln in f.read_text().splitlines()]
    assert len(rows) == n_objects and {len(r) == 5 for r in rows} == {task == "detect"}


def test_export_options_of_another_format_are_bad_input(demo, tmp_path, capsys):
    assert cli.main(["export", "coco", str(tmp_path / "c"), "--project", str(demo / "shapes.vbproj"),
                     "--task", "detect"]) == 2
    assert "--task" in capsys.readouterr().err
    assert cli.main(["export", "yolo", str(tmp_path / "y"), "--project", str(demo / "shapes.vbproj"),
                     "--keep-image-format"]) == 2
    assert "--keep-image-format" in capsys.readouterr().err
    assert cli.main(["export", "voc", str(tmp_path / "v"), "--project", str(demo / "photos.vbproj"),
                     "--keep-image-format"]) == 0
    assert json.loads(capsys.readouterr().out)["images_converted_to_jpeg"] == 0
    assert (tmp_path / "v" / "JPEGImages" / "coins.png").is_file()


def test_export_onto_a_file_or_into_an_unwritable_place_is_bad_input(demo, tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for fmt in ("coco", "voc", "yolo", "labelme", "masks"):
        assert cli.main(["export", fmt, str(a_file), "--project", str(demo / "photos.vbproj")]) == 2
        err = capsys.readouterr().err
        assert "notes.txt" in err and "DST" in err and "internal error" not in err
    assert a_file.read_text() == "not a folder"

    import engine.annotations.formats.voc as voc

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "locked" / "x.xml"))

    monkeypatch.setattr(voc, "atomic_write_text", denied)
    assert cli.main(["export", "voc", str(tmp_path / "locked"), "--project", str(demo / "photos.vbproj")]) == 2
    err = capsys.readouterr().err
    # the destination and the cause, not whichever file was open (issue 14, point 8)
    assert "locked" in err and "permission denied" in err and "internal error" not in err
    assert not (tmp_path / "locked").exists()  # a failed export leaves no half folder

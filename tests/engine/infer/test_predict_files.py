"""`visionbench predict CKPT IMAGE|DIR|GLOB --out DIR`: a model on one's own photos, no project.

The photos are the demo's (scikit-image's sample photos, written by engine.demo); the model an
untrained tiny Mask R-CNN, which finds plenty of (meaningless) boxes and masks on them.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from engine import cli
from engine.annotations.store import ProjectStore
from engine.demo.photos import build_photos

from .tiny_models import CLASSES, rcnn_checkpoint

# LabelMe's shape types (labelme/shape.py); how many points each takes (None: any number >= 1)
SHAPE_POINTS = {"rectangle": 2, "circle": 2, "line": 2, "mask": 2, "point": 1, "polygon": None,
                "linestrip": None, "points": None}


def labelme_problems(label_file: Path) -> list[str]:
    """Every way ``label_file`` breaks the rules LabelMe's own loader (LabelFile.load) applies:

    - a JSON object with ``version`` (str), ``flags`` (dict of str -> bool), ``shapes`` (list),
      ``imagePath`` (str; read relative to the JSON's folder, forward slashes), ``imageData``
      (null: the image is then read from imagePath, which must exist), ``imageHeight`` and
      ``imageWidth`` (ints equal to the image's size);
    - each shape: ``label`` (str), ``points`` (non-empty list of [x, y] numbers, inside the image),
      ``shape_type`` (one of LabelMe's, with its number of points), ``flags`` (null or dict of
      str -> bool), ``description`` (null or str), ``group_id`` (null or int), ``mask`` (null, or
      a base64 PNG for shape_type "mask"); other keys are allowed (LabelMe keeps them).
    """
    doc = json.loads(label_file.read_text(encoding="utf-8"))
    bad = []
    for key, kind in (("version", str), ("flags", dict), ("shapes", list), ("imagePath", str), ("imageHeight", int),
                      ("imageWidth", int)):
        if not isinstance(doc.get(key), kind) or isinstance(doc.get(key), bool):
            bad.append(f"{key} is not a {kind.__name__}")
    if bad:
        return bad
    if doc.get("imageData", "missing") is not None:
        bad.append("imageData is not null")
    if "\\" in doc["imagePath"]:
        bad.append("imagePath has backslashes")
    image = label_file.parent / doc["imagePath"]
    if not image.is_file():
        return bad + [f"imagePath {doc['imagePath']} does not exist beside the JSON"]
    with Image.open(image) as im:
        if im.size != (doc["imageWidth"], doc["imageHeight"]):
            bad.append(f"image size {im.size} != ({doc['imageWidth']}, {doc['imageHeight']})")
    w, h = doc["imageWidth"], doc["imageHeight"]
    if not all(isinstance(k, str) and isinstance(v, bool) for k, v in doc["flags"].items()):
        bad.append("flags is not str -> bool")
    for i, s in enumerate(doc["shapes"]):
        where = f"shapes[{i}]"
        if not isinstance(s.get("label"), str):
            bad.append(f"{where}.label is not a str")
        pts = s.get("points")
        if not (isinstance(pts, list) and pts and all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                            for v in p) for p in pts)):
            bad.append(f"{where}.points is not a non-empty list of [x, y]")
            continue
        if not all(0 <= x <= w and 0 <= y <= h for x, y in pts):
            bad.append(f"{where}.points leave the image")
        st = s.get("shape_type")
        if st not in SHAPE_POINTS or (SHAPE_POINTS[st] is not None and len(pts) != SHAPE_POINTS[st]):
            bad.append(f"{where}.shape_type {st!r} with {len(pts)} points")
        if s.get("flags") is not None and not (isinstance(s["flags"], dict) and all(
                isinstance(k, str) and isinstance(v, bool) for k, v in s["flags"].items())):
            bad.append(f"{where}.flags is not str -> bool")
        if s.get("description") is not None and not isinstance(s["description"], str):
            bad.append(f"{where}.description is not a str")
        if s.get("group_id") is not None and (not isinstance(s["group_id"], int) or isinstance(s["group_id"], bool)):
            bad.append(f"{where}.group_id is not an int")
        if s.get("mask") is not None:
            try:
                Image.open(io.BytesIO(base64.b64decode(s["mask"]))).load()
            except Exception as exc:  # noqa: BLE001 - any decoding failure breaks the rule
                bad.append(f"{where}.mask is not a base64 PNG ({exc})")
        elif st == "mask":
            bad.append(f"{where} is a mask shape without a mask")
    return bad


# one intra-op thread: two spin against each other on a shared 2-core machine (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return str(rcnn_checkpoint(tmp_path_factory.mktemp("files_ckpt") / "tiny.ckpt"))


@pytest.fixture(scope="module")
def photos_src(tmp_path_factory) -> Path:
    build_photos(tmp_path_factory.mktemp("files_demo"))
    return next(tmp_path_factory.getbasetemp().glob("files_demo*")) / "photos"


@pytest.fixture
def photos(photos_src, tmp_path) -> Path:
    return Path(shutil.copytree(photos_src, tmp_path / "photos"))


def predict(capsys, *argv) -> dict:
    capsys.readouterr()
    assert cli.main(["predict", *map(str, argv), "--device", "cpu"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def refused(capsys, argv, file, field) -> str:
    capsys.readouterr()
    assert cli.main(["predict", *map(str, argv), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert any(str(file) in line and field in line for line in err.splitlines()), err
    assert "Traceback" not in err
    return err


def test_a_folder_of_photos_gives_one_labelme_file_per_photo_that_labelme_accepts(ckpt, photos, tmp_path, capsys):
    out = tmp_path / "labels"
    summary = predict(capsys, ckpt, photos, "--out", out)
    names = sorted(p.name for p in photos.iterdir())
    assert len(names) >= 10  # scikit-image ships the demo photos
    labels = sorted(out.glob("*.json"))
    assert [p.stem for p in labels] == sorted(Path(n).stem for n in names)
    assert summary["images"] == summary["labelme_files"] == summary["images_copied"] == len(names)
    assert summary["store"] == "none" and summary["project"] is None
    for label in labels:
        assert labelme_problems(label) == [], label
        doc = json.loads(label.read_text())
        assert (out / doc["imagePath"]).read_bytes() == (photos / doc["imagePath"]).read_bytes()  # a copy
        assert {s["label"] for s in doc["shapes"]} <= set(CLASSES)
    shapes = sum(len(json.loads(p.read_text())["shapes"]) for p in labels)
    assert shapes == summary["annotations"] > 0

    # our own LabelMe reader takes them too: every shape comes back
    capsys.readouterr()
    assert cli.main(["import", "labelme", str(out), "--project", str(tmp_path / "p" / "p.vbproj")]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert imported["images_added"] == len(names) and imported["annotations_added"] == shapes


def test_labels_beside_the_photos_are_rewritten_but_a_users_own_labels_are_never_touched(ckpt, photos, capsys):
    first = predict(capsys, ckpt, photos, "--out", photos, "--score-threshold", "0.25")
    assert first["images_copied"] == 0  # the JSON sits beside each photo, which stays where it is
    chelsea = photos / "chelsea.json"
    assert json.loads(chelsea.read_text())["imagePath"] == "chelsea.jpg" and labelme_problems(chelsea) == []
    again = predict(capsys, ckpt, photos, "--out", photos)  # a second try, other thresholds: replaced
    assert again["images"] == first["images"] and again["annotations"] > first["annotations"]

    mine = {"version": "5.5.0", "flags": {}, "shapes": [], "imagePath": "coffee.jpg", "imageData": None,
            "imageHeight": 400, "imageWidth": 600}
    (photos / "coffee.json").write_text(json.dumps(mine))  # labelled by hand in LabelMe
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    refused(capsys, [ckpt, photos, "--out", photos], photos / "coffee.json", "--out")
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before


def test_single_files_and_globs_with_coco_results_and_mask_pngs(ckpt, photos, tmp_path, capsys):
    results, masks = tmp_path / "results.json", tmp_path / "masks"
    summary = predict(capsys, ckpt, photos / "chelsea.jpg", f"{photos}/co*", "--coco-results", results,
                      "--masks-out", masks, "--max-detections", "5")
    assert summary["images"] == 3 and summary["out"] is None  # chelsea, coffee, coins
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(summary["coco_images"])  # the images and categories the ids mean
        dt = gt.loadRes(str(results))
    assert [Path(im["file_name"]).name for im in gt.dataset["images"]] == ["chelsea.jpg", "coffee.jpg", "coins.png"]
    assert [c["name"] for c in gt.dataset["categories"]] == CLASSES
    assert all(len(dt.getAnnIds(imgIds=[i])) <= 5 for i in (1, 2, 3))
    assert (masks / "class_names.txt").read_text().splitlines() == ["_background_", *CLASSES]
    coins = np.asarray(Image.open(masks / "coins.png"))
    assert coins.shape == (303, 384) and coins.max() <= len(CLASSES)


def test_bad_inputs_exit_2_naming_the_file_and_write_nothing(ckpt, photos, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, [ckpt, f"{photos}/*.tif", "--out", out], f"{photos}/*.tif", "IMAGE")  # empty glob
    refused(capsys, [ckpt, tmp_path / "nowhere", "--out", out], tmp_path / "nowhere", "IMAGE")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(capsys, [ckpt, empty, "--out", out], empty, "IMAGE")
    (photos / "zz_broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")  # predicted last
    refused(capsys, [ckpt, photos, "--out", out, "--coco-results", tmp_path / "r.json"], "zz_broken.jpg", "image")
    assert not (tmp_path / "r.json").exists() and list(out.iterdir()) == []  # nothing half-written

    # checkpoints of the wrong kind: a project, a photo, a text file
    project = tmp_path / "p.vbproj"
    ProjectStore.create(project).close()
    for wrong in (project, photos / "chelsea.jpg"):
        refused(capsys, [wrong, photos / "coffee.jpg", "--out", out], wrong, "checkpoint")
    capsys.readouterr()
    assert cli.main(["predict", ckpt, str(photos / "coffee.jpg")]) == 2  # and where should the results go?
    assert "--out DIR" in capsys.readouterr().err

"""`--score-threshold`, `--iou` and `--max-detections` do what `--help` says, for each detector
Visionbench runs (our Mask R-CNN and YOLO checkpoints, an Ultralytics ONNX export), on `predict`
and on `eval`; a U-Net takes the score threshold and the count for its regions and refuses `--iou`.

- score threshold S: exactly the default run's detections scoring >= S (dropping low candidates
  before NMS cannot change which better ones survive);
- max detections N: the N best of the default run, per image;
- IoU T: no two kept boxes of one class overlap by more than T, and a low T keeps fewer.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import cli
from engine.annotations.model import Annotation, Box
from engine.annotations.store import ProjectStore
from engine.demo.shapes import build_shapes
from engine.infer.thresholds import DEFAULT_SCORE_THRESHOLD, ONNX_MAX_DETECTIONS

from .tiny_models import fixed_onnx, rcnn_checkpoint, raw_onnx_output, unet_checkpoint, yolo_checkpoint


# one intra-op thread: two spin against each other on a shared 2-core machine (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("thresholds")
    build_shapes(root / "demo", n_images=2, seed=4)  # two 128 px images under demo/shapes/
    rng = np.random.default_rng(1)
    centres = rng.uniform(12, 52, (6, 2))
    cxcy = centres[rng.integers(0, 6, 400)] + rng.normal(0, 2, (400, 2))
    wh = rng.uniform(8, 20, (400, 2))
    boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], 1)
    fixed_onnx(root / "yolo.onnx", raw_onnx_output(boxes, rng.uniform(0, 1, (400, 3)) ** 2),
               "{0: 'circle', 1: 'rectangle', 2: 'triangle'}")
    rcnn_checkpoint(root / "maskrcnn.ckpt")
    yolo_checkpoint(root / "yolo.ckpt")
    unet_checkpoint(root / "unet.ckpt")
    return root


MODELS = {"maskrcnn": "maskrcnn.ckpt", "yolo": "yolo.ckpt", "onnx": "yolo.onnx"}
# the untrained tiny YOLO scores every box below the default 0.05: its runs start lower
FLOOR = {"maskrcnn": [], "yolo": ["--score-threshold", 0.001], "onnx": []}


def detections(capsys, folder: Path, model: str, *options) -> dict[int, list[tuple]]:
    """image id -> [(category, x, y, w, h, score)] best first, from `predict ... --coco-results`."""
    out = folder / "results.json"
    capsys.readouterr()
    assert cli.main(["predict", str(folder / model), str(folder / "demo" / "shapes" / "*.png"),
                     "--coco-results", str(out), "--device", "cpu", *map(str, options)]) == 0, capsys.readouterr().err
    per_image = defaultdict(list)
    for r in json.loads(out.read_text()):
        per_image[r["image_id"]].append((r["category_id"], *(round(v, 3) for v in r["bbox"]), r["score"]))
    return {k: sorted(v, key=lambda d: (-d[-1], d)) for k, v in per_image.items()}  # ties in a fixed order


def iou(a: tuple, b: tuple) -> float:
    """IoU of two (category, x, y, w, h, score) detections."""
    ax, ay, aw, ah = a[1:5]
    bx, by, bw, bh = b[1:5]
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


@pytest.mark.parametrize("model", MODELS)
def test_thresholds_change_the_detections_as_stated(folder, capsys, model):
    file, floor = MODELS[model], FLOOR[model]
    base = detections(capsys, folder, file, *floor)
    assert sum(map(len, base.values())) > 20, "the tiny model must detect plenty for the test to mean anything"
    if not floor:
        assert all(d[-1] >= DEFAULT_SCORE_THRESHOLD - 1e-6 for ds in base.values() for d in ds)
    if model == "onnx":
        assert max(map(len, base.values())) <= ONNX_MAX_DETECTIONS

    scores = sorted({d[-1] for ds in base.values() for d in ds})
    s = scores[len(scores) // 2]  # one of the scores: a float32 value, compared as the model compares it
    high = detections(capsys, folder, file, "--score-threshold", s)
    assert high == {k: [d for d in ds if d[-1] >= s] for k, ds in base.items() if any(d[-1] >= s for d in ds)}

    top = detections(capsys, folder, file, *floor, "--max-detections", 3)
    assert {k: [d[-1] for d in ds] for k, ds in top.items()} == {k: [d[-1] for d in ds[:3]] for k, ds in base.items()}

    tight = detections(capsys, folder, file, *floor, "--iou", 0.2)
    assert not overlapping(tight, 0.2)
    if overlapping(base, 0.2):
        assert sum(map(len, tight.values())) < sum(map(len, base.values()))
    else:  # the untrained YOLO's boxes are its grid cells: they overlap by 0 or not at all
        assert tight == base


def overlapping(per_image: dict, t: float) -> bool:
    """Whether two detections of one class on one image overlap by IoU > t."""
    return any(iou(a, b) > t + 1e-3 for ds in per_image.values() for i, a in enumerate(ds)
               for b in ds[i + 1:] if b[0] == a[0])


def test_a_unet_takes_the_score_threshold_and_count_for_its_regions_and_refuses_iou(folder, capsys, tmp_path):
    ckpt, image = str(folder / "unet.ckpt"), str(next((folder / "demo" / "shapes").glob("*.png")))

    def regions(*options) -> list[float]:
        capsys.readouterr()
        assert cli.main(["predict", ckpt, image, "--out", str(tmp_path), "--device", "cpu", *options]) == 0
        doc = json.loads(next(tmp_path.glob("*.json")).read_text())
        return sorted((s["score"] for s in doc["shapes"]), reverse=True)

    every = regions()
    assert len(every) > 2
    s = every[len(every) // 2]
    assert regions("--score-threshold", str(s)) == [v for v in every if v >= s]
    assert regions("--max-detections", "2") == every[:2]
    capsys.readouterr()
    assert cli.main(["predict", ckpt, image, "--out", str(tmp_path), "--iou", "0.3"]) == 2
    err = capsys.readouterr().err
    assert ckpt in err and "--iou" in err and "no NMS" in err
    # eval scores a U-Net per pixel: a region threshold would be silently meaningless there
    shapes = str(folder / "demo" / "shapes.vbproj")
    assert cli.main(["eval", ckpt, "--project", shapes, "--score-threshold", "0.5"]) == 2
    err = capsys.readouterr().err
    assert ckpt in err and "--score-threshold" in err and "per pixel" in err


@pytest.fixture
def one_object(tmp_path) -> tuple[Path, Path]:
    """A 64 px project with one 'thing' (10..30 px square), and a detector that finds it with score
    0.3 and sees a false 'thing' with score 0.9 elsewhere."""
    project = tmp_path / "p" / "p.vbproj"
    project.parent.mkdir()
    Image.fromarray(np.full((64, 64, 3), 100, np.uint8)).save(project.parent / "a.png")
    with ProjectStore.create(project) as s:
        thing = s.add_category("thing").id
        rec = s.add_image(project.parent / "a.png", split="val")
        s.add_annotations([Annotation(rec.id, thing, Box(10, 10, 30, 30))])
    model = fixed_onnx(tmp_path / "one.onnx", raw_onnx_output([[10, 10, 30, 30], [40, 40, 60, 60]], [[0.3], [0.9]]),
                       "{0: 'thing'}")
    return project, model


def test_eval_scores_what_the_thresholds_leave(one_object, capsys):
    project, model = one_object

    def map50(*options) -> float:
        capsys.readouterr()
        assert cli.main(["eval", str(model), "--project", str(project), "--device", "cpu", *options]) == 0
        metrics = json.loads(capsys.readouterr().out)
        return metrics["box_map50"]

    assert map50() == pytest.approx(0.5)  # the false one first, then the true one: precision 1/2 at full recall
    assert map50("--score-threshold", "0.5") == 0.0  # only the false one is left
    assert map50("--max-detections", "1") == 0.0  # the best one is the false one
    assert map50("--score-threshold", "0.2", "--max-detections", "2") == pytest.approx(0.5)



"""`visionbench export-model`: segmentation and detection checkpoints as ONNX and TorchScript give
what PyTorch gives on real photos, and the workbench opens its own ONNX detectors again."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import skimage.data
import torch

from engine.annotations.errors import BadInput
from engine.cli import main
from engine.infer.deploy import deployable, export_model, write_deployable
from engine.infer.detector_api import load_detector
from tests.engine.infer.tiny_models import CLASSES, rcnn_checkpoint, unet_checkpoint, yolo_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOLERANCE = 1e-3  # logits, probabilities and box pixels


def photo(h: int = 256, w: int = 384) -> torch.Tensor:
    return torch.from_numpy(skimage.data.coffee()[:h, :w].copy()).permute(2, 0, 1).float() / 255.0


def detections_differ(ref, got) -> float:
    """Largest difference between two detection lists (boxes, labels, scores). Near-equal scores
    may come out in either order, so each reference detection is matched to the closest one of
    the same label and about the same score."""
    boxes, labels, scores = (t.numpy() for t in ref[:3])
    assert len(got[0]) == len(boxes)
    worst = 0.0
    for b, lab, sc in zip(boxes, labels, scores):
        same = (got[1] == lab) & (np.abs(got[2] - sc) <= TOLERANCE)
        assert same.any()
        worst = max(worst, float(np.abs(got[0][same] - b).max(axis=1).min()), float(np.abs(got[2][same] - sc).min()))
    return worst


def decisive_rcnn(path, family: str):
    """A tiny R-CNN whose classifier is sharp: an untrained one scores every box about the same,
    and near-ties may fall on either side of the top-100 cut in two runtimes."""
    from engine.models.checkpoint import load_checkpoint, save_checkpoint

    state, meta = load_checkpoint(rcnn_checkpoint(path, family))
    g = torch.Generator().manual_seed(0)
    for key in ("roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias"):
        state[key] = torch.randn(state[key].shape, generator=g) * 3.0
    return save_checkpoint(path, state, meta)


def onnx_run(path, x: torch.Tensor):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})


def test_unet_onnx_and_torchscript_give_pytorchs_probabilities(tmp_path):
    ckpt = unet_checkpoint(tmp_path / "u.ckpt")
    export_model(ckpt, "onnx", tmp_path / "u.onnx")
    export_model(ckpt, "torchscript", tmp_path / "u.pt")
    d = deployable(ckpt)
    t = d.meta["input_size"]
    x = photo(t, t)[None]
    with torch.no_grad():
        ref = d.module(x)
        scripted = torch.jit.load(str(tmp_path / "u.pt"))(x)
    (got,) = onnx_run(tmp_path / "u.onnx", x)
    assert got.shape == (1, len(CLASSES) + 1, t, t)
    assert np.abs(got - ref.numpy()).max() < TOLERANCE
    assert (scripted - ref).abs().max() < TOLERANCE


def pictures() -> dict[str, np.ndarray]:
    """Real photos of different sizes and shapes (landscape, square, portrait, small)."""
    return {"coffee 400x600": skimage.data.coffee(), "astronaut 512x512": skimage.data.astronaut(),
            "rocket portrait 427x300": skimage.data.rocket()[:, 170:470],
            "chelsea 150x200": skimage.data.chelsea()[:150, :200]}


@pytest.mark.parametrize("family", ["fasterrcnn", "maskrcnn"])
def test_rcnn_exports_a_fixed_size_graph_that_gives_pytorchs_detections_on_photos_of_any_size(tmp_path, family):
    from engine.infer.onnx_export_detector import letterbox
    from engine.models.checkpoint import load_checkpoint

    ckpt = decisive_rcnn(tmp_path / f"{family}.ckpt", family)
    summary = export_model(ckpt, "onnx", tmp_path / "d.onnx")
    assert summary["outputs"][:3] == ["boxes", "labels", "scores"]
    d = deployable(ckpt)
    size, pad = d.meta["input_size"], d.meta["pad_value"]
    config = load_checkpoint(ckpt)[1]["config"]
    assert d.meta["resize"] == "letterbox" and size == [config["min_size"], config["max_size"]]
    session = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [3, *size]
    detector = load_detector(tmp_path / "d.onnx", device="cpu")
    for name, rgb in pictures().items():
        x, (nh, nw) = letterbox(rgb, size, pad)
        h, w = rgb.shape[:2]
        assert nh <= size[0] and nw <= size[1] and (nh >= size[0] - 1 or nw >= size[1] - 1), name  # fills a side
        with torch.no_grad():
            ref = d.module(torch.from_numpy(x))
        got = session.run(None, {"image": x})
        assert len(ref[0]) > 0, name
        assert detections_differ(ref, got) < TOLERANCE, name  # the whole list, low scores included
        # the workbench's loader letterboxes the same way and maps the boxes back onto the photo
        det = detector.predict(rgb, score_threshold=0.0)
        back = ref[0].numpy() * np.array([w / nw, h / nh, w / nw, h / nh], np.float32)
        back = np.clip(back, 0, [w, h, w, h])
        assert detections_differ((torch.from_numpy(back), ref[1] - 1, ref[2]),
                                 (det.boxes, det.labels, det.scores)) < TOLERANCE * max(h / nh, w / nw), name
        if family == "maskrcnn":
            assert det.masks.shape == (len(det.boxes), h, w)
    if family == "fasterrcnn":
        x = photo(300, 400)  # TorchScript keeps the detector's own resize: any size goes in
        export_model(ckpt, "torchscript", tmp_path / "d.pt")
        with torch.no_grad():
            ref = d.module(x)
            scripted = torch.jit.load(str(tmp_path / "d.pt"))(x)
        assert detections_differ(ref, [t.numpy() for t in scripted]) < TOLERANCE


def test_yolo_export_decodes_and_suppresses_inside_the_graph(tmp_path):
    ckpt = yolo_checkpoint(tmp_path / "y.ckpt")
    d = deployable(ckpt)
    d.module.score = 0.0  # an untrained model's scores are tiny: keep every candidate to compare them
    write_deployable(d, "onnx", tmp_path / "y.onnx")
    s = d.meta["input_size"]
    x = torch.nn.functional.interpolate(photo()[None], size=(s, s), mode="bilinear", align_corners=False)
    with torch.no_grad():
        ref = d.module(x)
    got = onnx_run(tmp_path / "y.onnx", x)
    assert len(ref[0]) > 0 and int(ref[1].min()) >= 1  # labels 1..C
    assert detections_differ(ref, got) < TOLERANCE


def test_the_workbench_opens_an_exported_onnx_detector_like_any_other(tmp_path):
    ckpt = decisive_rcnn(tmp_path / "m.ckpt", "maskrcnn")
    assert main(["export-model", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    detector = load_detector(tmp_path / "m.onnx", device="cpu")
    assert detector.name == "onnx:m.onnx" and detector.class_names == CLASSES
    image = skimage.data.astronaut()[:200, :240]
    det = detector.predict(image, score_threshold=0.2)  # the graph keeps scores >= 0.05 only
    ref = load_detector(ckpt, device="cpu").predict(image, score_threshold=0.2)
    assert len(det.boxes) == len(ref.boxes) > 0
    assert det.masks is not None and det.masks.shape[1:] == image.shape[:2]
    assert np.abs(np.sort(det.scores) - np.sort(ref.scores)).max() < TOLERANCE


def test_a_family_without_an_export_is_refused_by_name(tmp_path, capsys):
    from engine.models.checkpoint import save_checkpoint

    bad = save_checkpoint(tmp_path / "x.ckpt", {"w": torch.zeros(1)},
                          {"family": "no_such_family", "classes": [], "config": {}, "metrics": {}})
    with pytest.raises(BadInput) as err:
        deployable(bad)
    assert "x.ckpt" in str(err.value)
    assert main(["export-model", str(bad), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "x.ckpt" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_the_onnx_file_says_what_it_is(tmp_path):
    ckpt = unet_checkpoint(tmp_path / "u.ckpt")
    export_model(ckpt, "onnx", tmp_path / "u.onnx")
    session = ort.InferenceSession(str(tmp_path / "u.onnx"), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["visionbench"])
    assert meta["family"] == "unet" and meta["classes"] == CLASSES and meta["input_size"] == 256

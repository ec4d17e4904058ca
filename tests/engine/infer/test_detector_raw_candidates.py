"""Every detector's candidates before NMS can be captured, and stepping NMS over them by hand
(engine.viz.nms_trace, what the NMS view shows) ends with exactly the detector's own detections.

One case per kind of detector the workbench opens through ``load_detector``: Faster R-CNN,
Mask R-CNN, our YOLO (tiny untrained checkpoints), and Ultralytics ONNX exports with the raw
``[1, 4+nc, N]`` and the end-to-end ``[1, 300, 6]`` output (fixed-output graphs).
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from engine.infer.detections import Detections, RawCandidates
from engine.infer.detector_api import load_detector
from engine.models.checkpoint import save_checkpoint
from engine.models.rcnn import build_rcnn
from engine.models.yolo import build_yolo
from engine.viz.nms_trace import nms_trace

from .tiny_models import CLASSES, TINY_RCNN, TINY_YOLO
# 128 px -> 64 px network input for the R-CNNs: a scale of exactly 2, so boxes mapped back to the
# image keep the IoUs the model's own NMS saw (bit for bit)
IMAGE = np.random.default_rng(0).integers(0, 256, (128, 128, 3), np.uint8)


# one intra-op thread: two spin against each other on a shared 2-core machine (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _onnx(path, value: np.ndarray, names: str) -> str:
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(value.shape))
    const = helper.make_node("Constant", [], ["fixed"], value=helper.make_tensor(
        "v", TensorProto.FLOAT, value.shape, value.astype(np.float32).ravel()))
    graph = helper.make_graph([const, helper.make_node("Identity", ["fixed"], ["output0"])], "g", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(model, {"names": names, "task": "detect"})
    onnx.save(model, str(path))
    return str(path)


def _clustered(rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n boxes (cx, cy, w, h in 64 px input pixels) around 6 centres, so NMS has work to do."""
    centres = rng.uniform(12, 52, (6, 2))
    cxcy = centres[rng.integers(0, 6, n)] + rng.normal(0, 2, (n, 2))
    wh = rng.uniform(8, 20, (n, 2))
    return cxcy, wh


@pytest.fixture(scope="module")
def detectors(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("raw_candidates")
    torch.manual_seed(0)
    files = {}
    for family in ("fasterrcnn", "maskrcnn"):
        model = build_rcnn(dict(TINY_RCNN), len(CLASSES), masks=family == "maskrcnn")
        files[family] = str(save_checkpoint(folder / f"{family}.ckpt", model.state_dict(), {
            "family": family, "classes": CLASSES, "config": dict(TINY_RCNN), "metrics": {}}))
    yolo = build_yolo(dict(TINY_YOLO), len(CLASSES))
    files["yolo"] = str(save_checkpoint(folder / "yolo.ckpt", yolo.state_dict(), {
        "family": "yolo", "classes": CLASSES, "config": dict(TINY_YOLO), "metrics": {}}))
    rng = np.random.default_rng(1)
    cxcy, wh = _clustered(rng, 200)
    scores = rng.uniform(0, 1, (200, 2)) ** 2
    files["onnx_raw"] = _onnx(folder / "raw.onnx", np.concatenate([cxcy, wh, scores], 1).T[None],
                              "{0: 'circle', 1: 'rectangle'}")
    cxcy, wh = _clustered(rng, 300)
    rows = np.concatenate([cxcy - wh / 2, cxcy + wh / 2, rng.uniform(0, 1, (300, 1)),
                           rng.integers(0, 2, (300, 1))], 1)
    files["onnx_end2end"] = _onnx(folder / "e2e.onnx", rows[None], "{0: 'circle', 1: 'rectangle'}")
    return files


@pytest.mark.parametrize("kind", ["fasterrcnn", "maskrcnn", "yolo", "onnx_raw"])
@pytest.mark.parametrize("iou", [0.3, 0.6])
def test_stepping_nms_over_the_raw_candidates_gives_the_detections(detectors, kind, iou):
    det = load_detector(detectors[kind], device="cpu")
    score = 0.001  # untrained heads score low: keep enough candidates for NMS to matter
    raw = det.raw_candidates(IMAGE, score_threshold=score)
    assert isinstance(raw, RawCandidates) and det.last_latency_ms > 0
    final = det.predict(IMAGE, score_threshold=score, nms_iou=iou)
    assert isinstance(final, Detections) and final.class_names == det.class_names
    trace = nms_trace(raw.boxes, raw.scores, raw.labels, iou_threshold=iou, score_threshold=score)
    assert len(trace.keep) > 1 and (iou > 0.5 or len(raw) > len(trace.keep)), "0.3 must suppress something"
    n = len(final)
    assert n == min(len(trace.keep), n) and n > 0  # the detector may cut a top-k, never add boxes
    keep = trace.keep[:n]  # kept in score order, as batched_nms returns them
    np.testing.assert_allclose(final.boxes, raw.boxes[keep], atol=1e-3)
    np.testing.assert_allclose(final.scores, raw.scores[keep], atol=1e-6)
    np.testing.assert_array_equal(final.labels, raw.labels[keep])
    if kind == "maskrcnn":
        assert final.masks is not None and final.masks.shape == (n, 128, 128)
    # class-agnostic stepping keeps no more than the per-class one
    assert len(nms_trace(raw.boxes, raw.scores, raw.labels, iou, score, class_agnostic=True).keep) <= len(trace.keep)


def test_end_to_end_onnx_exports_have_their_rows_as_candidates(detectors):
    det = load_detector(detectors["onnx_end2end"], device="cpu")
    raw = det.raw_candidates(IMAGE, score_threshold=0.2)
    final = det.predict(IMAGE, score_threshold=0.2, nms_iou=0.5)
    assert len(raw) == len(final) > 100  # NMS happened inside the model: nothing more to suppress
    order = np.argsort(-raw.scores, kind="stable")
    np.testing.assert_allclose(final.boxes, raw.boxes[order], atol=1e-4)
    assert (raw.scores >= 0.2).all() and set(raw.labels.tolist()) == {0, 1}
    # boxes in image pixels: the 64 px input letterboxes the 128 px image at scale 0.5
    assert raw.boxes.max() <= 128 and raw.boxes.max() > 64

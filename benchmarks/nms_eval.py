"""Teaching NMS vs torchvision (speed, agreement), COCO evaluation cost, ONNX YOLO overhead.

Run: ``python -m benchmarks.nms_eval`` (prints JSON). Small sizes: the machine is shared.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import batched_nms

from engine.eval.coco_eval import evaluate_detections
from engine.infer.detections import Detections
from engine.viz.nms_trace import nms_trace


def _clusters(rng, n, n_classes=3, size=640):
    """n jittered boxes around n // 8 objects, distinct scores (xyxy pixels)."""
    centres = rng.uniform(50, size - 50, (max(1, n // 8), 2))
    wh = rng.uniform(20, 120, (len(centres), 2))
    pick = rng.integers(0, len(centres), n)
    c = centres[pick] + rng.normal(0, 6, (n, 2))
    half = (wh[pick] + rng.normal(0, 6, (n, 2))).clip(4) / 2
    boxes = np.concatenate([c - half, c + half], 1).astype(np.float32)
    scores = (rng.permutation(n).astype(np.float32) + 1) / (n + 1)
    labels = rng.integers(0, n_classes, n)
    return boxes, scores, labels


def _best_ms(fn, repeat=5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def bench_nms(rng) -> dict:
    out = {}
    for n in (100, 1000):
        b, s, lab = _clusters(rng, n)
        tb, ts, tl = torch.from_numpy(b), torch.from_numpy(s), torch.from_numpy(lab)
        out[f"n{n}"] = {
            "nms_trace_ms": round(_best_ms(lambda: nms_trace(b, s, lab, 0.5)), 3),
            "torchvision_batched_nms_ms": round(_best_ms(lambda: batched_nms(tb, ts, tl, 0.5)), 3),
            "kept": int(len(nms_trace(b, s, lab, 0.5).keep)),
        }
    trials, agree = 300, 0
    for _ in range(trials):
        b, s, lab = _clusters(rng, int(rng.integers(2, 80)))
        thr = float(rng.uniform(0.1, 0.9))
        ours = nms_trace(b, s, lab, thr).keep
        ref = batched_nms(torch.from_numpy(b), torch.from_numpy(s), torch.from_numpy(lab), thr)
        agree += int(np.array_equal(ours, ref.numpy()))
    out["agreement_with_torchvision"] = f"{agree}/{trials}"
    return out


def bench_coco(rng, n_images=50, per_image=20) -> dict:
    gt, preds = [], []
    for i in range(n_images):
        b, _, lab = _clusters(rng, per_image // 2)
        gt.append({"image_id": i + 1, "width": 640, "height": 640, "boxes": b, "labels": lab + 1})
        jitter = b + rng.normal(0, 4, b.shape).astype(np.float32)
        extra, _, extra_lab = _clusters(rng, per_image // 2)
        preds.append(Detections(np.concatenate([jitter, extra]), rng.uniform(0, 1, per_image),
                                np.concatenate([lab, extra_lab]), ["a", "b", "c"]))
    t0 = time.perf_counter()
    res = evaluate_detections(gt, preds, ["a", "b", "c"])
    return {"images": n_images, "detections_per_image": per_image,
            "evaluate_ms": round((time.perf_counter() - t0) * 1e3, 1),
            "map50": round(res["map50"], 4), "map": round(res["map"], 4)}


def bench_onnx_overhead() -> dict:
    """Letterbox + session + post-processing on a 640x640 model whose graph is a constant
    [1, 84, 8400] output: the per-image cost our wrapper adds around a real network."""
    import onnx
    from onnx import TensorProto, helper

    from engine.infer.onnx_yolo import OnnxYoloDetector

    out = np.zeros((1, 84, 8400), np.float32)
    out[0, :4] = [[320], [320], [50], [50]]
    out[0, 4, ::100] = 0.9  # 84 confident anchors, all on one spot: NMS keeps one
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["o"], value=helper.make_tensor(
            "v", TensorProto.FLOAT, out.shape, out.ravel())),
         helper.make_node("Identity", ["o"], ["output0"])], "overhead",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(out.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "overhead.onnx"
        onnx.save(model, str(path))
        det = OnnxYoloDetector(path, threads=1)
        image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
        det.predict(image)
        timings = []
        for _ in range(10):
            det.predict(image)
            timings.append(dict(det.last_timing))
    return {k: round(float(np.median([t[k] for t in timings])), 3) for k in timings[0]}


def main() -> dict:
    rng = np.random.default_rng(0)
    torch.set_num_threads(1)
    return {"nms": bench_nms(rng), "coco_eval": bench_coco(rng),
            "onnx_yolo_overhead_ms": bench_onnx_overhead()}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

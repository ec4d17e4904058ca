"""Faster/Mask R-CNN figures on the demo shapes set: accuracy after a CPU time budget, latency,
predictor overhead. ``python -m benchmarks.detectors_rcnn`` prints JSON; ``run()`` returns the dict
that ``benchmarks/detectors.py`` merges (keys ``fasterrcnn_*`` and ``maskrcnn_*``).

- ``*_box_map50`` / ``maskrcnn_mask_map50``: COCO mAP@0.5 on the shapes "val" split (80 images of
  128 px) after training with the CPU preset for at most ``VB_RCNN_BUDGET_S`` seconds (default 600);
- ``*_train_s``: the wall time that training took (evaluation at the end included);
- ``*_latency_ms``: median over 20 runs of ``predict`` on a 640 x 480 photo (astronaut, resized);
- ``*_overhead``: that median divided by the median of calling the bare torchvision model on the
  same image (our preprocessing, NMS split and postprocessing vs torchvision's own forward).
Set ``VB_RCNN_STEPS`` to cap the steps (smoke runs). Torch uses ``VB_RCNN_THREADS`` intra-op threads
(default 1): on a shared 2-core machine two OpenMP threads wait on each other whenever one is
descheduled (measured here: ~37 s per step with 2 threads vs ~2 s with 1, under load ~9).
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.demo.shapes import build_shapes
from engine.infer.rcnn_predictor import RcnnPredictor
from engine.jobs.cancel import CancelToken
from engine.train.rcnn import train_rcnn

RUNS = 20


def _photo() -> np.ndarray:
    from skimage import data

    return cv2.resize(data.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)


def _timed_ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def _train(family: str, project: Path, out: Path) -> dict:
    # The CPU preset as `visionbench train` runs it (its own 10-minute budget); the environment
    # can shorten a run for a quick look.
    from engine.models.registry import get_family

    config = {**get_family(family).preset("cpu"), "device": "cpu"}
    if os.environ.get("VB_RCNN_BUDGET_S"):
        config["max_seconds"] = float(os.environ["VB_RCNN_BUDGET_S"])
    if os.environ.get("VB_RCNN_STEPS"):
        config["max_steps"] = int(os.environ["VB_RCNN_STEPS"])
    t0 = time.perf_counter()
    gen = train_rcnn(CancelToken(), project, out, config, family=family)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            result = stop.value
            break
    result["wall_s"] = time.perf_counter() - t0
    return result


def _speed(ckpt: Path, image: np.ndarray) -> tuple[float, float]:
    """(median predict ms, median ratio predict / bare model). The two are timed alternately, so
    load from other processes on a shared machine hits both alike."""
    predictor = RcnnPredictor.from_checkpoint(ckpt, "cpu")

    def bare():
        with torch.inference_mode():
            predictor.model([torch.from_numpy(image).permute(2, 0, 1).float().div(255.0)])

    def ours():
        predictor.predict(image)

    ours(), bare()  # warm-up: first calls allocate
    ours_ms, bare_ms = [], []
    for _ in range(RUNS):
        ours_ms.append(_timed_ms(ours))
        bare_ms.append(_timed_ms(bare))
    return statistics.median(ours_ms), statistics.median(ours_ms) / statistics.median(bare_ms)


def run() -> dict:
    torch.set_num_threads(int(os.environ.get("VB_RCNN_THREADS", 1)))
    out: dict = {}
    image = _photo()
    with tempfile.TemporaryDirectory() as tmp:
        project = build_shapes(Path(tmp), n_images=400, seed=0)
        for family in ("fasterrcnn", "maskrcnn"):
            ckpt = Path(tmp) / f"{family}.ckpt"
            result = _train(family, project, ckpt)
            m = result["metrics"]
            out[f"{family}_box_map50"] = round(m.get("box_map50", 0.0), 4)
            if family == "maskrcnn":
                out["maskrcnn_mask_map50"] = round(m.get("mask_map50", 0.0), 4)
            out[f"{family}_train_s"] = round(result["wall_s"], 1)
            out[f"{family}_train_steps"] = result["steps"]
            latency, overhead = _speed(ckpt, image)
            out[f"{family}_latency_ms"] = round(latency, 1)
            out[f"{family}_overhead"] = round(overhead, 3)
    out["rcnn_torch_threads"] = torch.get_num_threads()
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

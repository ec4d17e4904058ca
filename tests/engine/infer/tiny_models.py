"""Tiny untrained models for the command-line tests: what they predict is beside the point, that
they predict plenty (random heads give many scored candidates) in milliseconds is the point.

The R-CNN and YOLO settings are shared with test_detector_raw_candidates;
the ONNX helper builds an Ultralytics-shaped graph with a fixed output, so its boxes are known.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from engine.models.checkpoint import save_checkpoint

CLASSES = ["circle", "rectangle", "triangle"]
TINY_RCNN = {
    "pretrained": False, "fpn_channels": 16, "min_size": 64, "max_size": 96,
    "anchor_sizes": [[16], [32], [64], [128]], "representation_size": 32, "mask_head_channels": 8,
    "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 50,
}
TINY_YOLO = {"pretrained": False, "input_size": 64, "head_channels": 16}
TINY_UNET = {"encoder": "plain", "pretrained": False, "depth": 2, "width": 4}


def rcnn_checkpoint(path: Path, family: str = "maskrcnn", classes=CLASSES) -> Path:
    from engine.models.rcnn import build_rcnn

    torch.manual_seed(0)
    model = build_rcnn(dict(TINY_RCNN), len(classes), masks=family == "maskrcnn")
    return save_checkpoint(path, model.state_dict(), {"family": family, "classes": list(classes),
                                                      "config": dict(TINY_RCNN), "metrics": {}})


def yolo_checkpoint(path: Path, classes=CLASSES) -> Path:
    from engine.models.yolo import build_yolo

    torch.manual_seed(0)
    model = build_yolo(dict(TINY_YOLO), len(classes))
    return save_checkpoint(path, model.state_dict(), {"family": "yolo", "classes": list(classes),
                                                      "config": dict(TINY_YOLO), "metrics": {}})


def unet_checkpoint(path: Path, classes=CLASSES) -> Path:
    from engine.models.unet import build_unet

    torch.manual_seed(0)
    model = build_unet(dict(TINY_UNET), len(classes))
    for name, buffer in model.named_buffers():
        if name.endswith("running_var"):
            # untrained batch norms hold unit variance, which flattens the output to one class
            # everywhere; a smaller one lets the pixels pick classes: many regions to threshold
            buffer.fill_(0.1)
    return save_checkpoint(path, model.state_dict(), {"family": "unet", "classes": list(classes),
                                                      "config": dict(TINY_UNET), "metrics": {"val_miou": 0.5},
                                                      "epoch": 3})


def fixed_onnx(path: Path, output: np.ndarray, names: str, size: int = 64) -> Path:
    """An Ultralytics-like detector on a [1, 3, size, size] input whose output is ``output``."""
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))
    const = helper.make_node("Constant", [], ["fixed"], value=helper.make_tensor(
        "v", TensorProto.FLOAT, output.shape, output.astype(np.float32).ravel()))
    graph = helper.make_graph([const, helper.make_node("Identity", ["fixed"], ["output0"])], "g", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(model, {"names": names, "task": "detect", "imgsz": str([size, size])})
    onnx.save(model, str(path))
    return path


def raw_onnx_output(boxes_xyxy, scores) -> np.ndarray:
    """[1, 4 + C, A] (Ultralytics' raw layout) from A boxes in input pixels and their [A, C] scores."""
    b = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)
    cxcywh = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
    return np.concatenate([cxcywh, np.asarray(scores, np.float32).reshape(len(b), -1)], 1).T[None]

"""Models for deployment: a checkpoint as ONNX or TorchScript, with plain tensors in and out.

``visionbench export-model CKPT --format onnx|torchscript --out FILE``. What each kind takes and
gives (the same in both formats; the ONNX file also carries them in its metadata, key
``visionbench``, with the class names, so the workbench reopens it as a detector):

- segmentation (unet): ``image`` float32 [1, 3, T, T], RGB / 255, one tile of T x T pixels
  (``input_size`` in the metadata, 256: the tile the workbench's overlap-tile inference uses;
  larger images are tiled, as ``engine.infer.overlap_tile`` does) -> ``probs`` float32
  [1, C + 1, T, T] (softmax; class 0 is the background). The size is fixed: the traced graph
  keeps the pretrained encoder's size-dependent padding and crops as constants.
- detection / instance (fasterrcnn, maskrcnn): ``image`` float32 [3, H, W], RGB / 255, of one
  fixed size H x W = the model's (min_size, max_size) (``input_size`` [H, W] in the metadata),
  the size at which the model's own resize leaves a picture as it is. A picture of any size is
  letterboxed into it (``resize`` "letterbox": scaled by min(H / h, W / w) as torchvision's
  transform scales, bilinear, at the top left, the rest filled with ``pad_value``, the model's
  mean colour, which its normalisation makes 0 as torchvision's own batch padding is;
  engine.infer.onnx_export_detector.letterbox) -> ``boxes`` [N, 4] xyxy pixels of that input,
  ``labels`` int64 [N] (1..C, 0 is the background), ``scores`` [N] (and Mask R-CNN's ``masks``
  [N, 1, H, W] probabilities), after the model's own NMS. Fixed, because a trace freezes the
  per-level candidate counts of the size it saw; at that one size onnxruntime gives what
  PyTorch gives, down to the low-scoring tail. The workbench maps boxes and masks back to the
  picture (divided by the scale, clipped).
- detection (yolo): ``image`` float32 [1, 3, S, S], RGB / 255 resized to the network input S ->
  ``boxes`` [N, 4] xyxy pixels of that S x S input, ``labels`` (1..C), ``scores``, after class-wise
  NMS at the model's defaults (score >= 0.05, IoU 0.5, at most its max_detections).
- embedding (siamese): ``image`` float32 [N, 3, S, S], RGB / 255 square crops at the checkpoint's
  ``input_size`` -> ``embedding`` float32 [N, D] (unit length; same identity when the distance is
  at most ``tau``, in the metadata).
- image2image, fast style: ``image`` float32 [1, 3, 256, 256], RGB / 255 -> ``stylised``
  [1, 3, 256, 256] in 0..1.
- image2image, pix2pix and colorize: ``input`` float32 [1, C_in, 256, 256], the family's encoded
  input (``pairs`` in the metadata; engine.data.pairs encodes and decodes) -> ``output``
  [1, C_out, 256, 256] in -1..1 (tanh). Fixed sizes: tile larger pictures.
- A family of a plugin gives its predictor a ``deploy()`` method returning a :class:`Deployable`.

The ONNX export uses torch's TorchScript-based exporter (opset 17); onnxruntime's results are
checked against PyTorch's in the tests and in benchmarks/distributed.py.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from engine.annotations.errors import BadInput

__all__ = ["Deployable", "deployable", "export_model", "export_model_command", "write_deployable"]

FORMATS = ("onnx", "torchscript")
OPSET = 17


@dataclass
class Deployable:
    """A module with tensors in and out, an example input, and what they are called."""

    module: nn.Module
    example: torch.Tensor
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # family, kind, classes, input layout: into the file


class _SegmentationDeploy(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image).softmax(dim=1)


class _Clamped(nn.Module):
    """A model with one tensor in and out, its output clamped to ``limits`` when given."""

    def __init__(self, model: nn.Module, limits: tuple[float, float] | None) -> None:
        super().__init__()
        self.model = model
        self.limits = limits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return y.clamp(self.limits[0], self.limits[1]) if self.limits is not None else y


class _RcnnDeploy(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def detect(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if torch.jit.is_scripting():
            return self.model([image])[1][0]  # scripted torchvision detectors return (losses, detections)
        return self.model([image])[0]

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.detect(image)
        return out["boxes"], out["labels"], out["scores"]


class _MaskRcnnDeploy(_RcnnDeploy):
    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.detect(image)
        return out["boxes"], out["labels"], out["scores"], out["masks"]


class _YoloDeploy(nn.Module):
    def __init__(self, model: nn.Module, boxes_per_cell: int, size: int, score: float, iou: float, top: int) -> None:
        super().__init__()
        self.model = model
        self.boxes_per_cell = boxes_per_cell
        self.size = size
        self.score, self.iou, self.top = score, iou, top

    def forward(self, image: torch.Tensor):
        from torchvision.ops import batched_nms

        from engine.models.backbones import preprocess
        from engine.models.yolo import grid_candidates

        grid = self.model(preprocess(image))[0]
        boxes, scores, labels = grid_candidates(grid, self.boxes_per_cell, self.size, self.size, self.score)
        keep = batched_nms(boxes, scores, labels, self.iou)[: self.top]
        return boxes[keep], labels[keep] + 1, scores[keep]


def deployable(checkpoint: str | Path) -> Deployable:
    """What to export for the checkpoint's family; BadInput naming the file when there is none."""
    from engine.models.checkpoint import CheckpointError, load_checkpoint
    from engine.models.registry import get_family

    path = Path(checkpoint)
    try:
        _, meta = load_checkpoint(path)
        spec = get_family(str(meta["family"]))
    except (CheckpointError, ValueError) as exc:  # a CheckpointError's message names the file already
        raise BadInput(str(path), "CKPT", getattr(exc, "message", str(exc))) from None
    base = {"family": spec.name, "kind": spec.kind, "classes": list(meta.get("classes") or [])}
    if spec.name == "unet":
        from engine.infer.unet_predictor import UNetPredictor

        p = UNetPredictor(path, device="cpu")
        t = -(-int(p.tile) // p.model.multiple) * p.model.multiple
        return Deployable(_SegmentationDeploy(p.model).eval(), torch.rand(1, 3, t, t), ["image"], ["probs"], {},
                          {**base, "input": f"float32 [1, 3, {t}, {t}] RGB / 255 (one tile)", "input_size": t,
                           "colors": p.colors})
    if spec.name in ("fasterrcnn", "maskrcnn"):
        from engine.infer.rcnn_predictor import RcnnPredictor

        p = RcnnPredictor.from_checkpoint(path, device="cpu")
        outputs = ["boxes", "labels", "scores"] + (["masks"] if p.has_masks else [])
        transform = p.model.transform
        h, w = int(transform.min_size[-1]), int(transform.max_size)
        pad = [float(v) for v in transform.image_mean]
        module = (_MaskRcnnDeploy if p.has_masks else _RcnnDeploy)(p.model).eval()
        return Deployable(module, torch.rand(3, h, w), ["image"], outputs, {o: {0: "detections"} for o in outputs},
                          {**base, "input": f"float32 [3, {h}, {w}] RGB / 255, a picture letterboxed into it",
                           "input_size": [h, w], "resize": "letterbox", "pad_value": pad, "labels": "1..C",
                           "score_floor": float(p.model.roi_heads.score_thresh)})
    if spec.name == "yolo":
        from engine.infer.thresholds import DEFAULT_NMS_IOU, DEFAULT_SCORE_THRESHOLD
        from engine.infer.yolo_predictor import YoloPredictor

        p = YoloPredictor.from_checkpoint(path, device="cpu")
        s = int(p.input_size)
        module = _YoloDeploy(p.model, p.boxes_per_cell, s, DEFAULT_SCORE_THRESHOLD, DEFAULT_NMS_IOU,
                             int(p.max_detections))
        return Deployable(module.eval(), torch.rand(1, 3, s, s), ["image"], ["boxes", "labels", "scores"],
                          {o: {0: "detections"} for o in ("boxes", "labels", "scores")},
                          {**base, "input": f"float32 [1, 3, {s}, {s}] RGB / 255, resized", "input_size": s,
                           "labels": "1..C"})
    if spec.kind == "optimisation":
        raise BadInput(str(path), "family", f"{spec.name} optimises a picture; there is no model to export")
    if spec.kind == "embedding":
        p = spec.predictor(str(path), "cpu")
        n = int(p.input_size)
        return Deployable(_Clamped(p.model, None).eval(), torch.rand(2, 3, n, n), ["image"], ["embedding"],
                          {"image": {0: "batch"}, "embedding": {0: "batch"}},
                          {**base, "input": f"float32 [N, 3, {n}, {n}] RGB / 255 square crops", "input_size": n,
                           "tau": float(p.tau)})
    if spec.name == "faststyle":
        p = spec.predictor(str(path), "cpu")
        return Deployable(_Clamped(p.model, (0.0, 1.0)).eval(), torch.rand(1, 3, 256, 256), ["image"], ["stylised"],
                          {}, {**base, "input": "float32 [1, 3, 256, 256] RGB / 255", "input_size": 256})
    predictor = spec.predictor(str(path), "cpu")
    if spec.kind == "image2image" and hasattr(getattr(predictor, "model", None), "G"):
        generator = predictor.model.G
        c = next(m for m in generator.modules() if isinstance(m, nn.Conv2d)).in_channels
        size = max(256, predictor.multiple)
        what = f"float32 [1, {c}, {size}, {size}] encoded as engine.data.pairs does for {predictor.kind}"
        return Deployable(_Clamped(generator, None).eval(), torch.rand(1, c, size, size) * 2 - 1, ["input"],
                          ["output"], {}, {**base, "pairs": predictor.kind, "input": what, "input_size": size,
                                           "dropout": "off (deterministic)"})
    if hasattr(predictor, "deploy"):
        d = predictor.deploy()
        d.meta = {**base, **d.meta}
        return d
    raise BadInput(str(path), "family", f"{spec.name} ({spec.kind}) models cannot be exported for deployment yet")


def export_model(checkpoint: str | Path, fmt: str, out: str | Path) -> dict:
    """Write ``checkpoint`` as ``fmt`` (onnx or torchscript) to ``out``; returns a summary."""
    if fmt not in FORMATS:
        raise BadInput(str(fmt), "--format", f"must be one of {', '.join(FORMATS)}")
    return write_deployable(deployable(checkpoint), fmt, out)


def write_deployable(d: Deployable, fmt: str, out: str | Path) -> dict:
    """Write a :class:`Deployable` as ``fmt`` to ``out`` (atomically)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.writing")
    try:
        # the exporters' tracer warnings are about their own internals, not the user's model
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "onnx":
                torch.onnx.export(d.module, (d.example,), str(tmp), dynamo=False, opset_version=OPSET,
                                  input_names=d.inputs, output_names=d.outputs, dynamic_axes=d.dynamic_axes)
                _add_onnx_metadata(tmp, d.meta)
            else:
                _torchscript(d).save(str(tmp), _extra_files={"visionbench.json": json.dumps(d.meta)})
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed export leaves nothing behind
        raise
    tmp.replace(out)
    return {"out": str(out), "format": fmt, "family": d.meta["family"], "kind": d.meta["kind"],
            "inputs": d.inputs, "outputs": d.outputs, "bytes": out.stat().st_size}


def _torchscript(d: Deployable):
    if d.meta["kind"] in ("detection", "instance") and d.meta["family"] != "yolo":
        # torchvision's detectors are scriptable (their resize depends on the input size, which a
        # trace would freeze)
        return torch.jit.script(d.module)
    return torch.jit.trace(d.module, (d.example,), check_trace=False)


def _add_onnx_metadata(path: Path, meta: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "visionbench", json.dumps(meta)
    onnx.save(model, str(path))


def export_model_command(checkpoint, fmt: str, out) -> dict:
    """The CLI's ``export-model``."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise BadInput(str(checkpoint), "CKPT", "checkpoint file not found")
    return export_model(checkpoint, fmt, out)

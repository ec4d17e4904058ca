"""The three numbers that turn a detector's candidates into detections, and each model's defaults.

``--score-threshold``, ``--iou`` and ``--max-detections`` (Ultralytics calls them ``conf``, ``iou``
and ``max_det``) mean the same for every detector Visionbench runs:
- score threshold: candidates scoring below it are dropped before NMS;
- IoU: class-wise NMS drops a box overlapping a better-scoring box of its class by more;
- max detections: the best N after NMS are kept per image.
A U-Net has no NMS: its regions (connected pixels of one class) take the score threshold (mean
class probability over the region) and the maximum count, best first.

The defaults are one low score threshold for every detector (0.05: mAP needs the low-scoring
detections; Ultralytics' ``predict`` shows only >= 0.25, its ``val`` keeps >= 0.001), so that
``predict --coco-results`` scores exactly what ``eval`` prints. Torch-free, so ``--help`` stays fast.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.annotations.errors import BadInput

__all__ = ["DEFAULT_NMS_IOU", "DEFAULT_SCORE_THRESHOLD", "HELP", "ONNX_MAX_DETECTIONS", "RCNN_MAX_DETECTIONS",
           "Thresholds", "YOLO_MAX_DETECTIONS"]

DEFAULT_SCORE_THRESHOLD = 0.05
DEFAULT_NMS_IOU = 0.5
# fasterrcnn/maskrcnn: the checkpoint's config "box_detections_per_img" (torchvision's default);
# yolo: its config "max_detections"; .onnx: Ultralytics' max_det
RCNN_MAX_DETECTIONS = 100
YOLO_MAX_DETECTIONS = 100
ONNX_MAX_DETECTIONS = 300

HELP = {
    "score_threshold": (f"keep detections scoring at least S (0..1). Defaults: {DEFAULT_SCORE_THRESHOLD} for "
                        "fasterrcnn, maskrcnn, yolo, .onnx and torchvision files; 0 for unet, whose regions "
                        "score their mean class probability"),
    "nms_iou": (f"class-wise NMS drops a box overlapping a better one of its class by IoU > T (0..1). Default "
                f"{DEFAULT_NMS_IOU} for every detector; unet has no NMS and refuses it"),
    "max_detections": (f"keep the best N per image. Defaults: fasterrcnn/maskrcnn the checkpoint's "
                       f"box_detections_per_img ({RCNN_MAX_DETECTIONS} unless trained otherwise), torchvision files "
                       f"{RCNN_MAX_DETECTIONS}, yolo its "
                       f"max_detections ({YOLO_MAX_DETECTIONS}), .onnx {ONNX_MAX_DETECTIONS}, "
                       "unet all regions"),
}


@dataclass(frozen=True)
class Thresholds:
    """What the user asked for; None means "the model's default" (see the module docstring)."""

    score_threshold: float | None = None
    nms_iou: float | None = None
    max_detections: int | None = None

    def __post_init__(self) -> None:
        for name in ("score_threshold", "nms_iou"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if self.max_detections is not None and int(self.max_detections) < 1:
            raise ValueError(f"max_detections must be at least 1, got {self.max_detections}")

    def given(self) -> dict:
        """The values the user set, as keyword arguments of a detector's ``predict``."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def check_for(self, kind: str, ckpt, command: str = "predict") -> None:
        """BadInput naming the checkpoint and the option when the model cannot honour it: a
        segmentation model has regions but no NMS, and ``eval`` scores its pixels, not regions;
        models of other kinds (embeddings, image to image) detect nothing."""
        if kind in ("detection", "instance"):
            return
        options = {"score_threshold": "--score-threshold", "nms_iou": "--iou", "max_detections": "--max-detections"}
        refused = ["nms_iou"] if (kind, command) == ("segmentation", "predict") else list(options)
        for name in refused:
            if getattr(self, name) is not None:
                why = ("detects nothing" if kind != "segmentation"
                       else "segments pixels and has no NMS" if name == "nms_iou"
                       else "is scored per pixel (argmax), not per region")
                raise BadInput(str(ckpt), options[name], f"a {kind} model {why}; leave {options[name]} out")

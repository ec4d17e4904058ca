"""What a family's predictor offers; the CLI, the workbench and the views rely on these shapes.

A predictor is built by ``FamilySpec.predictor(checkpoint_path, device)`` and offers one or more
of the protocols below; ``engine.infer.run`` asks for what it needs with ``isinstance`` checks
against these runtime-checkable protocols.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from engine.annotations.model import Annotation
    from engine.infer.detections import Detections
    from engine.jobs.events import Preview


@runtime_checkable
class Detector(Protocol):
    """Boxes (and masks) with scores: detection and instance families, ONNX and torchvision files."""

    class_names: list[str]

    def predict(self, image_rgb_uint8: np.ndarray, score_threshold: float = ..., nms_iou: float = ...,
                **thresholds: Any) -> "Detections":
        """image: uint8 [H, W, 3]; Detections in that image's pixels (xyxy)."""
        ...


@runtime_checkable
class Annotator(Protocol):
    """Annotations of one image directly (segmentation: regions of the argmax map)."""

    def annotate(self, rgb: np.ndarray, image_id: int, category_ids: list[int | None], source: str,
                 attributes: dict | None = None, **kwargs: Any) -> list["Annotation"]:
        """rgb: uint8 [H, W, 3]; category_ids: the project category of each model class (None: absent)."""
        ...


@runtime_checkable
class PreviewSource(Protocol):
    """Live views of one prediction (any kind, see engine.viz.previews), shown by the workbench."""

    def previews(self, rgb: np.ndarray) -> list["Preview"]:
        ...


@runtime_checkable
class Translator(Protocol):
    """Image-to-image families: a picture in, a picture out (pix2pix, colorization, style)."""

    needs_labels: bool  # True: the input is the image's masks as a class map, not its pixels

    def translate(self, rgb: np.ndarray, class_map: np.ndarray | None = None) -> np.ndarray:
        """rgb: uint8 [H, W, 3] (class_map: int [H, W], 0 = background, when needs_labels) ->
        uint8 RGB [H', W', 3]."""
        ...

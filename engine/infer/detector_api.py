"""The one interface every detector family offers, and the factory that opens any detector file.

Faster R-CNN, Mask R-CNN, our YOLO and ONNX-exported YOLO all answer the same three questions,
so the comparison view, the NMS view, ``visionbench predict/eval`` and the benchmarks never ask
which family they hold:

- ``predict(image, score_threshold, nms_iou, max_detections) -> Detections`` (final, after NMS;
  the defaults are each model's, see ``engine.infer.thresholds``),
- ``raw_candidates(image) -> RawCandidates`` (the same model's candidates BEFORE the final NMS),
- ``last_latency_ms`` (wall time of the last call, preprocessing and postprocessing included).

``load_detector`` opens:
- a Visionbench checkpoint (``engine.models.checkpoint``): dispatched by ``meta["family"]``
  through the model registry (``FamilySpec.predictor(path, device)``);
- an ``.onnx`` file: a detector of ours exported by ``visionbench export-model`` (its metadata
  says so; ``engine.infer.onnx_export_detector``), or an Ultralytics YOLO export
  (``engine.infer.onnx_yolo``);
- a torchvision COCO checkpoint (``.pth`` state dict of fasterrcnn_resnet50_fpn,
  maskrcnn_resnet50_fpn, fasterrcnn_mobilenet_v3_large(_320)_fpn, retinanet_resnet50_fpn,
  fcos_resnet50_fpn, ssdlite320_mobilenet_v3_large, or their v2 variants), either a
  picked file or a name such as ``"fasterrcnn_resnet50_fpn"`` looked up in the user's model folder
  and the torch hub cache (``engine.infer.pretrained``). Nothing is downloaded here; when the file
  is absent the message says where to put which file.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from engine.infer.detections import Detections, RawCandidates
from engine.infer.onnx_yolo import DetectorLoadError
from engine.infer.thresholds import DEFAULT_NMS_IOU, DEFAULT_SCORE_THRESHOLD, ONNX_MAX_DETECTIONS

__all__ = ["DetectorLoadError", "DetectorPredictor", "OnnxDetectorAdapter", "TORCHVISION_COCO_ARCHS",
           "load_detector", "torchvision_checkpoint_dir"]

# torchvision builders whose COCO weights we can load from a local file, -> their weights enum.
TORCHVISION_COCO_ARCHS = {
    "fasterrcnn_resnet50_fpn": "FasterRCNN_ResNet50_FPN_Weights",
    "fasterrcnn_resnet50_fpn_v2": "FasterRCNN_ResNet50_FPN_V2_Weights",
    "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    "fasterrcnn_mobilenet_v3_large_320_fpn": "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights",
    "maskrcnn_resnet50_fpn": "MaskRCNN_ResNet50_FPN_Weights",
    "maskrcnn_resnet50_fpn_v2": "MaskRCNN_ResNet50_FPN_V2_Weights",
    "retinanet_resnet50_fpn": "RetinaNet_ResNet50_FPN_Weights",
    "retinanet_resnet50_fpn_v2": "RetinaNet_ResNet50_FPN_V2_Weights",
    "fcos_resnet50_fpn": "FCOS_ResNet50_FPN_Weights",
    "ssdlite320_mobilenet_v3_large": "SSDLite320_MobileNet_V3_Large_Weights",
}
# the single-stage ones: no RPN, so Inside R-CNN refuses them; engine.infer.single_stage_predictor
SINGLE_STAGE_ARCHS = ("retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn",
                      "ssdlite320_mobilenet_v3_large")


@runtime_checkable
class DetectorPredictor(Protocol):
    """What every detector family gives the rest of Visionbench.

    name: short display name (e.g. "fasterrcnn:run1.ckpt").
    class_names: C names; ``Detections.labels`` index into it (0..C-1, no background).
    """

    name: str
    class_names: list[str]

    def predict(self, image_rgb_uint8: np.ndarray, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                nms_iou: float = DEFAULT_NMS_IOU, max_detections: int | None = None) -> Detections:
        """Final detections of one uint8 RGB image [H, W, 3]; boxes xyxy in its pixels; at most
        ``max_detections`` (None: the model's own maximum), best first."""
        ...

    def raw_candidates(self, image_rgb_uint8: np.ndarray) -> RawCandidates:
        """Candidates before the final NMS (``predict`` = their batched_nms + threshold)."""
        ...

    @property
    def last_latency_ms(self) -> float:
        """Milliseconds of the last ``predict``/``raw_candidates`` call (0.0 before any)."""
        ...


class OnnxDetectorAdapter:
    """Gives an :class:`~engine.infer.onnx_yolo.OnnxYoloDetector` the common interface.

    The ONNX detector keeps its thresholds as attributes; here they are per-call arguments, with
    Visionbench's common score and IoU defaults and Ultralytics' maximum of 300 detections.
    """

    def __init__(self, detector) -> None:
        self.detector = detector
        self.name = f"onnx:{Path(detector.path).name}"
        self._latency = 0.0

    @property
    def class_names(self) -> list[str]:
        return self.detector.class_names

    def predict(self, image_rgb_uint8: np.ndarray, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                nms_iou: float = DEFAULT_NMS_IOU, max_detections: int | None = None) -> Detections:
        t0 = time.perf_counter()
        self.detector.conf, self.detector.iou = float(score_threshold), float(nms_iou)
        self.detector.max_det = ONNX_MAX_DETECTIONS if max_detections is None else int(max_detections)
        out = self.detector.predict(image_rgb_uint8)
        self._latency = (time.perf_counter() - t0) * 1e3
        return out

    def raw_candidates(self, image_rgb_uint8: np.ndarray,
                       score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> RawCandidates:
        t0 = time.perf_counter()
        out = self.detector.raw_candidates(image_rgb_uint8, conf=score_threshold)
        self._latency = (time.perf_counter() - t0) * 1e3
        return out

    @property
    def last_latency_ms(self) -> float:
        return self._latency


def torchvision_checkpoint_dir() -> Path:
    """Where torchvision keeps downloaded weights: ``torch.hub.get_dir()/checkpoints``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_file_name(arch: str) -> str:
    """The file name torchvision gives the COCO weights of ``arch`` (from its weights enum URL)."""
    import torchvision.models.detection as det

    enum = getattr(det, TORCHVISION_COCO_ARCHS[arch])
    return Path(enum.DEFAULT.url).name


def _find_torchvision_file(arch: str, model_folder=None) -> Path:
    """The local COCO weights of ``arch`` in the user's model folder or the hub cache
    (``engine.infer.pretrained.weight_dirs``), else DetectorLoadError saying where to put which file."""
    from engine.infer.pretrained import user_model_dirs

    expected = torchvision_file_name(arch)
    folders = user_model_dirs(model_folder) + [torchvision_checkpoint_dir()]
    for folder in folders:
        if (folder / expected).is_file():
            return folder / expected
    # Accept a differently-hashed copy of the same weights (e.g. renamed by the user).
    stem = expected.split("-")[0]
    for folder in folders:
        matches = sorted(folder.glob(f"{stem}*.pth")) if folder.is_dir() else []
        matches = [m for m in matches if m.name.split("-")[0] == stem]
        if matches:
            return matches[0]
    raise DetectorLoadError(
        f"{arch}: torchvision COCO weights not found. Get them with Models > Pretrained models (the one "
        f"download, on your click), or copy the file {expected!r} into {folders[-1]} (torchvision's hub "
        f"cache), or pick the .pth file directly.")


def _guess_torchvision_arch(path: Path) -> str | None:
    """The torchvision builder a ``.pth`` file name points at (longest matching prefix), or None."""
    name = path.name.lower()
    for arch in sorted(TORCHVISION_COCO_ARCHS, key=len, reverse=True):
        if name.startswith(arch):
            return arch
    return None


def _arch_of_plain_state_dict(path: Path) -> str | None:
    """The torchvision detector a renamed plain state-dict file holds, told from its parameter
    names, or None. (The two MobileNet variants share weights; the 800 px one is assumed.)"""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not a state dict: the caller reports the original error
        return None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        return None
    keys = set(state)
    v2 = "roi_heads.box_head.0.0.weight" in keys  # v2 has a conv box head, v1 the two-MLP head
    if any(k.startswith("roi_heads.mask_predictor.") for k in keys):
        return "maskrcnn_resnet50_fpn_v2" if v2 else "maskrcnn_resnet50_fpn"
    if any(k.startswith("backbone.body.layer1.") for k in keys):
        return "fasterrcnn_resnet50_fpn_v2" if v2 else "fasterrcnn_resnet50_fpn"
    if any(k.startswith("backbone.body.") for k in keys) and "roi_heads.box_head.fc6.weight" in keys:
        return "fasterrcnn_mobilenet_v3_large_fpn"
    return None


def load_detector(path_or_ckpt, device: str = "auto") -> DetectorPredictor:
    """Open any detector Visionbench can run; see the module docstring for what is accepted.

    Raises DetectorLoadError (a ValueError) naming the file and what is wrong.
    """
    text = str(path_or_ckpt)
    if text in TORCHVISION_COCO_ARCHS:
        from engine.infer.rcnn_predictor import load_torchvision_coco

        return load_torchvision_coco(_find_torchvision_file(text), text, device)
    path = Path(text)
    if path.suffix.lower() == ".onnx":
        from engine.infer.onnx_export_detector import OnnxExportDetector
        from engine.infer.onnx_yolo import OnnxYoloDetector

        ours = OnnxExportDetector.open(path, device) if path.is_file() else None
        return ours if ours is not None else OnnxDetectorAdapter(OnnxYoloDetector(path, device=device))
    if not path.is_file():
        raise DetectorLoadError(f"{path}: file not found")
    arch = _guess_torchvision_arch(path)
    if arch is not None:
        from engine.infer.rcnn_predictor import load_torchvision_coco

        return load_torchvision_coco(path, arch, device)
    from engine.models.checkpoint import CheckpointError, load_checkpoint
    from engine.models.registry import get_family

    try:
        _, meta = load_checkpoint(path)
    except CheckpointError as exc:
        arch = _arch_of_plain_state_dict(path) if "not a Visionbench checkpoint" in str(exc) else None
        if arch is not None:
            from engine.infer.rcnn_predictor import load_torchvision_coco

            return load_torchvision_coco(path, arch, device)
        raise DetectorLoadError(str(exc)) from exc
    try:
        family = get_family(str(meta["family"]))
    except ValueError as exc:
        raise DetectorLoadError(f"{path}: field 'family': {exc}") from exc
    if family.kind not in ("detection", "instance"):
        raise DetectorLoadError(f"{path}: field 'family': {family.name!r} is a {family.kind} model, "
                                f"not a detector")
    return family.predictor(str(path), device)


def project_category_ids(class_names, store, checkpoint, strict: bool = True) -> list[int | None]:
    """Project category id of each detector class (matched by name), for storing or scoring
    predictions. strict: BadInput naming the checkpoint and its 'classes' field when some class has
    no category of that name in the project; otherwise such classes map to None (e.g. the 80 COCO
    classes of a torchvision detector on a project that uses three of them)."""
    from engine.annotations.errors import BadInput

    by_name = {c.name: c.id for c in store.categories()}
    missing = [n for n in class_names if n not in by_name]
    if missing and strict:
        known = ", ".join(sorted(by_name)) or "(none)"
        raise BadInput(str(checkpoint), "classes",
                       f"the detector's classes {missing[:5]} are not categories of the project "
                       f"{store.path} (it has: {known}); was it trained on another project?")
    return [by_name.get(n) for n in class_names]

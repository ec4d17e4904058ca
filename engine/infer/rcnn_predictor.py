"""Run a Faster/Mask R-CNN on one image: final detections, and the candidates before the final NMS.

torchvision's ``GeneralizedRCNN.forward`` does transform -> backbone -> rpn -> roi_heads ->
postprocess in one call, and its roi_heads apply score threshold, NMS and top-k inside. To show
the NMS step and to let the user move the NMS IoU without re-running the network, we run the same
stages ourselves:

1. ``transform`` (resize + normalise), ``backbone``, ``rpn`` (proposals) - as torchvision does;
2. box head + ``postprocess_detections`` with the NMS switched off (IoU threshold 1.0, no top-k):
   those are the raw candidates (boxes decoded per class, score >= threshold, tiny boxes removed);
3. ``batched_nms`` (class-wise) at the requested IoU, top ``detections_per_img`` -> detections;
4. Mask R-CNN only: the mask head on the kept boxes, then torchvision's ``transform.postprocess``
   maps boxes back to the original image and pastes the 28x28 masks.
With nms_iou=0.5 and score 0.05 this gives exactly what the bare model returns.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import batched_nms

from engine.annotations.imageio import to_uint8_rgb
from engine.device import pick_device
from engine.infer.detections import Detections, RawCandidates
from engine.infer.onnx_yolo import DetectorLoadError
from engine.infer.thresholds import DEFAULT_NMS_IOU, DEFAULT_SCORE_THRESHOLD

__all__ = ["RcnnPredictor", "as_rgb_uint8", "load_torchvision_coco"]

MASK_THRESHOLD = 0.5  # on the pasted mask probabilities, as torchvision's reference evaluation


def as_rgb_uint8(image, what: str = "image") -> np.ndarray:
    """Any image array a user may hand over -> uint8 RGB [H, W, 3].

    Gray [H, W] / [H, W, 1] is repeated, RGBA drops alpha, 16-bit and float data are stretched
    to 0..255 (``engine.annotations.imageio.to_uint8_rgb``). Other shapes raise ValueError naming
    ``what`` and the shape.
    """
    arr = np.asarray(image)
    if arr.dtype.kind not in "uif":  # unsigned, signed, float: not bool, complex or objects
        raise ValueError(f"{what}: pixel type {arr.dtype} is not an image type (uint8, uint16, float)")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ValueError(f"{what}: expected [H, W] gray, [H, W, 3] RGB or [H, W, 4] RGBA, got shape {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"{what}: image of {arr.shape[1]}x{arr.shape[0]} px is too small")
    return arr if (arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3) else to_uint8_rgb(arr)


class RcnnPredictor:
    """A torchvision Faster/Mask R-CNN behind the common ``DetectorPredictor`` interface.

    model: a torchvision ``FasterRCNN``/``MaskRCNN`` whose labels are 1..C (0 = background);
    class_names: the C names, ``Detections.labels`` = model label - 1.
    """

    def __init__(self, model, class_names, name: str = "rcnn", device="auto") -> None:
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.class_names = list(class_names)
        self.name = name
        self.has_masks = getattr(model.roi_heads, "mask_head", None) is not None
        self._latency = 0.0
        self.meta: dict = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path, device="auto") -> "RcnnPredictor":
        """Load a Visionbench fasterrcnn/maskrcnn checkpoint; DetectorLoadError naming the file."""
        from engine.models.checkpoint import CheckpointError, load_checkpoint
        from engine.models.rcnn import build_rcnn

        path = Path(path)
        try:
            state, meta = load_checkpoint(path)
        except CheckpointError as exc:
            raise DetectorLoadError(str(exc)) from exc
        family = meta.get("family")
        if family not in ("fasterrcnn", "maskrcnn"):
            raise DetectorLoadError(f"{path}: field 'family' is {family!r}, not fasterrcnn or maskrcnn")
        classes = meta["classes"]
        if not isinstance(classes, list) or not classes:
            raise DetectorLoadError(f"{path}: field 'classes' must be a non-empty list of names")
        # pretrained=False: every weight comes from the checkpoint, no need to read ImageNet's
        config = {**dict(meta.get("config") or {}), "pretrained": False}
        try:
            model = build_rcnn(config, len(classes), masks=family == "maskrcnn")
            model.load_state_dict(state, strict=True)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0][:300]
            raise DetectorLoadError(f"{path}: field 'state_dict' does not fit a {family} built from the "
                                    f"checkpoint's config ({first})") from exc
        predictor = cls(model, classes, name=f"{family}:{path.name}", device=device)
        predictor.meta = meta
        return predictor

    # -- the pipeline -------------------------------------------------------------------------
    def _prepare(self, image):
        rgb = as_rgb_uint8(image)
        tensor = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1).float().div_(255.0)
        return rgb, tensor

    def _features(self, tensor):
        """transform + backbone + rpn. Returns (image_list, features, proposals)."""
        model = self.model
        images, _ = model.transform([tensor])
        features = model.backbone(images.tensors)
        proposals, _ = model.rpn(images, features)
        return images, features, proposals

    def _candidates(self, images, features, proposals, score_threshold: float):
        """Box head with NMS disabled -> (boxes [K, 4] in resized-image px, scores [K], labels [K] 1..C)."""
        heads = self.model.roi_heads
        box_features = heads.box_head(heads.box_roi_pool(features, proposals, images.image_sizes))
        class_logits, box_regression = heads.box_predictor(box_features)
        saved = heads.score_thresh, heads.nms_thresh, heads.detections_per_img
        # torchvision keeps scores > thresh (float32); every detector here keeps scores >= threshold
        floor = float(np.nextafter(np.float32(score_threshold), np.float32(-np.inf)))
        try:
            # IoU > 1.0 never happens: NMS keeps everything; top-k big enough for every candidate
            heads.score_thresh, heads.nms_thresh, heads.detections_per_img = floor, 1.0, 10**9
            boxes, scores, labels = heads.postprocess_detections(class_logits, box_regression, proposals,
                                                                 images.image_sizes)
        finally:
            heads.score_thresh, heads.nms_thresh, heads.detections_per_img = saved
        return boxes[0], scores[0], labels[0]

    def _to_original(self, boxes, images, shape_hw):
        """Boxes from the resized-image frame back to original pixels."""
        rh = shape_hw[0] / images.image_sizes[0][0]
        rw = shape_hw[1] / images.image_sizes[0][1]
        return boxes * torch.tensor([rw, rh, rw, rh], device=boxes.device)

    @torch.inference_mode()
    def raw_candidates(self, image_rgb_uint8, score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> RawCandidates:
        """Per-class candidates with score >= ``score_threshold`` before the final NMS.

        boxes float32 [K, 4] xyxy original pixels; labels 0..C-1.
        """
        t0 = time.perf_counter()
        rgb, tensor = self._prepare(image_rgb_uint8)
        images, features, proposals = self._features(tensor)
        boxes, scores, labels = self._candidates(images, features, proposals, score_threshold)
        boxes = self._to_original(boxes, images, rgb.shape[:2])
        out = RawCandidates(boxes.cpu().numpy(), scores.cpu().numpy(), (labels - 1).cpu().numpy())
        self._latency = (time.perf_counter() - t0) * 1e3
        return out

    @torch.inference_mode()
    def predict(self, image_rgb_uint8, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                nms_iou: float = DEFAULT_NMS_IOU, max_detections: int | None = None) -> Detections:
        """Final detections: class-wise NMS at ``nms_iou`` of the raw candidates, the best
        ``max_detections`` kept (None: the model's ``detections_per_img``); masks bool [N, H, W]
        for Mask R-CNN."""
        t0 = time.perf_counter()
        rgb, tensor = self._prepare(image_rgb_uint8)
        images, features, proposals = self._features(tensor)
        boxes, scores, labels = self._candidates(images, features, proposals, score_threshold)
        top = self.model.roi_heads.detections_per_img if max_detections is None else int(max_detections)
        keep = batched_nms(boxes, scores, labels, float(nms_iou))[:top]
        result = {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}
        if self.has_masks:
            heads = self.model.roi_heads
            if len(keep):
                mask_features = heads.mask_head(heads.mask_roi_pool(features, [result["boxes"]],
                                                                    images.image_sizes))
                mask_logits = heads.mask_predictor(mask_features)
                from torchvision.models.detection.roi_heads import maskrcnn_inference

                probs = maskrcnn_inference(mask_logits, [result["labels"]])[0]
            else:
                probs = torch.zeros((0, 1, 28, 28), device=boxes.device)
        result = self.model.transform.postprocess([result], images.image_sizes, [rgb.shape[:2]])[0]
        masks = None
        if self.has_masks:
            masks = paste_masks_bool(probs, result["boxes"], rgb.shape[:2], MASK_THRESHOLD).cpu().numpy()
        out = Detections(result["boxes"].cpu().numpy(), result["scores"].cpu().numpy(),
                         (result["labels"] - 1).cpu().numpy(), self.class_names, masks)
        self._latency = (time.perf_counter() - t0) * 1e3
        return out

    @property
    def last_latency_ms(self) -> float:
        return self._latency


def paste_masks_bool(probs: torch.Tensor, boxes: torch.Tensor, image_hw, threshold: float) -> torch.Tensor:
    """Mask R-CNN's M x M mask probabilities pasted into the image and thresholded.

    probs float [N, 1, M, M]; boxes float [N, 4] xyxy original pixels; returns bool [N, H, W].
    Pixel for pixel ``paste_masks_in_image(probs, boxes, image_hw) > threshold`` (torchvision's
    paste: the same padding, box expansion and bilinear resize), but each mask is resized and
    thresholded inside its box only, written into one bool array: torchvision fills a float
    image per mask and the threshold then reads them all again (for 100 masks at 640 x 480 that
    was ~15 % of a CPU preset Mask R-CNN's whole prediction).
    """
    from torch.nn import functional as F
    from torchvision.models.detection.roi_heads import expand_boxes, expand_masks

    h, w = int(image_hw[0]), int(image_hw[1])
    out = torch.zeros((len(probs), h, w), dtype=torch.bool, device=probs.device)
    if len(probs) == 0:
        return out
    padded, scale = expand_masks(probs, padding=1)
    boxes_px = expand_boxes(boxes, scale).to(dtype=torch.int64).tolist()
    for i, (x0, y0, x1, y1) in enumerate(boxes_px):
        bw, bh = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        cx0, cx1, cy0, cy1 = max(x0, 0), min(x1 + 1, w), max(y0, 0), min(y1 + 1, h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        # only the rows and columns inside the image are needed, but the resize must see the
        # whole box to sample the same positions as torchvision's
        resized = F.interpolate(padded[i:i + 1], size=(bh, bw), mode="bilinear", align_corners=False)[0, 0]
        out[i, cy0:cy1, cx0:cx1] = resized[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] > threshold
    return out


def load_torchvision_coco(path, arch: str, device="auto"):
    """A torchvision COCO detector from a local state-dict file; never downloads. An
    ``RcnnPredictor``, or a ``SingleStagePredictor`` for RetinaNet, FCOS and SSDlite.

    ``arch`` is a builder name from ``engine.infer.detector_api.TORCHVISION_COCO_ARCHS``. Class
    names come from torchvision's weights metadata (91 entries with "__background__" and "N/A"
    placeholders; our labels drop the background).
    """
    import torchvision.models.detection as det

    from engine.infer.detector_api import TORCHVISION_COCO_ARCHS

    path = Path(path)
    if arch not in TORCHVISION_COCO_ARCHS:
        raise DetectorLoadError(f"{path}: unknown torchvision detector {arch!r}; known: "
                                f"{', '.join(TORCHVISION_COCO_ARCHS)}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DetectorLoadError(f"{path}: not a readable PyTorch state dict ({type(exc).__name__})") from exc
    if not isinstance(state, dict):
        raise DetectorLoadError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")
    categories = list(getattr(det, TORCHVISION_COCO_ARCHS[arch]).DEFAULT.meta["categories"])
    model = getattr(det, arch)(weights=None, weights_backbone=None, num_classes=len(categories))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DetectorLoadError(f"{path}: weights do not fit torchvision's {arch} "
                                f"({str(exc).strip().splitlines()[0][:200]})") from exc
    from engine.infer.detector_api import SINGLE_STAGE_ARCHS

    if arch in SINGLE_STAGE_ARCHS:
        from engine.infer.single_stage_predictor import SingleStagePredictor

        return SingleStagePredictor(model, categories[1:], name=f"{arch}:{path.name}", device=device)
    return RcnnPredictor(model, categories[1:], name=f"{arch}:{path.name}", device=device)

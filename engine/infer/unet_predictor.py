"""U-Net predictor: checkpoint -> per-class probabilities, class maps and mask annotations."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation
from engine.device import autocast_context, pick_device
from engine.infer.overlap_tile import overlap_tile_predict
from engine.models.checkpoint import CheckpointError, load_checkpoint


DEFAULT_TILE = 256  # px: the overlap-tile size inference uses, whatever the image size


def checkpoint_source(checkpoint_path: str | Path, family: str = "unet") -> str:
    """The ``source`` recorded on annotations a checkpoint produced: "<family>:<file stem>"."""
    return f"{family}:{Path(checkpoint_path).stem}"


def regions_to_annotations(class_map: np.ndarray, probs: np.ndarray, category_ids: list[int | None], image_id: int,
                           source: str, min_area: int = 4, attributes: dict | None = None) -> list[Annotation]:
    """One MaskRLE annotation per connected region of each class.

    class_map: int [H, W] (0 = background); probs: float [C + 1, H, W];
    category_ids: project category id of class 1..C (None = skip that class);
    score = mean probability of the region's class over the region; regions smaller than
    ``min_area`` pixels are dropped as speckle.
    """
    out: list[Annotation] = []
    for k, cid in enumerate(category_ids, start=1):
        if cid is None:
            continue
        binary = (class_map == k).astype(np.uint8)
        if not binary.any():
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        for r in range(1, n):
            if stats[r, cv2.CC_STAT_AREA] < min_area:
                continue
            region = labels == r
            score = float(probs[k][region].mean())
            out.append(Annotation(image_id=image_id, category_id=int(cid), geometry=encode_mask(region),
                                  source=source, score=round(score, 4), attributes=dict(attributes or {})))
    return out


class UNetPredictor:
    """Ready-to-run U-Net from a checkpoint (family "unet").

    ``probabilities(rgb)`` -> float32 [C + 1, H, W]; ``class_map(rgb)`` -> uint8 [H, W];
    ``annotate(rgb, image_id, category_ids, source)`` -> mask annotations. Images of any size
    go through overlap-tile inference with mirror padding.
    """

    kind = "segmentation"

    def __init__(self, checkpoint_path: str | Path, device: str | torch.device = "auto", tile: int = DEFAULT_TILE,
                 margin: int | None = None) -> None:
        from engine.models.unet import build_unet

        state, meta = load_checkpoint(checkpoint_path)
        if meta.get("family") != "unet":
            raise CheckpointError(checkpoint_path, f"family is {meta.get('family')!r}, not 'unet'")
        self.path = Path(checkpoint_path)
        self.meta = meta
        self.classes: list[str] = list(meta["classes"])
        self.colors: list[str] = list(meta.get("colors") or [])
        self.device = pick_device(device)
        self.model = build_unet(dict(meta["config"], pretrained=False), len(self.classes))
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(checkpoint_path,
                                  f"weights do not fit the recorded config: {str(exc)[:300]}") from None
        self.model.to(self.device).eval()
        self.tile = tile
        # One down-sampling period of mirrored context: most of the receptive field that matters,
        # without quadrupling the work on small images.
        self.margin = margin if margin is not None else max(16, self.model.multiple)
        self.source = checkpoint_source(checkpoint_path)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with autocast_context(self.device):
            return self.model(x).float().softmax(dim=1)

    def probabilities(self, rgb: np.ndarray, should_stop=None) -> np.ndarray:
        """uint8 [H, W, 3] -> softmax float32 [C + 1, H, W]."""
        return overlap_tile_predict(self._forward, rgb, tile=self.tile, margin=self.margin,
                                    multiple=self.model.multiple, device=self.device, should_stop=should_stop)

    def class_map(self, rgb: np.ndarray) -> np.ndarray:
        return self.probabilities(rgb).argmax(axis=0).astype(np.uint8)

    def annotate(self, rgb: np.ndarray, image_id: int, category_ids: list[int | None], source: str | None = None,
                 attributes: dict | None = None, probs: np.ndarray | None = None) -> list[Annotation]:
        probs = self.probabilities(rgb) if probs is None else probs
        class_map = probs.argmax(axis=0)
        return regions_to_annotations(class_map, probs, category_ids, image_id, source or self.source,
                                      attributes=attributes)

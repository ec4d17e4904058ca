"""A trained Siamese embedding: the expensive part (an embedding per picture) once, the cheap
parts (a distance, a verdict at tau, a nearest neighbour) per question.

``SiamesePredictor.from_checkpoint(path, device)`` loads a ``siamese`` checkpoint. Pictures are
uint8 RGB [H, W, 3]; an optional box (xyxy pixels) crops an object first, as in training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.annotations.errors import BadInput
from engine.data.identities import square_crop
from engine.device import pick_device
from engine.models.checkpoint import CheckpointError, load_checkpoint
from engine.models.siamese import DEFAULT_CONFIG, build_siamese
from engine.train.siamese import embed_crops

DEFAULT_TAU = 0.8  # for a checkpoint saved without a validation (distances lie in 0..2)


def require_embedding_checkpoint(path: str | Path, command: str) -> dict:
    """The meta of ``path``; BadInput naming the file and its field ``kind`` when the checkpoint
    is not an embedding (a segmentation or detection model cannot verify or search)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(str(path), "CKPT", "checkpoint file not found")
    try:
        _, meta = load_checkpoint(path)
    except CheckpointError as exc:
        raise BadInput(str(path), "checkpoint", exc.message) from None
    kind = meta.get("kind")
    if kind != "embedding":
        raise BadInput(str(path), "kind", f"is a {kind or 'unknown'} checkpoint ({meta.get('family')}); {command} "
                       "needs an embedding checkpoint (train one with `visionbench train siamese`)")
    return meta


class SiamesePredictor:
    kind = "embedding"

    def __init__(self, model: torch.nn.Module, meta: dict, device: torch.device, path: str = "") -> None:
        self.model = model.eval()
        self.meta = meta
        self.device = device
        self.path = path
        self.input_size = int(meta.get("input_size") or DEFAULT_CONFIG["input_size"])
        metrics = meta.get("metrics") or {}
        tau = meta.get("tau") if meta.get("tau") is not None else metrics.get("tau")
        self.tau = float(tau) if tau is not None else DEFAULT_TAU
        self.class_names: list[str] = []

    @classmethod
    def from_checkpoint(cls, path: str | Path, device="auto") -> "SiamesePredictor":
        state, meta = load_checkpoint(path)
        if meta.get("kind") != "embedding":
            raise CheckpointError(path, f"field 'kind' is {meta.get('kind')!r}, not an embedding")
        cfg = {**DEFAULT_CONFIG, **(meta.get("config") or {}), "pretrained": False}
        model = build_siamese(cfg)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(path, "field 'state_dict' does not fit a Siamese network: "
                                  f"{str(exc)[:200]}") from None
        dev = pick_device(device) if not isinstance(device, torch.device) else device
        return cls(model.to(dev), meta, dev, str(path))

    def crop(self, rgb: np.ndarray, box=None) -> np.ndarray:
        return square_crop(np.asarray(rgb), box, self.input_size)

    def embed_crops(self, crops: np.ndarray, batch_size: int = 128, token=None) -> np.ndarray:
        """float32 [N, D] unit embeddings of square uint8 crops [N, S, S, 3] (any S: resized)."""
        crops = np.asarray(crops)
        if crops.shape[1:3] != (self.input_size, self.input_size):
            crops = np.stack([self.crop(c) for c in crops]) if len(crops) else crops
        return embed_crops(self.model, crops, self.device, batch_size, token)

    def embed(self, rgb: np.ndarray, box=None) -> np.ndarray:
        """float32 [D]: the embedding of one picture (or of the box in it)."""
        return self.embed_crops(self.crop(rgb, box)[None])[0]

    @staticmethod
    def distance(e1: np.ndarray, e2: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(e1, np.float64) - np.asarray(e2, np.float64)))

    def annotate(self, rgb: np.ndarray, image_id: int, category_ids: list, source: str,
                 attributes: dict | None = None, **kwargs) -> list:
        """An embedding draws no shapes (``predict`` stores nothing, as for every family of its
        kind); its questions are ``verify`` and ``search``."""
        return []

    def verify(self, a: np.ndarray, b: np.ndarray, tau: float | None = None, box_a=None, box_b=None) -> dict:
        """{"distance", "tau", "same"} for two pictures."""
        tau = self.tau if tau is None else float(tau)
        d = self.distance(self.embed(a, box_a), self.embed(b, box_b))
        return {"distance": d, "tau": tau, "same": bool(d <= tau)}

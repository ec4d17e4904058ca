"""A trained pix2pix generator as a predictor: a picture in, a picture out.

The input of a project image is what the model was trained to translate (``pairs`` in the
checkpoint): the image itself (stored targets, denoise, deblur: a real noisy or blurred image is
translated as it is), its Canny edges, its gray or L*, or its ground-truth masks painted in the
category colours (labels2photo). Any image size: the input is padded (reflected) to a multiple of
2**depth and the output cropped back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.data.pairs import (PairSample, decode_output, derive_input, encode_pair, gray_rgb, identity_output,
                               load_pairs)
from engine.device import pick_device
from engine.models.checkpoint import CheckpointError, load_checkpoint
from engine.models.pix2pix import DEFAULT_CONFIG, Pix2Pix


class Pix2PixPredictor:
    """``translate(rgb, class_map=None) -> uint8 RGB`` for one image; ``translate_input(a)`` for an
    input picture already made; ``pairs(project, split)`` and ``identity(a)`` for scoring."""

    def __init__(self, model: Pix2Pix, config: dict, meta: dict, device: torch.device, name: str = "pix2pix") -> None:
        self.model = model.eval()
        if config.get("eval_dropout"):  # the paper's noise at test time: outputs vary from run to run
            for m in self.model.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.train()
        self.config = config
        self.meta = meta
        self.device = device
        self.name = name
        self.kind = str(config.get("pairs", "targets"))
        self.palette = np.array(meta.get("palette") or [[0, 0, 0]], np.uint8)
        self.class_names = list(meta.get("classes") or [])
        self.multiple = 2 ** int(config["depth"])

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: Any = "auto") -> "Pix2PixPredictor":
        state, meta = load_checkpoint(path)
        config = {**DEFAULT_CONFIG, **meta.get("config", {}), "pairs": meta.get("pairs", meta["config"].get("pairs"))}
        model = Pix2Pix(config)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(path, f"field 'state_dict' does not fit a pix2pix model of its config ({exc})")
        dev = pick_device(device)
        return cls(model.to(dev), config, meta, dev, f"{meta['family']}:{Path(path).stem}")

    @property
    def needs_labels(self) -> bool:
        """True when the input is the image's masks (labels2photo), not its pixels."""
        return self.kind == "labels2photo"

    def input_for(self, rgb: np.ndarray, class_map: np.ndarray | None = None) -> np.ndarray:
        """The model's input picture for a project image (uint8 RGB [H, W, 3]); ``class_map`` [H, W]
        (class index of the checkpoint's categories, 0 = background) for labels2photo."""
        if self.kind in ("denoise", "deblur", "targets"):
            return rgb
        if self.needs_labels and class_map is None:
            raise ValueError("this model translates masks to photos: give the image's class map")
        return derive_input(self.kind, rgb, self.config, class_map, self.palette)

    def _generate(self, x: torch.Tensor) -> torch.Tensor:
        """G on one input [C, H, W] of any size (padded to a multiple of 2**depth) -> [C', H, W]."""
        h, w = x.shape[1:]
        ph, pw = -h % self.multiple, -w % self.multiple
        batch = x[None].to(self.device)
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            batch = F.pad(batch, (0, pw, 0, ph), mode=mode)
        return self.model.G(batch)[0, :, :h, :w]

    @torch.no_grad()
    def translate_input(self, a: np.ndarray) -> np.ndarray:
        """Input picture (uint8 [H, W] or [H, W, 3]) -> uint8 RGB [H, W, 3]."""
        x, _ = encode_pair(self.kind, a, None)
        scale_side = int(self.config.get("load_size") or 0)
        h, w = x.shape[1:]
        if self.kind == "colorize" and scale_side and min(h, w) != scale_side:
            # colour at the scale the model learnt it, then a*b* up to the photo (L* stays sharp)
            s = scale_side / min(h, w)
            small = F.interpolate(x[None], size=(max(2, round(h * s)), max(2, round(w * s))), mode="area")[0]
            ab = F.interpolate(self._generate(small)[None], size=(h, w), mode="bilinear", align_corners=False)[0]
            return decode_output(self.kind, x, ab)
        picture = decode_output(self.kind, x, self._generate(x))
        return gray_rgb(picture) if self.meta.get("gray_targets") else picture

    def translate(self, rgb: np.ndarray, class_map: np.ndarray | None = None) -> np.ndarray:
        return self.translate_input(self.input_for(rgb, class_map))

    def identity(self, a: np.ndarray) -> np.ndarray | None:
        """"Output = input" for an input picture, None where that means nothing (labels, edges)."""
        return identity_output(self.kind, a)

    def pairs(self, project: str | Path, split: str | None) -> list[PairSample]:
        """The (input, target) pairs of a project split at full size, as training made them."""
        return load_pairs(project, self.kind, split, self.config)

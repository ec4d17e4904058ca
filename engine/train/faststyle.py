"""Fast style (Johnson et al.): a transformer network trained, for one style image, on a project's
images with the perceptual losses of Gatys' method; afterwards one forward pass stylises any image.

Batches are random square crops of the project's images (the train split; all images when the
split is empty), ``batch_size`` per process, every image equally often in an epoch; validation
stylises the centre crop (training crop size) of up to ``val_images`` images of the val split
(else of the train split) and reports ``score`` = minus their total loss. Previews: ``stylised``
(input | output for each whole validation image) after each validation and every
``preview_every`` steps.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.annotations.errors import BadInput
from engine.annotations.store import ProjectStore
from engine.jobs.events import Event, Log, Preview
from engine.models.style import (FASTSTYLE_CPU_PRESET, TRANSFORMER_VERSION, build_transformer, colour_transfer,
                                 feature_network, out_of_range)
from engine.train.gatys import _flag, build_objective, load_picture, to_tensor, to_uint8
from engine.train.loop import Trainer
from engine.train.sampling import item_rng
from engine.viz import previews as pv


def _crop(picture: np.ndarray, side: int, rng: np.random.Generator, short_side: int = 0) -> np.ndarray:
    """A random ``side`` x ``side`` crop after resizing the short side to ``short_side`` (at least
    1.25 x ``side``)."""
    import cv2

    h, w = picture.shape[:2]
    scale = max(1.25 * side, short_side) / min(h, w)
    resized = cv2.resize(picture, (max(side, round(w * scale)), max(side, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    y = int(rng.integers(resized.shape[0] - side + 1))
    x = int(rng.integers(resized.shape[1] - side + 1))
    return resized[y:y + side, x:x + side]


class CropDataset(Dataset):
    """``length`` random crops per epoch: item i is a crop of image i mod (number of images), cut
    where (seed, epoch, i) says (so the same after a resume and on whichever rank it lands). The
    training loader's permutation then visits every image equally often in an epoch."""

    def __init__(self, paths: list, read, side: int, short_side: int, length: int, seed: int) -> None:
        self.paths, self.read, self.side, self.short_side = paths, read, side, short_side
        self.length, self.seed, self.epoch = int(length), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        crop = _crop(self.read(self.paths[index % len(self.paths)]), self.side,
                     item_rng(self.seed, self.epoch, index), self.short_side)
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float().div(255.0)


def _centre(picture: torch.Tensor, side: int) -> torch.Tensor:
    """The centre ``side`` x ``side`` crop of [1, 3, H, W] (smaller where the picture is)."""
    h, w = picture.shape[-2:]
    sh, sw = min(side, h), min(side, w)
    y, x = (h - sh) // 2, (w - sw) // 2
    return picture[..., y:y + sh, x:x + sw]


class FastStyleTrainer(Trainer):
    family = "faststyle"
    kind = "image2image"
    metric = "score"
    defaults = FASTSTYLE_CPU_PRESET

    def setup(self) -> Iterator[Event]:
        from engine.infer.run import read_model_image

        cfg = self.cfg
        self.read = read_model_image
        with ProjectStore(self.store_path, readonly=True) as store:
            train = [store.image_path(r) for r in store.images(split="train")]
            val = [store.image_path(r) for r in store.images(split="val")]
            every = [store.image_path(r) for r in store.images()]
        self.train_paths = train or every
        if not self.train_paths:
            raise BadInput(self.store_path, "images", "the project has no images to learn the style on")
        self.val_paths = (val or self.train_paths)[: max(1, int(cfg.get("val_images") or 3))]
        style_rgb, self.style_name = load_picture(cfg["style"], "style")
        self.crop = int(cfg["crop"])
        net = feature_network(str(cfg.get("network") or "lite0"), cfg.get("vgg19_weights") or None)
        self.network = net.describe()
        yield Log(f"feature network: {self.network}; style: {self.style_name}; {len(self.train_paths)} images")
        self.objective = build_objective(cfg, net.to(self.device), self.device)
        # Crops are cut from images at ``image_side`` and the style is seen at ``style_side``: small
        # crops then hold parts of a picture at the scale of Gatys' runs, with the style's stones
        # or bricks at their size there (a whole image shrunk to the crop made them dots).
        self.image_side = int(cfg.get("image_side") or 0)
        style = to_tensor(style_rgb, int(cfg.get("style_side") or self.crop))
        self.objective.set_style(style.to(self.device))
        seed = int(cfg.get("seed") or 0)
        if _flag(cfg.get("balance")):
            # the terms made scale-free on crops as the network first sees them (it starts near its input)
            rng = np.random.default_rng(seed)
            probe = torch.from_numpy(np.stack([_crop(self.read(p), self.crop, rng, self.image_side)
                                           for p in self.train_paths[:4]]))
            probe = probe.permute(0, 3, 1, 2).float().div(255.0).to(self.device)
            self.objective.balance(probe, content=probe)
        self.model = build_transformer(cfg)
        # the colour map starts as the colour transfer from the photos to the style (the style's
        # palette from the first step; the network learns on from there)
        photos = torch.cat([to_tensor(self.read(p), self.image_side or 2 * self.crop)[0, :, ::4, ::4].reshape(3, -1).T
                            for p in self.train_paths[:16]])
        self.model.set_colour(*colour_transfer(photos, style[0].reshape(3, -1).T))
        self.model.to(self.device)
        self.optimizers = [torch.optim.Adam(self.model.parameters(), lr=float(cfg["lr"]))]
        val_side = self.image_side or self.crop * 2
        self.val_inputs = [to_tensor(self.read(p), val_side).to(self.device) for p in self.val_paths]
        # each epoch: steps_per_epoch batches per process, the ranks' crops disjoint shares of one draw
        bs = int(cfg["batch_size"])
        crops = CropDataset(self.train_paths, self.read, self.crop, self.image_side,
                            self.steps_per_epoch() * bs * self.dist.world, seed)
        self.loader = self.make_loader(crops, bs, drop_last=True)
        # The score is the training objective on the centre crop of each val picture, at the
        # training crop's size: the content term is a sum over positions, so whole pictures
        # (seven times a crop's positions at 256 px) weighed it far above the style and the best
        # checkpoint was always one of the first, before the texture came.
        self.val_crops = [_centre(x, self.crop) for x in self.val_inputs]

    def steps_per_epoch(self) -> int:
        # a fixed number of random crops per epoch, whatever the project's size: validation (and
        # its previews) comes at a steady rate, not once per two images of a small project
        return max(1, int(self.cfg.get("steps_per_epoch") or 50))

    def batches(self):
        return self.loader

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.model(batch)
        terms, _ = self.objective(out, content=batch)
        terms = {k: v for k, v in terms.items() if "/" not in k}
        # the output is clamped only when used, so without this term training let areas drift far
        # outside [0, 1] (dark areas, mostly), where the clamp then showed saturated blobs
        terms["range"] = out_of_range(out)
        terms["loss"] = terms["loss"] + float(self.cfg.get("range_weight", 0.0) or 0.0) * terms["range"]
        return terms

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        self.model.eval()
        total = 0.0
        for x in self.val_crops:
            terms, _ = self.objective(self.model(x), content=x)
            total += float(terms["loss"])
        self.model.train()
        return {"score": -total / max(1, len(self.val_crops))}

    def previews(self, step: int) -> Iterator[Preview]:
        with torch.no_grad():
            self.model.eval()
            outs = [self.model(x) for x in self.val_inputs]
            self.model.train()
        pictures, titles = [], []
        for k, (x, y) in enumerate(zip(self.val_inputs, outs)):
            pictures += [to_uint8(x), to_uint8(y)]
            titles += [f"input {k + 1}", f"stylised {k + 1}"]
        yield pv.image_row("stylised", pictures, titles, step, f"fast style ({self.style_name}), step {step}")

    def meta(self) -> dict:
        return {"classes": [], "style": self.style_name, "network": self.network,
                "transformer_version": TRANSFORMER_VERSION,
                "width": int(self.cfg["width"]), "residual_blocks": int(self.cfg["residual_blocks"])}

"""U-Net on the one training loop (engine.train.loop): what differs for segmentation.

Previews of one fixed validation image (the one with the most objects): "heatmaps" (kind
heatmap: per-class softmax), "argmax" (class map) and "weight_map" (the paper's loss weights,
kind heatmap). Validation: mIoU (the family's metric) and Dice.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

from engine.annotations.errors import BadInput
from engine.data.augment import segmentation_augmentation
from engine.data.datasets import (SegmentationDataset, SegSample, dataset_class_weights, image_to_tensor,
                                  load_segmentation_samples, open_project, resolve_classes)
from engine.device import autocast_context
from engine.eval.segmentation import confusion, summarize
from engine.jobs.events import Log
from engine.models.unet import DEFAULT_CONFIG, build_unet, segmentation_loss
from engine.train import distributed
from engine.train.loop import Trainer, fit
from engine.viz import previews as pv
from engine.viz.heatmaps import segmentation_preview
from engine.viz.weight_map import unet_weight_map


def _eval_logits(model: torch.nn.Module, images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Logits [N, C + 1, H, W] of same-size uint8 [H, W, 3] images, in eval mode (the model's
    mode is restored), NHWC on the CPU as in training."""
    x = torch.stack([image_to_tensor(image) for image in images]).to(device)
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast_context(device):
            return model(x).float()
    finally:
        model.train(was_training)


def _predict_probs(model: torch.nn.Module, image: np.ndarray, device: torch.device) -> np.ndarray:
    """Softmax float32 [C + 1, H, W] of one uint8 [H, W, 3] image (whole image, eval mode)."""
    return _eval_logits(model, [image], device).softmax(dim=1)[0].cpu().numpy()


EVAL_BATCH = 16  # validation images through the model at once


def confusion_of_samples(model: torch.nn.Module, samples: list[SegSample], k: int, device: torch.device,
                         token=None, batch_size: int = EVAL_BATCH, offset: int = 0) -> np.ndarray:
    """The pixel confusion matrix int64 [k, k] of the model's argmax on ``samples``.

    Consecutive samples of the same size go through the model together (eval mode; the same
    numbers as one by one, in about half the time on the CPU), in batches that never cross a
    multiple of ``batch_size`` counted from the split's start (``samples`` begin at ``offset`` in
    it): a share of the split that starts on such a multiple is batched as in the whole split.
    """
    cm = np.zeros((k, k), np.int64)
    keyed = ((s.image.shape, (offset + i) // batch_size) for i, s in enumerate(samples))
    start = 0
    for _, group in itertools.groupby(keyed):
        size = len(list(group))
        if token is not None:
            token.raise_if_cancelled()
        batch = samples[start:start + size]
        start += size
        labels = _eval_logits(model, [s.image for s in batch], device).argmax(dim=1).cpu().numpy()
        for s, pred in zip(batch, labels):
            cm += confusion(pred, s.class_map, k)
    return cm


def evaluate_samples(model: torch.nn.Module, samples: list[SegSample], class_names: list[str],
                     device: torch.device, token=None, batch_size: int = EVAL_BATCH) -> dict:
    """IoU/Dice over samples (see ``engine.eval.segmentation.summarize``; batches as in
    :func:`confusion_of_samples`)."""
    cm = confusion_of_samples(model, list(samples), len(class_names) + 1, device, token, batch_size)
    return summarize(cm, class_names)


def segmentation_previews(model, sample: SegSample, class_names, colors, class_weights, cfg, device, step):
    """The three live views of a segmentation model on one sample."""
    probs = _predict_probs(model, sample.image, device)
    views = segmentation_preview(sample.image, probs, class_names, colors)
    heat, arg = views["heatmaps"], views["argmax"]
    yield pv.heatmap("heatmaps", heat["probs"], heat["classes"], (0.0, 1.0), step, "probability")
    yield pv.class_map("argmax", arg["image"], arg["class_map"], arg["palette"], arg["classes"], step, "argmax")
    weight = unet_weight_map(sample.class_map, sample.instance_map, class_weights, cfg["w0"], cfg["sigma"])
    yield pv.heatmap("weight_map", weight, ["weight"], None, step, "loss weight map")


class UNetTrainer(Trainer):
    family = "unet"
    kind = "segmentation"
    metric = "miou"
    defaults = dict(DEFAULT_CONFIG)

    def setup(self):
        cfg, token = self.cfg, self.token
        yield Log(f"reading project {self.store_path}")
        store = open_project(self.store_path)
        try:
            cats = resolve_classes(store, cfg.get("classes"))
            train = load_segmentation_samples(store, cats, "train", should_stop=token.raise_if_cancelled)
            val = load_segmentation_samples(store, cats, "val", should_stop=token.raise_if_cancelled)
        finally:
            store.close()
        self.class_names = [c.name for c in cats]
        self.colors = [c.color for c in cats]
        if not train:
            raise BadInput(str(self.store_path), "images", "no annotated images in split 'train' for categories "
                           + ", ".join(self.class_names))
        if not val:
            yield Log("no annotated validation images: validating on training images", level="warning")
            val = train[: max(1, min(len(train), 16))]
        self.val = val[: int(cfg["val_limit"])]
        yield Log(f"{len(train)} training and {len(self.val)} validation images; classes: "
                  f"{', '.join(self.class_names)}; device {self.device}")
        num_classes = len(self.class_names)
        self.class_weights = dataset_class_weights(train, num_classes + 1, float(cfg["balance_power"]))
        transform = segmentation_augmentation(crop=int(cfg["crop"])) if cfg["augment"] else None
        if transform is None and len({s.image.shape for s in train}) > 1 and int(cfg["batch_size"]) > 1:
            from torchvision.transforms import v2

            transform = v2.RandomCrop(int(cfg["crop"]), pad_if_needed=True, padding_mode="reflect")
        dataset = SegmentationDataset(train, num_classes + 1, transform, self.class_weights, cfg["w0"], cfg["sigma"])
        self.loader = self.make_loader(dataset, int(cfg["batch_size"]),
                                       drop_last=len(train) > int(cfg["batch_size"]))
        model = build_unet(cfg, num_classes).to(self.device)
        # NHWC on the CPU: oneDNN's convolutions run ~20 % faster per training step (measured on the
        # Lite0 U-Net at 128 px, 1 thread); the saved state dict is the same either way.
        self.channels_last = self.device.type == "cpu"
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizers = [torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]),
                                             weight_decay=float(cfg["weight_decay"]))]
        # Touching neighbours are where the weight map's border term and the model's mistakes
        # are worth watching: preview the validation image with the most objects.
        self.preview_sample = max(self.val, key=lambda s: len(np.unique(s.instance_map)))

    def batches(self):
        return self.loader

    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def loss(self, batch):
        images, target, weight = batch
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        # a Dice is a loss of the whole batch: under torchrun its sums run over every rank's share
        return {"loss": segmentation_loss(self.cfg["loss"], self.model(images), target, weight,
                                          all_sum=distributed.all_sum if self.dist.active else None)}

    # validation: pixel confusion matrices of shares of the split, added up (torchrun: one per rank)
    val_block = EVAL_BATCH

    def val_items(self) -> int:
        return len(self.val)

    def validate_part(self, items: range) -> np.ndarray:
        return confusion_of_samples(self.model, self.val[items.start:items.stop], len(self.class_names) + 1,
                                    self.device, self.token, offset=items.start)

    def validate_merge(self, parts: list) -> dict:
        metrics = summarize(sum(parts), self.class_names)
        return {"miou": metrics["miou"] if metrics["miou"] is not None else 0.0,
                "dice": metrics["dice"] if metrics["dice"] is not None else 0.0,
                "per_class": metrics["per_class"]}

    def previews(self, step):
        return segmentation_previews(self.model, self.preview_sample, self.class_names, self.colors,
                                     self.class_weights, self.cfg, self.device, step)

    def meta(self):
        return {"classes": self.class_names, "colors": self.colors,
                "config": {**{k: v for k, v in self.cfg.items() if k not in ("device", "nice", "max_steps",
                                                                         "max_seconds", "time_limit_s")},
                           "classes": self.class_names}}


def train_segmentation(token, store_path, out, config: dict | None = None):
    """The U-Net training job (see engine.train.loop.fit for events and the result)."""
    return (yield from fit(UNetTrainer, token, store_path, out, config))

"""Segmentation datasets read from a project (the only place annotations become tensors).

``load_segmentation_samples`` reads images and rasterises their annotations once (numpy, in
memory: the projects this trains on are small); ``SegmentationDataset`` turns them into
tensors with joint augmentation and the U-Net weight map computed AFTER augmentation, so the
border term follows the deformed objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.annotations.errors import BadInput
from engine.annotations.imageio import read_image_rgb
from engine.annotations.model import Category, ImageRecord
from engine.annotations.store import ProjectStore
from engine.data.augment import augment_sample
from engine.data.objects import ground_truth_objects
from engine.data.semantic import rasterize_objects
from engine.viz.weight_map import class_balance_weights, unet_weight_map


@dataclass
class SegSample:
    """One image with its targets: image uint8 [H, W, 3], class_map uint8 [H, W], instance_map int32 [H, W]."""

    record: ImageRecord
    image: np.ndarray
    class_map: np.ndarray
    instance_map: np.ndarray


def open_project(project: str | Path) -> ProjectStore:
    """Open a project read-only (training may run while the workbench has it open for edits)."""
    return ProjectStore(project, readonly=True)


def resolve_classes(store: ProjectStore, class_names: list[str] | None) -> list[Category]:
    """The project categories to learn, in class order (all of them when ``class_names`` is None).

    BadInput naming the project and the unknown name when a requested category does not exist.
    """
    cats = store.categories()
    if class_names is None:
        if not cats:
            raise BadInput(str(store.path), "categories", "the project has no categories to train on")
        return cats
    by_name = {c.name: c for c in cats}
    out = []
    for name in class_names:
        if name not in by_name:
            known = ", ".join(sorted(by_name)) or "(none)"
            raise BadInput(str(store.path), "categories", f"no category named {name!r}; the project has: {known}")
        out.append(by_name[name])
    if not out:
        raise BadInput(str(store.path), "categories", "choose at least one category to train on")
    return out


def load_segmentation_samples(store: ProjectStore, categories: list[Category], split: str | None,
                              annotated_only: bool = True,
                              should_stop: Callable[[], None] | None = None) -> list[SegSample]:
    """Read the images of ``split`` (None = all) with their class and instance maps.

    annotated_only skips images without a ground-truth object of the chosen categories (an
    unlabeled image, or one holding only proposals, is not evidence of "all background").
    should_stop is called per image (cancel point).
    """
    ids = [c.id for c in categories]
    by_image = store.all_annotations(split=split)
    samples = []
    for rec in store.images(split=split):
        if should_stop is not None:
            should_stop()
        objects = ground_truth_objects(by_image.get(rec.id, []), rec.height, rec.width, ids)
        if annotated_only and not objects:
            continue
        path = store.image_path(rec)
        image = read_image_rgb(path)
        if image.shape[:2] != (rec.height, rec.width):
            raise BadInput(str(path), "image", f"is {image.shape[1]}x{image.shape[0]} px but the project records "
                           f"{rec.width}x{rec.height}")
        try:
            class_map, instance_map = rasterize_objects(objects, ids, rec.height, rec.width)
        except ValueError as exc:
            raise BadInput(str(store.path), "annotations", f"image {rec.path}: {exc}") from None
        samples.append(SegSample(rec, image, class_map, instance_map))
    return samples


def dataset_class_weights(samples: list[SegSample], num_classes: int, power: float = 1.0) -> np.ndarray:
    """w_c of the weight map from the pixel counts of all samples: float32 [num_classes]."""
    counts = np.zeros(num_classes, np.int64)
    for s in samples:
        counts += np.bincount(s.class_map.ravel(), minlength=num_classes)[:num_classes]
    return class_balance_weights(counts, power=power)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, H, W] in 0..1."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


class SegmentationDataset(Dataset):
    """Samples as tensors: (image float [3,h,w] 0..1, target int64 [h,w], weight float32 [h,w]).

    transform: a v2 pipeline (``engine.data.augment``) applied jointly to image, class map and
    instance map, or None. The weight map is computed afterwards from the (augmented) maps.
    """

    def __init__(self, samples: list[SegSample], num_classes: int, transform=None,
                 class_weights: np.ndarray | None = None, w0: float = 10.0, sigma: float = 5.0) -> None:
        self.samples = samples
        self.num_classes = num_classes
        self.transform = transform
        self.class_weights = (class_weights if class_weights is not None
                              else dataset_class_weights(samples, num_classes))
        self.w0 = w0
        self.sigma = sigma

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.samples[i]
        image = image_to_tensor(s.image)
        target = torch.from_numpy(s.class_map.astype(np.int64))
        inst = torch.from_numpy(s.instance_map.astype(np.int64))
        if self.transform is not None:
            image, target, inst = augment_sample(self.transform, image, target, inst)
        weight = unet_weight_map(target.numpy(), inst.numpy(), self.class_weights, self.w0, self.sigma)
        return image, target, torch.from_numpy(weight)

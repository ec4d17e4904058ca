"""Detection datasets read from a project: boxes, labels and (for Mask R-CNN) instance masks.

The objects are ``engine.data.objects.ground_truth_objects`` (the same objects U-Net paints and
every evaluation scores against): unaccepted proposals are left out, hidden shapes count, shapes
sharing an ``instance_id`` are ONE target whose box is its ``Box`` when it has one (else the bounds
of its masks/polygons) and whose mask is the union of its masks/polygons; an instance with only a
box gets the filled box as its mask (counted in ``DetectionSamples.box_only_masks`` so a trainer
can warn: such masks teach rectangles). Labels are 1..C (0 is the background class of
torchvision's R-CNNs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from engine.annotations.errors import BadInput
from engine.annotations.imageio import read_image_rgb
from engine.annotations.model import Annotation, Category, ImageRecord
from engine.annotations.store import ProjectStore
from engine.data.objects import MIN_BOX_SIDE, ground_truth_objects

__all__ = ["DetectionSample", "DetectionSamples", "DetectionDataset", "collate_detection",
           "detection_augmentation", "instances_of", "iter_detection_samples",
           "load_detection_samples"]


@dataclass
class DetectionSample:
    """One image and its objects.

    image: uint8 [H, W, 3]; boxes: float32 [N, 4] xyxy pixels; labels: int64 [N] in 1..C;
    masks: uint8 [N, H, W] in {0, 1} or None when masks were not asked for.
    """

    record: ImageRecord
    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None


@dataclass
class DetectionSamples:
    samples: list[DetectionSample] = field(default_factory=list)
    box_only_masks: int = 0  # instances whose mask is their filled box (no mask/polygon drawn)


def instances_of(anns: list[Annotation], label_of: dict[int, int], height: int, width: int,
                 with_masks: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """The ground-truth objects of one image as detection targets.

    label_of maps project category id -> training label 1..C (other categories are ignored).
    Returns (boxes float32 [N, 4], labels int64 [N], masks uint8 [N, H, W] or None,
    number of box-only masks).
    """
    objects = ground_truth_objects(anns, height, width, label_of)
    boxes = np.array([o.box for o in objects], np.float32).reshape(-1, 4)
    labels = np.array([label_of[o.category_id] for o in objects], np.int64)
    if not with_masks:
        return boxes, labels, None, 0
    masks = (np.stack([o.mask(height, width) for o in objects]) if objects
             else np.zeros((0, height, width), np.uint8))
    return boxes, labels, masks, sum(o.box_only for o in objects)


def iter_detection_samples(store: ProjectStore, categories: list[Category | None], split: str | None,
                           with_masks: bool = False, annotated_only: bool = True,
                           should_stop: Callable[[], None] | None = None,
                           read_image: Callable | None = None) -> Iterator[tuple[DetectionSample, int]]:
    """(sample, number of box-only masks) for each image of ``split`` (None = all), one at a time.

    Label of ``categories[i]`` is i + 1 (None: a class the project lacks, which has no objects).
    annotated_only skips images without a ground-truth object of the chosen categories (unlabeled
    is not "empty"). should_stop is called per image (cancel
    point). read_image(path) -> uint8 RGB [H, W, 3] (default ``read_image_rgb``); BadInput naming
    the file when its size differs from the project's record.
    """
    label_of = {c.id: i + 1 for i, c in enumerate(categories) if c is not None}
    by_image = store.all_annotations(split=split)
    read = read_image or read_image_rgb
    for rec in store.images(split=split):
        if should_stop is not None:
            should_stop()
        boxes, labels, masks, box_only = instances_of(by_image.get(rec.id, []), label_of, rec.height, rec.width,
                                                      with_masks)
        if annotated_only and len(boxes) == 0:
            continue
        path = store.image_path(rec)
        image = read(path)
        if image.shape[:2] != (rec.height, rec.width):
            raise BadInput(str(path), "image", f"is {image.shape[1]}x{image.shape[0]} px but the project "
                           f"records {rec.width}x{rec.height}")
        yield DetectionSample(rec, image, boxes, labels, masks), box_only


def load_detection_samples(store: ProjectStore, categories: list[Category], split: str | None,
                           with_masks: bool = False, annotated_only: bool = True,
                           should_stop: Callable[[], None] | None = None) -> DetectionSamples:
    """All of ``iter_detection_samples`` in memory (the projects detectors train on are small)."""
    out = DetectionSamples()
    for sample, box_only in iter_detection_samples(store, categories, split, with_masks, annotated_only,
                                                   should_stop):
        out.samples.append(sample)
        out.box_only_masks += box_only
    return out


def detection_augmentation(hflip: bool = True, vflip: bool = False, brightness: float = 0.2,
                           contrast: float = 0.2, scale_jitter: tuple[float, float] | None = None) -> v2.Compose:
    """A v2 pipeline over (Image, {"boxes": BoundingBoxes, "labels", "masks": Mask}).

    Geometric steps move boxes and masks with the image; SanitizeBoundingBoxes drops objects that
    a crop or zoom made degenerate (and their labels/masks with them).
    """
    steps: list = []
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if vflip:
        steps.append(v2.RandomVerticalFlip())
    if scale_jitter:
        steps.append(v2.RandomAffine(degrees=0, scale=scale_jitter))
    if brightness or contrast:
        steps.append(v2.ColorJitter(brightness=brightness, contrast=contrast))
    steps.append(v2.ClampBoundingBoxes())
    steps.append(v2.SanitizeBoundingBoxes(min_size=MIN_BOX_SIDE))
    return v2.Compose(steps)


class DetectionDataset(Dataset):
    """Samples as torchvision detection inputs.

    Item: (image float32 [3, H, W] in 0..1, target {"boxes": float32 [N, 4] xyxy pixels,
    "labels": int64 [N] in 1..C, optional "masks": uint8 [N, H, W]}).
    """

    def __init__(self, samples: list[DetectionSample], transform=None) -> None:
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        h, w = s.image.shape[:2]
        image = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(s.image)).permute(2, 0, 1))
        target = {"boxes": tv_tensors.BoundingBoxes(torch.from_numpy(s.boxes), format="XYXY",
                                                    canvas_size=(h, w)),
                  "labels": torch.from_numpy(s.labels)}
        if s.masks is not None:
            target["masks"] = tv_tensors.Mask(torch.from_numpy(s.masks))
        if self.transform is not None:
            image, target = self.transform(image, target)
        image = image.as_subclass(torch.Tensor).float().div_(255.0)
        out = {"boxes": target["boxes"].as_subclass(torch.Tensor).float(), "labels": target["labels"]}
        if "masks" in target:
            out["masks"] = target["masks"].as_subclass(torch.Tensor)
        return image, out


def collate_detection(batch):
    """List of (image, target) -> (list of images, list of targets): R-CNNs take lists."""
    images, targets = zip(*batch)
    return list(images), list(targets)

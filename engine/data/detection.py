"""Detection datasets read from a project: boxes, labels and (for Mask R-CNN) instance masks.

The project stores one object as several annotations sharing an ``instance_id`` (the demo
shapes set stores a ``Box`` and a ``MaskRLE`` per object). Here they become ONE target:
- the box is the instance's ``Box`` when it has one, else the bounds of its masks/polygons;
- the mask is the union of its ``MaskRLE``/``Polygon`` parts; an instance with only a box gets
  the filled box as its mask (counted in ``DetectionSamples.box_only_masks`` so a trainer can
  warn: such masks teach rectangles).
Annotations without an ``instance_id`` are objects on their own. Points, polylines and hidden
annotations are ignored. Labels are 1..C (0 is the background class of torchvision's R-CNNs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from engine.annotations.errors import BadInput
from engine.annotations.geometry import geometry_to_mask
from engine.annotations.imageio import read_image_rgb
from engine.annotations.model import Annotation, Box, Category, ImageRecord, MaskRLE, Polygon
from engine.annotations.store import ProjectStore

__all__ = ["DetectionSample", "DetectionSamples", "DetectionDataset", "collate_detection",
           "detection_augmentation", "instances_of", "load_detection_samples", "samples_to_gt"]

MIN_BOX_SIDE = 1.0  # pixels; thinner boxes make torchvision's box coder divide by ~0


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
    """Group one image's annotations into instances.

    label_of maps project category id -> training label 1..C (other categories are ignored).
    Returns (boxes float32 [N, 4], labels int64 [N], masks uint8 [N, H, W] or None,
    number of box-only masks).
    """
    groups: dict[object, list[Annotation]] = {}
    for a in anns:
        if a.hidden or a.category_id not in label_of:
            continue
        if not isinstance(a.geometry, (Box, MaskRLE, Polygon)):
            continue
        key = ("i", a.category_id, a.instance_id) if a.instance_id is not None else ("a", id(a))
        groups.setdefault(key, []).append(a)
    boxes, labels, masks = [], [], []
    box_only = 0
    for parts in groups.values():
        box_parts = [p.geometry for p in parts if isinstance(p.geometry, Box)]
        shape_parts = [p.geometry for p in parts if not isinstance(p.geometry, Box)]
        mask = None
        if shape_parts and (with_masks or not box_parts):
            mask = np.zeros((height, width), np.uint8)
            for g in shape_parts:
                mask |= geometry_to_mask(g, height, width).astype(np.uint8)
            if not mask.any():
                continue  # an empty mask (fully outside the image) is no object
        if box_parts:
            x1, y1, x2, y2 = box_parts[0].x1, box_parts[0].y1, box_parts[0].x2, box_parts[0].y2
        else:
            ys, xs = np.nonzero(mask)
            x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
        x1, x2 = np.clip([x1, x2], 0, width)
        y1, y2 = np.clip([y1, y2], 0, height)
        if x2 - x1 < MIN_BOX_SIDE or y2 - y1 < MIN_BOX_SIDE:
            continue
        if with_masks and mask is None:
            mask = np.zeros((height, width), np.uint8)
            mask[int(np.floor(y1)):int(np.ceil(y2)), int(np.floor(x1)):int(np.ceil(x2))] = 1
            box_only += 1
        boxes.append((x1, y1, x2, y2))
        labels.append(label_of[parts[0].category_id])
        if with_masks:
            masks.append(mask)
    box_arr = np.asarray(boxes, np.float32).reshape(-1, 4)
    label_arr = np.asarray(labels, np.int64)
    mask_arr = None
    if with_masks:
        mask_arr = np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)
    return box_arr, label_arr, mask_arr, box_only


def load_detection_samples(store: ProjectStore, categories: list[Category], split: str | None,
                           with_masks: bool = False, annotated_only: bool = True,
                           should_stop: Callable[[], None] | None = None) -> DetectionSamples:
    """Read the images of ``split`` (None = all) and their instances of ``categories``.

    Label of ``categories[i]`` is i + 1. annotated_only skips images without any object of the
    chosen categories (unlabeled is not "empty"). should_stop is called per image (cancel point).
    """
    label_of = {c.id: i + 1 for i, c in enumerate(categories)}
    by_image = store.all_annotations(split=split)
    out = DetectionSamples()
    for rec in store.images(split=split):
        if should_stop is not None:
            should_stop()
        anns = by_image.get(rec.id, [])
        if annotated_only and not any(a.category_id in label_of for a in anns):
            continue
        boxes, labels, masks, box_only = instances_of(anns, label_of, rec.height, rec.width, with_masks)
        if annotated_only and len(boxes) == 0:
            continue
        path = store.image_path(rec)
        image = read_image_rgb(path)
        if image.shape[:2] != (rec.height, rec.width):
            raise BadInput(str(path), "image", f"is {image.shape[1]}x{image.shape[0]} px but the project "
                           f"records {rec.width}x{rec.height}")
        out.samples.append(DetectionSample(rec, image, boxes, labels, masks))
        out.box_only_masks += box_only
    return out


def samples_to_gt(samples: list[DetectionSample], category_ids: list[int]) -> list[dict]:
    """Ground truth in the form ``engine.eval.coco_eval.evaluate_detections`` takes.

    image_id is the project image id and labels are project category ids (``category_ids[label-1]``),
    the numbering ``visionbench export coco`` writes.
    """
    gt = []
    for s in samples:
        item = {"image_id": s.record.id, "width": s.record.width, "height": s.record.height,
                "boxes": s.boxes, "labels": [category_ids[int(k) - 1] for k in s.labels]}
        if s.masks is not None:
            item["masks"] = s.masks.astype(bool)
        gt.append(item)
    return gt


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

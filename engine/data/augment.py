"""Joint augmentation of an image and its per-pixel targets with torchvision.transforms.v2.

The targets are wrapped as ``tv_tensors.Mask`` so geometric transforms (shift, rotation,
elastic deformation, flips) move them with the image using nearest-neighbour sampling, while
photometric ones (gray-level changes) touch the image only.
"""
from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2


def segmentation_augmentation(crop: int | None = None, rotation_deg: float = 20.0, shift: float = 0.1,
                              elastic_alpha: float = 30.0, elastic_sigma: float = 5.0,
                              elastic_p: float = 0.3, brightness: float = 0.25, contrast: float = 0.25,
                              hflip: bool = True) -> v2.Compose:
    """A v2 pipeline for (Image, Mask, Mask, ...) tuples; ``crop`` makes every sample crop x crop.

    rotation in degrees, shift as a fraction of the size, elastic alpha/sigma in pixels
    (torchvision's ElasticTransform units), brightness/contrast as ColorJitter factors.
    """
    steps: list = []
    if crop:
        steps.append(v2.RandomCrop(crop, pad_if_needed=True, padding_mode="reflect"))
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    # Padding with 0 is right for masks (background) and a plain black border for the image.
    steps.append(v2.RandomAffine(degrees=rotation_deg, translate=(shift, shift)))
    if elastic_p > 0:
        steps.append(v2.RandomApply([v2.ElasticTransform(alpha=elastic_alpha, sigma=elastic_sigma)], p=elastic_p))
    steps.append(v2.ColorJitter(brightness=brightness, contrast=contrast))
    return v2.Compose(steps)


def augment_sample(transform, image: torch.Tensor, *targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Apply ``transform`` jointly: image float [3, H, W] in 0..1, targets int [H, W] each.

    Returns (image [3, h, w], target [h, w], ...) as plain tensors.
    """
    out = transform(tv_tensors.Image(image), *[tv_tensors.Mask(t) for t in targets])
    return tuple(t.as_subclass(torch.Tensor) for t in out)

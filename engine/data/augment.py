"""Joint augmentation of an image and its per-pixel targets with torchvision.transforms.v2.

The targets are wrapped as ``tv_tensors.Mask`` so geometric transforms (shift, rotation,
elastic deformation, flips) move them with the image using nearest-neighbour sampling, while
photometric ones (gray-level changes) touch the image only.
"""
from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2


class GridElastic(v2.ElasticTransform):
    """The U-Net paper's elastic deformation as a transforms.v2 transform.

    Random displacement vectors on a coarse ``grid`` x ``grid`` lattice, normal with ``sigma_px``
    pixels standard deviation, interpolated bicubically to every pixel; v2's ``elastic`` kernel
    then warps images bilinearly and masks nearest-neighbour, like ``v2.ElasticTransform``. That
    one blurs a per-pixel random field with an 8-sigma Gaussian kernel instead, which took 23 ms
    of the 26 ms per 128 x 128 sample (measured on one CPU thread); this takes well under 1 ms.
    """

    def __init__(self, sigma_px: float = 3.0, grid: int = 3) -> None:
        super().__init__(alpha=0.0, sigma=0.0)
        self.sigma_px = float(sigma_px)
        self.grid = int(grid)

    def make_params(self, flat_inputs: list) -> dict:
        height, width = v2.query_size(flat_inputs)
        coarse = torch.randn(1, 2, self.grid, self.grid) * self.sigma_px  # pixels
        field = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
        # v2's elastic adds the displacement to a sampling grid spanning [-1, 1]: 2 / size per pixel
        scale = torch.tensor([2.0 / width, 2.0 / height]).view(1, 2, 1, 1)
        return {"displacement": (field * scale).permute(0, 2, 3, 1)}


def segmentation_augmentation(crop: int | None = None, rotation_deg: float = 20.0, shift: float = 0.1,
                              elastic_sigma_px: float = 3.0, elastic_grid: int = 3,
                              elastic_p: float = 0.3, brightness: float = 0.25, contrast: float = 0.25,
                              hflip: bool = True) -> v2.Compose:
    """A v2 pipeline for (Image, Mask, Mask, ...) tuples; ``crop`` makes every sample crop x crop.

    rotation in degrees, shift as a fraction of the size, elastic deformation as in the U-Net
    paper (``GridElastic``: a coarse grid of displacements with ``elastic_sigma_px`` pixels
    standard deviation), brightness/contrast as ColorJitter factors.
    """
    steps: list = []
    if crop:
        steps.append(v2.RandomCrop(crop, pad_if_needed=True, padding_mode="reflect"))
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    # Padding with 0 is right for masks (background) and a plain black border for the image.
    steps.append(v2.RandomAffine(degrees=rotation_deg, translate=(shift, shift)))
    if elastic_p > 0:
        steps.append(v2.RandomApply([GridElastic(elastic_sigma_px, elastic_grid)], p=elastic_p))
    steps.append(v2.ColorJitter(brightness=brightness, contrast=contrast))
    return v2.Compose(steps)


def augment_sample(transform, image: torch.Tensor, *targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Apply ``transform`` jointly: image float [3, H, W] in 0..1, targets int [H, W] each.

    Returns (image [3, h, w], target [h, w], ...) as plain tensors.
    """
    out = transform(tv_tensors.Image(image), *[tv_tensors.Mask(t) for t in targets])
    return tuple(t.as_subclass(torch.Tensor) for t in out)

"""Image pairs (A -> B) for image-to-image families: derived from a project, or stored with it.

Kinds of pair (config "pairs"; A is the model's input, B its target):

- ``targets``: the stored target of each image (``engine.annotations.formats.pairs.target_path``):
  imported pairs, the galaxies demo's noise-free model (observed -> model);
- ``labels2photo``: the ground-truth masks painted in their category colours -> the photo;
- ``edges2photo``: Canny edges of the photo -> the photo;
- ``gray2color``: the gray photo -> the photo;
- ``denoise``: the photo with Gaussian noise (``noise_sigma`` levels, new noise every time a
  training image is drawn; fixed per image for validation) -> the photo;
- ``deblur``: the photo blurred (Gaussian, ``blur_sigma`` px) -> the photo;
- ``colorize``: L* of CIE Lab -> a*b* (photos with colour only; gray ones are left out).

Pictures are uint8 RGB (B always; A gray [H, W] for edges, gray and L*); tensors are float
[C, H, W] in [-1, 1]: RGB and gray as x / 127.5 - 1, L* as L / 50 - 1, a*b* as ab / 110.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from engine.annotations.errors import BadInput
from engine.annotations.formats.pairs import target_path
from engine.annotations.imageio import is_image_file, read_image_rgb
from engine.annotations.store import ProjectStore
from engine.data.objects import ground_truth_objects
from engine.data.semantic import rasterize_objects

AB_SCALE = 110.0  # |a*|, |b*| of sRGB colours stay below ~110
SAME_INPUT = ("targets", "denoise", "deblur")  # the input is a picture of the same kind as the target


# ---- derivations (numpy, uint8 pictures) ----------------------------------------------------
def gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> uint8 luma [H, W] (ITU-R 601, as OpenCV)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def canny_edges(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> uint8 [H, W], 255 on edges. Thresholds follow the image's median gray level
    (0.66 and 1.33 times it), so dark and bright photos both give outlines, not noise or nothing."""
    g = cv2.GaussianBlur(gray(rgb), (3, 3), 0)
    m = float(np.median(g))
    return cv2.Canny(g, int(max(0, 0.66 * m)), int(min(255, max(1.33 * m, 30))))


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> float32 CIE Lab (D65) [H, W, 3]: L* 0..100, a*, b* about -110..110."""
    from skimage.color import rgb2lab

    return rgb2lab(rgb).astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float CIE Lab [H, W, 3] -> uint8 RGB (out-of-gamut colours clipped)."""
    import warnings

    from skimage.color import lab2rgb

    with warnings.catch_warnings():  # out-of-gamut predictions are clipped, as the docstring says
        warnings.simplefilter("ignore", UserWarning)
        rgb = lab2rgb(lab.astype(np.float64))
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def add_noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) + rng.normal(0.0, sigma, rgb.shape), 0, 255).round().astype(np.uint8)


def blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(rgb, (0, 0), float(sigma))


def label_picture(class_map: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """int class map [H, W] (0 = background) -> uint8 RGB with ``palette[class]`` ([C + 1, 3])."""
    return np.asarray(palette, np.uint8)[class_map]


def is_gray(rgb: np.ndarray) -> bool:
    """True when the three channels are (almost) equal: no colour to learn from."""
    d = np.abs(rgb.astype(np.int16) - rgb[:, :, :1].astype(np.int16))
    return float(d.mean()) < 1.0


def gray_rgb(rgb: np.ndarray) -> np.ndarray:
    """The mean of the channels, repeated: a model of gray targets answers in gray (the colour
    its three output channels disagree by is noise)."""
    m = np.round(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
    return np.repeat(m[:, :, None], 3, axis=2)


def image_seed(key: str) -> int:
    """A stable seed per image (validation noise must be the same in every run)."""
    return zlib.crc32(key.encode("utf-8"))


def derive_input(pairs: str, rgb: np.ndarray, cfg: dict, class_map: np.ndarray | None = None,
                 palette: np.ndarray | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """The model's input picture A for a photo (or, for ``targets``, the image itself)."""
    if pairs in ("targets",):
        return rgb
    if pairs == "labels2photo":
        if class_map is None:
            raise ValueError("labels2photo needs the image's class map")
        return label_picture(class_map, palette)
    if pairs == "edges2photo":
        return canny_edges(rgb)
    if pairs in ("gray2color", "colorize"):
        return gray(rgb)
    if pairs == "denoise":
        return add_noise(rgb, float(cfg.get("noise_sigma", 25.0)), rng or np.random.default_rng(0))
    if pairs == "deblur":
        return blur(rgb, float(cfg.get("blur_sigma", 2.0)))
    raise ValueError(f"unknown pairs {pairs!r}")


# ---- tensors ----------------------------------------------------------------------------------
def picture_to_tensor(picture: np.ndarray) -> torch.Tensor:
    """uint8 [H, W] or [H, W, C] -> float [C, H, W] in [-1, 1]."""
    p = picture[:, :, None] if picture.ndim == 2 else picture
    return torch.from_numpy(np.ascontiguousarray(p)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def tensor_to_picture(t: torch.Tensor) -> np.ndarray:
    """float [C, H, W] in [-1, 1] -> uint8 [H, W, 3] (one channel repeated)."""
    a = ((t.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else np.ascontiguousarray(a[:, :, :3])


def encode_pair(pairs: str, a: np.ndarray, b: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pictures -> (input tensor, target tensor or None). Colorize: L* of B (of A without B) ->
    a*b* of B; else the pictures themselves."""
    if pairs == "colorize":
        if b is not None:
            lab = rgb_to_lab(b)
            L, ab = lab[:, :, 0], lab[:, :, 1:]
            return (torch.from_numpy(L / 50.0 - 1.0)[None].float(),
                    torch.from_numpy(np.ascontiguousarray(ab / AB_SCALE)).permute(2, 0, 1).float())
        L = rgb_to_lab(np.repeat(a[:, :, None], 3, 2) if a.ndim == 2 else a)[:, :, 0]
        return torch.from_numpy(L / 50.0 - 1.0)[None].float(), None
    return picture_to_tensor(a), (picture_to_tensor(b) if b is not None else None)


def decode_output(pairs: str, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """The model's output y [C, H, W] for input x [C, H, W] -> uint8 RGB [H, W, 3]."""
    if pairs == "colorize":
        L = (x[0].detach().float().cpu().numpy() + 1.0) * 50.0
        ab = y.detach().float().cpu().clamp(-1, 1).numpy().transpose(1, 2, 0) * AB_SCALE
        return lab_to_rgb(np.concatenate([L[:, :, None], ab], axis=2))
    return tensor_to_picture(y)


def input_picture(pairs: str, x: torch.Tensor) -> np.ndarray:
    """The input tensor as a picture to show: uint8 RGB [H, W, 3] (L* shown as gray)."""
    if pairs == "colorize":
        L = (x[0].detach().float().cpu().numpy() + 1.0) * 50.0
        return lab_to_rgb(np.stack([L, np.zeros_like(L), np.zeros_like(L)], axis=2))
    return tensor_to_picture(x)


def identity_output(pairs: str, a: np.ndarray) -> np.ndarray | None:
    """"Output = input" as an RGB picture, where that means something (None for labels and edges)."""
    if pairs in ("labels2photo", "edges2photo"):
        return None
    if pairs == "colorize":
        return input_picture(pairs, encode_pair(pairs, a, None)[0])
    return np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a


# ---- samples -----------------------------------------------------------------------------------
@dataclass
class PairSample:
    """One pair at the training scale: ``photo`` uint8 RGB [H, W, 3] (the target B), ``a`` the input
    picture, ``key`` a stable name (the image's path) for messages and per-image seeds."""

    key: str
    photo: np.ndarray
    a: np.ndarray
    class_map: np.ndarray | None = None


def _resize(picture: np.ndarray, short_side: int, nearest: bool = False) -> np.ndarray:
    h, w = picture.shape[:2]
    if min(h, w) == short_side:
        return picture
    s = short_side / min(h, w)
    size = (max(short_side, round(w * s)), max(short_side, round(h * s)))
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return cv2.resize(picture, size, interpolation=interp)


def palette_of(store: ProjectStore) -> tuple[list[int], np.ndarray]:
    """(category ids in class order, palette uint8 [C + 1, 3], black background) of a project."""
    cats = store.categories()
    pal = [(0, 0, 0)] + [tuple(int(c.color.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4)) for c in cats]
    return [c.id for c in cats], np.array(pal, np.uint8)


def load_pairs(store_path: str | Path, pairs: str, split: str | None, cfg: dict, short_side: int | None = None,
               folder: str | None = None, should_stop: Callable[[], None] | None = None,
               warn: Callable[[str], None] | None = None) -> list[PairSample]:
    """The pairs of a project split (or of the images of ``folder``: every tenth is "val"), each
    resized so its shorter side is ``short_side`` (None: as stored). BadInput naming the file for
    pairs that cannot be made: A and B of different sizes; no image with a target, a mask, a colour."""
    warn = warn or (lambda text: None)
    items: list[tuple[str, Path, list]] = []
    ids, palette = [], np.zeros((1, 3), np.uint8)
    if folder:
        if pairs in ("targets", "labels2photo"):
            raise BadInput(str(folder), "folder", f"pairs {pairs!r} come from a project (targets or masks), "
                           "not from a folder of images")
        files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_image_file(p))
        if not files:
            raise BadInput(str(folder), "folder", "no images found")
        for k, f in enumerate(files):
            if split is None or (split == "val") == (k % 10 == 9):
                items.append((str(f), f, []))
    else:
        store = ProjectStore(store_path, readonly=True)
        try:
            ids, palette = palette_of(store)
            anns = store.all_annotations(split=split) if pairs == "labels2photo" else {}
            for rec in store.images(split=split):
                items.append((rec.path, store.image_path(rec), anns.get(rec.id, [])))
        finally:
            store.close()
    out: list[PairSample] = []
    skipped: list[str] = []
    for key, path, image_anns in items:
        if should_stop is not None:
            should_stop()
        b: np.ndarray | None
        class_map = None
        if pairs == "targets":
            t = target_path(path)
            if not t.is_file():
                skipped.append(key)
                continue
            a, b = read_image_rgb(path), read_image_rgb(t)
            if a.shape != b.shape:
                raise BadInput(str(t), "size", f"the target is {b.shape[1]}x{b.shape[0]} px but its image {path.name} "
                               f"is {a.shape[1]}x{a.shape[0]} px; a pair must have one size")
        else:
            b = read_image_rgb(path)
            a = None
            if pairs == "labels2photo":
                objects = ground_truth_objects(image_anns, b.shape[0], b.shape[1], ids)
                if not objects:
                    skipped.append(key)
                    continue
                class_map, _ = rasterize_objects(objects, ids, b.shape[0], b.shape[1])
            if pairs == "colorize" and is_gray(b):
                skipped.append(key)
                continue
        if short_side:
            b = _resize(b, short_side)
            a = _resize(a, short_side) if a is not None else None
            class_map = _resize(class_map, short_side, nearest=True) if class_map is not None else None
        if a is None:
            rng = np.random.default_rng(image_seed(key))
            a = derive_input(pairs, b, cfg, class_map, palette, rng)
        out.append(PairSample(key, b, a, class_map))
    if skipped:
        why = {"targets": "no target file", "labels2photo": "no ground-truth masks",
               "colorize": "gray (no colour to learn)"}[pairs]
        warn(f"{len(skipped)} image(s) of split {split or 'all'} left out ({why}), e.g. {skipped[0]}")
        if not out:
            where = str(folder) if folder else str(store_path)
            first = skipped[0]
            if pairs == "targets":
                raise BadInput(str(target_path(Path(first))), "target", f"no image of split {split!r} has a target "
                               "(import pairs, or choose pairs that derive one)")
            raise BadInput(first if pairs == "colorize" else where, "image" if pairs == "colorize" else "pairs",
                           f"no image of split {split!r} can make {pairs} pairs: {why}")
    return out


class PairDataset(Dataset):
    """Training pairs as tensors (input [Ca, s, s], target [Cb, s, s]) with random crops of side
    ``size``, horizontal flips and, for ``denoise``, fresh noise at every draw. ``epoch_size``
    repeats a small set so an epoch has enough steps between validations.

    The draws of item ``index`` come from (seed, epoch, index) alone (``set_epoch``, called by the
    training loader): new in every epoch and for every repeat of a pair, and the same after a
    resume or on another rank."""

    def __init__(self, samples: list[PairSample], pairs: str, cfg: dict, size: int, epoch_size: int = 0,
                 seed: int = 0) -> None:
        self.samples, self.pairs, self.cfg, self.size = samples, pairs, cfg, size
        self.length = max(len(samples), int(epoch_size or 0))
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, int(index)])
        s = self.samples[index % len(self.samples)]
        h, w = s.photo.shape[:2]
        y0 = int(rng.integers(0, h - self.size + 1)) if h > self.size else 0
        x0 = int(rng.integers(0, w - self.size + 1)) if w > self.size else 0
        crop = (slice(y0, y0 + self.size), slice(x0, x0 + self.size))
        b = s.photo[crop]
        a = add_noise(b, float(self.cfg.get("noise_sigma", 25.0)), rng) if self.pairs == "denoise" else s.a[crop]
        if self.cfg.get("hflip", True) and rng.random() < 0.5:
            a, b = a[:, ::-1], b[:, ::-1]
        x, y = encode_pair(self.pairs, np.ascontiguousarray(a), np.ascontiguousarray(b))
        return x, y


def center_crop(sample: PairSample, size: int) -> PairSample:
    h, w = sample.photo.shape[:2]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    crop = (slice(y0, y0 + size), slice(x0, x0 + size))
    cm = sample.class_map[crop] if sample.class_map is not None else None
    return PairSample(sample.key, sample.photo[crop], sample.a[crop], cm)

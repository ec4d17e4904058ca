"""Lesson 7, semantic segmentation: what a pixel classifier costs in three designs, how skip
connections refine a stride-32 prediction, and the U-Net border weight map on the teacher's mask.

- Cost: a sliding-window classifier runs a network once per pixel; an FCN runs once and predicts
  at stride 32; an encoder-decoder runs once and predicts at full resolution. The times are
  measured on this machine (one window, one FCN pass, one U-Net pass); the sliding-window total
  is one window's time multiplied by the number of pixels, said as such.
- FCN-32s against skips (Long et al. 2015): 1x1 score layers on the shipped Lite0's features at
  strides 32, 16 and 8 (c5, c4, c3), fitted to the teacher's mask of this one image; FCN-16s and
  FCN-8s add the finer score maps to the upsampled coarser one. Fitting on one image shows what
  resolution each design can express, not how it generalises; the lesson says so.
- The mask: the objects drawn with masks or polygons; a box alone becomes a mask by GrabCut; an
  image without any shape gets GrabCut on a central box.
- The weight map is ``engine.viz.weight_map.unet_weight_map`` (w0 = 10, sigma = 5 px).
"""
from __future__ import annotations

import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.jobs import Progress
from engine.lessons.base import Lesson
from engine.lessons.scene import Image, Panel, Rect, Scene, Step, Text, blend, colormap
from engine.viz.weight_map import SIGMA, W0, unet_weight_map

WINDOW = 96  # the sliding-window classifier's patch (pixels)
FIT_STEPS = 150


def lesson_mask(data) -> tuple[np.ndarray, list[str]]:
    """(instance map int32 [H, W] with 1..K, notes): the teacher's shapes as objects."""
    h, w = data.size
    notes = []
    inst = np.zeros((h, w), np.int32) if data.instances is None else data.instances.copy()
    boxes = data.boxes
    from engine.assist.grabcut import grabcut_mask

    cut = 0
    for k, b in enumerate(boxes, start=1):
        if not (inst == k).any():
            m = grabcut_mask(data.image, b).astype(bool)
            inst[m & (inst == 0)] = k
            cut += 1
    if cut:
        notes.append(f"{cut} box(es) without a mask: GrabCut made their masks.")
    if not inst.any():
        m = grabcut_mask(data.image, (w * 0.1, h * 0.1, w * 0.9, h * 0.9)).astype(bool)
        inst[m] = 1
        notes.append("No shape on this image: GrabCut on a central box made the mask.")
    return inst, notes


def fit_fcn(features: dict[str, torch.Tensor], mask: np.ndarray, levels: tuple[str, ...], steps: int = FIT_STEPS,
            seed: int = 0) -> tuple[np.ndarray, float]:
    """Fit FCN score layers (one 1x1 conv per level, coarsest first, each added to the 2x-upsampled
    sum of the coarser ones) to a binary mask. Returns (foreground probability [H, W], IoU with the
    mask at 0.5)."""
    torch.manual_seed(seed)
    h, w = mask.shape
    target = torch.from_numpy(cv2.resize(mask.astype(np.float32), (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    heads = nn.ModuleList(nn.Conv2d(features[name].shape[1], 1, 1) for name in levels)
    opt = torch.optim.Adam(heads.parameters(), lr=0.05)
    feats = [features[name].detach() for name in levels]

    def predict(size) -> torch.Tensor:
        score = heads[0](feats[0])
        for head, f in zip(heads[1:], feats[1:]):
            score = F.interpolate(score, size=f.shape[-2:], mode="bilinear", align_corners=False) + head(f)
        return F.interpolate(score, size=size, mode="bilinear", align_corners=False)[0, 0]

    for _ in range(steps):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(predict(target.shape), target)
        loss.backward()
        opt.step()
    with torch.no_grad():
        prob = torch.sigmoid(predict((h, w))).numpy()
    pred, truth = prob > 0.5, mask > 0
    union = (pred | truth).sum()
    return prob, float((pred & truth).sum() / union) if union else 1.0


def duration(seconds: float) -> str:
    """A duration a class reads at a glance: "0.42 s", "12 min", "71 h"."""
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def _timed(fn, repeats: int = 2) -> float:
    """Seconds of one call: the best of ``repeats`` after a warm-up call (first calls pay one-off costs)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


class SegmentationLesson(Lesson):
    key = "semantic_segmentation"
    title = "Semantic segmentation: windows, FCN, encoder-decoder"
    topic = "Segmentation"
    needs = "unet"

    def build(self, token):
        from engine.models.backbones import efficientnet_lite0, preprocess
        from engine.models.unet import build_unet

        img = self.input.image
        h, w = img.shape[:2]
        world = (0, 0, w, h)
        yield Progress(0, 6, "the mask")
        inst, notes = lesson_mask(self.input)
        self.notes += notes
        mask = (inst > 0).astype(np.uint8)
        self.mask = mask
        lite0 = efficientnet_lite0(pretrained=True)
        x = preprocess(torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255.0)
        yield Progress(1, 6, "timing the three designs")
        with torch.no_grad():
            patch = x[:, :, :WINDOW, :WINDOW]
            t_window = _timed(lambda: lite0.features(patch), 3)
            t_fcn = _timed(lambda: lite0.features(x))
            features = lite0.features(x)
            unet = build_unet({"pretrained": False}, 1).eval()
            t_unet = _timed(lambda: unet(torch.zeros(1, 3, h, w)))
        self.times = {"sliding window (every pixel)": t_window * h * w, "FCN (stride 32)": t_fcn,
                      "encoder-decoder (U-Net)": t_unet}
        steps = [self._cost_step(world, t_window)]
        token.raise_if_cancelled()
        self.fits = {}
        for i, (name, levels) in enumerate((("FCN-32s", ("c5",)), ("FCN-16s", ("c5", "c4")),
                                            ("FCN-8s", ("c5", "c4", "c3")))):
            yield Progress(2 + i, 6, f"fitting {name} to your mask")
            token.raise_if_cancelled()
            self.fits[name] = fit_fcn(features, mask, levels)
        for name, (prob, score) in self.fits.items():
            stride = {"FCN-32s": 32, "FCN-16s": 16, "FCN-8s": 8}[name]
            edge = cv2.Canny(mask * 255, 50, 150) > 0
            shown = blend(img, colormap(prob, 0, 1), 0.55)
            shown[edge] = (255, 255, 255)
            steps.append(Step(
                f"{name}: scores from stride {stride} upsampled to the image"
                + ("" if stride == 32 else " after adding the finer level's scores (the skip)")
                + f"; IoU with your mask {score:.2f} (fitted to this image only: resolution, not generalisation).",
                Scene([Panel(f"{name}: foreground probability", world, [Image(shown, world)]),
                       Panel("your mask", world, [Image(blend(img, np.dstack([mask * 255] * 3), 0.5), world)])],
                      legend=[("#fde725", "foreground"), ("#440154", "background"), ("#ffffff", "mask edge")])))
        if self.model_path:
            yield Progress(5, 6, "the U-Net checkpoint")
            steps.append(self._unet_step(world))
        steps += self._weight_steps(inst, world)
        self.steps = steps

    def _cost_step(self, world, t_window: float) -> Step:
        img = self.input.image
        h, w = img.shape[:2]
        cx, cy = w / 2, h / 2
        items = [Image(img, world, True), Rect((cx - WINDOW / 2, cy - WINDOW / 2, cx + WINDOW / 2, cy + WINDOW / 2),
                                               "#ffd600", 3, label=f"one window: {1000 * t_window:.0f} ms"),
                 Rect((cx - 1, cy - 1, cx + 1, cy + 1), "#ff5252", 3)]
        for gx in range(0, w, 32):
            items.append(Rect((gx, 0, gx, h), "#40c4ff66", 1))
        for gy in range(0, h, 32):
            items.append(Rect((0, gy, w, gy), "#40c4ff66", 1))
        names = list(self.times)
        bars = Panel("seconds for one image (log10)", (-0.5, -3, len(names) - 0.5, 6.5), keep_aspect=False, y_up=True,
                     axes=True, ylabel="log10(seconds)", xticks=[(i, n.split(" (")[0]) for i, n in enumerate(names)])
        colours = ("#ff5252", "#40c4ff", "#00e676")
        for i, n in enumerate(names):
            v = np.log10(max(self.times[n], 1e-3))
            bars.add(Rect((i - 0.3, -3, i + 0.3, v), colours[i], 0, fill=colours[i]),
                     Text(i, v + 0.15, duration(self.times[n]), "#ffffff", 13, "bc", bold=True))
        t = self.times
        return Step(
            f"Classifying every pixel from its own {WINDOW}-px window needs {h * w} network passes: "
            f"~{duration(t['sliding window (every pixel)'])} ({h * w} × one window). An FCN shares the work: one "
            f"pass, {duration(t['FCN (stride 32)'])}, one prediction per 32-px cell (blue grid). An encoder-decoder "
            f"(untrained U-Net here, for the time) answers at full resolution in "
            f"{duration(t['encoder-decoder (U-Net)'])}. Times measured now, on this machine.",
            Scene([Panel("a window per pixel, or one pass", world, items), bars]))

    def _unet_step(self, world) -> Step:
        from engine.infer.unet_predictor import UNetPredictor

        img = self.input.image
        try:
            predictor = UNetPredictor(self.model_path, "cpu")
            classes = predictor.class_map(img)
        except Exception as exc:  # noqa: BLE001 - a bad checkpoint is said, the lesson goes on
            self.notes.append(f"U-Net not shown: {type(exc).__name__}: {exc}")
            return Step(f"The U-Net checkpoint could not be used: {exc}", Scene([]))
        palette = np.array([[0, 0, 0]] + [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                                          [245, 130, 48], [145, 30, 180]] * 40, np.uint8)
        shown = blend(img, palette[classes], 0.5)
        names = ", ".join(predictor.classes)
        return Step(f"The project's U-Net ({names}) on your image: an encoder-decoder's full-resolution answer.",
                    Scene([Panel("U-Net argmax", world, [Image(shown, world)])]))

    def _weight_steps(self, inst: np.ndarray, world) -> list[Step]:
        img = self.input.image
        classes = (inst > 0).astype(np.int32)
        weights = unet_weight_map(classes, inst)
        base = unet_weight_map(classes, inst, w0=0.0)
        border = weights - base
        self.weights = weights
        k = len(np.unique(inst[inst > 0]))
        colours = np.random.default_rng(3).integers(60, 255, (int(inst.max()) + 1, 3)).astype(np.uint8)
        colours[0] = 0
        steps = [Step(f"Your mask as {k} object(s): the U-Net paper weighs each pixel's loss by class balance plus "
                      f"w0·exp(−(d1 + d2)² / 2σ²) (w0 = {W0:g}, σ = {SIGMA:g} px), d1 and d2 the distances to the "
                      "nearest and second-nearest object.",
                      Scene([Panel("objects", world, [Image(blend(img, colours[inst], 0.6), world)]),
                             Panel("class-balance weights w_c", world,
                                   [Image(colormap(base), world),
                                    Text(6, 6, f"{base.min():.2f} … {base.max():.2f}", size=11, plate=True)])]))]
        if k >= 2:
            caption = (f"The border term: up to {border.max():.1f} in the thin background gaps between touching "
                       "objects, which is what teaches the network to keep them apart.")
        else:
            caption = ("One object only: no gap between objects, so the border term is 0 everywhere; draw two "
                       "touching objects (the coins photo has six) to see it.")
        border_rgb = colormap(border, 0, max(float(border.max()), 1e-6))
        steps.append(Step(caption, Scene([Panel("border term", world, [Image(border_rgb, world)]),
                                          Panel(f"weight map (max {weights.max():.1f})", world,
                                                [Image(colormap(weights), world)])])))
        return steps

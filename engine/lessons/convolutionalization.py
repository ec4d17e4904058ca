"""Lesson 2, from classifier to heatmap: the fully connected layer is a 1x1 convolution.

A classifier trained at 224 x 224 ends with global pooling of a 7 x 7 map and a fully connected
layer. Written as a 7 x 7 average pool with stride 1 followed by a 1 x 1 convolution holding the
FC weights, the same network accepts any input size and returns one prediction per 224-pixel
window at a stride of 32 pixels: a class heatmap, computed once for all windows.

The shipped EfficientNet-Lite0's last map has 1280 channels (the material's network has 1024):
at 224 x 224 the pooled map is 1 x 1 x 1280 and the heatmap 1 x 1 x 1000; at 256 x 288 it is
2 x 3 x 1000.
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
from engine.lessons.scene import Dot, Image, Panel, Rect, Scene, Step, Text, colormap

TRAIN_SIZE = 224
POOL = TRAIN_SIZE // 32  # the 7 x 7 map the classifier pooled at training time


def imagenet_names() -> list[str]:
    """The 1000 ImageNet class names (they ship with torchvision; nothing is downloaded)."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)


def fc_as_conv(fc: nn.Linear) -> nn.Conv2d:
    """The 1 x 1 convolution computing ``fc`` at every position of a map: same weights, reshaped
    [out, in] -> [out, in, 1, 1]."""
    conv = nn.Conv2d(fc.in_features, fc.out_features, 1, bias=fc.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(fc.weight[:, :, None, None])
        if fc.bias is not None:
            conv.bias.copy_(fc.bias)
    return conv


class FullyConvolutionalLite0(nn.Module):
    """EfficientNet-Lite0 with its classifier made convolutional.

    forward(x [N, 3, H, W] normalised) -> logits [N, 1000, h, w] with h = ceil(H/32) - 6,
    w = ceil(W/32) - 6: one prediction per 224 x 224 window, windows 32 pixels apart.
    ``shapes`` holds the shape after each stage of the last call, for the lesson's printout.
    """

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model.eval()
        self.fc_conv = fc_as_conv(model._fc).eval()
        self.shapes: list[tuple[str, tuple[int, ...]]] = []

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        self.shapes = [("input", tuple(x.shape[1:]))]
        c5 = m.features(x)["c5"]
        self.shapes.append(("last block (c5)", tuple(c5.shape[1:])))
        head = F.relu6(m._bn1(m._conv_head(c5)))
        self.shapes.append(("1×1 head conv", tuple(head.shape[1:])))
        pooled = F.avg_pool2d(head, POOL, stride=1)
        self.shapes.append((f"{POOL}×{POOL} average pool, stride 1", tuple(pooled.shape[1:])))
        out = self.fc_conv(pooled)
        self.shapes.append(("FC as 1×1 conv", tuple(out.shape[1:])))
        return out


def window_boxes(map_hw: tuple[int, int], image_hw: tuple[int, int], input_hw: tuple[int, int]) -> np.ndarray:
    """The 224-pixel window of each output cell, in image pixels: float [h*w, 4] xyxy (row-major).
    ``input_hw`` is the size the network saw, ``image_hw`` the size drawn."""
    sy, sx = image_hw[0] / input_hw[0], image_hw[1] / input_hw[1]
    out = []
    for r in range(map_hw[0]):
        for c in range(map_hw[1]):
            out.append((c * 32 * sx, r * 32 * sy, (c * 32 + TRAIN_SIZE) * sx, (r * 32 + TRAIN_SIZE) * sy))
    return np.array(out, np.float32).reshape(-1, 4)


def _tensor(image: np.ndarray, size_hw: tuple[int, int]) -> torch.Tensor:
    from engine.models.backbones import preprocess

    resized = cv2.resize(image, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_AREA)
    return preprocess(torch.from_numpy(resized).permute(2, 0, 1).float()[None] / 255.0)


def _shape(s: tuple[int, ...]) -> str:
    c, *hw = s
    return "×".join(str(v) for v in hw) + f"×{c}"


class ConvolutionalizationLesson(Lesson):
    key = "convolutionalization"
    title = "From classifier to heatmap"
    topic = "Classification"
    needs = "lite0"
    needs_optional = False
    HEATMAP_SIDE = 640  # long side the heatmap network sees: 14 x 8 windows on a 3:2 photo

    def build(self, token) -> None:
        from engine.models.backbones import efficientnet_lite0

        names = imagenet_names()
        net = FullyConvolutionalLite0(efficientnet_lite0(pretrained=True))
        img = self.input.image
        h, w = img.shape[:2]
        steps = []
        # 1. the classifier as trained
        x224 = _tensor(img, (TRAIN_SIZE, TRAIN_SIZE))
        with torch.no_grad():
            feats = net.model.features(x224)["c5"]
            head = F.relu6(net.model._bn1(net.model._conv_head(feats)))
            pooled = head.mean(dim=(2, 3))
            logits_fc = net.model._fc(pooled)
        probs = logits_fc.softmax(1)[0]
        top = torch.topk(probs, 5)
        self.top_class = int(top.indices[0])
        ranking = "\n".join(f"{float(p):.2f}  {names[int(i)]}" for p, i in zip(top.values, top.indices))
        walk = ("3×224×224 → blocks → 7×7×320 → head 7×7×1280\n→ global average pool 1×1×1280 "
                "→ FC 1280→1000 → softmax")
        steps.append(Step(
            f"The classifier as trained: your image squeezed to 224×224, one answer for the whole image: "
            f"{names[self.top_class]} ({float(top.values[0]):.2f}).",
            Scene([Panel("input 224×224", (0, 0, TRAIN_SIZE, TRAIN_SIZE),
                         [Image(cv2.resize(img, (TRAIN_SIZE, TRAIN_SIZE), interpolation=cv2.INTER_AREA),
                                (0, 0, TRAIN_SIZE, TRAIN_SIZE), True)]),
                   _text_panel("top 5 classes", ranking + "\n\n" + walk)])))
        yield Progress(1, 4, "the FC layer as a 1×1 convolution")
        # 2. FC == 1x1 conv at 224
        logits_conv = net(x224)
        diff = float((logits_conv[0, :, 0, 0] - logits_fc[0]).abs().max())
        self.fc_difference = diff
        shapes224 = "\n".join(f"{n:<34} {_shape(s)}" for n, s in net.shapes)
        steps.append(Step(
            "The FC layer's 1000×1280 weights reshaped to 1000 filters of 1×1×1280: a 1×1 convolution. "
            f"On the 1×1×1280 pooled map it gives the same 1000 logits (largest difference {diff:.1e}).",
            Scene([_text_panel("shapes at 224×224 (H×W×C)", shapes224),
                   _text_panel("the same numbers", f"FC:        {float(logits_fc[0, self.top_class]):.4f}\n"
                                                   f"1×1 conv:  {float(logits_conv[0, self.top_class]):.4f}\n"
                                                   f"class {self.top_class}: {names[self.top_class]}")])))
        # 3. a bigger input: 2 x 3 predictions
        x_big = _tensor(img, (256, 288))
        out = net(x_big)
        self.big_shapes = list(net.shapes)
        p_big = out.softmax(1)[0]
        boxes = window_boxes(out.shape[-2:], (h, w), (256, 288))
        items: list = [Image(img, (0, 0, w, h), True)]
        colours = ("#ffd600", "#40c4ff", "#00e676", "#ff5252", "#e040fb", "#ff9100")
        rows, cols = out.shape[-2:]
        grid = Panel("the 2×3 answers (top class per window)", (0, 0, cols, rows + 0.1))
        for k, b in enumerate(boxes):
            r, c = divmod(k, cols)
            cls = int(p_big[:, r, c].argmax())
            colour = colours[k % 6]
            items += [Rect(tuple(b), colour, 2.5),
                      Dot(float(b[0] + b[2]) / 2, float(b[1] + b[3]) / 2, colour, 9, str(k + 1))]
            grid.add(Rect((c + 0.03, r + 0.03, c + 0.97, r + 0.97), colour, 3, fill="#2a2d33"),
                     Text(c + 0.5, r + 0.5, f"{k + 1}\n{names[cls]}\n{float(p_big[cls, r, c]):.2f}", "#ffffff", 12,
                          "c", fit=0.9))
        steps.append(Step(
            "A bigger input, 256×288: the pooled map is 2×3×1280 and the 1×1 convolution gives 2×3×1000: six "
            "predictions, one per 224-pixel window (centres numbered), 32 pixels apart, computed in one pass.",
            Scene([Panel("six windows (shown on your image)", (0, 0, w, h), items), grid])))
        shapes_big = "\n".join(f"{n:<34} {_shape(s)}" for n, s in net.shapes)
        steps.append(Step(
            "The shapes at 256×288: the 7×7 pool at stride 1 leaves 2×3 positions of 1280 values; the FC weights "
            "as a 1×1 convolution turn each into 1000 class scores.",
            Scene([_text_panel("shapes at 256×288 (H×W×C)", shapes_big)])))
        yield Progress(2, 4, "the heatmap on the whole image")
        # 4-5. the heatmap on a large image
        scale = self.HEATMAP_SIDE / max(h, w)
        size = (max(TRAIN_SIZE, round(h * scale)), max(TRAIN_SIZE, round(w * scale)))
        t0 = time.perf_counter()
        heat = net(_tensor(img, size)).softmax(1)[0]
        self.heatmap_seconds = time.perf_counter() - t0
        self.heatmap_shape = tuple(heat.shape)
        global_top = torch.topk(heat.mean(dim=(1, 2)), 3).indices.tolist()
        mh, mw = heat.shape[1:]
        fy, fx = h / size[0], w / size[1]
        # each cell drawn around its window's centre (windows are 224 px, 32 px apart)
        cells = ((TRAIN_SIZE / 2 - 16) * fx, (TRAIN_SIZE / 2 - 16) * fy,
                 ((mw - 1) * 32 + TRAIN_SIZE / 2 + 16) * fx, ((mh - 1) * 32 + TRAIN_SIZE / 2 + 16) * fy)
        for rank, cls in enumerate(global_top):
            prob = heat[cls].numpy()
            peak = max(float(prob.max()), 1e-6)
            steps.append(Step(
                f"Input {size[0]}×{size[1]}: a {heat.shape[1]}×{heat.shape[2]}×1000 map in "
                f"{self.heatmap_seconds:.2f} s. Probability of \"{names[cls]}\" per window "
                f"(peak {prob.max():.2f}).",
                Scene([Panel(f"\"{names[cls]}\" heatmap over your image", (0, 0, w, h),
                             [Image(img, (0, 0, w, h), True),
                              Image(np.dstack([colormap(prob, 0, peak), np.full(prob.shape, 150, np.uint8)]), cells),
                              Rect(cells, "#ffffff", 1.5, dashed=True),
                              Text(6, 6, f"window centres; 0 (purple) to {peak:.2f} (yellow)", size=11, plate=True)]),
                       Panel(f"the {mh}×{mw} map itself", (0, 0, mw, mh),
                             [Image(colormap(prob, 0, peak), (0, 0, mw, mh))])])))
            if rank == 0:
                self.heatmap_class = cls
        self.steps = steps


def _text_panel(title: str, text: str) -> Panel:
    lines = text.split("\n")
    width = max(len(t) for t in lines) * 0.62 + 2
    return Panel(title, (0, 0, width, len(lines) * 1.6 + 1),
                 [Text(1, 0.8, text, "#e8eaed", 12, "tl", fit=width - 2, mono=True)], keep_aspect=True)

"""Lesson 3, localisation as regression: IoU, the box regression targets both ways, anchors.

Targets follow R-CNN's parameterisation (torchvision's BoxCoder with weights 1, 1, 1, 1):
dx = (gx - px) / pw, dy = (gy - py) / ph, dw = log(gw / pw), dh = log(gh / ph) with centres
(x, y) and sizes (w, h) of the proposal p and the ground truth g. So (0.25, 0, 0, 0) says the
ground truth is a quarter of the proposal's width to the right: the proposal is a quarter-width
too far left. Anchors follow Faster R-CNN: sizes x aspect ratios centred on every cell of the
feature map, positive at IoU >= 0.7 with a ground-truth box (or the best anchor of a box),
negative below 0.3, ignored between.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.ops import box_iou

from engine.lessons.base import Lesson
from engine.lessons.scene import Image, Line, Panel, Rect, Scene, Step, Text

STRIDE = 16
SIZES = (32, 64, 128)
RATIOS = (0.5, 1.0, 2.0)  # height / width, as torchvision's AnchorGenerator
POSITIVE_IOU = 0.7
NEGATIVE_IOU = 0.3


def iou(a, b) -> float:
    """IoU of two xyxy boxes (torchvision.ops.box_iou)."""
    return float(box_iou(torch.tensor([a], dtype=torch.float32), torch.tensor([b], dtype=torch.float32))[0, 0])


def encode(proposal, truth) -> tuple[float, float, float, float]:
    """(dx, dy, dw, dh) that move ``proposal`` onto ``truth`` (both xyxy)."""
    px, py, pw, ph = _cxcywh(proposal)
    gx, gy, gw, gh = _cxcywh(truth)
    return (gx - px) / pw, (gy - py) / ph, math.log(gw / pw), math.log(gh / ph)


def decode(proposal, deltas) -> tuple[float, float, float, float]:
    """The box (xyxy) that targets ``deltas`` describe relative to ``proposal``."""
    px, py, pw, ph = _cxcywh(proposal)
    dx, dy, dw, dh = deltas
    cx, cy, w, h = px + dx * pw, py + dy * ph, pw * math.exp(dw), ph * math.exp(dh)
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _cxcywh(b) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in b)
    return (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)


def cell_anchors(sizes=SIZES, ratios=RATIOS) -> np.ndarray:
    """Anchors centred on (0, 0): float [len(ratios) * len(sizes), 4] xyxy, in torchvision's order
    (ratio-major) and rounding, so they match its AnchorGenerator."""
    scales = torch.as_tensor(sizes, dtype=torch.float32)
    ar = torch.as_tensor(ratios, dtype=torch.float32)
    h_ratios = torch.sqrt(ar)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round().numpy()


def anchors_at(row: int, col: int, stride: int = STRIDE, sizes=SIZES, ratios=RATIOS) -> np.ndarray:
    """The anchors of feature cell (row, col): float [A, 4] xyxy image pixels (cell corner = shift,
    as torchvision places them)."""
    shift = np.array([col * stride, row * stride, col * stride, row * stride], np.float32)
    return cell_anchors(sizes, ratios) + shift


def all_anchors(image_hw: tuple[int, int], stride: int = STRIDE, sizes=SIZES, ratios=RATIOS) -> np.ndarray:
    """Every anchor of an image: float [rows * cols * A, 4] (row-major cells, then anchors)."""
    rows, cols = math.ceil(image_hw[0] / stride), math.ceil(image_hw[1] / stride)
    base = cell_anchors(sizes, ratios)
    ys, xs = np.meshgrid(np.arange(rows) * stride, np.arange(cols) * stride, indexing="ij")
    shifts = np.stack([xs, ys, xs, ys], -1).reshape(-1, 1, 4).astype(np.float32)
    return (shifts + base[None]).reshape(-1, 4)


def assign(anchors: np.ndarray, truths: np.ndarray, hi: float = POSITIVE_IOU, lo: float = NEGATIVE_IOU) -> np.ndarray:
    """Faster R-CNN's labels: int8 [A] with 1 positive (IoU >= hi, or the best anchor of a box),
    0 negative (best IoU < lo), -1 ignored."""
    anchors = np.asarray(anchors, np.float32).reshape(-1, 4)
    truths = np.asarray(truths, np.float32).reshape(-1, 4)
    labels = np.zeros(len(anchors), np.int8)
    if not len(truths) or not len(anchors):
        return labels
    ious = box_iou(torch.from_numpy(anchors), torch.from_numpy(truths)).numpy()  # [A, G]
    best = ious.max(axis=1)
    labels[(best >= lo) & (best < hi)] = -1
    labels[best >= hi] = 1
    # each box keeps its best anchors even below hi (ties included), as torchvision's Matcher does
    per_truth = ious.max(axis=0)
    for g in range(len(truths)):
        if per_truth[g] > 0:
            labels[ious[:, g] == per_truth[g]] = 1
    return labels


# -- the lesson ----------------------------------------------------------------------------------------
_HANDLE = 0.04  # fraction of the image's long side within which a corner is grabbed


class LocalisationLesson(Lesson):
    key = "localisation"
    title = "Localisation as regression: IoU, box targets, anchors"
    topic = "Detection"

    def build(self, token) -> None:
        h, w = self.input.size
        if len(self.input.boxes):
            g = [float(v) for v in self.input.boxes[0]]
        else:
            g = [w * 0.3, h * 0.25, w * 0.7, h * 0.75]
            self.notes.append("No box on this image: a box in the middle plays the ground truth.")
        self.truth = g
        gw, gh = g[2] - g[0], g[3] - g[1]
        p = [g[0] - 0.25 * gw, g[1] + 0.1 * gh, g[2] - 0.15 * gw, g[3] + 0.1 * gh]
        # inside the image, so that both boxes are seen whole
        self.proposal = [max(p[0], 0.0), max(p[1], 0.0), min(p[2], float(w)), min(p[3], float(h))]
        cx, cy = (g[0] + g[2]) / 2, (g[1] + g[3]) / 2
        self.cell = (int(min(cy // STRIDE, math.ceil(h / STRIDE) - 1)),
                     int(min(cx // STRIDE, math.ceil(w / STRIDE) - 1)))
        self._grab = None
        self.rebuild()

    # -- steps -------------------------------------------------------------------------------------
    def rebuild(self) -> None:
        img = self.input.image
        h, w = img.shape[:2]
        world = (0, 0, w, h)
        g, p = self.truth, self.proposal
        steps = []
        # 1. IoU
        value = iou(g, p)
        ix = (max(g[0], p[0]), max(g[1], p[1]), min(g[2], p[2]), min(g[3], p[3]))
        items = [Image(img, world, True), Rect(tuple(g), "#00e676", 3, label="A (ground truth)"),
                 Rect(tuple(p), "#40c4ff", 3, label="B")]
        if ix[2] > ix[0] and ix[3] > ix[1]:
            items.append(Rect(ix, "#ffd600", 0, fill="#ffd60077"))
        inter = max(ix[2] - ix[0], 0) * max(ix[3] - ix[1], 0)
        union = (g[2] - g[0]) * (g[3] - g[1]) + (p[2] - p[0]) * (p[3] - p[1]) - inter
        items.append(Text(8, h - 8, f"IoU = {inter:.0f} / {union:.0f} = {value:.2f}", "#ffd600", 14, "bl", plate=True,
                          bold=True))
        steps.append(Step(f"IoU = intersection / union = {value:.2f}. Drag a box or its corners: IoU 0.5 is a "
                          "detection in PASCAL VOC; 0.7 makes a positive anchor.",
                          Scene([Panel("drag the boxes", world, items)],
                                legend=[("#00e676", "A"), ("#40c4ff", "B"), ("#ffd600", "intersection")])))
        # 2. targets: proposal -> ground truth
        t = encode(p, g)
        self.targets = t
        arrow = [((p[0] + p[2]) / 2, (p[1] + p[3]) / 2), ((g[0] + g[2]) / 2, (g[1] + g[3]) / 2)]
        items = [Image(img, world, True), Rect(tuple(g), "#00e676", 3, label="ground truth G"),
                 Rect(tuple(p), "#40c4ff", 3, dashed=True, label="proposal P"),
                 Line(arrow, "#ffd600", 3, arrow=True)]
        formulas = ("dx = (Gx − Px) / Pw = {:+.3f}\ndy = (Gy − Py) / Ph = {:+.3f}\n"
                    "dw = log(Gw / Pw)   = {:+.3f}\ndh = log(Gh / Ph)   = {:+.3f}\n\n"
                    "(x, y) centre, (w, h) size").format(*t)
        text = Panel("the four targets", (0, 0, 30, 12), [Text(1, 1, formulas, "#ffffff", 13, mono=True, fit=28)])
        steps.append(Step(f"The targets a box head learns for this proposal: ({t[0]:+.2f}, {t[1]:+.2f}, {t[2]:+.2f}, "
                          f"{t[3]:+.2f}); offsets in proposal widths and heights, sizes as log-ratios.",
                          Scene([Panel("proposal → ground truth", world, items), text])))
        # 3. the other way: (0.25, 0, 0, 0)
        example = (0.25, 0.0, 0.0, 0.0)
        moved = decode(p, example)
        items = [Image(img, world, True), Rect(tuple(p), "#40c4ff", 3, dashed=True, label="proposal P"),
                 Rect(tuple(moved), "#ffd600", 3, label="P moved by (0.25, 0, 0, 0)"),
                 Line([((p[0] + p[2]) / 2, (p[1] + p[3]) / 2), ((moved[0] + moved[2]) / 2, (moved[1] + moved[3]) / 2)],
                      "#ffd600", 3, arrow=True),
                 Text(8, 8, f"P width {p[2] - p[0]:.0f} px → moved {moved[0] - p[0]:+.0f} px", "#ffffff", 13,
                      plate=True)]
        steps.append(Step("Back from targets to a box: (0.25, 0, 0, 0) moves the box a quarter of its width to the "
                          "right, same size. A proposal with this target was a quarter-width too far left.",
                          Scene([Panel("targets → box", world, items)])))
        # 4. anchors at a cell
        r, c = self.cell
        anchors = anchors_at(r, c)
        truths = self.input.boxes if len(self.input.boxes) else np.array([g], np.float32)
        ious = box_iou(torch.from_numpy(anchors), torch.from_numpy(np.asarray(truths, np.float32))).numpy().max(1)
        labels = assign(all_anchors((h, w)), truths).reshape(-1, len(anchors))[r * math.ceil(w / STRIDE) + c]
        colours = {1: "#00e676", 0: "#ff5252", -1: "#9e9e9e"}
        items = [Image(img, world, True)]
        items += [Rect(tuple(t_), "#ffffff", 1, dashed=True) for t_ in truths]
        for a, v, lab in zip(anchors, ious, labels):
            items.append(Rect(tuple(a), colours[int(lab)], 2.5 if lab == 1 else 1.5, dashed=lab == -1,
                              label=f"{v:.2f}"))
        items.append(Rect((c * STRIDE, r * STRIDE, (c + 1) * STRIDE, (r + 1) * STRIDE), "#ffd600", 2, fill="#ffd600aa"))
        n_pos, n_neg = int((labels == 1).sum()), int((labels == 0).sum())
        steps.append(Step(f"Cell ({r}, {c}) of the stride-{STRIDE} map: 3 sizes × 3 aspect ratios = 9 anchors, each "
                          f"with its best IoU: {n_pos} positive (≥ {POSITIVE_IOU}), "
                          f"{n_neg} negative (< {NEGATIVE_IOU}), "
                          f"{9 - n_pos - n_neg} ignored. Click another cell.",
                          Scene([Panel("anchors at the clicked cell", world, items)],
                                legend=[("#00e676", "positive ≥ 0.7"), ("#ff5252", "negative < 0.3"),
                                        ("#9e9e9e", "ignored"), ("#ffd600", "the cell")])))
        # 5. every anchor of the image
        every = all_anchors((h, w))
        lab_all = assign(every, truths)
        items = [Image(img, world, True)]
        items += [Rect(tuple(t_), "#ffffff", 2) for t_ in truths]
        items += [Rect(tuple(a), "#00e676", 1.5) for a in every[lab_all == 1][:300]]
        pos, neg, ign = int((lab_all == 1).sum()), int((lab_all == 0).sum()), int((lab_all == -1).sum())
        self.assignment_counts = (pos, neg, ign)
        items.append(Text(8, 8, f"{len(every)} anchors: {pos} positive, {neg} negative, {ign} ignored", "#ffffff", 13,
                          plate=True))
        steps.append(Step(f"Over the whole image, {len(every)} anchors: {pos} positive, {neg} negative "
                          f"({100 * neg / max(len(every), 1):.0f} %), {ign} ignored. Training samples 256 of them, "
                          "at most half positive.",
                          Scene([Panel("positive anchors of the image", world, items)],
                                legend=[("#00e676", "positive anchors"), ("#ffffff", "ground truth")])))
        self.steps = steps

    # -- interaction -----------------------------------------------------------------------------
    def press(self, step: int, panel: int, x: float, y: float) -> bool:
        if step == 3:
            h, w = self.input.size
            self.cell = (int(np.clip(y // STRIDE, 0, math.ceil(h / STRIDE) - 1)),
                         int(np.clip(x // STRIDE, 0, math.ceil(w / STRIDE) - 1)))
            self.rebuild()
            return True
        if step not in (0, 1):
            return False
        reach = _HANDLE * max(self.input.size)
        for name in ("proposal", "truth"):
            b = getattr(self, name)
            for ci, (cx, cy) in enumerate(((b[0], b[1]), (b[2], b[1]), (b[0], b[3]), (b[2], b[3]))):
                if abs(x - cx) < reach and abs(y - cy) < reach:
                    self._grab = (name, ci, x, y)
                    return False
        for name in ("proposal", "truth"):
            b = getattr(self, name)
            if b[0] <= x <= b[2] and b[1] <= y <= b[3]:
                self._grab = (name, None, x, y)
                return False
        return False

    def drag(self, step: int, panel: int, x: float, y: float) -> bool:
        if self._grab is None:
            return False
        name, corner, x0, y0 = self._grab
        b = list(getattr(self, name))
        if corner is None:
            b = [b[0] + x - x0, b[1] + y - y0, b[2] + x - x0, b[3] + y - y0]
        else:
            xi = 0 if corner in (0, 2) else 2
            yi = 1 if corner in (0, 1) else 3
            b[xi], b[yi] = x, y
            b = [min(b[0], b[2] - 2), min(b[1], b[3] - 2), max(b[2], b[0] + 2), max(b[3], b[1] + 2)]
        setattr(self, name, b)
        self._grab = (name, corner, x, y)
        self.rebuild()
        return True

    def release(self) -> None:
        self._grab = None

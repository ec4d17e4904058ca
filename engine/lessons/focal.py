"""Lesson 5, easy negatives and focal loss (Lin et al. 2017).

For a candidate with foreground probability p and label y, p_t = p when y = 1, else 1 - p.
Cross-entropy is -log(p_t); focal loss multiplies it by (1 - p_t)^gamma, so well-classified
candidates (p_t near 1: nearly all background) stop dominating the sum. gamma = 0 is exactly
cross-entropy; alpha (class balance) is left out here (alpha = None), as in the paper's gamma
study, so that torchvision's ``sigmoid_focal_loss(alpha=-1)`` computes the same numbers.
"""
from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou

from engine.jobs import Progress
from engine.lessons.base import Lesson
from engine.lessons.localisation import all_anchors
from engine.lessons.scene import Image, Line, Panel, Rect, Scene, Step, Text

GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
EASY = 0.9  # p_t above this: a well-classified ("easy") candidate
PRIOR = 0.01  # RetinaNet's initial foreground probability
MATCH_IOU = 0.5
ANCHOR_SIZES = (32, 64, 128, 256, 512)  # without a detector: anchors of every size at stride 16
CURVE_COLOURS = ("#40c4ff", "#00e676", "#ffd600", "#ff9100", "#ff5252", "#e040fb")


def focal_loss(p, y, gamma: float) -> np.ndarray:
    """Per-candidate loss: -(1 - p_t)^gamma * log(p_t), with p [N] probabilities and y [N] in {0, 1}."""
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    y = np.asarray(y, np.float64)
    pt = np.where(y > 0, p, 1 - p)
    return -((1 - pt) ** gamma) * np.log(pt)


def cross_entropy(p, y) -> np.ndarray:
    """Binary cross-entropy per candidate."""
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    y = np.asarray(y, np.float64)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def loss_shares(p, y, gamma: float, easy: float = EASY) -> dict[str, float]:
    """How the total loss splits: {"easy_negatives", "hard_negatives", "positives"} (shares summing
    to 1) and "total"."""
    p = np.asarray(p, np.float64)
    y = np.asarray(y)
    loss = focal_loss(p, y, gamma)
    total = float(loss.sum())
    neg = y == 0
    easy_neg = neg & ((1 - p) > easy)
    parts = {"easy_negatives": float(loss[easy_neg].sum()), "hard_negatives": float(loss[neg & ~easy_neg].sum()),
             "positives": float(loss[~neg].sum())}
    out = {k: (v / total if total > 0 else 0.0) for k, v in parts.items()}
    out["total"] = total
    return out


def label_candidates(boxes: np.ndarray, truths: np.ndarray, iou: float = MATCH_IOU) -> np.ndarray:
    """1 for candidates overlapping a ground-truth box by IoU >= iou, else 0: int [N]."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    truths = np.asarray(truths, np.float32).reshape(-1, 4)
    if not len(truths) or not len(boxes):
        return np.zeros(len(boxes), int)
    return (box_iou(torch.from_numpy(boxes), torch.from_numpy(truths)).numpy().max(1) >= iou).astype(int)


def detector_candidates(model_path: str, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [N, 4], foreground scores [N]) of a detector before its final NMS."""
    from engine.infer.detector_api import load_detector

    raw = load_detector(model_path, "cpu").raw_candidates(image)
    return np.asarray(raw.boxes, np.float32).reshape(-1, 4), np.asarray(raw.scores, np.float64)


class FocalLossLesson(Lesson):
    key = "focal_loss"
    title = "Easy negatives and focal loss"
    topic = "Detection"
    needs = "detector"

    def build(self, token):
        img = self.input.image
        h, w = img.shape[:2]
        truths = self.input.boxes
        source = None
        if self.model_path:
            yield Progress(0, 2, "running the detector")
            try:
                boxes, scores = detector_candidates(self.model_path, img)
                source = f"the detector's {len(boxes)} candidates before NMS"
            except Exception as exc:  # noqa: BLE001 - reported, then the lesson uses anchors
                self.notes.append(f"Detector not used: {type(exc).__name__}: {exc}")
        if source is None:
            boxes = all_anchors((h, w), sizes=ANCHOR_SIZES)
            scores = np.full(len(boxes), PRIOR)
            source = f"{len(boxes)} anchors at RetinaNet's starting probability p = {PRIOR}"
            if not self.model_path:
                self.notes.append("No detector chosen: the candidates are anchors at the prior probability 0.01.")
        if not len(truths):
            self.notes.append("No ground-truth box on this image: every candidate is background.")
        labels = label_candidates(boxes, truths)
        self.candidates = (boxes, scores, labels)
        self.shares = {g: loss_shares(scores, labels, g) for g in (0, 1, 2, 3, 4, 5)}
        steps = [self._curves_step()]
        world = (0, 0, w, h)
        pt = np.where(labels > 0, scores, 1 - scores)
        easy_neg = (labels == 0) & (pt > EASY)
        items = [Image(img, world, True)]
        order = np.random.default_rng(0).permutation(np.flatnonzero(easy_neg))[:200]
        items += [Rect(tuple(boxes[i]), "#9e9e9e", 1) for i in order]
        items += [Rect(tuple(boxes[i]), "#ff5252", 1.5) for i in np.flatnonzero((labels == 0) & ~easy_neg)[:200]]
        items += [Rect(tuple(boxes[i]), "#00e676", 2.5) for i in np.flatnonzero(labels > 0)[:100]]
        items += [Rect(tuple(t), "#ffffff", 3) for t in truths]
        n_easy, n_pos = int(easy_neg.sum()), int((labels > 0).sum())
        items.append(Text(8, 8, f"{len(boxes)} candidates: {n_pos} positive, {n_easy} easy negatives", "#ffffff", 14,
                          plate=True))
        steps.append(Step(f"Candidates on your image ({source}): {n_pos} overlap an object (IoU ≥ 0.5), "
                          f"{n_easy} are easy background (p_t > {EASY}).",
                          Scene([Panel("candidates", world, items)],
                                legend=[("#00e676", "positive"), ("#ff5252", "hard negative"),
                                        ("#9e9e9e", "easy negative (sample)"), ("#ffffff", "ground truth")])))
        for g in (0, 2, 5):
            s = self.shares[g]
            name = "cross-entropy" if g == 0 else f"focal loss γ = {g}"
            steps.append(Step(f"With {name}, easy negatives carry {100 * s['easy_negatives']:.1f} % of the loss, "
                              f"positives {100 * s['positives']:.1f} %.",
                              Scene([self._shares_panel(g)],
                                    legend=[("#9e9e9e", "easy negatives (p_t > 0.9)"), ("#ff5252", "hard negatives"),
                                            ("#00e676", "positives")])))
        self.steps = steps

    def _curves_step(self) -> Step:
        p = np.linspace(0.001, 1.0, 300)
        panel = Panel("loss of one candidate against p_t (probability of its true class)", (0, 0, 1, 5),
                      keep_aspect=False, y_up=True, axes=True, xlabel="p_t", ylabel="loss")
        for g, colour in zip(GAMMAS, CURVE_COLOURS):
            loss = focal_loss(p, np.ones_like(p), g)
            pts = [(float(a), float(min(b, 5.0))) for a, b in zip(p, loss)]
            panel.add(Line(pts, colour, 3))
        panel.add(Rect((EASY, 0, 1, 5), "#ffffff", 0, fill="#ffffff22"),
                  Text(0.99, 4.8, "easy\n(p_t > 0.9)", "#ffffff", 11, "tr"))
        ratio = focal_loss([0.9], [1], 2.0)[0] / cross_entropy([0.9], [1])[0]
        return Step(f"Cross-entropy (γ = 0) against focal loss for γ = 0.5, 1, 2, 5. At p_t = 0.9, γ = 2 keeps "
                    f"{ratio:.2f} of the cross-entropy (100× less); at p_t = 0.5 a quarter.",
                    Scene([panel], legend=[(c, f"γ = {g:g}") for g, c in zip(GAMMAS, CURVE_COLOURS)]))

    def _shares_panel(self, highlight: float) -> Panel:
        gammas = sorted(self.shares)
        panel = Panel("share of the total loss", (-0.6, 0, len(gammas) - 0.4, 1.08), keep_aspect=False, y_up=True,
                      axes=True, xlabel="γ (0 = cross-entropy)", ylabel="share",
                      xticks=[(i, f"γ = {g:g}") for i, g in enumerate(gammas)])
        colours = {"easy_negatives": "#9e9e9e", "hard_negatives": "#ff5252", "positives": "#00e676"}
        for i, g in enumerate(gammas):
            s = self.shares[g]
            base = 0.0
            for key in ("easy_negatives", "hard_negatives", "positives"):
                panel.add(Rect((i - 0.35, base, i + 0.35, base + s[key]), "#000000", 0, fill=colours[key]))
                base += s[key]
            panel.add(Text(i, 0.5, f"{100 * s['easy_negatives']:.0f}%", "#000000", 12, "c", bold=True))
            if g == highlight:
                panel.add(Rect((i - 0.42, 0, i + 0.42, 1.0), "#ffd600", 3))
        return panel


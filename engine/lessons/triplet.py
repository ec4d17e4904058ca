"""Lesson 8a, triplet loss geometry: anchor, positive, negative and the margin in a 2-D embedding
moved by hand, with the loss live (Schroff et al. 2015, FaceNet).

L = max(0, |a - p| - |a - n| + margin). Negatives nearer the anchor than the positive are hard,
those within the margin beyond it semi-hard, the rest easy (loss 0, no gradient). The three
pictures are crops of the teacher's image: the positive is the anchor's crop seen differently
(mirrored, darker), the negative another part of the image; the 2-D points stand for their
embeddings, which the teacher moves by hand.
"""
from __future__ import annotations

import cv2
import numpy as np

from engine.lessons.base import Lesson
from engine.lessons.scene import Dot, Image, Line, Panel, Scene, Step, Text

MARGIN = 0.5
LEARNING_RATE = 0.25
DESCENT_STEPS = 5
WORLD = (-2.0, -1.6, 2.0, 1.6)


def triplet_loss(a, p, n, margin: float = MARGIN) -> float:
    a, p, n = (np.asarray(v, np.float64) for v in (a, p, n))
    return float(max(0.0, np.linalg.norm(a - p) - np.linalg.norm(a - n) + margin))


def triplet_gradients(a, p, n, margin: float = MARGIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dL/da, dL/dp, dL/dn (zero when the loss is 0)."""
    a, p, n = (np.asarray(v, np.float64) for v in (a, p, n))
    if triplet_loss(a, p, n, margin) <= 0:
        z = np.zeros(2)
        return z, z.copy(), z.copy()
    up = (a - p) / max(np.linalg.norm(a - p), 1e-12)  # d|a - p| / da
    un = (a - n) / max(np.linalg.norm(a - n), 1e-12)
    return up - un, -up, un


def negative_kind(a, p, n, margin: float = MARGIN) -> str:
    """"hard", "semi-hard" or "easy"."""
    dp = float(np.linalg.norm(np.subtract(a, p)))
    dn = float(np.linalg.norm(np.subtract(a, n)))
    if dn < dp:
        return "hard"
    return "semi-hard" if dn < dp + margin else "easy"


def descend(a, p, n, steps: int, lr: float = LEARNING_RATE, margin: float = MARGIN) -> list[tuple]:
    """Positions after 0..steps plain gradient steps on all three points."""
    out = [tuple(np.asarray(v, np.float64) for v in (a, p, n))]
    for _ in range(steps):
        ga, gp, gn = triplet_gradients(*out[-1], margin)
        a_, p_, n_ = out[-1]
        out.append((a_ - lr * ga, p_ - lr * gp, n_ - lr * gn))
    return out


def _circle(c, r, n: int = 90) -> list[tuple[float, float]]:
    t = np.linspace(0, 2 * np.pi, n)
    return [(float(c[0] + r * np.cos(v)), float(c[1] + r * np.sin(v))) for v in t]


class TripletLesson(Lesson):
    key = "triplet"
    title = "Triplet loss geometry"
    topic = "Embeddings"

    def build(self, token) -> None:
        img = self.input.image
        h, w = img.shape[:2]
        if len(self.input.boxes):
            x1, y1, x2, y2 = (int(v) for v in self.input.boxes[0])
        else:
            x1, y1, x2, y2 = w // 3, h // 3, 2 * w // 3, 2 * h // 3
        crop = img[max(y1, 0):max(y2, y1 + 2), max(x1, 0):max(x2, x1 + 2)]
        side = 96
        anchor = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        positive = np.clip(anchor[:, ::-1].astype(np.float32) * 0.75, 0, 255).astype(np.uint8)
        # the negative: the corner of the image farthest from the anchor's box
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        nx = 0 if cx > w / 2 else w // 2
        ny = 0 if cy > h / 2 else h // 2
        negative = cv2.resize(img[ny:ny + h // 2, nx:nx + w // 2], (side, side), interpolation=cv2.INTER_AREA)
        self.thumbs = {"anchor": anchor, "positive": positive, "negative": negative}
        self.points = {"anchor": np.array([-0.6, 0.0]), "positive": np.array([0.6, 0.55]),
                       "negative": np.array([0.2, -0.45])}
        self._grab = None
        self.rebuild()

    def rebuild(self) -> None:
        a, p, n = (self.points[k] for k in ("anchor", "positive", "negative"))
        steps = []
        loss = triplet_loss(a, p, n)
        dp, dn = float(np.linalg.norm(a - p)), float(np.linalg.norm(a - n))
        kind = negative_kind(a, p, n)
        steps.append(Step(f"|a − p| = {dp:.2f}, |a − n| = {dn:.2f}, margin {MARGIN}: loss = max(0, {dp:.2f} − "
                          f"{dn:.2f} + {MARGIN}) = {loss:.2f}. Drag the points.",
                          Scene([self._panel(a, p, n, "drag anchor, positive, negative")])))
        panel = self._panel(a, p, n, f"this negative is {kind}", zones=True)
        steps.append(Step("Around the anchor: hard negatives are nearer than the positive (red), semi-hard ones within "
                          f"the margin beyond it (orange), easy ones farther (no loss, nothing learnt). This one is "
                          f"{kind}.", Scene([panel], legend=[("#ff5252", "hard"), ("#ff9100", "semi-hard"),
                                                             ("#9e9e9e", "easy: outside both circles")])))
        panel = self._panel(a, p, n, "the gradient moves each point", arrows=True)
        steps.append(Step("Minus the gradient: the positive is pulled towards the anchor, the negative pushed away, "
                          "the anchor both. With zero loss nothing moves.", Scene([panel])))
        path = descend(a, p, n, DESCENT_STEPS)
        for i in range(1, len(path)):
            before = triplet_loss(*path[i - 1])
            after = triplet_loss(*path[i])
            panel = self._panel(*path[i], f"after {i} gradient step(s), learning rate {LEARNING_RATE}", arrows=True,
                                trail=path[:i + 1])
            steps.append(Step(f"Gradient step {i}: loss {before:.2f} → {after:.2f}"
                              + (" (zero: the triplet is satisfied, it teaches nothing more)." if after == 0 else "."),
                              Scene([panel])))
        self.steps = steps

    def _panel(self, a, p, n, title, zones=False, arrows=False, trail=None) -> Panel:
        panel = Panel(title, WORLD, background="#1b1d21")
        dp = float(np.linalg.norm(a - p))
        if zones:
            panel.add(Line(_circle(a, dp), "#ff5252", 3), Line(_circle(a, dp + MARGIN), "#ff9100", 3, dashed=True))
        panel.add(Line([tuple(a), tuple(p)], "#00e676", 2), Line([tuple(a), tuple(n)], "#ff5252", 2))
        if trail:
            for k in range(3):
                panel.add(Line([tuple(t[k]) for t in trail], "#bdc1c6", 1, dashed=True))
        if arrows:
            ga, gp, gn = triplet_gradients(a, p, n)
            for pt, g in ((a, ga), (p, gp), (n, gn)):
                if np.linalg.norm(g) > 0:
                    panel.add(Line([tuple(pt), tuple(pt - 0.5 * g)], "#ffd600", 3, arrow=True))
        half = 0.28
        for name, pt, colour in (("anchor", a, "#40c4ff"), ("positive", p, "#00e676"), ("negative", n, "#ff5252")):
            thumb = (pt[0] - half, pt[1] - 2 * half - 0.08, pt[0] + half, pt[1] - 0.08)
            panel.add(Image(self.thumbs[name], thumb, True),
                      Dot(float(pt[0]), float(pt[1]), colour, 8, name))
        loss = triplet_loss(a, p, n)
        panel.add(Text(WORLD[0] + 0.08, WORLD[3] - 0.1, f"loss = {loss:.2f}", "#ffd600", 16, "bl", plate=True,
                       bold=True))
        return panel

    def press(self, step: int, panel: int, x: float, y: float) -> bool:
        best = min(self.points, key=lambda k: float(np.hypot(*(self.points[k] - (x, y)))))
        if float(np.hypot(*(self.points[best] - (x, y)))) < 0.3 and step < 3:
            self._grab = best
        return False

    def drag(self, step: int, panel: int, x: float, y: float) -> bool:
        if self._grab is None:
            return False
        self.points[self._grab] = np.clip([x, y], [WORLD[0], WORLD[1]], [WORLD[2], WORLD[3]]).astype(np.float64)
        self.rebuild()
        return True

    def release(self) -> None:
        self._grab = None

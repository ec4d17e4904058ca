"""Lesson 4, proposals: sliding windows, selective search and a region proposal network compared
by how many boxes they make and how many ground-truth objects they find (recall at IoU 0.5)."""
from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou

from engine.jobs import Progress
from engine.lessons.base import Lesson
from engine.lessons.scene import Image, Panel, Rect, Scene, Step, Text
from engine.lessons.selective_search import diversified_search, initial_regions

WINDOW_SIZES = (64, 128, 256, 512)
WINDOW_RATIOS = (0.5, 1.0, 2.0)
RECALL_IOU = 0.5
SHOWN = 150  # boxes drawn per method: more only hide the image


def sliding_windows(image_hw: tuple[int, int], sizes=WINDOW_SIZES, ratios=WINDOW_RATIOS) -> np.ndarray:
    """Every window of every size and aspect ratio (height / width), moved by half its width and
    height, inside the image: float [N, 4] xyxy."""
    h, w = image_hw
    out = []
    for s in sizes:
        for r in ratios:
            ww, hh = s / np.sqrt(r), s * np.sqrt(r)
            # windows start at 0 and step by half a window; the last ones are cut at the border
            xs = np.arange(0, max(w - ww / 2, 1), ww / 2)
            ys = np.arange(0, max(h - hh / 2, 1), hh / 2)
            gx, gy = np.meshgrid(xs, ys)
            b = np.stack([gx, gy, np.minimum(gx + ww, w), np.minimum(gy + hh, h)], -1).reshape(-1, 4)
            out.append(b)
    if not out:
        return np.zeros((0, 4), np.float32)
    return np.unique(np.concatenate(out).astype(np.float32), axis=0)


def best_matches(proposals: np.ndarray, truths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best IoU [G], index of the best proposal [G]) for each ground-truth box."""
    truths = np.asarray(truths, np.float32).reshape(-1, 4)
    proposals = np.asarray(proposals, np.float32).reshape(-1, 4)
    if not len(truths) or not len(proposals):
        return np.zeros(len(truths), np.float32), np.zeros(len(truths), int)
    ious = box_iou(torch.from_numpy(truths), torch.from_numpy(proposals)).numpy()
    return ious.max(1), ious.argmax(1)


def recall(proposals: np.ndarray, truths: np.ndarray, threshold: float = RECALL_IOU) -> float:
    """Share of ground-truth boxes that some proposal overlaps by IoU >= threshold (nan without boxes)."""
    best, _ = best_matches(proposals, truths)
    return float((best >= threshold).mean()) if len(best) else float("nan")


def rpn_proposals(model_path: str, image: np.ndarray) -> np.ndarray:
    """The proposals (after the RPN's own NMS, original pixels) of a Faster/Mask R-CNN checkpoint."""
    from engine.infer.detector_api import load_detector
    from engine.viz.rpn import RcnnInspection

    predictor = load_detector(model_path, "cpu")
    model = getattr(predictor, "model", None)
    if model is None or not hasattr(model, "rpn"):
        raise ValueError(f"{model_path}: not a two-stage detector (Faster/Mask R-CNN); it has no RPN")
    return RcnnInspection(model, image).proposals()["after_nms"]["boxes"]


def _random_colours(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(40, 255, (n, 3)).astype(np.uint8)


class ProposalsLesson(Lesson):
    key = "proposals"
    title = "Proposals: sliding windows, selective search, RPN"
    topic = "Detection"
    needs = "rcnn"

    def build(self, token):
        img = self.input.image
        h, w = img.shape[:2]
        truths = self.input.boxes
        if not len(truths):
            self.notes.append("No ground-truth box on this image: recall cannot be measured; draw boxes to see it.")
        methods: list[tuple[str, np.ndarray]] = [("sliding windows", sliding_windows((h, w)))]
        yield Progress(0, 3, "selective search")
        labels = initial_regions(img, 100)
        methods.append(("selective search", diversified_search(img)))
        token.raise_if_cancelled()
        rpn_error = None
        if self.model_path:
            yield Progress(1, 3, "the region proposal network")
            try:
                methods.append(("RPN", rpn_proposals(self.model_path, img)))
            except Exception as exc:  # noqa: BLE001 - a bad checkpoint is reported, the lesson goes on
                rpn_error = f"{type(exc).__name__}: {exc}"
                self.notes.append(f"RPN not shown: {rpn_error}")
        else:
            self.notes.append("No Faster R-CNN checkpoint in this project: the RPN step says how to get one.")
        self.results = {name: (len(b), recall(b, truths)) for name, b in methods}
        world = (0, 0, w, h)
        steps = []
        legend = [("#ffd600", "proposals (a sample)"), ("#00e676", "best proposal of each object"),
                  ("#ffffff", "ground truth")]
        for name, boxes in methods:
            if name == "selective search":
                seg = _random_colours(int(labels.max()) + 1)[labels]
                steps.append(Step(
                    f"Selective search starts from {int(labels.max()) + 1} regions of a graph-based segmentation "
                    "(Felzenszwalb); it then merges the two most similar neighbours (colour, texture, size, fill) "
                    "until one region is left.",
                    Scene([Panel("initial regions", world, [Image(seg, world)]),
                           Panel("your image", world, [Image(img, world, True)])])))
            steps.append(self._method_step(name, boxes, truths, world, legend))
        if not self.model_path or rpn_error:
            why = rpn_error or ("Train one with Models > Train & predict (family fasterrcnn), or pick a torchvision "
                                "COCO checkpoint, then choose it in the Model list above.")
            steps.append(Step("RPN proposals need a Faster R-CNN: none is chosen. " + why,
                              Scene([Panel("RPN: no detector", (0, 0, 40, 12),
                                           [Text(20, 6, "no Faster R-CNN checkpoint:\nchoose one in the Model list",
                                                 "#ffd600", 16, "c")])])))
        steps.append(self._summary_step())
        self.steps = steps

    def _method_step(self, name, boxes, truths, world, legend) -> Step:
        img = self.input.image
        count, rec = self.results[name]
        order = np.random.default_rng(1).permutation(len(boxes))[:SHOWN]
        items = [Image(img, world, True)]
        items += [Rect(tuple(boxes[i]), "#ffd600", 1.0) for i in order]
        items += [Rect(tuple(t), "#ffffff", 3) for t in truths]
        best, idx = best_matches(boxes, truths)
        for b, i in zip(best, idx):
            items.append(Rect(tuple(boxes[i]), "#00e676" if b >= RECALL_IOU else "#ff5252", 3, label=f"IoU {b:.2f}"))
        rec_text = "no ground truth" if np.isnan(rec) else f"recall@0.5 = {rec:.2f}"
        items.append(Text(8, 8, f"{name}: {count} boxes, {rec_text}", "#ffffff", 14, plate=True, bold=True))
        how = {"sliding windows": f"every {WINDOW_SIZES} px window × 3 aspect ratios, moved by half a window",
               "selective search": "every region formed while merging (RGB and HSV, k = 100 and 300)",
               "RPN": "the learned proposals of the chosen detector, after its NMS"}[name]
        return Step(f"{name.capitalize()}: {count} boxes ({how}); {rec_text}. {min(SHOWN, count)} drawn.",
                    Scene([Panel(name, world, items)], legend=legend))

    def _summary_step(self) -> Step:
        names = list(self.results)
        n = len(names)
        ticks = list(enumerate(names))
        counts = Panel("number of proposals (log10)", (-0.5, 0, n - 0.5, 4.8), keep_aspect=False, y_up=True, axes=True,
                       ylabel="log10(count)", xticks=ticks)
        recalls = Panel("recall of the ground truth at IoU 0.5", (-0.5, 0, n - 0.5, 1.25), keep_aspect=False,
                        y_up=True, axes=True, ylabel="recall", xticks=ticks)
        colours = ("#40c4ff", "#ffd600", "#00e676")
        for i, name in enumerate(names):
            count, rec = self.results[name]
            c = np.log10(max(count, 1))
            counts.add(Rect((i - 0.3, 0, i + 0.3, c), colours[i], 0, fill=colours[i]),
                       Text(i, c + 0.1, f"{count}", "#ffffff", 13, "bc", bold=True))
            r = 0.0 if np.isnan(rec) else rec
            recalls.add(Rect((i - 0.3, 0, i + 0.3, r), colours[i], 0, fill=colours[i]),
                        Text(i, r + 0.03, "n/a" if np.isnan(rec) else f"{rec:.2f}", "#ffffff", 13, "bc", bold=True))
        text = "; ".join(f"{k}: {v[0]} boxes, recall {'n/a' if np.isnan(v[1]) else f'{v[1]:.2f}'}"
                         for k, v in self.results.items())
        return Step(f"Side by side: {text}.", Scene([counts, recalls]))

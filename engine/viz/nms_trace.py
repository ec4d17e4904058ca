"""Non-maximum suppression, one decision at a time, for teaching (numpy only, no torch).

Greedy NMS: take the highest-scoring candidate still alive, keep it, and suppress every other
alive candidate (of the same class, unless class-agnostic) whose IoU with it is above the
threshold. ``iter_nms_steps`` yields one ``NmsStep`` per kept box so a view can step live;
``nms_trace`` collects them.

The arithmetic deliberately mirrors torchvision's CPU kernel so the kept set is identical to
``torchvision.ops.batched_nms`` / ``nms`` (tests check this):
- IoU in float32: area = (x2-x1)*(y2-y1), inter = max(0,w)*max(0,h), iou = inter/((a+b)-inter);
  a candidate is suppressed when float64(iou) > threshold (the kernel compares float to double).
  A zero-area pair gives 0/0 = NaN, which never suppresses.
- Per-class NMS uses torchvision's "coordinate trick" when it would (<= 4000 box coordinates):
  every box is shifted by label * (max coordinate + 1), so classes cannot overlap, and the IoU
  is computed on shifted boxes (this changes float rounding, so we must do the same).
  Above that size, torchvision runs NMS per class on the original boxes; so do we.
- Tie order: torchvision sorts scores with an unstable sort whose tie order depends on the CPU
  (SIMD sort). We break ties by input index (stable), which is deterministic everywhere; with
  distinct scores both agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Iterator

import numpy as np

__all__ = ["CandidateState", "NmsStep", "NmsTrace", "box_iou_one_to_many", "iter_nms_steps",
           "nms_trace"]

# torchvision switches from the coordinate trick to per-class loops above this many coordinates.
_COORDINATE_TRICK_MAX_NUMEL = 4000


class CandidateState(IntEnum):
    """State of one candidate box at some point of the trace."""

    PENDING = 0       # not decided yet
    KEPT = 1          # survived: it was the best alive box when its turn came
    SUPPRESSED = 2    # removed by a higher-scoring kept box
    BELOW_SCORE = 3   # removed before NMS by the score threshold


@dataclass(frozen=True)
class NmsStep:
    """One greedy decision.

    kept: input index of the box kept at this step; label: its class index; score: its score.
    considered: int64 [K] input indices of the alive candidates compared with it (same class,
        or all classes when class-agnostic), in score order.
    ious: float32 [K] IoU of each considered box with the kept box (NaN when both areas are 0).
    suppressed: int64 [S] subset of ``considered`` removed at this step (IoU > threshold).
    """

    kept: int
    label: int
    score: float
    considered: np.ndarray
    ious: np.ndarray
    suppressed: np.ndarray


@dataclass
class NmsTrace:
    """The whole run. ``keep``: int64 input indices of kept boxes, highest score first.

    ``order``: int64 processing order (indices passing the score threshold, score descending,
    ties by index). ``below_score``: indices dropped by the score threshold before NMS.
    """

    n: int
    steps: list[NmsStep]
    keep: np.ndarray
    order: np.ndarray
    below_score: np.ndarray
    iou_threshold: float
    score_threshold: float
    class_agnostic: bool
    suppressed_by: dict[int, int] = field(default_factory=dict)

    def states_after(self, n_steps: int) -> np.ndarray:
        """int8 [n] ``CandidateState`` of every input box after the first ``n_steps`` steps."""
        states = np.full(self.n, CandidateState.PENDING, dtype=np.int8)
        states[self.below_score] = CandidateState.BELOW_SCORE
        for step in self.steps[: max(0, n_steps)]:
            states[step.kept] = CandidateState.KEPT
            states[step.suppressed] = CandidateState.SUPPRESSED
        return states


def box_iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box [4] with each of ``boxes`` [K, 4], float32 like torchvision's kernel.

    Returns float32 [K]; NaN where both boxes have zero area (0/0).
    """
    box = np.asarray(box, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return _iou_from_areas(box, area, boxes, areas)


def _iou_from_areas(box, area, boxes, areas) -> np.ndarray:
    zero = np.float32(0)
    w = np.maximum(zero, np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]))
    h = np.maximum(zero, np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]))
    inter = w * h
    with np.errstate(divide="ignore", invalid="ignore"):
        return (inter / ((area + areas) - inter)).astype(np.float32, copy=False)


def _validate(boxes, scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"nms boxes: expected shape [N, 4] (x1, y1, x2, y2), got {boxes.shape}")
    n = boxes.shape[0]
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if scores.shape[0] != n:
        raise ValueError(f"nms scores: expected {n} values (one per box), got {scores.shape[0]}")
    labels = np.zeros(n, np.int64) if labels is None else np.asarray(labels, np.int64).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"nms labels: expected {n} values (one per box), got {labels.shape[0]}")
    if not np.isfinite(boxes).all():
        raise ValueError("nms boxes: every coordinate must be finite (found NaN or inf)")
    if not np.isfinite(scores).all():
        raise ValueError("nms scores: every score must be finite (found NaN or inf)")
    return boxes, scores, labels


def _processing_order(scores: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(active, order): input indices passing the score threshold, and positions into ``active``
    sorted by score descending, ties by index."""
    active = np.flatnonzero(scores.astype(np.float64) >= score_threshold)
    return active, np.argsort(-scores[active], kind="stable")


def iter_nms_steps(boxes, scores, labels=None, iou_threshold: float = 0.5,
                   score_threshold: float = 0.0, class_agnostic: bool = False
                   ) -> Iterator[NmsStep]:
    """Yield one ``NmsStep`` per kept box, highest score first.

    boxes: [N, 4] xyxy (any unit, usually pixels); scores: [N]; labels: [N] class indices (None =
    one class). Candidates with score < ``score_threshold`` never enter NMS.
    """
    boxes, scores, labels = _validate(boxes, scores, labels)
    active, order = _processing_order(scores, score_threshold)
    if active.size == 0:
        return
    b, s, lab = boxes[active], scores[active], labels[active]

    per_class_mask = False
    if not class_agnostic:
        if b.size <= _COORDINATE_TRICK_MAX_NUMEL:
            # Same float32 ops as torchvision: offsets = label * (max + 1), boxes + offsets.
            offsets = lab.astype(np.float32) * (b.max() + np.float32(1))
            b = b + offsets[:, None]
        else:
            per_class_mask = True
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])

    alive = np.ones(len(order), dtype=bool)  # by position in `order`
    for pos, i in enumerate(order):
        if not alive[pos]:
            continue
        alive[pos] = False
        rest_pos = np.flatnonzero(alive[pos + 1:]) + pos + 1
        rest = order[rest_pos]
        ious = _iou_from_areas(b[i], areas[i], b[rest], areas[rest])
        if per_class_mask:
            same = lab[rest] == lab[i]
            rest_pos, rest, ious = rest_pos[same], rest[same], ious[same]
        hit = ious.astype(np.float64) > iou_threshold  # NaN compares False: never suppresses
        alive[rest_pos[hit]] = False
        # With the coordinate trick other classes sit far away (IoU 0); show only the boxes the
        # lesson is about: same class (or all when agnostic), plus anything actually suppressed.
        shown = hit | (lab[rest] == lab[i]) if not class_agnostic else np.ones_like(hit)
        yield NmsStep(kept=int(active[i]), label=int(lab[i]), score=float(s[i]),
                      considered=active[rest[shown]].astype(np.int64),
                      ious=ious[shown].astype(np.float32),
                      suppressed=active[rest[hit]].astype(np.int64))


def nms_trace(boxes, scores, labels=None, iou_threshold: float = 0.5, score_threshold: float = 0.0,
              class_agnostic: bool = False) -> NmsTrace:
    """Run NMS to the end and keep every step (see ``iter_nms_steps`` for the arguments)."""
    steps = list(iter_nms_steps(boxes, scores, labels, iou_threshold, score_threshold,
                                class_agnostic))
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    n = int(scores.shape[0])
    active, order = _processing_order(scores, score_threshold)
    order = active[order]
    below = np.setdiff1d(np.arange(n), order, assume_unique=True).astype(np.int64)
    suppressed_by = {int(j): st.kept for st in steps for j in st.suppressed}
    return NmsTrace(n=n, steps=steps, keep=np.array([st.kept for st in steps], dtype=np.int64),
                    order=np.asarray(order, np.int64), below_score=below,
                    iou_threshold=float(iou_threshold), score_threshold=float(score_threshold),
                    class_agnostic=bool(class_agnostic), suppressed_by=suppressed_by)

"""The one ground-truth rule. Every dataset, evaluation, comparison and view asks this module.

- A **proposal** is a model's suggestion not yet reviewed: ``attributes["proposal"]`` is true.
  Proposals never train and never score, whatever their score or source.
- **Accepting** a proposal makes it ground truth: the ``proposal`` mark goes, and the model's
  score moves to ``attributes["model_score"]`` (the ``score`` field is cleared), so an accepted
  label is indistinguishable from a hand-drawn one for training and evaluation while its origin
  stays visible (``source`` is kept too).
- **Hidden** is a view state (hide a shape to work under it): hidden shapes stay ground truth.
  Hiding must never change what a model trains on or how it is scored.
- The ``score`` field alone decides nothing: a detections file imported with scores, or
  predictions stored as truth on request, are ground truth.

Qt-free and torch-free (the GUI imports it). See docs/adr/0017-ground-truth-rule.md.
"""
from __future__ import annotations

from typing import Iterable

from engine.annotations.model import Annotation

__all__ = ["PROPOSAL", "MODEL_SCORE", "is_proposal", "is_ground_truth", "ground_truth", "accepted",
           "as_proposal"]

PROPOSAL = "proposal"
MODEL_SCORE = "model_score"


def is_proposal(a: Annotation) -> bool:
    """A model's suggestion not yet accepted."""
    return bool(a.attributes.get(PROPOSAL, False))


def is_ground_truth(a: Annotation) -> bool:
    """True for every annotation that trains and scores: all but unaccepted proposals."""
    return not is_proposal(a)


def ground_truth(annotations: Iterable[Annotation]) -> list[Annotation]:
    """The annotations that are ground truth, in their order."""
    return [a for a in annotations if is_ground_truth(a)]


def accepted(a: Annotation) -> Annotation:
    """The proposal ``a`` accepted as ground truth: no proposal mark, its score kept as
    ``attributes["model_score"]`` and the ``score`` field cleared. Ground truth is returned as is."""
    if not is_proposal(a):
        return a
    attrs = {k: v for k, v in a.attributes.items() if k != PROPOSAL}
    if a.score is not None:
        attrs[MODEL_SCORE] = float(a.score)
    return a.with_(attributes=attrs, score=None)


def as_proposal(a: Annotation) -> Annotation:
    """``a`` marked as a proposal (a prediction waiting for review)."""
    return a.with_(attributes={**a.attributes, PROPOSAL: True})

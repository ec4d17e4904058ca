"""Reviewing proposals: which images still have some, which to accept at once, what was edited.

Qt-free helpers of the workbench's review mode. What a proposal is comes from the one
ground-truth rule (``engine.data.truth``); this module only adds the review's bookkeeping: a
proposal whose shape or category the user changed before accepting it is marked ``edited``, so
a label loop can count proposals accepted unchanged, edited or rejected.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

from engine.annotations.model import Annotation
from engine.annotations.store import ProjectStore
from engine.data.truth import MODEL_SCORE, is_proposal

EDITED = "edited"


def proposal_counts(store: ProjectStore) -> dict[int, int]:
    """image id -> number of open proposals, for the images holding any (a text pre-filter in SQL,
    then the rule)."""
    rows = store.execute("SELECT image_id, attributes FROM annotations WHERE attributes LIKE '%proposal%'")
    found: dict[int, int] = {}
    for image_id, text in rows.fetchall():
        try:
            attrs = json.loads(text) if text else {}
        except ValueError:
            continue
        if isinstance(attrs, dict) and attrs.get("proposal"):
            found[image_id] = found.get(image_id, 0) + 1
    return found


def images_with_proposals(store: ProjectStore) -> set[int]:
    """Ids of the images holding at least one proposal."""
    return set(proposal_counts(store))


def step_to_proposals(order: list[int], current: int | None, delta: int, with_proposals: set[int]) -> int | None:
    """The next (+1) or previous (-1) image of ``order`` after ``current`` that has proposals, or None."""
    if not order:
        return None
    start = order.index(current) if current in order else (-1 if delta > 0 else len(order))
    i = start + delta
    while 0 <= i < len(order):
        if order[i] in with_proposals:
            return order[i]
        i += delta
    return None


def proposals(anns: Iterable[Annotation]) -> list[Annotation]:
    """The open proposals among ``anns``, best score first."""
    return sorted((a for a in anns if is_proposal(a)), key=lambda a: -(a.score if a.score is not None else 0.0))


def at_or_above(anns: Iterable[Annotation], score: float) -> list[Annotation]:
    """Open proposals scoring at least ``score`` (a proposal without a score counts as 1)."""
    return [a for a in proposals(anns) if (a.score if a.score is not None else 1.0) >= score]


def edited_proposal(before: Annotation, after: Annotation) -> Annotation:
    """``after`` marked edited when it is a proposal whose shape or category the user changed."""
    if not is_proposal(before) or not is_proposal(after):
        return after
    if before.geometry == after.geometry and before.category_id == after.category_id:
        return after
    return after.with_(attributes={**after.attributes, EDITED: True})


@dataclass
class ReviewCounts:
    """What became of a batch of proposals."""

    accepted: int = 0  # accepted unchanged
    edited: int = 0    # changed, then accepted
    rejected: int = 0

    def count_accepted(self, anns: Iterable[Annotation]) -> None:
        for a in anns:
            if a.attributes.get(EDITED):
                self.edited += 1
            else:
                self.accepted += 1

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "edited": self.edited, "rejected": self.rejected}


def was_model_made(a: Annotation) -> bool:
    """Ground truth that came from an accepted proposal (its model score is kept)."""
    return MODEL_SCORE in a.attributes

"""Unbounded undo/redo of annotation edits, applied through the project store.

Each entry is a list of (before, after) annotation states: before None = created,
after None = deleted. Ids are kept, so undo of a delete restores the same annotation and
entries stay valid when the user switches images and back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .model import Annotation
from .store import ProjectStore

Change = tuple[Annotation | None, Annotation | None]


@dataclass
class Edit:
    label: str
    changes: list[Change]

    @property
    def image_ids(self) -> set[int]:
        return {a.image_id for pair in self.changes for a in pair if a is not None}


class EditHistory:
    def __init__(self, store: ProjectStore, on_change: Callable[[Edit], None] | None = None):
        self.store = store
        self._undo: list[Edit] = []
        self._redo: list[Edit] = []
        self.on_change = on_change

    # ---- recording edits ----------------------------------------------------------------------
    def add(self, ann: Annotation, label: str = "add") -> Annotation:
        return self.add_many([ann], label)[0]

    def add_many(self, anns: list[Annotation], label: str = "add") -> list[Annotation]:
        with self.store.transaction():
            stored = [self.store.add_annotation(a) for a in anns]
        self._push(Edit(label, [(None, a) for a in stored]))
        return stored

    def update(self, ann: Annotation, label: str = "edit") -> Annotation:
        return self.update_many([ann], label)[0]

    def update_many(self, anns: list[Annotation], label: str = "edit") -> list[Annotation]:
        with self.store.transaction():
            befores = [self.store.annotation(a.id) for a in anns]
            afters = [self.store.update_annotation(a) for a in anns]
        self._push(Edit(label, list(zip(befores, afters))))
        return afters

    def delete(self, annotation_id: int, label: str = "delete") -> Annotation:
        return self.delete_many([annotation_id], label)[0]

    def delete_many(self, ids: list[int], label: str = "delete") -> list[Annotation]:
        with self.store.transaction():
            olds = [self.store.delete_annotation(i) for i in ids]
        self._push(Edit(label, [(o, None) for o in olds]))
        return olds

    def replace(self, remove_ids: list[int], add: list[Annotation], label: str) -> list[Annotation]:
        """Delete some and add others as one undo step (merge, split, mask<->polygon)."""
        with self.store.transaction():
            olds = [self.store.delete_annotation(i) for i in remove_ids]
            news = [self.store.add_annotation(a) for a in add]
        self._push(Edit(label, [(o, None) for o in olds] + [(None, n) for n in news]))
        return news

    def apply(self, label: str, add: list[Annotation] = (), update: list[Annotation] = (),
              delete: list[int] = ()) -> tuple[list[Annotation], list[Annotation], list[Annotation]]:
        """Deletes, updates and adds in one transaction and one undo step (mixed canvas edits).

        Returns (added, updated, deleted) as stored.
        """
        with self.store.transaction():
            olds = [self.store.delete_annotation(i) for i in delete]
            befores = [self.store.annotation(a.id) for a in update]
            afters = [self.store.update_annotation(a) for a in update]
            news = [self.store.add_annotation(a) for a in add]
        self._push(Edit(label, [(o, None) for o in olds] + list(zip(befores, afters)) + [(None, n) for n in news]))
        return news, afters, olds

    def _push(self, edit: Edit) -> None:
        self._undo.append(edit)
        self._redo.clear()
        if self.on_change:
            self.on_change(edit)

    # ---- undo / redo --------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_label(self) -> str | None:
        return self._undo[-1].label if self._undo else None

    def redo_label(self) -> str | None:
        return self._redo[-1].label if self._redo else None

    def undo(self) -> Edit | None:
        if not self._undo:
            return None
        edit = self._undo.pop()
        self._apply([(after, before) for before, after in reversed(edit.changes)])
        self._redo.append(edit)
        if self.on_change:
            self.on_change(edit)
        return edit

    def redo(self) -> Edit | None:
        if not self._redo:
            return None
        edit = self._redo.pop()
        self._apply(edit.changes)
        self._undo.append(edit)
        if self.on_change:
            self.on_change(edit)
        return edit

    def _apply(self, changes: list[Change]) -> None:
        with self.store.transaction():
            for current, target in changes:
                if target is None:
                    self.store.delete_annotation(current.id)
                elif current is None:
                    self.store.add_annotation(target)
                else:
                    self.store.update_annotation(target)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

"""AnnotationController: the one place where the workbench changes the project.

Widgets (canvas, panels) never write the store. They call the controller, which records every
change through EditHistory (one transaction and one undo step per user action) and then tells
the widgets what changed with signals carrying the STORED annotations. A failing store call
leaves the project and the widgets as they were and emits `failed(title, message)`.
"""
from __future__ import annotations

from typing import Iterable

from PySide6.QtCore import QObject, Signal

from engine.annotations import ops
from engine.annotations.errors import BadInput
from engine.annotations.history import Edit, EditHistory
from engine.annotations.model import Annotation, ImageRecord
from engine.annotations.store import ProjectStore
from engine.assist.review import edited_proposal
from engine.data.truth import accepted, is_proposal

PASTE_OFFSET_SAME_IMAGE = 10.0  # px; a copy pasted on its own image must not hide its original


class AnnotationController(QObject):
    imageOpened = Signal(object, list)            # ImageRecord, [Annotation]
    annotationsChanged = Signal(list, list, list)  # added, updated, deleted ids (current image only)
    imageUpdated = Signal(object)                 # ImageRecord whose status/split changed
    categoriesChanged = Signal(list)              # [Category]
    historyChanged = Signal()
    message = Signal(str)                         # short note for the status bar
    failed = Signal(str, str)                     # title, message (shown in a message box)
    proposalsReviewed = Signal(list, list)        # proposals accepted [Annotation], rejected [Annotation]

    def __init__(self, store: ProjectStore, parent: QObject | None = None):
        super().__init__(parent)
        self.store = store
        self.history = EditHistory(store)
        self.image: ImageRecord | None = None
        self._anns: dict[int, Annotation] = {}
        self.clipboard: list[Annotation] = []
        self._clip_image_id: int | None = None
        self.order: list[int] = []  # image ids in browser order (filtered), for next/previous

    # ---- images -----------------------------------------------------------------------------
    def open_image(self, image_id: int) -> bool:
        try:
            rec = self.store.image(image_id)
            anns = self.store.annotations(image_id)
        except Exception as exc:  # noqa: BLE001 - a broken project must not crash the window
            self.failed.emit("Cannot open image", str(exc))
            return False
        self.image = rec
        self._anns = {a.id: a for a in anns}
        self.imageOpened.emit(rec, anns)
        return True

    def annotations(self) -> list[Annotation]:
        """Annotations of the current image, in id order."""
        return [self._anns[k] for k in sorted(self._anns)]

    def count(self) -> int:
        """How many annotations the current image has."""
        return len(self._anns)

    def annotation(self, ann_id: int) -> Annotation | None:
        return self._anns.get(ann_id)

    def set_order(self, image_ids: Iterable[int]) -> None:
        self.order = list(image_ids)

    def step_image(self, delta: int) -> bool:
        """Open the next (+1) or previous (-1) image of `order`; False at either end."""
        if not self.order:
            return False
        if self.image is None or self.image.id not in self.order:
            target = self.order[0] if delta > 0 else self.order[-1]
        else:
            i = self.order.index(self.image.id) + delta
            if not 0 <= i < len(self.order):
                return False
            target = self.order[i]
        return self.open_image(target)

    def set_status(self, status: str, image_id: int | None = None) -> None:
        image_id = image_id if image_id is not None else (self.image.id if self.image else None)
        if image_id is None:
            return
        rec = self._guard("Cannot change status", self.store.set_status, image_id, status)
        if rec:
            self._image_changed(rec)
            self.message.emit(f"{rec.path}: {status.replace('_', ' ')}")

    def set_split(self, split: str) -> None:
        if self.image is None:
            return
        rec = self._guard("Cannot change split", self.store.set_split, self.image.id, split)
        if rec:
            self._image_changed(rec)

    def _image_changed(self, rec: ImageRecord) -> None:
        if self.image is not None and rec.id == self.image.id:
            self.image = rec
        self.imageUpdated.emit(rec)

    # ---- recording edits --------------------------------------------------------------------
    def apply_request(self, req) -> bool:
        """Record a canvas EditRequest (label, add, update, delete) as one undo step."""
        return self.record(req.label, add=list(req.add), update=list(req.update), delete=list(req.delete))

    def record(self, label: str, add: list[Annotation] = (), update: list[Annotation] = (),
               delete: list[int] = (), by_user: bool = True) -> bool:
        """One undo step. ``by_user``: the user's own edit (a 'new' image goes 'in progress', a
        changed proposal is marked edited, accepted and deleted proposals are reported); False
        for what a model adds in the background (pre-labelling)."""
        add, update, delete = list(add), list(update), list(delete)
        if not (add or update or delete):
            return False
        before = {a.id: self._anns.get(a.id) for a in update}
        if by_user:
            update = [edited_proposal(before[a.id], a) if before[a.id] is not None else a for a in update]
        h = self.history
        try:
            if update and not (add or delete):
                added, updated, deleted = [], h.update_many(update, label), []
            elif add and not (update or delete):
                added, updated, deleted = h.add_many(add, label), [], []
            elif delete and not (add or update):
                added, updated, deleted = [], [], h.delete_many(delete, label)
            elif not update:
                deleted = [self.store.annotation(i) for i in delete]
                added, updated = h.replace(delete, add, label), []
            else:
                added, updated, deleted = h.apply(label, add, update, delete)
        except Exception as exc:  # noqa: BLE001 - the transaction rolled back; nothing changed
            self.failed.emit(f"Cannot {label}", _describe(exc))
            return False
        self._publish(added, updated, [a.id for a in deleted])
        if by_user:
            self._mark_in_progress({a.image_id for a in added + updated + deleted})
            took = [a for a in updated if before.get(a.id) is not None and is_proposal(before[a.id])
                    and not is_proposal(a)]
            dropped = [a for a in deleted if a is not None and is_proposal(a)]
            if took or dropped:
                self.proposalsReviewed.emit(took, dropped)
        self.historyChanged.emit()
        return True

    def _publish(self, added: list[Annotation], updated: list[Annotation], deleted_ids: list[int]) -> None:
        """Keep the current image's cache in step and tell the widgets (current image only)."""
        if self.image is None:
            return
        cur = self.image.id
        gone = [i for i in deleted_ids if i in self._anns]
        for i in gone:
            del self._anns[i]
        mine_added = [a for a in added if a.image_id == cur]
        mine_updated = []
        for a in updated:
            if a.image_id == cur:
                (mine_updated if a.id in self._anns else mine_added).append(a)
            elif a.id in self._anns:  # moved to another image
                del self._anns[a.id]
                gone.append(a.id)
        for a in mine_added + mine_updated:
            self._anns[a.id] = a
        if mine_added or mine_updated or gone:
            self.annotationsChanged.emit(mine_added, mine_updated, gone)

    def _mark_in_progress(self, image_ids: set[int]) -> None:
        """Editing an image that is still 'new' moves it to 'in_progress' (not an undo step)."""
        for iid in image_ids:
            try:
                rec = self.store.image(iid)
                if rec.status == "new":
                    self._image_changed(self.store.set_status(iid, "in_progress"))
            except Exception as exc:  # noqa: BLE001
                self.failed.emit("Cannot change status", _describe(exc))

    # ---- undo / redo ------------------------------------------------------------------------
    def undo(self) -> bool:
        return self._travel(self.history.undo, backwards=True)

    def redo(self) -> bool:
        return self._travel(self.history.redo, backwards=False)

    def _travel(self, step, backwards: bool) -> bool:
        try:
            edit: Edit | None = step()
        except Exception as exc:  # noqa: BLE001
            self.failed.emit("Cannot undo" if backwards else "Cannot redo", _describe(exc))
            if self.image is not None:
                self.open_image(self.image.id)  # show what the store really holds
            self.historyChanged.emit()
            return False
        if edit is None:
            return False
        images = edit.image_ids
        if images and (self.image is None or self.image.id not in images):
            # the edit belongs to another image: go there so the user sees what changed
            self.open_image(min(images))
        else:
            pairs = [(after, before) for before, after in reversed(edit.changes)] if backwards else edit.changes
            added, updated, deleted = [], [], []
            for current, target in pairs:
                if target is None:
                    deleted.append(current.id)
                elif current is None:
                    added.append(target)
                else:
                    updated.append(target)
            self._publish(added, updated, deleted)
        self.message.emit(("Undid " if backwards else "Redid ") + edit.label)
        self.historyChanged.emit()
        return True

    # ---- edit menu --------------------------------------------------------------------------
    def _pick(self, ids: Iterable[int], what: str, allow_locked: bool = False) -> list[Annotation]:
        anns = [self._anns[i] for i in ids if i in self._anns]
        locked = [a for a in anns if a.locked]
        if locked and not allow_locked:
            self.message.emit(f"{len(locked)} locked shape(s) left out of {what}; unlock them first")
            anns = [a for a in anns if not a.locked]
        return anns

    def delete(self, ids: Iterable[int]) -> bool:
        anns = self._pick(ids, "delete")
        return self.record("delete", delete=[a.id for a in anns])

    def copy(self, ids: Iterable[int]) -> int:
        anns = self._pick(ids, "copy", allow_locked=True)
        if anns:
            self.clipboard = anns
            self._clip_image_id = self.image.id if self.image else None
            self.message.emit(f"Copied {len(anns)} shape(s)")
        return len(anns)

    def paste(self) -> list[Annotation]:
        if self.image is None or not self.clipboard:
            return []
        off = PASTE_OFFSET_SAME_IMAGE if self._clip_image_id == self.image.id else 0.0
        new = ops.paste(self.clipboard, self.image, off, off)
        if not new:
            self.message.emit("Nothing to paste: the copied shapes fall outside this image")
            return []
        before = set(self._anns)
        if not self.record("paste", add=new):
            return []
        return [a for k, a in self._anns.items() if k not in before]

    def duplicate(self, ids: Iterable[int]) -> bool:
        anns = self._pick(ids, "duplicate", allow_locked=True)
        if not anns or self.image is None:
            return False
        return self.record("duplicate", add=ops.duplicate(anns, self.image, PASTE_OFFSET_SAME_IMAGE))

    def merge(self, ids: Iterable[int]) -> bool:
        anns = self._pick(ids, "merge")
        return self._shape_op("merge", anns, lambda: [ops.merge(anns, self.image.height, self.image.width)])

    def split(self, ids: Iterable[int]) -> bool:
        anns = self._pick(ids, "split")

        def parts():
            out, done = [], []
            for a in anns:
                p = ops.split(a, self.image.height, self.image.width)
                if p:
                    out += p
                    done.append(a)
            anns[:] = done
            if not out:
                raise ops.ShapeOpError("nothing to split: each selected shape is in one piece")
            return out
        return self._shape_op("split", anns, parts)

    def to_mask(self, ids: Iterable[int]) -> bool:
        anns = self._pick(ids, "conversion")
        return self._shape_op("polygon to mask", anns,
                              lambda: [ops.to_mask(a, self.image.height, self.image.width) for a in anns])

    def to_polygons(self, ids: Iterable[int]) -> bool:
        anns = self._pick(ids, "conversion")
        return self._shape_op("mask to polygons", anns, lambda: [p for a in anns for p in ops.to_polygons(a)])

    def _shape_op(self, label: str, anns: list[Annotation], make) -> bool:
        """Replace `anns` by what `make()` returns, as one undo step."""
        if self.image is None or not anns:
            self.message.emit(f"Select shapes to {label}")
            return False
        try:
            new = make()
        except ops.ShapeOpError as exc:
            self.message.emit(f"Cannot {label}: {exc}")
            return False
        return self.record(label, add=new, delete=[a.id for a in anns])

    # ---- properties -------------------------------------------------------------------------
    def update(self, anns: list[Annotation], label: str = "edit properties") -> bool:
        return self.record(label, update=anns)

    def set_category(self, ids: Iterable[int], category_id: int) -> bool:
        anns = [a.with_(category_id=category_id) for a in self._pick(ids, "category change")
                if a.category_id != category_id]
        return self.update(anns, "change category")

    def set_hidden(self, ids: Iterable[int], hidden: bool) -> bool:
        anns = [a.with_(hidden=hidden) for a in self._pick(ids, "hide", allow_locked=True) if a.hidden != hidden]
        return self.update(anns, "hide" if hidden else "show")

    def set_locked(self, ids: Iterable[int], locked: bool) -> bool:
        anns = [a.with_(locked=locked) for a in self._pick(ids, "lock", allow_locked=True) if a.locked != locked]
        return self.update(anns, "lock" if locked else "unlock")

    def accept_proposals(self, ids: Iterable[int] = ()) -> bool:
        """Model proposals become ground truth (``engine.data.truth.accepted``: the proposal mark
        goes, the score moves to attributes["model_score"], the source stays); with no ids, every
        proposal of the current image. One undo step."""
        ids = list(ids)
        pool = self._pick(ids, "accept") if ids else self.annotations()
        anns = [accepted(a) for a in pool if is_proposal(a)]
        if not anns:
            self.message.emit("No model proposals to accept" + (" in the selection" if ids else " on this image"))
            return False
        return self.update(anns, "accept proposals")

    # ---- categories (not undoable: they are project settings) --------------------------------
    def add_category(self, name: str, color: str | None = None):
        cat = self._guard("Cannot add category", self.store.add_category, name, color)
        if cat:
            self.categoriesChanged.emit(self.store.categories())
        return cat

    def update_category(self, category_id: int, name: str | None = None, color: str | None = None):
        cat = self._guard("Cannot change category", self.store.update_category, category_id, name, color)
        if cat:
            self.categoriesChanged.emit(self.store.categories())
        return cat

    def delete_category(self, category_id: int) -> bool:
        """Deletes the category AND its annotations; clears the undo history, whose steps may refer to them."""
        if self._guard("Cannot delete category", self.store.delete_category, category_id) is False:
            return False
        self.history.clear()
        self.historyChanged.emit()
        self.categoriesChanged.emit(self.store.categories())
        if self.image is not None:
            self.open_image(self.image.id)
        return True

    def _guard(self, title: str, fn, *args):
        """Run a store call; on failure emit `failed` and return False (None results become True)."""
        try:
            out = fn(*args)
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(title, _describe(exc))
            return False
        return True if out is None else out


def _describe(exc: Exception) -> str:
    if isinstance(exc, BadInput):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"

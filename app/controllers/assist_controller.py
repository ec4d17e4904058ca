"""Model-assisted labelling in the workbench: Pre-label… and the review of proposals.

Pre-labelling runs ``engine.assist.prelabel.prelabel_job`` on the window's JobBridge (progress
and cancel in the Jobs panel). The job hands each image's proposals over through a queue; they
are stored here, on the GUI thread that owns the project store, whenever the job reports
progress, so a cancelled run keeps what it finished. Each batch is one undo step and leaves the
images' status alone (nobody has looked at them yet).

Review: Enter on the canvas accepts the selected proposal (or the best one of the image), Del
rejects it, N / Shift+N go to the next / previous image with proposals, "Accept all ≥ s" takes
every proposal scoring at least the slider's value. In review mode the best open proposal is
selected after each decision, so a reviewer can keep pressing Enter or Del.
"""
from __future__ import annotations

import math
import queue
from bisect import bisect_right
from itertools import chain

from PySide6.QtCore import QObject, Qt

from app.controllers.actions import ActionSpec
from app.controllers.models_controller import make_action
from app.dialogs.prelabel_dialog import PrelabelDialog
from app.panels.review import ReviewPanel
from engine.assist.prelabel import prelabel_job, replaced_by_run
from engine.assist.review import ReviewCounts, at_or_above, images_with_proposals, proposals, step_to_proposals
from engine.data.truth import is_proposal
from engine.jobs import Job

ASSIST_SPECS = (
    ActionSpec("prelabel", "Pre-label…", ("Ctrl+Shift+L",), "Models",
               "Run a model over chosen images in the background; its detections become proposals to review"),
    ActionSpec("review", "Review proposals", ("Ctrl+Shift+V",), "Models",
               "The review dock: accept (Enter), reject (Del), accept all above a score, step through images"),
    ActionSpec("next_proposals", "Next image with proposals", ("N",), "Images",
               "Open the next image of the list that still has open proposals"),
    ActionSpec("prev_proposals", "Previous image with proposals", ("Shift+N",), "Images",
               "Open the previous image of the list that still has open proposals"),
    ActionSpec("accept_above", "Accept proposals above the score", ("Alt+Return",), "Shapes",
               "Accept every proposal of this image scoring at least the review slider's value"),
)


class AssistController(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.panel: ReviewPanel | None = None
        self.dialog: PrelabelDialog | None = None
        self.counts = ReviewCounts()
        self._with_proposals: set[int] | None = None  # image ids, computed on first use
        self.job_id: int | None = None
        self.last_prelabel: dict | None = None
        self._sink: queue.SimpleQueue = queue.SimpleQueue()
        # The current image's open proposals, best score first, kept in step with each change
        # (an Accept among 1,000 proposals must not sort them all again): (image id, list) or None.
        self._open: tuple[int, list] | None = None
        self.actions = {spec.name: make_action(spec, window) for spec in ASSIST_SPECS}
        a = self.actions
        a["prelabel"].triggered.connect(self.prelabel_dialog)
        a["review"].triggered.connect(self.open_review)
        a["next_proposals"].triggered.connect(lambda: self.step(+1))
        a["prev_proposals"].triggered.connect(lambda: self.step(-1))
        a["accept_above"].triggered.connect(lambda: self.accept_above(self.panel.score() if self.panel else 0.5))
        c = window.controller
        window.canvas.acceptRequested.connect(self.accept_current)
        # first in line: the list of open proposals is up to date before anyone asks for it
        c.annotationsChanged.connect(self._annotations_changed)
        c.imageOpened.connect(self._forget_open)
        c.proposalsReviewed.connect(self._reviewed)
        window.jobs.progress.connect(lambda job_id, _event: job_id == self.job_id and self._drain())
        window.jobs.finished.connect(self._job_finished)

    # ---- what is open ---------------------------------------------------------------------------
    def reviewing(self) -> bool:
        dock = self.window.docks.get("Review")
        return dock is not None and dock.isVisible()

    def images_with_proposals(self) -> set[int]:
        if self._with_proposals is None:
            self._with_proposals = images_with_proposals(self.window.store)
        return self._with_proposals

    def open_proposals(self) -> list:
        """The current image's open proposals that are shown, best score first."""
        return list(self._open_list())

    def _open_list(self) -> list:
        c = self.window.controller
        image_id = c.image.id if c.image is not None else None
        if self._open is None or self._open[0] != image_id:
            self._open = (image_id, [a for a in proposals(c.annotations()) if not a.hidden])
        return self._open[1]

    def _forget_open(self, *_) -> None:
        self._open = None

    def _annotations_changed(self, added: list, updated: list, deleted: list) -> None:
        """Update the open proposals by what changed, in the order a fresh sort would give."""
        if self._open is not None:
            here = self._open[1]
            gone = set(deleted) | {a.id for a in updated}
            if gone:
                here[:] = [a for a in here if a.id not in gone]
            for a in chain(added, updated):
                if is_proposal(a) and not a.hidden:
                    here.insert(bisect_right(here, _best_first(a), key=_best_first), a)
        self._current_changed()

    def _selected_proposals(self) -> list[int]:
        c = self.window.controller
        return [i for i in self.window.selected_ids() if c.annotation(i) is not None and is_proposal(c.annotation(i))]

    # ---- review ---------------------------------------------------------------------------------
    def open_review(self) -> ReviewPanel:
        if self.panel is None:
            self.panel = ReviewPanel(self.window)
            self.panel.acceptRequested.connect(self.accept_current)
            self.panel.rejectRequested.connect(self.reject_current)
            self.panel.acceptAboveRequested.connect(self.accept_above)
            self.panel.stepRequested.connect(self.step)
            self.panel.prelabelRequested.connect(self.prelabel_dialog)
            self.panel.slider.valueChanged.connect(lambda *_: self._refresh())
            self.window.add_panel("Review", self.panel)
            self.window.tabifyDockWidget(self.window.docks["Annotations"], self.window.docks["Review"])
        dock = self.window.docks["Review"]
        dock.show()
        dock.raise_()
        self._select_best()
        self._refresh()
        return self.panel

    def accept_current(self) -> bool:
        """Enter: accept the selected proposals, or in review mode the best one of the image."""
        ids = self._selected_proposals()
        if not ids and self.reviewing():
            best = self.open_proposals()[:1]
            ids = [a.id for a in best]
        ok = bool(ids) and self.window.controller.accept_proposals(ids)
        self.window.canvas.setFocus()
        return ok

    def reject_current(self) -> bool:
        ids = self._selected_proposals() or [a.id for a in self.open_proposals()[:1]]
        ok = bool(ids) and self.window.controller.delete(ids)
        self.window.canvas.setFocus()
        return ok

    def accept_above(self, score: float) -> bool:
        ids = [a.id for a in at_or_above(self.open_proposals(), score)]
        if not ids:
            self.window.statusBar().showMessage(f"No proposal scores {score:.2f} or more on this image", 4000)
            return False
        return self.window.controller.accept_proposals(ids)

    def step(self, delta: int) -> bool:
        c = self.window.controller
        self._note_current()
        target = step_to_proposals(c.order, c.image.id if c.image else None, delta, self.images_with_proposals())
        if target is None:
            which = "after" if delta > 0 else "before"
            self.window.statusBar().showMessage(f"No image with open proposals {which} this one", 4000)
            return False
        return c.open_image(target)

    def _reviewed(self, took: list, dropped: list) -> None:
        self.counts.count_accepted(took)
        self.counts.rejected += len(dropped)
        if self.reviewing():
            self._select_best()
        self._refresh()

    def _select_best(self) -> None:
        if not self.reviewing() or self._selected_proposals():
            return
        best = self.open_proposals()[:1]
        if best:
            self.window._select([best[0].id])

    def image_shown(self) -> None:
        """The window shows another image (called after the canvas loaded it, which clears the selection)."""
        self._select_best()
        self._refresh()

    def _current_changed(self) -> None:
        self._note_current()
        self._refresh()

    def _note_current(self) -> None:
        """Keep the set of images with proposals right for the image being edited."""
        c = self.window.controller
        if c.image is None or self._with_proposals is None:
            return
        (self._with_proposals.add if self._open_list() else self._with_proposals.discard)(c.image.id)

    def _refresh(self) -> None:
        if self.panel is None:
            return
        here = self._open_list()
        self.panel.set_open(len(here), len(self.images_with_proposals()))
        self.panel.set_above_count(count_at_or_above(here, self.panel.score()))
        self.panel.set_counts(self.counts.as_dict())

    # ---- pre-label -----------------------------------------------------------------------------
    def prelabel_dialog(self) -> PrelabelDialog:
        models = self.window.models
        dialog = PrelabelDialog(self.window.store, models.detector_files(), models.display_name, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.accepted.connect(lambda: self.start_prelabel(dialog.choice()[0], dialog.image_ids(),
                                                            dialog.choice()[3], snap=dialog.snap()))
        self.dialog = dialog
        dialog.open()
        return dialog

    def start_prelabel(self, checkpoint: str, image_ids: list[int], score_threshold: float | None = None,
                       device: str | None = None, snap: bool = True) -> int | None:
        if self.job_id is not None:
            self.window.statusBar().showMessage("A pre-labelling run is going on; cancel it in the Jobs panel first",
                                                6000)
            return None
        self._sink = queue.SimpleQueue()
        self.window.models.remember_detector(checkpoint)
        job = Job(f"pre-label {len(image_ids)} image(s)", prelabel_job, checkpoint=str(checkpoint),
                  project=str(self.window.store.path), image_ids=list(image_ids), score_threshold=score_threshold,
                  device=device or self.window.models.device, sink=self._sink, snap=snap)
        self.job_id = self.window.jobs.submit(job)
        return self.job_id

    def _drain(self) -> int:
        """Store the proposals the job has handed over so far (one undo step); returns how many."""
        return self.store_proposals(drain(self._sink))

    def store_proposals(self, batch: list) -> int:
        """Store ``(image_id, proposals)`` pairs from a background job as one undo step, replacing
        each model's proposals not yet reviewed; returns how many were added."""
        if not batch:
            return 0
        store, add, delete = self.window.store, [], []
        for image_id, anns in batch:
            if not anns:
                continue
            source = anns[0].source
            delete += [old.id for old in store.annotations(image_id) if replaced_by_run(old, source)]
            add += anns
        if add or delete:
            self.window.controller.record("pre-label", add=add, delete=delete, by_user=False)
        if self._with_proposals is not None:
            self._with_proposals.update(image_id for image_id, anns in batch if anns)
        self._refresh()
        return len(add)

    def recount(self) -> None:
        """Count the images with proposals again (after a run that may have replaced some)."""
        self._with_proposals = None
        self._refresh()

    def _job_finished(self, job_id: int, outcome) -> None:
        if job_id != self.job_id:
            return
        self._drain()
        self.job_id = None
        self._with_proposals = None  # recount: replaced proposals may have left images
        if outcome.state == "finished":
            r = self.last_prelabel = outcome.result
            self.window.statusBar().showMessage(
                f"Pre-labelled {r['images']} image(s): {r['proposals']} proposals to review "
                "(Models > Review proposals)", 10000)
            self.open_review()
        elif outcome.state == "cancelled":
            self.window.statusBar().showMessage("Pre-labelling cancelled; the proposals made so far are kept", 8000)
        self._refresh()


def _best_first(a) -> tuple[float, int]:
    """Sort key of the open proposals: best score first, then id order, as
    ``engine.assist.review.proposals`` orders the image's annotations."""
    return -(a.score if a.score is not None else 0.0), a.id


def count_at_or_above(ordered: list, score: float) -> int:
    """``len(at_or_above(ordered, score))`` for proposals already in ``_best_first`` order, without
    looking at each (a proposal without a score counts as 1, and sorts with the zeros at the end)."""
    n = bisect_right(ordered, (-score, math.inf), key=_best_first)
    if score > 0:
        for a in reversed(ordered[n:]):
            if a.score:
                break
            n += a.score is None
    return n


def drain(sink: queue.SimpleQueue) -> list:
    """Everything a worker has put into ``sink`` so far (never blocks)."""
    batch = []
    while True:
        try:
            batch.append(sink.get_nowait())
        except queue.Empty:
            return batch

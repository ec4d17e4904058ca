"""Models > Label loop…: rounds of model-assisted labelling in the workbench.

Each round is one background job (``engine.assist.label_loop.label_loop_round``: train the
chosen family on the done images, pre-label the next batch of new images). Its proposals are
handed over through a queue and stored on the GUI thread by the review controller, as for
Pre-label…; when the round ends the Review dock opens. Starting the next round freezes the
previous round's statistics (accepted, edited, rejected, drawn by hand), counted from the
project; until then the table shows them live as the reviewer works.
"""
from __future__ import annotations

import queue

from PySide6.QtCore import QObject

from app.controllers.actions import ActionSpec
from app.controllers.assist_controller import drain
from app.controllers.models_controller import make_action
from app.panels.label_loop import LabelLoopPanel
from engine.assist.label_loop import (DEFAULT_FAMILY, DONE_STATUSES, LoopRound, label_loop_round, load_rounds,
                                      round_statistics, save_rounds)
from engine.jobs import Job

LOOP_SPEC = ActionSpec("label_loop", "Label loop…", (), "Models",
                       "Rounds of: train on the done images, pre-label the next new images, review")
DOCK_TITLE = "Label loop"


class LabelLoopController(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.panel: LabelLoopPanel | None = None
        self.rounds: list[LoopRound] = load_rounds(window.store.path)
        self.job_id: int | None = None
        self.config_overrides: dict = {}  # tests and power users: merged into every round's config
        self.device: str | None = None     # None: the Models menu's device
        self._sink: queue.SimpleQueue = queue.SimpleQueue()
        self.action = make_action(LOOP_SPEC, window)
        self.action.triggered.connect(self.open_panel)
        c = window.controller
        c.annotationsChanged.connect(lambda *_: self.refresh())
        c.imageUpdated.connect(lambda *_: self.refresh())
        window.jobs.progress.connect(lambda job_id, _e: job_id == self.job_id and self._drain())
        window.jobs.finished.connect(self._job_finished)

    def open_panel(self) -> LabelLoopPanel:
        if self.panel is None:
            from engine.models.registry import families

            self.panel = LabelLoopPanel([spec.name for spec in families()], self.window, DEFAULT_FAMILY)
            self.panel.startRequested.connect(self.start_round)
            dock = self.window.add_panel(DOCK_TITLE, self.panel)
            dock.visibilityChanged.connect(lambda visible: visible and self.refresh())
            # floating and wide: the right dock column is too narrow for ten columns of counts
            dock.setFloating(True)
            geo = self.window.geometry()
            dock.resize(min(820, max(geo.width() - 40, 600)), min(460, max(geo.height() - 40, 360)))
            dock.move(geo.x() + 40, geo.y() + max(60, geo.height() - 520))
        dock = self.window.docks[DOCK_TITLE]
        dock.show()
        dock.raise_()
        self.refresh()
        return self.panel

    def start_round(self) -> int | None:
        """Freeze the last round's statistics and start the next round as one background job."""
        if self.panel is None:
            self.open_panel()
        if self.job_id is not None:
            self.window.statusBar().showMessage("A round is running; cancel it in the Jobs panel first", 6000)
            return None
        store = self.window.store
        if self.rounds and self.rounds[-1].stats is None:
            self.rounds[-1].stats = round_statistics(store, self.rounds[-1])
            save_rounds(store.path, self.rounds)
        s = self.panel.settings()
        number = self.rounds[-1].number + 1 if self.rounds else 1
        config = {"max_seconds": s["minutes"] * 60.0, "cpu_threads": -1, "nice": 5, **self.config_overrides}
        self._sink = queue.SimpleQueue()
        job = Job(f"label loop round {number}: {s['family']}", label_loop_round, project=str(store.path), number=number,
                  family=s["family"], batch_size=s["batch_size"], score_threshold=s["score_threshold"],
                  config=config, device=self.device or self.window.models.device, sink=self._sink)
        self.job_id = self.window.jobs.submit(job)
        self.panel.set_running(True, number)
        self.panel.status.setText(f"Round {number}: training {s['family']} on the done images, then pre-labelling "
                                  f"up to {s['batch_size']} new image(s)…")
        self.refresh()
        return self.job_id

    def _drain(self) -> None:
        self.window.assist.store_proposals(drain(self._sink))

    def _job_finished(self, job_id: int, outcome) -> None:
        if job_id != self.job_id:
            return
        self._drain()
        self.job_id = None
        self.window.assist.recount()
        number = self.rounds[-1].number + 1 if self.rounds else 1
        if outcome.state == "finished":
            rnd = LoopRound(**outcome.result)
            self.rounds.append(rnd)
            save_rounds(self.window.store.path, self.rounds)
            number = rnd.number + 1
            text = (f"Round {rnd.number}: {rnd.proposals} proposal(s) on {len(rnd.image_ids)} image(s); review them, "
                    f"mark the images done, then start round {number}.")
            if rnd.image_ids:
                self.window.assist.open_review()
                self.window.docks[DOCK_TITLE].raise_()
                self.window.activateWindow()  # the floating dock had it: Enter / Del / N review at once
                self.window.canvas.setFocus()
        elif outcome.state == "cancelled":
            text = "The round was cancelled; the proposals made so far are kept."
        else:
            text = f"The round failed: {outcome.error}"
        if self.panel is not None:
            self.panel.set_running(False, number)
            self.panel.status.setText(text)
        self.window.statusBar().showMessage(text, 10000)
        self.refresh()

    def refresh(self) -> None:
        if self.panel is None or not self.window.docks[DOCK_TITLE].isVisible():
            return
        store = self.window.store
        live = round_statistics(store, self.rounds[-1]) if self.rounds and self.rounds[-1].stats is None else None
        self.panel.show_rounds(self.rounds, live)
        if self.job_id is None:
            self.panel.set_running(False, self.rounds[-1].number + 1 if self.rounds else 1)
        done = sum(len(store.images(status=s)) for s in DONE_STATUSES)
        new = len(store.images(status="new"))
        self.panel.counts_label.setText(f"{done} done image(s) to train on · {new} new image(s) left")

"""The one place where engine job events become Qt signals.

Jobs run on worker threads (``engine.jobs.JobRunner``) and call ``on_event`` there. The bridge
only puts ``(job_id, event)`` into a thread-safe queue; a QTimer on the GUI thread drains it about
30 times a second and emits signals. Draining coalesces what a view only needs the latest of:
Progress (latest per job, and at most 5 times a second: each one repaints progress bars and
status lines, which need no more) and Preview (latest per job and name). Metrics and Log are
delivered in full and in order, because they feed curves and logs. So a job yielding 10,000
progress events per second costs the GUI a few signal emissions per second, and widgets are only
ever touched from the GUI thread. A job's last progress always comes before its ``finished``.
"""
from __future__ import annotations

import itertools
import math
import queue
import time
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from app.heap import freeze_new
from engine.jobs import Job, JobOutcome, JobRunner, Log, Metrics, Preview, Progress

DRAIN_INTERVAL_MS = 33  # ~30 Hz: smooth to the eye, negligible cost
PROGRESS_INTERVAL_MS = 200  # a job's progress reaches the widgets at most 5 times a second


@dataclass(frozen=True)
class JobInfo:
    """A row of :meth:`JobBridge.jobs`: what the GUI knows about one job right now."""

    job_id: int
    name: str
    state: str  # pending | running | finished | cancelled | failed
    progress: Progress | None
    outcome: JobOutcome | None


class JobBridge(QObject):
    """Run jobs on worker threads and re-emit their events as throttled, queued Qt signals.

    Signals (all emitted on the GUI thread; first argument is the job id):
    ``submitted(id, name)``, ``progress(id, Progress)``, ``metrics(id, Metrics)``,
    ``preview(id, Preview)``, ``log(id, Log)``, ``finished(id, JobOutcome)``.
    ``finished`` comes after every event of that job.
    """

    submitted = Signal(int, str)
    progress = Signal(int, object)
    metrics = Signal(int, object)
    preview = Signal(int, object)
    log = Signal(int, object)
    finished = Signal(int, object)

    def __init__(self, parent: QObject | None = None, interval_ms: int = DRAIN_INTERVAL_MS) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._runners: dict[int, JobRunner] = {}
        self._last_progress: dict[int, Progress] = {}
        self._unsent_progress: dict[int, Progress] = {}  # the latest progress not emitted yet, per job
        self._progress_sent_at: dict[int, float] = {}
        self._reported: set[int] = set()  # ids whose `finished` was emitted
        self._stepped: set[int] = set()  # ids whose first metrics were emitted
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self._closed = False
        app = QCoreApplication.instance()
        if app is not None:
            # Safety net: even if a window forgets to call shutdown(), quitting stops the jobs.
            app.aboutToQuit.connect(self.shutdown)

    # ----------------------------------------------------------------- control
    def submit(self, job: Job) -> int:
        """Start ``job`` on a worker thread; return its id (unique within this bridge)."""
        if self._closed:
            raise RuntimeError("JobBridge was shut down; cannot submit new jobs")
        job_id = next(self._ids)
        put = self._queue.put

        def on_event(event, _id=job_id):
            # Worker thread: never touch Qt here, only hand the event over.
            put((_id, event))

        runner = JobRunner(job, on_event=on_event)
        self._runners[job_id] = runner
        self.submitted.emit(job_id, job.name)
        runner.start()
        if not self._timer.isActive():
            self._timer.start()
        return job_id

    def cancel(self, job_id: int) -> None:
        """Ask job ``job_id`` to stop at its next yield (no-op when unknown or ended)."""
        runner = self._runners.get(job_id)
        if runner is not None:
            runner.cancel()

    def runner(self, job_id: int) -> JobRunner:
        return self._runners[job_id]

    def jobs(self) -> list[JobInfo]:
        """All jobs submitted to this bridge, oldest first."""
        return [
            JobInfo(job_id, r.name, r.state, self._last_progress.get(job_id), r.outcome)
            for job_id, r in self._runners.items()
        ]

    def active_count(self) -> int:
        return sum(1 for job_id in self._runners if job_id not in self._reported)

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Cancel every job, wait for the threads (up to ``timeout`` s each), stop the timer.

        Returns True when all worker threads ended. Call on app close and in tests so no
        thread outlives its window.
        """
        self._closed = True
        for runner in self._runners.values():
            runner.cancel()
        all_done = True
        for runner in self._runners.values():
            if runner.state != "pending":
                runner.wait(timeout)
            all_done = all_done and runner.done
        self._timer.stop()
        return all_done

    # ----------------------------------------------------------------- draining
    def flush(self) -> int:
        """Drain the queue on the GUI thread and emit signals; return how many were emitted.

        Called by the timer; tests may call it directly.
        """
        # Which jobs have ended must be read BEFORE draining: a runner's outcome is set after
        # its last on_event, so all events of these jobs are already in the queue.
        ended = [job_id for job_id, r in self._runners.items() if r.done and job_id not in self._reported]

        ordered: list[tuple[int, object]] = []  # slots in arrival order
        latest: dict[tuple, int] = {}  # coalescing key -> slot index
        while True:
            try:
                job_id, event = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, Progress):
                key = ("progress", job_id)
            elif isinstance(event, Preview):
                key = ("preview", job_id, event.name)
            else:
                key = None
            if key is not None and key in latest:
                # Keep the first slot so relative order stays stable; the payload is the newest.
                ordered[latest[key]] = (job_id, event)
                continue
            if key is not None:
                latest[key] = len(ordered)
            ordered.append((job_id, event))

        emitted = 0
        for job_id, event in ordered:
            if isinstance(event, Progress):
                self._last_progress[job_id] = event
                self._unsent_progress[job_id] = event
                continue
            if isinstance(event, Metrics):
                if job_id not in self._stepped:
                    # the job's imports and data are in: a full collection need not walk them
                    self._stepped.add(job_id)
                    freeze_new()
                self.metrics.emit(job_id, event)
            elif isinstance(event, Preview):
                self.preview.emit(job_id, event)
            elif isinstance(event, Log):
                self.log.emit(job_id, event)
            else:
                # A job yielded something that is not an event: show it rather than drop it.
                self.log.emit(job_id, Log(f"unexpected event {event!r}", level="warning"))
            emitted += 1

        now = time.perf_counter()
        for job_id in list(self._unsent_progress):
            if job_id in ended or now - self._progress_sent_at.get(job_id, -math.inf) >= PROGRESS_INTERVAL_MS / 1000.0:
                self._progress_sent_at[job_id] = now
                self.progress.emit(job_id, self._unsent_progress.pop(job_id))
                emitted += 1

        for job_id in ended:
            self._reported.add(job_id)
            self.finished.emit(job_id, self._runners[job_id].outcome)
            emitted += 1

        if self.active_count() == 0 and self._timer.isActive():
            self._timer.stop()  # idle: no timer left ticking when nothing runs
        return emitted

"""Drive a generator job to completion, on a worker thread or on the caller's thread.

A job is a generator function ``fn(token: CancelToken, **kwargs)``: it yields events
(:class:`Progress`, :class:`Metrics`, :class:`Preview`, :class:`Log`) and ``return``s its
result. Every yield is both a report and a cancel point: after each one the runner checks the
token and stops the generator, so a job never needs its own cancellation plumbing beyond
yielding often (or calling ``token.raise_if_cancelled()`` inside long inner loops).
"""
from __future__ import annotations

import itertools
import threading
import traceback as _traceback
from typing import Any, Callable, Iterator

from engine.jobs.cancel import CancelToken, JobCancelled
from engine.jobs.events import JobOutcome

EventCallback = Callable[[Any], None]

PENDING = "pending"
RUNNING = "running"
FINISHED = "finished"
CANCELLED = "cancelled"
FAILED = "failed"
FINAL_STATES = (FINISHED, CANCELLED, FAILED)

_thread_ids = itertools.count(1)


class Job:
    """A named unit of long work: ``fn(token, **kwargs)`` is a generator function.

    The job owns its :class:`CancelToken`; the runner cancels through it.
    """

    def __init__(self, name: str, fn: Callable[..., Iterator[Any]], **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"Job {name!r}: fn must be a generator function, got {type(fn).__name__}")
        self.name = name
        self.fn = fn
        self.kwargs = kwargs
        self.token = CancelToken()

    def __repr__(self) -> str:
        return f"Job({self.name!r})"


def _drive(job: Job, on_event: EventCallback | None) -> JobOutcome:
    """Run ``job`` to the end on the current thread and describe how it ended.

    Never raises for errors inside the job: they become ``JobOutcome(state="failed")``.
    """
    count = 0
    gen = None
    try:
        job.token.raise_if_cancelled()  # cancelled before it even started
        gen = job.fn(job.token, **job.kwargs)
        if not hasattr(gen, "__next__"):
            # A plain function: its return value is the result, no events.
            return JobOutcome(FINISHED, result=gen, events=0)
        while True:
            try:
                event = next(gen)
            except StopIteration as stop:
                return JobOutcome(FINISHED, result=stop.value, events=count)
            count += 1
            if on_event is not None:
                on_event(event)
            # The cancel point: checked after delivery so the last report still arrives.
            job.token.raise_if_cancelled()
    except JobCancelled:
        return JobOutcome(CANCELLED, events=count)
    except BaseException as exc:  # noqa: BLE001 - a job must never take the process down
        return JobOutcome(
            FAILED,
            error=f"{type(exc).__name__}: {exc}",
            traceback=_traceback.format_exc(),
            events=count,
        )
    finally:
        if gen is not None and hasattr(gen, "close"):
            try:
                gen.close()  # runs the job's finally blocks (release files, etc.)
            except BaseException:  # noqa: BLE001 - cleanup errors must not mask the outcome
                pass


def run_job_sync(job: Job, on_event: EventCallback | None = None) -> JobOutcome:
    """Run ``job`` on the current thread (CLI, tests). Same semantics as :class:`JobRunner`."""
    return _drive(job, on_event)


class JobRunner:
    """Run one :class:`Job` on a daemon thread.

    ``on_event(event)`` is called ON THE WORKER THREAD for every yielded event; a GUI must
    hand events over to its own thread (see ``app.jobs_bridge``). Exceptions raised by
    ``on_event`` fail the job like exceptions in the job itself.
    """

    def __init__(self, job: Job, on_event: EventCallback | None = None) -> None:
        self.job = job
        self.on_event = on_event
        self._state = PENDING
        self._outcome: JobOutcome | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def state(self) -> str:
        """pending | running | finished | cancelled | failed."""
        return self._state

    @property
    def outcome(self) -> JobOutcome | None:
        """The outcome once the job ended, else None."""
        return self._outcome

    @property
    def token(self) -> CancelToken:
        return self.job.token

    def start(self) -> "JobRunner":
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"job {self.job.name!r} was already started")
            if self._done.is_set():
                return self  # cancelled before start: nothing to run
            self._state = RUNNING
            self._thread = threading.Thread(
                target=self._run, name=f"job-{next(_thread_ids)}-{self.job.name}", daemon=True
            )
        self._thread.start()
        return self

    def _run(self) -> None:
        outcome = _drive(self.job, self.on_event)
        self._outcome = outcome
        self._state = outcome.state
        self._done.set()

    def cancel(self) -> None:
        """Ask the job to stop; it takes effect at its next yield."""
        self.job.token.cancel()
        with self._lock:
            if self._thread is None and self._state == PENDING:
                # Never started: end it now so wait() does not hang.
                self._outcome = JobOutcome(CANCELLED)
                self._state = CANCELLED
                self._done.set()

    def wait(self, timeout: float | None = None) -> JobOutcome | None:
        """Block until the job ends (or ``timeout`` seconds pass); return the outcome or None."""
        if self._thread is None and self._state == PENDING:
            raise RuntimeError(f"job {self.job.name!r} was never started")
        self._done.wait(timeout)
        return self._outcome

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def __repr__(self) -> str:
        return f"JobRunner({self.job.name!r}, state={self._state})"

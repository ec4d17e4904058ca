"""Cooperative cancellation, pause and single-stepping: a job checks its token at every yield.

``cancel()`` ends a job at its next check. ``pause()`` makes the job wait at its next
``wait_if_paused()`` (the training loop calls it before every step) until ``resume()``,
``step()`` (let exactly one more step run, then wait again) or ``cancel()``.
"""
from __future__ import annotations

import threading


class JobCancelled(Exception):
    """Raised inside a job when its token was cancelled."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._cond = threading.Condition()
        self._paused = False
        self._steps = 0  # steps granted while paused

    def cancel(self) -> None:
        self._event.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled()

    # -- pause / resume / step ----------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._steps = 0

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def step(self, n: int = 1) -> None:
        """While paused, let ``n`` more steps run (then the job waits again)."""
        with self._cond:
            self._steps += max(0, int(n))
            self._cond.notify_all()

    def wait_if_paused(self, poll_s: float = 0.25) -> None:
        """Block while paused (unless a step was granted); raise JobCancelled when cancelled."""
        self.raise_if_cancelled()
        with self._cond:
            while self._paused and self._steps == 0 and not self._event.is_set():
                self._cond.wait(poll_s)
            if self._paused and self._steps > 0:
                self._steps -= 1
        self.raise_if_cancelled()

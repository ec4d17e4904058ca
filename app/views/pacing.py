"""Pacing a window's live drawing: one view repainted per turn of the event loop
(``PaintPacer``), and plot ranges that follow their data but move seldom (``StickyRange``), so a
live run's views never stall the GUI for all of them at once or redraw their axes on every point.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QWidget

# Paced repaints: at least this long between two views' repaints (each paint pass of the window
# then carries about one view), and the curves at most this often (a step's metrics arrive 30
# times a second; a curve drawn 4 times a second looks as live).
PAINT_GAP_MS = 30
CURVES_PERIOD_MS = 250


class PaintPacer(QObject):
    """Repaints views one at a time, spread over turns of the event loop.

    ``hold(view)`` after changing a view's data: its updates stay off until its turn, which comes
    ``gap_ms`` after the previous view's and no sooner than ``period_ms`` after its own last
    repaint; then ``before`` (if given: the latest one) runs and its updates are switched back on
    (Qt repaints it whole, once, at its latest data). Views are served in the order they were held."""

    def __init__(self, parent: QObject | None = None, gap_ms: float = PAINT_GAP_MS) -> None:
        super().__init__(parent)
        self.gap = gap_ms / 1000.0
        # id -> (view, period s, before), in the order held
        self._held: dict[int, tuple[QWidget, float, Callable[[], None] | None]] = {}
        self._painted: dict[int, float] = {}  # id -> when its updates were last switched on
        self._last = -math.inf
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._release_next)

    def hold(self, view: QWidget, period_ms: float = 0.0, before: Callable[[], None] | None = None) -> None:
        key = id(view)
        if key not in self._held:
            view.setUpdatesEnabled(False)
        self._held[key] = (view, period_ms / 1000.0, before)
        self._schedule()

    def held(self) -> list[QWidget]:
        return [entry[0] for entry in self._held.values()]

    def released_at(self, view: QWidget) -> float | None:
        """When (time.perf_counter) the view's updates were last switched back on."""
        return self._painted.get(id(view))

    def forget(self, view: QWidget) -> None:
        """Drop a view about to be deleted (its updates are switched back on)."""
        entry = self._held.pop(id(view), None)
        self._painted.pop(id(view), None)
        if entry is not None:
            view.setUpdatesEnabled(True)

    def release_all(self) -> None:
        """Every held view repaints now (before a grab, and in tests)."""
        self._timer.stop()
        held, self._held = self._held, {}
        for key, entry in held.items():
            self._release(key, entry)

    def _release(self, key: int, entry) -> None:
        view, _, before = entry
        if before is not None:
            before()
        view.setUpdatesEnabled(True)
        self._painted[key] = self._last = time.perf_counter()

    def _due(self, key: int, period: float) -> float:
        return self._painted.get(key, -math.inf) + period

    def _schedule(self) -> None:
        if not self._held:
            return
        soonest = min(self._due(key, entry[1]) for key, entry in self._held.items())
        when = max(self._last + self.gap, soonest)
        delay = int(math.ceil(max(0.0, when - time.perf_counter()) * 1000.0))
        if not self._timer.isActive() or self._timer.remainingTime() > delay:
            self._timer.start(delay)

    def _release_next(self) -> None:
        now = time.perf_counter()
        for key, entry in self._held.items():
            if self._due(key, entry[1]) <= now + 0.001:
                del self._held[key]
                self._release(key, entry)
                break
        self._schedule()


class StickyRange:
    """A plot's view range that follows its data but moves seldom: it widens when data falls
    outside and narrows when the data fill less than ``fill`` of it, each time with margins
    (``grow``: the fraction of the span added after the data's end, for curves whose x grows).
    Every move of the range redraws the axes (their ticks and labels, most of a plot's drawing
    time), so a live plot that auto-ranges on each update costs several times one that does not.
    Once the user pans or zooms, the range is theirs (pyqtgraph's auto-range button gives it back
    to pyqtgraph's own auto-range)."""

    def __init__(self, plot: pg.PlotItem, fill: float = 0.4, margin: float = 0.08, grow: tuple = (0.0, 0.0),
                 min_span: tuple = (0.0, 0.0)) -> None:
        self.vb = plot.getViewBox()
        self.vb.disableAutoRange()
        self.fill, self.margin, self.grow, self.min_span = fill, margin, grow, min_span
        self.last: list[list[float]] | None = None
        self.include: list[tuple[float, float] | None] = [None, None]  # always shown (per axis)

    def reset(self) -> None:
        self.last = None

    def update(self, items) -> None:
        if self.last is None:
            self.vb.disableAutoRange()  # the range is ours from the start of a run (a log mode turns it on)
        now = self.vb.viewRange()
        if self.last is not None and not np.allclose(now, self.last, rtol=1e-6, atol=1e-12):
            return  # the user moved the view (or pyqtgraph's auto-range has it)
        if any(self.vb.autoRangeEnabled()):
            return
        new = []
        for ax in (0, 1):
            bounds = [b for b in (item.dataBounds(ax) for item in items if item.isVisible())
                      if b is not None and b[0] is not None and np.isfinite(b).all()]
            if self.include[ax] is not None:
                bounds.append(self.include[ax])
            if not bounds:
                new.append(now[ax])
                continue
            lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
            c0, c1 = now[ax]
            if self.last is None or lo < c0 or hi > c1 or (hi - lo) < self.fill * (c1 - c0):
                span = max(hi - lo, self.min_span[ax]) or max(abs(hi), 1.0) * 0.1
                new.append([lo - self.margin * span, hi + (self.margin + self.grow[ax]) * span])
            else:
                new.append(now[ax])
        if self.last is None or new != now:
            self.vb.setRange(xRange=new[0], yRange=new[1], padding=0.0)
        self.last = self.vb.viewRange()

"""What the GUI benchmarks share: how long the Qt event loop goes without turning."""
from __future__ import annotations

import time

import numpy as np


def tick_gaps(duration_s: float) -> np.ndarray:
    """Milliseconds between the ticks of a 10 ms timer over ``duration_s`` seconds of the running
    event loop: a gap far above 10 ms is a stall a user would feel. Needs a QApplication."""
    from PySide6.QtCore import QEventLoop, QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    loop = QEventLoop()
    timer.start()
    QTimer.singleShot(int(duration_s * 1000), loop.quit)
    loop.exec()
    timer.stop()
    return np.diff(np.asarray(ticks)) * 1000.0

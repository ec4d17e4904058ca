"""What several benchmarks share: how long the Qt event loop goes without turning, and the two
sides of a training-overhead ratio (the platform's loop against a hand-written loop over the same
trainer's model and batches)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

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


def loop_seconds_per_step(spec, project: Path, out: Path, steps: int, skip: int) -> float:
    """Per-step wall time of the family's training (the platform's loop, the CPU preset without a
    time budget or validation) between the ``skip``-th and the last step."""
    from engine.jobs.cancel import CancelToken
    from engine.jobs.events import Progress

    config = {**spec.preset("cpu"), "device": "cpu", "max_steps": skip + steps, "max_seconds": None,
              "eval_every": 10**6}
    stamps: dict[int, float] = {}
    for event in spec.train(CancelToken(), str(project), str(out), config):
        if isinstance(event, Progress) and event.step:
            stamps[event.step] = time.perf_counter()
    return (stamps[skip + steps] - stamps[skip]) / steps


@contextmanager
def bare_trainer(spec, project: Path) -> Iterator[tuple]:
    """``(trainer, cfg, device)``: the family's trainer on the CPU preset, set up, under the loop's
    thread settings, for a hand-written loop to drive."""
    import torch

    from engine.jobs.cancel import CancelToken
    from engine.train.loop import cpu_threads, resolve_config

    trainer_cls = spec.trainer_class()
    cfg = resolve_config(trainer_cls, {**spec.preset("cpu"), "device": "cpu"})
    device = torch.device("cpu")
    trainer = trainer_cls(cfg, device, CancelToken(), str(project))
    with cpu_threads(device, cfg["cpu_threads"]):
        for _ in trainer.setup():
            pass
        yield trainer, cfg, device


def seconds_per_step(batches: Callable[[], Iterator], step: Callable[[object], None], steps: int, skip: int) -> float:
    """Wall time per ``step(batch)`` over ``steps`` steps after ``skip`` untimed ones, taking
    batches from ``batches()`` (called again for each epoch)."""
    done, t0 = 0, time.perf_counter()
    while done < skip + steps:
        for batch in batches():
            if done == skip:
                t0 = time.perf_counter()
            step(batch)
            done += 1
            if done == skip + steps:
                break
    return (time.perf_counter() - t0) / steps


def live_views_harness(freeze_heap: bool = True):
    """``(app, bridge, views)``: a QApplication, a JobBridge and the workbench's LiveViews (900 × 600,
    shown) drawing the bridge's metrics and previews, as the Train panel does. With ``freeze_heap``
    the long-lived heap is frozen as ``visionbench gui`` does once the panel is built."""
    import os

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # `make bench` on a headless machine
    from PySide6.QtWidgets import QApplication

    from app.jobs_bridge import JobBridge
    from app.views.live_views import LiveViews

    app = QApplication.instance() or QApplication([])
    if freeze_heap:
        from app import heap

        heap.enable()
        heap.settle_heap()
    bridge = JobBridge()
    views = LiveViews()
    views.resize(900, 600)
    views.show()
    bridge.metrics.connect(lambda j, e: views.add_metrics(e))
    bridge.preview.connect(lambda j, e: views.show_preview(e))
    return app, bridge, views


def start_click_ms(views, spec) -> float:
    """What Start costs the GUI thread, as the Train panel does it: the panes of the family's
    previews built and laid out, then the event loop's next turns."""
    t0 = time.perf_counter()
    views.prepare(spec.previews)
    return (time.perf_counter() - t0) * 1000.0 + float(tick_gaps(0.5).max())


def print_result(result: dict) -> dict:
    """Add the 1-minute load average (what else ran beside the benchmark) and print the JSON."""
    import json
    import os

    try:
        result["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    print(json.dumps(result, indent=2))
    return result

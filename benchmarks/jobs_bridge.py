"""Job runner and GUI bridge overhead: cost per yield and how hard the bridge throttles.

Run: ``python -m benchmarks.jobs_bridge`` (prints JSON). Offscreen Qt, no window.
"""
from __future__ import annotations

import json
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from app.jobs_bridge import JobBridge
from engine.jobs import Job, Metrics, Progress, run_job_sync

N_PROGRESS = 200_000
N_METRICS = 2_000


def flood(token, n_progress=N_PROGRESS, n_metrics=N_METRICS):
    every = max(1, n_progress // n_metrics)
    for i in range(n_progress):
        yield Progress(i + 1, n_progress)
        if i % every == 0:
            yield Metrics({"loss": 1.0 / (i + 1)}, step=i)


def main() -> dict:
    t0 = time.perf_counter()
    outcome = run_job_sync(Job("flood", flood))
    sync_s = time.perf_counter() - t0
    events = outcome.events

    app = QApplication.instance() or QApplication([])
    bridge = JobBridge()
    counts = {"progress": 0, "metrics": 0}
    bridge.progress.connect(lambda j, e: counts.__setitem__("progress", counts["progress"] + 1))
    bridge.metrics.connect(lambda j, e: counts.__setitem__("metrics", counts["metrics"] + 1))
    done = []
    bridge.finished.connect(lambda j, o: done.append(o))
    t0 = time.perf_counter()
    bridge.submit(Job("flood", flood))
    while not done:
        app.processEvents()
        time.sleep(0.001)
    bridge_s = time.perf_counter() - t0
    bridge.shutdown()
    result = {
        "events": events,
        "sync_runner_us_per_yield": round(1e6 * sync_s / events, 3),
        "bridge_wall_s": round(bridge_s, 3),
        "bridge_us_per_event": round(1e6 * bridge_s / events, 3),
        "progress_events": N_PROGRESS,
        "progress_signals": counts["progress"],
        "progress_signals_per_s": round(counts["progress"] / bridge_s, 1),
        "metrics_events": events - N_PROGRESS,
        "metrics_signals": counts["metrics"],
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

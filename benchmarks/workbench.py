"""Workbench responsiveness, printed as JSON: `python -m benchmarks.workbench` (offscreen Qt).

- open_window_20k_s: build and show the main window on a project of 20,000 images (the image
  list, categories, first image) until the event queue is idle. Goal: < 2 s.
- thumbnail_requests_at_open: image files read for thumbnails at start; must be about the number
  of visible rows (lazy browser), not 20,000.
- switch_image_ms_p50 / _max: open the next image (D) holding 200 annotations, canvas included.
- undo_ms_p50 / redo_ms_p50: one undo/redo of a one-shape edit on the current image, after
  UNDO_DEPTH edits (the history is unbounded; depth must not matter).
- *_gui_cpu_ms_p50: CPU time of the GUI thread for the same steps (time.thread_time); on the
  shared, loaded build machine wall-clock figures are several times the CPU actually spent.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QApplication

from engine.annotations import Annotation, Box, ProjectStore

N_IMAGES = int(os.environ.get("WORKBENCH_BENCH_IMAGES", "20000"))  # smaller for quick profiling runs
PER_IMAGE = 200
N_SWITCH = 20
UNDO_DEPTH = 1000


def _build(root: Path) -> Path:
    store = ProjectStore.create(root / "p.vbproj")
    with store.transaction():
        cat = store.add_category("thing").id
        for i in range(N_IMAGES):
            f = root / "img" / f"{i:06d}.png"
            if i < 40:  # a few real files so the thumbnails have something to read
                f.parent.mkdir(exist_ok=True)
                Image.fromarray(np.full((480, 640, 3), i * 5 % 255, np.uint8)).save(f)
            store.add_image(f, 640, 480)
    anns = [Annotation(img, cat, Box(x % 600, (x * 7) % 440, x % 600 + 30, (x * 7) % 440 + 30))
            for img in range(1, N_SWITCH + 2) for x in range(PER_IMAGE)]
    store.bulk_insert_annotations(anns)
    store.close()
    return root / "p.vbproj"


def _idle(app: QApplication) -> None:
    for _ in range(5):
        app.processEvents()


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from app.main_window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:
        path = _build(Path(tmp))
        t0 = time.perf_counter()
        w = MainWindow(ProjectStore(path))
        w.show()
        _idle(app)
        open_s = time.perf_counter() - t0
        requests = w.loader.requests

        ctl = w.controller
        switch, switch_cpu = [], []
        for _ in range(N_SWITCH):
            t, c = time.perf_counter(), time.thread_time()
            ctl.step_image(+1)
            _idle(app)
            switch.append((time.perf_counter() - t) * 1000)
            switch_cpu.append((time.thread_time() - c) * 1000)

        img = ctl.image.id
        for k in range(UNDO_DEPTH):
            ctl.record("draw", add=[Annotation(img, 1, Box(k % 500, 5, k % 500 + 10, 15))])
        undo, redo, undo_cpu, redo_cpu = [], [], [], []
        for _ in range(100):
            t, c = time.perf_counter(), time.thread_time()
            ctl.undo()
            _idle(app)
            undo.append((time.perf_counter() - t) * 1000)
            undo_cpu.append((time.thread_time() - c) * 1000)
        for _ in range(100):
            t, c = time.perf_counter(), time.thread_time()
            ctl.redo()
            _idle(app)
            redo.append((time.perf_counter() - t) * 1000)
            redo_cpu.append((time.thread_time() - c) * 1000)
        w.close()

    print(json.dumps({
        "images": N_IMAGES,
        "open_window_20k_s": round(open_s, 3),
        "thumbnail_requests_at_open": requests,
        "annotations_per_image": PER_IMAGE,
        "switch_image_ms_p50": round(statistics.median(switch), 1),
        "switch_image_ms_max": round(max(switch), 1),
        "switch_image_gui_cpu_ms_p50": round(statistics.median(switch_cpu), 1),
        "undo_depth": UNDO_DEPTH,
        "undo_ms_p50": round(statistics.median(undo), 2),
        "redo_ms_p50": round(statistics.median(redo), 2),
        "undo_gui_cpu_ms_p50": round(statistics.median(undo_cpu), 2),
        "redo_gui_cpu_ms_p50": round(statistics.median(redo_cpu), 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()

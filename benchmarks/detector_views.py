"""The workbench's detector views following the image: how long until they answer, how long the GUI stalls.

``python -m benchmarks.detector_views [--steps N]`` builds the demo photos project (real photos,
300 to 1000 px) in a temporary folder with two detectors in its models/ folder (an untrained
Faster R-CNN and our YOLO, CPU presets, the project's classes), opens the real main window
offscreen, opens "NMS step by step" and "Compare detectors" (both detectors) from the Models
menu, then steps through N images (default 10) with the Next image action. Prints JSON:

- ``step_to_nms_ms_median`` / ``_max``: from the Next image action to the NMS dock showing the new
  image's candidates (image read, R-CNN run, trace drawn);
- ``step_to_all_views_ms_median`` / ``_max``: until the compare view has run both detectors too;
- ``gui_max_stall_ms_following``: the longest gap between ticks of a 10 ms QTimer on the GUI
  thread over all steps (the goal of issue 5 for the compare view: <= 50 ms);
- ``gui_stall_ms_per_step``: that gap for each step;
- ``gui_max_stall_ms_window_alone``: the same over N steps before the docks are opened (the
  canvas, thumbnails and lists switching image), to tell what the views add;
- ``first_open_s``: opening both docks and their first runs (imports and model loading).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def _detectors(project: Path) -> list[Path]:
    """An untrained Faster R-CNN and YOLO with the project's classes, in <project folder>/models."""
    import torch

    from engine.annotations.store import ProjectStore
    from engine.models.checkpoint import save_checkpoint
    from engine.models.rcnn import CPU_PRESET as RCNN
    from engine.models.rcnn import build_rcnn
    from engine.models.yolo import CPU_PRESET as YOLO
    from engine.models.yolo import build_yolo

    store = ProjectStore(project, readonly=True)
    classes = [c.name for c in store.categories()]
    store.close()
    models = project.parent / "models"
    models.mkdir(exist_ok=True)
    torch.manual_seed(0)
    out = []
    for family, preset, build in (("fasterrcnn", RCNN, build_rcnn), ("yolo", YOLO, build_yolo)):
        config = {**preset, "pretrained": False}  # weights do not matter for timing
        state = build(config, len(classes)).state_dict()
        out.append(save_checkpoint(models / f"{family}-bench.ckpt", state,
                                   {"family": family, "classes": classes, "config": config, "metrics": {}}))
    return out


def run(steps: int = 10) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from engine.annotations.store import ProjectStore
    from engine.demo.photos import build_photos

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="vb_detector_views_") as tmp:
        project = build_photos(Path(tmp))
        detectors = _detectors(project)
        window = MainWindow(ProjectStore(project))
        window.models.device = "cpu"
        window.show()

        def wait(done, timeout=300.0):
            end = time.perf_counter() + timeout
            while not done() and time.perf_counter() < end:
                app.processEvents()
                time.sleep(0.002)
            if not done():
                raise TimeoutError("a detector view did not answer within the time limit")

        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

        def step_stall(done) -> tuple[float, float]:
            """Next image; wait for ``done``; (ms until done, longest timer gap in ms)."""
            ticks.clear()
            timer.start()
            start = time.perf_counter()
            ticks.append(start)
            window.actions_by_name["next_image"].trigger()
            wait(done)
            end = time.perf_counter()
            settle = end + 0.1  # the redraw after the last answer belongs to the step
            while time.perf_counter() < settle:
                app.processEvents()
                time.sleep(0.002)
            timer.stop()
            gaps = [b - a for a, b in zip(ticks, ticks[1:])]
            return (end - start) * 1e3, max(gaps) * 1e3

        # the window alone (canvas, thumbnails, lists): what an image step costs without the views
        baseline = [step_stall(lambda: True)[1] for _ in range(steps)]
        window.actions_by_name["prev_image"].trigger()
        for _ in range(steps - 1):
            window.actions_by_name["prev_image"].trigger()

        t0 = time.perf_counter()
        nms = window.models.open_view("nms_view")
        nms.set_detector(detectors[0])
        compare = window.models.open_view("compare_detectors")
        for path in detectors:
            compare.set_detector(path, run=False)
        compare.view.run()
        wait(lambda: not nms.busy() and not compare.busy() and not compare.view.busy())
        first_open = time.perf_counter() - t0
        errors = [e for e in [nms.last_error] + [r["error"] for r in compare.view.results()] if e]

        to_nms, to_all, stalls = [], [], []
        nms_done: list[float] = []
        nms.ready.connect(lambda: nms_done.append(time.perf_counter()))
        for _ in range(steps):
            nms_done.clear()
            start = time.perf_counter()
            took, stall = step_stall(lambda: nms_done and not nms.busy() and not compare.busy()
                                     and not compare.view.busy())
            to_nms.append((nms_done[0] - start) * 1e3)
            to_all.append(took)
            stalls.append(stall)
            errors += [e for e in [nms.last_error] + [r["error"] for r in compare.view.results()] if e]
        window.close()
    result = {"steps": steps, "first_open_s": round(first_open, 2),
              "step_to_nms_ms_median": round(statistics.median(to_nms), 1), "step_to_nms_ms_max": round(max(to_nms), 1),
              "step_to_all_views_ms_median": round(statistics.median(to_all), 1),
              "step_to_all_views_ms_max": round(max(to_all), 1),
              "gui_max_stall_ms_following": round(max(stalls), 1),
              "gui_max_stall_ms_window_alone": round(max(baseline), 1),
              "gui_stall_ms_per_step": [round(s, 1) for s in stalls]}
    if errors:
        result["errors"] = sorted(set(errors))
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    result = run(args.steps)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

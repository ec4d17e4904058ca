"""U-Net figures: accuracy on the demo sets, training-loop overhead, GUI responsiveness.

Run: ``python -m benchmarks.unet`` (prints JSON on stdout; progress on stderr). Options:
``--only shapes,galaxies,gui`` to run a subset, ``--demo DIR`` to reuse built demo
projects, ``--budget-s N`` for the shapes training time (default: the CPU preset's budget).

- ``miou_shapes``: mean foreground IoU on the val split of demo "shapes" after training with the
  CPU defaults (the preset's own time budget, or ``--budget-s``), ``train_s_shapes``.
- ``clump_recall``: on demo "galaxies" val, the fraction of true clump centres that lie in, or
  within 3 px of, a predicted clump region.
- the training loop's overhead over a bare loop is ``benchmarks.platform`` (every family).
- ``gui_max_stall_ms_while_training``: longest gap between ticks of a 10 ms QTimer in an
  offscreen QApplication while a U-Net training job runs through the JobBridge.
- ``wall_s_<part>`` / ``cpu_s_<part>``: wall and process CPU seconds of each part (and totals).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2
import numpy as np
import torch

from benchmarks._common import print_result


def log(text: str) -> None:
    print(f"[benchmarks.unet] {text}", file=sys.stderr, flush=True)


def ensure_demo(folder: Path) -> dict[str, Path]:
    from engine.demo.galaxies import build_galaxies
    from engine.demo.shapes import build_shapes

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, build in (("shapes", build_shapes), ("galaxies", build_galaxies)):
        path = folder / f"{name}.vbproj"
        if not path.exists():
            log(f"building demo {name} in {folder}")
            build(folder, 400, seed=0)
        out[name] = path
    return out


# Galaxies: the clumps are a few pixels wide and rare, so the paper's weighted cross-entropy
# (with Dice) keeps them; clump recall 1.00 with this configuration.
GALAXIES_CONFIG = {"encoder": "efficientnet_lite0", "width": 8, "lr": 3e-3, "batch_size": 8, "loss": "wce+dice"}


def bench_shapes(project: Path, work: Path, budget_s: float) -> dict:
    from engine.eval.run import eval_command
    from engine.train.run import train_command

    ckpt = work / "shapes_unet.ckpt"
    t0 = time.perf_counter()
    # The defaults, as `visionbench train unet` runs them (benchmarks.defaults runs the CLI itself).
    result = train_command("unet", project, ckpt, device="cpu", seed=0, progress=False,
                           minutes=budget_s / 60.0 if budget_s else None)
    train_s = time.perf_counter() - t0
    metrics = eval_command(ckpt, project, split="val", progress=False)
    log(f"shapes: {result['epochs']} epochs in {train_s:.0f} s, val mIoU {metrics['miou']:.3f}")
    return {"config_shapes": "CPU preset", "miou_shapes": round(metrics["miou"], 4),
            "dice_shapes": round(metrics["dice"], 4),
            "train_s_shapes": round(train_s, 1), "epochs_shapes": result["epochs"],
            "per_class_iou_shapes": {k: (None if v["iou"] is None else round(v["iou"], 4))
                                     for k, v in metrics["per_class"].items()}}


def bench_galaxies(project: Path, work: Path, budget_s: float) -> dict:
    from engine.annotations.store import ProjectStore
    from engine.annotations.imageio import read_image_rgb
    from engine.infer.unet_predictor import UNetPredictor
    from engine.train.run import train_command

    ckpt = work / "galaxies_unet.ckpt"
    t0 = time.perf_counter()
    result = train_command("unet", project, ckpt, epochs=40, device="cpu", seed=0,
                           config={**GALAXIES_CONFIG, "max_seconds": budget_s}, progress=False)
    train_s = time.perf_counter() - t0
    predictor = UNetPredictor(ckpt, device="cpu")
    clump = predictor.classes.index("clump") + 1
    found = total = 0
    store = ProjectStore(project, readonly=True)
    try:
        clump_id = store.category_by_name("clump").id
        for rec in store.images(split="val"):
            centres = [(a.attributes["x"], a.attributes["y"]) for a in store.annotations(rec.id)
                       if a.category_id == clump_id and "x" in a.attributes]
            if not centres:
                continue
            pred = predictor.class_map(read_image_rgb(store.image_path(rec))) == clump
            # distance (px) from every pixel to the nearest predicted clump pixel
            dist = cv2.distanceTransform((~pred).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            for x, y in centres:
                col = min(int(x), rec.width - 1)
                row = min(int(y), rec.height - 1)
                total += 1
                found += bool(pred.any() and dist[row, col] <= 3.0)
    finally:
        store.close()
    recall = found / total if total else float("nan")
    log(f"galaxies: {result['epochs']} epochs in {train_s:.0f} s, clump recall {recall:.3f} ({found}/{total})")
    return {"config_galaxies": GALAXIES_CONFIG, "clump_recall": round(recall, 4), "clumps": total,
            "train_s_galaxies": round(train_s, 1),
            "val_miou_galaxies": round(result["best"]["miou"], 4)}


def bench_gui(project: Path, work: Path, seconds: float = 25.0) -> dict:
    from benchmarks._common import live_views_harness, tick_gaps
    from engine.jobs import Job
    from engine.models.registry import get_family

    _app, bridge, views = live_views_harness(freeze_heap=False)  # the real live views draw the previews
    idle = tick_gaps(5.0)  # the same timer with no job: what the machine's load alone costs
    steps = []
    bridge.progress.connect(lambda j, e: steps.append(e.step))
    spec = get_family("unet")
    config = dict(spec.cpu_preset, epochs=100, cpu_threads=-1, preview_every=5, nice=5)  # as the TrainPanel
    job_id = bridge.submit(Job("train unet", spec.train, store_path=str(project), out=str(work / "gui.ckpt"),
                               config=config))
    gaps = tick_gaps(seconds)
    bridge.cancel(job_id)
    bridge.shutdown(timeout=60)
    views.close()
    log(f"gui: {len(gaps)} ticks, {max(steps or [0])} training steps, max gap {gaps.max():.1f} ms "
        f"(idle {idle.max():.1f} ms)")
    return {"gui_max_stall_ms_while_training": round(float(gaps.max()), 1),
            "gui_p99_tick_gap_ms": round(float(np.percentile(gaps, 99)), 1),
            "gui_max_stall_ms_idle": round(float(idle.max()), 1),
            "gui_p99_tick_gap_ms_idle": round(float(np.percentile(idle, 99)), 1),
            "gui_ticks": int(len(gaps)), "gui_training_steps_seen": int(max(steps or [0])),
            "gui_seconds": seconds}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.unet")
    parser.add_argument("--only", default="shapes,galaxies,gui")
    parser.add_argument("--demo", default=None, help="folder with (or for) shapes.vbproj and galaxies.vbproj")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="shapes training time budget (s; default: the CPU preset's)")
    parser.add_argument("--galaxies-budget-s", type=float, default=180.0)
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench_unet_"))
    demo = ensure_demo(Path(args.demo) if args.demo else work / "demo")
    result: dict = {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    runs = (("gui", lambda: bench_gui(demo["shapes"], work)),
            ("shapes", lambda: bench_shapes(demo["shapes"], work, args.budget_s)),
            ("galaxies", lambda: bench_galaxies(demo["galaxies"], work, args.galaxies_budget_s)))
    for name, run in runs:
        if name not in parts:
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        result.update(run())
        # Wall and process CPU (all threads) side by side: on a shared machine a low CPU/wall
        # ratio says the part waited for cores other processes held.
        result[f"wall_s_{name}"] = round(time.perf_counter() - wall, 1)
        result[f"cpu_s_{name}"] = round(time.process_time() - cpu, 1)
    result["wall_s_total"] = round(time.perf_counter() - started_wall, 1)
    result["cpu_s_total"] = round(time.process_time() - started_cpu, 1)
    return print_result(result)


if __name__ == "__main__":
    main()

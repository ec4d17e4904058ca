"""pix2pix figures: denoising galaxies, masks -> photos, colorization; loop overhead; GUI stalls.

Run: ``python -m benchmarks.pix2pix`` (JSON on stdout, progress on stderr). Every training uses the
family's CLI defaults (the CPU preset, its own time budget) with only the ``pairs`` option set, as
``visionbench train pix2pix --pairs ...`` runs it. Options: ``--only galaxies,labels,colorize,
overhead,gui``; ``--demo DIR`` reuses built demo projects; ``--keep DIR`` keeps checkpoints and
previews there; ``--quick`` trains 30 steps each (a smoke run, not the figures).

- ``denoise_galaxies_psnr_gain_db``: val PSNR of the generator's output minus that of the noisy
  input (``identity``), demo galaxies, observed -> noise-free model (pairs ``targets``). Goal >= 6.
- ``labels2photo_shapes_l1`` and ``labels2photo_shapes_l1_mean_image`` (output = the mean training
  image): demo shapes, masks -> photo. Goal: at most half the baseline.
- ``colorize_photos_psnr`` and ``colorize_photos_psnr_gray`` (L* with zero a*b*): the demo photos,
  family ``colorize``. Goal: above the gray baseline.
- ``train_overhead_vs_bare_loop``: seconds per step of ``fit`` (G and D steps, previews at the
  preset's rate) over a hand-written loop doing the same two updates on the same batches.
- ``gui_max_stall_ms_while_training``: longest gap between ticks of a 10 ms QTimer while a pix2pix
  job runs through the JobBridge into the real live views (translations and both patch maps);
  ``gui_start_click_ms``: what the Start click costs the GUI thread before the job (building and
  laying out the panes of the family's previews, as the Train panel does), measured apart.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import torch

from benchmarks._common import bare_trainer, loop_seconds_per_step, seconds_per_step, tick_gaps

QUICK_STEPS = 30


def log(text: str) -> None:
    print(f"[benchmarks.pix2pix] {text}", file=sys.stderr, flush=True)


def ensure_demo(folder: Path) -> dict[str, Path]:
    from engine.demo.galaxies import build_galaxies
    from engine.demo.photos import build_photos
    from engine.demo.shapes import build_shapes

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, build in (("shapes", lambda f: build_shapes(f, 400, seed=0)),
                        ("galaxies", lambda f: build_galaxies(f, 400, seed=0)), ("photos", build_photos)):
        path = folder / f"{name}.vbproj"
        if not path.exists():
            log(f"building demo {name} in {folder}")
            build(folder)
        out[name] = path
    return out


def train_and_eval(family: str, project: Path, pairs: str, work: Path, quick: bool) -> tuple[dict, dict]:
    from engine.eval.run import eval_command
    from engine.train.run import train_command

    config = {"pairs": pairs}
    if quick:
        config.update(max_steps=QUICK_STEPS, max_seconds=None)
    t0 = time.perf_counter()
    result = train_command(family, project, work / f"{family}_{pairs}.ckpt", device="cpu", config=config,
                           progress=False, previews_dir=work / f"previews_{family}_{pairs}")
    log(f"{family} {pairs}: {result['steps']} steps in {time.perf_counter() - t0:.0f} s, best {result['best']}")
    scores = eval_command(result["checkpoint"], project, split="val", device="cpu", progress=False)
    return result, scores


def bench_galaxies(project: Path, work: Path, quick: bool) -> dict:
    result, s = train_and_eval("pix2pix", project, "targets", work, quick)
    return {"denoise_galaxies_psnr_gain_db": round(s["psnr"] - s["identity"]["psnr"], 2),
            "denoise_galaxies_psnr": round(s["psnr"], 2),
            "denoise_galaxies_psnr_noisy": round(s["identity"]["psnr"], 2),
            "denoise_galaxies_ssim": round(s["ssim"], 4),
            "denoise_galaxies_ssim_noisy": round(s["identity"]["ssim"], 4),
            "train_s_galaxies": result["seconds"], "steps_galaxies": result["steps"]}


def bench_labels(project: Path, work: Path, quick: bool) -> dict:
    result, s = train_and_eval("pix2pix", project, "labels2photo", work, quick)
    return {"labels2photo_shapes_l1": round(s["l1"], 4),
            "labels2photo_shapes_l1_mean_image": round(s["mean_image"]["l1"], 4),
            "labels2photo_shapes_l1_ratio": round(s["l1"] / s["mean_image"]["l1"], 3),
            "labels2photo_shapes_psnr": round(s["psnr"], 2), "train_s_labels2photo": result["seconds"],
            "steps_labels2photo": result["steps"]}


def bench_colorize(project: Path, work: Path, quick: bool) -> dict:
    result, s = train_and_eval("colorize", project, "colorize", work, quick)
    return {"colorize_photos_psnr": round(s["psnr"], 2),
            "colorize_photos_psnr_gray": round(s["identity"]["psnr"], 2),
            "colorize_photos_ssim": round(s["ssim"], 4),
            "colorize_photos_ssim_gray": round(s["identity"]["ssim"], 4),
            "train_s_colorize": result["seconds"], "steps_colorize": result["steps"]}


def bare_seconds_per_step(spec, project: Path, steps: int, skip: int) -> float:
    """The trainer's networks and batches through a hand-written D-then-G loop."""
    from engine.models.pix2pix import discriminator_losses, generator_losses

    with bare_trainer(spec, project) as (trainer, cfg, _device):
        G, D = trainer.model.G, trainer.model.D
        opt_g, opt_d = trainer.optimizers

        def step(batch) -> None:
            x, y = batch
            fake = G(x)
            opt_d.zero_grad()
            discriminator_losses(D, x, fake, y, cfg["gan_loss"])["loss"].backward()
            opt_d.step()
            D.requires_grad_(False)
            opt_g.zero_grad()
            generator_losses(D, x, fake, y, cfg["gan_loss"], float(cfg["lambda_l1"]),
                             float(cfg["gan_weight"]))["loss"].backward()
            D.requires_grad_(True)
            opt_g.step()

        return seconds_per_step(trainer.batches, step, steps, skip)


def bench_overhead(project: Path, work: Path, quick: bool) -> dict:
    from engine.models.registry import get_family

    spec = get_family("pix2pix")
    steps = 12 if quick else int(spec.cpu_preset["preview_every"])  # one preview at the preset's rate
    loops, bares = [], []
    for r in range(1 if quick else 3):
        loops.append(loop_seconds_per_step(spec, project, work / "overhead.ckpt", steps, skip=3))
        bares.append(bare_seconds_per_step(spec, project, steps, skip=3))
        log(f"overhead round {r + 1}: loop {loops[-1]:.3f} s/step, bare {bares[-1]:.3f} s/step")
    ratios = [a / b for a, b in zip(loops, bares)]
    return {"train_overhead_vs_bare_loop": round(statistics.median(ratios), 3),
            "s_per_step_pix2pix": round(statistics.median(loops), 4)}


def bench_gui(project: Path, work: Path, seconds: float) -> dict:
    from benchmarks._common import live_views_harness, start_click_ms
    from engine.jobs import Job
    from engine.models.registry import get_family

    _app, bridge, views = live_views_harness()
    idle = tick_gaps(5.0)
    previews = []
    bridge.preview.connect(lambda j, e: previews.append(e.name))
    spec = get_family("pix2pix")
    start_ms = start_click_ms(views, spec)
    config = dict(spec.cpu_preset, pairs="targets", epochs=100, cpu_threads=-1, preview_every=5, nice=5)
    job_id = bridge.submit(Job("train pix2pix", spec.train, store_path=str(project), out=str(work / "gui.ckpt"),
                               config=config))
    gaps = tick_gaps(seconds)
    bridge.cancel(job_id)
    bridge.shutdown(timeout=60)
    views.close()
    log(f"gui: {len(gaps)} ticks, {len(previews)} previews, max gap {gaps.max():.1f} ms (idle {idle.max():.1f} ms)")
    return {"gui_max_stall_ms_while_training": round(float(gaps.max()), 1),
            "gui_p99_tick_gap_ms": round(float(np.percentile(gaps, 99)), 1),
            "gui_max_stall_ms_idle": round(float(idle.max()), 1),
            "gui_start_click_ms": round(start_ms, 1), "gui_previews_seen": len(previews),
            "gui_seconds": seconds}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pix2pix")
    parser.add_argument("--only", default="galaxies,labels,colorize,overhead,gui")
    parser.add_argument("--demo", default=None, help="folder with (or for) the demo projects")
    parser.add_argument("--keep", default=None, help="folder for checkpoints and previews (default: a temp folder)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} training steps each: a smoke run")
    args = parser.parse_args(argv)
    parts = args.only.split(",")
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_pix2pix_"))
    work.mkdir(parents=True, exist_ok=True)
    demo = ensure_demo(Path(args.demo) if args.demo else work / "demo")
    out: dict = {"quick": args.quick, "torch_threads": torch.get_num_threads()}
    runs = {"galaxies": lambda: bench_galaxies(demo["galaxies"], work, args.quick),
            "labels": lambda: bench_labels(demo["shapes"], work, args.quick),
            "colorize": lambda: bench_colorize(demo["photos"], work, args.quick),
            "overhead": lambda: bench_overhead(demo["galaxies"], work, args.quick),
            "gui": lambda: bench_gui(demo["galaxies"], work, 10.0 if args.quick else 30.0)}
    for part in parts:
        t0, c0 = time.perf_counter(), time.process_time()
        out.update(runs[part]())
        out[f"wall_s_{part}"] = round(time.perf_counter() - t0, 1)
        out[f"cpu_s_{part}"] = round(time.process_time() - c0, 1)
        log(json.dumps(out))
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

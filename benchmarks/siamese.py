"""Siamese verification, one-shot recognition and image search on the CPU.

``python -m benchmarks.siamese [--only train,search,embed,overhead,gui] [--demo DIR]`` prints JSON:

- ``oneshot_acc_20way_glyphs``: 20-way one-shot accuracy on the unseen (validation) glyph
  identities after `visionbench train siamese --project glyphs.vbproj` with no other flag (the
  CPU preset and its time budget); goal >= 0.90 (Koch et al. report 92 % on Omniglot);
- ``eer_glyphs``: the EER of the validation pairs with that embedding; ``eer_glyphs_pretrained_only``:
  the same pairs with the untrained pretrained encoder (its pooled 1280 features, unit length);
  goal: trained <= 0.5 x pretrained-only and <= 0.05;
- ``search_ms_p50_100k``: a top-10 query over 100,000 stored 128-D unit embeddings (p50 of 200);
  goal <= 20 ms;
- ``embed_images_per_s`` and ``embed_overhead_vs_bare_model`` (the predictor's ``embed_crops``
  over the bare network on the same batches; goal <= 1.10);
- ``train_overhead_vs_bare_loop``: ``engine.train.loop.fit`` over a hand-written loop on the
  same trainer's model, batches and mining (benchmarks.platform's measure); goal <= 1.10;
- ``gui_max_stall_ms_while_training``: the longest gap between ticks of a 10 ms QTimer while the
  live views (curves, the embedding scatter, the hardest triplets) follow a training; goal <= 50 ms;
  ``gui_start_click_ms``: what the Start click costs the GUI thread before (building and laying out
  the panes of the family's previews, as the Train panel does), measured apart.
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

import numpy as np
import torch

from benchmarks._common import print_result


def log(text: str) -> None:
    print(f"[benchmarks.siamese] {text}", file=sys.stderr, flush=True)


def ensure_glyphs(folder: Path) -> Path:
    project = folder / "glyphs.vbproj"
    if not project.exists():
        from engine.demo.glyphs import build_glyphs

        build_glyphs(folder)
    return project


def bench_train(project: Path, work: Path) -> dict:
    """The CLI's defaults, then eval on the validation identities, then the pretrained-only EER."""
    from engine import cli

    ckpt = work / "siamese.ckpt"
    t0 = time.perf_counter()
    out = work / "train.json"
    code = _run_cli(cli, ["train", "siamese", "--project", str(project), "--out", str(ckpt)], out)
    train_s = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"train exited {code}")
    result = json.loads(out.read_text())
    code = _run_cli(cli, ["eval", str(ckpt), "--project", str(project), "--split", "val"], work / "eval.json")
    report = json.loads((work / "eval.json").read_text())
    pre = pretrained_only(project)
    log(f"trained {result['steps']} steps in {train_s:.0f} s: 20-way {report['oneshot_acc_20way']:.3f}, "
        f"EER {report['eer']:.4f} (pretrained only {pre['eer']:.4f})")
    return {"oneshot_acc_20way_glyphs": report["oneshot_acc_20way"],
            "oneshot_acc_5way_glyphs": report["oneshot_acc_5way"],
            "eer_glyphs": report["eer"], "roc_auc_glyphs": report["roc_auc"], "tau_glyphs": report["tau"],
            "acc_at_tau_glyphs": report["acc_at_tau"], "eer_glyphs_pretrained_only": pre["eer"],
            "oneshot_acc_20way_glyphs_pretrained_only": pre["oneshot_acc_20way"],
            "train_wall_s": round(train_s, 1), "train_steps": result["steps"], "val_identities": report["identities"]}


def _run_cli(cli, argv: list[str], out: Path) -> int:
    import contextlib

    with open(out, "w") as fh, contextlib.redirect_stdout(fh):
        return cli.main(argv)


def pretrained_only(project: Path) -> dict:
    """The verification figures of the same validation pairs with the untrained encoder."""
    from engine.annotations.store import ProjectStore
    from engine.data.identities import identity_items, load_crops, split_identities
    from engine.eval.verification import verification_report
    from engine.models.siamese import CPU_PRESET, SiameseNet
    from engine.train.siamese import embed_crops

    with ProjectStore(project, readonly=True) as store:
        items, _ = identity_items(store)
        val = split_identities(store, items)["val"]
        crops = load_crops(store, val, int(CPU_PRESET["input_size"]))
    names = sorted({it.identity for it in val})
    labels = np.array([names.index(it.identity) for it in val])
    model = SiameseNet(128, pretrained=True)
    feats = embed_crops(model, crops, torch.device("cpu"), features=True)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    return verification_report(feats, labels)


def bench_search(n: int = 100_000, dim: int = 128, queries: int = 200) -> dict:
    from engine.infer.embedding_index import top_k

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    times = []
    for q in range(queries):
        query = vectors[q] + rng.normal(0, 0.1, dim).astype(np.float32)
        query /= np.linalg.norm(query)
        t0 = time.perf_counter()
        hits = top_k(vectors, query, 10)
        times.append((time.perf_counter() - t0) * 1e3)
        assert hits[0][0] == q
    return {"search_ms_p50_100k": round(statistics.median(times), 3),
            "search_ms_p99_100k": round(float(np.percentile(times, 99)), 3)}


def bench_embed(project: Path, work: Path, n: int = 512, rounds: int = 3) -> dict:
    """predictor.embed_crops against the bare network on the same uint8 crops (batches of 128)."""
    from engine.annotations.store import ProjectStore
    from engine.data.identities import identity_items, load_crops
    from engine.infer.siamese_predictor import SiamesePredictor
    from engine.models.checkpoint import save_checkpoint
    from engine.models.siamese import CPU_PRESET, build_siamese
    from engine.train.loop import cpu_threads

    ckpt = work / "siamese.ckpt"
    if not ckpt.exists():
        model = build_siamese(CPU_PRESET)
        save_checkpoint(ckpt, model.state_dict(), {"family": "siamese", "kind": "embedding", "classes": [],
                                                   "config": dict(CPU_PRESET), "metrics": {}, "input_size": 64})
    predictor = SiamesePredictor.from_checkpoint(ckpt, "cpu")
    with ProjectStore(project, readonly=True) as store:
        items, _ = identity_items(store)
        crops = load_crops(store, items[:n], predictor.input_size)
    model = predictor.model
    ours, bare = [], []
    with cpu_threads(torch.device("cpu"), -1):
        predictor.embed_crops(crops[:128])  # warm-up
        for _ in range(rounds):
            t0 = time.perf_counter()
            predictor.embed_crops(crops)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with torch.inference_mode():
                for s in range(0, len(crops), 128):
                    x = torch.from_numpy(crops[s:s + 128]).permute(0, 3, 1, 2).float() / 255.0
                    model(x).numpy()
            bare.append(time.perf_counter() - t0)
    return {"embed_images_per_s": round(n / min(ours), 1),
            "embed_overhead_vs_bare_model": round(min(ours) / min(bare), 3)}


def bench_overhead(project: Path, work: Path, steps: int = 12, rounds: int = 3) -> dict:
    from benchmarks.platform import bare_seconds_per_step, loop_seconds_per_step
    from engine.models.registry import get_family

    spec = get_family("siamese")
    ratios, loops = [], []
    for r in range(rounds):
        loop = loop_seconds_per_step(spec, project, work / "overhead.ckpt", steps, skip=3)
        bare = bare_seconds_per_step(spec, project, steps, skip=3)
        log(f"overhead round {r + 1}: loop {loop:.3f} s/step, bare {bare:.3f} s/step")
        ratios.append(loop / bare)
        loops.append(loop)
    return {"train_overhead_vs_bare_loop": round(statistics.median(ratios), 3),
            "s_per_step_siamese": round(statistics.median(loops), 3)}


def bench_gui(project: Path, work: Path, seconds: float = 40.0) -> dict:
    from benchmarks._common import live_views_harness, start_click_ms, tick_gaps
    from engine.jobs import Job
    from engine.models.registry import get_family

    _app, bridge, views = live_views_harness()
    idle = tick_gaps(5.0)
    scatters, steps = [], []
    bridge.progress.connect(lambda j, e: steps.append(e.step or 0))
    bridge.preview.connect(lambda j, e: scatters.append(e.name))
    spec = get_family("siamese")
    start_ms = start_click_ms(views, spec)
    # as the Train panel runs it, with the scatter redrawn every 5 steps (the preset: every 50)
    config = dict(spec.cpu_preset, cpu_threads=-1, preview_every=5, nice=5)
    job_id = bridge.submit(Job("train siamese", spec.train, store_path=str(project), out=str(work / "gui.ckpt"),
                               config=config))
    # reading the pictures and the frozen stem's features come first (tens of seconds): measured
    # apart, then the training steps with their live views
    started = time.perf_counter()
    setup = []
    while not any(s > 0 for s in steps) and time.perf_counter() - started < 600:
        setup.append(tick_gaps(1.0))
    setup_gaps = np.concatenate(setup) if setup else np.zeros(1)
    gaps = tick_gaps(seconds)
    bridge.cancel(job_id)
    bridge.shutdown(timeout=60)
    views.close()
    seen = sum(1 for n in scatters if n == "embedding")
    log(f"gui: {len(gaps)} ticks, {seen} scatters drawn, max gap {gaps.max():.1f} ms (idle {idle.max():.1f} ms, "
        f"setup {setup_gaps.max():.1f} ms)")
    return {"gui_max_stall_ms_while_training": round(float(gaps.max()), 1),
            "gui_p99_tick_gap_ms": round(float(np.percentile(gaps, 99)), 1),
            "gui_max_stall_ms_idle": round(float(idle.max()), 1),
            "gui_start_click_ms": round(start_ms, 1), "gui_scatters_drawn": seen,
            "gui_max_stall_ms_setup": round(float(setup_gaps.max()), 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.siamese")
    parser.add_argument("--only", default="train,search,embed,overhead,gui")
    parser.add_argument("--demo", default=None, help="folder with (or for) glyphs.vbproj")
    parser.add_argument("--work", default=None, help="folder for the checkpoint and the commands' JSON (kept)")
    args = parser.parse_args(argv)
    parts = args.only.split(",")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_siamese_"))
    work.mkdir(parents=True, exist_ok=True)
    project = ensure_glyphs(Path(args.demo) if args.demo else work / "demo")
    result: dict = {"cpu_count": os.cpu_count()}
    runs = {"search": lambda: bench_search(), "embed": lambda: bench_embed(project, work),
            "overhead": lambda: bench_overhead(project, work), "gui": lambda: bench_gui(project, work),
            "train": lambda: bench_train(project, work)}
    for name in parts:
        wall = time.perf_counter()
        result.update(runs[name]())
        result[f"wall_s_{name}"] = round(time.perf_counter() - wall, 1)
        log(json.dumps(result))  # what is measured so far, should a later part not finish
    return print_result(result)


if __name__ == "__main__":
    main()

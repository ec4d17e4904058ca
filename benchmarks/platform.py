"""What the one training loop costs over a bare PyTorch loop, per family.

``python -m benchmarks.platform [--only unet,yolo,...] [--steps N] [--rounds R]`` prints JSON:

- ``train_overhead_vs_bare_loop_<family>``: seconds per step of ``engine.train.loop.fit`` (the
  family's CPU preset, as `visionbench train` runs it: LR schedule, NaN check, events, previews
  at the preset's rate) over seconds per step of a bare loop (zero_grad, the family's loss,
  backward, optimiser step) on the same trainer's model and batches; the median of ``--rounds``
  alternating rounds of ``--steps`` steps each. Goal: <= 1.10 for every family;
- ``train_overhead_vs_bare_loop``: the worst of them;
- ``s_per_step_<family>``: the loop's seconds per step.

Both sides run with the loop's thread policy (all cores but one) on a small demo shapes project
(40 images: validation, which happens once at the end, is not timed).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks._common import bare_trainer, loop_seconds_per_step, seconds_per_step


def log(text: str) -> None:
    print(f"[benchmarks.platform] {text}", file=sys.stderr, flush=True)


def bare_seconds_per_step(spec, project: Path, steps: int, skip: int) -> float:
    """The same trainer's model and batches through a hand-written loop."""
    from engine.train.loop import to_device

    with bare_trainer(spec, project) as (trainer, cfg, device):
        model, opt = trainer.model, trainer.optimizers[0]
        model.train()

        def step(batch) -> None:
            batch = to_device(batch, device)
            opt.zero_grad(set_to_none=True)
            trainer.loss(batch)["loss"].backward()
            if cfg.get("clip_grad"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg["clip_grad"]))
            opt.step()

        return seconds_per_step(trainer.batches, step, steps, skip)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="unet,yolo,fasterrcnn,maskrcnn")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from engine.demo.shapes import build_shapes
    from engine.models.registry import get_family

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = build_shapes(Path(tmp), n_images=40, seed=0)
        for name in args.only.split(","):
            spec = get_family(name)
            loops, bares = [], []
            for r in range(args.rounds):
                loops.append(loop_seconds_per_step(spec, project, Path(tmp) / f"{name}.ckpt", args.steps, skip=3))
                bares.append(bare_seconds_per_step(spec, project, args.steps, skip=3))
                log(f"{name} round {r + 1}: loop {loops[-1]:.3f} s/step, bare {bares[-1]:.3f} s/step")
            ratios = [a / b for a, b in zip(loops, bares)]
            out[f"train_overhead_vs_bare_loop_{name}"] = round(statistics.median(ratios), 3)
            out[f"s_per_step_{name}"] = round(statistics.median(loops), 4)
    out["train_overhead_vs_bare_loop"] = max(v for k, v in out.items() if k.startswith("train_overhead_vs_bare_loop_"))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

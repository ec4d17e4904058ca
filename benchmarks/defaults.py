"""What users get from the defaults: `visionbench train FAMILY --project shapes.vbproj --out F`
with no other flag, on the CPU, for each built-in family.

``python -m benchmarks.defaults [--only unet,yolo,fasterrcnn,maskrcnn] [--demo DIR]`` builds the
demo (``visionbench demo``) unless DIR holds it, runs the command line exactly as a user would
(a subprocess per family, one after the other), and prints JSON:

- ``<family>_default_train_s``: wall time of the whole command (start-up, data loading,
  training, validation, checkpoint). Goal: <= 720 s (12 minutes) on a 2-core CPU;
- ``unet_default_miou``, ``yolo_default_box_map50``, ``fasterrcnn_default_box_map50``,
  ``maskrcnn_default_mask_map50``: the family's metric on the val split, for the checkpoint the
  run wrote (the best validation), as ``visionbench train`` reports it. Goals: 0.85, 0.7, 0.7, 0.6;
- ``<family>_default_steps``, ``<family>_default_stopped``: steps done and why training stopped.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METRIC = {"unet": ("miou", "unet_default_miou"), "yolo": ("box_map50", "yolo_default_box_map50"),
          "fasterrcnn": ("box_map50", "fasterrcnn_default_box_map50"),
          "maskrcnn": ("mask_map50", "maskrcnn_default_mask_map50")}


def log(text: str) -> None:
    print(f"[benchmarks.defaults] {text}", file=sys.stderr, flush=True)


def visionbench(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("visionbench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "engine.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="unet,yolo,fasterrcnn,maskrcnn")
    parser.add_argument("--demo", default=None, help="folder with (or for) the demo projects")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(args.demo) if args.demo else Path(tmp) / "demo"
        project = demo / "shapes.vbproj"
        if not project.exists():
            log(f"building the demo in {demo}")
            run = visionbench("demo", "--out", str(demo))
            if run.returncode != 0:
                raise SystemExit(run.stderr)
        out: dict = {}
        for family in args.only.split(","):
            ckpt = Path(tmp) / f"{family}.ckpt"
            log(f"visionbench train {family} --project {project} --out {ckpt}")
            t0 = time.perf_counter()
            run = visionbench("train", family, "--project", str(project), "--out", str(ckpt))
            seconds = time.perf_counter() - t0
            if run.returncode != 0:
                log(f"{family} failed: {run.stderr[-2000:]}")
                out[f"{family}_default_error"] = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "?"
                continue
            result = json.loads(run.stdout)
            metric, key = METRIC[family]
            out[key] = round(float((result.get("best") or {}).get(metric) or 0.0), 4)
            out[f"{family}_default_train_s"] = round(seconds, 1)
            out[f"{family}_default_steps"] = int(result.get("steps", 0))
            out[f"{family}_default_stopped"] = result.get("stopped")
            log(f"{family}: {key} {out[key]} in {seconds:.0f} s ({result.get('steps')} steps)")
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

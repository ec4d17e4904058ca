"""Training beyond one process, on this machine's CPU with gloo: does DDP compute what one process
computes, does a resumed run continue exactly, and do exported models agree with PyTorch?

``python -m benchmarks.distributed [--demo DIR] [--steps 20]`` builds the demo unless DIR holds
it and prints JSON:

- ``ddp2_vs_single_loss_max_abs_diff_<family>`` (unet, yolo): ``torchrun --nproc-per-node 2``
  with batch B per process against one process with batch 2B, same seed and data order, over
  the first ``--steps`` steps (the logged loss, the mean over the ranks). Goal <= 1e-4. The
  families' CPU presets (the U-Net's Dice included: its sums run over the ranks), except that
  YOLO's augmentation is off (each rank draws its own random flips and colour jitter, one
  process draws others; the point here is the arithmetic);
- ``single_reordered_vs_single_loss_max_abs_diff_<family>``: the floor float32 rounding sets for
  the figure above. One process with batch 2B against itself with each batch's images laid out
  as the two ranks hold them (rank 0's B, then rank 1's): the same samples, the same model, only
  the order of the sums inside each step differs;
- ``ddp2_vs_single_loss_max_abs_diff_float64_<family>``: the first figure with the model, the
  loss and the all-reduces in float64 (the worker sets torch's default dtype and casts float32
  inputs of every module): with rounding out of the way, what is left is any difference in
  what the two runs compute;
- ``ddp2_step_overhead_vs_single_<family>``: the mean step time of 2 gloo processes with batch B
  on 2 cores over one process with batch B (no goal on CPU: the point is correctness here and
  speed on GPUs);
- ``resume_loss_max_abs_diff_unet``: a U-Net run stopped after 10 steps and resumed, against an
  uninterrupted run, over the next ``--steps`` steps. Goal <= 1e-5;
- ``onnx_max_abs_diff_<family>``: onnxruntime against PyTorch on 4 demo photos for each exported
  family (probabilities for U-Net; matched boxes and scores for the detectors). Goal <= 1e-3.
  The R-CNN exports take one fixed size: each whole photo (four sizes) is letterboxed into it,
  and every detection is compared, the low-scoring tail included
  (``onnx_unmatched_detections_<family>``: those without a twin, or the difference in count).
  The models are the families' CPU-preset models (pretrained Lite0 backbone, untrained heads with
  a sharpened classifier so that scores do not tie): the export is what is measured, not training.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = {"unet": 2, "yolo": 4}


def log(text: str) -> None:
    print(f"[benchmarks.distributed] {text}", file=sys.stderr, flush=True)


def family_config(family: str, batch: int, steps: int) -> dict:
    from engine.models.registry import get_family

    cfg = get_family(family).preset("cpu")
    cfg.update({"batch_size": batch, "max_steps": steps, "max_seconds": None, "epochs": 50, "seed": 0,
                "device": "cpu", "preview_every": 0})
    if family == "yolo":
        cfg.update({"hflip": False, "vflip": False, "brightness": 0.0, "contrast": 0.0})
    if family == "unet":
        cfg.update({"augment": False, "val_limit": 8})  # the CPU preset has no augmentation either
    return cfg


def set_mode(mode: str) -> None:
    """How a worker computes: "float32" (as the product does), "float64" (the model, the loss
    and the collectives in float64: the default dtype, and every module's float32 inputs cast),
    or "reordered" (one process whose batches hold their 2B images as two ranks hold them:
    indices 0, 2, 4, ... then 1, 3, 5, ... of each batch)."""
    import torch

    if mode == "float64":
        from torch.nn.modules.module import register_module_forward_pre_hook

        torch.set_default_dtype(torch.float64)
        register_module_forward_pre_hook(lambda module, args: tuple(
            a.double() if isinstance(a, torch.Tensor) and a.dtype == torch.float32 else a for a in args))
    elif mode == "reordered":
        from engine.train import sampling

        plain = sampling.EpochSampler._mine

        def as_ranks_hold_them(self):
            order, b = plain(self), self.batch_size
            return [i for k in range(0, len(order), b) for i in order[k:k + b][0::2] + order[k:k + b][1::2]]

        sampling.EpochSampler._mine = as_ranks_hold_them


def worker(family: str, project: str, out: str, config: str, mode: str = "float32") -> int:
    """One process of a run (alone or under torchrun): losses and step times per rank to OUT."""
    import torch

    set_mode(mode)
    from engine.jobs.cancel import CancelToken
    from engine.jobs.events import Metrics
    from engine.models.registry import get_family

    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", "0"))
    losses, times = [], []
    last = time.perf_counter()
    gen = get_family(family).train(CancelToken(), project, str(Path(out) / "model.ckpt"), json.loads(config))
    try:
        while True:
            event = next(gen)
            if isinstance(event, Metrics) and "loss" in event.values:
                now = time.perf_counter()
                losses.append(event.values["loss"])
                times.append(now - last)
                last = now
            elif isinstance(event, Metrics):
                last = time.perf_counter()
    except StopIteration:
        pass
    Path(out, f"rank{rank}.json").write_text(json.dumps({"losses": losses, "times": times}))
    return 0


def run(family: str, project: Path, out: Path, cfg: dict, nproc: int, mode: str = "float32") -> dict:
    out.mkdir(parents=True, exist_ok=True)
    # as a module (-m), from the repository: run as a script, benchmarks/platform.py would hide the stdlib's
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m"]
              if nproc > 1 else [sys.executable, "-m"])
    done = subprocess.run([*launch, "benchmarks.distributed", "--worker", family, str(project), str(out),
                           json.dumps(cfg), mode], capture_output=True, text=True, cwd=str(ROOT),
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise SystemExit(f"{family} x{nproc} failed:\n{done.stderr[-3000:]}")
    return json.loads((out / "rank0.json").read_text())


def ddp_figures(project: Path, tmp: Path, steps: int, controls: bool = True) -> dict:
    figures = {}

    def max_diff(a: dict, b: dict) -> float:
        return max(abs(x - y) for x, y in zip(a["losses"], b["losses"]))

    for family, b in BATCH.items():
        log(f"{family}: 1 process with batch {2 * b}, 2 processes with batch {b}, 1 process with batch {b}")
        single = run(family, project, tmp / f"{family}-1x{2 * b}", family_config(family, 2 * b, steps), 1)
        ddp = run(family, project, tmp / f"{family}-2x{b}", family_config(family, b, steps), 2)
        alone = run(family, project, tmp / f"{family}-1x{b}", family_config(family, b, steps), 1)
        diffs = [abs(a - c) for a, c in zip(single["losses"], ddp["losses"])]
        figures[f"ddp2_vs_single_loss_max_abs_diff_{family}"] = max(diffs)
        figures[f"ddp2_vs_single_first_step_abs_diff_{family}"] = diffs[0]
        figures[f"ddp2_vs_single_abs_diff_by_step_{family}"] = [float(f"{d:.2g}") for d in diffs]
        if controls:
            log(f"{family}: 1 process with each batch in the ranks' order; 1 and 2 processes in float64")
            reordered = run(family, project, tmp / f"{family}-1x{2 * b}-reordered",
                            family_config(family, 2 * b, steps), 1, "reordered")
            figures[f"single_reordered_vs_single_loss_max_abs_diff_{family}"] = max_diff(single, reordered)
            figures[f"single_reordered_vs_single_abs_diff_by_step_{family}"] = [
                float(f"{abs(x - y):.2g}") for x, y in zip(single["losses"], reordered["losses"])]
            single64 = run(family, project, tmp / f"{family}-1x{2 * b}-f64", family_config(family, 2 * b, steps), 1,
                           "float64")
            ddp64 = run(family, project, tmp / f"{family}-2x{b}-f64", family_config(family, b, steps), 2, "float64")
            figures[f"ddp2_vs_single_loss_max_abs_diff_float64_{family}"] = max_diff(single64, ddp64)
        # the first steps pay for warm-up; compare the steady ones
        mean = lambda t: sum(t[3:] or t) / max(1, len(t[3:] or t))  # noqa: E731
        figures[f"ddp2_step_overhead_vs_single_{family}"] = round(mean(ddp["times"]) / mean(alone["times"]), 3)
        figures[f"ddp2_steps_{family}"] = len(ddp["losses"])
    return figures


def resume_figure(project: Path, tmp: Path, steps: int) -> dict:
    import torch

    from engine.jobs.cancel import CancelToken, JobCancelled
    from engine.jobs.events import Metrics, Progress
    from engine.models.registry import get_family

    torch.set_num_threads(1)
    spec = get_family("unet")
    cfg = family_config("unet", 2, None)
    cfg.update({"epochs": 2, "max_steps": 10 + steps})

    def losses(config, out, stop_at=None):
        token, got = CancelToken(), []
        gen = spec.train(token, str(project), str(out), config)
        try:
            while True:
                e = next(gen)
                if isinstance(e, Metrics) and "loss" in e.values:
                    got.append(e.values["loss"])
                if stop_at and isinstance(e, Progress) and e.step == stop_at:
                    token.cancel()
        except (StopIteration, JobCancelled):
            pass
        return got

    log("unet: a straight run, and one stopped after 10 steps then resumed")
    straight = losses(cfg, tmp / "straight.ckpt")
    first = losses(cfg, tmp / "resumed.ckpt", stop_at=10)
    rest = losses({**cfg, "resume": str(tmp / "resumed.ckpt")}, tmp / "resumed.ckpt")
    both = first + rest
    return {"resume_loss_max_abs_diff_unet": max(abs(a - b) for a, b in zip(straight[10:], both[10:])),
            "resume_steps_compared": len(both[10:])}


def onnx_figures(tmp: Path) -> dict:
    import numpy as np
    import onnxruntime as ort
    import skimage.data
    import torch

    from engine.infer.deploy import deployable, write_deployable
    from engine.infer.onnx_export_detector import letterbox
    from engine.models.checkpoint import save_checkpoint
    from engine.models.rcnn import build_rcnn
    from engine.models.registry import get_family
    from engine.models.unet import build_unet
    from engine.models.yolo import build_yolo

    torch.set_num_threads(1)
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    classes = ["circle", "rectangle", "triangle"]
    figures, unmatched = {}, {}
    for family in ("unet", "fasterrcnn", "maskrcnn", "yolo"):
        cfg = get_family(family).preset("cpu")
        torch.manual_seed(0)
        if family == "unet":
            model = build_unet(cfg, len(classes))
        elif family == "yolo":
            model = build_yolo(cfg, len(classes))
        else:
            model = build_rcnn(cfg, len(classes), masks=family == "maskrcnn")
            g = torch.Generator().manual_seed(0)
            with torch.no_grad():  # a sharp classifier: untrained scores all but tie
                for t in (model.roi_heads.box_predictor.cls_score.weight, model.roi_heads.box_predictor.cls_score.bias):
                    t.copy_(torch.randn(t.shape, generator=g) * 3.0)
        ckpt = save_checkpoint(tmp / f"{family}.ckpt", model.state_dict(),
                               {"family": family, "classes": classes, "config": cfg, "metrics": {}})
        d = deployable(ckpt)
        write_deployable(d, "onnx", tmp / f"{family}.onnx")
        session = ort.InferenceSession(str(tmp / f"{family}.onnx"), providers=["CPUExecutionProvider"])
        worst = 0.0
        for rgb in photos:
            x = torch.from_numpy(rgb[:256, :384].copy()).permute(2, 0, 1).float() / 255.0
            if family == "unet":
                t = d.meta["input_size"]
                x = torch.from_numpy(rgb[:t, :t].copy()).permute(2, 0, 1).float()[None] / 255.0
            elif family == "yolo":
                s = d.meta["input_size"]
                x = torch.nn.functional.interpolate(x[None], size=(s, s), mode="bilinear", align_corners=False)
            else:  # R-CNN: the whole photo (each of another size) letterboxed into the export's fixed input
                x = torch.from_numpy(letterbox(rgb, d.meta["input_size"], d.meta["pad_value"])[0])
            with torch.no_grad():
                ref = d.module(x)
            got = session.run(None, {"image": x.numpy()})
            if family == "unet":
                worst = max(worst, float(np.abs(got[0] - ref.numpy()).max()))
                continue
            boxes, labels, scores = (t.numpy() for t in ref[:3])
            if len(got[0]) != len(boxes):
                unmatched[family] = unmatched.get(family, 0) + abs(len(got[0]) - len(boxes))
            # every detection, the low-scoring tail included, must have its twin in the other runtime
            for b, lab, sc in zip(boxes, labels, scores):
                same = (got[1] == lab) & (np.abs(got[2] - sc) <= 1e-3)
                if not same.any():
                    unmatched[family] = unmatched.get(family, 0) + 1
                    continue
                worst = max(worst, float(np.abs(got[0][same] - b).max(axis=1).min()),
                            float(np.abs(got[2][same] - sc).min()))
        figures[f"onnx_max_abs_diff_{family}"] = worst
        if family in ("fasterrcnn", "maskrcnn"):
            figures[f"onnx_unmatched_detections_{family}"] = unmatched.get(family, 0)
    return figures


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        return worker(*argv[1:6])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", default=None, help="folder with (or for) the demo projects")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--only", default="ddp,resume,onnx", help="which parts: ddp, resume, onnx")
    parser.add_argument("--no-controls", action="store_true",
                        help="ddp without the reordered and float64 runs (half the time)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        demo = Path(args.demo) if args.demo else tmp / "demo"
        project = demo / "shapes.vbproj"
        parts = set(args.only.split(","))
        if parts & {"ddp", "resume"} and not project.exists():  # the onnx part needs no demo project
            log(f"building the demo in {demo}")
            done = subprocess.run([sys.executable, "-m", "engine.cli", "demo", "--out", str(demo)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(done.stderr)
        out = {}
        for name, part in (("ddp", lambda: ddp_figures(project, tmp, args.steps, not args.no_controls)),
                           ("resume", lambda: resume_figure(project, tmp, args.steps)),
                           ("onnx", lambda: onnx_figures(tmp))):
            if name in parts:
                out.update(part())
                log(json.dumps(out))  # what is measured so far
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

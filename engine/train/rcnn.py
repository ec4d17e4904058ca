"""Training job for the R-CNN families: a generator yielding Progress/Metrics/Log events.

Shape of the job (the same as every Visionbench trainer): read the project read-only, build the
model for its categories, run SGD with warm-up and cosine decay, yield a Progress and the loss
components at every step (each yield is a cancel point), evaluate on the "val" split at every
epoch end with pycocotools (box mAP@0.5, and mask mAP@0.5 for Mask R-CNN) and write the
checkpoint atomically then, so a cancelled or crashed run keeps its last finished epoch.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from engine.annotations.errors import BadInput
from engine.data.datasets import open_project, resolve_classes
from engine.data.detection import (DetectionDataset, collate_detection, detection_augmentation,
                                   load_detection_samples, samples_to_gt)
from engine.device import pick_device, seed_everything
from engine.jobs.events import Log, Metrics, Progress
from engine.models.checkpoint import save_checkpoint
from engine.models.rcnn import build_rcnn, preset_for

__all__ = ["MAX_BAD_STEPS", "evaluate_model", "train_rcnn"]

MAX_BAD_STEPS = 5  # consecutive non-finite losses before the run is stopped


def _lr_factor(step: int, warmup: int, done: float) -> float:
    """Linear warm-up (over ``warmup`` steps) from 0.1, then cosine decay to 0.05 of the base rate
    as the fraction ``done`` of the run (steps or time budget, whichever is further) goes 0 -> 1."""
    if step < warmup:
        return 0.1 + 0.9 * step / max(warmup, 1)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(max(done, 0.0), 1.0)))


def evaluate_model(model, samples, class_names: list[str], category_ids: list[int], device,
                   masks: bool, should_stop=None) -> dict:
    """COCO metrics of ``model`` on ``samples``: {"box_map50", "box_map"[, "mask_map50", "mask_map"]}.

    Uses the same predictor code as ``visionbench predict`` (score floor 0.05, NMS 0.5).
    """
    from engine.eval.coco_eval import evaluate_detections
    from engine.infer.rcnn_predictor import RcnnPredictor

    predictor = RcnnPredictor(model, class_names, name="val", device=device)
    preds = []
    for s in samples:
        if should_stop is not None:
            should_stop()
        preds.append(predictor.predict(s.image, score_threshold=0.05, nms_iou=0.5))
    gt = samples_to_gt(samples, category_ids)
    cats = [{"id": cid, "name": n} for cid, n in zip(category_ids, class_names)]
    out = {}
    box = evaluate_detections(gt, preds, cats, "bbox")
    out["box_map50"], out["box_map"] = box["map50"] or 0.0, box["map"] or 0.0
    out["per_class_box_ap50"] = {k: v["ap50"] for k, v in box["per_class"].items()}
    if masks:
        seg = evaluate_detections(gt, preds, cats, "segm")
        out["mask_map50"], out["mask_map"] = seg["map50"] or 0.0, seg["map"] or 0.0
        out["per_class_mask_ap50"] = {k: v["ap50"] for k, v in seg["per_class"].items()}
    return out


def train_rcnn(token, store_path, out, config: dict, family: str = "fasterrcnn"):
    """Train ``family`` ("fasterrcnn" | "maskrcnn") on the project at ``store_path``.

    config: overrides of the device preset (engine.models.rcnn.CPU_PRESET / GPU_PRESET), plus
    "device" ("auto"), "classes" (category names; default all), "max_steps" (stop early; tests),
    "max_seconds" (a time budget: the learning rate decays over it, and the epoch under way when it
    runs out is evaluated and saved), "eval_every" (validate every N epochs and at the end; 1).
    Returns {"checkpoint": str, "metrics": dict, "steps": int, "seconds": float}.
    """
    masks = family == "maskrcnn"
    device = pick_device(config.get("device", "auto"))
    cfg = {**preset_for(device.type), **{k: v for k, v in config.items() if k != "device"}}
    seed_everything(int(cfg["seed"]))
    out = Path(out)
    store = open_project(store_path)
    try:
        categories = resolve_classes(store, cfg.get("classes"))
        yield Log(f"{family}: reading project {store_path}")
        train = load_detection_samples(store, categories, "train", with_masks=masks,
                                       should_stop=token.raise_if_cancelled)
        val = load_detection_samples(store, categories, "val", with_masks=masks,
                                     should_stop=token.raise_if_cancelled)
    finally:
        store.close()
    if not train.samples:
        raise BadInput(str(store_path), "split", "no annotated images in the 'train' split with boxes, "
                       "masks or polygons of the chosen categories")
    if masks and train.box_only_masks:
        yield Log(f"{train.box_only_masks} objects have a box but no mask; their filled box is used "
                  f"as the mask", level="warning")
    class_names = [c.name for c in categories]
    category_ids = [c.id for c in categories]
    model = build_rcnn(cfg, len(categories), masks=masks).to(device)
    transform = detection_augmentation(hflip=bool(cfg["hflip"]), vflip=bool(cfg["vflip"]))
    loader = DataLoader(DetectionDataset(train.samples, transform), batch_size=int(cfg["batch_size"]),
                        shuffle=True, collate_fn=collate_detection, num_workers=0,
                        generator=torch.Generator().manual_seed(int(cfg["seed"])))
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.SGD(params, lr=float(cfg["lr"]), momentum=float(cfg["momentum"]),
                            weight_decay=float(cfg["weight_decay"]))
    epochs = int(cfg["epochs"])
    total = epochs * len(loader)
    if cfg.get("max_steps"):
        total = min(total, int(cfg["max_steps"]))
    base_lr = float(cfg["lr"])
    budget = float(cfg.get("max_seconds") or 0.0)
    step, bad, t0, out_of_time = 0, 0, time.perf_counter(), False
    metrics: dict = {}
    meta_config = {k: v for k, v in cfg.items() if k not in ("max_steps", "max_seconds")}
    yield Progress(0, total, f"{family}: {len(train.samples)} train / {len(val.samples)} val images")
    for epoch in range(epochs):
        model.train()
        for images, targets in loader:
            elapsed = time.perf_counter() - t0
            out_of_time = budget > 0 and elapsed >= budget
            if step >= total or out_of_time:
                break
            done = max(step / total, elapsed / budget if budget > 0 else 0.0)
            for g in optim.param_groups:
                g["lr"] = base_lr * _lr_factor(step, int(cfg["warmup_steps"]), done)
            images = [im.to(device) for im in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            losses = model(images, targets)
            loss = sum(losses.values())
            step += 1
            if not torch.isfinite(loss):
                # NaN guard: skip the update; a run that keeps diverging is stopped with a reason
                bad += 1
                optim.zero_grad(set_to_none=True)
                yield Log(f"step {step}: loss is not finite, update skipped", level="warning")
                if bad >= MAX_BAD_STEPS:
                    raise FloatingPointError(f"{family}: loss was not finite for {bad} steps in a row; "
                                             f"lower the learning rate (config 'lr', now {base_lr})")
                continue
            bad = 0
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            optim.step()
            values = {k: float(v.detach()) for k, v in losses.items()}
            values["loss"] = float(loss.detach())
            values["lr"] = optim.param_groups[0]["lr"]
            yield Metrics(values, step=step)
            yield Progress(step, total, f"epoch {epoch + 1}/{epochs}")
            if budget > 0 and time.perf_counter() - t0 >= budget:
                out_of_time = True
                break
        model.eval()
        last = step >= total or out_of_time or epoch == epochs - 1
        if val.samples and (last or (epoch + 1) % max(int(cfg.get("eval_every", 1)), 1) == 0):
            with torch.no_grad():
                metrics = evaluate_model(model, val.samples, class_names, category_ids, device, masks,
                                         should_stop=token.raise_if_cancelled)
            yield Metrics({k: v for k, v in metrics.items() if isinstance(v, float)}, step=step)
        metrics = {**metrics, "epoch": epoch + 1, "steps": step,
                   "train_seconds": round(time.perf_counter() - t0, 1)}
        save_checkpoint(out, model.state_dict(), {
            "family": family, "classes": class_names, "category_ids": category_ids,
            "config": meta_config, "metrics": metrics})
        yield Log(f"epoch {epoch + 1}: checkpoint written to {out}")
        if step >= total or out_of_time:
            break
    return {"checkpoint": str(out), "metrics": metrics, "steps": step,
            "seconds": time.perf_counter() - t0}

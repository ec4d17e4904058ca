"""Training job for our YOLO: a generator yielding Progress/Metrics/Log events.

Same shape as the R-CNN trainer (engine.train.rcnn): read the project read-only through
``engine.data.detection``, augment with v2 (flips move the boxes), resize each batch to the square
network input, encode the grid targets, AdamW with warm-up and cosine decay (the pretrained
backbone at a lower rate than the new head), a NaN guard that skips the update, and at every
epoch end the val box mAP@0.5 (pycocotools) and an atomic checkpoint. ``max_seconds`` stops a
timed run after the step that crosses it, then evaluates and saves as at an epoch end.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from engine.annotations.errors import BadInput
from engine.data.datasets import open_project, resolve_classes
from engine.data.detection import (DetectionDataset, collate_detection, detection_augmentation,
                                   load_detection_samples, samples_to_gt)
from engine.device import pick_device, seed_everything
from engine.jobs.events import Log, Metrics, Progress
from engine.models.backbones import preprocess
from engine.models.checkpoint import save_checkpoint
from engine.models.yolo import build_yolo, encode_targets, grid_size, preset_for, yolo_loss

__all__ = ["MAX_BAD_STEPS", "evaluate_yolo", "train_yolo", "yolo_batch"]

MAX_BAD_STEPS = 5  # consecutive non-finite losses before the run is stopped


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up from 0.1 then cosine decay to 0.02 of the base rate."""
    if step < warmup:
        return 0.1 + 0.9 * step / max(warmup, 1)
    t = (step - warmup) / max(total - warmup, 1)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def yolo_batch(images: list[torch.Tensor], targets: list[dict], input_size: int, grid: int,
               num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A detection batch -> (network input float [N, 3, in, in], grid targets [N, S, S, 5 + C]).

    images: float [3, H, W] in 0..1 (sizes may differ); targets: {"boxes" xyxy pixels,
    "labels" 1..C} as ``engine.data.detection.DetectionDataset`` gives them.
    """
    xs, boxes, labels = [], [], []
    for im, t in zip(images, targets):
        h, w = im.shape[-2:]
        xs.append(F.interpolate(im[None], size=(input_size, input_size), mode="bilinear", align_corners=False))
        boxes.append(t["boxes"].float() / torch.tensor([w, h, w, h], dtype=torch.float32))
        labels.append(t["labels"] - 1)
    return preprocess(torch.cat(xs)), encode_targets(boxes, labels, grid, num_classes)


def evaluate_yolo(predictor, samples, class_names: list[str], category_ids: list[int],
                  should_stop=None) -> dict:
    """COCO box metrics of ``predictor`` on ``samples``: {"box_map50", "box_map", "per_class_box_ap50"}.

    Same settings as ``visionbench predict`` (score floor 0.05, NMS 0.5).
    """
    from engine.eval.coco_eval import evaluate_detections

    preds = []
    for s in samples:
        if should_stop is not None:
            should_stop()
        preds.append(predictor.predict(s.image, score_threshold=0.05, nms_iou=0.5))
    cats = [{"id": cid, "name": n} for cid, n in zip(category_ids, class_names)]
    box = evaluate_detections(samples_to_gt(samples, category_ids), preds, cats, "bbox")
    return {"box_map50": box["map50"] or 0.0, "box_map": box["map"] or 0.0,
            "per_class_box_ap50": {k: v["ap50"] for k, v in box["per_class"].items()}}


def train_yolo(token, store_path, out, config: dict):
    """Train "yolo" on the project at ``store_path``; write the checkpoint ``out``.

    config: overrides of the device preset (engine.models.yolo.CPU_PRESET / GPU_PRESET), plus
    "device" ("auto"), "classes" (category names; default all), "max_steps" (tests),
    "max_seconds" (time cap). Returns {"checkpoint", "metrics", "steps", "seconds"}.
    """
    from engine.infer.yolo_predictor import YoloPredictor

    device = pick_device(config.get("device", "auto"))
    cfg = {**preset_for(device.type), **{k: v for k, v in config.items() if k != "device"}}
    seed_everything(int(cfg["seed"]))
    out = Path(out)
    store = open_project(store_path)
    try:
        categories = resolve_classes(store, cfg.get("classes"))
        yield Log(f"yolo: reading project {store_path}")
        train = load_detection_samples(store, categories, "train", should_stop=token.raise_if_cancelled)
        val = load_detection_samples(store, categories, "val", should_stop=token.raise_if_cancelled)
    finally:
        store.close()
    if not train.samples:
        raise BadInput(str(store_path), "split", "no annotated images in the 'train' split with boxes, "
                       "masks or polygons of the chosen categories")
    class_names = [c.name for c in categories]
    category_ids = [c.id for c in categories]
    num_classes = len(categories)
    model = build_yolo(cfg, num_classes).to(device)
    s = grid_size(cfg)
    input_size = int(cfg["input_size"])
    transform = detection_augmentation(hflip=bool(cfg["hflip"]), vflip=bool(cfg["vflip"]))
    loader = DataLoader(DetectionDataset(train.samples, transform), batch_size=int(cfg["batch_size"]),
                        shuffle=True, collate_fn=collate_detection, num_workers=0,
                        generator=torch.Generator().manual_seed(int(cfg["seed"])))
    base_lr = float(cfg["lr"])
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    head = list(model.head.parameters())
    optim = torch.optim.AdamW([{"params": backbone, "scale": float(cfg["backbone_lr_scale"])},
                               {"params": head, "scale": 1.0}], lr=base_lr,
                              weight_decay=float(cfg["weight_decay"]))
    epochs = int(cfg["epochs"])
    total = epochs * len(loader)
    if cfg.get("max_steps"):
        total = min(total, int(cfg["max_steps"]))
    max_seconds = float(cfg["max_seconds"]) if cfg.get("max_seconds") else None
    predictor = YoloPredictor(model, class_names, input_size, name="val", device=device,
                              max_detections=int(cfg["max_detections"]))
    step, bad, t0 = 0, 0, time.perf_counter()
    metrics: dict = {}
    meta_config = {k: v for k, v in cfg.items() if k not in ("max_steps", "max_seconds")}
    yield Progress(0, total, f"yolo {s}x{s} grid: {len(train.samples)} train / {len(val.samples)} val images")
    for epoch in range(epochs):
        model.train()
        timed_out = False
        for images, targets in loader:
            if step >= total:
                break
            token.raise_if_cancelled()
            lr = base_lr * _lr_factor(step, int(cfg["warmup_steps"]), total)
            for g in optim.param_groups:
                g["lr"] = lr * g["scale"]
            x, target = yolo_batch(images, targets, input_size, s, num_classes)
            terms = yolo_loss(model(x.to(device)), target.to(device), model.boxes_per_cell,
                              float(cfg["lambda_coord"]), float(cfg["lambda_noobj"]))
            loss = terms["loss"]
            step += 1
            optim.zero_grad(set_to_none=True)
            if not torch.isfinite(loss):
                # NaN guard: skip this update; a run that keeps diverging stops with a reason
                bad += 1
                yield Log(f"step {step}: loss is not finite, update skipped", level="warning")
                if bad >= MAX_BAD_STEPS:
                    raise FloatingPointError(f"yolo: loss was not finite for {bad} steps in a row; lower "
                                             f"the learning rate (config 'lr', now {base_lr})")
                continue
            bad = 0
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optim.step()
            values = {k: float(v.detach()) for k, v in terms.items()}
            values["lr"] = lr
            yield Metrics(values, step=step)
            yield Progress(step, total, f"epoch {epoch + 1}/{epochs}")
            if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                timed_out = True
                break
        model.eval()
        if val.samples:
            metrics = evaluate_yolo(predictor, val.samples, class_names, category_ids,
                                    should_stop=token.raise_if_cancelled)
            yield Metrics({k: v for k, v in metrics.items() if isinstance(v, float)}, step=step)
        metrics = {**metrics, "epoch": epoch + 1, "steps": step}
        save_checkpoint(out, model.state_dict(), {
            "family": "yolo", "classes": class_names, "category_ids": category_ids,
            "config": meta_config, "metrics": metrics})
        yield Log(f"epoch {epoch + 1}: checkpoint written to {out}"
                  + (f" (val box mAP@0.5 {metrics['box_map50']:.3f})" if "box_map50" in metrics else ""))
        if step >= total or timed_out:
            break
    return {"checkpoint": str(out), "metrics": metrics, "steps": step, "seconds": time.perf_counter() - t0}

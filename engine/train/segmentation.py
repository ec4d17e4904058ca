"""The U-Net training job: a generator ``train_segmentation(token, store_path, out, config)``.

Events: Log while loading; per step Progress + Metrics({"loss"}); Previews "heatmaps",
"argmax" and "weight_map" of one fixed validation image every ``preview_every`` steps and at
each epoch end; per epoch Metrics({"val_miou", "val_dice", "train_loss", "epoch"}).
The checkpoint at ``out`` is written atomically at epoch end, only when validation improved,
so cancelling or a NaN loss mid-epoch leaves the last good file untouched.
"""
from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from engine.annotations.errors import BadInput
from engine.data.augment import segmentation_augmentation
from engine.data.datasets import (SegmentationDataset, SegSample, dataset_class_weights, image_to_tensor,
                                  load_segmentation_samples, open_project, resolve_classes)
from engine.device import autocast_context, pick_device, seed_everything
from engine.eval.segmentation import confusion, summarize
from engine.jobs.events import Log, Metrics, Preview, Progress
from engine.models.checkpoint import save_checkpoint
from engine.models.unet import DEFAULT_CONFIG, build_unet, segmentation_loss
from engine.train.loop import NonFiniteLoss, cpu_threads, lower_thread_priority, make_grad_scaler, train_epoch
from engine.viz.heatmaps import segmentation_preview
from engine.viz.weight_map import unet_weight_map


def _eval_logits(model: torch.nn.Module, images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Logits [N, C + 1, H, W] of same-size uint8 [H, W, 3] images, in eval mode (the model's
    mode is restored), NHWC on the CPU as in training."""
    x = torch.stack([image_to_tensor(image) for image in images]).to(device)
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast_context(device):
            return model(x).float()
    finally:
        model.train(was_training)


def _predict_probs(model: torch.nn.Module, image: np.ndarray, device: torch.device) -> np.ndarray:
    """Softmax float32 [C + 1, H, W] of one uint8 [H, W, 3] image (whole image, eval mode)."""
    return _eval_logits(model, [image], device).softmax(dim=1)[0].cpu().numpy()


def evaluate_samples(model: torch.nn.Module, samples: list[SegSample], class_names: list[str],
                     device: torch.device, token=None, batch_size: int = 16) -> dict:
    """IoU/Dice over samples (see ``engine.eval.segmentation.summarize``).

    Consecutive samples of the same size go through the model together (up to ``batch_size``):
    the same numbers as one by one (eval mode), in about half the time on the CPU.
    """
    k = len(class_names) + 1
    cm = np.zeros((k, k), np.int64)
    for _, same_size in itertools.groupby(samples, key=lambda s: s.image.shape):
        same_size = list(same_size)
        for start in range(0, len(same_size), batch_size):
            if token is not None:
                token.raise_if_cancelled()
            group = same_size[start:start + batch_size]
            labels = _eval_logits(model, [s.image for s in group], device).argmax(dim=1).cpu().numpy()
            for s, pred in zip(group, labels):
                cm += confusion(pred, s.class_map, k)
    return summarize(cm, class_names)


def _previews(model, sample: SegSample, class_names, colors, class_weights, cfg, device, step):
    probs = _predict_probs(model, sample.image, device)
    views = segmentation_preview(sample.image, probs, class_names, colors)
    yield Preview("heatmaps", views["heatmaps"], step)
    yield Preview("argmax", views["argmax"], step)
    weight = unet_weight_map(sample.class_map, sample.instance_map, class_weights, cfg["w0"], cfg["sigma"])
    yield Preview("weight_map", {"image": sample.image, "weight": weight}, step)


def _warmup_cosine(plan: dict, steps_per_epoch: int):
    """LR factor per step: linear warm-up, then cosine decay to 2 %.

    The decay runs over plan["epochs"] (read live), or, when plan["time_span"] = (start, end)
    perf_counter seconds is set (a time budget), over that span of wall time: the LR then
    reaches its floor at the deadline however fast the steps turn out to be.
    """
    # Short: under a time budget a long warm-up would eat much of the run.
    warm = max(1, min(int(0.05 * plan["epochs"] * steps_per_epoch), 20))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if plan.get("time_span"):
            start, end = plan["time_span"]
            t = min(1.0, max(0.0, (time.perf_counter() - start) / max(1e-6, end - start)))
        else:
            total = max(warm + 1, plan["epochs"] * steps_per_epoch)
            t = min(1.0, (step - warm) / (total - warm))
        return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


def train_segmentation(token, store_path, out, config: dict | None = None):
    """Train a U-Net on the project at ``store_path``; write the best checkpoint to ``out``.

    config: see ``engine.models.unet.DEFAULT_CONFIG`` (+ "seed", "device", "nice" (raise the
    worker thread's nice value; the workbench uses 5), and "time_limit_s":
    after each epoch, the number of epochs shrinks so the run ends within that many seconds).
    Returns a dict with checkpoint, epochs, best metrics, history and seconds.
    """
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    lower_thread_priority(cfg.get("nice"))
    seed_everything(int(cfg.get("seed", 0)))
    device = pick_device(cfg.get("device", "auto"))
    out = Path(out)
    started = time.perf_counter()

    yield Log(f"reading project {store_path}")
    store = open_project(store_path)
    try:
        cats = resolve_classes(store, cfg.get("classes"))
        train = load_segmentation_samples(store, cats, "train", should_stop=token.raise_if_cancelled)
        val = load_segmentation_samples(store, cats, "val", should_stop=token.raise_if_cancelled)
    finally:
        store.close()
    class_names = [c.name for c in cats]
    colors = [c.color for c in cats]
    if not train:
        raise BadInput(str(store_path), "images", "no annotated images in split 'train' for categories "
                       + ", ".join(class_names))
    if not val:
        yield Log("no annotated validation images: validating on training images", level="warning")
        val = train[: max(1, min(len(train), 16))]
    val = val[: int(cfg["val_limit"])]
    yield Log(f"{len(train)} training and {len(val)} validation images; classes: {', '.join(class_names)}; "
              f"device {device}")

    num_classes = len(class_names)
    class_weights = dataset_class_weights(train, num_classes + 1, float(cfg["balance_power"]))
    transform = segmentation_augmentation(crop=int(cfg["crop"])) if cfg["augment"] else None
    if transform is None and len({s.image.shape for s in train}) > 1 and int(cfg["batch_size"]) > 1:
        from torchvision.transforms import v2

        transform = v2.RandomCrop(int(cfg["crop"]), pad_if_needed=True, padding_mode="reflect")
    dataset = SegmentationDataset(train, num_classes + 1, transform, class_weights, cfg["w0"], cfg["sigma"])
    generator = torch.Generator().manual_seed(int(cfg.get("seed", 0)))
    loader = DataLoader(dataset, batch_size=int(cfg["batch_size"]), shuffle=True, drop_last=len(train) > int(cfg["batch_size"]),
                        num_workers=0, generator=generator)
    epochs = int(cfg["epochs"])
    if epochs < 1:
        raise BadInput("config", "epochs", f"must be at least 1, got {epochs}")
    total_steps = epochs * len(loader)

    model = build_unet(cfg, num_classes).to(device)
    # NHWC on the CPU: oneDNN's convolutions run ~20 % faster per training step (measured on the
    # Lite0 U-Net at 128 px, 1 thread); the saved state dict is the same either way.
    channels_last = device.type == "cpu"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    steps_per_epoch = len(loader)
    plan = {"epochs": epochs}  # under "time_limit_s" an estimate (progress bar); the LR then follows the clock
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(plan, steps_per_epoch))
    time_limit = cfg.get("time_limit_s")
    scaler = make_grad_scaler(device)
    loss_kind = cfg["loss"]

    def loss_fn(m, batch):
        images, target, weight = batch
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return segmentation_loss(loss_kind, m(images), target, weight)

    # The validation image with the most objects (first on ties): touching neighbours are where
    # the weight map's border term and the model's mistakes are worth watching.
    preview_sample = max(val, key=lambda s: len(np.unique(s.instance_map)))
    every = max(1, int(cfg["preview_every"]))

    def after_step(step):
        if step % every == 0:
            yield from _previews(model, preview_sample, class_names, colors, class_weights, cfg, device, step)

    saved_config = {k: v for k, v in cfg.items() if k not in ("device",)}
    saved_config["classes"] = class_names
    best = None
    best_epoch = 0
    history = []
    step = 0
    train_started = time.perf_counter()
    val_seconds = [0.0]

    def reserve() -> float:
        # Seconds kept for what follows the last step: a step in flight, the last validation,
        # previews and the checkpoint (the first estimate until a validation has been timed).
        return 1.25 * val_seconds[0] + 2.0 if val_seconds[0] else 0.03 * float(time_limit)

    if time_limit:
        # the LR decays over the wall time left for training
        plan["time_span"] = (train_started, started + float(time_limit) - reserve())

    def out_of_time() -> bool:
        # Leave room for the epoch-end validation so the whole run fits the budget.
        return bool(time_limit) and time.perf_counter() - started + reserve() > float(time_limit)
    with cpu_threads(device, cfg.get("cpu_threads")):
        yield Progress(0, total_steps, "training")
        epoch = 0
        while epoch < plan["epochs"]:
            epoch += 1
            total_steps = plan["epochs"] * steps_per_epoch
            try:
                train_loss, step = yield from train_epoch(
                    model, optimizer, loader, loss_fn, token, device=device, epoch=epoch, step=step,
                    total_steps=total_steps, scheduler=scheduler, scaler=scaler, after_step=after_step,
                    should_end=out_of_time)
            except NonFiniteLoss as exc:
                kept = (f"the last good checkpoint (epoch {best_epoch}) is kept at {out}" if best_epoch
                        else "no checkpoint was written")
                raise NonFiniteLoss(f"{exc}; training stopped, {kept}. Try a lower learning rate "
                                    f"(config 'lr', now {cfg['lr']}).") from None
            val_started = time.perf_counter()
            metrics = evaluate_samples(model, val, class_names, device, token)
            val_seconds[0] = time.perf_counter() - val_started
            if time_limit:
                plan["time_span"] = (train_started, started + float(time_limit) - reserve())
            miou = metrics["miou"] if metrics["miou"] is not None else 0.0
            row = {"epoch": epoch, "train_loss": train_loss, "val_miou": miou,
                   "val_dice": metrics["dice"] if metrics["dice"] is not None else 0.0}
            history.append(row)
            yield Metrics(dict(row), step)
            yield from _previews(model, preview_sample, class_names, colors, class_weights, cfg, device, step)
            if best is None or miou >= best["val_miou"]:
                best = dict(row, per_class=metrics["per_class"])
                best_epoch = epoch
                save_checkpoint(out, model.state_dict(), {
                    "family": "unet", "kind": "segmentation", "classes": class_names, "colors": colors,
                    "config": saved_config, "metrics": best, "epoch": epoch,
                })
                yield Log(f"epoch {epoch}: val mIoU {miou:.3f} (best so far) -> saved {out.name}")
            else:
                yield Log(f"epoch {epoch}: val mIoU {miou:.3f} (best {best['val_miou']:.3f} at epoch {best_epoch})")
            if time_limit and out_of_time():
                plan["epochs"] = epoch
                yield Log(f"time limit {time_limit:.0f} s reached: training stops after epoch {epoch}")
            elif time_limit:
                elapsed = time.perf_counter() - started
                per_epoch = (time.perf_counter() - train_started) / epoch
                # Round up: the last epoch is cut at the deadline by out_of_time() mid-epoch. The
                # estimate may grow again (first epochs are slower) up to the configured epochs;
                # it only sizes the progress bar, the LR follows the clock.
                fits = min(epochs, epoch + math.ceil(max(0.0, float(time_limit) - elapsed) / per_epoch))
                if fits != plan["epochs"]:
                    plan["epochs"] = fits
                    yield Log(f"time limit {time_limit:.0f} s: about {fits} epochs fit")
    return {"checkpoint": str(out), "family": "unet", "epochs": epoch, "best_epoch": best_epoch,
            "best": best, "history": history, "seconds": round(time.perf_counter() - started, 2),
            "device": str(device)}

"""Faster / Mask R-CNN on the one training loop (engine.train.loop): what differs for them.

SGD with momentum and gradient clipping; every loss term of torchvision's model is plotted
(RPN objectness and box, classifier, box, mask); validation with pycocotools on the "val" split
(box mAP@0.5, and mask mAP@0.5 for Mask R-CNN, the metric that picks its best checkpoint);
a preview of the detections on a fixed validation image.
"""
from __future__ import annotations

import torch

from engine.models.rcnn import CPU_PRESET, build_rcnn
from engine.train.detector import DetectorTrainer
from engine.train.loop import fit

__all__ = ["FasterRcnnTrainer", "MaskRcnnTrainer", "evaluate_model", "train_rcnn"]


def evaluate_model(model, samples, class_names: list[str], category_ids: list[int], device,
                   masks: bool, should_stop=None) -> dict:
    """COCO metrics of ``model`` on ``samples``: {"box_map50", "box_map", "per_class_box_ap50"[,
    "mask_map50", "mask_map", "per_class_mask_ap50"]}, undefined mAPs as 0.0.

    A thin wrapper of ``engine.eval.detection.evaluate_detector`` through the predictor of
    ``visionbench predict``. category_ids is kept for the callers; the scores are keyed by name.
    """
    from engine.eval.detection import evaluate_detector
    from engine.infer.rcnn_predictor import RcnnPredictor

    predictor = RcnnPredictor(model, class_names, name="val", device=device)
    scored = evaluate_detector(predictor, samples, class_names, masks=masks, should_stop=should_stop)
    out = {}
    for kind in ("box", "mask") if masks else ("box",):
        out[f"{kind}_map50"], out[f"{kind}_map"] = scored[f"{kind}_map50"] or 0.0, scored[f"{kind}_map"] or 0.0
        out[f"per_class_{kind}_ap50"] = scored[f"per_class_{kind}_ap50"]
    return out


class FasterRcnnTrainer(DetectorTrainer):
    family = "fasterrcnn"
    kind = "detection"
    metric = "box_map50"
    masks = False
    defaults = {**CPU_PRESET, "clip_grad": 10.0, "lr_floor": 0.05}

    def build(self, num_classes: int):
        model = build_rcnn(self.cfg, num_classes, masks=self.masks).to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        optim = torch.optim.SGD(params, lr=float(self.cfg["lr"]), momentum=float(self.cfg["momentum"]),
                                weight_decay=float(self.cfg["weight_decay"]))
        return model, [optim]

    def loss(self, batch):
        images, targets = batch
        losses = self.model(list(images), list(targets))
        return {**losses, "loss": sum(losses.values())}

    def make_predictor(self):
        from engine.infer.rcnn_predictor import RcnnPredictor

        return RcnnPredictor(self.model, self.class_names, name="val", device=self.device)


class MaskRcnnTrainer(FasterRcnnTrainer):
    family = "maskrcnn"
    kind = "instance"
    metric = "mask_map50"
    masks = True


def train_rcnn(token, store_path, out, config: dict, family: str = "fasterrcnn"):
    """Train ``family`` ("fasterrcnn" | "maskrcnn") on the project at ``store_path`` (see
    engine.train.loop.fit for the events and the result)."""
    trainer = MaskRcnnTrainer if family == "maskrcnn" else FasterRcnnTrainer
    return (yield from fit(trainer, token, store_path, out, config))

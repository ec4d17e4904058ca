"""Faster / Mask R-CNN on the one training loop (engine.train.loop): what differs for them.

SGD with momentum and gradient clipping; every loss term of torchvision's model is plotted
(RPN objectness and box, classifier, box, mask); validation with pycocotools on the "val" split
(box mAP@0.5, and mask mAP@0.5 for Mask R-CNN, the metric that picks its best checkpoint);
a preview of the detections on a fixed validation image.
"""
from __future__ import annotations

import torch

from engine.data.detection import samples_to_gt
from engine.models.rcnn import CPU_PRESET, build_rcnn
from engine.train.detector import DetectorTrainer
from engine.train.loop import fit

__all__ = ["FasterRcnnTrainer", "MaskRcnnTrainer", "evaluate_model", "train_rcnn"]


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

    def validate(self):
        return evaluate_model(self.model, self.val, self.class_names, self.category_ids, self.device, self.masks,
                              should_stop=self.token.raise_if_cancelled)


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

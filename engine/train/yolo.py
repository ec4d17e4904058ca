"""Our YOLO on the one training loop (engine.train.loop): what differs for it.

Each batch is resized to the square network input and encoded as grid targets; AdamW with the
pretrained backbone at a lower rate than the new head; the loss terms (coord, obj, noobj,
class) are plotted; validation is the val box mAP@0.5 (pycocotools).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.models.backbones import preprocess
from engine.models.yolo import CPU_PRESET, build_yolo, encode_targets, grid_size, yolo_loss
from engine.train.detector import DetectorTrainer
from engine.train.loop import fit

__all__ = ["YoloTrainer", "evaluate_yolo", "train_yolo", "yolo_batch"]


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
    """COCO box metrics of ``predictor`` on ``samples``: {"box_map50", "box_map", "per_class_box_ap50"},
    undefined mAPs as 0.0. A thin wrapper of ``engine.eval.detection.evaluate_detector`` (same
    settings as ``visionbench predict``); category_ids is kept for the callers."""
    from engine.eval.detection import evaluate_detector

    scored = evaluate_detector(predictor, samples, class_names, should_stop=should_stop)
    return {"box_map50": scored["box_map50"] or 0.0, "box_map": scored["box_map"] or 0.0,
            "per_class_box_ap50": scored["per_class_box_ap50"]}


class YoloTrainer(DetectorTrainer):
    family = "yolo"
    kind = "detection"
    metric = "box_map50"
    defaults = {**CPU_PRESET, "clip_grad": 10.0}

    def build(self, num_classes: int):
        cfg = self.cfg
        self.num_classes = num_classes
        self.grid = grid_size(cfg)
        self.input_size = int(cfg["input_size"])
        model = build_yolo(cfg, num_classes).to(self.device)
        base_lr = float(cfg["lr"])
        backbone = [p for p in model.backbone.parameters() if p.requires_grad]
        optim = torch.optim.AdamW([{"params": backbone, "lr": base_lr * float(cfg["backbone_lr_scale"])},
                                   {"params": list(model.head.parameters()), "lr": base_lr}], lr=base_lr,
                                  weight_decay=float(cfg["weight_decay"]))
        return model, [optim]

    def loss(self, batch):
        images, targets = batch
        x, target = yolo_batch(images, targets, self.input_size, self.grid, self.num_classes)
        return yolo_loss(self.model(x.to(self.device)), target.to(self.device), self.model.boxes_per_cell,
                         float(self.cfg["lambda_coord"]), float(self.cfg["lambda_noobj"]))

    def make_predictor(self):
        from engine.infer.yolo_predictor import YoloPredictor

        return YoloPredictor(self.model, self.class_names, self.input_size, name="val", device=self.device,
                             max_detections=int(self.cfg["max_detections"]))


def train_yolo(token, store_path, out, config: dict):
    """Train "yolo" on the project at ``store_path`` (see engine.train.loop.fit)."""
    return (yield from fit(YoloTrainer, token, store_path, out, config))

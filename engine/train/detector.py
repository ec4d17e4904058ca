"""What the detector families share on the one training loop: reading boxes (and masks) from
the project under the ground-truth rule, a seeded loader with flips, the validation (COCO mAPs,
split between the ranks of a distributed run) and the detections preview."""
from __future__ import annotations

import torch

from engine.annotations.errors import BadInput
from engine.data.datasets import open_project, resolve_classes
from engine.data.detection import DetectionDataset, collate_detection, detection_augmentation, load_detection_samples
from engine.jobs.events import Log
from engine.train.loop import Trainer
from engine.viz import previews as pv

PREVIEW_SCORE = 0.3  # detections drawn in the live preview


class DetectorTrainer(Trainer):
    """Subclasses set ``masks`` and implement ``build(num_classes) -> (model, optimizers)``,
    ``loss`` and ``make_predictor`` (a predictor over ``self.model``)."""

    masks = False

    def build(self, num_classes: int):
        raise NotImplementedError

    def make_predictor(self):
        raise NotImplementedError

    def setup(self):
        cfg, token = self.cfg, self.token
        store = open_project(self.store_path)
        try:
            categories = resolve_classes(store, cfg.get("classes"))
            yield Log(f"{self.family}: reading project {self.store_path}")
            train = load_detection_samples(store, categories, "train", with_masks=self.masks,
                                           should_stop=token.raise_if_cancelled)
            val = load_detection_samples(store, categories, "val", with_masks=self.masks,
                                         should_stop=token.raise_if_cancelled)
        finally:
            store.close()
        if not train.samples:
            raise BadInput(str(self.store_path), "split", "no annotated images in the 'train' split with boxes, "
                           "masks or polygons of the chosen categories")
        if self.masks and train.box_only_masks:
            yield Log(f"{train.box_only_masks} objects have a box but no mask; their filled box is used "
                      f"as the mask", level="warning")
        self.class_names = [c.name for c in categories]
        self.category_ids = [c.id for c in categories]
        self.colors = [c.color for c in categories]
        self.val = val.samples
        self.model, self.optimizers = self.build(len(categories))
        transform = detection_augmentation(hflip=bool(cfg["hflip"]), vflip=bool(cfg["vflip"]),
                                           brightness=float(cfg.get("brightness", 0.2)),
                                           contrast=float(cfg.get("contrast", 0.2)))
        self.loader = self.make_loader(DetectionDataset(train.samples, transform), int(cfg["batch_size"]),
                                       collate_fn=collate_detection)
        shown = self.val or train.samples
        self.preview_sample = max(shown, key=lambda s: len(s.boxes))
        self.predictor = self.make_predictor()
        yield Log(f"{self.family}: {len(train.samples)} train / {len(self.val)} val images; device {self.device}")

    def batches(self):
        return self.loader

    def steps_per_epoch(self) -> int:
        return len(self.loader)

    # validation: COCO results of shares of the split (each image predicted alone), scored together
    def val_items(self) -> int:
        return len(self.val)

    def validate_part(self, items: range) -> list[dict]:
        from engine.eval.detection import coco_results

        self.model.eval()
        return coco_results(self.predictor, self.val[items.start:items.stop], self.class_names,
                            should_stop=self.token.raise_if_cancelled)

    def validate_merge(self, parts: list) -> dict:
        """box_map50, box_map, per_class_box_ap50 (and the mask ones), undefined mAPs as 0.0."""
        from engine.eval.detection import score_coco_results

        scored = score_coco_results(self.val, [r for part in parts for r in part], self.class_names, self.masks)
        out = {}
        for kind in ("box", "mask") if self.masks else ("box",):
            out[f"{kind}_map50"], out[f"{kind}_map"] = scored[f"{kind}_map50"] or 0.0, scored[f"{kind}_map"] or 0.0
            out[f"per_class_{kind}_ap50"] = scored[f"per_class_{kind}_ap50"]
        return out

    def previews(self, step):
        s = self.preview_sample
        was = self.model.training
        try:
            with torch.no_grad():
                det = self.predictor.predict(s.image, score_threshold=PREVIEW_SCORE, nms_iou=0.5)
        finally:
            self.model.train(was)
        picture = pv.draw_detections(s.image, det.boxes, det.labels + 1, det.scores, self.class_names, self.colors,
                                     masks=det.masks if self.masks else None, gt_boxes=s.boxes)
        yield pv.image("detections", picture, step,
                       f"detections ≥ {PREVIEW_SCORE} on val image {s.record.id} (white: ground truth)")

    def meta(self):
        return {"classes": self.class_names, "category_ids": self.category_ids, "colors": self.colors}

"""Several processes compute what one computes: BatchNorm and the Dice over the ranks' whole batch,
one learning rate on every rank under a time budget, and a validation split between the ranks
whose metric is that of the whole split."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from engine.jobs.cancel import CancelToken
from engine.models.checkpoint import load_checkpoint
from engine.train.distributed import Dist
from tests.engine.train.ddp_family import TinyTrainer
from tests.engine.train.test_distributed import REPO, run_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_shares_of_a_split_cover_it_once_in_whole_blocks():
    for n, block, world in ((10, 1, 2), (80, 16, 2), (8, 16, 2), (35, 8, 3), (0, 4, 2)):
        shares = [Dist(r, world).shard(n, block) for r in range(world)]
        assert [i for s in shares for i in s] == list(range(n))
        assert all(s.start % block == 0 for s in shares if len(s))
    assert Dist().shard(7, 4) == range(7)
    assert [len(Dist(r, 2).shard(80, 16)) for r in (0, 1)] == [32, 48]


def test_batchnorm_and_dice_over_two_gloo_processes_equal_one_process_with_the_whole_batch(tmp_path):
    out = tmp_path / "checks.json"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(REPO / "tests" / "engine" / "train" / "ddp_checks.py"), str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = json.loads(out.read_text())
    assert [r["world"] for r in ranks] == [2, 2]
    for r in ranks:
        assert max(r["bn_float64"].values()) < 1e-12
        # activations far from zero (mean 50, std 0.5): no digits lost to E[x^2] - mean^2
        assert max(r["bn_float32_offset"].values()) < 2e-5
        assert r["dice"]["loss"] < 1e-12 and r["dice"]["grad"] < 1e-12
        assert r["dice"]["alone"] > 1e-3  # each share's own Dice is not the batch's


def test_two_ranks_validate_a_share_each_and_agree_with_one_process_on_the_metric(tmp_path):
    # a time budget that does not end the run: the learning rate follows the clock, one for all ranks
    config = {"batch_size": 4, "max_seconds": 20}
    done = run_main(tmp_path, config, nproc=2)
    assert done.returncode == 0, done.stderr[-2000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["steps"] == r1["steps"] == 18
    assert r0["weights"] == r1["weights"]  # the same updates on both ranks, bit for bit
    n = 48  # ddp_family.N_SAMPLES, in blocks of 8: 24 items each
    # validated before training (the budget needs its cost) and after each of the 3 epochs
    assert r0["scored"] == [[0, 24]] * 4 and r1["scored"] == [[24, n]] * 4
    assert [h["accuracy"] for h in r0["history"]] == [h["accuracy"] for h in r1["history"]]
    # the last validation's metric is that of the whole split: one process scores the saved weights alike
    state, meta = load_checkpoint(tmp_path / "ckpt.pt")
    one = TinyTrainer({**TinyTrainer.defaults, "seed": 0}, torch.device("cpu"), CancelToken(), str(tmp_path))
    list(one.setup())
    one.model.load_state_dict(state)
    assert one.validate()["accuracy"] == meta["metrics"]["accuracy"] == r0["history"][-1]["accuracy"]
    assert one.scored == [[0, n]]


def _set_up(cls, project, config: dict):
    from engine.train.loop import resolve_config

    trainer = cls(resolve_config(cls, config), torch.device("cpu"), CancelToken(), str(project))
    torch.manual_seed(0)  # the same untrained weights whatever ran before
    list(trainer.setup())
    return trainer


def _by_shares(trainer, world: int) -> dict:
    """The validation as ``world`` ranks compute it: a share each, merged in rank order."""
    n = trainer.val_items()
    return trainer.validate_merge([trainer.validate_part(Dist(r, world).shard(n, trainer.val_block))
                                   for r in range(world)])


def test_unet_validation_in_shares_is_that_of_the_whole_split(tmp_path):
    from engine.train.segmentation import UNetTrainer, evaluate_samples
    from tests.engine.data.seg_project import make_seg_project
    from tests.engine.train.unet_fixtures import TINY_UNET

    project = make_seg_project(tmp_path, n_train=4, n_val=20, size=48)
    trainer = _set_up(UNetTrainer, project, {**TINY_UNET, "device": "cpu"})
    for epoch in range(12):  # a few steps, so that the model tells the classes apart a little
        trainer.loader.sampler.set_epoch(epoch)
        for batch in trainer.batches():
            trainer.step(batch, "test")
    whole = trainer.validate()
    cm = trainer.validate_part(range(20))
    assert len(trainer.val) == 20 and (cm.sum(0) > 0).sum() >= 2 and cm.trace() < cm.sum()  # not trivial
    for world in (2, 3):  # 16-image blocks: shares 0..16 and 16..20 (and an empty one)
        assert _by_shares(trainer, world) == whole
    plain = evaluate_samples(trainer.model, trainer.val, trainer.class_names, torch.device("cpu"))
    assert plain["miou"] == whole["miou"] and plain["dice"] == whole["dice"]


class _JitteredTruth:
    """Each val image's ground truth, shifted by a few pixels and scored by its index, plus one
    false alarm: a detector whose mAP is neither 0 nor 1."""

    def __init__(self, samples, class_names):
        self.samples, self.class_names = samples, class_names

    def predict(self, image, score_threshold=0.05, nms_iou=0.5, max_detections=None):
        from engine.infer.detections import Detections

        k, s = next((k, s) for k, s in enumerate(self.samples) if s.image is image)
        boxes = [list(b + (k % 3) * 2.0) for b in s.boxes] + [[0.0, 0.0, 9.0, 9.0]]
        labels = [int(lab) - 1 for lab in s.labels] + [0]
        scores = [0.9 - 0.05 * j for j in range(len(s.boxes))] + [0.5 + 0.1 * (k % 2)]
        return Detections(boxes, scores, labels, self.class_names)


def test_detector_validation_in_shares_is_that_of_the_whole_split(tmp_path):
    from engine.demo.shapes import build_shapes
    from engine.train.yolo import YoloTrainer, evaluate_yolo

    project = build_shapes(tmp_path, n_images=20, seed=3)
    trainer = _set_up(YoloTrainer, project, {"pretrained": False, "input_size": 64, "head_channels": 8,
                                             "batch_size": 4, "device": "cpu"})
    trainer.predictor = _JitteredTruth(trainer.val, trainer.class_names)
    whole = trainer.validate()
    assert 0.0 < whole["box_map"] < whole["box_map50"] <= 1.0 and len(trainer.val) >= 3
    for world in (2, 3):
        assert _by_shares(trainer, world) == whole
    # the figures the workbench's Evaluate and `visionbench eval` give for the same detections
    assert evaluate_yolo(trainer.predictor, trainer.val, trainer.class_names, trainer.category_ids) == whole
